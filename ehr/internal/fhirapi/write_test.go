package fhirapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type stored struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	Meta         struct {
		VersionID   string `json:"versionId"`
		LastUpdated string `json:"lastUpdated"`
	} `json:"meta"`
	Status  string `json:"status"`
	Subject struct {
		Reference string `json:"reference"`
	} `json:"subject"`
}

func decodeStored(t testing.TB, w *httptest.ResponseRecorder) stored {
	t.Helper()
	var s stored
	if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil {
		t.Fatalf("%v: %s", err, w.Body)
	}
	return s
}

// TestCreate: 201 with Location, ETag and the stored body; the subject
// rules per level; nothing stored when refused.
func TestCreate(t *testing.T) {
	a := newAPI(t)
	w := a.do(t, call{method: "POST", path: "/fhir/QuestionnaireResponse", token: "p1-write",
		body: questionnaireResponse("Patient/pat-1", `"id":"mine"`)})
	if w.Code != http.StatusCreated {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	s := decodeStored(t, w)
	if s.ID == "" || s.ID == "mine" || s.Meta.VersionID != "1" || s.Meta.LastUpdated == "" {
		t.Errorf("stored %+v", s)
	}
	if loc := w.Header().Get("Location"); loc != base+"/QuestionnaireResponse/"+s.ID+"/_history/1" {
		t.Errorf("Location %q", loc)
	}
	if et := w.Header().Get("ETag"); et != `W/"1"` {
		t.Errorf("ETag %q", et)
	}
	if w.Header().Get("Last-Modified") == "" {
		t.Error("no Last-Modified")
	}
	if !strings.HasPrefix(w.Header().Get("Content-Type"), "application/fhir+json") {
		t.Errorf("Content-Type %q", w.Header().Get("Content-Type"))
	}
	// The app that wrote it can read it back; another patient's token cannot.
	if r := a.do(t, call{method: "GET", path: "/fhir/QuestionnaireResponse/" + s.ID, token: "p1-rs"}); r.Code != 200 || r.Body.String() != w.Body.String() {
		t.Errorf("read back %d: %s", r.Code, r.Body)
	}
	a.verifierAdd(t, "p2-rs", "patient/*.rs", "pat-2")
	if r := a.do(t, call{method: "GET", path: "/fhir/QuestionnaireResponse/" + s.ID, token: "p2-rs"}); r.Code != 404 {
		t.Errorf("pat-2 token read pat-1's response: %d", r.Code)
	}

	refused := []struct {
		name, token, body string
		want              int
	}{
		{"patient token, another patient", "p1-write", questionnaireResponse("Patient/pat-2"), 403},
		{"patient token, no subject", "p1-write", questionnaireResponse(""), 403},
		{"patient token, contained subject", "p1-write", questionnaireResponse("#p"), 403},
		{"patient token, conditional subject", "p1-write", questionnaireResponse("Patient?identifier=RB-000101"), 403},
		{"patient token, other server", "p1-write", questionnaireResponse("https://elsewhere.test/fhir/Patient/pat-1"), 403},
		{"patient token, not a Patient", "p1-write", questionnaireResponse("Group/pat-1"), 403},
		{"patient token, another patient's encounter", "p1-write", questionnaireResponse("Patient/pat-1", `"encounter":{"reference":"Encounter/enc-2"}`), 422},
		{"patient token, missing encounter", "p1-write", questionnaireResponse("Patient/pat-1", `"encounter":{"reference":"Encounter/enc-9"}`), 422},
		{"patient token, DocumentReference for another", "p1-write", documentReference("Patient/pat-3"), 403},
		{"user token, unknown patient", "user-write", questionnaireResponse("Patient/pat-9"), 422},
		{"user token, no subject", "user-write", questionnaireResponse(""), 422},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			typ := "QuestionnaireResponse"
			if strings.Contains(tc.body, `"DocumentReference"`) {
				typ = "DocumentReference"
			}
			before := a.count(t, typ)
			w := a.do(t, call{method: "POST", path: "/fhir/" + typ, token: tc.token, body: tc.body})
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			outcome(t, w)
			if after := a.count(t, typ); after != before {
				t.Errorf("%d %s stored by a refused create", after-before, typ)
			}
		})
	}

	accepted := []struct{ name, token, body string }{
		{"absolute subject on this server", "p1-write", questionnaireResponse(base + "/Patient/pat-1")},
		{"own encounter", "p1-write", questionnaireResponse("Patient/pat-1", `"encounter":{"reference":"Encounter/enc-1"}`)},
		{"user token, any patient", "user-write", questionnaireResponse("Patient/pat-3")},
		{"media type application/json", "p1-write", questionnaireResponse("Patient/pat-1")},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			c := call{method: "POST", path: "/fhir/QuestionnaireResponse", token: tc.token, body: tc.body}
			if strings.Contains(tc.name, "application/json") {
				c.header = map[string]string{"Content-Type": "application/json; charset=utf-8"}
			}
			if w := a.do(t, c); w.Code != http.StatusCreated {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
		})
	}

	t.Run("Prefer return=minimal", func(t *testing.T) {
		w := a.do(t, call{method: "POST", path: "/fhir/QuestionnaireResponse", token: "p1-write",
			body: questionnaireResponse("Patient/pat-1"), header: map[string]string{"Prefer": "return=minimal"}})
		if w.Code != http.StatusCreated || w.Body.Len() != 0 || w.Header().Get("Location") == "" {
			t.Errorf("status %d, body %q, Location %q", w.Code, w.Body, w.Header().Get("Location"))
		}
	})
}

