package trust

import (
	"errors"
	"net/http"

	"dtrsandbox/shared/accesstoken"
)

// Reason says why an EHR token was refused; it goes into the AuditEvent.
// Reasons shared with accesstoken have the same text.
type Reason string

// Reasons.
const (
	ReasonTooLarge       Reason = Reason(accesstoken.ReasonTooLarge)
	ReasonMalformed      Reason = Reason(accesstoken.ReasonMalformed)
	ReasonUntrusted      Reason = "untrusted_issuer" // iss is not in the registry
	ReasonWrongType      Reason = Reason(accesstoken.ReasonWrongType)
	ReasonAlgorithm      Reason = Reason(accesstoken.ReasonAlgorithm)
	ReasonMissingClaim   Reason = Reason(accesstoken.ReasonMissingClaim)
	ReasonIssuer         Reason = Reason(accesstoken.ReasonIssuer)
	ReasonAudience       Reason = Reason(accesstoken.ReasonAudience)
	ReasonExpired        Reason = Reason(accesstoken.ReasonExpired)
	ReasonNotYetValid    Reason = Reason(accesstoken.ReasonNotYetValid)
	ReasonUnknownKey     Reason = Reason(accesstoken.ReasonUnknownKey)
	ReasonSignature      Reason = Reason(accesstoken.ReasonSignature)
	ReasonInactive       Reason = "inactive"        // introspection answered active: false
	ReasonEHRUnavailable Reason = "ehr_unavailable" // the EHR (keys, discovery, introspection) could not answer
)

var reasonText = map[Reason]string{
	ReasonTooLarge:       "the EHR token is larger than 8 KiB",
	ReasonMalformed:      "the EHR token is not a well-formed JWT access token",
	ReasonUntrusted:      "the EHR token's issuer is not a trusted EHR",
	ReasonWrongType:      "the EHR token is not an access token (typ must be at+jwt)",
	ReasonAlgorithm:      "the EHR token's signing algorithm is not accepted",
	ReasonMissingClaim:   "the EHR token lacks a required claim",
	ReasonIssuer:         "the EHR token's issuer does not match the EHR that vouches for it",
	ReasonAudience:       "the EHR token's audience is not that EHR's FHIR base",
	ReasonExpired:        "the EHR token has expired",
	ReasonNotYetValid:    "the EHR token is not yet valid",
	ReasonUnknownKey:     "the EHR token is not signed by a key of its issuer",
	ReasonSignature:      "the EHR token's signature is invalid",
	ReasonInactive:       "the EHR reports the token as inactive",
	ReasonEHRUnavailable: "the EHR could not confirm the token; try again later",
}

// String is the reason in words.
func (r Reason) String() string {
	if s, ok := reasonText[r]; ok {
		return s
	}
	return "the EHR token was refused (" + string(r) + ")"
}

// Failure is a refused EHR token. Err is for the log only and never holds
// the token.
type Failure struct {
	Reason Reason
	Issuer string // the EHR issuer, when known (trusted or claimed)
	Err    error
}

func (f *Failure) Error() string {
	msg := "trust: " + string(f.Reason)
	if f.Issuer != "" {
		msg += " (issuer " + f.Issuer + ")"
	}
	if f.Err != nil {
		msg += ": " + f.Err.Error()
	}
	return msg
}

func (f *Failure) Unwrap() error { return f.Err }

// Status is the HTTP status to answer: 503 when the EHR could not answer
// (fail closed), else 401.
func (f *Failure) Status() int {
	if f.Reason == ReasonEHRUnavailable {
		return http.StatusServiceUnavailable
	}
	return http.StatusUnauthorized
}

// Hint is the caller-facing explanation.
func (f *Failure) Hint() string { return f.Reason.String() }

// AsFailure returns err as a *Failure, or nil.
func AsFailure(err error) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	return nil
}

func failure(r Reason, issuer string, err error) *Failure {
	return &Failure{Reason: r, Issuer: issuer, Err: err}
}
