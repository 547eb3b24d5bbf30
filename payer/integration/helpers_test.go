package integration

// The shared steps of every scenario: starting a sandbox (a real EHR and a
// real payer over HTTPS), playing a SMART app against both (keys,
// registrations, EHR launch, payer token), talking FHIR to the payer with
// both tokens, reading the audit trail as the admin, and looking into the
// payer's database read-only. The scenario files read as the scenario;
// everything mechanical is here.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"gorm.io/gorm"

	"dtrsandbox/shared/accesstoken"
	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/config"
	"dtrsandbox/shared/database"
	"dtrsandbox/shared/fhir"
	"dtrsandbox/shared/httpclient"
	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/launcher"
	"dtrsandbox/shared/localtls"
	"dtrsandbox/shared/smart"
	"dtrsandbox/shared/testutil/logbuf"
)

// Fixed facts of the seeded sandbox (CONTRACT.md "Seeded").
const (
	// payerScope is every scope the payer offers (what a DTR app asks).
	payerScope = "system/Questionnaire.rs system/DocumentReference.cruds system/QuestionnaireResponse.cruds"
	// ehrScope is what the test apps ask of the EHR: the launch, identity,
	// a refresh token, and patient-level read/search.
	ehrScope = "launch openid fhirUser offline_access patient/*.rs"
	// homeOxygenURL is the canonical of the questionnaire dr-oxygen-1 needs.
	homeOxygenURL = "http://sandbox.dtr.example/fhir/Questionnaire/home-oxygen"
	// loincQRDocument is the LOINC code of a questionnaire response document.
	loincQRDocument = "74465-6"
)

// The launches the scenarios use.
var (
	launchPat1 = launchSpec{Patient: "pat-1", Practitioner: "prac-1", Context: []string{"Coverage/cov-1", "DeviceRequest/dr-oxygen-1"}}
	launchPat2 = launchSpec{Patient: "pat-2", Practitioner: "prac-2", Context: []string{"Coverage/cov-2", "DeviceRequest/dr-cpap-2"}}
)

// ---------------------------------------------------------------------------
// The sandbox.

// worldOptions are the extra environment of one sandbox.
type worldOptions struct {
	ehrEnv, payerEnv []string
	// payerDB and ehrDB are postgres:// URLs; empty: SQLite in the data dir.
	payerDB, ehrDB string
}

// world is one running sandbox: the EHR and the payer as separate
// processes over HTTPS on free ports, with a fresh data directory.
type world struct {
	sb        *launcher.Sandbox
	data      string
	ehrURL    string // https://localhost:<port>
	ehrFHIR   string // the EHR's issuer and FHIR base
	payerURL  string
	payerFHIR string
	ehrSMART  discovery
	paySMART  discovery
	client    *http.Client // trusts the sandbox CA, follows no redirect
	admin     string       // PAYER_ADMIN_TOKEN
	registry  string       // the trusted-EHR registry file the payer watches
	payerDB   string       // PAYER_DATABASE_URL, "" for SQLite
	logs      *logbuf.Lines
	keys      *keyHost

	dbMu sync.Mutex
	db   *gorm.DB
}

// discovery is the part of a SMART configuration the apps use.
type discovery struct {
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	RevocationEndpoint    string `json:"revocation_endpoint"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
	RegistrationEndpoint  string `json:"registration_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
}

