package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"dtrsandbox/payer/internal/authz"
	"dtrsandbox/shared/accesstoken"
	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/httpserver"
	"dtrsandbox/shared/jwks"
)

// world is a payer served over loopback HTTP, with a SMART app (its JWK
// Set) and an EHR (its JWK Set and an RFC 7662 introspection endpoint that
// knows the tokens ehrToken issued) around it; the registry lists the EHR
// in jwks mode, or in introspection mode (newWorldMode).
type world struct {
	t        testing.TB
	srv      *Server
	stop     func() // stops serving (graceful shutdown), idempotent
	url      string
	appKey   *jwks.SigningKey
	ehrKey   *jwks.SigningKey
	ehrURL   string
	dataDir  string
	registry string

	issued         sync.Map // EHR token -> introspection answer
	introspections atomic.Int64
}

// ehrServer serves the world's EHR: its key set and introspection for the
// payer (client_secret_basic payer:s).
func (w *world) ehrServer(t testing.TB) *httptest.Server {
	set, err := jwks.Set{w.ehrKey}.MarshalPublic()
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /jwks", func(rw http.ResponseWriter, r *http.Request) { rw.Write(set) })
	mux.HandleFunc("POST /introspect", func(rw http.ResponseWriter, r *http.Request) {
		w.introspections.Add(1)
		if id, secret, ok := r.BasicAuth(); !ok || id != "payer" || secret != "s" {
			http.Error(rw, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		ans := any(map[string]any{"active": false})
		if a, ok := w.issued.Load(r.PostFormValue("token")); ok {
			ans = a
		}
		rw.Header().Set("Content-Type", "application/json")
		json.NewEncoder(rw).Encode(ans)
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func keyServer(t testing.TB, key *jwks.SigningKey, path string) *httptest.Server {
	set, err := jwks.Set{key}.MarshalPublic()
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) { w.Write(set) })
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func newWorld(t testing.TB, mut func(c *Config)) *world {
	t.Helper()
	return newWorldMode(t, "jwks", mut)
}

// newWorldMode is newWorld with the EHR listed in mode (jwks or
// introspection).
func newWorldMode(t testing.TB, mode string, mut func(c *Config)) *world {
	t.Helper()
	w := &world{t: t, dataDir: t.TempDir()}
	var err error
	if w.appKey, err = jwks.Generate("ES384"); err != nil {
		t.Fatal(err)
	}
	if w.ehrKey, err = jwks.Generate("ES256"); err != nil {
		t.Fatal(err)
	}
	app := keyServer(t, w.appKey, "/.well-known/jwks.json")
	ehr := w.ehrServer(t)
	w.ehrURL = ehr.URL + "/fhir"
	w.registry = filepath.Join(w.dataDir, "trusted-ehrs.json")
	reg := fmt.Sprintf(`{"ehrs":[{"issuer":%q,"mode":"jwks","jwks_uri":%q}]}`, w.ehrURL, ehr.URL+"/jwks")
	if mode == "introspection" {
		reg = fmt.Sprintf(`{"ehrs":[{"issuer":%q,"mode":"introspection","jwks_uri":%q,"introspection_endpoint":%q,`+
			`"client_id":"payer","client_auth":"client_secret_basic","client_secret":"s"}]}`, w.ehrURL, ehr.URL+"/jwks", ehr.URL+"/introspect")
	}
	if err := os.WriteFile(w.registry, []byte(reg), 0o600); err != nil {
		t.Fatal(err)
	}
	// The payer is served as cmd/payer serves it (httpserver.Serve: the
	// production timeouts and header cap), over loopback HTTP.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.url = "http://" + ln.Addr().String()
	cfg := Config{
		PublicURL: w.url, DataDir: w.dataDir, TrustedEHRsPath: w.registry, RegistrationOpen: true,
		SmartAppURL: app.URL, EHRIssuer: w.ehrURL, RateLimit: 100, RegistryPollInterval: 20 * time.Millisecond,
	}
	if mut != nil {
		mut(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if w.srv, err = New(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.srv.Close() })
	serveCtx, cancelServe := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	go func() {
		done <- httpserver.Serve(serveCtx, ln, httpserver.Config{Handler: w.srv.Handler(), Logger: log})
	}()
	var once sync.Once
	w.stop = func() {
		once.Do(func() {
			cancelServe()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(w.stop) // before srv.Close: in-flight requests finish first
	return w
}

func (w *world) do(method, path, body string, hdr ...string) (*http.Response, string) {
	w.t.Helper()
	req, err := http.NewRequest(method, w.url+path, strings.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// payerToken runs the SMART Backend Services token request as dtr-app.
func (w *world) payerToken(scope string) string {
	w.t.Helper()
	signer := &clientauth.Signer{Key: w.appKey, ClientID: SeedClientID}
	form, err := signer.Form(w.url+authz.TokenPath, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}})
	if err != nil {
		w.t.Fatal(err)
	}
	resp, body := w.do("POST", authz.TokenPath, form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	if resp.StatusCode != 200 {
		w.t.Fatalf("token: %d %s", resp.StatusCode, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal([]byte(body), &tr)
	return tr.AccessToken
}

// ehrToken is a launch token of the EHR for dtr-app and patient.
func (w *world) ehrToken(clientID, patient string) string {
	w.t.Helper()
	now := time.Now()
	c := &accesstoken.Claims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: w.ehrURL, Subject: "prac-1", Audience: jwt.ClaimStrings{w.ehrURL},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)), ID: fmt.Sprint(ehrJTI.Add(1))},
		ClientID: clientID, Scope: ehrScope, Patient: patient, FHIRUser: "Practitioner/prac-1",
	}
	raw, err := accesstoken.Sign(w.ehrKey, c)
	if err != nil {
		w.t.Fatal(err)
	}
	w.issued.Store(raw, map[string]any{"active": true, "client_id": clientID, "scope": c.Scope, "patient": patient,
		"fhirUser": c.FHIRUser, "sub": c.Subject, "iss": c.Issuer, "exp": c.ExpiresAt.Unix(), "iat": c.IssuedAt.Unix(), "token_type": "Bearer"})
	return raw
}

// ehrScope is the scope of the world's EHR launch tokens.
const ehrScope = "launch openid fhirUser patient/*.rs user/QuestionnaireResponse.cru"

var ehrJTI atomic.Int64

func (w *world) adminToken() string {
	b, err := os.ReadFile(w.srv.AdminTokenPath())
	if err != nil {
		w.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

const qrBody = `{"resourceType":"QuestionnaireResponse","status":"in-progress",` +
	`"questionnaire":"http://sandbox.dtr.example/fhir/Questionnaire/home-oxygen|2026.1",` +
	`"authored":"2024-05-02T10:09:00-05:00","item":[{"linkId":"1","answer":[{"valueBoolean":true}]}]}`

func TestEndToEnd(t *testing.T) {
	w := newWorld(t, nil)
	payer := w.payerToken("system/QuestionnaireResponse.cruds system/Questionnaire.rs")
	ehr := w.ehrToken("dtr-app", "pat-1")
	auth := []string{"Authorization", "Bearer " + payer, "X-EHR-Authorization", "Bearer " + ehr, "Content-Type", "application/fhir+json"}

	resp, body := w.do("POST", "/fhir/QuestionnaireResponse", qrBody, auth...)
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var created map[string]any
	json.Unmarshal([]byte(body), &created)
	subject, _ := created["subject"].(map[string]any)
	if subject["reference"] != w.ehrURL+"/Patient/pat-1" {
		t.Fatalf("subject %v", created["subject"])
	}
	id, _ := created["id"].(string)
	if resp, body := w.do("GET", "/fhir/QuestionnaireResponse/"+id, "", auth...); resp.StatusCode != 200 {
		t.Fatalf("read: %d %s", resp.StatusCode, body)
	}
	// Another patient's launch token sees nothing of it.
	other := []string{"Authorization", "Bearer " + payer, "X-EHR-Authorization", "Bearer " + w.ehrToken("dtr-app", "pat-2")}
	if resp, _ := w.do("GET", "/fhir/QuestionnaireResponse/"+id, "", other...); resp.StatusCode != 404 {
		t.Fatalf("other patient read: %d", resp.StatusCode)
	}
	// Another app's EHR token is refused (ehr_client_ids).
	stolen := []string{"Authorization", "Bearer " + payer, "X-EHR-Authorization", "Bearer " + w.ehrToken("some-other-app", "pat-1")}
	if resp, _ := w.do("GET", "/fhir/QuestionnaireResponse/"+id, "", stolen...); resp.StatusCode != 403 {
		t.Fatalf("another app's EHR token: %d", resp.StatusCode)
	}
	// No tokens.
	resp, body = w.do("GET", "/fhir/QuestionnaireResponse/"+id, "")
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") || !strings.Contains(body, "OperationOutcome") {
		t.Fatalf("no tokens: %d %v %s", resp.StatusCode, resp.Header, body)
	}

	// The audit trail holds the token request, the create, the reads and the refusals.
	resp, body = w.do("GET", "/fhir/AuditEvent?_count=50", "", "Authorization", "Bearer "+w.adminToken())
	if resp.StatusCode != 200 {
		t.Fatalf("audit search: %d %s", resp.StatusCode, body)
	}
	for _, want := range []string{`"Login"`, "create", "is not the registered ehr_client_id", "payer access token missing"} {
		if !strings.Contains(body, want) {
			t.Errorf("audit trail lacks %q", want)
		}
	}
	if strings.Contains(body, payer[len(payer)-30:]) || strings.Contains(body, ehr[len(ehr)-30:]) {
		t.Fatal("a token is in the audit trail")
	}
	if resp, _ := w.do("GET", "/fhir/AuditEvent", "", "Authorization", "Bearer "+payer); resp.StatusCode != 401 {
		t.Fatalf("audit with a payer token: %d", resp.StatusCode)
	}
}

func TestSurface(t *testing.T) {
	w := newWorld(t, nil)
	tests := []struct {
		method, path string
		status       int
		contains     string
		header       [2]string
	}{
		{"GET", "/healthz", 200, `"ok"`, [2]string{}},
		{"GET", "/.well-known/jwks.json", 200, `"keys"`, [2]string{"Cache-Control", "public, max-age=300"}},
		{"GET", "/fhir/.well-known/smart-configuration", 200, `"client-confidential-asymmetric"`, [2]string{}},
		{"GET", "/fhir/metadata", 200, `"resourceType":"CapabilityStatement"`, [2]string{}},
		{"GET", "/fhir/Nothing/here", 404, `"OperationOutcome"`, [2]string{"Content-Type", "application/fhir+json; charset=utf-8"}},
		{"GET", "/nowhere", 404, `"not-found"`, [2]string{}},
		{"GET", authz.TokenPath, 405, `"invalid_request"`, [2]string{"Cache-Control", "no-store"}},
		{"GET", "/oauth/nothing", 404, `"invalid_request"`, [2]string{}},
		{"PUT", "/fhir/AuditEvent", 405, `"OperationOutcome"`, [2]string{}},
		{"GET", "/static/no-such-file.css", 404, "", [2]string{}},
		{"DELETE", "/fhir/DocumentReference/x", 401, `"OperationOutcome"`, [2]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp, body := w.do(tt.method, tt.path, "")
			if resp.StatusCode != tt.status || !strings.Contains(body, tt.contains) {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if tt.header[0] != "" && resp.Header.Get(tt.header[0]) != tt.header[1] {
				t.Fatalf("%s: %q", tt.header[0], resp.Header.Get(tt.header[0]))
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatal("no security headers")
			}
		})
	}
	var set struct {
		Keys []struct{ Kid, Alg, Crv string } `json:"keys"`
	}
	_, body := w.do("GET", "/.well-known/jwks.json", "")
	json.Unmarshal([]byte(body), &set)
	if len(set.Keys) != 2 || set.Keys[0].Alg != "ES256" || set.Keys[1].Alg != "ES384" {
		t.Fatalf("payer JWKS %s", body)
	}
	var disc map[string]any
	_, body = w.do("GET", "/fhir/.well-known/smart-configuration", "")
	json.Unmarshal([]byte(body), &disc)
	if disc["token_endpoint"] != w.url+"/oauth/token" || disc["registration_endpoint"] != w.url+"/oauth/register" {
		t.Fatalf("discovery %s", body)
	}
}

// TestRegisteredAppFlow: a third-party app registers with ehr_client_ids,
// gets a token, and may use only EHR tokens issued to its own EHR client.
func TestRegisteredAppFlow(t *testing.T) {
	w := newWorld(t, nil)
	key, _ := jwks.Generate("ES384")
	set, _ := jwks.Set{key}.MarshalPublic()
	reg := fmt.Sprintf(`{"client_name":"Third party","token_endpoint_auth_method":"private_key_jwt","jwks":%s,
		"scope":"system/QuestionnaireResponse.rs","ehr_client_ids":{%q:"third-party"}}`, set, w.ehrURL)
	resp, body := w.do("POST", authz.RegistrationPath, reg, "Content-Type", "application/json")
	if resp.StatusCode != 201 {
		t.Fatalf("register: %d %s", resp.StatusCode, body)
	}
	var info struct {
		ClientID string `json:"client_id"`
	}
	json.Unmarshal([]byte(body), &info)
	// Claiming dtr-app's EHR client id is refused.
	steal := strings.Replace(reg, `"third-party"`, `"dtr-app"`, 1)
	if resp, body := w.do("POST", authz.RegistrationPath, steal, "Content-Type", "application/json"); resp.StatusCode != 400 || !strings.Contains(body, "invalid_client_metadata") {
		t.Fatalf("claiming a taken id: %d %s", resp.StatusCode, body)
	}
	signer := &clientauth.Signer{Key: key, ClientID: info.ClientID}
	form, _ := signer.Form(w.url+authz.TokenPath, url.Values{"grant_type": {"client_credentials"}, "scope": {"system/QuestionnaireResponse.rs"}})
	resp, body = w.do("POST", authz.TokenPath, form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	if resp.StatusCode != 200 {
		t.Fatalf("token: %d %s", resp.StatusCode, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal([]byte(body), &tr)
	mine := []string{"Authorization", "Bearer " + tr.AccessToken, "X-EHR-Authorization", "Bearer " + w.ehrToken("third-party", "pat-1")}
	if resp, body := w.do("GET", "/fhir/QuestionnaireResponse?status=completed", "", mine...); resp.StatusCode != 200 {
		t.Fatalf("search with own EHR token: %d %s", resp.StatusCode, body)
	}
	theirs := []string{"Authorization", "Bearer " + tr.AccessToken, "X-EHR-Authorization", "Bearer " + w.ehrToken("dtr-app", "pat-1")}
	if resp, _ := w.do("GET", "/fhir/QuestionnaireResponse", "", theirs...); resp.StatusCode != 403 {
		t.Fatalf("search with dtr-app's EHR token: %d", resp.StatusCode)
	}
}

func TestRegistryReloadWithoutRestart(t *testing.T) {
	w := newWorld(t, nil)
	payer := w.payerToken("system/QuestionnaireResponse.rs")
	auth := []string{"Authorization", "Bearer " + payer, "X-EHR-Authorization", "Bearer " + w.ehrToken("dtr-app", "pat-1")}
	if resp, _ := w.do("GET", "/fhir/QuestionnaireResponse", "", auth...); resp.StatusCode != 200 {
		t.Fatalf("before: %d", resp.StatusCode)
	}
	if err := os.WriteFile(w.registry, []byte(`{"ehrs":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second) // generous for a loaded CI machine; the poll is 20ms
	for {
		resp, body := w.do("GET", "/fhir/QuestionnaireResponse", "", auth...)
		if resp.StatusCode == 401 && strings.Contains(body, "not a trusted EHR") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the EHR is still trusted after its removal: %d %s", resp.StatusCode, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRegistrationClosedAndAdminToken(t *testing.T) {
	w := newWorld(t, func(c *Config) {
		c.RegistrationOpen = false
		c.AdminToken = strings.Repeat("a", 40)
	})
	if resp, body := w.do("POST", authz.RegistrationPath, `{}`, "Content-Type", "application/json"); resp.StatusCode != 403 || !strings.Contains(body, "access_denied") {
		t.Fatalf("closed registration: %d %s", resp.StatusCode, body)
	}
	if w.srv.AdminTokenPath() != "" {
		t.Fatal("admin token file used although PAYER_ADMIN_TOKEN was given")
	}
	if resp, _ := w.do("GET", "/fhir/AuditEvent", "", "Authorization", "Bearer "+strings.Repeat("a", 40)); resp.StatusCode != 200 {
		t.Fatalf("configured admin token: %d", resp.StatusCode)
	}
	if _, err := os.Stat(filepath.Join(w.dataDir, "payer", "admin-token")); err == nil {
		t.Fatal("an admin token file was generated")
	}
}

func TestRestartKeepsKeysAndSeed(t *testing.T) {
	w := newWorld(t, nil)
	_, before := w.do("GET", "/.well-known/jwks.json", "")
	admin := w.adminToken()
	w.stop()
	w.srv.Close()
	srv2, err := New(context.Background(), Config{PublicURL: w.url, DataDir: w.dataDir, TrustedEHRsPath: w.registry,
		SmartAppURL: "https://app.example", EHRIssuer: w.ehrURL})
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Close()
	rec := httptest.NewRecorder()
	srv2.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/.well-known/jwks.json", nil))
	if rec.Body.String() != before {
		t.Fatal("keys changed across a restart")
	}
	b, _ := os.ReadFile(srv2.AdminTokenPath())
	if strings.TrimSpace(string(b)) != admin {
		t.Fatal("admin token changed across a restart")
	}
}

func TestQuestionnaireRoutes(t *testing.T) {
	w := newWorld(t, nil)
	payer := w.payerToken("system/Questionnaire.rs")
	bearer := []string{"Authorization", "Bearer " + payer}
	if resp, body := w.do("GET", "/fhir/Questionnaire/home-oxygen", "", bearer...); resp.StatusCode != 200 || !strings.Contains(body, `"Questionnaire"`) {
		t.Fatalf("read without EHR token: %d %s", resp.StatusCode, body)
	}
	if resp, body := w.do("GET", "/fhir/Questionnaire", "", bearer...); resp.StatusCode != 200 || !strings.Contains(body, `"searchset"`) {
		t.Fatalf("search: %d %s", resp.StatusCode, body)
	}
	withEHR := append([]string{"X-EHR-Authorization", "Bearer " + w.ehrToken("dtr-app", "pat-1")}, bearer...)
	if resp, body := w.do("GET", "/fhir/Questionnaire/home-oxygen", "", withEHR...); resp.StatusCode != 200 {
		t.Fatalf("read with EHR token: %d %s", resp.StatusCode, body)
	}
	// An EHR token that is sent is validated and bound, even where it is optional.
	stolen := append([]string{"X-EHR-Authorization", "Bearer " + w.ehrToken("another-app", "pat-1")}, bearer...)
	if resp, _ := w.do("GET", "/fhir/Questionnaire/home-oxygen", "", stolen...); resp.StatusCode != 403 {
		t.Fatalf("read with another app's EHR token: %d", resp.StatusCode)
	}
	pkg := `{"resourceType":"Parameters","parameter":[{"name":"coverage","resource":{"resourceType":"Coverage","id":"cov-1","status":"active",` +
		`"beneficiary":{"reference":"Patient/pat-1"},"payor":[{"display":"Payer"}]}},{"name":"questionnaire","valueCanonical":"x"}]}`
	resp, body := w.do("POST", "/fhir/Questionnaire/$questionnaire-package", pkg, append(bearer, "Content-Type", "application/fhir+json")...)
	if resp.StatusCode == 401 || resp.StatusCode == 403 || resp.StatusCode == 404 || resp.StatusCode == 405 {
		t.Fatalf("$questionnaire-package did not reach its handler: %d %s", resp.StatusCode, body)
	}
	// Without the Questionnaire scope: 403 at the gate.
	noQ := w.payerToken("system/QuestionnaireResponse.rs")
	if resp, _ := w.do("GET", "/fhir/Questionnaire/home-oxygen", "", "Authorization", "Bearer "+noQ); resp.StatusCode != 403 {
		t.Fatalf("without the scope: %d", resp.StatusCode)
	}
}

func TestConsoleAndStaticRoutes(t *testing.T) {
	w := newWorld(t, nil)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(w.url + "/console/documents")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 3 || !strings.Contains(resp.Header.Get("Location"), "/console/login") {
		t.Fatalf("console without a session: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body := w.do("GET", "/console/login", ""); resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("login page: %d %s", resp.StatusCode, body)
	}
	form := url.Values{"token": {w.adminToken()}}
	req, _ := http.NewRequest("POST", w.url+"/console/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", w.url)
	resp, err = noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 3 || len(resp.Cookies()) == 0 {
		t.Fatalf("sign-in with the admin token: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := w.do("GET", "/static/css/sandbox.css", ""); resp.StatusCode != 200 {
		t.Fatalf("static css: %d", resp.StatusCode)
	}
}
