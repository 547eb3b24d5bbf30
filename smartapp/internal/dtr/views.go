package dtr

import (
	"encoding/json"
	"strings"

	"dtrsandbox/shared/fhir"
)

// orderFields are the elements of the order types the app shows, read
// leniently (display only).
type orderFields struct {
	ResourceType              string                 `json:"resourceType"`
	ID                        string                 `json:"id"`
	Status                    string                 `json:"status"`
	AuthoredOn                string                 `json:"authoredOn"`
	CodeCodeableConcept       *fhir.CodeableConcept  `json:"codeCodeableConcept"`
	Code                      *fhir.CodeableConcept  `json:"code"`
	MedicationCodeableConcept *fhir.CodeableConcept  `json:"medicationCodeableConcept"`
	Subject                   *fhir.Reference        `json:"subject"`
	Requester                 *fhir.Reference        `json:"requester"`
	ReasonCode                []fhir.CodeableConcept `json:"reasonCode"`
	Insurance                 []fhir.Reference       `json:"insurance"`
	Extension                 []fhir.Extension       `json:"extension"`
	Note                      []fhir.Annotation      `json:"note"`
}

func orderView(iss string, raw json.RawMessage) OrderView {
	var o orderFields
	_ = json.Unmarshal(raw, &o)
	v := OrderView{
		Reference:         o.ResourceType + "/" + o.ID,
		AbsoluteReference: strings.TrimRight(iss, "/") + "/" + o.ResourceType + "/" + o.ID,
		Type:              o.ResourceType,
		Status:            o.Status,
		AuthoredOn:        o.AuthoredOn,
	}
	code := o.CodeCodeableConcept
	if code == nil {
		code = o.Code
	}
	if code == nil {
		code = o.MedicationCodeableConcept
	}
	if code != nil {
		v.Summary = code.Label()
		for _, c := range code.Coding {
			v.Codes = append(v.Codes, strings.TrimSpace(c.Code+" "+c.Display))
		}
	}
	if v.Summary == "" {
		v.Summary = v.Reference
	}
	if o.Requester != nil {
		v.Requester = o.Requester.Display
		if v.Requester == "" {
			v.Requester = o.Requester.Reference
		}
	}
	for _, r := range o.ReasonCode {
		if t := r.Label(); t != "" {
			v.Reasons = append(v.Reasons, t)
		}
	}
	for _, n := range o.Note {
		if n.Text != "" {
			v.Notes = append(v.Notes, n.Text)
		}
	}
	v.Questionnaire = crdQuestionnaire(o.Extension)
	return v
}

// crdQuestionnaire is the questionnaire canonical of the order's CRD
// coverage-information extension, "" if none.
func crdQuestionnaire(exts []fhir.Extension) string {
	for _, e := range exts {
		if e.URL != extCoverageInformation {
			continue
		}
		for _, part := range e.Extension {
			if part.URL == "questionnaire" && part.ValueCanonical != "" {
				return part.ValueCanonical
			}
		}
	}
	return ""
}

func patientView(raw json.RawMessage, id string) PatientView {
	v := PatientView{ID: id, Reference: "Patient/" + id}
	var p fhir.Patient
	if json.Unmarshal(raw, &p) != nil {
		return v
	}
	v.BirthDate, v.Gender = p.BirthDate, p.Gender
	v.Name = fhir.DisplayName(p.Name, false)
	return v
}

func coverageView(ref string, raw json.RawMessage) CoverageView {
	v := CoverageView{Reference: ref}
	var c fhir.Coverage
	if json.Unmarshal(raw, &c) != nil {
		return v
	}
	for _, p := range c.Payor {
		if p.Display != "" {
			v.Payor = p.Display
			break
		}
	}
	v.MemberID = c.SubscriberID
	for _, cl := range c.Class {
		if cl.Type != nil && len(cl.Type.Coding) > 0 && cl.Type.Coding[0].Code == "plan" {
			v.Plan = strings.TrimSpace(cl.Name + " (" + cl.Value + ")")
		}
	}
	if c.Period != nil {
		v.Period = strings.TrimSpace(c.Period.Start + " – " + c.Period.End)
	}
	return v
}
