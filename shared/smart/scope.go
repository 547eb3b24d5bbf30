// Package smart implements the SMART App Launch 2.2 scope grammar and the
// SMART types shared by the EHR, the payer and the SMART app: clinical scope
// parsing (v1 and v2, with granular search-parameter constraints), grants for
// FHIR enforcement, the payer's creator's-scope coverage rule, a fosite scope
// strategy, launch context types and the .well-known/smart-configuration
// document.
//
// Spec: SMART App Launch 2.2.0, "Scopes and Launch Context"
// (https://hl7.org/fhir/smart-app-launch/STU2.2/scopes-and-launch-context.html)
// and "Conformance" (conformance.html).
package smart

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Limits on scope input. SMART 2.2 ("Scope size over the wire") warns that
// scope strings travel in headers and URLs; these caps keep a hostile request
// from costing more than a few microseconds to reject.
const (
	// MaxScopeLength is the longest single scope accepted, in bytes.
	MaxScopeLength = 2048
	// MaxScopesLength is the longest space-delimited scope string accepted, in bytes.
	MaxScopesLength = 32 * 1024
	// MaxResourceTypeLength is the longest FHIR resource type name accepted.
	MaxResourceTypeLength = 64
)

// Non-clinical scopes defined by SMART App Launch 2.2 ("Scopes for requesting
// context data", "identity data", "a refresh token").
const (
	ScopeOpenID          = "openid"
	ScopeFHIRUser        = "fhirUser"
	ScopeProfile         = "profile"
	ScopeLaunch          = "launch"
	ScopeLaunchPatient   = "launch/patient"
	ScopeLaunchEncounter = "launch/encounter"
	ScopeOfflineAccess   = "offline_access"
	ScopeOnlineAccess    = "online_access"
)

// KnownScope reports whether s is one of the non-clinical scopes SMART 2.2
// defines (openid, fhirUser, profile, launch, launch/patient,
// launch/encounter, offline_access, online_access).
func KnownScope(s string) bool {
	switch s {
	case ScopeOpenID, ScopeFHIRUser, ScopeProfile, ScopeLaunch, ScopeLaunchPatient,
		ScopeLaunchEncounter, ScopeOfflineAccess, ScopeOnlineAccess:
		return true
	}
	return false
}

// Level is the first segment of a clinical scope: whose data the scope
// reaches. Levels are ordered: LevelPatient < LevelUser < LevelSystem, and a
// broader level is taken to include the narrower ones (see Covers).
type Level int

// The clinical scope levels ("Patient-specific scopes", "User-level scopes",
// "System-level scopes"). The zero Level is not a level.
const (
	LevelPatient Level = iota + 1
	LevelUser
	LevelSystem
)

