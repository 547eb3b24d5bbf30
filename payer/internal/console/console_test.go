package console

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"dtrsandbox/payer/internal/audit"
	"dtrsandbox/payer/internal/documents"
	"dtrsandbox/payer/internal/documents/dbtest"
	"dtrsandbox/shared/testutil/testclock"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

const (
	adminToken = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5"
	pat1       = "https://ehr.test/fhir/Patient/pat-1"
	pat2       = "https://ehr.test/fhir/Patient/pat-2"
)

type env struct {
	t      *testing.T
	engine *gin.Engine
	audit  *audit.Store
	clk    *testclock.Clock
}

func newEnv(t *testing.T, db *gorm.DB) *env {
	docs, err := documents.NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	as, err := audit.NewStore(db, audit.StoreConfig{Source: "https://payer.test/fhir"})
	if err != nil {
		t.Fatal(err)
	}
	clk := testclock.New(time.Now())
	for i, d := range []struct{ typ, patient, title, client string }{
		{documents.TypeDocumentReference, pat1, "Questionnaire response Document", "dtr-app"},
		{documents.TypeQuestionnaireResponse, pat1, "http://sandbox.dtr.example/fhir/Questionnaire/cpap|2026.1", "dtr-app"},
		{documents.TypeDocumentReference, pat2, "<script>alert(1)</script>", "other-app"},
	} {
		doc := &documents.Document{ResourceType: d.typ, ID: "doc-" + string(rune('a'+i)), VersionID: 1,
			LastUpdated: clk.Now(), Patient: d.patient,
			Creator: documents.Creator{ClientID: d.client, PayerScopes: "system/DocumentReference.cruds", FHIRUser: "https://ehr.test/fhir/Practitioner/prac-1"},
			Body:    []byte(`{}`)}
		if err := docs.Insert(t.Context(), db, doc, documents.Index{Status: "current", Title: d.title}); err != nil {
			t.Fatal(err)
		}
	}
	if err := as.Record(t.Context(), nil, audit.Event{Time: clk.Now().Add(-time.Hour), Action: "C", Interaction: "create", ResourceType: "DocumentReference",
		Outcome: audit.OutcomeMinorFailure, Reason: "subject names another patient", Patient: pat1, ClientID: "dtr-app", Status: 403}); err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Documents: docs, Audit: as, AdminToken: adminToken, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/console", h.Index)
	r.GET("/console/login", h.LoginForm)
	r.POST("/console/login", h.Login)
	r.POST("/console/logout", h.Logout)
	r.GET("/console/documents", h.Documents)
	r.GET("/console/audit", h.AuditTrail)
	return &env{t: t, engine: r, audit: as, clk: clk}
}

func (e *env) do(method, path string, form url.Values, cookie string, hdr ...string) *httptest.ResponseRecorder {
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, "https://payer.test"+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, "https://payer.test"+path, nil)
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookie})
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == remoteAddr {
			req.RemoteAddr = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	e.clk.Advance(time.Millisecond) // events of successive requests sort in order
	e.engine.ServeHTTP(w, req)
	return w
}

// remoteAddr, given to do as a header name, sets the request's peer address
// instead (httptest's default is 192.0.2.1:1234).
const remoteAddr = "\x00RemoteAddr"

// login signs in and returns the session cookie value.
func (e *env) login() string {
	e.t.Helper()
	w := e.do("POST", "/console/login", url.Values{"token": {adminToken}}, "", "Origin", "https://payer.test")
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/documents" {
		e.t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == sessionCookie {
			return c.Value
		}
	}
	e.t.Fatal("no session cookie")
	return ""
}

