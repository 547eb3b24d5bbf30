// Datatypes of FHIR R4 (http://hl7.org/fhir/R4/datatypes.html: the
// general-purpose complex types and the decimal primitive), plus Meta
// (resource.html#Meta), Reference (references.html), Narrative
// (narrative.html) and Extension (extensibility.html): the subset of elements
// the sandbox reads and writes.

package fhir

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Decimal is a FHIR decimal (R4 datatypes.html#decimal). It keeps the JSON
// number text exactly as received, because FHIR gives precision meaning:
// 1.50 and 1.5 are different values, and a float64 would merge them.
// Decoding accepts only a JSON number (FHIR forbids quoted decimals).
type Decimal string

// DecimalOf formats f as the shortest decimal that reads back as f.
func DecimalOf(f float64) *Decimal {
	d := Decimal(strconv.FormatFloat(f, 'f', -1, 64))
	return &d
}

// Float64 returns the value as a float64 (losing precision information).
func (d Decimal) Float64() (float64, error) {
	return strconv.ParseFloat(string(d), 64)
}

// MarshalJSON writes the number text as is, after checking it is a JSON number.
func (d Decimal) MarshalJSON() ([]byte, error) {
	if !isJSONNumber(string(d)) {
		return nil, fmt.Errorf("fhir: decimal %q is not a JSON number", string(d))
	}
	return []byte(d), nil
}

// UnmarshalJSON accepts a JSON number literal only.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	if !isJSONNumber(string(b)) {
		return errors.New("fhir: a decimal must be a JSON number")
	}
	*d = Decimal(b)
	return nil
}

// isJSONNumber reports whether s is exactly one JSON number (RFC 8259 §6).
func isJSONNumber(s string) bool {
	if s == "" || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
		return false
	}
	return json.Valid([]byte(s))
}

// Meta is resource metadata (R4 resource.html#Meta).
type Meta struct {
	VersionID   string   `json:"versionId,omitempty"`
	LastUpdated string   `json:"lastUpdated,omitempty"`
	Source      string   `json:"source,omitempty"`
	Profile     []string `json:"profile,omitempty"`
	Security    []Coding `json:"security,omitempty"`
	Tag         []Coding `json:"tag,omitempty"`
}

// Extension is an extension (R4 extensibility.html)
// with the value[x] types the sandbox uses, and nested extensions for
// complex extensions.
type Extension struct {
	URL                  string           `json:"url,omitempty"`
	ValueString          string           `json:"valueString,omitempty"`
	ValueCode            string           `json:"valueCode,omitempty"`
	ValueBoolean         *bool            `json:"valueBoolean,omitempty"`
	ValueInteger         *int             `json:"valueInteger,omitempty"`
	ValueDecimal         *Decimal         `json:"valueDecimal,omitempty"`
	ValueURI             string           `json:"valueUri,omitempty"`
	ValueURL             string           `json:"valueUrl,omitempty"`
	ValueCanonical       string           `json:"valueCanonical,omitempty"`
	ValueDateTime        string           `json:"valueDateTime,omitempty"`
	ValueDate            string           `json:"valueDate,omitempty"`
	ValueReference       *Reference       `json:"valueReference,omitempty"`
	ValueCoding          *Coding          `json:"valueCoding,omitempty"`
	ValueCodeableConcept *CodeableConcept `json:"valueCodeableConcept,omitempty"`
	ValuePeriod          *Period          `json:"valuePeriod,omitempty"`
	Extension            []Extension      `json:"extension,omitempty"`
}

// Coding is a code from a code system (R4 datatypes.html#Coding).
type Coding struct {
	System       string `json:"system,omitempty"`
	Version      string `json:"version,omitempty"`
	Code         string `json:"code,omitempty"`
	Display      string `json:"display,omitempty"`
	UserSelected *bool  `json:"userSelected,omitempty"`
}

