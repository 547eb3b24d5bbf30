package questionnaires

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"dtrsandbox/payer/internal/access"
	"dtrsandbox/payer/internal/audit"
	"dtrsandbox/shared/fhir"
	"dtrsandbox/shared/smart"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
)

const (
	testBase = "https://payer.test/fhir"
	ehrBase  = "https://ehr.test/fhir"
	pat1     = ehrBase + "/Patient/pat-1"
	pat2     = ehrBase + "/Patient/pat-2"
	canon    = "http://sandbox.dtr.example/fhir/Questionnaire/"
)

// memRecorder keeps events in memory and can be told to fail.
type memRecorder struct {
	mu     sync.Mutex
	events []audit.Event
	fail   bool
}

func (m *memRecorder) Record(_ context.Context, _ *gorm.DB, ev audit.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errors.New("audit down")
	}
	m.events = append(m.events, ev)
	return nil
}

func (m *memRecorder) last(t *testing.T) audit.Event {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.events) == 0 {
		t.Fatal("no AuditEvent")
	}
	return m.events[len(m.events)-1]
}

func (m *memRecorder) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.events)
}

func scopes(t *testing.T, s string) smart.Scopes {
	sc, err := smart.ParseScopes(s)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

type env struct {
	rec     *memRecorder
	engine  *gin.Engine
	callers map[string]*access.Principal
}

func newEnv(t *testing.T) *env {
	rec := &memRecorder{}
	h, err := New(Config{Audit: rec, Base: testBase})
	if err != nil {
		t.Fatal(err)
	}
	withEHR := func(patient string) *access.Principal {
		return &access.Principal{
			ClientID: "dtr-app", PayerScopes: scopes(t, "system/Questionnaire.rs system/DocumentReference.cruds"),
			EHR: &smart.AccessContext{Issuer: ehrBase, FHIRUser: ehrBase + "/Practitioner/prac-1",
				Scopes: scopes(t, "launch patient/Patient.r")},
			Patient: patient, PurposeOfUse: "TREAT",
		}
	}
	e := &env{rec: rec, callers: map[string]*access.Principal{
		"p1":     withEHR(pat1),
		"p2":     withEHR(pat2),
		"noehr":  {ClientID: "dtr-app", PayerScopes: scopes(t, "system/Questionnaire.rs")},
		"noread": {ClientID: "dtr-app", PayerScopes: scopes(t, "system/DocumentReference.cruds")},
	}}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(func(c *gin.Context) {
		if p := e.callers[c.GetHeader("X-Test-Caller")]; p != nil {
			c.Request = c.Request.WithContext(access.With(c.Request.Context(), p))
		}
	})
	r.GET("/fhir/Questionnaire", h.Search)
	r.POST("/fhir/Questionnaire/_search", h.Search)
	r.POST("/fhir/Questionnaire/$questionnaire-package", h.Package)
	r.GET("/fhir/Questionnaire/:id", h.Read)
	e.engine = r
	return e
}

func (e *env) do(t *testing.T, caller, method, path string, body []byte, ctype string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if caller != "" {
		req.Header.Set("X-Test-Caller", caller)
	}
	w := httptest.NewRecorder()
	before := e.rec.count()
	e.engine.ServeHTTP(w, req)
	if got := e.rec.count() - before; got != 1 {
		t.Fatalf("%d AuditEvents for one request", got)
	}
	return w
}

func issueCode(t *testing.T, body []byte) string {
	t.Helper()
	var oo fhir.OperationOutcome
	if err := fhir.Decode(body, &oo); err != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
		t.Fatalf("not an OperationOutcome: %s", body)
	}
	return oo.Issue[0].Code
}

