// OperationOutcome of FHIR R4 (operationoutcome.html) and the HTTP writers
// every FHIR endpoint uses: errors are answered as an OperationOutcome
// (R4 http.html#summary: "an OperationOutcome SHOULD be returned"), with the
// FHIR JSON media type (R4 http.html#mime-type).

package fhir

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// ContentType is the FHIR JSON media type (R4 http.html#mime-type).
const ContentType = "application/fhir+json"

// contentTypeHeader is what the writers put in Content-Type.
const contentTypeHeader = ContentType + "; charset=utf-8"

// Issue severities (http://hl7.org/fhir/issue-severity).
const (
	SeverityFatal       = "fatal"
	SeverityError       = "error"
	SeverityWarning     = "warning"
	SeverityInformation = "information"
)

// Issue types (http://hl7.org/fhir/issue-type), the value of
// OperationOutcome.issue.code.
const (
	IssueInvalid         = "invalid"
	IssueStructure       = "structure"
	IssueRequired        = "required"
	IssueValue           = "value"
	IssueInvariant       = "invariant"
	IssueSecurity        = "security"
	IssueLogin           = "login"
	IssueUnknown         = "unknown"
	IssueExpired         = "expired"
	IssueForbidden       = "forbidden"
	IssueSuppressed      = "suppressed"
	IssueProcessing      = "processing"
	IssueNotSupported    = "not-supported"
	IssueDuplicate       = "duplicate"
	IssueMultipleMatches = "multiple-matches"
	IssueNotFound        = "not-found"
	IssueDeleted         = "deleted"
	IssueTooLong         = "too-long"
	IssueCodeInvalid     = "code-invalid"
	IssueExtension       = "extension"
	IssueTooCostly       = "too-costly"
	IssueBusinessRule    = "business-rule"
	IssueConflict        = "conflict"
	IssueTransient       = "transient"
	IssueLockError       = "lock-error"
	IssueNoStore         = "no-store"
	IssueException       = "exception"
	IssueTimeout         = "timeout"
	IssueIncomplete      = "incomplete"
	IssueThrottled       = "throttled"
	IssueInformational   = "informational"
)

// OperationOutcome is a set of errors, warnings or information messages
// about an action (R4 operationoutcome.html).
type OperationOutcome struct {
	ResourceType string                  `json:"resourceType,omitempty"`
	ID           string                  `json:"id,omitempty"`
	Meta         *Meta                   `json:"meta,omitempty"`
	Text         *Narrative              `json:"text,omitempty"`
	Contained    []json.RawMessage       `json:"contained,omitempty"`
	Extension    []Extension             `json:"extension,omitempty"`
	Issue        []OperationOutcomeIssue `json:"issue,omitempty"`
}

// OperationOutcomeIssue is one issue (OperationOutcome.issue). Location is
// deprecated in R4 in favour of Expression (FHIRPath).
type OperationOutcomeIssue struct {
	Extension   []Extension      `json:"extension,omitempty"`
	Severity    string           `json:"severity,omitempty"`
	Code        string           `json:"code,omitempty"`
	Details     *CodeableConcept `json:"details,omitempty"`
	Diagnostics string           `json:"diagnostics,omitempty"`
	Location    []string         `json:"location,omitempty"`
	Expression  []string         `json:"expression,omitempty"`
}

// ValidSeverity reports whether s is in http://hl7.org/fhir/issue-severity.
func ValidSeverity(s string) bool {
	switch s {
	case SeverityFatal, SeverityError, SeverityWarning, SeverityInformation:
		return true
	}
	return false
}

// ValidIssueType reports whether code is in http://hl7.org/fhir/issue-type.
func ValidIssueType(code string) bool {
	switch code {
	case IssueInvalid, IssueStructure, IssueRequired, IssueValue, IssueInvariant,
		IssueSecurity, IssueLogin, IssueUnknown, IssueExpired, IssueForbidden,
		IssueSuppressed, IssueProcessing, IssueNotSupported, IssueDuplicate,
		IssueMultipleMatches, IssueNotFound, IssueDeleted, IssueTooLong,
		IssueCodeInvalid, IssueExtension, IssueTooCostly, IssueBusinessRule,
		IssueConflict, IssueTransient, IssueLockError, IssueNoStore,
		IssueException, IssueTimeout, IssueIncomplete, IssueThrottled,
		IssueInformational:
		return true
	}
	return false
}

// NewOutcome returns an OperationOutcome with one issue. Both severity and
// code are required by R4 and bound to required value sets, so a value
// outside them (a programming error) is replaced rather than sent: an
// unknown severity becomes "error" and an unknown code "processing"; the
// original is kept at the front of diagnostics so the mistake stays visible.
func NewOutcome(severity, code, diagnostics string) *OperationOutcome {
	if !ValidSeverity(severity) {
		diagnostics = "(invalid severity " + strconv.Quote(severity) + ") " + diagnostics
		severity = SeverityError
	}
	if !ValidIssueType(code) {
		diagnostics = "(invalid issue code " + strconv.Quote(code) + ") " + diagnostics
		code = IssueProcessing
	}
	return &OperationOutcome{
		ResourceType: "OperationOutcome",
		Issue: []OperationOutcomeIssue{{
			Severity:    severity,
			Code:        code,
			Diagnostics: diagnostics,
		}},
	}
}

// WriteOutcome answers with status and an OperationOutcome holding one issue
// with the given issue-type code and diagnostics. The severity is "error"
// for 4xx and 5xx statuses and "information" otherwise. Diagnostics is shown
// to the caller: put a hint there, never a stack trace or a secret. Set any
// other header (WWW-Authenticate on a 401, for example) before calling.
func WriteOutcome(w http.ResponseWriter, status int, code, diagnostics string) {
	severity := SeverityInformation
	if status >= 400 {
		severity = SeverityError
	}
	WriteJSON(w, status, NewOutcome(severity, code, diagnostics))
}

// WriteResource answers with status and body, a FHIR JSON resource already
// encoded (for example a stored body, returned verbatim).
func WriteResource(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentTypeHeader)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// WriteJSON encodes v and answers with status and the FHIR JSON media type.
// If v cannot be encoded (a server bug, such as an invalid Decimal) it
// answers 500 with an "exception" OperationOutcome instead.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		body, _ = json.Marshal(NewOutcome(SeverityFatal, IssueException, "the server could not encode its response"))
		status = http.StatusInternalServerError
	}
	WriteResource(w, status, body)
}