// CodeableConcept is a concept as codings and/or text (R4 datatypes.html#CodeableConcept).
type CodeableConcept struct {
	Coding []Coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

// Identifier is a business identifier (R4 datatypes.html#Identifier).
type Identifier struct {
	Use      string           `json:"use,omitempty"`
	Type     *CodeableConcept `json:"type,omitempty"`
	System   string           `json:"system,omitempty"`
	Value    string           `json:"value,omitempty"`
	Period   *Period          `json:"period,omitempty"`
	Assigner *Reference       `json:"assigner,omitempty"`
}

// Reference points at another resource (R4 references.html): a literal
// reference, a logical one (identifier), or both, with an optional display.
type Reference struct {
	Reference  string      `json:"reference,omitempty"`
	Type       string      `json:"type,omitempty"`
	Identifier *Identifier `json:"identifier,omitempty"`
	Display    string      `json:"display,omitempty"`
}

// HumanName is a person's name (R4 datatypes.html#HumanName).
type HumanName struct {
	Use    string   `json:"use,omitempty"`
	Text   string   `json:"text,omitempty"`
	Family string   `json:"family,omitempty"`
	Given  []string `json:"given,omitempty"`
	Prefix []string `json:"prefix,omitempty"`
	Suffix []string `json:"suffix,omitempty"`
	Period *Period  `json:"period,omitempty"`
}

// ContactPoint is a phone number, email address and the like (R4 datatypes.html#ContactPoint).
type ContactPoint struct {
	System string  `json:"system,omitempty"`
	Value  string  `json:"value,omitempty"`
	Use    string  `json:"use,omitempty"`
	Rank   *int    `json:"rank,omitempty"`
	Period *Period `json:"period,omitempty"`
}

// Address is a postal or physical address (R4 datatypes.html#Address).
type Address struct {
	Use        string   `json:"use,omitempty"`
	Type       string   `json:"type,omitempty"`
	Text       string   `json:"text,omitempty"`
	Line       []string `json:"line,omitempty"`
	City       string   `json:"city,omitempty"`
	District   string   `json:"district,omitempty"`
	State      string   `json:"state,omitempty"`
	PostalCode string   `json:"postalCode,omitempty"`
	Country    string   `json:"country,omitempty"`
	Period     *Period  `json:"period,omitempty"`
}

// Period is a time range (R4 datatypes.html#Period); start and end are FHIR dateTimes.
type Period struct {
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

// Quantity is a measured amount (R4 datatypes.html#Quantity); also used for the
// Duration and SimpleQuantity profiles.
type Quantity struct {
	Value      *Decimal `json:"value,omitempty"`
	Comparator string   `json:"comparator,omitempty"`
	Unit       string   `json:"unit,omitempty"`
	System     string   `json:"system,omitempty"`
	Code       string   `json:"code,omitempty"`
}

// Range is a low and high quantity (R4 datatypes.html#Range).
type Range struct {
	Low  *Quantity `json:"low,omitempty"`
	High *Quantity `json:"high,omitempty"`
}

// Attachment is content in another format (R4 datatypes.html#Attachment). Data is
// base64 (standard alphabet, with padding) as it appears in the JSON.
type Attachment struct {
	ContentType string `json:"contentType,omitempty"`
	Language    string `json:"language,omitempty"`
	Data        string `json:"data,omitempty"`
	URL         string `json:"url,omitempty"`
	Size        *int   `json:"size,omitempty"`
	Hash        string `json:"hash,omitempty"`
	Title       string `json:"title,omitempty"`
	Creation    string `json:"creation,omitempty"`
}

// Annotation is a text note with its author and time (R4 datatypes.html#Annotation).
type Annotation struct {
	AuthorReference *Reference `json:"authorReference,omitempty"`
	AuthorString    string     `json:"authorString,omitempty"`
	Time            string     `json:"time,omitempty"`
	Text            string     `json:"text,omitempty"`
}

// Narrative is the human-readable summary of a resource (R4
// narrative.html#Narrative); Div is the XHTML fragment as a string.
type Narrative struct {
	Status string `json:"status,omitempty"`
	Div    string `json:"div,omitempty"`
}

// Ratio is a numerator over a denominator (R4 datatypes.html#Ratio).
type Ratio struct {
	Numerator   *Quantity `json:"numerator,omitempty"`
	Denominator *Quantity `json:"denominator,omitempty"`
}

// Timing is when an event is to happen (R4 datatypes.html#Timing).
type Timing struct {
	Event  []string         `json:"event,omitempty"`
	Repeat *TimingRepeat    `json:"repeat,omitempty"`
	Code   *CodeableConcept `json:"code,omitempty"`
}

// TimingRepeat is a repeating schedule (Timing.repeat).
type TimingRepeat struct {
	BoundsPeriod *Period  `json:"boundsPeriod,omitempty"`
	Count        *int     `json:"count,omitempty"`
	Frequency    *int     `json:"frequency,omitempty"`
	Period       *Decimal `json:"period,omitempty"`
	PeriodUnit   string   `json:"periodUnit,omitempty"`
	DayOfWeek    []string `json:"dayOfWeek,omitempty"`
	TimeOfDay    []string `json:"timeOfDay,omitempty"`
	When         []string `json:"when,omitempty"`
}
