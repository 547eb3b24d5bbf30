package smart

import "sort"

// Grant reports whether the clinical scopes of s permit p on resources of
// type resourceType, and the broadest level at which they do (LevelSystem >
// LevelUser > LevelPatient). The caller enforces the level: at
// LevelPatient the request must be confined to the token's patient.
//
// Scopes combine as a union (SMART 2.2 "Scope Equivalence": "Observation.rs"
// is "Observation.r Observation.s"), and a broader level includes the
// narrower ones, so p is granted at level L when the scopes at L or broader
// together hold every bit of p. A wildcard scope ("patient/*.rs") matches
// every type.
//
// Scopes with a search-parameter constraint ("patient/Observation.rs?category=...")
// are ignored here: they grant access only to the resources matching their
// query, which Grant cannot check. Use GrantQuery for those.
//
// p must be non-empty and within PermAll; resourceType is a type name such as
// "Observation" ("*" matches only wildcard scopes).
func (s Scopes) Grant(resourceType string, p Perm) (Level, bool) {
	if p == 0 || p&^PermAll != 0 || resourceType == "" {
		return 0, false
	}
	for _, lvl := range [...]Level{LevelSystem, LevelUser, LevelPatient} {
		var have Perm
		for _, sc := range s.clinical {
			if sc.Query == "" && sc.Level >= lvl && sc.matchesResource(resourceType) {
				have |= sc.Perms
			}
		}
		if have.Has(p) {
			return lvl, true
		}
	}
	return 0, false
}

// GrantQuery returns the granular scopes (those with a search-parameter
// constraint) that permit p on resourceType, broadest level first. Each one
// allows the interaction only on resources matching its Query, at its Level;
// the caller applies the filter (for a search, by adding the constraint to
// the query; for a read or write, by checking the resource against it).
//
// Unlike Grant, permissions are not combined across scopes (two scopes with
// different constraints do not add up), so pass one interaction at a time,
// as a FHIR request is. Callers normally try Grant first and fall back to
// GrantQuery when it refuses.
func (s Scopes) GrantQuery(resourceType string, p Perm) []Scope {
	if p == 0 || p&^PermAll != 0 || resourceType == "" {
		return nil
	}
	var out []Scope
	for _, sc := range s.clinical {
		if sc.Query != "" && sc.matchesResource(resourceType) && sc.Perms.Has(p) {
			out = append(out, sc)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Level > out[j].Level })
	return out
}

func (sc Scope) matchesResource(resourceType string) bool {
	return sc.Resource == "*" || sc.Resource == resourceType
}
