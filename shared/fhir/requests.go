// Request resources of FHIR R4 that stand for the orders DTR documents:
// ServiceRequest (servicerequest.html), DeviceRequest (devicerequest.html)
// and MedicationRequest (medicationrequest.html), with the elements the
// sandbox uses.

package fhir

import "encoding/json"

// ServiceRequest is an order for a procedure or service (R4 servicerequest.html).
type ServiceRequest struct {
	ResourceType          string            `json:"resourceType,omitempty"`
	ID                    string            `json:"id,omitempty"`
	Meta                  *Meta             `json:"meta,omitempty"`
	Text                  *Narrative        `json:"text,omitempty"`
	Contained             []json.RawMessage `json:"contained,omitempty"`
	Extension             []Extension       `json:"extension,omitempty"`
	Identifier            []Identifier      `json:"identifier,omitempty"`
	InstantiatesCanonical []string          `json:"instantiatesCanonical,omitempty"`
	BasedOn               []Reference       `json:"basedOn,omitempty"`
	Replaces              []Reference       `json:"replaces,omitempty"`
	Requisition           *Identifier       `json:"requisition,omitempty"`
	Status                string            `json:"status,omitempty"`
	Intent                string            `json:"intent,omitempty"`
	Category              []CodeableConcept `json:"category,omitempty"`
	Priority              string            `json:"priority,omitempty"`
	DoNotPerform          *bool             `json:"doNotPerform,omitempty"`
	Code                  *CodeableConcept  `json:"code,omitempty"`
	OrderDetail           []CodeableConcept `json:"orderDetail,omitempty"`
	QuantityQuantity      *Quantity         `json:"quantityQuantity,omitempty"`
	Subject               *Reference        `json:"subject,omitempty"`
	Encounter             *Reference        `json:"encounter,omitempty"`
	OccurrenceDateTime    string            `json:"occurrenceDateTime,omitempty"`
	OccurrencePeriod      *Period           `json:"occurrencePeriod,omitempty"`
	AuthoredOn            string            `json:"authoredOn,omitempty"`
	Requester             *Reference        `json:"requester,omitempty"`
	PerformerType         *CodeableConcept  `json:"performerType,omitempty"`
	Performer             []Reference       `json:"performer,omitempty"`
	ReasonCode            []CodeableConcept `json:"reasonCode,omitempty"`
	ReasonReference       []Reference       `json:"reasonReference,omitempty"`
	Insurance             []Reference       `json:"insurance,omitempty"`
	SupportingInfo        []Reference       `json:"supportingInfo,omitempty"`
	Note                  []Annotation      `json:"note,omitempty"`
}

// DeviceRequest is an order for a device such as home oxygen or a CPAP
// (R4 devicerequest.html).
type DeviceRequest struct {
	ResourceType          string                   `json:"resourceType,omitempty"`
	ID                    string                   `json:"id,omitempty"`
	Meta                  *Meta                    `json:"meta,omitempty"`
	Text                  *Narrative               `json:"text,omitempty"`
	Contained             []json.RawMessage        `json:"contained,omitempty"`
	Extension             []Extension              `json:"extension,omitempty"`
	Identifier            []Identifier             `json:"identifier,omitempty"`
	InstantiatesCanonical []string                 `json:"instantiatesCanonical,omitempty"`
	BasedOn               []Reference              `json:"basedOn,omitempty"`
	PriorRequest          []Reference              `json:"priorRequest,omitempty"`
	GroupIdentifier       *Identifier              `json:"groupIdentifier,omitempty"`
	Status                string                   `json:"status,omitempty"`
	Intent                string                   `json:"intent,omitempty"`
	Priority              string                   `json:"priority,omitempty"`
	CodeReference         *Reference               `json:"codeReference,omitempty"`
	CodeCodeableConcept   *CodeableConcept         `json:"codeCodeableConcept,omitempty"`
	Parameter             []DeviceRequestParameter `json:"parameter,omitempty"`
	Subject               *Reference               `json:"subject,omitempty"`
	Encounter             *Reference               `json:"encounter,omitempty"`
	OccurrenceDateTime    string                   `json:"occurrenceDateTime,omitempty"`
	OccurrencePeriod      *Period                  `json:"occurrencePeriod,omitempty"`
	AuthoredOn            string                   `json:"authoredOn,omitempty"`
	Requester             *Reference               `json:"requester,omitempty"`
	PerformerType         *CodeableConcept         `json:"performerType,omitempty"`
	Performer             *Reference               `json:"performer,omitempty"`
	ReasonCode            []CodeableConcept        `json:"reasonCode,omitempty"`
	ReasonReference       []Reference              `json:"reasonReference,omitempty"`
	Insurance             []Reference              `json:"insurance,omitempty"`
	SupportingInfo        []Reference              `json:"supportingInfo,omitempty"`
	Note                  []Annotation             `json:"note,omitempty"`
}

