// Package oautherr models the error responses of the OAuth 2.0 family of
// specifications: RFC 6749 §5.2 (token endpoint), RFC 6749 §4.1.2.1
// (authorization endpoint), RFC 7591 §3.2.2 (dynamic registration) and
// RFC 6750 §3.1 (bearer-token protected resources).
//
// An Error carries a Description that is safe to show the caller (the hint)
// and a Cause that goes to the log only.
package oautherr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error codes. RFC 6749 §5.2 unless noted.
const (
	CodeInvalidRequest          = "invalid_request"
	CodeInvalidClient           = "invalid_client"
	CodeInvalidGrant            = "invalid_grant"
	CodeUnauthorizedClient      = "unauthorized_client"
	CodeUnsupportedGrantType    = "unsupported_grant_type"
	CodeInvalidScope            = "invalid_scope"
	CodeAccessDenied            = "access_denied"             // RFC 6749 §4.1.2.1
	CodeUnsupportedResponseType = "unsupported_response_type" // RFC 6749 §4.1.2.1
	CodeServerError             = "server_error"              // RFC 6749 §4.1.2.1
	CodeTemporarilyUnavailable  = "temporarily_unavailable"   // RFC 6749 §4.1.2.1
	CodeInvalidRedirectURI      = "invalid_redirect_uri"      // RFC 7591 §3.2.2
	CodeInvalidClientMetadata   = "invalid_client_metadata"   // RFC 7591 §3.2.2
	CodeInvalidToken            = "invalid_token"             // RFC 6750 §3.1
	CodeInsufficientScope       = "insufficient_scope"        // RFC 6750 §3.1
	CodeUnsupportedTokenType    = "unsupported_token_type"    // RFC 7009 §2.2.1
	CodeSlowDown                = "slow_down"                 // used with 429 by our rate limiter
)

// Error is one OAuth error. Status is the HTTP status to answer with.
type Error struct {
	Code        string // the RFC error code
	Description string // hint for the caller: safe to send
	Status      int    // HTTP status
	Cause       error  // for the log only: never sent
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Description, e.Cause)
	}
	return e.Code + ": " + e.Description
}

// Unwrap returns the cause, so errors.Is/As see through an Error.
func (e *Error) Unwrap() error { return e.Cause }

// WithCause returns a copy of e that records cause for the log.
func (e *Error) WithCause(cause error) *Error {
	c := *e
	c.Cause = cause
	return &c
}

// New makes an error with the given code, status and caller-facing hint.
func New(code string, status int, format string, args ...any) *Error {
	return &Error{Code: code, Status: status, Description: fmt.Sprintf(format, args...)}
}

// Constructors for the codes, with the status RFC 6749 §5.2 prescribes.
func InvalidRequest(format string, args ...any) *Error {
	return New(CodeInvalidRequest, http.StatusBadRequest, format, args...)
}

// InvalidClient answers 401: RFC 6749 §5.2 allows 400 but requires 401 when
// the client tried the Authorization header; 401 is the safe uniform choice.
func InvalidClient(format string, args ...any) *Error {
	return New(CodeInvalidClient, http.StatusUnauthorized, format, args...)
}
func InvalidGrant(format string, args ...any) *Error {
	return New(CodeInvalidGrant, http.StatusBadRequest, format, args...)
}
func UnauthorizedClient(format string, args ...any) *Error {
	return New(CodeUnauthorizedClient, http.StatusBadRequest, format, args...)
}
func UnsupportedGrantType(format string, args ...any) *Error {
	return New(CodeUnsupportedGrantType, http.StatusBadRequest, format, args...)
}
func InvalidScope(format string, args ...any) *Error {
	return New(CodeInvalidScope, http.StatusBadRequest, format, args...)
}
func AccessDenied(format string, args ...any) *Error {
	return New(CodeAccessDenied, http.StatusForbidden, format, args...)
}
func InvalidClientMetadata(format string, args ...any) *Error {
	return New(CodeInvalidClientMetadata, http.StatusBadRequest, format, args...)
}
func InvalidRedirectURI(format string, args ...any) *Error {
	return New(CodeInvalidRedirectURI, http.StatusBadRequest, format, args...)
}

// InvalidToken is RFC 6750 §3.1: 401 with a WWW-Authenticate challenge.
func InvalidToken(format string, args ...any) *Error {
	return New(CodeInvalidToken, http.StatusUnauthorized, format, args...)
}
func ServerError(format string, args ...any) *Error {
	return New(CodeServerError, http.StatusInternalServerError, format, args...)
}
func TemporarilyUnavailable(format string, args ...any) *Error {
	return New(CodeTemporarilyUnavailable, http.StatusServiceUnavailable, format, args...)
}

// As returns err as an *Error; anything else becomes a server_error whose
// cause is err (the caller sees no detail).
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return ServerError("The server could not complete the request.").WithCause(err)
}

// Body is the JSON object of RFC 6749 §5.2.
type Body struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// Write answers err per RFC 6749 §5.2: JSON body, the error's status,
// Cache-Control: no-store. 401s carry a WWW-Authenticate challenge
// (Basic for invalid_client, Bearer per RFC 6750 §3 for invalid_token).
func Write(w http.ResponseWriter, err error) {
	e := As(err)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if e.Status == http.StatusUnauthorized {
		switch e.Code {
		case CodeInvalidClient:
			h.Set("WWW-Authenticate", `Basic realm="token"`)
		default:
			h.Set("WWW-Authenticate", BearerChallenge(e))
		}
	}
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(Body{Error: e.Code, Description: e.Description})
}

// BearerChallenge renders the RFC 6750 §3 WWW-Authenticate value for e.
func BearerChallenge(e *Error) string {
	if e == nil || e.Code == "" {
		return `Bearer realm="fhir"`
	}
	return fmt.Sprintf(`Bearer realm="fhir", error=%q, error_description=%q`, e.Code, sanitize(e.Description))
}

// sanitize keeps a description inside the RFC 6750 §3 character set
// (%x20-21 / %x23-5B / %x5D-7E): no quotes or backslashes.
func sanitize(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' {
			out = append(out, c)
		}
	}
	return string(out)
}
