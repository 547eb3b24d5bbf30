package fhirapi

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestAuthentication: RFC 6750 §3.1 challenges, OperationOutcome bodies.
func TestAuthentication(t *testing.T) {
	a := newAPI(t)
	tests := []struct {
		name       string
		header     string
		wantStatus int
		wantChall  string // substring of WWW-Authenticate
		noError    bool   // the challenge must carry no error code
	}{
		{"no credentials", "", http.StatusUnauthorized, `Bearer realm=`, true},
		{"other scheme", "Basic cDE6cw==", http.StatusUnauthorized, `Bearer realm=`, true},
		{"empty bearer", "Bearer ", http.StatusUnauthorized, `Bearer realm=`, true},
		{"not a token68", "Bearer a b", http.StatusUnauthorized, `Bearer realm=`, true},
		{"unknown token", "Bearer nope", http.StatusUnauthorized, `error="invalid_token"`, false},
		{"expired", "Bearer expired", http.StatusUnauthorized, `error="invalid_token"`, false},
		{"scheme is case-insensitive", "bearer p1-rs", http.StatusOK, "", false},
		{"verifier failure", "Bearer verifier-down", http.StatusInternalServerError, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := a.do(t, call{method: "GET", path: "/fhir/Patient/pat-1", header: map[string]string{"Authorization": tc.header}})
			if w.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.wantStatus, w.Body)
			}
			chall := w.Header().Get("WWW-Authenticate")
			if !strings.Contains(chall, tc.wantChall) || (tc.noError && strings.Contains(chall, "error=")) {
				t.Errorf("WWW-Authenticate %q", chall)
			}
			if w.Code != http.StatusOK {
				oo := outcome(t, w)
				if strings.Contains(oo.Issue[0].Diagnostics, "unreachable") {
					t.Errorf("internal cause leaked: %s", oo.Issue[0].Diagnostics)
				}
			}
		})
	}
}

