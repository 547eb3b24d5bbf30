package server_test

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"dtrsandbox/ehr/internal/authz"
	"dtrsandbox/ehr/internal/launch"
	"dtrsandbox/ehr/internal/oauthstore"
	"dtrsandbox/ehr/internal/server"
	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/httpclient"
	"dtrsandbox/shared/httpserver"
	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/localtls"
	"dtrsandbox/shared/smart"
)

// payerSecret is the EHR_PAYER_CLIENT_SECRET of the test EHR.
const payerSecret = "payer-test-secret-0123456789abcdef0123456789"

// clock is the EHR's clock in tests: real time plus an offset.
type clock struct{ off atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) Advance(d time.Duration) { c.off.Add(int64(d)) }
func (c *clock) Reset()                  { c.off.Store(0) }

// keyServer publishes a JWK Set over plain HTTP on loopback (the EHR
// accepts http jwks_uri on loopback only), standing for the SMART app or
// the payer.
type keyServer struct {
	*httptest.Server
	set atomic.Pointer[jwks.Set]
}

func newKeyServer(t testing.TB, keys ...*jwks.SigningKey) *keyServer {
	ks := &keyServer{}
	set := jwks.Set(keys)
	ks.set.Store(&set)
	ks.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/jwks.json" {
			http.NotFound(w, r)
			return
		}
		jwks.Handler(*ks.set.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(ks.Close)
	return ks
}

// ehr is a running EHR over HTTPS with its two seeded peers.
type ehr struct {
	t        testing.TB
	dataDir  string
	dbURL    string
	url      string // public URL
	fhir     string // FHIR base
	srv      *server.Server
	clock    *clock
	client   *http.Client // trusts the sandbox CA, follows no redirects
	app      *keyServer   // dtr-app: jwks, and the host its redirect URI points at
	appKey   *jwks.SigningKey
	appRSA   *jwks.SigningKey // in the app's JWKS, but not its registered alg
	payer    *keyServer
	payerKey *jwks.SigningKey
	payerRSA *jwks.SigningKey // in the payer's JWKS, but not its registered alg
	stop     func()
}

type ehrOptions struct {
	dataDir string
	dbURL   string
	app     *keyServer
	appKey  *jwks.SigningKey
	appRSA  *jwks.SigningKey
	payer   *keyServer
	payerK  *jwks.SigningKey
	payerR  *jwks.SigningKey
	port    int
}

