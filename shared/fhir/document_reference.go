// DocumentReference of FHIR R4 (documentreference.html): how the payer
// stores DTR documentation, with the QuestionnaireResponse carried in
// content.attachment as application/fhir+json.

package fhir

import "encoding/json"

// DocumentReference describes a document and carries or points at its
// content (R4 documentreference.html).
type DocumentReference struct {
	ResourceType     string                       `json:"resourceType,omitempty"`
	ID               string                       `json:"id,omitempty"`
	Meta             *Meta                        `json:"meta,omitempty"`
	Text             *Narrative                   `json:"text,omitempty"`
	Contained        []json.RawMessage            `json:"contained,omitempty"`
	Extension        []Extension                  `json:"extension,omitempty"`
	MasterIdentifier *Identifier                  `json:"masterIdentifier,omitempty"`
	Identifier       []Identifier                 `json:"identifier,omitempty"`
	Status           string                       `json:"status,omitempty"`
	DocStatus        string                       `json:"docStatus,omitempty"`
	Type             *CodeableConcept             `json:"type,omitempty"`
	Category         []CodeableConcept            `json:"category,omitempty"`
	Subject          *Reference                   `json:"subject,omitempty"`
	Date             string                       `json:"date,omitempty"`
	Author           []Reference                  `json:"author,omitempty"`
	Authenticator    *Reference                   `json:"authenticator,omitempty"`
	Custodian        *Reference                   `json:"custodian,omitempty"`
	RelatesTo        []DocumentReferenceRelatesTo `json:"relatesTo,omitempty"`
	Description      string                       `json:"description,omitempty"`
	SecurityLabel    []CodeableConcept            `json:"securityLabel,omitempty"`
	Content          []DocumentReferenceContent   `json:"content,omitempty"`
	Context          *DocumentReferenceContext    `json:"context,omitempty"`
}

// DocumentReferenceRelatesTo links to a document this one replaces,
// transforms, signs or appends to (DocumentReference.relatesTo).
type DocumentReferenceRelatesTo struct {
	Code   string     `json:"code,omitempty"`
	Target *Reference `json:"target,omitempty"`
}

// DocumentReferenceContent is the document itself and its format
// (DocumentReference.content).
type DocumentReferenceContent struct {
	Attachment *Attachment `json:"attachment,omitempty"`
	Format     *Coding     `json:"format,omitempty"`
}

// DocumentReferenceContext is the clinical context of the document
// (DocumentReference.context).
type DocumentReferenceContext struct {
	Encounter         []Reference       `json:"encounter,omitempty"`
	Event             []CodeableConcept `json:"event,omitempty"`
	Period            *Period           `json:"period,omitempty"`
	FacilityType      *CodeableConcept  `json:"facilityType,omitempty"`
	PracticeSetting   *CodeableConcept  `json:"practiceSetting,omitempty"`
	SourcePatientInfo *Reference        `json:"sourcePatientInfo,omitempty"`
	Related           []Reference       `json:"related,omitempty"`
}
