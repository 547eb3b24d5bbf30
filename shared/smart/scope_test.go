package smart

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseScopeValid(t *testing.T) {
	tests := []struct {
		in       string
		level    Level
		resource string
		perms    Perm
		version  int
		query    string
	}{
		{"patient/Observation.read", LevelPatient, "Observation", PermRead | PermSearch, 1, ""},
		{"user/*.write", LevelUser, "*", PermCreate | PermUpdate | PermDelete, 1, ""},
		{"system/*.*", LevelSystem, "*", PermAll, 1, ""},
		{"patient/Observation.rs", LevelPatient, "Observation", PermRead | PermSearch, 2, ""},
		{"user/Patient.cruds", LevelUser, "Patient", PermAll, 2, ""},
		{"patient/Observation.c", LevelPatient, "Observation", PermCreate, 2, ""},
		{"patient/Observation.cu", LevelPatient, "Observation", PermCreate | PermUpdate, 2, ""},
		{"system/Encounter.cud", LevelSystem, "Encounter", PermCreate | PermUpdate | PermDelete, 2, ""},
		{"user/Appointment.ds", LevelUser, "Appointment", PermDelete | PermSearch, 2, ""},
		{"patient/*.r", LevelPatient, "*", PermRead, 2, ""},
		{
			"patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
			LevelPatient, "Observation", PermRead | PermSearch, 2,
			"category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
		},
		{"patient/Observation.rs?code:in=http://valueset.example.org/ValueSet/diabetes-codes", LevelPatient, "Observation", PermRead | PermSearch, 2, "code:in=http://valueset.example.org/ValueSet/diabetes-codes"},
		{"patient/Observation.rs?patient.birthdate=1990&_tag=a|b", LevelPatient, "Observation", PermRead | PermSearch, 2, "patient.birthdate=1990&_tag=a|b"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseScope(tt.in)
			if err != nil {
				t.Fatalf("ParseScope(%q): %v", tt.in, err)
			}
			want := Scope{Raw: tt.in, Level: tt.level, Resource: tt.resource, Perms: tt.perms, Version: tt.version, Query: tt.query}
			if got != want {
				t.Fatalf("ParseScope(%q) = %+v, want %+v", tt.in, got, want)
			}
			if got.String() != tt.in {
				t.Fatalf("String() = %q, want %q", got.String(), tt.in)
			}
			if !IsClinical(tt.in) {
				t.Fatalf("IsClinical(%q) = false", tt.in)
			}
		})
	}
}

