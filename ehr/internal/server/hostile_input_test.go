package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"dtrsandbox/ehr/internal/authz"
	"dtrsandbox/ehr/internal/oauthstore"
	"dtrsandbox/shared/fhir"
	"dtrsandbox/shared/httpserver"
)

// answer is one response, read whole.
type answer struct {
	status int
	header http.Header
	body   string
}

func (e *ehr) send(req *http.Request) answer {
	e.t.Helper()
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (e *ehr) request(method, path, contentType string, body io.Reader, header ...string) *http.Request {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

// leaks are fragments that must never reach a client: stack traces, Go
// source positions, database and library internals.
var leaks = []string{"goroutine ", "panic", ".go:", "runtime.", "sqlite", "SQLSTATE", "gorm", "sql:", "fosite", "github.com/", "UNIQUE constraint", "debug"}

// assertNoLeak checks a body for internals.
func assertNoLeak(t testing.TB, what, body string) {
	t.Helper()
	lower := strings.ToLower(body)
	for _, l := range leaks {
		if strings.Contains(lower, strings.ToLower(l)) {
			t.Errorf("%s leaks %q: %.300s", what, l, body)
		}
	}
}

// kind is the error format a route answers in.
type kind int

const (
	oauthJSON kind = iota // RFC 6749 §5.2 JSON
	outcome               // FHIR OperationOutcome
	htmlPage              // the authorization server's error page
)

// checkError checks that a is a refusal in the given format with the
// given status and code (the OAuth error, the OperationOutcome issue code,
// or for a page the "Error code: " line).
func checkError(t testing.TB, what string, a answer, k kind, status int, code string) {
	t.Helper()
	if a.status != status {
		t.Errorf("%s: status %d, want %d: %.300s", what, a.status, status, a.body)
		return
	}
	switch k {
	case oauthJSON:
		var e oauthBody
		if err := json.Unmarshal([]byte(a.body), &e); err != nil || e.Error != code || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
			t.Errorf("%s: want OAuth error %s, got %s %.300s", what, code, a.header.Get("Content-Type"), a.body)
		}
		if a.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q", what, a.header.Get("Cache-Control"))
		}
	case outcome:
		var oo fhir.OperationOutcome
		if err := json.Unmarshal([]byte(a.body), &oo); err != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 ||
			oo.Issue[0].Code != code || !strings.HasPrefix(a.header.Get("Content-Type"), fhir.ContentType) {
			t.Errorf("%s: want OperationOutcome %s, got %s %.300s", what, code, a.header.Get("Content-Type"), a.body)
		}
	case htmlPage:
		if !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") || !strings.Contains(a.body, "Error code: "+code) {
			t.Errorf("%s: want an error page with %s, got %s %.300s", what, code, a.header.Get("Content-Type"), a.body)
		}
	}
	assertNoLeak(t, what, a.body)
}

type oauthBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// TestOversizedBodies: a 10 MiB body at every POST endpoint, announced by
// Content-Length or streamed chunked, is refused with 413 in the
// endpoint's own error format (or, on the clinician pages, by the login
// or CSRF check that comes first), never a 5xx, and nothing is stored.
func TestOversizedBodies(t *testing.T) {
	e := startEHR(t)
	code, verifier := e.ehrLaunchCode(dtrScope)
	g, status, body := e.exchange(code, verifier)
	if g == nil {
		t.Fatalf("exchange: %d %s", status, body)
	}
	const size = 10 << 20
	big := strings.Repeat("a", size)
	bearer := []string{"Authorization", "Bearer " + g.AccessToken}
	cases := []struct {
		path, contentType string
		header            []string
		kind              kind
		code              string
	}{
		{authz.PathToken, "application/x-www-form-urlencoded", nil, oauthJSON, "invalid_request"},
		{authz.PathIntrospect, "application/x-www-form-urlencoded", nil, oauthJSON, "invalid_request"},
		{authz.PathRevoke, "application/x-www-form-urlencoded", nil, oauthJSON, "invalid_request"},
		{authz.PathRegister, "application/json", nil, oauthJSON, "invalid_request"},
		{"/api/launch", "application/json", nil, oauthJSON, "invalid_request"},
		{authz.PathAuthorize, "application/x-www-form-urlencoded", nil, htmlPage, "invalid_request"},
		{authz.PathInteract, "application/x-www-form-urlencoded", nil, htmlPage, "invalid_request"},
		{"/fhir/QuestionnaireResponse", fhir.ContentType, bearer, outcome, fhir.IssueTooCostly},
		{"/fhir/Patient/_search", "application/x-www-form-urlencoded", bearer, outcome, fhir.IssueTooCostly},
	}
	var clients, launches int64
	countRows := func() (int64, int64) {
		var c, l int64
		e.srv.DB().Table(oauthstore.TableClients).Count(&c)
		e.srv.DB().Table("ehr_launches").Count(&l)
		return c, l
	}
	clients, launches = countRows()
	before := e.counts()
	for _, c := range cases {
		for _, chunked := range []bool{false, true} {
			var r io.Reader = strings.NewReader(big)
			if chunked {
				r = io.MultiReader(r) // unknown length: sent chunked
			}
			what := c.path
			if chunked {
				what += " (chunked)"
			}
			a := e.send(e.request(http.MethodPost, c.path, c.contentType, r, c.header...))
			checkError(t, what, a, c.kind, http.StatusRequestEntityTooLarge, c.code)
		}
	}
	// The clinician pages read their (16 KiB) forms only after the
	// session check: without a session they send the browser to sign in.
	for _, path := range []string{"/login", "/logout", "/patients/pat-1/launch"} {
		a := e.send(e.request(http.MethodPost, path, "application/x-www-form-urlencoded", strings.NewReader(big)))
		if a.status >= 500 || a.status < 300 {
			t.Errorf("%s: %d %.200s", path, a.status, a.body)
		}
		assertNoLeak(t, path, a.body)
	}
	e.assertNothingIssued(before)
	if c, l := countRows(); c != clients || l != launches {
		t.Errorf("clients %d -> %d, launches %d -> %d", clients, c, launches, l)
	}
}

// TestOversizedHeaders: request header fields beyond the server's 32 KiB
// cap are refused with 431 (RFC 6585 §5) before any handler acts; below
// the cap the request is served.
func TestOversizedHeaders(t *testing.T) {
	e := startEHR(t)
	code, verifier := e.ehrLaunchCode(dtrScope)
	g, status, body := e.exchange(code, verifier)
	if g == nil {
		t.Fatalf("exchange: %d %s", status, body)
	}
	pad := func(n int) []string { return []string{"X-Pad", strings.Repeat("p", n)} }
	justOver := httpserver.MaxHeaderBytes + 1

	t.Run("under the cap", func(t *testing.T) {
		a := e.send(e.request(http.MethodGet, "/healthz", "", nil, pad(httpserver.MaxHeaderBytes-2048)...))
		if a.status != http.StatusOK {
			t.Fatalf("got %d %s", a.status, a.body)
		}
	})
	t.Run("just over the cap", func(t *testing.T) {
		before := e.counts()
		form := strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.rs"}}.Encode())
		req := e.request(http.MethodPost, authz.PathToken, "application/x-www-form-urlencoded", form, pad(justOver)...)
		req.SetBasicAuth(authz.PayerClientID, payerSecret)
		checkError(t, "token", e.send(req), oauthJSON, http.StatusRequestHeaderFieldsTooLarge, "invalid_request")
		e.assertNothingIssued(before)

		h := append(pad(justOver), "Authorization", "Bearer "+g.AccessToken)
		checkError(t, "FHIR read", e.send(e.request(http.MethodGet, "/fhir/Patient/pat-1", "", nil, h...)), outcome, http.StatusRequestHeaderFieldsTooLarge, fhir.IssueTooLong)

		// Many small fields count as much as one big one.
		req = e.request(http.MethodGet, "/healthz", "", nil)
		for i := 0; i < 40; i++ {
			req.Header.Set("X-Pad-"+strings.Repeat("n", i+1), strings.Repeat("p", 1024))
		}
		if a := e.send(req); a.status != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("40 fields of 1 KiB: %d", a.status)
		}
	})
	t.Run("far over the cap", func(t *testing.T) {
		// net/http refuses these itself, before the router.
		for _, n := range []int{64 << 10, 1 << 20} {
			if a := e.send(e.request(http.MethodGet, "/healthz", "", nil, pad(n)...)); a.status != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("%d bytes: %d", n, a.status)
			}
		}
	})
}