func TestRead(t *testing.T) {
	e := newEnv(t)
	seed, err := os.ReadFile("data/Questionnaire-home-oxygen.json")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, caller, id string
		status           int
		reason           string
	}{
		{"seeded, with EHR token", "p1", "home-oxygen", 200, ""},
		{"seeded, payer token only", "noehr", "home-oxygen", 200, ""},
		{"unknown", "p1", "nope", 404, "no such questionnaire"},
		{"no caller", "", "home-oxygen", 401, "no verified caller"},
		{"no Questionnaire scope", "noread", "home-oxygen", 403, "payer token lacks"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := e.do(t, tc.caller, "GET", "/fhir/Questionnaire/"+tc.id, nil, "")
			if w.Code != tc.status {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			ev := e.rec.last(t)
			if tc.status == 200 {
				if !bytes.Equal(w.Body.Bytes(), seed) || ev.Outcome != audit.OutcomeSuccess || ev.ResourceID != tc.id {
					t.Fatalf("answer or audit wrong: %+v", ev)
				}
				if tc.caller == "p1" && (ev.Patient != pat1 || ev.EHRIssuer != ehrBase) {
					t.Fatalf("EHR context not audited: %+v", ev)
				}
				return
			}
			issueCode(t, w.Body.Bytes())
			if ev.Outcome != audit.OutcomeMinorFailure || !strings.Contains(ev.Reason, tc.reason) {
				t.Fatalf("audit %q", ev.Reason)
			}
			if tc.status == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
}

func TestSearch(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		query string
		want  []string
		total int
	}{
		{"", []string{"cpap", "home-oxygen", "power-wheelchair"}, 3},
		{"url=" + canon + "home-oxygen", []string{"home-oxygen"}, 1},
		{"url=" + canon + "cpap%7C2026.1", []string{"cpap"}, 1},
		{"url=" + canon + "cpap%7C1.0", nil, 0},
		{"version=2026.1", []string{"cpap", "home-oxygen", "power-wheelchair"}, 3},
		{"status=active", []string{"cpap", "home-oxygen", "power-wheelchair"}, 3},
		{"status=retired", nil, 0},
		{"name=homeoxygen", []string{"home-oxygen"}, 1},
		{"name:exact=homeoxygen", nil, 0},
		{"title:contains=wheelchair", []string{"power-wheelchair"}, 1},
		{"_id=cpap,home-oxygen", []string{"cpap", "home-oxygen"}, 2},
		{"_id=cpap&_id=home-oxygen", nil, 0},
		{"_summary=count", nil, 3},
		{"_count=1", []string{"cpap"}, 3},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			w := e.do(t, "noehr", "GET", "/fhir/Questionnaire?"+tc.query, nil, "")
			if w.Code != 200 {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			var b fhir.Bundle
			if err := fhir.Decode(w.Body.Bytes(), &b); err != nil || b.Type != "searchset" || b.Total == nil || *b.Total != tc.total {
				t.Fatalf("bundle %s", w.Body)
			}
			var got []string
			for _, en := range b.Entry {
				var q fhir.Questionnaire
				fhir.Decode(en.Resource, &q)
				if en.FullURL != testBase+"/Questionnaire/"+q.ID {
					t.Fatalf("fullUrl %q", en.FullURL)
				}
				got = append(got, q.ID)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	for _, q := range []string{"name:missing=true", "subject.name=x", "publisher=x", "_include=x", "_count=x", "_summary=data", "name=", "_format=xml", "_format=application/fhir%2Bxml", "_pretty=maybe"} {
		t.Run("refused "+q, func(t *testing.T) {
			w := e.do(t, "noehr", "GET", "/fhir/Questionnaire?"+q, nil, "")
			if w.Code != 400 {
				t.Fatalf("%d", w.Code)
			}
			issueCode(t, w.Body.Bytes())
			if ev := e.rec.last(t); ev.Outcome != audit.OutcomeMinorFailure {
				t.Fatal("refusal not audited as a failure")
			}
		})
	}
	t.Run("POST _search", func(t *testing.T) {
		w := e.do(t, "noehr", "POST", "/fhir/Questionnaire/_search?status=active", []byte("_id=cpap"), "application/x-www-form-urlencoded")
		var b fhir.Bundle
		fhir.Decode(w.Body.Bytes(), &b)
		if w.Code != 200 || b.Total == nil || *b.Total != 1 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
}

// ---- $questionnaire-package ----

func coverage(beneficiary string) string {
	return `{"resourceType":"Coverage","id":"cov-1","status":"active","beneficiary":` + beneficiary +
		`,"payor":[{"reference":"Organization/org-payer"}]}`
}

func deviceRequest(id, subject, code, questionnaire string) string {
	ext := ""
	if questionnaire != "" {
		ext = `"extension":[{"url":"` + extCoverageInformation + `","extension":[{"url":"coverage","valueReference":{"reference":"Coverage/cov-1"}},` +
			`{"url":"covered","valueCode":"conditional"},{"url":"questionnaire","valueCanonical":"` + questionnaire + `"}]}],`
	}
	subj := ""
	if subject != "" {
		subj = `"subject":` + subject + `,`
	}
	return `{"resourceType":"DeviceRequest","id":"` + id + `",` + ext + `"status":"active","intent":"order",` + subj +
		`"codeCodeableConcept":{"coding":[{"system":"https://bluebutton.cms.gov/resources/codesystem/hcpcs","code":"` + code + `"}]}}`
}

func params(parts ...string) []byte {
	return []byte(`{"resourceType":"Parameters","parameter":[` + strings.Join(parts, ",") + `]}`)
}

func res(name, resource string) string { return `{"name":"` + name + `","resource":` + resource + `}` }
func canonical(c string) string        { return `{"name":"questionnaire","valueCanonical":"` + c + `"}` }
func refJSON(r string) string          { return `{"reference":"` + r + `"}` }

func TestQuestionnairePackage(t *testing.T) {
	e := newEnv(t)
	cov1 := res("coverage", coverage(refJSON("Patient/pat-1")))
	oxygen := res("order", deviceRequest("dr-oxygen-1", refJSON("Patient/pat-1"), "E1390", canon+"home-oxygen"))
	cases := []struct {
		name, caller string
		body         []byte
		ctype        string
		status       int
		want         []string // questionnaire ids, in order
		warn         bool     // an operationOutcome parameter
		code         string   // issue code on failure
	}{
		{name: "coverage and order", caller: "p1", body: params(cov1, oxygen), status: 200, want: []string{"home-oxygen"}},
		{name: "payer token only", caller: "noehr", body: params(cov1, oxygen), status: 200, want: []string{"home-oxygen"}},
		{name: "absolute beneficiary", caller: "p1", body: params(res("coverage", coverage(refJSON(pat1))), oxygen), status: 200, want: []string{"home-oxygen"}},
		{name: "versioned canonical", caller: "p1", body: params(cov1, res("order", deviceRequest("d", "", "E1390", canon+"cpap|2026.1"))), status: 200, want: []string{"cpap"}},
		{name: "by code", caller: "p1", body: params(cov1, res("order", deviceRequest("d", "", "E0601", ""))), status: 200, want: []string{"cpap"}},
		{name: "unknown canonical falls back to code", caller: "p1", body: params(cov1, res("order", deviceRequest("d", "", "K0823", "https://elsewhere/Questionnaire/x|9"))), status: 200, want: []string{"power-wheelchair"}, warn: true},
		{name: "explicit canonical", caller: "p1", body: params(cov1, canonical(canon+"cpap")), status: 200, want: []string{"cpap"}},
		{name: "each questionnaire once", caller: "p1", body: params(cov1, oxygen, res("order", deviceRequest("d2", "", "E1390", "")), canonical(canon+"home-oxygen")), status: 200, want: []string{"home-oxygen"}},
		{name: "two orders", caller: "p1", body: params(cov1, oxygen, res("order", deviceRequest("d2", "", "E0601", ""))), status: 200, want: []string{"home-oxygen", "cpap"}},
		{name: "changedsince before", caller: "p1", body: params(cov1, oxygen, `{"name":"changedsince","valueDateTime":"2025-06-01T00:00:00Z"}`), status: 200, want: []string{"home-oxygen"}},
		{name: "changedsince after", caller: "p1", body: params(cov1, oxygen, `{"name":"changedsince","valueDateTime":"2026-06-01T00:00:00Z"}`), status: 200, warn: true},

		{name: "beneficiary of another patient", caller: "p2", body: params(cov1, oxygen), status: 403, code: "forbidden"},
		{name: "beneficiary at another EHR", caller: "p1", body: params(res("coverage", coverage(refJSON("https://evil.test/fhir/Patient/pat-1"))), oxygen), status: 403, code: "forbidden"},
		{name: "beneficiary by identifier", caller: "p1", body: params(res("coverage", coverage(`{"identifier":{"value":"PSHP-1"}}`)), oxygen), status: 403, code: "forbidden"},
		{name: "beneficiary contained", caller: "p1", body: params(res("coverage", coverage(refJSON("#p"))), oxygen), status: 403, code: "forbidden"},
		{name: "order of another patient", caller: "p1", body: params(cov1, res("order", deviceRequest("d", refJSON("Patient/pat-2"), "E1390", ""))), status: 403, code: "forbidden"},
		{name: "second coverage of another patient", caller: "p1", body: params(cov1, res("coverage", coverage(refJSON("Patient/pat-2"))), oxygen), status: 403, code: "forbidden"},

		{name: "no coverage", caller: "p1", body: params(oxygen), status: 400, code: "required"},
		{name: "coverage only", caller: "p1", body: params(cov1), status: 400, code: "required"},
		{name: "coverage without beneficiary", caller: "p1", body: params(res("coverage", `{"resourceType":"Coverage","status":"active"}`), oxygen), status: 400, code: "required"},
		{name: "coverage is a Patient", caller: "p1", body: params(res("coverage", `{"resourceType":"Patient"}`), oxygen), status: 400, code: "invalid"},
		{name: "order is a Patient", caller: "p1", body: params(cov1, res("order", `{"resourceType":"Patient"}`)), status: 400, code: "invalid"},
		{name: "unknown questionnaire", caller: "p1", body: params(cov1, canonical(canon+"nope")), status: 400, code: "not-found"},
		{name: "nothing applies", caller: "p1", body: params(cov1, res("order", deviceRequest("d", "", "A0000", ""))), status: 400, code: "not-found"},
		{name: "unknown parameter", caller: "p1", body: params(cov1, oxygen, `{"name":"patient","valueString":"pat-2"}`), status: 400, code: "not-supported"},
		{name: "not Parameters", caller: "p1", body: []byte(coverage(refJSON("Patient/pat-1"))), status: 400, code: "invalid"},
		{name: "duplicate key", caller: "p1", body: []byte(`{"resourceType":"Parameters","parameter":[],"parameter":[]}`), status: 400, code: "structure"},
		{name: "case-variant key in a resource", caller: "p1", body: params(res("coverage", `{"resourceType":"Coverage","Beneficiary":{"reference":"Patient/pat-2"},"beneficiary":{"reference":"Patient/pat-1"}}`), oxygen), status: 400, code: "structure"},
		{name: "wrong media type", caller: "p1", body: params(cov1, oxygen), ctype: "text/plain", status: 415, code: "not-supported"},
		{name: "latin-1 charset", caller: "p1", body: params(cov1, oxygen), ctype: "application/fhir+json; charset=iso-8859-1", status: 415, code: "not-supported"},
		{name: "utf-8 charset", caller: "p1", body: params(cov1, oxygen), ctype: "application/fhir+json; charset=utf-8", status: 200, want: []string{"home-oxygen"}},
		{name: "no caller", caller: "", body: params(cov1, oxygen), status: 401, code: "login"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctype := tc.ctype
			if ctype == "" {
				ctype = fhir.ContentType
			}
			w := e.do(t, tc.caller, "POST", "/fhir/Questionnaire/$questionnaire-package", tc.body, ctype)
			if w.Code != tc.status {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			ev := e.rec.last(t)
			if tc.status != 200 {
				if got := issueCode(t, w.Body.Bytes()); got != tc.code {
					t.Fatalf("code %q, want %q: %s", got, tc.code, w.Body)
				}
				if bytes.Contains(w.Body.Bytes(), []byte(`"Questionnaire"`)) {
					t.Fatal("a refused request returned a questionnaire")
				}
				if ev.Outcome != audit.OutcomeMinorFailure || ev.Reason == "" {
					t.Fatalf("audit %+v", ev)
				}
				return
			}
			var out fhir.Parameters
			if err := fhir.Decode(w.Body.Bytes(), &out); err != nil || out.ResourceType != "Parameters" {
				t.Fatalf("not Parameters: %s", w.Body)
			}
			var got []string
			warned := false
			for _, p := range out.Parameter {
				switch p.Name {
				case "PackageBundle":
					var b fhir.Bundle
					if err := fhir.Decode(p.Resource, &b); err != nil || b.Type != "collection" || len(b.Entry) == 0 {
						t.Fatalf("PackageBundle %s", p.Resource)
					}
					var q fhir.Questionnaire
					if err := fhir.Decode(b.Entry[0].Resource, &q); err != nil || q.ResourceType != "Questionnaire" {
						t.Fatal("first entry is not a Questionnaire (dtrb-1)")
					}
					got = append(got, q.ID)
				case "operationOutcome":
					warned = true
				default:
					t.Fatalf("unexpected output parameter %q", p.Name)
				}
			}
			if !slices.Equal(got, tc.want) || warned != tc.warn {
				t.Fatalf("questionnaires %v warned %v, want %v %v", got, warned, tc.want, tc.warn)
			}
			if ev.Outcome != audit.OutcomeSuccess || ev.Interaction != "operation" {
				t.Fatalf("audit %+v", ev)
			}
		})
	}
	t.Run("audit failure returns no package", func(t *testing.T) {
		e.rec.mu.Lock()
		e.rec.fail = true
		e.rec.mu.Unlock()
		defer func() { e.rec.mu.Lock(); e.rec.fail = false; e.rec.mu.Unlock() }()
		req := httptest.NewRequest("POST", "/fhir/Questionnaire/$questionnaire-package", bytes.NewReader(params(cov1, oxygen)))
		req.Header.Set("Content-Type", fhir.ContentType)
		req.Header.Set("X-Test-Caller", "p1")
		w := httptest.NewRecorder()
		e.engine.ServeHTTP(w, req)
		if w.Code != http.StatusInternalServerError || bytes.Contains(w.Body.Bytes(), []byte("Questionnaire")) {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
}

// TestEHRSeedOrders: the EHR's seeded orders and coverages, as the app
// sends them, map to the questionnaire the contract names, for their own
// patient only.
func TestEHRSeedOrders(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "ehr", "internal", "seed", "data")
	if _, err := os.Stat(dir); err != nil {
		t.Skip("EHR seed data not present in this tree")
	}
	e := newEnv(t)
	cases := []struct{ coverage, order, patient, want string }{
		{"Coverage-cov-1.json", "DeviceRequest-dr-oxygen-1.json", "pat-1", "home-oxygen"},
		{"Coverage-cov-2.json", "DeviceRequest-dr-cpap-2.json", "pat-2", "cpap"},
		{"Coverage-cov-3.json", "DeviceRequest-dr-wheelchair-3.json", "pat-3", "power-wheelchair"},
	}
	for _, tc := range cases {
		t.Run(tc.order, func(t *testing.T) {
			cov, err1 := os.ReadFile(filepath.Join(dir, tc.coverage))
			ord, err2 := os.ReadFile(filepath.Join(dir, tc.order))
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			body := params(res("coverage", string(cov)), res("order", string(ord)))
			e.callers["seed"] = &access.Principal{ClientID: "dtr-app", PayerScopes: scopes(t, "system/Questionnaire.rs"),
				EHR: &smart.AccessContext{Issuer: ehrBase}, Patient: ehrBase + "/Patient/" + tc.patient}
			w := e.do(t, "seed", "POST", "/fhir/Questionnaire/$questionnaire-package", body, fhir.ContentType)
			if w.Code != 200 || !strings.Contains(w.Body.String(), `"id":"`+tc.want+`"`) {
				t.Fatalf("%d %.300s", w.Code, w.Body)
			}
			var out struct{ Parameter []json.RawMessage }
			json.Unmarshal(w.Body.Bytes(), &out)
			if len(out.Parameter) != 1 {
				t.Fatalf("%d output parameters, want one PackageBundle", len(out.Parameter))
			}
			e.callers["seed"].Patient = ehrBase + "/Patient/pat-9"
			if w := e.do(t, "seed", "POST", "/fhir/Questionnaire/$questionnaire-package", body, fhir.ContentType); w.Code != 403 {
				t.Fatalf("another patient's coverage: %d", w.Code)
			}
		})
	}
}
