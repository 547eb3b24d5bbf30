// Administrative resources of FHIR R4 the EHR serves and the payer receives:
// Patient (patient.html), Practitioner (practitioner.html), Organization
// (organization.html), Coverage (coverage.html) and Encounter
// (encounter.html), with the elements the sandbox uses.

package fhir

import "encoding/json"

// Patient is a person receiving care (R4 patient.html).
type Patient struct {
	ResourceType         string                 `json:"resourceType,omitempty"`
	ID                   string                 `json:"id,omitempty"`
	Meta                 *Meta                  `json:"meta,omitempty"`
	Text                 *Narrative             `json:"text,omitempty"`
	Contained            []json.RawMessage      `json:"contained,omitempty"`
	Extension            []Extension            `json:"extension,omitempty"`
	Identifier           []Identifier           `json:"identifier,omitempty"`
	Active               *bool                  `json:"active,omitempty"`
	Name                 []HumanName            `json:"name,omitempty"`
	Telecom              []ContactPoint         `json:"telecom,omitempty"`
	Gender               string                 `json:"gender,omitempty"`
	BirthDate            string                 `json:"birthDate,omitempty"`
	DeceasedBoolean      *bool                  `json:"deceasedBoolean,omitempty"`
	DeceasedDateTime     string                 `json:"deceasedDateTime,omitempty"`
	Address              []Address              `json:"address,omitempty"`
	MaritalStatus        *CodeableConcept       `json:"maritalStatus,omitempty"`
	Communication        []PatientCommunication `json:"communication,omitempty"`
	GeneralPractitioner  []Reference            `json:"generalPractitioner,omitempty"`
	ManagingOrganization *Reference             `json:"managingOrganization,omitempty"`
}

// PatientCommunication is a language the patient speaks (Patient.communication).
type PatientCommunication struct {
	Language  *CodeableConcept `json:"language,omitempty"`
	Preferred *bool            `json:"preferred,omitempty"`
}

// Practitioner is a person providing care (R4 practitioner.html).
type Practitioner struct {
	ResourceType  string                      `json:"resourceType,omitempty"`
	ID            string                      `json:"id,omitempty"`
	Meta          *Meta                       `json:"meta,omitempty"`
	Text          *Narrative                  `json:"text,omitempty"`
	Contained     []json.RawMessage           `json:"contained,omitempty"`
	Extension     []Extension                 `json:"extension,omitempty"`
	Identifier    []Identifier                `json:"identifier,omitempty"`
	Active        *bool                       `json:"active,omitempty"`
	Name          []HumanName                 `json:"name,omitempty"`
	Telecom       []ContactPoint              `json:"telecom,omitempty"`
	Address       []Address                   `json:"address,omitempty"`
	Gender        string                      `json:"gender,omitempty"`
	BirthDate     string                      `json:"birthDate,omitempty"`
	Qualification []PractitionerQualification `json:"qualification,omitempty"`
}

// PractitionerQualification is a licence or certification (Practitioner.qualification).
type PractitionerQualification struct {
	Identifier []Identifier     `json:"identifier,omitempty"`
	Code       *CodeableConcept `json:"code,omitempty"`
	Period     *Period          `json:"period,omitempty"`
	Issuer     *Reference       `json:"issuer,omitempty"`
}

// Organization is a provider organisation or a payer (R4 organization.html).
type Organization struct {
	ResourceType string            `json:"resourceType,omitempty"`
	ID           string            `json:"id,omitempty"`
	Meta         *Meta             `json:"meta,omitempty"`
	Text         *Narrative        `json:"text,omitempty"`
	Contained    []json.RawMessage `json:"contained,omitempty"`
	Extension    []Extension       `json:"extension,omitempty"`
	Identifier   []Identifier      `json:"identifier,omitempty"`
	Active       *bool             `json:"active,omitempty"`
	Type         []CodeableConcept `json:"type,omitempty"`
	Name         string            `json:"name,omitempty"`
	Alias        []string          `json:"alias,omitempty"`
	Telecom      []ContactPoint    `json:"telecom,omitempty"`
	Address      []Address         `json:"address,omitempty"`
	PartOf       *Reference        `json:"partOf,omitempty"`
}

// Coverage is the insurance plan that may pay for an order (R4 coverage.html).
type Coverage struct {
	ResourceType string            `json:"resourceType,omitempty"`
	ID           string            `json:"id,omitempty"`
	Meta         *Meta             `json:"meta,omitempty"`
	Text         *Narrative        `json:"text,omitempty"`
	Contained    []json.RawMessage `json:"contained,omitempty"`
	Extension    []Extension       `json:"extension,omitempty"`
	Identifier   []Identifier      `json:"identifier,omitempty"`
	Status       string            `json:"status,omitempty"`
	Type         *CodeableConcept  `json:"type,omitempty"`
	PolicyHolder *Reference        `json:"policyHolder,omitempty"`
	Subscriber   *Reference        `json:"subscriber,omitempty"`
	SubscriberID string            `json:"subscriberId,omitempty"`
	Beneficiary  *Reference        `json:"beneficiary,omitempty"`
	Dependent    string            `json:"dependent,omitempty"`
	Relationship *CodeableConcept  `json:"relationship,omitempty"`
	Period       *Period           `json:"period,omitempty"`
	Payor        []Reference       `json:"payor,omitempty"`
	Class        []CoverageClass   `json:"class,omitempty"`
	Order        *int              `json:"order,omitempty"`
	Network      string            `json:"network,omitempty"`
	Subrogation  *bool             `json:"subrogation,omitempty"`
}

// CoverageClass is a plan, group or similar classification (Coverage.class).
type CoverageClass struct {
	Type  *CodeableConcept `json:"type,omitempty"`
	Value string           `json:"value,omitempty"`
	Name  string           `json:"name,omitempty"`
}

// Encounter is a visit during which an order is placed (R4 encounter.html).
type Encounter struct {
	ResourceType    string                 `json:"resourceType,omitempty"`
	ID              string                 `json:"id,omitempty"`
	Meta            *Meta                  `json:"meta,omitempty"`
	Text            *Narrative             `json:"text,omitempty"`
	Contained       []json.RawMessage      `json:"contained,omitempty"`
	Extension       []Extension            `json:"extension,omitempty"`
	Identifier      []Identifier           `json:"identifier,omitempty"`
	Status          string                 `json:"status,omitempty"`
	Class           *Coding                `json:"class,omitempty"`
	Type            []CodeableConcept      `json:"type,omitempty"`
	ServiceType     *CodeableConcept       `json:"serviceType,omitempty"`
	Priority        *CodeableConcept       `json:"priority,omitempty"`
	Subject         *Reference             `json:"subject,omitempty"`
	Participant     []EncounterParticipant `json:"participant,omitempty"`
	Period          *Period                `json:"period,omitempty"`
	ReasonCode      []CodeableConcept      `json:"reasonCode,omitempty"`
	ReasonReference []Reference            `json:"reasonReference,omitempty"`
	Location        []EncounterLocation    `json:"location,omitempty"`
	ServiceProvider *Reference             `json:"serviceProvider,omitempty"`
}

// EncounterParticipant is a person involved in the encounter (Encounter.participant).
type EncounterParticipant struct {
	Type       []CodeableConcept `json:"type,omitempty"`
	Period     *Period           `json:"period,omitempty"`
	Individual *Reference        `json:"individual,omitempty"`
}

// EncounterLocation is a place the patient was during the encounter (Encounter.location).
type EncounterLocation struct {
	Location *Reference `json:"location,omitempty"`
	Status   string     `json:"status,omitempty"`
	Period   *Period    `json:"period,omitempty"`
}
