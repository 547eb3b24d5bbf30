package smart

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// ContextItem is one entry of the SMART 2.2 "fhirContext" launch context
// array (Scopes and Launch Context, "fhirContext"): a resource the app was
// launched in the context of, named by a relative reference, a canonical URL
// or an identifier, with an optional type and role.
type ContextItem struct {
	// Reference is a relative reference such as "ServiceRequest/sr-1".
	Reference string `json:"reference,omitempty"`
	// Canonical is a canonical URL, optionally with a "|version" suffix.
	Canonical string `json:"canonical,omitempty"`
	// Identifier is a FHIR Identifier object.
	Identifier *json.RawMessage `json:"identifier,omitempty"`
	// Type is the FHIR resource type (RECOMMENDED with Canonical or Identifier).
	Type string `json:"type,omitempty"`
	// Role is a URI for the item's role; absent means "launch".
	Role string `json:"role,omitempty"`
}

// RoleLaunch is the role an item without a role has: the app was launched in
// the context of that resource.
const RoleLaunch = "launch"

// ErrInvalidContext is matched (errors.Is) by every *ContextError.
var ErrInvalidContext = errors.New("smart: invalid fhirContext item")

// ContextError reports a fhirContext item that breaks the SMART 2.2 rules.
// Hint is written for the caller.
type ContextError struct{ Hint string }

func (e *ContextError) Error() string { return "smart: invalid fhirContext item: " + e.Hint }

// Is makes errors.Is(err, ErrInvalidContext) true.
func (e *ContextError) Is(target error) bool { return target == ErrInvalidContext }

// Validate checks the item against SMART 2.2 "fhirContext":
//   - at least one of reference, canonical or identifier;
//   - reference is a relative reference "Type/id";
//   - canonical is an absolute URL (with an optional "|version");
//   - identifier is a JSON object;
//   - type, when given, is a resource type name and agrees with reference;
//   - a role other than "launch" is an absolute URI;
//   - Patient and Encounter appear only with a role other than "launch"
//     (they travel as the top-level patient and encounter parameters).
func (c ContextItem) Validate() error {
	hasIdent := c.Identifier != nil && !bytes.Equal(bytes.TrimSpace(*c.Identifier), []byte("null"))
	if c.Reference == "" && c.Canonical == "" && !hasIdent {
		return &ContextError{Hint: "an item needs at least one of reference, canonical or identifier"}
	}
	typ := c.Type
	if c.Type != "" && !validResourceType(c.Type) {
		return &ContextError{Hint: "type must be a FHIR resource type name"}
	}
	if c.Reference != "" {
		rt, ok := parseRelativeReference(c.Reference)
		if !ok {
			return &ContextError{Hint: "reference must be a relative reference of the form Type/id"}
		}
		if c.Type != "" && c.Type != rt {
			return &ContextError{Hint: fmt.Sprintf("type %s does not match the reference type %s", c.Type, rt)}
		}
		typ = rt
	}
	if c.Canonical != "" {
		base, _, _ := strings.Cut(c.Canonical, "|")
		if u, err := url.Parse(base); err != nil || !u.IsAbs() || u.Host == "" {
			return &ContextError{Hint: "canonical must be an absolute URL, optionally followed by |version"}
		}
	}
	if hasIdent {
		raw := bytes.TrimSpace(*c.Identifier)
		if len(raw) == 0 || raw[0] != '{' || !json.Valid(raw) {
			return &ContextError{Hint: "identifier must be a FHIR Identifier JSON object"}
		}
	}
	if c.Role != "" && c.Role != RoleLaunch {
		if u, err := url.Parse(c.Role); err != nil || !u.IsAbs() {
			return &ContextError{Hint: "role must be launch or an absolute URI"}
		}
	}
	if (typ == "Patient" || typ == "Encounter") && (c.Role == "" || c.Role == RoleLaunch) {
		return &ContextError{Hint: typ + " belongs in the top-level launch context, not in fhirContext, unless it has a role other than launch"}
	}
	return nil
}

// parseRelativeReference splits "Type/id" and checks both parts (FHIR R4
// id: 1 to 64 of A-Z a-z 0-9 - .).
func parseRelativeReference(ref string) (string, bool) {
	typ, id, ok := strings.Cut(ref, "/")
	if !ok || !validResourceType(typ) || len(id) == 0 || len(id) > 64 {
		return "", false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return "", false
		}
	}
	return typ, true
}

// AccessContext is what a resource server knows about a verified access
// token (from its own verification of an RFC 9068 JWT, or from RFC 7662
// introspection): who holds it, for which user and patient, with which
// scopes and launch context, and for how long. FHIR enforcement decides on
// these facts only; it never re-reads the token.
type AccessContext struct {
	// Issuer is the authorization server (the token's iss).
	Issuer string
	// ClientID is the client the token was issued to.
	ClientID string
	// Subject is the token's sub.
	Subject string
	// FHIRUser is the fhirUser claim: a reference to the Practitioner,
	// Patient, PractitionerRole, RelatedPerson or Person using the app.
	FHIRUser string
	// Patient is the id of the patient in context (launch context patient).
	Patient string
	// Encounter is the id of the encounter in context.
	Encounter string
	// Scopes are the scopes granted to the token.
	Scopes Scopes
	// FHIRContext is the SMART 2.2 fhirContext launch context.
	FHIRContext []ContextItem
	// IssuedAt and ExpiresAt are the token's iat and exp.
	IssuedAt, ExpiresAt time.Time
	// TokenID is the token's jti.
	TokenID string
}
