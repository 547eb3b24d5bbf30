// QuestionnaireResponse of FHIR R4 (questionnaireresponse.html): the answers
// a DTR app collects, with recursive items and answers.

package fhir

import "encoding/json"

// QuestionnaireResponse holds the answers to a Questionnaire
// (R4 questionnaireresponse.html). Note that in R4 identifier is a single
// Identifier, not a list.
type QuestionnaireResponse struct {
	ResourceType  string                      `json:"resourceType,omitempty"`
	ID            string                      `json:"id,omitempty"`
	Meta          *Meta                       `json:"meta,omitempty"`
	Text          *Narrative                  `json:"text,omitempty"`
	Contained     []json.RawMessage           `json:"contained,omitempty"`
	Extension     []Extension                 `json:"extension,omitempty"`
	Identifier    *Identifier                 `json:"identifier,omitempty"`
	BasedOn       []Reference                 `json:"basedOn,omitempty"`
	PartOf        []Reference                 `json:"partOf,omitempty"`
	Questionnaire string                      `json:"questionnaire,omitempty"`
	Status        string                      `json:"status,omitempty"`
	Subject       *Reference                  `json:"subject,omitempty"`
	Encounter     *Reference                  `json:"encounter,omitempty"`
	Authored      string                      `json:"authored,omitempty"`
	Author        *Reference                  `json:"author,omitempty"`
	Source        *Reference                  `json:"source,omitempty"`
	Item          []QuestionnaireResponseItem `json:"item,omitempty"`
}

// QuestionnaireResponseItem is the answer to one item, or a group of them
// (QuestionnaireResponse.item).
type QuestionnaireResponseItem struct {
	Extension  []Extension                       `json:"extension,omitempty"`
	LinkID     string                            `json:"linkId,omitempty"`
	Definition string                            `json:"definition,omitempty"`
	Text       string                            `json:"text,omitempty"`
	Answer     []QuestionnaireResponseItemAnswer `json:"answer,omitempty"`
	Item       []QuestionnaireResponseItem       `json:"item,omitempty"`
}

// QuestionnaireResponseItemAnswer is one answer value, with the items nested
// under it (QuestionnaireResponse.item.answer).
type QuestionnaireResponseItemAnswer struct {
	Extension       []Extension                 `json:"extension,omitempty"`
	ValueBoolean    *bool                       `json:"valueBoolean,omitempty"`
	ValueDecimal    *Decimal                    `json:"valueDecimal,omitempty"`
	ValueInteger    *int                        `json:"valueInteger,omitempty"`
	ValueDate       string                      `json:"valueDate,omitempty"`
	ValueDateTime   string                      `json:"valueDateTime,omitempty"`
	ValueTime       string                      `json:"valueTime,omitempty"`
	ValueString     string                      `json:"valueString,omitempty"`
	ValueURI        string                      `json:"valueUri,omitempty"`
	ValueAttachment *Attachment                 `json:"valueAttachment,omitempty"`
	ValueCoding     *Coding                     `json:"valueCoding,omitempty"`
	ValueQuantity   *Quantity                   `json:"valueQuantity,omitempty"`
	ValueReference  *Reference                  `json:"valueReference,omitempty"`
	Item            []QuestionnaireResponseItem `json:"item,omitempty"`
}