func (e *env) lastEvent() audit.Entry {
	e.t.Helper()
	rows, _, err := e.audit.Search(e.t.Context(), audit.Filter{Count: 1})
	if err != nil || len(rows) == 0 {
		e.t.Fatal("no audit event")
	}
	return rows[0]
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func TestConsole(t *testing.T) {
	dbtest.ForEachDB(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)

		t.Run("pages redirect without a session", func(t *testing.T) {
			for _, p := range []string{"/console", "/console/documents", "/console/audit?outcome=failure", "/console/documents?patient=" + url.QueryEscape(pat1)} {
				w := e.do("GET", p, nil, "")
				if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/login" {
					t.Fatalf("%s: %d %q", p, w.Code, w.Header().Get("Location"))
				}
				if strings.Contains(w.Body.String(), "pat-1") || strings.Contains(w.Body.String(), "doc-") {
					t.Fatalf("%s: data without a session", p)
				}
			}
			if w := e.do("POST", "/console/logout", url.Values{}, ""); w.Code != http.StatusSeeOther {
				t.Fatalf("logout without session: %d", w.Code)
			}
		})

		t.Run("sign-in form", func(t *testing.T) {
			w := e.do("GET", "/console/login", nil, "")
			if w.Code != 200 || !strings.Contains(w.Body.String(), `name="token"`) || !strings.Contains(w.Body.String(), "/static/css/sandbox.css") {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if !strings.Contains(w.Header().Get("Content-Security-Policy"), "frame-ancestors 'none'") || w.Header().Get("Cache-Control") != "no-store" {
				t.Fatal("security headers")
			}
		})

		t.Run("wrong token", func(t *testing.T) {
			w := e.do("POST", "/console/login", url.Values{"token": {"guess"}}, "")
			if w.Code != http.StatusUnauthorized || len(w.Result().Cookies()) != 0 || !strings.Contains(w.Body.String(), "not the admin token") {
				t.Fatalf("%d %v", w.Code, w.Result().Cookies())
			}
			if ev := e.lastEvent(); ev.Outcome != audit.OutcomeMinorFailure || !strings.Contains(ev.Reason, "wrong admin token") {
				t.Fatalf("audit %q", ev.Reason)
			}
		})

		t.Run("cross-site sign-in refused", func(t *testing.T) {
			for _, h := range [][]string{{"Origin", "https://evil.test"}, {"Sec-Fetch-Site", "cross-site"}} {
				w := e.do("POST", "/console/login", url.Values{"token": {adminToken}}, "", h...)
				if w.Code != http.StatusForbidden || len(w.Result().Cookies()) != 0 {
					t.Fatalf("%v: %d", h, w.Code)
				}
			}
		})

		cookie := e.login()
		t.Run("session cookie attributes", func(t *testing.T) {
			w := e.do("POST", "/console/login", url.Values{"token": {adminToken}}, "")
			set := w.Header().Get("Set-Cookie")
			for _, attr := range []string{sessionCookie + "=", "Path=/", "HttpOnly", "Secure", "SameSite=Strict"} {
				if !strings.Contains(set, attr) {
					t.Fatalf("Set-Cookie %q lacks %s", set, attr)
				}
			}
			if strings.Contains(set, adminToken) {
				t.Fatal("admin token in the cookie")
			}
		})

		t.Run("documents", func(t *testing.T) {
			w := e.do("GET", "/console/documents", nil, cookie)
			body := w.Body.String()
			if w.Code != 200 {
				t.Fatalf("%d", w.Code)
			}
			for _, want := range []string{"DocumentReference/doc-a", "QuestionnaireResponse/doc-b", pat1, pat2, "dtr-app", "other-app", "current", "&lt;script&gt;"} {
				if !strings.Contains(body, want) {
					t.Fatalf("page lacks %q", want)
				}
			}
			if strings.Contains(body, "<script>alert") {
				t.Fatal("unescaped HTML")
			}
			w = e.do("GET", "/console/documents?patient="+url.QueryEscape(pat2), nil, cookie)
			if strings.Contains(w.Body.String(), "doc-a") || !strings.Contains(w.Body.String(), "doc-c") {
				t.Fatal("patient filter")
			}
			if ev := e.lastEvent(); ev.ClientID != audit.AdminPrincipal || ev.Outcome != audit.OutcomeSuccess || ev.Patient != pat2 {
				t.Fatalf("page view not audited: %+v", ev.Reason)
			}
		})

		t.Run("binary filters", func(t *testing.T) {
			for _, p := range []string{"/console/documents?patient=%00%FF", "/console/audit?patient=a%00b&outcome=%00"} {
				if w := e.do("GET", p, nil, cookie); w.Code != 200 {
					t.Fatalf("%s: %d %s", p, w.Code, w.Body)
				}
			}
		})

		t.Run("audit trail", func(t *testing.T) {
			w := e.do("GET", "/console/audit?outcome=failure", nil, cookie)
			body := w.Body.String()
			if w.Code != 200 || !strings.Contains(body, "subject names another patient") || !strings.Contains(body, "wrong admin token") {
				t.Fatalf("%d", w.Code)
			}
			if strings.Contains(body, `class="badge ok"`) {
				t.Fatal("outcome filter")
			}
			w = e.do("GET", "/console/audit?patient="+url.QueryEscape(pat2), nil, cookie)
			if strings.Contains(w.Body.String(), "subject names another patient") {
				t.Fatal("patient filter")
			}
		})

		t.Run("forged or stale sessions", func(t *testing.T) {
			other := newSessions("another-admin-token-0123456789abcdef", time.Hour, e.clk.Now)
			forged, _ := other.issue()
			for name, c := range map[string]string{
				"tampered signature": flipChar(cookie, strings.IndexByte(cookie, '.')+1),
				"tampered payload":   flipChar(cookie, 0),
				"non-canonical":      cookie[:len(cookie)-1] + string(cookie[len(cookie)-1]^1), // the last character changed: a lax decoder may ignore the bits that differ
				"garbage":            "x.y", "other key": forged, "empty": ".",
			} {
				if w := e.do("GET", "/console/documents", nil, c); w.Code != http.StatusSeeOther {
					t.Fatalf("%s cookie: %d", name, w.Code)
				}
			}
			e.clk.Advance(9 * time.Hour)
			if w := e.do("GET", "/console/documents", nil, cookie); w.Code != http.StatusSeeOther {
				t.Fatal("expired session accepted")
			}
			e.clk.Advance(-9 * time.Hour)
		})

		t.Run("sign-out", func(t *testing.T) {
			c2 := e.login()
			page := e.do("GET", "/console/audit", nil, c2).Body.String()
			m := csrfRE.FindStringSubmatch(page)
			if m == nil {
				t.Fatal("no CSRF token on the page")
			}
			if w := e.do("POST", "/console/logout", url.Values{"csrf": {"wrong"}}, c2); w.Code != http.StatusForbidden {
				t.Fatalf("sign-out without CSRF: %d", w.Code)
			}
			if w := e.do("POST", "/console/logout", url.Values{"csrf": {m[1]}}, c2, "Origin", "https://evil.test"); w.Code != http.StatusForbidden {
				t.Fatalf("cross-site sign-out: %d", w.Code)
			}
			if w := e.do("POST", "/console/logout", url.Values{"csrf": {m[1]}}, c2); w.Code != http.StatusSeeOther {
				t.Fatalf("sign-out: %d", w.Code)
			}
			if w := e.do("GET", "/console/documents", nil, c2); w.Code != http.StatusSeeOther {
				t.Fatal("signed-out session still works")
			}
			if w := e.do("GET", "/console/documents", nil, cookie); w.Code != 200 {
				t.Fatal("another session was signed out")
			}
		})

		t.Run("throttling", func(t *testing.T) {
			for range 10 {
				e.do("POST", "/console/login", url.Values{"token": {"nope"}}, "")
			}
			if w := e.do("POST", "/console/login", url.Values{"token": {adminToken}}, ""); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "60" {
				t.Fatalf("after 10 failures: %d", w.Code)
			}
			if ev := e.lastEvent(); ev.Status != http.StatusTooManyRequests || ev.Reason != "console sign-in throttled" {
				t.Fatalf("throttled sign-in audited as %+v", ev)
			}
			// The administrator elsewhere is not locked out by them.
			if w := e.do("POST", "/console/login", url.Values{"token": {adminToken}}, "", "Origin", "https://payer.test", remoteAddr, "198.51.100.7:5555"); w.Code != http.StatusSeeOther {
				t.Fatalf("sign-in from another address while one is throttled: %d", w.Code)
			}
			e.clk.Advance(2 * time.Minute)
			e.login()
		})
	})
}

