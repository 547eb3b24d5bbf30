package payer

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"dtrsandbox/shared/fhir"
)

// Error is a payer request that did not succeed: the payer answered an
// error, or could not be reached (Status 0). Message is written for the
// user; Outcome is the payer's OperationOutcome when it sent one; Cause is
// for the log.
type Error struct {
	Op         string // what the app was doing, e.g. "save the draft"
	Status     int    // the payer's HTTP status, 0 when unreachable
	Message    string
	Outcome    json.RawMessage // the payer's OperationOutcome, verbatim
	OAuthError string          // error code from the token endpoint
	RetryAfter string          // Retry-After of a 429/503
	Cause      error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("payer: %s: %s", e.Op, e.Message)
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Cause }

// unreachable is the error of a request that got no HTTP answer.
func unreachable(op string, cause error) *Error {
	return &Error{Op: op, Message: "The payer could not be reached. Nothing was lost: try again in a moment.", Cause: cause}
}

// statusError maps an HTTP error answer of the payer's FHIR API to an Error
// with a readable message: what the status means for the user, then the
// payer's own diagnostics.
func statusError(op string, resp *http.Response, body []byte) *Error {
	e := &Error{Op: op, Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
	var oo fhir.OperationOutcome
	if json.Unmarshal(body, &oo) == nil && oo.ResourceType == "OperationOutcome" {
		e.Outcome = json.RawMessage(body)
	}
	e.Message = statusText(resp.StatusCode, e.RetryAfter) + diagnostics(&oo)
	return e
}

func statusText(status int, retryAfter string) string {
	switch status {
	case http.StatusUnauthorized:
		return "The payer did not accept the app's credentials (401)"
	case http.StatusForbidden:
		return "The payer refused this request (403)"
	case http.StatusNotFound:
		return "The payer has no such resource (404)"
	case http.StatusConflict:
		return "The payer reported a conflict (409)"
	case http.StatusPreconditionFailed:
		return "The draft was changed elsewhere since it was loaded (412); reload to see the latest version"
	case http.StatusPreconditionRequired:
		return "The payer requires a version check (If-Match) for this update (428)"
	case http.StatusTooManyRequests:
		if retryAfter != "" {
			return "The payer is rate limiting the app (429); try again in " + retryAfter + " seconds"
		}
		return "The payer is rate limiting the app (429); try again shortly"
	case http.StatusServiceUnavailable:
		return "The payer is temporarily unavailable (503); try again shortly"
	}
	if status >= 500 {
		return fmt.Sprintf("The payer failed to process the request (HTTP %d)", status)
	}
	return fmt.Sprintf("The payer refused the request (HTTP %d)", status)
}

// diagnostics is the OperationOutcome's text, prefixed for appending.
func diagnostics(oo *fhir.OperationOutcome) string {
	var parts []string
	for _, is := range oo.Issue {
		switch {
		case is.Diagnostics != "":
			parts = append(parts, is.Diagnostics)
		case is.Details != nil && is.Details.Text != "":
			parts = append(parts, is.Details.Text)
		}
	}
	if len(parts) == 0 {
		return "."
	}
	s := strings.Join(parts, "; ")
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return ": " + s
}

// OutcomeText is the diagnostics of an OperationOutcome body, for the
// security panel ("" if body is not one).
func OutcomeText(body []byte) string {
	var oo fhir.OperationOutcome
	if json.Unmarshal(body, &oo) != nil || oo.ResourceType != "OperationOutcome" {
		return ""
	}
	return strings.TrimPrefix(strings.TrimSuffix(diagnostics(&oo), "."), ": ")
}