// String returns the scope prefix of the level ("patient", "user", "system").
func (l Level) String() string {
	switch l {
	case LevelPatient:
		return "patient"
	case LevelUser:
		return "user"
	case LevelSystem:
		return "system"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

func parseLevel(s string) (Level, bool) {
	switch s {
	case "patient":
		return LevelPatient, true
	case "user":
		return LevelUser, true
	case "system":
		return LevelSystem, true
	}
	return 0, false
}

// Perm is a set of FHIR REST interactions a clinical scope permits
// ("Scopes for requesting FHIR Resources": c, r, u, d, s).
type Perm uint8

// Permission bits. PermRead covers read, vread and instance history;
// PermSearch covers type and system search and history; PermUpdate covers
// update (including upsert) and patch.
const (
	PermCreate Perm = 1 << iota
	PermRead
	PermUpdate
	PermDelete
	PermSearch

	// PermAll is every interaction: v2 ".cruds", v1 ".*".
	PermAll = PermCreate | PermRead | PermUpdate | PermDelete | PermSearch
	// PermV1Read is what a v1 ".read" scope grants: v2 ".rs".
	PermV1Read = PermRead | PermSearch
	// PermV1Write is what a v1 ".write" scope grants: v2 ".cud".
	PermV1Write = PermCreate | PermUpdate | PermDelete
)

// permLetters lists the v2 letters in their mandatory order.
var permLetters = [...]struct {
	letter byte
	perm   Perm
}{{'c', PermCreate}, {'r', PermRead}, {'u', PermUpdate}, {'d', PermDelete}, {'s', PermSearch}}

// Has reports whether p includes every permission in q.
func (p Perm) Has(q Perm) bool { return p&q == q }

// String returns p in v2 letter form, e.g. "rs" or "cruds"; "" for no
// permission. Bits outside PermAll are not shown.
func (p Perm) String() string {
	var b strings.Builder
	for _, pl := range permLetters {
		if p&pl.perm != 0 {
			b.WriteByte(pl.letter)
		}
	}
	return b.String()
}

// parseV2Perms parses a v2 permission suffix: a non-empty subset of "cruds",
// in that order, without repeats.
func parseV2Perms(s string) (Perm, bool) {
	if s == "" {
		return 0, false
	}
	var p Perm
	next := 0 // index into permLetters of the first letter still allowed
	for i := 0; i < len(s); i++ {
		found := false
		for j := next; j < len(permLetters); j++ {
			if s[i] == permLetters[j].letter {
				p |= permLetters[j].perm
				next = j + 1
				found = true
				break
			}
		}
		if !found {
			return 0, false
		}
	}
	return p, true
}

// Scope is one parsed clinical scope, such as "patient/Observation.rs",
// "user/*.read" or "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory".
type Scope struct {
	// Raw is the scope exactly as it was given.
	Raw   string
	Level Level
	// Resource is a FHIR resource type name or "*" for every type.
	Resource string
	Perms    Perm
	// Version is 1 for ".read", ".write", ".*" and 2 for letter permissions.
	Version int
	// Query is the search-parameter constraint after "?" (v2 only), without
	// the "?"; empty when the scope has none.
	Query string
}

// String rebuilds the scope from its fields. For a scope returned by
// ParseScope it equals Raw.
func (s Scope) String() string {
	var b strings.Builder
	b.WriteString(s.Level.String())
	b.WriteByte('/')
	b.WriteString(s.Resource)
	b.WriteByte('.')
	if s.Version == 1 {
		switch s.Perms {
		case PermV1Read:
			b.WriteString("read")
		case PermV1Write:
			b.WriteString("write")
		case PermAll:
			b.WriteString("*")
		default:
			b.WriteString(s.Perms.String())
		}
	} else {
		b.WriteString(s.Perms.String())
	}
	if s.Query != "" {
		b.WriteByte('?')
		b.WriteString(s.Query)
	}
	return b.String()
}

// ErrInvalidScope is matched (errors.Is) by every *ScopeError.
var ErrInvalidScope = errors.New("smart: invalid scope")

// ScopeError reports a scope that does not follow the SMART 2.2 grammar or
// RFC 6749 §3.3. Hint is written for the client and is safe to use as an
// RFC 6749 §5.2 error_description (printable ASCII, no quote or backslash).
type ScopeError struct {
	// Scope is the offending scope as given (for the log; may be long or
	// contain any bytes).
	Scope string
	// Hint explains the problem to the client.
	Hint string
}

func (e *ScopeError) Error() string {
	return fmt.Sprintf("smart: invalid scope %+q: %s", truncate(e.Scope, 128), e.Hint)
}

// Is makes errors.Is(err, ErrInvalidScope) true.
func (e *ScopeError) Is(target error) bool { return target == ErrInvalidScope }

func scopeErr(scope, format string, args ...any) *ScopeError {
	return &ScopeError{Scope: scope, Hint: fmt.Sprintf("scope '%s': ", safeText(scope)) + fmt.Sprintf(format, args...)}
}

// IsClinical reports whether s is in the clinical-scope namespace, that is
// starts with "patient/", "user/" or "system/". It does not say that s is
// well-formed: "patient/.read" is clinical and malformed. Use ParseScope to
// validate; a malformed clinical scope must be refused, never matched as an
// opaque string.
func IsClinical(s string) bool {
	return strings.HasPrefix(s, "patient/") || strings.HasPrefix(s, "user/") || strings.HasPrefix(s, "system/")
}

// ParseScope parses one clinical scope per SMART App Launch 2.2 "FHIR
// Resource Scope Syntax":
//
//	( patient | user | system ) "/" ( ResourceType | "*" ) "." perms [ "?" param=value *( "&" param=value ) ]
//
// where perms is a v1 word ("read" = rs, "write" = cud, "*" = cruds) or a
// non-empty v2 subset of "cruds" in that order without repeats. Search
// parameter constraints are accepted only with v2 permissions. Scopes that
// are not clinical (openid, launch/patient, ...) are an error here; see
// ParseScopes. Every error is a *ScopeError.
func ParseScope(s string) (Scope, error) {
	if err := checkToken(s); err != nil {
		return Scope{}, err
	}
	levelStr, rest, ok := strings.Cut(s, "/")
	if !ok {
		return Scope{}, scopeErr(s, "not a clinical scope: expected patient/, user/ or system/ followed by Resource.permissions")
	}
	level, ok := parseLevel(levelStr)
	if !ok {
		return Scope{}, scopeErr(s, "not a clinical scope: the level must be patient, user or system")
	}
	body, query, hasQuery := strings.Cut(rest, "?")
	resource, perms, ok := strings.Cut(body, ".")
	if !ok {
		return Scope{}, scopeErr(s, "missing '.' between the resource type and the permissions")
	}
	if resource == "" {
		return Scope{}, scopeErr(s, "missing resource type (a FHIR resource type or *)")
	}
	if resource != "*" && !validResourceType(resource) {
		return Scope{}, scopeErr(s, "the resource type must be * or a FHIR resource type name (an upper-case letter followed by up to %d letters)", MaxResourceTypeLength-1)
	}
	sc := Scope{Raw: s, Level: level, Resource: resource}
	switch perms {
	case "read":
		sc.Perms, sc.Version = PermV1Read, 1
	case "write":
		sc.Perms, sc.Version = PermV1Write, 1
	case "*":
		sc.Perms, sc.Version = PermAll, 1
	default:
		p, ok := parseV2Perms(perms)
		if !ok {
			return Scope{}, scopeErr(s, "permissions must be read, write or * (v1) or a subset of c, r, u, d, s in that order, each at most once (v2)")
		}
		sc.Perms, sc.Version = p, 2
	}
	if hasQuery {
		if sc.Version != 2 {
			return Scope{}, scopeErr(s, "search-parameter constraints (?param=value) need v2 permissions such as .rs")
		}
		if hint := checkQuery(query); hint != "" {
			return Scope{}, scopeErr(s, "%s", hint)
		}
		sc.Query = query
	}
	return sc, nil
}

// checkToken enforces RFC 6749 §3.3 scope-token syntax and the length cap.
func checkToken(s string) error {
	if s == "" {
		return &ScopeError{Scope: s, Hint: "empty scope"}
	}
	if len(s) > MaxScopeLength {
		return &ScopeError{Scope: s, Hint: fmt.Sprintf("scope longer than %d bytes", MaxScopeLength)}
	}
	for i := 0; i < len(s); i++ {
		if !isScopeChar(s[i]) {
			return scopeErr(s, "contains a character not allowed in an OAuth scope (RFC 6749 section 3.3: printable ASCII except space, double quote and backslash)")
		}
	}
	return nil
}

// isScopeChar: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
func isScopeChar(c byte) bool {
	return c == 0x21 || (c >= 0x23 && c <= 0x5B) || (c >= 0x5D && c <= 0x7E)
}

func validResourceType(s string) bool {
	if len(s) == 0 || len(s) > MaxResourceTypeLength || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// checkQuery validates a granular-scope constraint: one or more param=value
// items separated by '&'. Parameter names may carry modifiers (":") and
// chains ("."), which SMART 2.2 lists as experimental. It returns "" when q
// is valid, else a hint.
func checkQuery(q string) string {
	if q == "" {
		return "empty search-parameter constraint after '?'"
	}
	for _, item := range strings.Split(q, "&") {
		name, value, ok := strings.Cut(item, "=")
		if !ok || name == "" || value == "" {
			return "the constraint after '?' must be param=value items separated by '&'"
		}
		if !validParamName(name) {
			return "a search parameter name must start with a letter or '_' and use only letters, digits, '_', '-', '.', ':'"
		}
	}
	return ""
}

func validParamName(s string) bool {
	c := s[0]
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// canonicalQuery orders the param=value items so that constraints written
// in a different order compare equal. Values are compared as written (no
// percent-decoding): a scope is an opaque string to OAuth.
func canonicalQuery(q string) string {
	if !strings.Contains(q, "&") {
		return q
	}
	items := strings.Split(q, "&")
	sort.Strings(items)
	return strings.Join(items, "&")
}

// Scopes is a parsed, space-delimited scope string: the clinical scopes
// (parsed) and every other scope (kept as given). Duplicates are dropped,
// first occurrence wins; order is otherwise kept. The zero value is an empty
// set. Scopes is immutable; its methods return copies.
type Scopes struct {
	all      []string
	clinical []Scope
	other    []string
}

// ParseScopes parses an RFC 6749 §3.3 scope string (scope tokens separated
// by spaces; repeated spaces are tolerated). Clinical scopes (IsClinical)
// must be well-formed; any other well-formed scope token is kept as "other",
// whether SMART defines it or not. The empty string is the empty set.
// Every error is a *ScopeError.
func ParseScopes(space string) (Scopes, error) {
	if len(space) > MaxScopesLength {
		return Scopes{}, &ScopeError{Scope: space, Hint: fmt.Sprintf("scope string longer than %d bytes", MaxScopesLength)}
	}
	return ParseScopeList(strings.Split(space, " "))
}

// ParseScopeList is ParseScopes for scopes already split, as fosite hands
// them over (fosite.Arguments). Empty entries are skipped; an entry with a
// space in it is an error.
func ParseScopeList(list []string) (Scopes, error) {
	var out Scopes
	seen := make(map[string]struct{}, len(list))
	for _, tok := range list {
		if tok == "" {
			continue
		}
		if _, dup := seen[tok]; dup {
			continue
		}
		if err := checkToken(tok); err != nil {
			return Scopes{}, err
		}
		if IsClinical(tok) {
			sc, err := ParseScope(tok)
			if err != nil {
				return Scopes{}, err
			}
			out.clinical = append(out.clinical, sc)
		} else {
			out.other = append(out.other, tok)
		}
		seen[tok] = struct{}{}
		out.all = append(out.all, tok)
	}
	return out, nil
}

// Strings returns every scope in order.
func (s Scopes) Strings() []string { return append([]string(nil), s.all...) }

// String returns the space-delimited scope string.
func (s Scopes) String() string { return strings.Join(s.all, " ") }

// Len returns the number of distinct scopes.
func (s Scopes) Len() int { return len(s.all) }

// Has reports whether scope is present exactly as written. It is a string
// test, not a grant: use Grant or Covers for clinical access.
func (s Scopes) Has(scope string) bool {
	for _, x := range s.all {
		if x == scope {
			return true
		}
	}
	return false
}

// Clinical returns the parsed clinical scopes in order.
func (s Scopes) Clinical() []Scope { return append([]Scope(nil), s.clinical...) }

// Other returns the non-clinical scopes (openid, launch/patient, custom
// scopes, ...) in order.
func (s Scopes) Other() []string { return append([]string(nil), s.other...) }

// MarshalText encodes the scopes as the space-delimited string, so Scopes
// travels in JSON as an RFC 6749 scope string.
func (s Scopes) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a space-delimited scope string (see ParseScopes).
func (s *Scopes) UnmarshalText(b []byte) error {
	p, err := ParseScopes(string(b))
	if err != nil {
		return err
	}
	*s = p
	return nil
}

// safeText makes untrusted input fit an RFC 6749 §5.2 error_description:
// characters outside %x20-21 / %x23-5B / %x5D-7E become '?', and long input
// is cut.
func safeText(s string) string {
	s = truncate(s, 80)
	b := []byte(s)
	for i, c := range b {
		if !(c == 0x20 || c == 0x21 || (c >= 0x23 && c <= 0x5B) || (c >= 0x5D && c <= 0x7E)) {
			b[i] = '?'
		}
	}
	return string(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
