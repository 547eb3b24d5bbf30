package fhirapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"dtrsandbox/shared/fhir"
)

// TestBadInput: every malformed request answers 4xx with an
// OperationOutcome, never a 5xx, and stores nothing.
func TestBadInput(t *testing.T) {
	a := newAPI(t)
	big := questionnaireResponse("Patient/pat-1", `"text":{"status":"generated","div":"<div>`+strings.Repeat("x", DefaultMaxBodyBytes)+`</div>"}`)
	tests := []struct {
		name                string
		method, path, body  string
		contentType, accept string
		want                int
		wantCode            string
	}{
		{"unknown type", "GET", "/fhir/Foo/1", "", "", "", 404, "not-supported"},
		{"unknown type search", "GET", "/fhir/Observation", "", "", "", 404, "not-supported"},
		{"odd type name", "GET", "/fhir/%3Cscript%3E", "", "", "", 404, "not-supported"},
		{"invalid id", "GET", "/fhir/Patient/bad_id", "", "", "", 400, "value"},
		{"id too long", "GET", "/fhir/Patient/" + strings.Repeat("a", 65), "", "", "", 400, "value"},
		{"unknown search parameter", "GET", "/fhir/Patient?name=Whitfield", "", "", "", 400, "not-supported"},
		{"search modifier", "GET", "/fhir/Coverage?patient:missing=true", "", "", "", 400, "not-supported"},
		{"bad _count", "GET", "/fhir/Patient?_count=x", "", "", "", 400, "not-supported"},
		{"_format xml", "GET", "/fhir/Patient/pat-1?_format=xml", "", "", "", 406, "not-supported"},
		{"Accept xml only", "GET", "/fhir/Patient/pat-1", "", "", "application/fhir+xml", 406, "not-supported"},
		{"_search form with xml _format", "POST", "/fhir/Patient/_search", "_format=xml", "application/x-www-form-urlencoded", "", 406, "not-supported"},
		{"_search with JSON body", "POST", "/fhir/Patient/_search", `{"_id":"pat-1"}`, fhir.ContentType, "", 415, "not-supported"},
		{"_search bad form", "POST", "/fhir/Patient/_search", "_id=%zz", "application/x-www-form-urlencoded", "", 400, "structure"},
		{"create text/plain", "POST", "/fhir/QuestionnaireResponse", questionnaireResponse("Patient/pat-1"), "text/plain", "", 415, "not-supported"},
		{"create without content type", "POST", "/fhir/QuestionnaireResponse", questionnaireResponse("Patient/pat-1"), "-", "", 415, "not-supported"},
		{"create latin-1", "POST", "/fhir/QuestionnaireResponse", questionnaireResponse("Patient/pat-1"), "application/fhir+json; charset=iso-8859-1", "", 415, "not-supported"},
		{"create fhir+xml", "POST", "/fhir/QuestionnaireResponse", "<QuestionnaireResponse/>", "application/fhir+xml", "", 415, "not-supported"},
		{"malformed JSON", "POST", "/fhir/QuestionnaireResponse", `{"resourceType":"QuestionnaireResponse",`, "", "", 400, "structure"},
		{"not an object", "POST", "/fhir/QuestionnaireResponse", `["QuestionnaireResponse"]`, "", "", 400, "structure"},
		{"empty body", "POST", "/fhir/QuestionnaireResponse", "", fhir.ContentType, "", 400, "structure"},
		{"duplicate key", "POST", "/fhir/QuestionnaireResponse", strings.Replace(questionnaireResponse("Patient/pat-1"), `"status":"completed"`, `"status":"completed","status":"in-progress"`, 1), "", "", 400, "structure"},
		{"duplicate subject", "POST", "/fhir/QuestionnaireResponse", strings.Replace(questionnaireResponse("Patient/pat-1"), `"subject":`, `"subject":{"reference":"Patient/pat-2"},"subject":`, 1), "", "", 400, "structure"},
		{"case-variant key", "POST", "/fhir/QuestionnaireResponse", strings.Replace(questionnaireResponse("Patient/pat-1"), `"subject":`, `"Subject":{"reference":"Patient/pat-2"},"subject":`, 1), "", "", 400, "structure"},
		{"miscased element", "POST", "/fhir/QuestionnaireResponse", strings.Replace(questionnaireResponse("Patient/pat-1"), `"subject":`, `"SUBJECT":`, 1), "", "", 400, "structure"},
		{"trailing data", "POST", "/fhir/QuestionnaireResponse", questionnaireResponse("Patient/pat-1") + "{}", "", "", 400, "structure"},
		{"wrong JSON type", "POST", "/fhir/QuestionnaireResponse", strings.Replace(questionnaireResponse("Patient/pat-1"), `"status":"completed"`, `"status":true`, 1), "", "", 400, "structure"},
		{"resourceType mismatch", "POST", "/fhir/QuestionnaireResponse", documentReference("Patient/pat-1"), "", "", 400, "invalid"},
		{"missing status", "POST", "/fhir/QuestionnaireResponse", strings.Replace(questionnaireResponse("Patient/pat-1"), `"status":"completed",`, ``, 1), "", "", 400, "required"},
		{"unknown status", "POST", "/fhir/QuestionnaireResponse", strings.Replace(questionnaireResponse("Patient/pat-1"), `"completed"`, `"done"`, 1), "", "", 400, "required"},
		{"DocumentReference without content", "POST", "/fhir/DocumentReference", `{"resourceType":"DocumentReference","status":"current","subject":{"reference":"Patient/pat-1"}}`, "", "", 400, "structure"},
		{"oversized body", "POST", "/fhir/QuestionnaireResponse", big, "", "", 413, "too-costly"},
		{"oversized _search form", "POST", "/fhir/Patient/_search", "_id=" + strings.Repeat("a", DefaultMaxBodyBytes), "application/x-www-form-urlencoded", "", 413, "too-costly"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := a.count(t, "QuestionnaireResponse") + a.count(t, "DocumentReference")
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			r := httptest.NewRequest(tc.method, tc.path, body)
			r.Header.Set("Authorization", "Bearer user-write")
			switch tc.contentType {
			case "":
				r.Header.Set("Content-Type", fhir.ContentType)
			case "-":
			default:
				r.Header.Set("Content-Type", tc.contentType)
			}
			if tc.accept != "" {
				r.Header.Set("Accept", tc.accept)
			}
			w := httptest.NewRecorder()
			a.engine.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			oo := outcome(t, w)
			if oo.Issue[0].Code != tc.wantCode || oo.Issue[0].Severity != "error" {
				t.Errorf("issue %+v, want code %s", oo.Issue[0], tc.wantCode)
			}
			if strings.Contains(oo.Issue[0].Diagnostics, "<script>") {
				t.Errorf("input echoed: %s", oo.Issue[0].Diagnostics)
			}
			if after := a.count(t, "QuestionnaireResponse") + a.count(t, "DocumentReference"); after != before {
				t.Errorf("a refused request stored %d resources", after-before)
			}
		})
	}

	t.Run("oversized body without Content-Length", func(t *testing.T) {
		r := httptest.NewRequest("POST", "/fhir/QuestionnaireResponse", io.MultiReader(strings.NewReader(big)))
		r.ContentLength = -1 // chunked: the cap is found while reading
		r.Header.Set("Authorization", "Bearer user-write")
		r.Header.Set("Content-Type", fhir.ContentType)
		w := httptest.NewRecorder()
		a.engine.ServeHTTP(w, r)
		if w.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d", w.Code)
		}
		outcome(t, w)
	})

	t.Run("accepted formats", func(t *testing.T) {
		for _, tc := range []struct{ query, accept string }{
			{"_format=json", ""}, {"_format=application/fhir%2Bjson", ""}, {"", "application/fhir+json"},
			{"", "application/json"}, {"", "*/*"}, {"", "text/html, application/xhtml+xml, */*;q=0.8"},
		} {
			r := httptest.NewRequest("GET", "/fhir/Patient/pat-1?"+tc.query, nil)
			r.Header.Set("Authorization", "Bearer user-write")
			if tc.accept != "" {
				r.Header.Set("Accept", tc.accept)
			}
			w := httptest.NewRecorder()
			a.engine.ServeHTTP(w, r)
			if w.Code != 200 {
				t.Errorf("%q %q: %d", tc.query, tc.accept, w.Code)
			}
		}
	})
}

