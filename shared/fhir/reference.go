// Literal references and logical ids of FHIR R4: the id rule of
// datatypes.html#id and the literal reference forms of references.html
// (relative "Type/id", absolute "[base]/Type/id", either with
// "/_history/version"), as matched by the R4 regular expression
// ((http|https)://([A-Za-z0-9\-\\\.\:\%\$]*\/)+)?[Type]\/[A-Za-z0-9\-\.]{1,64}(\/_history\/[A-Za-z0-9\-\.]{1,64})?

package fhir

import (
	"net/url"
	"strings"
)

// ValidID reports whether id is a FHIR id: 1 to 64 characters from
// A-Z a-z 0-9 '-' '.' (R4 datatypes.html#id).
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}

// validTypeName reports whether s looks like a FHIR resource type name: an
// upper-case ASCII letter followed by ASCII letters (R4 resource names are
// PascalCase, for example "Patient", "DocumentReference").
func validTypeName(s string) bool {
	if len(s) == 0 || len(s) > 64 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// ParseReference splits a literal reference that names one resource by type
// and id (R4 references.html#literal):
//
//	Patient/123                                  -> "", "Patient", "123"
//	Patient/123/_history/2                       -> "", "Patient", "123"
//	https://ehr.example/fhir/Patient/123         -> "https://ehr.example/fhir", "Patient", "123"
//	https://ehr.example/fhir/Patient/123/_history/2 (same, version dropped)
//
// base is empty for a relative reference (relative to the server that holds
// the resource) and otherwise the service base URL without a trailing slash,
// as written (no case folding). ok is false for anything that does not name
// exactly one resource by type and id: an empty string, a contained
// reference ("#x"), a conditional reference ("Patient?identifier=..."), a
// URN ("urn:uuid:...", "urn:oid:..."), a base other than http(s), a URL with
// user info, query or fragment, an empty path segment, or a type or id that
// breaks the FHIR rules.
func ParseReference(ref string) (base, typ, id string, ok bool) {
	if ref == "" || strings.ContainsAny(ref, "?#") || strings.HasPrefix(ref, "urn:") {
		return "", "", "", false
	}
	var segs []string
	if scheme, rest, found := strings.Cut(ref, "://"); found {
		if scheme != "http" && scheme != "https" {
			return "", "", "", false
		}
		u, err := url.Parse(ref)
		if err != nil || u.User != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return "", "", "", false
		}
		segs, ok = dropHistory(strings.Split(rest, "/"))
		// host, optional base path segments, type, id
		if !ok || len(segs) < 3 || segs[0] != u.Host {
			return "", "", "", false
		}
		for _, s := range segs[1 : len(segs)-2] {
			if !validBaseSegment(s) {
				return "", "", "", false
			}
		}
		base = scheme + "://" + strings.Join(segs[:len(segs)-2], "/")
	} else {
		if strings.Contains(ref, ":") {
			return "", "", "", false // another scheme, or a malformed URL
		}
		segs, ok = dropHistory(strings.Split(ref, "/"))
		if !ok || len(segs) != 2 {
			return "", "", "", false
		}
	}
	typ, id = segs[len(segs)-2], segs[len(segs)-1]
	if !validTypeName(typ) || !ValidID(id) {
		return "", "", "", false
	}
	return base, typ, id, true
}

// validBaseSegment reports whether s is a path segment of a service base
// allowed by the R4 reference pattern, less the backslash (which browsers
// and some servers treat as a slash): A-Z a-z 0-9 '-' '.' ':' '%' '$'. Dot
// segments are refused so that two different strings never name one base.
func validBaseSegment(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '-', c == '.', c == ':', c == '%', c == '$':
		default:
			return false
		}
	}
	return true
}

// dropHistory removes a trailing "_history/{version}" from path segments,
// reporting false if the version is not a valid id.
func dropHistory(segs []string) ([]string, bool) {
	n := len(segs)
	if n >= 2 && segs[n-2] == "_history" {
		if !ValidID(segs[n-1]) {
			return nil, false
		}
		return segs[:n-2], true
	}
	return segs, true
}