func TestParseScopeInvalid(t *testing.T) {
	tests := []struct {
		name, in string
	}{
		{"empty", ""},
		{"missing resource", "patient/.read"},
		{"repeated letter", "patient/Observation.rr"},
		{"wrong order sr", "patient/Observation.sr"},
		{"wrong order dus", "patient/Observation.dus"},
		{"wrong order rc", "patient/Observation.rc"},
		{"unknown letter", "patient/Observation.rx"},
		{"upper-case letters", "patient/Observation.RS"},
		{"empty permissions", "patient/Observation."},
		{"no dot", "patient/Observation"},
		{"unknown level", "bogus/Observation.read"},
		{"capitalised level", "Patient/Observation.read"},
		{"no slash", "Observation.read"},
		{"not clinical openid", "openid"},
		{"not clinical launch/patient", "launch/patient"},
		{"lower-case resource", "patient/observation.read"},
		{"resource with digit", "patient/Observation2.read"},
		{"resource with dash", "patient/Obs-ervation.read"},
		{"double slash", "patient//Observation.read"},
		{"two dots", "patient/Observation.r.s"},
		{"v1 word mixed", "patient/Observation.reads"},
		{"v1 with query", "patient/Observation.read?category=laboratory"},
		{"v1 star with query", "patient/*.*?category=laboratory"},
		{"empty query", "patient/Observation.rs?"},
		{"query without value", "patient/Observation.rs?category"},
		{"query empty value", "patient/Observation.rs?category="},
		{"query empty name", "patient/Observation.rs?=laboratory"},
		{"query empty item", "patient/Observation.rs?a=1&&b=2"},
		{"query trailing amp", "patient/Observation.rs?a=1&"},
		{"query bad name", "patient/Observation.rs?1a=1"},
		{"query name with slash", "patient/Observation.rs?a/b=1"},
		{"space inside", "patient/Observation.rs extra"},
		{"tab", "patient/Observation.rs\t"},
		{"newline", "patient/Observation.rs\n"},
		{"double quote", `patient/Observation.rs?a="1"`},
		{"backslash", `patient/Observation.rs?a=\1`},
		{"unicode resource", "patient/Obsérvation.read"},
		{"unicode level", "pätient/Observation.read"},
		{"unicode in query", "patient/Observation.rs?category=labörat"},
		{"NUL byte", "patient/Observation.rs\x00"},
		{"very long resource", "patient/" + "O" + strings.Repeat("b", MaxResourceTypeLength) + ".rs"},
		{"very long scope", "patient/Observation.rs?a=" + strings.Repeat("x", MaxScopeLength)},
		{"wildcard perms in v2 position", "patient/Observation.c*"},
		{"star resource partial", "patient/Obs*.rs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseScope(tt.in)
			if err == nil {
				t.Fatalf("ParseScope(%q) = %+v, want error", tt.in, got)
			}
			if !errors.Is(err, ErrInvalidScope) {
				t.Fatalf("error %v is not ErrInvalidScope", err)
			}
			var se *ScopeError
			if !errors.As(err, &se) || se.Hint == "" {
				t.Fatalf("error %v carries no hint", err)
			}
			for i := 0; i < len(se.Hint); i++ {
				c := se.Hint[i]
				if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
					t.Fatalf("hint %q has byte %#x not allowed in an error_description", se.Hint, c)
				}
			}
			if len(se.Hint) > 400 {
				t.Fatalf("hint is %d bytes long", len(se.Hint))
			}
			if got != (Scope{}) {
				t.Fatalf("ParseScope returned %+v with an error", got)
			}
		})
	}
}