// DeviceRequestParameter is a device setting such as a flow rate
// (DeviceRequest.parameter).
type DeviceRequestParameter struct {
	Code                 *CodeableConcept `json:"code,omitempty"`
	ValueCodeableConcept *CodeableConcept `json:"valueCodeableConcept,omitempty"`
	ValueQuantity        *Quantity        `json:"valueQuantity,omitempty"`
	ValueRange           *Range           `json:"valueRange,omitempty"`
	ValueBoolean         *bool            `json:"valueBoolean,omitempty"`
}

// MedicationRequest is a medication order (R4 medicationrequest.html).
type MedicationRequest struct {
	ResourceType              string                            `json:"resourceType,omitempty"`
	ID                        string                            `json:"id,omitempty"`
	Meta                      *Meta                             `json:"meta,omitempty"`
	Text                      *Narrative                        `json:"text,omitempty"`
	Contained                 []json.RawMessage                 `json:"contained,omitempty"`
	Extension                 []Extension                       `json:"extension,omitempty"`
	Identifier                []Identifier                      `json:"identifier,omitempty"`
	Status                    string                            `json:"status,omitempty"`
	StatusReason              *CodeableConcept                  `json:"statusReason,omitempty"`
	Intent                    string                            `json:"intent,omitempty"`
	Category                  []CodeableConcept                 `json:"category,omitempty"`
	Priority                  string                            `json:"priority,omitempty"`
	DoNotPerform              *bool                             `json:"doNotPerform,omitempty"`
	ReportedBoolean           *bool                             `json:"reportedBoolean,omitempty"`
	MedicationCodeableConcept *CodeableConcept                  `json:"medicationCodeableConcept,omitempty"`
	MedicationReference       *Reference                        `json:"medicationReference,omitempty"`
	Subject                   *Reference                        `json:"subject,omitempty"`
	Encounter                 *Reference                        `json:"encounter,omitempty"`
	SupportingInformation     []Reference                       `json:"supportingInformation,omitempty"`
	AuthoredOn                string                            `json:"authoredOn,omitempty"`
	Requester                 *Reference                        `json:"requester,omitempty"`
	Performer                 *Reference                        `json:"performer,omitempty"`
	ReasonCode                []CodeableConcept                 `json:"reasonCode,omitempty"`
	ReasonReference           []Reference                       `json:"reasonReference,omitempty"`
	InstantiatesCanonical     []string                          `json:"instantiatesCanonical,omitempty"`
	BasedOn                   []Reference                       `json:"basedOn,omitempty"`
	GroupIdentifier           *Identifier                       `json:"groupIdentifier,omitempty"`
	Insurance                 []Reference                       `json:"insurance,omitempty"`
	Note                      []Annotation                      `json:"note,omitempty"`
	DosageInstruction         []Dosage                          `json:"dosageInstruction,omitempty"`
	DispenseRequest           *MedicationRequestDispenseRequest `json:"dispenseRequest,omitempty"`
}

// MedicationRequestDispenseRequest is what the pharmacy is to supply
// (MedicationRequest.dispenseRequest).
type MedicationRequestDispenseRequest struct {
	ValidityPeriod         *Period   `json:"validityPeriod,omitempty"`
	NumberOfRepeatsAllowed *int      `json:"numberOfRepeatsAllowed,omitempty"`
	Quantity               *Quantity `json:"quantity,omitempty"`
	ExpectedSupplyDuration *Quantity `json:"expectedSupplyDuration,omitempty"`
}

// Dosage is how a medication is to be taken (R4 dosage.html).
type Dosage struct {
	Sequence              *int              `json:"sequence,omitempty"`
	Text                  string            `json:"text,omitempty"`
	PatientInstruction    string            `json:"patientInstruction,omitempty"`
	Timing                *Timing           `json:"timing,omitempty"`
	AsNeededBoolean       *bool             `json:"asNeededBoolean,omitempty"`
	Route                 *CodeableConcept  `json:"route,omitempty"`
	DoseAndRate           []DosageDoseRate  `json:"doseAndRate,omitempty"`
	MaxDosePerPeriod      *Ratio            `json:"maxDosePerPeriod,omitempty"`
	AdditionalInstruction []CodeableConcept `json:"additionalInstruction,omitempty"`
}

// DosageDoseRate is an amount of medication per dose or per time (Dosage.doseAndRate).
type DosageDoseRate struct {
	Type         *CodeableConcept `json:"type,omitempty"`
	DoseQuantity *Quantity        `json:"doseQuantity,omitempty"`
	DoseRange    *Range           `json:"doseRange,omitempty"`
	RateQuantity *Quantity        `json:"rateQuantity,omitempty"`
}