// verifierAdd adds a token to the running API's verifier.
func (a *api) verifierAdd(t testing.TB, raw, scopes, patient string) {
	t.Helper()
	a.verifier[raw] = token(t, scopes, patient)
}

// TestUpdate: versions, If-Match, the compartment and the subject rules.
func TestUpdate(t *testing.T) {
	a := newAPI(t)
	create := func(tok, subject string) string {
		t.Helper()
		w := a.do(t, call{method: "POST", path: "/fhir/QuestionnaireResponse", token: tok, body: questionnaireResponse(subject)})
		if w.Code != http.StatusCreated {
			t.Fatalf("create: %d %s", w.Code, w.Body)
		}
		return decodeStored(t, w).ID
	}
	mine := create("p1-write", "Patient/pat-1")
	theirs := create("user-write", "Patient/pat-2")
	body := func(id, subject, status string) string {
		return strings.Replace(questionnaireResponse(subject, `"id":"`+id+`"`), `"status":"completed"`, `"status":"`+status+`"`, 1)
	}

	steps := []struct {
		name, token, id, body, ifMatch string
		want                           int
		wantETag                       string
	}{
		{"update with the current version", "p1-write", mine, body(mine, "Patient/pat-1", "amended"), `W/"1"`, 200, `W/"2"`},
		{"stale If-Match", "p1-write", mine, body(mine, "Patient/pat-1", "stopped"), `W/"1"`, 412, ""},
		{"strong If-Match form", "p1-write", mine, body(mine, "Patient/pat-1", "completed"), `"2"`, 200, `W/"3"`},
		{"no If-Match", "p1-write", mine, body(mine, "Patient/pat-1", "amended"), "", 200, `W/"4"`},
		{"malformed If-Match", "p1-write", mine, body(mine, "Patient/pat-1", "amended"), `W/"x"`, 400, ""},
		{"body id differs from URL", "p1-write", mine, body("other", "Patient/pat-1", "amended"), "", 400, ""},
		{"body without id", "p1-write", mine, questionnaireResponse("Patient/pat-1"), "", 400, ""},
		{"move to another patient", "p1-write", mine, body(mine, "Patient/pat-2", "amended"), "", 403, ""},
		{"another patient's resource", "p1-write", theirs, body(theirs, "Patient/pat-1", "amended"), "", 404, ""},
		{"another patient's resource, If-Match", "p1-write", theirs, body(theirs, "Patient/pat-1", "amended"), `W/"1"`, 404, ""},
		{"user token updates any", "user-write", theirs, body(theirs, "Patient/pat-2", "amended"), `W/"1"`, 200, `W/"2"`},
		{"bad id", "p1-write", "bad_id", body("bad_id", "Patient/pat-1", "amended"), "", 400, ""},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			c := call{method: "PUT", path: "/fhir/QuestionnaireResponse/" + st.id, token: st.token, body: st.body}
			if st.ifMatch != "" {
				c.header = map[string]string{"If-Match": st.ifMatch}
			}
			w := a.do(t, c)
			if w.Code != st.want {
				t.Fatalf("status %d, want %d: %s", w.Code, st.want, w.Body)
			}
			if st.want != 200 {
				outcome(t, w)
				return
			}
			if got := w.Header().Get("ETag"); got != st.wantETag {
				t.Errorf("ETag %q, want %q", got, st.wantETag)
			}
			s := decodeStored(t, w)
			if `W/"`+s.Meta.VersionID+`"` != st.wantETag || s.ID != st.id {
				t.Errorf("body id %q version %q", s.ID, s.Meta.VersionID)
			}
		})
	}
	// The other patient's resource was not touched by pat-1's token.
	rec, err := a.store.Read(context.Background(), "QuestionnaireResponse", theirs)
	if err != nil || rec.PatientID != "pat-2" || rec.VersionID != 2 {
		t.Errorf("pat-2's response: %+v %v", rec, err)
	}
	// Reads carry the current ETag.
	w := a.do(t, call{method: "GET", path: "/fhir/QuestionnaireResponse/" + mine, token: "p1-rs"})
	if w.Header().Get("ETag") != `W/"4"` {
		t.Errorf("read ETag %q", w.Header().Get("ETag"))
	}
}