func TestIsClinical(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"patient/Observation.rs", true},
		{"user/*.*", true},
		{"system/*.rs", true},
		{"patient/.read", true}, // clinical namespace, malformed: ParseScope refuses it
		{"openid", false},
		{"launch/patient", false},
		{"bogus/Observation.read", false},
		{"Patient/Observation.read", false},
		{"patient", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := IsClinical(tt.in); got != tt.want {
				t.Fatalf("IsClinical(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestLevelAndPermString(t *testing.T) {
	levels := map[Level]string{LevelPatient: "patient", LevelUser: "user", LevelSystem: "system", 0: "Level(0)"}
	for l, want := range levels {
		if got := l.String(); got != want {
			t.Errorf("Level(%d).String() = %q, want %q", int(l), got, want)
		}
	}
	if !(LevelPatient < LevelUser && LevelUser < LevelSystem) {
		t.Error("levels are not ordered patient < user < system")
	}
	perms := []struct {
		p    Perm
		want string
	}{
		{0, ""},
		{PermAll, "cruds"},
		{PermV1Read, "rs"},
		{PermV1Write, "cud"},
		{PermCreate | PermSearch, "cs"},
	}
	for _, tt := range perms {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("Perm(%d).String() = %q, want %q", tt.p, got, tt.want)
		}
	}
	if !PermAll.Has(PermV1Read) || PermV1Read.Has(PermCreate) {
		t.Error("Perm.Has is wrong")
	}
}

func TestKnownScope(t *testing.T) {
	for _, s := range []string{"openid", "fhirUser", "profile", "launch", "launch/patient", "launch/encounter", "offline_access", "online_access"} {
		if !KnownScope(s) {
			t.Errorf("KnownScope(%q) = false", s)
		}
	}
	for _, s := range []string{"", "fhiruser", "launch/diagnosticreport", "patient/*.rs", "email"} {
		if KnownScope(s) {
			t.Errorf("KnownScope(%q) = true", s)
		}
	}
}

func TestParseScopes(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		strings  []string
		clinical []string
		other    []string
	}{
		{"empty", "", nil, nil, nil},
		{"only spaces", "   ", nil, nil, nil},
		{
			"mixed", "openid fhirUser launch patient/*.rs user/Patient.read offline_access",
			[]string{"openid", "fhirUser", "launch", "patient/*.rs", "user/Patient.read", "offline_access"},
			[]string{"patient/*.rs", "user/Patient.read"},
			[]string{"openid", "fhirUser", "launch", "offline_access"},
		},
		{
			"duplicates and repeated spaces", "openid  openid patient/*.rs  patient/*.rs",
			[]string{"openid", "patient/*.rs"}, []string{"patient/*.rs"}, []string{"openid"},
		},
		{
			"unknown other kept", "launch/diagnosticreport __profilePhoto.manage bogus/Observation.read https://ehr.example.org/scopes/x",
			[]string{"launch/diagnosticreport", "__profilePhoto.manage", "bogus/Observation.read", "https://ehr.example.org/scopes/x"},
			nil,
			[]string{"launch/diagnosticreport", "__profilePhoto.manage", "bogus/Observation.read", "https://ehr.example.org/scopes/x"},
		},
		{
			"launch scope with role query", "launch/list?role=https://example.org/med-list-at-home",
			[]string{"launch/list?role=https://example.org/med-list-at-home"}, nil,
			[]string{"launch/list?role=https://example.org/med-list-at-home"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseScopes(tt.in)
			if err != nil {
				t.Fatalf("ParseScopes(%q): %v", tt.in, err)
			}
			if got := s.Strings(); !equalStrings(got, tt.strings) {
				t.Fatalf("Strings() = %q, want %q", got, tt.strings)
			}
			if got, want := s.String(), strings.Join(tt.strings, " "); got != want {
				t.Fatalf("String() = %q, want %q", got, want)
			}
			if s.Len() != len(tt.strings) {
				t.Fatalf("Len() = %d, want %d", s.Len(), len(tt.strings))
			}
			var clin []string
			for _, c := range s.Clinical() {
				clin = append(clin, c.Raw)
			}
			if !equalStrings(clin, tt.clinical) {
				t.Fatalf("Clinical() = %q, want %q", clin, tt.clinical)
			}
			if got := s.Other(); !equalStrings(got, tt.other) {
				t.Fatalf("Other() = %q, want %q", got, tt.other)
			}
			for _, x := range tt.strings {
				if !s.Has(x) {
					t.Fatalf("Has(%q) = false", x)
				}
			}
			if s.Has("not-there") || s.Has("") {
				t.Fatal("Has reports a scope that is not there")
			}
		})
	}
}

func TestParseScopesInvalid(t *testing.T) {
	tests := []struct{ name, in string }{
		{"malformed clinical", "openid patient/.read"},
		{"wrong order", "launch patient/Observation.sr"},
		{"repeated letter", "patient/Observation.rr"},
		{"tab separated", "openid\tprofile"},
		{"newline", "openid\nprofile"},
		{"unicode other", "openid prófile"},
		{"non-breaking space", "openid\u00a0profile"},
		{"quote", `openid "profile"`},
		{"too long", strings.Repeat("openid ", MaxScopesLength/7+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseScopes(tt.in)
			if !errors.Is(err, ErrInvalidScope) {
				t.Fatalf("ParseScopes(%q) = %v, %v; want ErrInvalidScope", truncate(tt.in, 60), s, err)
			}
			if s.Len() != 0 {
				t.Fatalf("ParseScopes returned %d scopes with an error", s.Len())
			}
		})
	}
}

func TestScopesCopies(t *testing.T) {
	s, err := ParseScopes("openid patient/*.rs")
	if err != nil {
		t.Fatal(err)
	}
	s.Strings()[0] = "changed"
	s.Clinical()[0].Resource = "Changed"
	s.Other()[0] = "changed"
	if s.String() != "openid patient/*.rs" || s.Clinical()[0].Resource != "*" || s.Other()[0] != "openid" {
		t.Fatal("accessors leak the internal slices")
	}
}

