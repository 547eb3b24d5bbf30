// Tests of literal reference parsing and the FHIR id rule.

package fhir

import (
	"strings"
	"testing"
)

func TestParseReference(t *testing.T) {
	tests := []struct {
		ref           string
		base, typ, id string
		ok            bool
	}{
		// relative
		{"Patient/123", "", "Patient", "123", true},
		{"DocumentReference/docref-draft-1", "", "DocumentReference", "docref-draft-1", true},
		{"Patient/a.b-C.9", "", "Patient", "a.b-C.9", true},
		{"Patient/123/_history/2", "", "Patient", "123", true},
		// absolute
		{"https://localhost:8441/fhir/Patient/pat-1", "https://localhost:8441/fhir", "Patient", "pat-1", true},
		{"http://ehr/Patient/1", "http://ehr", "Patient", "1", true},
		{"https://x.example/a/b/c/fhir/R4/Coverage/cov-1", "https://x.example/a/b/c/fhir/R4", "Coverage", "cov-1", true},
		{"https://localhost:8441/fhir/Patient/pat-1/_history/7", "https://localhost:8441/fhir", "Patient", "pat-1", true},
		{"https://[::1]:8441/fhir/Patient/pat-1", "https://[::1]:8441/fhir", "Patient", "pat-1", true},
		// not a reference to one resource by type and id
		{"", "", "", "", false},
		{"#pat", "", "", "", false},
		{"#", "", "", "", false},
		{"Patient?identifier=http://x|123", "", "", "", false},
		{"https://ehr/fhir/Patient?identifier=123", "", "", "", false},
		{"urn:uuid:5b0c1e7a-8d4f-4a63-9c4e-2d7f1f0b8a11", "", "", "", false},
		{"urn:oid:1.2.3", "", "", "", false},
		{"Patient/123#frag", "", "", "", false},
		{"https://ehr/fhir/Patient/1#x", "", "", "", false},
		{"Patient", "", "", "", false},
		{"Patient/", "", "", "", false},
		{"/Patient/1", "", "", "", false},
		{"fhir/Patient/1", "", "", "", false},
		{"Patient/1/", "", "", "", false},
		{"Patient//1", "", "", "", false},
		{"patient/1", "", "", "", false},
		{"Pat1ent/1", "", "", "", false},
		{"Patient/1 ", "", "", "", false},
		{" Patient/1", "", "", "", false},
		{"Patient/a_b", "", "", "", false},
		{"Patient/" + strings.Repeat("a", 65), "", "", "", false},
		{"Patient/1/_history/", "", "", "", false},
		{"Patient/1/_history/v_1", "", "", "", false},
		{"Patient/_history/1", "", "", "", false},
		{"Patient/1/_history", "", "", "", false},
		{"ftp://ehr/fhir/Patient/1", "", "", "", false},
		{"https://user:pw@ehr/fhir/Patient/1", "", "", "", false},
		{"https:///fhir/Patient/1", "", "", "", false},
		{"https://ehr/Patient", "", "", "", false},
		{"https://ehr//Patient/1", "", "", "", false},
		{"https://ehr/fhir/../Patient/1", "", "", "", false},
		{"https://ehr/./Patient/1", "", "", "", false},
		{"https://ehr/fh ir/Patient/1", "", "", "", false},
		{"https://ehr/fh\\ir/Patient/1", "", "", "", false},
		{"https://ehr/fhir/Patient/1/", "", "", "", false},
		{"HTTPS://ehr/fhir/Patient/1", "", "", "", false},
		{"Patient/1:2", "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			base, typ, id, ok := ParseReference(tt.ref)
			if base != tt.base || typ != tt.typ || id != tt.id || ok != tt.ok {
				t.Errorf("ParseReference(%q) = %q, %q, %q, %v; want %q, %q, %q, %v",
					tt.ref, base, typ, id, ok, tt.base, tt.typ, tt.id, tt.ok)
			}
		})
	}
}

func TestValidID(t *testing.T) {
	for _, id := range []string{"a", "pat-1", "A.b-9", strings.Repeat("x", 64), "123", "-", "."} {
		if !ValidID(id) {
			t.Errorf("ValidID(%q) = false", id)
		}
	}
	for _, id := range []string{"", strings.Repeat("x", 65), "a b", "a_b", "a/b", "é", "a:b", "a#", "a\n"} {
		if ValidID(id) {
			t.Errorf("ValidID(%q) = true", id)
		}
	}
}
