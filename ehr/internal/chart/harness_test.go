package chart

import (
	"context"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"

	"dtrsandbox/ehr/internal/launch"
	"dtrsandbox/ehr/internal/records"
	"dtrsandbox/ehr/internal/seed"
	"dtrsandbox/shared/database"
	"dtrsandbox/web"
)

const fhirBase = "https://ehr.test/fhir"

// repoRoot is the repository root seen from this package.
const repoRoot = "../../.."

// testTemplates parses the shared layout and the chart pages from the
// source tree (the chart's own files only, so that other EHR pages cannot
// break these tests).
func testTemplates(t testing.TB) *template.Template {
	t.Helper()
	tmpl, err := template.New("ehr").ParseGlob(filepath.Join(repoRoot, "web/templates/shared/*.html"))
	if err != nil {
		t.Fatal(err)
	}
	if tmpl, err = tmpl.ParseGlob(filepath.Join(repoRoot, "web/templates/ehr/chart-*.html")); err != nil {
		t.Fatal(err)
	}
	return tmpl
}

// recordingLauncher stands in for launch.Service: it records each request
// and answers with a launch URL on the test server's /test-app/launch page.
type recordingLauncher struct {
	mu       sync.Mutex
	requests []launch.Request
	appURL   string // base of the launch URL
	err      error  // when set, Create fails with it
	badURL   string // when set, Create returns it as launch_url
}

func (l *recordingLauncher) Create(_ context.Context, req launch.Request) (*launch.Created, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests = append(l.requests, req)
	if l.err != nil {
		return nil, l.err
	}
	if l.badURL != "" {
		return &launch.Created{Launch: "x", LaunchURL: l.badURL}, nil
	}
	id := "launch-" + string(rune('a'+len(l.requests)-1))
	return &launch.Created{Launch: id, LaunchURL: l.appURL + "?" + url.Values{"iss": {fhirBase}, "launch": {id}}.Encode()}, nil
}

// fail makes Create fail with err, or return badURL, until reset with
// fail(nil, "").
func (l *recordingLauncher) fail(err error, badURL string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.err, l.badURL = err, badURL
}

func (l *recordingLauncher) last() (launch.Request, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.requests) == 0 {
		return launch.Request{}, 0
	}
	return l.requests[len(l.requests)-1], len(l.requests)
}

type harness struct {
	server   *httptest.Server
	store    *records.Store
	launcher *recordingLauncher
	handler  *Handler
}

// newHarness serves the chart, /static and a stand-in app launch page.
func newHarness(t testing.TB, tls bool) *harness {
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
	l := &recordingLauncher{}
	h, err := New(Config{
		Records: store, Launcher: l, Templates: testTemplates(t), FHIRBase: fhirBase,
		CookieKey: []byte("0123456789abcdef0123456789abcdef"),
	})
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.GET("/", h.Patients)
	e.GET("/login", h.LoginPage)
	e.POST("/login", h.Login)
	e.POST("/logout", h.Logout)
	e.GET("/patients/:id", h.Chart)
	e.POST("/patients/:id/launch", h.LaunchDTR)
	e.GET("/patients/:id/responses/:rid", h.Response)
	e.StaticFS("/static", http.FS(web.Static()))
	e.GET("/test-app/launch", func(c *gin.Context) {
		page := template.Must(template.New("app").Parse(`<!doctype html><html><head><title>Test DTR app</title>
<link rel="stylesheet" href="/static/css/sandbox.css"></head><body><main class="page narrow"><div class="card">
<h1 id="launched">DTR app launched</h1><p>iss: <code id="iss">{{.Iss}}</code></p><p>launch: <code id="launch">{{.Launch}}</code></p>
</div></main></body></html>`))
		c.Header("Content-Type", "text/html; charset=utf-8")
		_ = page.Execute(c.Writer, map[string]string{"Iss": c.Query("iss"), "Launch": c.Query("launch")})
	})
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(e)
	} else {
		srv = httptest.NewServer(e)
	}
	t.Cleanup(srv.Close)
	l.appURL = srv.URL + "/test-app/launch"
	return &harness{server: srv, store: store, launcher: l, handler: h}
}

// writeBack stores a QuestionnaireResponse as the DTR app would.
func (hs *harness) writeBack(t testing.TB, patient, status string) *records.Record {
	t.Helper()
	body := `{"resourceType":"QuestionnaireResponse","questionnaire":"http://sandbox.dtr.example/fhir/Questionnaire/home-oxygen|2026.1",` +
		`"status":"` + status + `","subject":{"reference":"Patient/` + patient + `"},"authored":"2026-02-16T10:05:00-05:00",` +
		`"author":{"reference":"Practitioner/prac-1"},"item":[` +
		`{"linkId":"spo2","text":"Resting oxygen saturation on room air (%)","answer":[{"valueInteger":87}]},` +
		`{"linkId":"test-date","text":"Date of the qualifying test","answer":[{"valueDate":"2026-02-16"}]},` +
		`{"linkId":"group","text":"Oxygen prescription","item":[` +
		`{"linkId":"flow","text":"Flow rate","answer":[{"valueQuantity":{"value":2,"unit":"L/min"}}]},` +
		`{"linkId":"portable","text":"Portable system needed","answer":[{"valueBoolean":false}]},` +
		`{"linkId":"delivery","text":"Delivery","answer":[{"valueCoding":{"code":"cannula","display":"Nasal cannula"}}]}]}]}`
	rec, err := hs.store.Create(context.Background(), "QuestionnaireResponse", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}