func mustKey(t testing.TB, alg string) *jwks.SigningKey {
	t.Helper()
	k, err := jwks.Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// startEHR starts the EHR with a fresh data directory.
func startEHR(t testing.TB) *ehr {
	t.Helper()
	return startEHRWith(t, newPeers(t, t.TempDir(), ""))
}

// newPeers makes the SMART app's and the payer's keys and key servers.
func newPeers(t testing.TB, dataDir, dbURL string) ehrOptions {
	appKey, appRSA := mustKey(t, jwks.ES384), mustKey(t, jwks.RS384)
	payerKey, payerRSA := mustKey(t, jwks.ES384), mustKey(t, jwks.RS384)
	return ehrOptions{
		dataDir: dataDir, dbURL: dbURL,
		app: newKeyServer(t, appKey, appRSA), appKey: appKey, appRSA: appRSA,
		payer: newKeyServer(t, payerKey, payerRSA), payerK: payerKey, payerR: payerRSA,
	}
}

func startEHRWith(t testing.TB, o ehrOptions) *ehr {
	t.Helper()
	tlsPaths, err := localtls.Ensure(o.dataDir, "ehr", localtls.DefaultHosts())
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := localtls.ServerConfig(tlsPaths)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", o.port))
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	public := fmt.Sprintf("https://localhost:%d", port)
	client, err := httpclient.New(httpclient.Config{CAFile: tlsPaths.CA})
	if err != nil {
		t.Fatal(err)
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	clk := &clock{}
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(&testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, server.Config{
		PublicURL:         public,
		DataDir:           o.dataDir,
		DatabaseURL:       o.dbURL,
		SmartAppURL:       o.app.URL,
		PayerJWKSURI:      o.payer.URL + "/.well-known/jwks.json",
		PayerClientSecret: payerSecret,
		AccessTokenTTL:    15 * time.Minute,
		TLS:               true,
		HTTPClient:        client,
		Logger:            log,
		Now:               clk.Now,
	})
	if err != nil {
		cancel()
		ln.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- httpserver.Serve(ctx, ln, httpserver.Config{Handler: srv.Handler(), TLS: tlsCfg, Logger: log, ShutdownTimeout: 30 * time.Second})
	}()
	e := &ehr{
		t: t, dataDir: o.dataDir, dbURL: o.dbURL, url: public, fhir: public + "/fhir", srv: srv, clock: clk,
		client: client, app: o.app, appKey: o.appKey, appRSA: o.appRSA, payer: o.payer, payerKey: o.payerK, payerRSA: o.payerR,
	}
	var once atomic.Bool
	e.stop = func() {
		if !once.CompareAndSwap(false, true) {
			return
		}
		// Connections dialed but never used would hold Shutdown for 5s.
		client.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}
	t.Cleanup(e.stop)
	return e
}

// restart stops the EHR and starts it again on the same data, port and peers.
func (e *ehr) restart() *ehr {
	e.t.Helper()
	e.stop()
	u, _ := url.Parse(e.url)
	port := 0
	fmt.Sscanf(u.Port(), "%d", &port)
	return startEHRWith(e.t, ehrOptions{
		dataDir: e.dataDir, dbURL: e.dbURL, port: port,
		app: e.app, appKey: e.appKey, appRSA: e.appRSA, payer: e.payer, payerK: e.payerKey, payerR: e.payerRSA,
	})
}

type testWriter struct{ t testing.TB }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (e *ehr) tokenURL() string { return e.url + authz.PathToken }

// appSigner makes dtr-app client assertions for the EHR token endpoint.
func (e *ehr) appSigner() *clientauth.Signer {
	return &clientauth.Signer{Key: e.appKey, ClientID: authz.SmartAppClientID}
}

func (e *ehr) payerSigner() *clientauth.Signer {
	return &clientauth.Signer{Key: e.payerKey, ClientID: authz.PayerClientID}
}

// assertionOpts are x/oauth2 options carrying a fresh dtr-app assertion.
func (e *ehr) assertionOpts() []oauth2.AuthCodeOption {
	e.t.Helper()
	a, err := e.appSigner().Assertion(e.tokenURL())
	if err != nil {
		e.t.Fatal(err)
	}
	return []oauth2.AuthCodeOption{
		oauth2.SetAuthURLParam("client_assertion_type", clientauth.AssertionType),
		oauth2.SetAuthURLParam("client_assertion", a),
	}
}

// appConfig is the x/oauth2 configuration of the seeded DTR app.
func (e *ehr) appConfig(scopes ...string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: authz.SmartAppClientID,
		Endpoint: oauth2.Endpoint{
			AuthURL:   e.url + authz.PathAuthorize,
			TokenURL:  e.tokenURL(),
			AuthStyle: oauth2.AuthStyleInParams,
		},
		RedirectURL: e.app.URL + "/callback",
		Scopes:      scopes,
	}
}

// ctx carries the CA-trusting client for x/oauth2 and go-oidc.
func (e *ehr) ctx() context.Context {
	return context.WithValue(context.Background(), oauth2.HTTPClient, e.client)
}

// launch creates an EHR launch through the API.
func (e *ehr) launch(req launch.Request) *launch.Created {
	e.t.Helper()
	status, body := e.postJSON("/api/launch", req)
	if status != http.StatusCreated {
		e.t.Fatalf("launch: %d %s", status, body)
	}
	var out launch.Created
	if err := json.Unmarshal(body, &out); err != nil {
		e.t.Fatal(err)
	}
	return &out
}

// dtrLaunch is the contract's DTR launch for pat-1.
func dtrLaunch() launch.Request {
	return launch.Request{
		ClientID: authz.SmartAppClientID, Patient: "pat-1", Practitioner: "prac-1", Encounter: "enc-1",
		FHIRContext: []smart.ContextItem{{Reference: "Coverage/cov-1"}, {Reference: "DeviceRequest/dr-oxygen-1"}},
	}
}

func (e *ehr) postJSON(path string, v any) (int, []byte) {
	e.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := e.client.Post(e.url+path, "application/json", strings.NewReader(string(b)))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		assertNoLeak(e.t, "POST "+path, string(body))
	}
	return resp.StatusCode, body
}

