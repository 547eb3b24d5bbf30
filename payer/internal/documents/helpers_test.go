package documents

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"dtrsandbox/payer/internal/access"
	"dtrsandbox/payer/internal/audit"
	"dtrsandbox/payer/internal/documents/dbtest"
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
)

// ---- databases ----

func TestMain(m *testing.M) { dbtest.Main(m) }

func openDB(tb testing.TB, driver string) *gorm.DB { return dbtest.Open(tb, driver) }

// forEachDB runs fn on a fresh SQLite file and a fresh PostgreSQL database.
func forEachDB(t *testing.T, fn func(t *testing.T, db *gorm.DB)) { dbtest.ForEachDB(t, fn) }

// ---- principals ----

const (
	payerScopesFull = "system/DocumentReference.cruds system/QuestionnaireResponse.cruds"
	ehrScopesFull   = "launch openid fhirUser patient/Patient.r patient/Coverage.r patient/DeviceRequest.r patient/QuestionnaireResponse.cru"
)

func mustScopes(t testing.TB, s string) smart.Scopes {
	t.Helper()
	sc, err := smart.ParseScopes(s)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// principal is a caller for patient with the given scopes.
func principal(t testing.TB, patient, payerScopes, ehrScopes string) *access.Principal {
	id := patient[strings.LastIndex(patient, "/")+1:]
	return &access.Principal{
		ClientID:    "dtr-app",
		PayerScopes: mustScopes(t, payerScopes),
		EHR: &smart.AccessContext{
			Issuer: ehrBase, ClientID: "dtr-app-at-ehr", Subject: "prac-1",
			FHIRUser: ehrBase + "/Practitioner/prac-1", Patient: id, Scopes: mustScopes(t, ehrScopes),
		},
		Patient:      patient,
		PurposeOfUse: "TREAT",
	}
}

// ---- the test server ----

type env struct {
	t       testing.TB
	db      *gorm.DB
	store   *Store
	audit   *audit.Store
	handler *Handler
	engine  *gin.Engine
	callers map[string]*access.Principal
}

// newEnv builds the handler on db with the routes of doc.go. A request
// names its principal with the test header X-Test-Caller (absent: none).
func newEnv(t testing.TB, db *gorm.DB, rec audit.Recorder) *env {
	t.Helper()
	store, err := NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	as, err := audit.NewStore(db, audit.StoreConfig{Source: testBase})
	if err != nil {
		t.Fatal(err)
	}
	if rec == nil {
		rec = as
	}
	h, err := NewHandler(Config{Store: store, Audit: rec, Base: testBase})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, store: store, audit: as, handler: h, callers: map[string]*access.Principal{}}
	e.callers["p1"] = principal(t, pat1, payerScopesFull, ehrScopesFull)
	e.callers["p2"] = principal(t, pat2, payerScopesFull, ehrScopesFull)
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.Use(func(c *gin.Context) {
		if p := e.callers[c.GetHeader("X-Test-Caller")]; p != nil {
			c.Request = c.Request.WithContext(access.With(c.Request.Context(), p))
		}
		c.Next()
	})
	f := r.Group("/fhir")
	for _, typ := range []string{TypeDocumentReference, TypeQuestionnaireResponse} {
		f.POST("/"+typ, h.Create)
		f.GET("/"+typ, h.Search)
		f.POST("/"+typ+"/_search", h.Search)
		f.GET("/"+typ+"/_history", h.History)
		f.GET("/"+typ+"/:id", h.Read)
		f.PUT("/"+typ+"/:id", h.Update)
		f.DELETE("/"+typ+"/:id", h.Delete)
		f.PATCH("/"+typ+"/:id", h.MethodNotAllowed)
		f.GET("/"+typ+"/:id/_history", h.History)
		f.GET("/"+typ+"/:id/_history/:vid", h.History)
	}
	f.GET("/_history", h.History)
	f.POST("", h.Batch)
	f.GET("/Patient/:id/$everything", h.Everything)
	f.GET("/Patient/$everything", h.Everything)
	f.POST("/Patient/:id/$everything", h.Everything)
	e.engine = r
	return e
}

type resp struct {
	Code   int
	Header http.Header
	Body   []byte
}

