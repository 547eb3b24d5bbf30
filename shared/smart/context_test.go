package smart

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func rawJSON(s string) *json.RawMessage {
	r := json.RawMessage(s)
	return &r
}

func TestContextItemValidate(t *testing.T) {
	tests := []struct {
		name string
		item ContextItem
		ok   bool
	}{
		{"reference", ContextItem{Reference: "ServiceRequest/sr-1"}, true},
		{"reference with type", ContextItem{Reference: "Coverage/cov-1", Type: "Coverage"}, true},
		{"reference with role", ContextItem{Reference: "List/123", Role: "https://example.org/med-list-at-home"}, true},
		{"canonical with version", ContextItem{Canonical: "https://example.org/Questionnaire/123/|v2023-05-03", Type: "Questionnaire", Role: "https://example.org/role/questionnaire-to-display"}, true},
		{"identifier", ContextItem{Identifier: rawJSON(`{"system":"urn:x","value":"1"}`), Type: "DeviceRequest"}, true},
		{"explicit launch role", ContextItem{Reference: "DeviceRequest/dr-oxygen-1", Role: "launch"}, true},
		{"patient with other role", ContextItem{Reference: "Patient/pat-2", Role: "https://example.org/role/caregiver"}, true},
		{"nothing", ContextItem{Type: "Observation"}, false},
		{"null identifier only", ContextItem{Identifier: rawJSON(`null`)}, false},
		{"identifier not object", ContextItem{Identifier: rawJSON(`"abc"`)}, false},
		{"identifier invalid json", ContextItem{Identifier: rawJSON(`{"system":`)}, false},
		{"absolute reference", ContextItem{Reference: "https://ehr.example.org/fhir/ServiceRequest/1"}, false},
		{"reference without id", ContextItem{Reference: "ServiceRequest/"}, false},
		{"reference without type", ContextItem{Reference: "sr-1"}, false},
		{"reference with history", ContextItem{Reference: "ServiceRequest/1/_history/2"}, false},
		{"reference bad id", ContextItem{Reference: "ServiceRequest/a b"}, false},
		{"type mismatch", ContextItem{Reference: "ServiceRequest/1", Type: "DeviceRequest"}, false},
		{"bad type", ContextItem{Canonical: "https://example.org/Q/1", Type: "questionnaire"}, false},
		{"relative canonical", ContextItem{Canonical: "Questionnaire/1"}, false},
		{"relative role", ContextItem{Reference: "List/1", Role: "med-list"}, false},
		{"patient without role", ContextItem{Reference: "Patient/pat-1"}, false},
		{"encounter with launch role", ContextItem{Reference: "Encounter/e1", Role: "launch"}, false},
		{"patient by type", ContextItem{Identifier: rawJSON(`{"value":"1"}`), Type: "Patient"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.item.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate(%+v) = %v, want ok=%v", tt.item, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidContext) {
				t.Fatalf("error %v is not ErrInvalidContext", err)
			}
		})
	}
}

func TestContextItemJSON(t *testing.T) {
	in := `[{"reference":"ServiceRequest/sr-1"},{"canonical":"https://example.org/Questionnaire/q|1","type":"Questionnaire","role":"https://example.org/r"},{"identifier":{"system":"urn:x","value":"1"}}]`
	var items []ContextItem
	if err := json.Unmarshal([]byte(in), &items); err != nil {
		t.Fatal(err)
	}
	if len(items) != 3 || items[0].Reference != "ServiceRequest/sr-1" || items[1].Type != "Questionnaire" || items[2].Identifier == nil {
		t.Fatalf("decoded %+v", items)
	}
	out, err := json.Marshal(items)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Fatalf("round trip:\n got %s\nwant %s", out, in)
	}
}

func TestAccessContextCarriesScopes(t *testing.T) {
	now := time.Unix(1700000000, 0)
	ac := AccessContext{
		Issuer: "https://localhost:8441/fhir", ClientID: "dtr-app", Subject: "prac-1",
		FHIRUser: "Practitioner/prac-1", Patient: "pat-1",
		Scopes:      mustScopes(t, "launch openid fhirUser patient/*.rs user/QuestionnaireResponse.cru"),
		FHIRContext: []ContextItem{{Reference: "DeviceRequest/dr-oxygen-1"}, {Reference: "Coverage/cov-1"}},
		IssuedAt:    now, ExpiresAt: now.Add(5 * time.Minute), TokenID: "jti-1",
	}
	if lvl, ok := ac.Scopes.Grant("QuestionnaireResponse", PermCreate); !ok || lvl != LevelUser {
		t.Fatalf("Grant = %v %v", lvl, ok)
	}
	for _, it := range ac.FHIRContext {
		if err := it.Validate(); err != nil {
			t.Fatal(err)
		}
	}
}
