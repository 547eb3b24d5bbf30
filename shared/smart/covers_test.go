package smart

import "testing"

func TestCovers(t *testing.T) {
	tests := []struct {
		name     string
		have     string
		required string
		want     bool
	}{
		{"identical", "patient/DocumentReference.cruds", "patient/DocumentReference.cruds", true},
		{"empty required", "", "", true},
		{"empty required with scopes", "patient/*.rs", "", true},
		{"required but nothing held", "", "patient/DocumentReference.r", false},
		{"non-clinical ignored on both sides", "launch", "openid fhirUser launch/patient", true},
		{"non-clinical not enough", "openid fhirUser", "openid patient/DocumentReference.rs", false},
		{"wildcard resource", "patient/*.cruds", "patient/DocumentReference.cu", true},
		{"wildcard not covered by type", "patient/DocumentReference.cruds", "patient/*.r", false},
		{"other resource", "patient/QuestionnaireResponse.cruds", "patient/DocumentReference.r", false},
		{"permission superset", "patient/DocumentReference.cruds", "patient/DocumentReference.rs", true},
		{"permission subset", "patient/DocumentReference.rs", "patient/DocumentReference.cruds", false},
		{"missing one bit", "patient/DocumentReference.crus", "patient/DocumentReference.cruds", false},
		{"user covers patient", "user/DocumentReference.cruds", "patient/DocumentReference.cruds", true},
		{"system covers user", "system/*.*", "user/DocumentReference.cud", true},
		{"system covers patient", "system/DocumentReference.rs", "patient/DocumentReference.r", true},
		{"patient does not cover user", "patient/DocumentReference.cruds", "user/DocumentReference.r", false},
		{"user does not cover system", "user/*.cruds", "system/DocumentReference.r", false},
		{"v1 read covers v2 rs", "patient/*.read", "patient/DocumentReference.rs", true},
		{"v2 rs covers v1 read", "patient/DocumentReference.rs", "patient/DocumentReference.read", true},
		{"v1 write covers cud", "user/DocumentReference.write", "user/DocumentReference.cud", true},
		{"v1 write does not cover read", "user/DocumentReference.write", "user/DocumentReference.read", false},
		{"v1 star covers cruds", "user/*.*", "user/Patient.cruds", true},
		{"v2 cruds covers v1 star", "user/Patient.cruds", "user/Patient.*", true},
		{"union of scopes (equivalence)", "patient/DocumentReference.r patient/DocumentReference.s", "patient/DocumentReference.rs", true},
		{"union across resources and levels", "patient/DocumentReference.rs user/*.cud", "patient/DocumentReference.cruds", true},
		{"every required scope", "patient/DocumentReference.rs", "patient/DocumentReference.rs patient/QuestionnaireResponse.rs", false},
		{"every required scope held", "patient/DocumentReference.rs patient/QuestionnaireResponse.rs", "patient/QuestionnaireResponse.r patient/DocumentReference.s", true},
		{"unconstrained covers query", "patient/Observation.rs", "patient/Observation.rs?category=laboratory", true},
		{"same query", "patient/Observation.rs?category=laboratory", "patient/Observation.r?category=laboratory", true},
		{"same query other order", "patient/Observation.rs?a=1&b=2", "patient/Observation.rs?b=2&a=1", true},
		{"different query", "patient/Observation.rs?category=vital-signs", "patient/Observation.rs?category=laboratory", false},
		{"query does not cover unconstrained", "patient/Observation.rs?category=laboratory", "patient/Observation.rs", false},
		{"query subset is not the same query", "patient/Observation.rs?a=1", "patient/Observation.rs?a=1&b=2", false},
		{"query scopes union with same query", "patient/Observation.r?a=1 patient/Observation.s?a=1", "patient/Observation.rs?a=1", true},
		{"query scopes union with other query", "patient/Observation.r?a=1 patient/Observation.s?a=2", "patient/Observation.rs?a=1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			have := mustScopes(t, tt.have)
			req := mustScopes(t, tt.required)
			if got := have.Covers(req); got != tt.want {
				t.Fatalf("%q Covers %q = %v, want %v", tt.have, tt.required, got, tt.want)
			}
		})
	}
}

func TestScopeCovers(t *testing.T) {
	a, _ := ParseScope("user/*.rs")
	b, _ := ParseScope("patient/Observation.r")
	if !a.Covers(b) || b.Covers(a) {
		t.Fatalf("user/*.rs vs patient/Observation.r: %v %v", a.Covers(b), b.Covers(a))
	}
}