// TestScopeEnforcement: every interaction against v1 and v2 scopes at the
// patient, user and system levels.
func TestScopeEnforcement(t *testing.T) {
	a := newAPI(t)
	tests := []struct {
		name, token, method, path, body string
		want                            int
	}{
		// read
		{"v2 patient read own Patient", "p1-rs", "GET", "/fhir/Patient/pat-1", "", 200},
		{"v2 patient read own order", "p1-rs", "GET", "/fhir/DeviceRequest/dr-oxygen-1", "", 200},
		{"v2 patient read own Coverage", "p1-rs", "GET", "/fhir/Coverage/cov-1", "", 200},
		{"v2 patient read own Encounter", "p1-rs", "GET", "/fhir/Encounter/enc-1", "", 200},
		{"v2 patient read another Patient", "p1-rs", "GET", "/fhir/Patient/pat-2", "", 404},
		{"v2 patient read another's order", "p1-rs", "GET", "/fhir/DeviceRequest/dr-cpap-2", "", 404},
		{"v2 patient read another's Coverage", "p1-rs", "GET", "/fhir/Coverage/cov-3", "", 404},
		{"v2 patient read missing", "p1-rs", "GET", "/fhir/DeviceRequest/nope", "", 404},
		{"v2 patient read Practitioner (no compartment)", "p1-rs", "GET", "/fhir/Practitioner/prac-2", "", 200},
		{"v2 patient read Organization (no compartment)", "p1-rs", "GET", "/fhir/Organization/org-payer", "", 200},
		{"v2 .r alone reads", "p1-r-patient", "GET", "/fhir/Patient/pat-1", "", 200},
		{"v2 .s alone does not read", "p1-s-patient", "GET", "/fhir/Patient/pat-1", "", 403},
		{"scope on another type", "p1-patient", "GET", "/fhir/Coverage/cov-1", "", 403},
		{"v1 patient read", "p1-v1-read", "GET", "/fhir/Coverage/cov-1", "", 200},
		{"v1 patient read another's", "p1-v1-read", "GET", "/fhir/Coverage/cov-2", "", 404},
		{"v2 user read any patient", "user-rs", "GET", "/fhir/Patient/pat-3", "", 200},
		{"v1 user read any patient", "user-v1", "GET", "/fhir/MedicationRequest/mr-metformin-2", "", 200},
		{"system read", "system", "GET", "/fhir/Coverage/cov-2", "", 200},
		{"identity scopes only", "identity", "GET", "/fhir/Patient/pat-1", "", 403},
		{"patient scope without patient context", "no-patient", "GET", "/fhir/Patient/pat-1", "", 403},
		{"patient scope without patient context, Practitioner", "no-patient", "GET", "/fhir/Practitioner/prac-1", "", 403},
		// search
		{"v2 patient search", "p1-rs", "GET", "/fhir/Coverage", "", 200},
		{"v2 .r alone does not search", "p1-r-patient", "GET", "/fhir/Patient", "", 403},
		{"v2 .s alone searches", "p1-s-patient", "GET", "/fhir/Patient", "", 200},
		{"v1 user search", "user-v1", "GET", "/fhir/Encounter?patient=pat-2", "", 200},
		{"identity scopes do not search", "identity", "GET", "/fhir/Patient", "", 403},
		{"search POST", "p1-rs", "POST", "/fhir/Coverage/_search", "", 200},
		// create
		{"v2 patient create own", "p1-write", "POST", "/fhir/QuestionnaireResponse", questionnaireResponse("Patient/pat-1"), 201},
		{"v2 patient create DocumentReference", "p1-write", "POST", "/fhir/DocumentReference", documentReference("Patient/pat-1"), 201},
		{"v1 patient write creates", "p1-v1", "POST", "/fhir/QuestionnaireResponse", questionnaireResponse("Patient/pat-1"), 201},
		{"read scopes do not create", "p1-rs", "POST", "/fhir/QuestionnaireResponse", questionnaireResponse("Patient/pat-1"), 403},
		{"create scope on another type", "p1-create", "POST", "/fhir/DocumentReference", documentReference("Patient/pat-1"), 403},
		{"v1 read does not create", "user-v1", "POST", "/fhir/QuestionnaireResponse", questionnaireResponse("Patient/pat-1"), 403},
		{"v2 user create", "user-write", "POST", "/fhir/QuestionnaireResponse", questionnaireResponse("Patient/pat-2"), 201},
		{"v1 user .* creates", "user-v1-all", "POST", "/fhir/QuestionnaireResponse", questionnaireResponse("Patient/pat-3"), 201},
		{"system create", "system", "POST", "/fhir/QuestionnaireResponse", questionnaireResponse("Patient/pat-3"), 201},
		{"create on a read-only type", "user-v1-all", "POST", "/fhir/Patient", `{"resourceType":"Patient"}`, 405},
		// update scope (the resource does not exist: the scope is checked first)
		{"create-only scope does not update", "p1-create", "PUT", "/fhir/QuestionnaireResponse/x1", questionnaireResponse("Patient/pat-1", `"id":"x1"`), 403},
		{"v1 read does not update", "user-v1", "PUT", "/fhir/QuestionnaireResponse/x1", questionnaireResponse("Patient/pat-1", `"id":"x1"`), 403},
		{"update of a missing resource", "p1-write", "PUT", "/fhir/QuestionnaireResponse/x1", questionnaireResponse("Patient/pat-1", `"id":"x1"`), 404},
		{"update on a read-only type", "user-v1-all", "PUT", "/fhir/Patient/pat-1", `{"resourceType":"Patient","id":"pat-1"}`, 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := call{method: tc.method, path: tc.path, token: tc.token, body: tc.body}
			if strings.HasSuffix(tc.path, "/_search") {
				c.body = "patient=pat-1"
				c.header = map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
			}
			w := a.do(t, c)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if w.Code >= 400 {
				oo := outcome(t, w)
				if w.Code == 404 && oo.Issue[0].Code != "not-found" {
					t.Errorf("404 issue code %q", oo.Issue[0].Code)
				}
			}
			if w.Code == 403 {
				if ch := w.Header().Get("WWW-Authenticate"); !strings.Contains(ch, `error="insufficient_scope"`) {
					t.Errorf("403 challenge %q", ch)
				}
			}
		})
	}
}

