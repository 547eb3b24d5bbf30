package smart

import (
	"errors"
	"fmt"
	"strings"
)

// Allowed reports whether a client whose registered scope string is
// registered (space-delimited) may request the single scope requested, and
// when not, why (a hint safe for an RFC 6749 §5.2 error_description).
//
// Non-clinical scopes must be registered exactly (RFC 6749 scopes are
// case-sensitive strings). A clinical scope must be well-formed and covered
// by the client's registered clinical scopes under the rules of
// Scopes.Covers, so a client registered for "patient/*.rs" may ask for
// "patient/Observation.r" and one registered for "user/*.*" may ask for
// "user/Patient.read"; a granular request ("patient/Observation.rs?category=x")
// is covered by the unconstrained registration, not the other way round.
// Malformed registered clinical scopes grant nothing.
//
// This is the scope-narrowing rule of SMART Backend Services ("the FHIR
// authorization server SHALL mediate the request to assure that the scope
// requested is within the scope pre-authorized to the client") applied to
// every grant.
func Allowed(requested, registered string) (bool, string) {
	return allowed(requested, []string{registered})
}

// ScopeStrategy is a fosite.ScopeStrategy (func(haystack []string, needle
// string) bool) built on Allowed: haystack is what the client may have
// (its registered scopes, or the scopes originally granted on a refresh),
// needle the scope asked for. Haystack entries may themselves be
// space-delimited strings.
//
// fosite's default strategies treat "." and "*" as hierarchy and glob
// characters, which turns "patient/*.read" into a wildcard over unrelated
// scopes and rejects "patient/Observation.r" under "patient/*.rs"; this one
// applies the SMART grammar instead.
func ScopeStrategy(haystack []string, needle string) bool {
	ok, _ := allowed(needle, haystack)
	return ok
}

func allowed(requested string, registered []string) (bool, string) {
	if err := checkToken(requested); err != nil {
		return false, hintOf(err)
	}
	if !IsClinical(requested) {
		for _, entry := range registered {
			for _, r := range strings.Split(entry, " ") {
				if r == requested {
					return true, ""
				}
			}
		}
		return false, fmt.Sprintf("scope '%s' is not registered for this client", safeText(requested))
	}
	want, err := ParseScope(requested)
	if err != nil {
		return false, hintOf(err)
	}
	var have []Scope
	for _, entry := range registered {
		for _, r := range strings.Split(entry, " ") {
			if !IsClinical(r) {
				continue
			}
			if sc, err := ParseScope(r); err == nil {
				have = append(have, sc)
			}
		}
	}
	if coveredBy(have, want) {
		return true, ""
	}
	return false, fmt.Sprintf("scope '%s' is not covered by the scopes registered for this client", safeText(requested))
}

// hintOf returns the client-facing hint of a *ScopeError.
func hintOf(err error) string {
	var se *ScopeError
	if errors.As(err, &se) {
		return se.Hint
	}
	return "invalid scope"
}