func TestEmptyAdminTokenRefusesSignIn(t *testing.T) {
	db := dbtest.Open(t, "sqlite")
	docs, _ := documents.NewStore(db)
	as, _ := audit.NewStore(db, audit.StoreConfig{Source: "https://payer.test/fhir"})
	h, err := New(Config{Documents: docs, Audit: as})
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	r.POST("/console/login", h.Login)
	req := httptest.NewRequest("POST", "/console/login", strings.NewReader("token="))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized {
		t.Fatal(w.Code)
	}
}

// TestLimiter: failures count per address within the window; a flood from
// more addresses than are tracked refuses new addresses until it passes.
func TestLimiter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(3, time.Minute, 2)
	for i := range 3 {
		if l.blocked("a", t0) {
			t.Fatalf("a blocked after %d failures", i)
		}
		l.fail("a", t0.Add(time.Duration(i)*time.Second))
	}
	steps := []struct {
		addr    string
		at      time.Duration
		blocked bool
	}{
		{"a", 10 * time.Second, true},
		{"b", 10 * time.Second, false},
		{"a", 59 * time.Second, true},  // all three failures (0s, 1s, 2s) in the window
		{"a", 60 * time.Second, false}, // the first one out of it
	}
	for _, s := range steps {
		if got := l.blocked(s.addr, t0.Add(s.at)); got != s.blocked {
			t.Fatalf("%s at %v: blocked = %v", s.addr, s.at, got)
		}
	}

	l = newLimiter(3, time.Minute, 2)
	l.fail("a", t0)
	l.fail("b", t0)
	l.fail("c", t0) // not tracked: the table is full
	if !l.blocked("c", t0) || !l.blocked("d", t0.Add(59*time.Second)) {
		t.Fatal("a new address got through while the table was full")
	}
	if l.blocked("a", t0) || l.blocked("b", t0) {
		t.Fatal("tracked addresses below the limit were refused")
	}
	if l.blocked("d", t0.Add(time.Minute)) || len(l.failures) != 0 {
		t.Fatalf("the window passed, still refusing or tracking %d", len(l.failures))
	}
}

// flipChar replaces s[i], a base64url character, with another one; a
// character that is not the last one carries six bits of the decoded bytes,
// so they change.
func flipChar(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}