// postForm posts a form; basic, if set, is [id, secret] for HTTP Basic.
func (e *ehr) postForm(path string, form url.Values, basic ...string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basic) == 2 {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		assertNoLeak(e.t, "POST "+path, string(body))
	}
	return resp, body
}

// oauthError decodes an RFC 6749 §5.2 error body.
func oauthError(t testing.TB, body []byte) string {
	t.Helper()
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("not an OAuth error: %s", body)
	}
	return e.Error
}

// browser is a user agent with a cookie jar that stops at the app.
type browser struct {
	e *ehr
	c *http.Client
}

func (e *ehr) browser() *browser {
	jar, _ := cookiejar.New(nil)
	c := *e.client
	c.Jar = jar
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{e: e, c: &c}
}

// page is one answer seen by the browser.
type page struct {
	status   int
	location *url.URL // set for a redirect
	body     string
	header   http.Header
}

func (b *browser) do(req *http.Request) *page {
	b.e.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := &page{status: resp.StatusCode, body: string(body), header: resp.Header}
	if resp.StatusCode >= 400 {
		assertNoLeak(b.e.t, req.Method+" "+req.URL.Path, p.body)
	}
	if loc := resp.Header.Get("Location"); strings.Contains(loc, "error=") {
		if u, err := url.Parse(loc); err == nil {
			assertNoLeak(b.e.t, "error redirect", u.Query().Get("error_description"))
		}
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		p.location, err = url.Parse(loc)
		if err != nil {
			b.e.t.Fatal(err)
		}
	}
	return p
}

func (b *browser) get(u string) *page {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.e.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) *page {
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		b.e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="(tx|csrf)" value="([^"]*)">`)

// formFields are the hidden fields of an interaction page.
func (p *page) formFields(t testing.TB) url.Values {
	t.Helper()
	v := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(p.body, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	if v.Get("tx") == "" || v.Get("csrf") == "" {
		t.Fatalf("no interaction form in page (%d): %s", p.status, p.body)
	}
	return v
}

// submit posts an interaction form with extra fields.
func (b *browser) submit(p *page, extra url.Values) *page {
	b.e.t.Helper()
	form := p.formFields(b.e.t)
	for k, v := range extra {
		form[k] = v
	}
	return b.post(b.e.url+authz.PathInteract, form)
}

// codeFrom checks a redirect to the app's callback and returns its code.
func (p *page) codeFrom(t testing.TB, e *ehr, state string) string {
	t.Helper()
	if p.status != http.StatusSeeOther || p.location == nil {
		t.Fatalf("want a redirect to the app, got %d: %s", p.status, p.body)
	}
	if got := p.location.Scheme + "://" + p.location.Host + p.location.Path; got != e.app.URL+"/callback" {
		t.Fatalf("redirected to %s", p.location)
	}
	q := p.location.Query()
	if q.Get("error") != "" {
		t.Fatalf("error redirect: %s: %s", q.Get("error"), q.Get("error_description"))
	}
	if q.Get("state") != state {
		t.Fatalf("state %q, want %q", q.Get("state"), state)
	}
	if q.Get("code") == "" {
		t.Fatalf("no code in %s", p.location)
	}
	return q.Get("code")
}

// errorFrom checks an error redirect to redirectURI and returns the code.
func (p *page) errorFrom(t testing.TB, redirectURI string) string {
	t.Helper()
	if p.status != http.StatusSeeOther || p.location == nil {
		t.Fatalf("want an error redirect, got %d: %.300s", p.status, p.body)
	}
	if got := p.location.Scheme + "://" + p.location.Host + p.location.Path; got != redirectURI {
		t.Fatalf("redirected to %s, want %s", p.location, redirectURI)
	}
	if p.location.Query().Get("code") != "" {
		t.Fatalf("a code was issued: %s", p.location)
	}
	return p.location.Query().Get("error")
}

// counts are the rows of the grant tables.
type counts map[string]int64

func (e *ehr) counts() counts {
	e.t.Helper()
	out := counts{}
	for _, table := range []string{oauthstore.TableAuthorizeCodes, oauthstore.TablePKCE, oauthstore.TableOIDCSessions,
		oauthstore.TableAccessTokens, oauthstore.TableRefreshTokens} {
		var n int64
		if err := e.srv.DB().Table(table).Count(&n).Error; err != nil {
			e.t.Fatal(err)
		}
		out[table] = n
	}
	return out
}

// assertNothingIssued checks that no grant table gained a row (a refusal
// may delete: fosite spends the PKCE binding of a code on a wrong verifier,
// and removes a reused refresh token).
func (e *ehr) assertNothingIssued(before counts) {
	e.t.Helper()
	after := e.counts()
	for k, v := range before {
		if after[k] > v {
			e.t.Errorf("%s: %d rows before, %d after", k, v, after[k])
		}
	}
}

// tokenResponse is the token endpoint's answer.
type tokenResponse struct {
	AccessToken       string              `json:"access_token"`
	TokenType         string              `json:"token_type"`
	ExpiresIn         int                 `json:"expires_in"`
	Scope             string              `json:"scope"`
	RefreshToken      string              `json:"refresh_token"`
	IDToken           string              `json:"id_token"`
	Patient           string              `json:"patient"`
	Encounter         string              `json:"encounter"`
	FHIRContext       []smart.ContextItem `json:"fhirContext"`
	NeedPatientBanner *bool               `json:"need_patient_banner"`
}

// token posts to the token endpoint and decodes a success.
func (e *ehr) token(form url.Values, basic ...string) (*tokenResponse, int, []byte) {
	e.t.Helper()
	resp, body := e.postForm(authz.PathToken, form, basic...)
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode, body
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		e.t.Errorf("token response Cache-Control %q", cc)
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		e.t.Fatal(err)
	}
	return &tr, resp.StatusCode, body
}

