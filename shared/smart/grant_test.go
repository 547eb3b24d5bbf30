package smart

import (
	"testing"
)

func mustScopes(t testing.TB, s string) Scopes {
	t.Helper()
	sc, err := ParseScopes(s)
	if err != nil {
		t.Fatalf("ParseScopes(%q): %v", s, err)
	}
	return sc
}

func TestGrant(t *testing.T) {
	tests := []struct {
		name     string
		scopes   string
		resource string
		perm     Perm
		level    Level
		ok       bool
	}{
		{"v2 read", "patient/Observation.rs", "Observation", PermRead, LevelPatient, true},
		{"v2 search", "patient/Observation.rs", "Observation", PermSearch, LevelPatient, true},
		{"v2 no create", "patient/Observation.rs", "Observation", PermCreate, 0, false},
		{"other type", "patient/Observation.rs", "Patient", PermRead, 0, false},
		{"wildcard", "patient/*.rs", "Coverage", PermRead, LevelPatient, true},
		{"v1 read is r+s", "user/Patient.read", "Patient", PermRead | PermSearch, LevelUser, true},
		{"v1 read no update", "user/Patient.read", "Patient", PermUpdate, 0, false},
		{"v1 write is c+u+d", "user/*.write", "DocumentReference", PermCreate | PermUpdate | PermDelete, LevelUser, true},
		{"v1 write not read", "user/*.write", "DocumentReference", PermRead, 0, false},
		{"v1 star", "system/*.*", "QuestionnaireResponse", PermAll, LevelSystem, true},
		{"broadest level wins", "patient/Observation.rs user/Observation.r", "Observation", PermRead, LevelUser, true},
		{"broader level only for its bits", "patient/Observation.rs user/Observation.r", "Observation", PermSearch, LevelPatient, true},
		{"system over user", "user/*.rs system/Patient.r", "Patient", PermRead, LevelSystem, true},
		{"union of scopes", "patient/Observation.r patient/Observation.s", "Observation", PermRead | PermSearch, LevelPatient, true},
		{"union across levels confined to narrowest", "patient/Observation.r user/Observation.s", "Observation", PermRead | PermSearch, LevelPatient, true},
		{"union needs every bit", "patient/Observation.r patient/Patient.s", "Observation", PermRead | PermSearch, 0, false},
		{"query scope ignored", "patient/Observation.rs?category=laboratory", "Observation", PermRead, 0, false},
		{"query scope ignored, plain one used", "patient/Observation.rs?category=laboratory user/Observation.r", "Observation", PermRead, LevelUser, true},
		{"non-clinical ignored", "openid fhirUser launch", "Patient", PermRead, 0, false},
		{"empty", "", "Patient", PermRead, 0, false},
		{"zero perm", "system/*.*", "Patient", 0, 0, false},
		{"perm outside range", "system/*.*", "Patient", PermAll + 1, 0, false},
		{"empty type", "system/*.*", "", PermRead, 0, false},
		{"star type only by wildcard", "system/Patient.rs", "*", PermRead, 0, false},
		{"star type by wildcard", "system/*.rs", "*", PermRead, LevelSystem, true},
		{"case-sensitive type", "patient/Observation.rs", "observation", PermRead, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustScopes(t, tt.scopes)
			level, ok := s.Grant(tt.resource, tt.perm)
			if ok != tt.ok || level != tt.level {
				t.Fatalf("Grant(%q, %s) on %q = %v, %v; want %v, %v", tt.resource, tt.perm, tt.scopes, level, ok, tt.level, tt.ok)
			}
		})
	}
}

func TestGrantQuery(t *testing.T) {
	const lab = "category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
	tests := []struct {
		name     string
		scopes   string
		resource string
		perm     Perm
		want     []string // Raw of the returned scopes, in order
	}{
		{"one", "patient/Observation.rs?" + lab, "Observation", PermSearch, []string{"patient/Observation.rs?" + lab}},
		{"other type", "patient/Observation.rs?" + lab, "Condition", PermSearch, nil},
		{"missing perm", "patient/Observation.r?" + lab, "Observation", PermSearch, nil},
		{"unconstrained not returned", "patient/Observation.rs", "Observation", PermRead, nil},
		{
			"broadest first", "patient/Observation.rs?a=1 system/*.r?b=2 user/Observation.rs?c=3", "Observation", PermRead,
			[]string{"system/*.r?b=2", "user/Observation.rs?c=3", "patient/Observation.rs?a=1"},
		},
		{"perms not combined", "patient/Observation.r?a=1 patient/Observation.s?a=1", "Observation", PermRead | PermSearch, nil},
		{"zero perm", "patient/Observation.rs?a=1", "Observation", 0, nil},
		{"empty type", "patient/Observation.rs?a=1", "", PermRead, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustScopes(t, tt.scopes).GrantQuery(tt.resource, tt.perm)
			var raws []string
			for _, sc := range got {
				raws = append(raws, sc.Raw)
				if sc.Query == "" {
					t.Fatalf("GrantQuery returned %q without a query", sc.Raw)
				}
			}
			if !equalStrings(raws, tt.want) {
				t.Fatalf("GrantQuery = %q, want %q", raws, tt.want)
			}
		})
	}
}
