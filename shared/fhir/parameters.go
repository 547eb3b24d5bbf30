// Parameters of FHIR R4 (parameters.html): operation input and output, such
// as DTR's $questionnaire-package.

package fhir

import "encoding/json"

// Parameters carries operation parameters (R4 parameters.html). Parameters
// is a Resource, not a DomainResource: it has no text, extension or contained.
type Parameters struct {
	ResourceType string                `json:"resourceType,omitempty"`
	ID           string                `json:"id,omitempty"`
	Meta         *Meta                 `json:"meta,omitempty"`
	Parameter    []ParametersParameter `json:"parameter,omitempty"`
}

// ParametersParameter is one named parameter holding a value[x], a resource
// (raw JSON; decode it with Decode) or parts (Parameters.parameter).
type ParametersParameter struct {
	Name                 string                `json:"name,omitempty"`
	ValueString          string                `json:"valueString,omitempty"`
	ValueCode            string                `json:"valueCode,omitempty"`
	ValueID              string                `json:"valueId,omitempty"`
	ValueBoolean         *bool                 `json:"valueBoolean,omitempty"`
	ValueInteger         *int                  `json:"valueInteger,omitempty"`
	ValueDecimal         *Decimal              `json:"valueDecimal,omitempty"`
	ValueURI             string                `json:"valueUri,omitempty"`
	ValueURL             string                `json:"valueUrl,omitempty"`
	ValueCanonical       string                `json:"valueCanonical,omitempty"`
	ValueDateTime        string                `json:"valueDateTime,omitempty"`
	ValueDate            string                `json:"valueDate,omitempty"`
	ValueInstant         string                `json:"valueInstant,omitempty"`
	ValueReference       *Reference            `json:"valueReference,omitempty"`
	ValueCoding          *Coding               `json:"valueCoding,omitempty"`
	ValueCodeableConcept *CodeableConcept      `json:"valueCodeableConcept,omitempty"`
	ValueIdentifier      *Identifier           `json:"valueIdentifier,omitempty"`
	ValuePeriod          *Period               `json:"valuePeriod,omitempty"`
	ValueQuantity        *Quantity             `json:"valueQuantity,omitempty"`
	ValueAttachment      *Attachment           `json:"valueAttachment,omitempty"`
	Resource             json.RawMessage       `json:"resource,omitempty"`
	Part                 []ParametersParameter `json:"part,omitempty"`
}
