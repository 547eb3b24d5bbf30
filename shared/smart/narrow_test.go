package smart

import (
	"strings"
	"testing"
)

// The fosite.ScopeStrategy signature, without importing fosite here.
var _ func(haystack []string, needle string) bool = ScopeStrategy

func TestAllowed(t *testing.T) {
	tests := []struct {
		name       string
		requested  string
		registered string
		want       bool
		reason     string // substring of the reason when refused
	}{
		{"exact non-clinical", "openid", "openid fhirUser launch", true, ""},
		{"non-clinical not registered", "offline_access", "openid fhirUser launch", false, "not registered"},
		{"non-clinical no prefix match", "launch/patient", "launch", false, "not registered"},
		{"non-clinical case-sensitive", "fhiruser", "fhirUser", false, "not registered"},
		{"non-clinical custom", "__profilePhoto.manage", "openid __profilePhoto.manage", true, ""},
		{"non-clinical glob chars are literal", "a.b", "a.*", false, "not registered"},
		{"wildcard registration narrows to type and perm", "patient/Observation.r", "patient/*.rs", true, ""},
		{"v1 star registration allows v1 read", "user/Patient.read", "user/*.*", true, ""},
		{"v1 read registration allows v2 rs", "patient/Observation.rs", "patient/*.read", true, ""},
		{"v1 read registration refuses write", "patient/Observation.write", "patient/*.read", false, "not covered"},
		{"broader level registered", "patient/Observation.rs", "user/*.rs", true, ""},
		{"narrower level registered", "user/Observation.rs", "patient/*.rs", false, "not covered"},
		{"more perms than registered", "patient/Observation.cruds", "patient/*.rs", false, "not covered"},
		{"other type registered", "patient/Observation.rs", "patient/Condition.rs", false, "not covered"},
		{"wildcard not allowed by type", "patient/*.rs", "patient/Observation.rs", false, "not covered"},
		{"union of registered scopes", "patient/Observation.rs", "patient/Observation.r patient/Observation.s", true, ""},
		{"granular request under plain registration", "patient/Observation.rs?category=laboratory", "patient/Observation.rs", true, ""},
		{"plain request under granular registration", "patient/Observation.rs", "patient/Observation.rs?category=laboratory", false, "not covered"},
		{"malformed request", "patient/Observation.sr", "patient/*.cruds", false, "in that order"},
		{"malformed request not exact matched", "patient/.read", "patient/.read", false, "resource type"},
		{"malformed registration grants nothing", "patient/Observation.r", "patient/*.rr", false, "not covered"},
		{"empty request", "", "openid", false, "empty"},
		{"empty registration", "openid", "", false, "not registered"},
		{"unicode request", "pätient/*.rs", "pätient/*.rs", false, "RFC 6749"},
		{"bogus level is opaque", "bogus/Observation.read", "bogus/Observation.read", true, ""},
		{"very long request", "patient/Observation.rs?a=" + strings.Repeat("x", MaxScopeLength), "patient/*.rs", false, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, reason := Allowed(tt.requested, tt.registered)
			if ok != tt.want {
				t.Fatalf("Allowed(%q, %q) = %v (%s), want %v", truncate(tt.requested, 60), tt.registered, ok, reason, tt.want)
			}
			if ok && reason != "" {
				t.Fatalf("allowed with a reason %q", reason)
			}
			if !ok && !strings.Contains(reason, tt.reason) {
				t.Fatalf("reason %q does not mention %q", reason, tt.reason)
			}
			if !ok {
				for i := 0; i < len(reason); i++ {
					if c := reason[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
						t.Fatalf("reason %q has byte %#x not allowed in an error_description", reason, c)
					}
				}
			}
		})
	}
}

func TestScopeStrategy(t *testing.T) {
	tests := []struct {
		name     string
		haystack []string
		needle   string
		want     bool
	}{
		// fosite's WildcardScopeStrategy would accept "patient/*.read" as a
		// glob over "patient/x.read", and HierarchicScopeStrategy would let
		// "patient/*" grant everything under it; ours follows SMART.
		{"v1 wildcard covers type", []string{"patient/*.read"}, "patient/Observation.read", true},
		{"no glob across levels", []string{"patient/*.read"}, "user/Observation.read", false},
		{"no hierarchy on dots", []string{"patient/Observation"}, "patient/Observation.read", false},
		{"granular narrowing", []string{"openid", "patient/*.rs"}, "patient/Observation.r", true},
		{"entries may be space-delimited", []string{"openid launch/patient", "user/*.*"}, "user/Patient.read", true},
		{"exact non-clinical", []string{"openid", "offline_access"}, "offline_access", true},
		{"refused", []string{"openid", "patient/*.rs"}, "patient/Observation.c", false},
		{"empty haystack", nil, "openid", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ScopeStrategy(tt.haystack, tt.needle); got != tt.want {
				t.Fatalf("ScopeStrategy(%q, %q) = %v, want %v", tt.haystack, tt.needle, got, tt.want)
			}
		})
	}
}