// TestMetadata: the CapabilityStatement is public and lists what the API
// implements, with the SMART oauth-uris.
func TestMetadata(t *testing.T) {
	a := newAPI(t)
	w := a.do(t, call{method: "GET", path: "/fhir/metadata"})
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), fhir.ContentType) {
		t.Fatalf("status %d, %s", w.Code, w.Header().Get("Content-Type"))
	}
	var cs fhir.CapabilityStatement
	if err := fhir.Decode(w.Body.Bytes(), &cs); err != nil {
		t.Fatal(err)
	}
	if cs.ResourceType != "CapabilityStatement" || cs.FHIRVersion != "4.0.1" || cs.Kind != "instance" || len(cs.Rest) != 1 {
		t.Fatalf("statement %+v", cs)
	}
	sec := cs.Rest[0].Security
	if sec == nil || len(sec.Service) != 1 || sec.Service[0].Coding[0].Code != "SMART-on-FHIR" ||
		sec.Service[0].Coding[0].System != "http://terminology.hl7.org/CodeSystem/restful-security-service" {
		t.Fatalf("security %+v", sec)
	}
	uris := map[string]string{}
	for _, ext := range sec.Extension {
		if ext.URL == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris" {
			for _, sub := range ext.Extension {
				uris[sub.URL] = sub.ValueURI
			}
		}
	}
	want := map[string]string{
		"authorize": "https://ehr.test/oauth/authorize", "token": "https://ehr.test/oauth/token",
		"revoke": "https://ehr.test/oauth/revoke", "introspect": "https://ehr.test/oauth/introspect",
		"register": "https://ehr.test/oauth/register",
	}
	for k, v := range want {
		if uris[k] != v {
			t.Errorf("oauth-uris %s = %q, want %q", k, uris[k], v)
		}
	}
	interactions := map[string]string{}
	params := map[string]int{}
	for _, r := range cs.Rest[0].Resource {
		var codes []string
		for _, i := range r.Interaction {
			codes = append(codes, i.Code)
		}
		interactions[r.Type] = strings.Join(codes, ",")
		params[r.Type] = len(r.SearchParam)
	}
	for typ := range served {
		wantI := "read,search-type"
		if served[typ].writable {
			wantI += ",create,update"
		}
		if interactions[typ] != wantI {
			t.Errorf("%s interactions %q, want %q", typ, interactions[typ], wantI)
		}
		if params[typ] < 5 { // _id, _lastUpdated, _count, _offset, identifier at least
			t.Errorf("%s lists %d search parameters", typ, params[typ])
		}
	}
	if len(interactions) != len(served) {
		t.Errorf("%d resource types listed, want %d", len(interactions), len(served))
	}
	raw := map[string]any{}
	_ = json.Unmarshal(w.Body.Bytes(), &raw)
	if _, ok := raw["date"]; !ok {
		t.Error("no date")
	}
}
