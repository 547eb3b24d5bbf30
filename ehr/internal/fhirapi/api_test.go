package fhirapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"dtrsandbox/ehr/internal/records"
	"dtrsandbox/ehr/internal/seed"
	"dtrsandbox/shared/database"
	"dtrsandbox/shared/fhir"
	"dtrsandbox/shared/oautherr"
	"dtrsandbox/shared/smart"
)

const base = "https://ehr.test/fhir"

// fixedVerifier maps fixed token strings to access contexts; any other
// token is invalid, and "verifier-down" fails as a broken verifier would.
type fixedVerifier map[string]*smart.AccessContext

func (v fixedVerifier) VerifyAccessToken(_ context.Context, raw string) (*smart.AccessContext, error) {
	if raw == "verifier-down" {
		return nil, errors.New("introspection endpoint unreachable")
	}
	ac, ok := v[raw]
	if !ok {
		return nil, oautherr.InvalidToken("The access token is not active.")
	}
	return ac, nil
}

func token(t testing.TB, scopes, patient string) *smart.AccessContext {
	t.Helper()
	s, err := smart.ParseScopes(scopes)
	if err != nil {
		t.Fatal(err)
	}
	return &smart.AccessContext{
		Issuer: base, ClientID: "dtr-app", Subject: "prac-1", FHIRUser: base + "/Practitioner/prac-1",
		Patient: patient, Scopes: s, ExpiresAt: time.Now().Add(time.Hour),
	}
}

// Tokens of the tests, by name.
func verifier(t testing.TB) fixedVerifier {
	expired := token(t, "user/*.rs", "")
	expired.ExpiresAt = time.Now().Add(-time.Second)
	return fixedVerifier{
		"p1-rs":        token(t, "launch openid fhirUser patient/*.rs", "pat-1"),
		"p1-r-patient": token(t, "patient/Patient.r", "pat-1"),
		"p1-s-patient": token(t, "patient/Patient.s", "pat-1"),
		"p1-patient":   token(t, "patient/Patient.rs", "pat-1"),
		"p1-write":     token(t, "patient/*.rs patient/QuestionnaireResponse.cu patient/DocumentReference.cu", "pat-1"),
		"p1-create":    token(t, "patient/*.rs patient/QuestionnaireResponse.c", "pat-1"),
		"p1-v1":        token(t, "patient/*.read patient/QuestionnaireResponse.write", "pat-1"),
		"p1-v1-read":   token(t, "patient/*.read", "pat-1"),
		"no-patient":   token(t, "patient/*.rs", ""),
		"user-rs":      token(t, "openid fhirUser user/*.rs", ""),
		"user-v1":      token(t, "user/*.read", ""),
		"user-write":   token(t, "user/*.rs user/QuestionnaireResponse.cu user/DocumentReference.cu", ""),
		"user-v1-all":  token(t, "user/*.*", ""),
		"system":       token(t, "system/*.rs system/QuestionnaireResponse.c", ""),
		"identity":     token(t, "openid fhirUser", "pat-1"),
		"expired":      expired,
	}
}

type api struct {
	engine   *gin.Engine
	store    *records.Store
	verifier fixedVerifier
}

func newAPI(t testing.TB) *api {
	t.Helper()
	db, err := database.Open(context.Background(), database.Config{SQLitePath: filepath.Join(t.TempDir(), "ehr.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = database.Close(db) })
	store, err := records.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	res, err := seed.Resources()
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Seed(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	v := verifier(t)
	h, err := New(Config{
		Base: base, Store: store, Verifier: v,
		SMARTConfigURL: base + "/.well-known/smart-configuration",
		AuthorizeURL:   "https://ehr.test/oauth/authorize", TokenURL: "https://ehr.test/oauth/token",
		RevokeURL: "https://ehr.test/oauth/revoke", IntrospectURL: "https://ehr.test/oauth/introspect",
		RegisterURL: "https://ehr.test/oauth/register",
	})
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.GET("/fhir/metadata", h.Metadata)
	e.GET("/fhir/:type/:id", h.Read)
	e.GET("/fhir/:type", h.Search)
	e.POST("/fhir/:type/_search", h.Search)
	e.POST("/fhir/:type", h.Create)
	e.PUT("/fhir/:type/:id", h.Update)
	return &api{engine: e, store: store, verifier: v}
}

type call struct {
	method, path, token, body string
	header                    map[string]string
}

func (a *api) do(t testing.TB, c call) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	r := httptest.NewRequest(c.method, c.path, body)
	if c.token != "" {
		r.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.body != "" {
		r.Header.Set("Content-Type", fhir.ContentType)
	}
	for k, v := range c.header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	a.engine.ServeHTTP(w, r)
	return w
}

// outcome decodes an OperationOutcome answer and checks its media type.
func outcome(t testing.TB, w *httptest.ResponseRecorder) fhir.OperationOutcome {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, fhir.ContentType) {
		t.Errorf("Content-Type %q", ct)
	}
	var oo fhir.OperationOutcome
	if err := json.Unmarshal(w.Body.Bytes(), &oo); err != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) != 1 {
		t.Fatalf("not an OperationOutcome: %s", w.Body.String())
	}
	return oo
}

type bundle struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Total        *int   `json:"total"`
	Link         []fhir.BundleLink
	Entry        []struct {
		FullURL  string `json:"fullUrl"`
		Resource struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
		} `json:"resource"`
		Search struct{ Mode string } `json:"search"`
	} `json:"entry"`
}

func decodeBundle(t testing.TB, w *httptest.ResponseRecorder) bundle {
	t.Helper()
	var b bundle
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || b.ResourceType != "Bundle" || b.Type != "searchset" || b.Total == nil {
		t.Fatalf("not a searchset: %s", w.Body.String())
	}
	for _, e := range b.Entry {
		if e.FullURL != base+"/"+e.Resource.ResourceType+"/"+e.Resource.ID || e.Search.Mode != "match" {
			t.Errorf("entry fullUrl %q for %s/%s, mode %q", e.FullURL, e.Resource.ResourceType, e.Resource.ID, e.Search.Mode)
		}
	}
	return b
}

func (b bundle) ids() []string {
	var out []string
	for _, e := range b.Entry {
		out = append(out, e.Resource.ID)
	}
	return out
}

func questionnaireResponse(subject string, extra ...string) string {
	s := `{"resourceType":"QuestionnaireResponse","questionnaire":"http://sandbox.dtr.example/fhir/Questionnaire/home-oxygen",` +
		`"status":"completed","authored":"2026-02-16T10:00:00-05:00"`
	if subject != "" {
		s += `,"subject":{"reference":"` + subject + `"}`
	}
	for _, e := range extra {
		s += "," + e
	}
	return s + `,"item":[{"linkId":"spo2","text":"Resting SpO2","answer":[{"valueInteger":87}]}]}`
}

func documentReference(subject string) string {
	return `{"resourceType":"DocumentReference","status":"current","subject":{"reference":"` + subject + `"},` +
		`"content":[{"attachment":{"contentType":"application/fhir+json","data":"e30="}}]}`
}

// count returns how many resources of typ are stored, unconfined.
func (a *api) count(t testing.TB, typ string) int {
	t.Helper()
	q, err := records.ParseQuery(typ, nil, base)
	if err != nil {
		t.Fatal(err)
	}
	page, err := a.store.Search(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return page.Total
}