// startWorld builds (once) and starts the EHR and the payer. The payer
// reads a trusted-EHR registry written by the test (introspection mode,
// private_key_jwt, like the launcher's), so a scenario can switch it to
// jwks mode. The rate limit is raised out of the way: these tests are about
// confinement, audit and durability, and fire more requests per second
// than a real app (the limit has its own unit tests in the gate).
func startWorld(t *testing.T, o worldOptions) *world {
	t.Helper()
	b := buildServices(t)
	ports, err := launcher.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{data: t.TempDir(), logs: &logbuf.Lines{Max: 4000}, payerDB: o.payerDB, admin: randomHex(t, 32)}
	w.registry = filepath.Join(w.data, "it-trusted-ehrs.json")
	cfg := launcher.Config{
		Root:     config.RepoRoot(),
		DataDir:  w.data,
		TLS:      true,
		Ports:    map[string]int{launcher.EHR: ports[0], launcher.Payer: ports[1]},
		Services: []string{launcher.EHR, launcher.Payer},
		Output:   w.logs,
	}
	w.ehrURL, w.ehrFHIR = cfg.BaseURL(launcher.EHR), cfg.EHRFHIRBase()
	w.payerURL, w.payerFHIR = cfg.BaseURL(launcher.Payer), cfg.PayerFHIRBase()
	w.writeRegistry(t, "introspection")

	ehrEnv := append([]string{"SANDBOX_LOG_LEVEL=info"}, o.ehrEnv...)
	if o.ehrDB != "" {
		ehrEnv = append(ehrEnv, "EHR_DATABASE_URL="+o.ehrDB)
	}
	payerEnv := append([]string{
		"SANDBOX_LOG_LEVEL=info",
		"PAYER_TRUSTED_EHRS=" + w.registry,
		"PAYER_ADMIN_TOKEN=" + w.admin,
		"PAYER_RATE_LIMIT=100000",
	}, o.payerEnv...)
	if o.payerDB != "" {
		payerEnv = append(payerEnv, "PAYER_DATABASE_URL="+o.payerDB)
	}
	cfg.Env = map[string][]string{launcher.EHR: ehrEnv, launcher.Payer: payerEnv}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sb, err := launcher.Start(ctx, cfg, b)
	if err != nil {
		t.Fatalf("starting the EHR and the payer: %v\n--- service logs ---\n%s", err, w.logs.Tail(200))
	}
	w.sb = sb
	t.Cleanup(func() {
		w.closeDB()
		if err := sb.Stop(); err != nil {
			t.Errorf("stopping the sandbox: %v", err)
		}
		if t.Failed() {
			t.Logf("--- service logs (last 300 lines) ---\n%s", w.logs.Tail(300))
		}
	})

	client, err := httpclient.New(httpclient.Config{CAFile: localtls.CAPath(w.data), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	w.client = client
	t.Cleanup(client.CloseIdleConnections)

	w.ehrSMART = w.discover(t, w.ehrFHIR)
	w.paySMART = w.discover(t, w.payerFHIR)
	if w.ehrSMART.TokenEndpoint != w.ehrURL+"/oauth/token" || w.paySMART.TokenEndpoint != w.payerURL+"/oauth/token" {
		t.Fatalf("token endpoints: EHR %q, payer %q", w.ehrSMART.TokenEndpoint, w.paySMART.TokenEndpoint)
	}
	w.keys = newKeyHost(t, w.data)
	return w
}

// discover reads {fhir}/.well-known/smart-configuration.
func (w *world) discover(t *testing.T, fhirBase string) discovery {
	t.Helper()
	r := w.send(t, http.MethodGet, fhirBase+"/.well-known/smart-configuration", nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("discovery at %s: %d %s", fhirBase, r.status, r.body)
	}
	var d discovery
	r.decode(t, &d)
	if d.TokenEndpoint == "" || d.RegistrationEndpoint == "" {
		t.Fatalf("discovery at %s lacks endpoints: %s", fhirBase, r.body)
	}
	return d
}

// writeRegistry (re)writes the payer's trusted-EHR registry for the EHR in
// mode ("introspection" or "jwks"), atomically, so the payer's watcher
// never reads half a file.
func (w *world) writeRegistry(t *testing.T, mode string) {
	t.Helper()
	doc := map[string]any{"ehrs": []map[string]any{{
		"issuer":                 w.ehrFHIR,
		"fhir_base":              w.ehrFHIR,
		"mode":                   mode,
		"jwks_uri":               w.ehrFHIR + "/.well-known/jwks.json",
		"introspection_endpoint": w.ehrURL + "/oauth/introspect",
		"token_endpoint":         w.ehrURL + "/oauth/token",
		"client_id":              "payer",
		"client_auth":            "private_key_jwt",
	}}}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	tmp := w.registry + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, w.registry); err != nil {
		t.Fatal(err)
	}
}

// switchMode rewrites the registry and waits until the payer uses the new
// mode (it re-reads the file about once a second, without a restart). The
// probe is a token no EHR issued, with the EHR's issuer: in introspection
// mode the EHR calls it inactive, in jwks mode its key is unknown. payerTok
// is any valid payer token.
func (w *world) switchMode(t *testing.T, mode, payerTok string) {
	t.Helper()
	w.writeRegistry(t, mode)
	want := map[string]string{"introspection": "inactive", "jwks": "not signed by a key of its issuer"}[mode]
	probe := w.forgedEHRToken(t, mustKey(t, jwks.ES256), "probe-client", "pat-1", time.Now().Add(10*time.Minute))
	deadline := time.Now().Add(60 * time.Second) // the poll is 1s; generous for a loaded CI machine
	for {
		r := w.payer(t, http.MethodGet, "/DocumentReference?_id=probe", payerTok, probe, nil)
		if r.status != http.StatusUnauthorized {
			t.Fatalf("probe with a forged EHR token: %d %s", r.status, r.body)
		}
		if strings.Contains(r.diagnostics(), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the payer did not switch to %s mode within 60s; last answer %s", mode, r.body)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// forgedEHRToken is an RFC 9068 token that claims the EHR as issuer and
// audience, signed with key (not the EHR's, unless the caller passes it).
func (w *world) forgedEHRToken(t *testing.T, key *jwks.SigningKey, clientID, patient string, exp time.Time) string {
	t.Helper()
	iat := exp.Add(-15 * time.Minute)
	if now := time.Now(); iat.After(now) {
		iat = now
	}
	c := &accesstoken.Claims{ClientID: clientID, Scope: ehrScope, Patient: patient, FHIRUser: w.ehrFHIR + "/Practitioner/prac-1"}
	c.Issuer, c.Subject, c.Audience = w.ehrFHIR, "Practitioner/prac-1", []string{w.ehrFHIR}
	c.IssuedAt, c.ExpiresAt, c.ID = jwtTime(iat), jwtTime(exp), randomHex(t, 16)
	tok, err := accesstoken.Sign(key, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// ehrSigningKey reads the EHR's own access-token key from its data
// directory (the test stands for the EHR having issued a token in the
// past), and checks that the EHR publishes it.
func (w *world) ehrSigningKey(t *testing.T) *jwks.SigningKey {
	t.Helper()
	path := filepath.Join(w.data, "ehr", "keys", "access-token-es256.pem")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the EHR's access-token key is not where expected: %v", err)
	}
	k, err := jwks.LoadOrCreate(path, jwks.ES256)
	if err != nil {
		t.Fatal(err)
	}
	r := w.send(t, http.MethodGet, w.ehrSMART.JWKSURI, nil, nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"`+k.KID+`"`) {
		t.Fatalf("the EHR does not publish key %s: %d %s", k.KID, r.status, r.body)
	}
	return k
}

// ---------------------------------------------------------------------------
// HTTP.

// reply is one answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r *reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %T from %d %s: %v", v, r.status, clip(r.body), err)
	}
}

func (r *reply) String() string { return fmt.Sprintf("%d %s", r.status, clip(r.body)) }

// diagnostics joins an OperationOutcome's diagnostics ("" for anything else).
func (r *reply) diagnostics() string {
	var oo fhir.OperationOutcome
	if json.Unmarshal(r.body, &oo) != nil || oo.ResourceType != "OperationOutcome" {
		return ""
	}
	var parts []string
	for _, is := range oo.Issue {
		parts = append(parts, is.Diagnostics)
	}
	return strings.Join(parts, "; ")
}

// oauthError is an RFC 6749 §5.2 error code ("" if the body is not one).
func (r *reply) oauthError() string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(r.body, &e)
	return e.Error
}

func clip(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "..."
	}
	return string(b)
}

// send makes one request with headers given as name, value pairs.
func (w *world) send(t *testing.T, method, target string, body []byte, hdr []string) *reply {
	t.Helper()
	r, err := w.trySend(method, target, body, hdr)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return r
}

// trySend is send that returns transport errors (crash and outage tests).
func (w *world) trySend(method, target string, body []byte, hdr []string) (*reply, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &reply{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// payerHeaders builds the header list of a payer FHIR request: the payer
// token in Authorization, the EHR token in X-EHR-Authorization (either
// left out when empty), a FHIR JSON content type for a body.
func payerHeaders(payerTok, ehrTok string, body []byte, hdr []string) []string {
	h := []string{"Accept", "application/fhir+json"}
	if payerTok != "" {
		h = append(h, "Authorization", "Bearer "+payerTok)
	}
	if ehrTok != "" {
		h = append(h, "X-EHR-Authorization", "Bearer "+ehrTok)
	}
	if body != nil && !slices.Contains(hdr, "Content-Type") {
		h = append(h, "Content-Type", "application/fhir+json")
	}
	return append(h, hdr...)
}

// payer sends a FHIR request to the payer: path is relative to its FHIR
// base ("/DocumentReference?...").
func (w *world) payer(t *testing.T, method, path, payerTok, ehrTok string, body []byte, hdr ...string) *reply {
	t.Helper()
	return w.send(t, method, w.payerFHIR+path, body, payerHeaders(payerTok, ehrTok, body, hdr))
}

func (w *world) postJSON(t *testing.T, target string, v any) *reply {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return w.send(t, http.MethodPost, target, b, []string{"Content-Type", "application/json"})
}

func (w *world) postForm(t *testing.T, target string, form url.Values) *reply {
	t.Helper()
	return w.send(t, http.MethodPost, target, []byte(form.Encode()), []string{"Content-Type", "application/x-www-form-urlencoded"})
}

// ---------------------------------------------------------------------------
// Apps.

// app is a SMART app the test plays: its own ES384 key, registered at the
// EHR (authorization code with PKCE, private_key_jwt) and at the payer
// (client_credentials with the EHR client id it claims).
type app struct {
	w        *world
	name     string
	key      *jwks.SigningKey
	jwksURI  string // set when registered by reference, else the JWKS is inline
	redirect string // a loopback redirect URI nobody listens on
	ehrID    string // client_id at the EHR
	payerID  string // client_id at the payer
}

// newApp registers an app at both servers. byURI registers its keys by
// jwks_uri (served over HTTPS with a sandbox-CA certificate), else inline.
func newApp(t *testing.T, w *world, name string, byURI bool) *app {
	t.Helper()
	ports, err := launcher.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	a := &app{w: w, name: name, key: mustKey(t, jwks.ES384), redirect: fmt.Sprintf("http://127.0.0.1:%d/%s/callback", ports[0], name)}
	if byURI {
		a.jwksURI = w.keys.publish(name, a.key)
	}
	a.registerAtEHR(t)
	r := a.registerAtPayer(t, map[string]string{w.ehrFHIR: a.ehrID})
	if r.status != http.StatusCreated {
		t.Fatalf("%s: payer registration: %s", name, r)
	}
	var reg struct {
		ClientID     string            `json:"client_id"`
		EHRClientIDs map[string]string `json:"ehr_client_ids"`
	}
	r.decode(t, &reg)
	if reg.ClientID == "" || reg.EHRClientIDs[w.ehrFHIR] != a.ehrID {
		t.Fatalf("%s: payer registration answer %s", name, r.body)
	}
	a.payerID = reg.ClientID
	return a
}

// keyMetadata is jwks or jwks_uri for a registration.
func (a *app) keyMetadata(t *testing.T, m map[string]any) {
	t.Helper()
	if a.jwksURI != "" {
		m["jwks_uri"] = a.jwksURI
		return
	}
	pub, err := jwks.Set{a.key}.MarshalPublic()
	if err != nil {
		t.Fatal(err)
	}
	m["jwks"] = json.RawMessage(pub)
}

// registerAtEHR is RFC 7591 registration at the EHR.
func (a *app) registerAtEHR(t *testing.T) {
	t.Helper()
	u, _ := url.Parse(a.redirect)
	m := map[string]any{
		"client_name":                     "Integration test app " + a.name,
		"redirect_uris":                   []string{a.redirect},
		"launch_url":                      "http://" + u.Host + "/" + a.name + "/launch",
		"token_endpoint_auth_method":      "private_key_jwt",
		"token_endpoint_auth_signing_alg": jwks.ES384,
		"grant_types":                     []string{"authorization_code", "refresh_token"},
		"scope":                           ehrScope,
	}
	a.keyMetadata(t, m)
	r := a.w.postJSON(t, a.w.ehrSMART.RegistrationEndpoint, m)
	if r.status != http.StatusCreated {
		t.Fatalf("%s: EHR registration: %s", a.name, r)
	}
	var reg struct {
		ClientID string `json:"client_id"`
	}
	r.decode(t, &reg)
	if reg.ClientID == "" {
		t.Fatalf("%s: EHR registration without client_id: %s", a.name, r.body)
	}
	a.ehrID = reg.ClientID
}

// registerAtPayer is RFC 7591 registration at the payer with the
// ehr_client_ids extension; the raw answer, for refusals too.
func (a *app) registerAtPayer(t *testing.T, ehrClientIDs map[string]string) *reply {
	t.Helper()
	m := map[string]any{
		"client_name":                     "Integration test app " + a.name,
		"token_endpoint_auth_method":      "private_key_jwt",
		"token_endpoint_auth_signing_alg": jwks.ES384,
		"grant_types":                     []string{"client_credentials"},
		"scope":                           payerScope,
		"ehr_client_ids":                  ehrClientIDs,
	}
	a.keyMetadata(t, m)
	return a.w.postJSON(t, a.w.paySMART.RegistrationEndpoint, m)
}

// assertion is a fresh client assertion for the token endpoint aud, with
// the client id the app has there.
func (a *app) assertion(t *testing.T, clientID, aud string) string {
	t.Helper()
	s := &clientauth.Signer{Key: a.key, ClientID: clientID}
	v, err := s.Assertion(aud)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// payerTokenForm is a client_credentials request with assertion.
func (a *app) payerTokenForm(scope, assertion string) url.Values {
	return url.Values{
		"grant_type":            {"client_credentials"},
		"scope":                 {scope},
		"client_assertion_type": {clientauth.AssertionType},
		"client_assertion":      {assertion},
	}
}

// payerToken gets a payer access token for scope (SMART Backend Services).
func (a *app) payerToken(t *testing.T, scope string) (string, time.Time) {
	t.Helper()
	r := a.w.postForm(t, a.w.paySMART.TokenEndpoint, a.payerTokenForm(scope, a.assertion(t, a.payerID, a.w.paySMART.TokenEndpoint)))
	if r.status != http.StatusOK {
		t.Fatalf("%s: payer token: %s", a.name, r)
	}
	var tr struct {
		AccessToken  string `json:"access_token"`
		TokenType    string `json:"token_type"`
		ExpiresIn    int    `json:"expires_in"`
		Scope        string `json:"scope"`
		RefreshToken string `json:"refresh_token"`
	}
	r.decode(t, &tr)
	if tr.AccessToken == "" || tr.TokenType != "Bearer" || tr.ExpiresIn <= 0 || tr.ExpiresIn > 300 || tr.RefreshToken != "" {
		t.Fatalf("%s: payer token response %s", a.name, r.body)
	}
	if got, _ := smart.ParseScopes(tr.Scope); got.String() != mustScopes(t, scope).String() {
		t.Fatalf("%s: payer granted %q, asked %q", a.name, tr.Scope, scope)
	}
	return tr.AccessToken, time.Now().Add(time.Duration(tr.ExpiresIn) * time.Second)
}

// launchSpec is the EHR's Launch button: who, for whom, with which context.
type launchSpec struct {
	Patient, Practitioner string
	Context               []string // fhirContext references
}

// ehrSession is the EHR token response of one launch.
type ehrSession struct {
	Access, Refresh, IDToken, Scope, Patient string
	FHIRContext                              []smart.ContextItem
	Expires                                  time.Time
}

// launch runs an EHR launch end to end: POST /api/launch, the
// authorization request (PKCE S256, state, aud, launch) in a cookie-jar
// browser, consent when the EHR asks, the code read from the redirect to
// the app's loopback callback (never followed), and the code exchange
// with a private_key_jwt client assertion.
func (a *app) launch(t *testing.T, l launchSpec) *ehrSession {
	t.Helper()
	w := a.w
	var fc []smart.ContextItem
	for _, ref := range l.Context {
		fc = append(fc, smart.ContextItem{Reference: ref})
	}
	r := w.postJSON(t, w.ehrURL+"/api/launch", map[string]any{
		"client_id": a.ehrID, "patient": l.Patient, "practitioner": l.Practitioner, "fhirContext": fc,
	})
	if r.status != http.StatusCreated {
		t.Fatalf("%s: EHR launch: %s", a.name, r)
	}
	var created struct {
		Launch    string `json:"launch"`
		LaunchURL string `json:"launch_url"`
	}
	r.decode(t, &created)
	lu, err := url.Parse(created.LaunchURL)
	if err != nil || lu.Query().Get("iss") != w.ehrFHIR || lu.Query().Get("launch") != created.Launch {
		t.Fatalf("%s: launch_url %q", a.name, created.LaunchURL)
	}

	verifier := base64.RawURLEncoding.EncodeToString(randomBytes(t, 32))
	sum := sha256.Sum256([]byte(verifier))
	state := randomHex(t, 12)
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {a.ehrID},
		"redirect_uri":          {a.redirect},
		"scope":                 {ehrScope},
		"state":                 {state},
		"aud":                   {lu.Query().Get("iss")},
		"launch":                {created.Launch},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	code := newBrowser(t, w).authorize(t, w.ehrSMART.AuthorizationEndpoint+"?"+q.Encode(), a.redirect, state)

	form := url.Values{
		"grant_type":            {"authorization_code"},
		"code":                  {code},
		"code_verifier":         {verifier},
		"redirect_uri":          {a.redirect},
		"client_id":             {a.ehrID},
		"client_assertion_type": {clientauth.AssertionType},
		"client_assertion":      {a.assertion(t, a.ehrID, w.ehrSMART.TokenEndpoint)},
	}
	r = w.postForm(t, w.ehrSMART.TokenEndpoint, form)
	if r.status != http.StatusOK {
		t.Fatalf("%s: EHR code exchange: %s", a.name, r)
	}
	var tr struct {
		AccessToken  string              `json:"access_token"`
		TokenType    string              `json:"token_type"`
		ExpiresIn    int                 `json:"expires_in"`
		Scope        string              `json:"scope"`
		Patient      string              `json:"patient"`
		FHIRContext  []smart.ContextItem `json:"fhirContext"`
		IDToken      string              `json:"id_token"`
		RefreshToken string              `json:"refresh_token"`
	}
	r.decode(t, &tr)
	if tr.AccessToken == "" || tr.TokenType != "Bearer" || tr.Patient != l.Patient || tr.IDToken == "" || tr.RefreshToken == "" {
		t.Fatalf("%s: EHR token response %s", a.name, r.body)
	}
	var got []string
	for _, c := range tr.FHIRContext {
		got = append(got, c.Reference)
	}
	if !slices.Equal(got, l.Context) {
		t.Fatalf("%s: fhirContext %v, launched with %v", a.name, got, l.Context)
	}
	return &ehrSession{
		Access: tr.AccessToken, Refresh: tr.RefreshToken, IDToken: tr.IDToken, Scope: tr.Scope, Patient: tr.Patient,
		FHIRContext: tr.FHIRContext, Expires: time.Now().Add(time.Duration(tr.ExpiresIn) * time.Second),
	}
}

// revoke revokes token at the EHR (RFC 7009), authenticated as the app.
func (a *app) revoke(t *testing.T, token string) {
	t.Helper()
	form := url.Values{
		"token":                 {token},
		"token_type_hint":       {"access_token"},
		"client_id":             {a.ehrID},
		"client_assertion_type": {clientauth.AssertionType},
		"client_assertion":      {a.assertion(t, a.ehrID, a.w.ehrSMART.TokenEndpoint)},
	}
	if r := a.w.postForm(t, a.w.ehrSMART.RevocationEndpoint, form); r.status != http.StatusOK {
		t.Fatalf("%s: revocation: %s", a.name, r)
	}
}

// browser is a user agent with a cookie jar that stops at every redirect.
type browser struct {
	w *world
	c *http.Client
}

func newBrowser(t *testing.T, w *world) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := *w.client
	c.Jar = jar
	return &browser{w: w, c: &c}
}

var (
	hiddenField = regexp.MustCompile(`<input type="hidden" name="(tx|csrf)" value="([^"]*)">`)
	formAction  = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
)

// authorize follows the authorization request through the EHR's pages
// (consenting when asked) until the redirect to redirectURI, checks state,
// and returns the code.
func (b *browser) authorize(t *testing.T, authURL, redirectURI, state string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, authURL, nil)
	for step := 0; step < 4; step++ {
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatalf("authorize: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode/100 == 3 {
			u, err := url.Parse(loc)
			if err != nil {
				t.Fatal(err)
			}
			u = req.URL.ResolveReference(u)
			if strings.HasPrefix(u.String(), redirectURI) {
				q := u.Query()
				if q.Get("error") != "" || q.Get("state") != state || q.Get("code") == "" {
					t.Fatalf("authorize redirect %s (want state %s and a code)", u, state)
				}
				return q.Get("code")
			}
			req, _ = http.NewRequest(http.MethodGet, u.String(), nil)
			continue
		}
		page := string(body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, `value="approve"`) {
			t.Fatalf("authorize: unexpected page %d: %.400s", resp.StatusCode, page)
		}
		form := url.Values{"action": {"approve"}}
		for _, m := range hiddenField.FindAllStringSubmatch(page, -1) {
			form.Set(m[1], html.UnescapeString(m[2]))
		}
		action := formAction.FindStringSubmatch(page)
		if form.Get("tx") == "" || form.Get("csrf") == "" || action == nil {
			t.Fatalf("consent page without its form: %.400s", page)
		}
		target, err := req.URL.Parse(html.UnescapeString(action[1]))
		if err != nil {
			t.Fatal(err)
		}
		req, _ = http.NewRequest(http.MethodPost, target.String(), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	t.Fatal("authorize: too many steps")
	return ""
}

// ---------------------------------------------------------------------------
// An app inside one launch.

// seat is an app working for one EHR launch: its EHR token and a payer
// token. fresh renews either when it is about to expire (the SQLite
// sandbox runs the EHR with one-minute tokens).
type seat struct {
	app      *app
	spec     launchSpec
	ehr      *ehrSession
	payerTok string
	payerExp time.Time
}

// open launches the app for spec and gets it a payer token.
func (a *app) open(t *testing.T, spec launchSpec) *seat {
	t.Helper()
	s := &seat{app: a, spec: spec}
	s.ehr = a.launch(t, spec)
	s.payerTok, s.payerExp = a.payerToken(t, payerScope)
	return s
}

// fresh renews tokens that expire within 20 seconds.
func (s *seat) fresh(t *testing.T) *seat {
	t.Helper()
	if time.Until(s.ehr.Expires) < 20*time.Second {
		s.ehr = s.app.launch(t, s.spec)
	}
	if time.Until(s.payerExp) < 20*time.Second {
		s.payerTok, s.payerExp = s.app.payerToken(t, payerScope)
	}
	return s
}

// patientRef is the launch patient as the payer binds it.
func (s *seat) patientRef() string { return s.app.w.ehrFHIR + "/Patient/" + s.ehr.Patient }

// fhir sends a payer FHIR request with both of the seat's tokens.
func (s *seat) fhir(t *testing.T, method, path string, body []byte, hdr ...string) *reply {
	t.Helper()
	return s.app.w.payer(t, method, path, s.payerTok, s.ehr.Access, body, hdr...)
}

func (s *seat) create(t *testing.T, doc []byte) *reply {
	t.Helper()
	return s.fhir(t, http.MethodPost, "/DocumentReference", doc)
}

func (s *seat) read(t *testing.T, id string) *reply {
	t.Helper()
	return s.fhir(t, http.MethodGet, "/DocumentReference/"+id, nil)
}

func (s *seat) search(t *testing.T, q url.Values) *reply {
	t.Helper()
	return s.fhir(t, http.MethodGet, "/DocumentReference?"+q.Encode(), nil)
}

// count is the number of DocumentReferences the seat can find.
func (s *seat) count(t *testing.T) int {
	t.Helper()
	r := s.fhir(t, http.MethodGet, "/DocumentReference?_summary=count", nil)
	if r.status != http.StatusOK {
		t.Fatalf("count: %s", r)
	}
	var b fhir.Bundle
	r.decode(t, &b)
	if b.Total == nil {
		t.Fatalf("count without total: %s", r.body)
	}
	return *b.Total
}

// ehrRead reads a resource from the EHR's FHIR API with the EHR token.
func (s *seat) ehrRead(t *testing.T, ref string) json.RawMessage {
	t.Helper()
	r := s.app.w.send(t, http.MethodGet, s.app.w.ehrFHIR+"/"+ref, nil,
		[]string{"Authorization", "Bearer " + s.ehr.Access, "Accept", "application/fhir+json"})
	if r.status != http.StatusOK {
		t.Fatalf("EHR read %s: %s", ref, r)
	}
	return r.body
}

// ---------------------------------------------------------------------------
// DTR resources.

// questionnairePackage asks the payer for the questionnaires of the
// launch's coverage and order, sending both resources as the EHR has them.
func (s *seat) questionnairePackage(t *testing.T) *reply {
	t.Helper()
	var coverage, order json.RawMessage
	for _, c := range s.ehr.FHIRContext {
		switch {
		case strings.HasPrefix(c.Reference, "Coverage/"):
			coverage = s.ehrRead(t, c.Reference)
		case strings.HasPrefix(c.Reference, "DeviceRequest/"), strings.HasPrefix(c.Reference, "ServiceRequest/"):
			order = s.ehrRead(t, c.Reference)
		}
	}
	if coverage == nil || order == nil {
		t.Fatalf("the launch context %v lacks a coverage or an order", s.ehr.FHIRContext)
	}
	in, err := json.Marshal(fhir.Parameters{ResourceType: "Parameters", Parameter: []fhir.ParametersParameter{
		{Name: "coverage", Resource: coverage}, {Name: "order", Resource: order},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return s.fhir(t, http.MethodPost, "/Questionnaire/$questionnaire-package", in)
}

// answer is one answered item of the home-oxygen questionnaire.
type answer struct {
	group, linkID string
	value         map[string]any // e.g. {"valueString": "..."}
}

// questionnaireResponse is a home-oxygen QuestionnaireResponse with
// answers grouped as in the questionnaire. subject is set when not nil.
func (w *world) questionnaireResponse(status string, subject any, answers ...answer) map[string]any {
	groups := map[string][]any{}
	var order []string
	for _, a := range answers {
		if _, ok := groups[a.group]; !ok {
			order = append(order, a.group)
		}
		groups[a.group] = append(groups[a.group], map[string]any{"linkId": a.linkID, "answer": []any{a.value}})
	}
	var items []any
	for _, g := range order {
		items = append(items, map[string]any{"linkId": g, "item": groups[g]})
	}
	qr := map[string]any{
		"resourceType":  "QuestionnaireResponse",
		"questionnaire": homeOxygenURL + "|2026.1",
		"status":        status,
		"authored":      time.Now().UTC().Format(time.RFC3339),
		"basedOn":       []any{map[string]any{"reference": w.ehrFHIR + "/DeviceRequest/dr-oxygen-1"}},
		"item":          items,
	}
	if subject != nil {
		qr["subject"] = subject
	}
	return qr
}

// documentReference wraps a QuestionnaireResponse as a DTR draft: the
// response as a base64 application/fhir+json attachment, context.related
// the absolute order URL. subject is set when not nil; extra members are
// added (or replace) at the top level.
func (w *world) documentReference(t *testing.T, qr map[string]any, subject any, extra map[string]any) []byte {
	t.Helper()
	raw, err := json.Marshal(qr)
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]any{
		"resourceType": "DocumentReference",
		"status":       "current",
		"docStatus":    "preliminary",
		"type": map[string]any{"coding": []any{map[string]any{
			"system": "http://loinc.org", "code": loincQRDocument, "display": "Questionnaire response Document",
		}}},
		"date":        time.Now().UTC().Format(time.RFC3339),
		"description": "DTR draft: home oxygen",
		"content": []any{map[string]any{"attachment": map[string]any{
			"contentType": "application/fhir+json", "data": base64.StdEncoding.EncodeToString(raw),
		}}},
		"context": map[string]any{"related": []any{map[string]any{"reference": w.ehrFHIR + "/DeviceRequest/dr-oxygen-1"}}},
	}
	if subject != nil {
		doc["subject"] = subject
	}
	for k, v := range extra {
		doc[k] = v
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// draft is a document for the home-oxygen questionnaire whose diagnosis
// answer is marker (a string the tests search for in every answer).
func (w *world) draft(t *testing.T, marker string) []byte {
	t.Helper()
	return w.documentReference(t, w.questionnaireResponse("in-progress", nil,
		answer{"f2f", "f2f.diagnosis", map[string]any{"valueString": marker}}), nil, nil)
}

// attachedResponse decodes the QuestionnaireResponse in a stored document.
func attachedResponse(t *testing.T, doc *fhir.DocumentReference) map[string]any {
	t.Helper()
	if len(doc.Content) != 1 || doc.Content[0].Attachment == nil || doc.Content[0].Attachment.ContentType != "application/fhir+json" {
		t.Fatalf("document content %+v", doc.Content)
	}
	raw, err := base64.StdEncoding.DecodeString(doc.Content[0].Attachment.Data)
	if err != nil {
		t.Fatal(err)
	}
	var qr map[string]any
	if err := json.Unmarshal(raw, &qr); err != nil {
		t.Fatal(err)
	}
	return qr
}

// createdID checks a 201 create and returns the new id and its ETag.
func createdID(t *testing.T, w *world, r *reply) (id, etag string) {
	t.Helper()
	if r.status != http.StatusCreated {
		t.Fatalf("create: %s", r)
	}
	loc := r.header.Get("Location")
	prefix := w.payerFHIR + "/DocumentReference/"
	if !strings.HasPrefix(loc, prefix) || !strings.HasSuffix(loc, "/_history/1") {
		t.Fatalf("create Location %q", loc)
	}
	id = strings.TrimSuffix(strings.TrimPrefix(loc, prefix), "/_history/1")
	if etag = r.header.Get("ETag"); etag != `W/"1"` {
		t.Fatalf("create ETag %q", etag)
	}
	return id, etag
}

// bundleDocs decodes a searchset and its DocumentReferences.
func bundleDocs(t *testing.T, r *reply) (*fhir.Bundle, []fhir.DocumentReference) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("search: %s", r)
	}
	var b fhir.Bundle
	r.decode(t, &b)
	if b.ResourceType != "Bundle" || b.Type != "searchset" {
		t.Fatalf("not a searchset: %s", clip(r.body))
	}
	var docs []fhir.DocumentReference
	for _, e := range b.Entry {
		var d fhir.DocumentReference
		if err := json.Unmarshal(e.Resource, &d); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d)
	}
	return &b, docs
}

// ---------------------------------------------------------------------------
// The audit trail.

// auditHit is one AuditEvent with what the tests match on.
type auditHit struct {
	ev       fhir.AuditEvent
	raw      json.RawMessage
	recorded time.Time
}

// status is the HTTP status the payer recorded for the request.
func (h auditHit) status() int {
	for _, e := range h.ev.Entity {
		for _, d := range e.Detail {
			if d.Type == "http-status" {
				n, _ := strconv.Atoi(d.ValueString)
				return n
			}
		}
	}
	return 0
}

// what lists the entity references ("DocumentReference/<id>", the patient).
func (h auditHit) what() []string {
	var out []string
	for _, e := range h.ev.Entity {
		if e.What != nil && e.What.Reference != "" {
			out = append(out, e.What.Reference)
		}
	}
	return out
}

// agents lists the app's client id and the user, as recorded.
func (h auditHit) agents() (clientID, user string) {
	for _, a := range h.ev.Agent {
		if a.AltID != "" {
			clientID = a.AltID
		}
		if a.Who != nil && a.Who.Identifier != nil && a.Requestor != nil && *a.Requestor && a.AltID == "" {
			user = a.Who.Identifier.Value
		}
	}
	return clientID, user
}

// audit reads AuditEvents recorded at or after since, as the admin,
// following next links; extra narrows the search (agent, patient, outcome).
func (w *world) audit(t *testing.T, since time.Time, extra url.Values) []auditHit {
	t.Helper()
	q := url.Values{"date": {"ge" + since.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05Z")}, "_count": {"200"}}
	for k, v := range extra {
		q[k] = v
	}
	next := w.payerFHIR + "/AuditEvent?" + q.Encode()
	var out []auditHit
	floor := since.Truncate(time.Millisecond)
	for pages := 0; next != "" && pages < 50; pages++ {
		r := w.send(t, http.MethodGet, next, nil, []string{"Authorization", "Bearer " + w.admin, "Accept", "application/fhir+json"})
		if r.status != http.StatusOK {
			t.Fatalf("audit search: %s", r)
		}
		var b fhir.Bundle
		r.decode(t, &b)
		next = ""
		for _, l := range b.Link {
			if l.Relation == "next" {
				next = l.URL
			}
		}
		for _, e := range b.Entry {
			var h auditHit
			h.raw = e.Resource
			if err := json.Unmarshal(e.Resource, &h.ev); err != nil {
				t.Fatal(err)
			}
			rec, err := time.Parse(time.RFC3339Nano, h.ev.Recorded)
			if err != nil {
				t.Fatalf("AuditEvent.recorded %q: %v", h.ev.Recorded, err)
			}
			h.recorded = rec
			if !rec.Before(floor) {
				out = append(out, h)
			}
		}
	}
	return out
}

// auditWant describes the AuditEvent a request must have left.
type auditWant struct {
	agent   string // the payer client id recorded ("" = any)
	outcome string // "0" success, "4" minor failure, "8" serious failure
	reason  string // a substring of outcomeDesc ("" = any)
	status  int    // the recorded HTTP status (0 = any)
	what    string // an entity reference ("" = any)
	// anonymous: the event names no payer client (a request refused before
	// any client was authenticated or created).
	anonymous bool
}

func (a auditWant) matches(h auditHit) bool {
	cid, _ := h.agents()
	return (a.agent == "" || cid == a.agent) && (!a.anonymous || cid == "") &&
		(a.outcome == "" || h.ev.Outcome == a.outcome) &&
		(a.reason == "" || strings.Contains(h.ev.OutcomeDesc, a.reason)) &&
		(a.status == 0 || h.status() == a.status) &&
		(a.what == "" || slices.Contains(h.what(), a.what))
}

// requireAudit finds the newest AuditEvent since since that matches want.
func (w *world) requireAudit(t *testing.T, since time.Time, want auditWant) auditHit {
	t.Helper()
	var extra url.Values
	if want.agent != "" {
		extra = url.Values{"agent": {want.agent}}
	}
	hits := w.audit(t, since, extra)
	for _, h := range hits {
		if want.matches(h) {
			return h
		}
	}
	var seen []string
	for _, h := range hits {
		cid, _ := h.agents()
		seen = append(seen, fmt.Sprintf("[%s %s status=%d agent=%s] %s", h.ev.Recorded, h.ev.Outcome, h.status(), cid, h.ev.OutcomeDesc))
	}
	t.Fatalf("no AuditEvent since %s matching %+v; found %d:\n%s", since.Format(time.RFC3339Nano), want, len(hits), strings.Join(seen, "\n"))
	return auditHit{}
}

// ---------------------------------------------------------------------------
// The payer's database, read-only.

// readOnlyDB opens the payer's database with database.Open, one
// connection, switched to read-only (SQLite query_only; PostgreSQL
// read-only transactions). It stays open until the test ends.
func (w *world) readOnlyDB(t *testing.T) *gorm.DB {
	t.Helper()
	w.dbMu.Lock()
	defer w.dbMu.Unlock()
	if w.db != nil {
		return w.db
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	db, err := database.Open(ctx, database.Config{URL: w.payerDB, SQLitePath: filepath.Join(w.data, "payer", "payer.db")})
	if err != nil {
		t.Fatalf("opening the payer's database: %v", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(1)
	sqlDB.SetMaxIdleConns(1)
	sqlDB.SetConnMaxIdleTime(0)
	sqlDB.SetConnMaxLifetime(0)
	stmt := "PRAGMA query_only = ON"
	if db.Dialector.Name() != "sqlite" {
		stmt = "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"
	}
	if err := db.Exec(stmt).Error; err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
	w.db = db
	return db
}

func (w *world) closeDB() {
	w.dbMu.Lock()
	defer w.dbMu.Unlock()
	if w.db != nil {
		_ = database.Close(w.db)
		w.db = nil
	}
}

// rows counts a table of the payer's database.
func (w *world) rows(t *testing.T, table string) int64 {
	t.Helper()
	var n int64
	if err := w.readOnlyDB(t).Table(table).Count(&n).Error; err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// ---------------------------------------------------------------------------
// Small things.

// keyHost publishes apps' JWK Sets over HTTPS with a certificate from the
// sandbox CA, for registrations by jwks_uri.
type keyHost struct {
	srv  *httptest.Server
	base string
	mu   sync.Mutex
	sets map[string]jwks.Set
}

func newKeyHost(t *testing.T, dataDir string) *keyHost {
	t.Helper()
	paths, err := localtls.Ensure(dataDir, "it-apps", localtls.DefaultHosts())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(paths.Cert, paths.Key)
	if err != nil {
		t.Fatal(err)
	}
	h := &keyHost{sets: map[string]jwks.Set{}}
	h.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/jwks.json")
		h.mu.Lock()
		set, found := h.sets[name]
		h.mu.Unlock()
		if !ok || !found {
			http.NotFound(rw, r)
			return
		}
		jwks.Handler(set).ServeHTTP(rw, r)
	}))
	h.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	h.srv.StartTLS()
	t.Cleanup(h.srv.Close)
	_, port, _ := net.SplitHostPort(h.srv.Listener.Addr().String())
	h.base = "https://localhost:" + port
	return h
}

// publish serves key at {base}/{name}/jwks.json and returns that URL.
func (h *keyHost) publish(name string, keys ...*jwks.SigningKey) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sets[name] = jwks.Set(keys)
	return h.base + "/" + name + "/jwks.json"
}

func mustKey(t *testing.T, alg string) *jwks.SigningKey {
	t.Helper()
	k, err := jwks.Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustScopes(t *testing.T, s string) smart.Scopes {
	t.Helper()
	sc, err := smart.ParseScopes(s)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func randomHex(t testing.TB, n int) string { return hex.EncodeToString(randomBytes(t, n)) }

func jwtTime(t time.Time) *jwt.NumericDate { return jwt.NewNumericDate(t) }

// isTransportError reports an error from a server that went away.
func isTransportError(err error) bool {
	var ne net.Error
	return err != nil && (errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "connection refused"))
}
