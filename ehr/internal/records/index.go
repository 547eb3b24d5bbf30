package records

import (
	"bytes"
	"encoding/json"

	"dtrsandbox/shared/fhir"
)

// Index row names: the elements the store extracts from each resource when
// it is written, so that searches never parse stored bodies.
const (
	rowIdentifier    = "identifier"    // Identifier: system, value
	rowStatus        = "status"        // code: value
	rowSubject       = "subject"       // Reference: system = target type, value = id
	rowBeneficiary   = "beneficiary"   // Coverage.beneficiary, as rowSubject
	rowEncounter     = "encounter"     // Reference to an Encounter, as rowSubject
	rowQuestionnaire = "questionnaire" // canonical: value
)

// indexed is what one resource contributes to the search index.
type indexed struct {
	patientID string // the Patient compartment the resource belongs to, "" for none
	rows      []paramRow
}

// indexedElements are the top-level elements the index reads. identifier
// is a list in every served type except QuestionnaireResponse (R4: 0..1).
type indexedElements struct {
	Identifier    json.RawMessage `json:"identifier"`
	Status        string          `json:"status"`
	Subject       *fhir.Reference `json:"subject"`
	Beneficiary   *fhir.Reference `json:"beneficiary"`
	Encounter     *fhir.Reference `json:"encounter"`
	Questionnaire string          `json:"questionnaire"`
}

// derive computes the patient compartment and index rows of a resource.
//
// The compartment follows the R4 Patient CompartmentDefinition, narrowed to
// one parameter per type: a Patient is its own compartment, Coverage belongs
// to its beneficiary, and every other served type that has a subject
// belongs to it when it is a Patient. Practitioner and Organization are in
// no patient compartment.
//
// References are indexed by type and id. Relative references name this
// server; an absolute reference is indexed the same way, so the caller must
// store only absolute references whose base is this server (the FHIR API
// refuses any other on write; the seed uses relative references only).
func derive(typ, id string, body []byte) (indexed, error) {
	var el indexedElements
	// fhir.Decode, not json.Unmarshal: "Subject" must not be read as
	// "subject" (FHIR JSON is case-sensitive).
	if err := fhir.Decode(body, &el); err != nil {
		return indexed{}, err
	}
	var out indexed
	add := func(name, system, value string) {
		out.rows = append(out.rows, paramRow{ResourceType: typ, ResourceID: id, Name: name, System: system, Value: value})
	}
	for _, ident := range identifiers(el.Identifier) {
		if ident.Value != "" {
			add(rowIdentifier, ident.System, ident.Value)
		}
	}
	if el.Status != "" {
		add(rowStatus, "", el.Status)
	}
	addRef := func(name string, ref *fhir.Reference) (refType, refID string) {
		if ref == nil {
			return "", ""
		}
		_, t, i, ok := fhir.ParseReference(ref.Reference)
		if !ok {
			return "", ""
		}
		add(name, t, i)
		return t, i
	}
	subjType, subjID := addRef(rowSubject, el.Subject)
	benType, benID := addRef(rowBeneficiary, el.Beneficiary)
	addRef(rowEncounter, el.Encounter)
	if el.Questionnaire != "" {
		add(rowQuestionnaire, "", el.Questionnaire)
	}
	switch {
	case typ == "Patient":
		out.patientID = id
	case typ == "Coverage":
		if benType == "Patient" {
			out.patientID = benID
		}
	case subjType == "Patient":
		out.patientID = subjID
	}
	return out, nil
}

// identifiers reads Identifier or Identifier[]; anything else gives none.
func identifiers(raw json.RawMessage) []fhir.Identifier {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil
	}
	if raw[0] == '{' {
		var one fhir.Identifier
		if json.Unmarshal(raw, &one) != nil {
			return nil
		}
		return []fhir.Identifier{one}
	}
	var list []fhir.Identifier
	if json.Unmarshal(raw, &list) != nil {
		return nil
	}
	return list
}