// TestMalformedInput: malformed forms, JSON with duplicate or case-variant
// members, truncated or trailing JSON and unknown FHIR routes answer 4xx
// in each endpoint's format, never a 5xx, and store nothing.
func TestMalformedInput(t *testing.T) {
	e := startEHR(t)
	code, verifier := e.ehrLaunchCode(dtrScope)
	g, status, body := e.exchange(code, verifier)
	if g == nil {
		t.Fatalf("exchange: %d %s", status, body)
	}
	form, js := "application/x-www-form-urlencoded", "application/json"
	bearer := []string{"Authorization", "Bearer " + g.AccessToken}
	launchOK := `{"client_id":"dtr-app","patient":"pat-1","practitioner":"prac-1"}`
	cases := []struct {
		name, method, path, contentType, body string
		header                                []string
		kind                                  kind
		status                                int
		code                                  string
	}{
		{"token: bad escape", "POST", authz.PathToken, form, "grant_type=%zz", nil, oauthJSON, 400, "invalid_request"},
		{"token: semicolon separator", "POST", authz.PathToken, form, "grant_type=client_credentials;scope=x", nil, oauthJSON, 400, "invalid_request"},
		{"token: multipart", "POST", authz.PathToken, "multipart/form-data; boundary=x", "--x--", nil, oauthJSON, 400, "invalid_request"},
		{"token: no content type", "POST", authz.PathToken, "", "grant_type=client_credentials", nil, oauthJSON, 400, "invalid_request"},
		{"introspect: bad escape", "POST", authz.PathIntrospect, form, "token=%zz", nil, oauthJSON, 400, "invalid_request"},
		{"revoke: bad escape", "POST", authz.PathRevoke, form, "token=%zz", nil, oauthJSON, 400, "invalid_request"},
		{"register: truncated", "POST", authz.PathRegister, js, `{"redirect_uris":["https://a.example/cb"],`, nil, oauthJSON, 400, "invalid_client_metadata"},
		{"register: array", "POST", authz.PathRegister, js, `[]`, nil, oauthJSON, 400, "invalid_client_metadata"},
		{"register: trailing data", "POST", authz.PathRegister, js, `{"redirect_uris":["https://a.example/cb"],"scope":"openid","token_endpoint_auth_method":"none"}{}`, nil, oauthJSON, 400, "invalid_client_metadata"},
		{"register: duplicate inside jwks", "POST", authz.PathRegister, js, `{"redirect_uris":["https://a.example/cb"],"scope":"openid","token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[],"keys":[]}}`, nil, oauthJSON, 400, "invalid_client_metadata"},
		{"register: duplicate redirect_uris", "POST", authz.PathRegister, js, `{"redirect_uris":["https://a.example/cb"],"redirect_uris":["https://evil.example/cb"],"scope":"openid","token_endpoint_auth_method":"none"}`, nil, oauthJSON, 400, "invalid_client_metadata"},
		{"register: invalid UTF-8", "POST", authz.PathRegister, js, "{\"client_name\":\"\xff\",\"redirect_uris\":[\"https://a.example/cb\"],\"scope\":\"openid\",\"token_endpoint_auth_method\":\"none\"}", nil, oauthJSON, 400, "invalid_client_metadata"},
		{"launch: duplicate patient", "POST", "/api/launch", js, `{"client_id":"dtr-app","patient":"pat-1","patient":"pat-2","practitioner":"prac-1"}`, nil, oauthJSON, 400, "invalid_request"},
		{"launch: duplicate client_id", "POST", "/api/launch", js, `{"client_id":"dtr-app","client_id":"payer","patient":"pat-1","practitioner":"prac-1"}`, nil, oauthJSON, 400, "invalid_request"},
		{"launch: duplicate inside fhirContext", "POST", "/api/launch", js, `{"client_id":"dtr-app","patient":"pat-1","practitioner":"prac-1","fhirContext":[{"reference":"Coverage/cov-1","reference":"Coverage/cov-2"}]}`, nil, oauthJSON, 400, "invalid_request"},
		{"launch: case-variant member", "POST", "/api/launch", js, `{"client_id":"dtr-app","patient":"pat-1","Patient":"pat-2","practitioner":"prac-1"}`, nil, oauthJSON, 400, "invalid_request"},
		{"launch: truncated", "POST", "/api/launch", js, launchOK[:20], nil, oauthJSON, 400, "invalid_request"},
		{"launch: trailing data", "POST", "/api/launch", js, launchOK + `{}`, nil, oauthJSON, 400, "invalid_request"},
		{"launch: wrong type", "POST", "/api/launch", js, `{"client_id":"dtr-app","patient":1,"practitioner":"prac-1"}`, nil, oauthJSON, 400, "invalid_request"},
		{"launch: invalid UTF-8", "POST", "/api/launch", js, "{\"client_id\":\"dtr-app\",\"patient\":\"pat-1\",\"practitioner\":\"prac-1\",\"encounter\":\"\xff\"}", nil, oauthJSON, 400, "invalid_request"},
		{"launch: empty body", "POST", "/api/launch", js, ``, nil, oauthJSON, 400, "invalid_request"},
		{"authorize: bad escape", "GET", authz.PathAuthorize + "?client_id=%zz", "", "", nil, htmlPage, 400, "invalid_request"},
		{"interact: bad escape", "POST", authz.PathInteract, form, "tx=%zz", nil, htmlPage, 400, "invalid_request"},
		{"interact: unknown transaction", "POST", authz.PathInteract, form, "tx=nope&csrf=nope&action=approve", nil, htmlPage, 400, "invalid_request"},
		{"FHIR: trailing slash", "GET", "/fhir/Patient/", "", "", bearer, outcome, 404, fhir.IssueNotSupported},
		{"FHIR: history", "GET", "/fhir/Patient/pat-1/_history/1", "", "", bearer, outcome, 404, fhir.IssueNotSupported},
		{"FHIR: base", "GET", "/fhir", "", "", bearer, outcome, 404, fhir.IssueNotSupported},
		{"FHIR: encoded traversal", "GET", "/fhir/%2e%2e/oauth/token", "", "", bearer, outcome, 404, fhir.IssueNotSupported},
		{"FHIR: DELETE", "DELETE", "/fhir/Patient/pat-1", "", "", bearer, outcome, 405, fhir.IssueNotSupported},
		{"FHIR: PATCH", "PATCH", "/fhir/QuestionnaireResponse/x", "application/json-patch+json", "[]", bearer, outcome, 405, fhir.IssueNotSupported},
		{"FHIR: invalid id", "GET", "/fhir/Patient/pat%00", "", "", bearer, outcome, 400, fhir.IssueValue},
		{"FHIR: unknown type", "GET", "/fhir/Observation/x", "", "", bearer, outcome, 404, fhir.IssueNotSupported},
		{"FHIR: duplicate key", "POST", "/fhir/QuestionnaireResponse", fhir.ContentType, `{"resourceType":"QuestionnaireResponse","status":"completed","subject":{"reference":"Patient/pat-1"},"subject":{"reference":"Patient/pat-2"}}`, bearer, outcome, 400, fhir.IssueStructure},
		{"not FHIR: unknown route", "GET", "/nowhere", "", "", nil, oauthJSON, 404, "not_found"},
		{"not FHIR: wrong method", "GET", "/api/launch", "", "", nil, oauthJSON, 405, "invalid_request"},
	}
	var clients, launches, resources int64
	countRows := func() (int64, int64, int64) {
		var c, l, r int64
		e.srv.DB().Table(oauthstore.TableClients).Count(&c)
		e.srv.DB().Table("ehr_launches").Count(&l)
		e.srv.DB().Table("fhir_resources").Count(&r)
		return c, l, r
	}
	clients, launches, resources = countRows()
	before := e.counts()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r io.Reader
			if c.body != "" {
				r = strings.NewReader(c.body)
			}
			checkError(t, c.name, e.send(e.request(c.method, c.path, c.contentType, r, c.header...)), c.kind, c.status, c.code)
		})
	}
	e.assertNothingIssued(before)
	if cl, l, r := countRows(); cl != clients || l != launches || r != resources {
		t.Errorf("clients %d -> %d, launches %d -> %d, resources %d -> %d", clients, cl, launches, l, resources, r)
	}
}
