package smart

// Covers implements the payer's creator's-scope rule (CONTRACT: "a later
// read, search or update is allowed only to tokens that carry at least those
// scopes"): it reports whether s carries at least the clinical access of
// required.
//
// A required clinical scope is covered when each of its permission bits is
// held by some clinical scope g of s with
//   - g.Level the same or broader (system ⊇ user ⊇ patient),
//   - g.Resource the same or "*",
//   - and, for the query: g has none, or required has one and g's is the same
//     (param=value items compared in any order).
//
// Permission bits may come from different scopes of s (SMART 2.2 "Scope
// Equivalence": "Observation.r Observation.s" covers "Observation.rs"), and
// v1 and v2 scopes compare by their bits ("patient/*.read" covers
// "patient/Observation.rs"). Non-clinical scopes are ignored on both sides.
// An empty required is always covered.
func (s Scopes) Covers(required Scopes) bool {
	for _, r := range required.clinical {
		if !coveredBy(s.clinical, r) {
			return false
		}
	}
	return true
}

// Covers reports whether the single scope sc covers every permission of r
// under the rules of Scopes.Covers.
func (sc Scope) Covers(r Scope) bool {
	return coveredBy([]Scope{sc}, r)
}

// coveredBy reports whether the scopes in have together cover r.
func coveredBy(have []Scope, r Scope) bool {
	if r.Perms == 0 {
		return true
	}
	var got Perm
	var rq string
	if r.Query != "" {
		rq = canonicalQuery(r.Query)
	}
	for _, g := range have {
		if g.Level < r.Level || !(g.Resource == "*" || g.Resource == r.Resource) {
			continue
		}
		if g.Query != "" && (r.Query == "" || canonicalQuery(g.Query) != rq) {
			continue
		}
		got |= g.Perms
		if got.Has(r.Perms) {
			return true
		}
	}
	return false
}