func (e *env) do(caller, method, path string, body []byte, hdr ...string) resp {
	e.t.Helper()
	var req *http.Request
	if body != nil {
		req = httptest.NewRequest(method, path, strings.NewReader(string(body)))
		req.Header.Set("Content-Type", fhir.ContentType)
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	if caller != "" {
		req.Header.Set("X-Test-Caller", caller)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	e.engine.ServeHTTP(w, req)
	return resp{Code: w.Code, Header: w.Header(), Body: w.Body.Bytes()}
}

// create stores body as caller and returns the new id.
func (e *env) create(caller, typ string, body []byte) string {
	e.t.Helper()
	r := e.do(caller, "POST", "/fhir/"+typ, body)
	if r.Code != http.StatusCreated {
		e.t.Fatalf("create: %d %s", r.Code, r.Body)
	}
	var head struct{ ID string }
	if err := json.Unmarshal(r.Body, &head); err != nil || head.ID == "" {
		e.t.Fatalf("create: no id in %s", r.Body)
	}
	return head.ID
}

func (e *env) countDocs() int64 {
	e.t.Helper()
	var n int64
	if err := e.db.Model(&docRow{}).Count(&n).Error; err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) countAudit() int64 {
	e.t.Helper()
	var n int64
	if err := e.db.Table("audit_events").Count(&n).Error; err != nil {
		e.t.Fatal(err)
	}
	return n
}

// lastAudit returns the newest AuditEvent row's outcome, reason, status
// and body.
func (e *env) lastAudit() audit.Entry {
	e.t.Helper()
	entries, _, err := e.audit.Search(context.Background(), audit.Filter{Count: 1})
	if err != nil || len(entries) == 0 {
		e.t.Fatalf("no audit event: %v", err)
	}
	return entries[0]
}

// ---- bodies ----

// docRef returns a DocumentReference body; subject is the raw JSON of the
// subject member ("" for none); qr the QuestionnaireResponse to attach
// (nil for a plain text attachment).
func docRef(subject string, qr []byte, extra ...string) []byte {
	var b strings.Builder
	b.WriteString(`{"resourceType":"DocumentReference","status":"current",`)
	b.WriteString(`"type":{"coding":[{"system":"http://loinc.org","code":"74465-6","display":"Questionnaire response Document"}]},`)
	b.WriteString(`"category":[{"coding":[{"system":"http://payer.example.org/CodeSystem/dtr-document","code":"draft"}]}],`)
	b.WriteString(`"date":"2024-05-02T15:09:31.118Z",`)
	if subject != "" {
		b.WriteString(`"subject":` + subject + `,`)
	}
	for _, x := range extra {
		b.WriteString(x + ",")
	}
	b.WriteString(`"context":{"related":[{"reference":"` + ehrBase + `/DeviceRequest/dr-oxygen-1"}]},`)
	if qr == nil {
		b.WriteString(`"content":[{"attachment":{"contentType":"text/plain","data":"` + base64.StdEncoding.EncodeToString([]byte("hello")) + `"}}]}`)
	} else {
		b.WriteString(`"content":[{"attachment":{"contentType":"application/fhir+json","data":"` + base64.StdEncoding.EncodeToString(qr) + `"}}]}`)
	}
	return []byte(b.String())
}

// questionnaireResponse returns a QuestionnaireResponse body; subject as in docRef.
func questionnaireResponse(subject string, extra ...string) []byte {
	var b strings.Builder
	b.WriteString(`{"resourceType":"QuestionnaireResponse","status":"in-progress",`)
	b.WriteString(`"questionnaire":"http://sandbox.dtr.example/fhir/Questionnaire/home-oxygen|2026.1",`)
	b.WriteString(`"authored":"2024-05-02T10:09:00-05:00",`)
	b.WriteString(`"basedOn":[{"reference":"` + ehrBase + `/DeviceRequest/dr-oxygen-1"}],`)
	for _, x := range extra {
		b.WriteString(x + ",")
	}
	if subject != "" {
		b.WriteString(`"subject":` + subject + `,`)
	}
	b.WriteString(`"item":[{"linkId":"1","answer":[{"valueBoolean":true}]}]}`)
	return []byte(b.String())
}

func ref(s string) string { return `{"reference":"` + s + `"}` }

// bundleOf decodes a searchset.
func bundleOf(t testing.TB, body []byte) (fhir.Bundle, []map[string]any) {
	t.Helper()
	var b fhir.Bundle
	if err := fhir.Decode(body, &b); err != nil {
		t.Fatalf("not a Bundle: %v: %s", err, body)
	}
	var res []map[string]any
	for _, e := range b.Entry {
		var m map[string]any
		if err := json.Unmarshal(e.Resource, &m); err != nil {
			t.Fatal(err)
		}
		res = append(res, m)
	}
	return b, res
}

func subjectOf(m map[string]any) string {
	s, _ := m["subject"].(map[string]any)
	r, _ := s["reference"].(string)
	return r
}

// outcomeCode returns the issue code of an OperationOutcome body.
func outcomeCode(t testing.TB, body []byte) string {
	t.Helper()
	var oo fhir.OperationOutcome
	if err := fhir.Decode(body, &oo); err != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
		t.Fatalf("not an OperationOutcome: %s", body)
	}
	return oo.Issue[0].Code
}
