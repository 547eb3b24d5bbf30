package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/smart"
	"dtrsandbox/smartapp/internal/session"
	"dtrsandbox/smartapp/internal/signer"
	"dtrsandbox/smartapp/internal/standin"
)

// harness is the app, in-process, against the stand-in EHR and payer.
type harness struct {
	t     testing.TB
	clock *standin.Clock
	ehr   *standin.EHR
	payer *standin.Payer
	app   *httptest.Server
	srv   *Server
	jar   http.CookieJar
	web   *http.Client // a browser: cookie jar, follows redirects
}

func newHarness(t testing.TB, opts standin.EHROptions) *harness {
	t.Helper()
	key, err := jwks.Generate(jwks.ES384)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, clock: standin.NewClock()}
	var handler http.Handler = http.NotFoundHandler()
	h.app = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(h.app.Close)
	opts.AppJWKSURI = h.app.URL + "/.well-known/jwks.json"
	if opts.FHIRContext == nil {
		opts.FHIRContext = []smart.ContextItem{{Reference: "Coverage/cov-1"}, {Reference: "DeviceRequest/dr-oxygen-1"}}
	}
	h.ehr = standin.NewEHR(t, opts)
	h.payer = standin.NewPayer(t, opts.AppJWKSURI, standin.SeedQuestionnaire(t, "home-oxygen"))
	h.payer.Now = h.clock.Now
	h.payer.Patient = h.ehr.Issuer() + "/Patient/" + h.ehr.Opts.Patient
	h.srv, err = New(context.Background(), Config{
		PublicURL: h.app.URL, EHRs: []signer.EHR{{Issuer: h.ehr.Issuer(), ClientID: "dtr-app"}},
		PayerURL: h.payer.FHIRBase(), PayerClientID: "dtr-app", SigningKey: key,
		HTTP: &http.Client{Timeout: 10 * time.Second}, Now: h.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	handler = h.srv.Handler()
	h.jar, _ = cookiejar.New(nil)
	h.web = &http.Client{Jar: h.jar, Timeout: 10 * time.Second}
	return h
}

// launchURL is what the EHR's launch button opens.
func (h *harness) launchURL() string {
	return h.app.URL + "/launch?" + url.Values{"iss": {h.ehr.Issuer()}, "launch": {"launch-xyz"}}.Encode()
}

// launch runs the EHR launch as a browser does and answers the CSRF token.
func (h *harness) launch() string {
	h.t.Helper()
	resp, err := h.web.Get(h.launchURL())
	if err != nil {
		h.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/app" {
		h.t.Fatalf("launch ended at %s with %d: %s", resp.Request.URL, resp.StatusCode, body)
	}
	var ctx struct {
		CSRF string `json:"csrf_token"`
	}
	h.getJSON("/api/context", http.StatusOK, &ctx)
	if ctx.CSRF == "" {
		h.t.Fatal("no csrf token")
	}
	return ctx.CSRF
}

// session is the browser's server-side session.
func (h *harness) session() *session.Session {
	u, _ := url.Parse(h.app.URL)
	for _, c := range h.jar.Cookies(u) {
		if c.Name == h.srv.cookie {
			return h.srv.Sessions().Get(c.Value)
		}
	}
	return nil
}

func (h *harness) do(method, path string, header http.Header, body []byte) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.app.URL+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := h.web.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	noJWT(h.t, method+" "+path, resp.Header, b)
	return resp, b
}

// jwtPattern matches a compact JWS/JWT: three base64url segments, the
// first two long enough to be a JSON header and payload. Nothing the app
// sends a browser may match it.
var jwtPattern = regexp.MustCompile(`[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}`)

// noJWT fails the test when an answer of the app (body or header) carries
// something shaped like a token. Every request the harness makes goes
// through it: pages, JSON answers, errors.
func noJWT(t testing.TB, what string, hdr http.Header, body []byte) {
	t.Helper()
	if m := jwtPattern.Find(body); m != nil {
		t.Errorf("%s: the answer carries a JWT-shaped string %.60s…", what, m)
	}
	for k, vs := range hdr {
		for _, v := range vs {
			if jwtPattern.MatchString(v) {
				t.Errorf("%s: header %s carries a JWT-shaped string", what, k)
			}
		}
	}
}

func (h *harness) getJSON(path string, want int, out any) []byte {
	h.t.Helper()
	resp, body := h.do(http.MethodGet, path, nil, nil)
	if resp.StatusCode != want {
		h.t.Fatalf("GET %s: %d, want %d: %s", path, resp.StatusCode, want, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			h.t.Fatalf("GET %s: %v: %s", path, err, body)
		}
	}
	return body
}

func (h *harness) post(path, csrf string, body []byte) (*http.Response, []byte) {
	h.t.Helper()
	hdr := http.Header{"Content-Type": {"application/fhir+json"}}
	if csrf != "" {
		hdr.Set("X-CSRF-Token", csrf)
	}
	return h.do(http.MethodPost, path, hdr, body)
}

// noFollow is a client that does not follow redirects, sharing the jar.
func (h *harness) noFollow() *http.Client {
	return &http.Client{Jar: h.jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func response(flow string) []byte {
	return []byte(`{"resourceType":"QuestionnaireResponse","status":"in-progress","item":[{"linkId":"order","item":[
	 {"linkId":"order.flow-rate","answer":[{"valueDecimal":` + flow + `}]}]}]}`)
}

func contains(body []byte, s string) bool { return strings.Contains(string(body), s) }