// appTokenForm is a dtr-app token request with a fresh assertion.
func (e *ehr) appTokenForm(extra url.Values) url.Values {
	e.t.Helper()
	f, err := e.appSigner().Form(e.tokenURL(), extra)
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

func (e *ehr) payerForm(extra url.Values) url.Values {
	e.t.Helper()
	f, err := e.payerSigner().Form(e.tokenURL(), extra)
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

// introspect asks as the payer with private_key_jwt.
func (e *ehr) introspect(token string) map[string]any {
	e.t.Helper()
	resp, body := e.postForm(authz.PathIntrospect, e.payerForm(url.Values{"token": {token}}))
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("introspect: %d %s", resp.StatusCode, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

// assertInactive checks the exact {"active":false} answer.
func (e *ehr) assertInactive(token string) {
	e.t.Helper()
	m := e.introspect(token)
	if len(m) != 1 || m["active"] != false {
		e.t.Fatalf("introspection of an inactive token: %v", m)
	}
}

// authorizeURL builds a dtr-app authorization request.
type authParams struct {
	scope, state, verifier, launch string
	extra                          url.Values
}

func (e *ehr) authorizeURL(p authParams) string {
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {authz.SmartAppClientID},
		"redirect_uri":          {e.app.URL + "/callback"},
		"scope":                 {p.scope},
		"state":                 {p.state},
		"aud":                   {e.fhir},
		"code_challenge":        {oauth2.S256ChallengeFromVerifier(p.verifier)},
		"code_challenge_method": {"S256"},
	}
	if p.launch != "" {
		q.Set("launch", p.launch)
	}
	for k, v := range p.extra {
		if v == nil {
			q.Del(k)
			continue
		}
		q[k] = v
	}
	return e.url + authz.PathAuthorize + "?" + q.Encode()
}

// ehrLaunchCode runs an EHR launch for dtr-app up to the code.
func (e *ehr) ehrLaunchCode(scope string) (code, verifier string) {
	e.t.Helper()
	l := e.launch(dtrLaunch())
	verifier = oauth2.GenerateVerifier()
	state := "state-" + verifier[:12]
	p := e.browser().get(e.authorizeURL(authParams{scope: scope, state: state, verifier: verifier, launch: l.Launch}))
	return p.codeFrom(e.t, e, state), verifier
}

// exchange redeems a dtr-app code with a fresh assertion.
func (e *ehr) exchange(code, verifier string) (*tokenResponse, int, []byte) {
	return e.token(e.appTokenForm(url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
		"redirect_uri": {e.app.URL + "/callback"},
	}))
}

const dtrScope = "launch openid fhirUser offline_access patient/*.rs patient/QuestionnaireResponse.cu"

type (
	contextT  = context.Context
	publicKey = crypto.PublicKey
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func jwtEncode(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