func TestParseScopeList(t *testing.T) {
	s, err := ParseScopeList([]string{"openid", "", "patient/*.rs", "openid"})
	if err != nil {
		t.Fatal(err)
	}
	if s.String() != "openid patient/*.rs" {
		t.Fatalf("got %q", s.String())
	}
	if _, err := ParseScopeList([]string{"openid profile"}); !errors.Is(err, ErrInvalidScope) {
		t.Fatalf("an entry with a space: err = %v, want ErrInvalidScope", err)
	}
}

func TestScopesJSON(t *testing.T) {
	type wrapper struct {
		Scope Scopes `json:"scope"`
	}
	in := wrapper{}
	var err error
	if in.Scope, err = ParseScopes("openid patient/Observation.rs?category=a|b"); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"scope":"openid patient/Observation.rs?category=a|b"}` {
		t.Fatalf("marshal = %s", b)
	}
	var out wrapper
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Scope.String() != in.Scope.String() || len(out.Scope.Clinical()) != 1 {
		t.Fatalf("round trip = %q", out.Scope.String())
	}
	if err := json.Unmarshal([]byte(`{"scope":"patient/Observation.sr"}`), &out); !errors.Is(err, ErrInvalidScope) {
		t.Fatalf("unmarshal of a malformed scope: %v", err)
	}
}

func TestScopeErrorMessage(t *testing.T) {
	_, err := ParseScope("patient/Observation.rr")
	if err == nil || !strings.Contains(err.Error(), "patient/Observation.rr") {
		t.Fatalf("error %v does not name the scope", err)
	}
	long := "patient/Observation.rs?a=" + strings.Repeat("x", 5000)
	_, err = ParseScope(long)
	if err == nil || len(err.Error()) > 400 {
		t.Fatalf("error for a long scope is %d bytes", len(err.Error()))
	}
}

// FuzzParseScope: ParseScope never panics, and a scope it accepts
// re-stringifies to its Raw and is clinical, with consistent fields.
func FuzzParseScope(f *testing.F) {
	for _, s := range []string{
		"patient/Observation.read", "user/*.write", "system/*.*", "patient/Observation.rs",
		"user/Patient.cruds", "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
		"patient/.read", "patient/Observation.rr", "patient/Observation.sr", "bogus/Observation.read", "",
		"patient/Obsérvation.read", "patient/Observation.rs?", "patient/Observation.read?a=b", "openid",
		"patient/Observation.rs?a=1&b=2", "patient/*.c", "system/Encounter.cud", strings.Repeat("patient/", 300),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		sc, err := ParseScope(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidScope) {
				t.Fatalf("error %v is not ErrInvalidScope", err)
			}
			return
		}
		if sc.Raw != in || sc.String() != in {
			t.Fatalf("ParseScope(%q) = %+v, String() = %q", in, sc, sc.String())
		}
		if !IsClinical(in) {
			t.Fatalf("accepted %q but IsClinical is false", in)
		}
		if sc.Perms == 0 || sc.Perms&^PermAll != 0 || (sc.Version != 1 && sc.Version != 2) {
			t.Fatalf("inconsistent scope %+v", sc)
		}
		if sc.Query != "" && sc.Version != 2 {
			t.Fatalf("query on a v1 scope %+v", sc)
		}
		// A scope always covers itself and is granted by itself.
		if !sc.Covers(sc) {
			t.Fatalf("%q does not cover itself", in)
		}
		set, err := ParseScopes(in)
		if err != nil || set.String() != in {
			t.Fatalf("ParseScopes(%q) = %q, %v", in, set.String(), err)
		}
		if ok, reason := Allowed(in, in); !ok {
			t.Fatalf("Allowed(%q, itself) = false: %s", in, reason)
		}
	})
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
