// Questionnaire of FHIR R4 (questionnaire.html): the form a payer publishes
// for DTR, with the full recursive item structure (enableWhen, answerOption,
// initial, nested items, extensions such as SDC item controls and CQL
// expressions carried as Extension).

package fhir

import "encoding/json"

// Questionnaire is a structured set of questions (R4 questionnaire.html).
type Questionnaire struct {
	ResourceType string              `json:"resourceType,omitempty"`
	ID           string              `json:"id,omitempty"`
	Meta         *Meta               `json:"meta,omitempty"`
	Text         *Narrative          `json:"text,omitempty"`
	Contained    []json.RawMessage   `json:"contained,omitempty"`
	Extension    []Extension         `json:"extension,omitempty"`
	URL          string              `json:"url,omitempty"`
	Identifier   []Identifier        `json:"identifier,omitempty"`
	Version      string              `json:"version,omitempty"`
	Name         string              `json:"name,omitempty"`
	Title        string              `json:"title,omitempty"`
	DerivedFrom  []string            `json:"derivedFrom,omitempty"`
	Status       string              `json:"status,omitempty"`
	Experimental *bool               `json:"experimental,omitempty"`
	SubjectType  []string            `json:"subjectType,omitempty"`
	Date         string              `json:"date,omitempty"`
	Publisher    string              `json:"publisher,omitempty"`
	Description  string              `json:"description,omitempty"`
	Purpose      string              `json:"purpose,omitempty"`
	Code         []Coding            `json:"code,omitempty"`
	Item         []QuestionnaireItem `json:"item,omitempty"`
}

// QuestionnaireItem is a question, a group of questions or display text
// (Questionnaire.item), recursive through Item.
type QuestionnaireItem struct {
	Extension      []Extension                     `json:"extension,omitempty"`
	LinkID         string                          `json:"linkId,omitempty"`
	Definition     string                          `json:"definition,omitempty"`
	Code           []Coding                        `json:"code,omitempty"`
	Prefix         string                          `json:"prefix,omitempty"`
	Text           string                          `json:"text,omitempty"`
	Type           string                          `json:"type,omitempty"`
	EnableWhen     []QuestionnaireItemEnableWhen   `json:"enableWhen,omitempty"`
	EnableBehavior string                          `json:"enableBehavior,omitempty"`
	Required       *bool                           `json:"required,omitempty"`
	Repeats        *bool                           `json:"repeats,omitempty"`
	ReadOnly       *bool                           `json:"readOnly,omitempty"`
	MaxLength      *int                            `json:"maxLength,omitempty"`
	AnswerValueSet string                          `json:"answerValueSet,omitempty"`
	AnswerOption   []QuestionnaireItemAnswerOption `json:"answerOption,omitempty"`
	Initial        []QuestionnaireItemInitial      `json:"initial,omitempty"`
	Item           []QuestionnaireItem             `json:"item,omitempty"`
}

// QuestionnaireItemEnableWhen shows an item only when another item's answer
// compares to answer[x] (Questionnaire.item.enableWhen).
type QuestionnaireItemEnableWhen struct {
	Question        string     `json:"question,omitempty"`
	Operator        string     `json:"operator,omitempty"`
	AnswerBoolean   *bool      `json:"answerBoolean,omitempty"`
	AnswerDecimal   *Decimal   `json:"answerDecimal,omitempty"`
	AnswerInteger   *int       `json:"answerInteger,omitempty"`
	AnswerDate      string     `json:"answerDate,omitempty"`
	AnswerDateTime  string     `json:"answerDateTime,omitempty"`
	AnswerTime      string     `json:"answerTime,omitempty"`
	AnswerString    string     `json:"answerString,omitempty"`
	AnswerCoding    *Coding    `json:"answerCoding,omitempty"`
	AnswerQuantity  *Quantity  `json:"answerQuantity,omitempty"`
	AnswerReference *Reference `json:"answerReference,omitempty"`
}

// QuestionnaireItemAnswerOption is a permitted answer (Questionnaire.item.answerOption).
type QuestionnaireItemAnswerOption struct {
	Extension       []Extension `json:"extension,omitempty"`
	ValueInteger    *int        `json:"valueInteger,omitempty"`
	ValueDate       string      `json:"valueDate,omitempty"`
	ValueTime       string      `json:"valueTime,omitempty"`
	ValueString     string      `json:"valueString,omitempty"`
	ValueCoding     *Coding     `json:"valueCoding,omitempty"`
	ValueReference  *Reference  `json:"valueReference,omitempty"`
	InitialSelected *bool       `json:"initialSelected,omitempty"`
}

// QuestionnaireItemInitial is an answer filled in before the user starts
// (Questionnaire.item.initial).
type QuestionnaireItemInitial struct {
	ValueBoolean    *bool       `json:"valueBoolean,omitempty"`
	ValueDecimal    *Decimal    `json:"valueDecimal,omitempty"`
	ValueInteger    *int        `json:"valueInteger,omitempty"`
	ValueDate       string      `json:"valueDate,omitempty"`
	ValueDateTime   string      `json:"valueDateTime,omitempty"`
	ValueTime       string      `json:"valueTime,omitempty"`
	ValueString     string      `json:"valueString,omitempty"`
	ValueURI        string      `json:"valueUri,omitempty"`
	ValueAttachment *Attachment `json:"valueAttachment,omitempty"`
	ValueCoding     *Coding     `json:"valueCoding,omitempty"`
	ValueQuantity   *Quantity   `json:"valueQuantity,omitempty"`
	ValueReference  *Reference  `json:"valueReference,omitempty"`
}