// TestPatientConfinedSearch: a patient-level token's searches return only
// its patient's resources whatever the parameters; user and system tokens
// see everything.
func TestPatientConfinedSearch(t *testing.T) {
	a := newAPI(t)
	tests := []struct {
		token, path string
		form        string // POST _search body when not ""
		want        []string
	}{
		{"p1-rs", "/fhir/Coverage", "", []string{"cov-1"}},
		{"p1-rs", "/fhir/Coverage?patient=pat-2", "", nil},
		{"p1-rs", "/fhir/Coverage?patient=pat-1,pat-2,pat-3", "", []string{"cov-1"}},
		{"p1-rs", "/fhir/DeviceRequest?_id=dr-cpap-2,dr-oxygen-1", "", []string{"dr-oxygen-1"}},
		{"p1-rs", "/fhir/Patient", "", []string{"pat-1"}},
		{"p1-rs", "/fhir/Patient?identifier=RB-000102", "", nil},
		{"p1-rs", "/fhir/Encounter?subject=Patient/pat-3", "", nil},
		{"p1-rs", "/fhir/Practitioner", "", []string{"prac-1", "prac-2"}},
		{"p1-rs", "/fhir/Coverage/_search", "patient=pat-2", nil},
		{"p1-rs", "/fhir/Coverage/_search?status=active", "_id=cov-1", []string{"cov-1"}},
		{"p1-v1-read", "/fhir/MedicationRequest", "", []string{"mr-lisinopril-1"}},
		{"user-rs", "/fhir/Coverage", "", []string{"cov-1", "cov-2", "cov-3"}},
		{"user-rs", "/fhir/Coverage/_search", "patient=pat-2", []string{"cov-2"}},
		{"system", "/fhir/Patient?_id=pat-2,pat-3", "", []string{"pat-2", "pat-3"}},
	}
	for _, tc := range tests {
		t.Run(tc.token+" "+tc.path+" "+tc.form, func(t *testing.T) {
			c := call{method: "GET", path: tc.path, token: tc.token}
			if tc.form != "" {
				c.method, c.body = "POST", tc.form
				c.header = map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
			}
			w := a.do(t, c)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			b := decodeBundle(t, w)
			got := b.ids()
			slices.Sort(got)
			if !slices.Equal(got, tc.want) || *b.Total != len(tc.want) {
				t.Errorf("ids %v total %d, want %v", got, *b.Total, tc.want)
			}
		})
	}
}

// TestSearchPaging: total counts every match, next/previous links page
// through them, and self is a GET URL of the same search.
func TestSearchPaging(t *testing.T) {
	a := newAPI(t)
	w := a.do(t, call{method: "GET", path: "/fhir/Patient?_count=2", token: "user-rs"})
	b := decodeBundle(t, w)
	if *b.Total != 3 || len(b.Entry) != 2 {
		t.Fatalf("total %d, %d entries", *b.Total, len(b.Entry))
	}
	links := map[string]string{}
	for _, l := range b.Link {
		links[l.Relation] = l.URL
	}
	if links["self"] != base+"/Patient?_count=2" {
		t.Errorf("self %q", links["self"])
	}
	next, err := url.Parse(links["next"])
	if err != nil || next.Query().Get("_offset") != "2" {
		t.Fatalf("next %q", links["next"])
	}
	w = a.do(t, call{method: "GET", path: "/fhir/Patient?" + next.RawQuery, token: "user-rs"})
	b2 := decodeBundle(t, w)
	if len(b2.Entry) != 1 || slices.Contains(b.ids(), b2.ids()[0]) {
		t.Errorf("second page %v after %v", b2.ids(), b.ids())
	}
	for _, l := range b2.Link {
		if l.Relation == "next" {
			t.Errorf("last page has a next link")
		}
	}
}
