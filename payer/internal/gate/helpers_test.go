package gate

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"gorm.io/gorm"

	"dtrsandbox/payer/internal/access"
	"dtrsandbox/payer/internal/audit"
	"dtrsandbox/payer/internal/authz"
	"dtrsandbox/payer/internal/trust"
	"dtrsandbox/shared/accesstoken"
	"dtrsandbox/shared/httpserver"
	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/smart"
)

const payerURL = "https://payer.test"

// recorder keeps audit events.
type recorder struct {
	mu     sync.Mutex
	events []audit.Event
}

func (r *recorder) Record(_ context.Context, _ *gorm.DB, ev audit.Event) error {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	return nil
}

func (r *recorder) all() []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]audit.Event(nil), r.events...)
}

// countingPayer counts payer-token verifications (the gate's first
// cryptography).
type countingPayer struct {
	v *authz.AccessTokenVerifier
	n atomic.Int64
}

func (c *countingPayer) Verify(ctx context.Context, raw string) (*authz.PayerToken, error) {
	c.n.Add(1)
	return c.v.Verify(ctx, raw)
}

// CachedClient is a hash lookup, not a verification: not counted.
func (c *countingPayer) CachedClient(raw string) (string, bool) { return c.v.CachedClient(raw) }

type countingEHR struct {
	v *trust.Validator
	n atomic.Int64
}

func (c *countingEHR) Validate(ctx context.Context, raw string) (*smart.AccessContext, error) {
	c.n.Add(1)
	return c.v.Validate(ctx, raw)
}

// bindings is a fixed ehr_client_ids table: payer client → issuer → id.
type bindings map[string]map[string]string

func (b bindings) EHRClientID(_ context.Context, clientID, issuer string) (string, bool, error) {
	id, ok := b[clientID][issuer]
	return id, ok, nil
}

// ehrServer is an EHR: JWK Set and introspection endpoint.
type ehrServer struct {
	srv    *httptest.Server
	key    *jwks.SigningKey
	issuer string
	down   atomic.Bool

	mu     sync.Mutex
	active map[string]map[string]any // token → introspection answer
}

func newEHRServer(t testing.TB) *ehrServer {
	t.Helper()
	key, err := jwks.Generate("ES256")
	if err != nil {
		t.Fatal(err)
	}
	e := &ehrServer{key: key, active: map[string]map[string]any{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		if e.down.Load() {
			http.Error(w, "down", 502)
			return
		}
		b, _ := jwks.Set{e.key}.MarshalPublic()
		w.Header().Set("Cache-Control", "max-age=300")
		w.Write(b)
	})
	mux.HandleFunc("POST /introspect", func(w http.ResponseWriter, r *http.Request) {
		if e.down.Load() {
			http.Error(w, "down", 502)
			return
		}
		id, secret, _ := r.BasicAuth()
		if id != "payer" || secret != "s" {
			http.Error(w, "unauthorized", 401)
			return
		}
		r.ParseForm()
		e.mu.Lock()
		ans, ok := e.active[r.PostForm.Get("token")]
		e.mu.Unlock()
		if !ok {
			ans = map[string]any{"active": false}
		}
		json.NewEncoder(w).Encode(ans)
	})
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	e.issuer = e.srv.URL + "/fhir"
	return e
}

func (e *ehrServer) entry(mode string) map[string]any {
	m := map[string]any{"issuer": e.issuer, "mode": mode, "jwks_uri": e.srv.URL + "/jwks",
		"introspection_endpoint": e.srv.URL + "/introspect"}
	if mode == trust.ModeIntrospection {
		m["client_id"], m["client_auth"], m["client_secret"] = "payer", trust.AuthClientSecretBasic, "s"
	}
	return m
}

var jtiSeq atomic.Int64

// token issues an EHR launch token; mut edits the claims.
func (e *ehrServer) token(t testing.TB, mut func(c *accesstoken.Claims)) string {
	t.Helper()
	now := time.Now()
	c := &accesstoken.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: e.issuer, Subject: "prac-1", Audience: jwt.ClaimStrings{e.issuer},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)),
			ID: fmt.Sprint("ehr-", jtiSeq.Add(1)),
		},
		ClientID: "dtr-app-at-ehr", Scope: "launch patient/*.rs", Patient: "pat-1", FHIRUser: "Practitioner/prac-1",
	}
	if mut != nil {
		mut(c)
	}
	raw, err := accesstoken.Sign(e.key, c)
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	e.active[raw] = map[string]any{"active": true, "client_id": c.ClientID, "scope": c.Scope, "patient": c.Patient,
		"fhirUser": c.FHIRUser, "sub": c.Subject, "iss": c.Issuer, "exp": c.ExpiresAt.Unix(), "iat": c.IssuedAt.Unix()}
	e.mu.Unlock()
	return raw
}

// fixture is a gate in front of a handler that reports the principal.
type fixture struct {
	t        testing.TB
	engine   *gin.Engine
	payerKey *jwks.SigningKey
	payer    *countingPayer
	ehr      *countingEHR
	ehrSrv   *ehrServer
	audit    *recorder
	gate     *Gate
	seen     atomic.Pointer[access.Principal]
}

type fixtureOpt func(*Config)

func newFixture(t testing.TB, mode string, opts ...fixtureOpt) *fixture {
	t.Helper()
	payerKey, err := jwks.Generate("ES256")
	if err != nil {
		t.Fatal(err)
	}
	ehrSrv := newEHRServer(t)
	b, _ := json.Marshal(map[string]any{"ehrs": []any{ehrSrv.entry(mode)}})
	snap, err := trust.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	reg := trust.NewRegistry(snap)
	v, err := trust.NewValidator(trust.Config{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		t: t, payerKey: payerKey, ehrSrv: ehrSrv, audit: &recorder{},
		payer: &countingPayer{v: authz.NewAccessTokenVerifier(payerKey, payerURL, payerURL+"/fhir", nil)},
		ehr:   &countingEHR{v: v},
	}
	cfg := Config{
		PayerTokens: f.payer, EHRTokens: f.ehr, EHRBases: reg, Audit: f.audit,
		Bindings: bindings{
			"dtr-app":  {ehrSrv.issuer: "dtr-app-at-ehr"},
			"other":    {ehrSrv.issuer: "other-at-ehr"},
			"unbound":  {},
			"readonly": {ehrSrv.issuer: "readonly-at-ehr"},
		},
		RateLimit: -1,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if f.gate, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	e := httpserver.NewEngine()
	e.SetTrustedProxies(nil)
	handler := func(c *gin.Context) {
		f.seen.Store(access.From(c.Request.Context()))
		c.String(200, "ok")
	}
	e.GET("/fhir/DocumentReference/:id", f.gate.Require(Read("DocumentReference", EHRRequired)), handler)
	e.POST("/fhir/DocumentReference", f.gate.Require(Create("DocumentReference")), handler)
	e.GET("/fhir/Questionnaire/:id", f.gate.Require(Read("Questionnaire", EHROptional)), handler)
	e.DELETE("/fhir/DocumentReference/:id", f.gate.Require(Authenticated("DocumentReference", "D", "delete")), handler)
	f.engine = e
	return f
}

// payerToken issues a payer token for client with scope.
func (f *fixture) payerToken(client, scope string) string {
	return payerTokenWith(f.t, f.payerKey, client, scope)
}

func payerTokenWith(t testing.TB, key *jwks.SigningKey, client, scope string) string {
	t.Helper()
	now := time.Now()
	raw, err := accesstoken.Sign(key, &accesstoken.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: payerURL, Subject: client, Audience: jwt.ClaimStrings{payerURL + "/fhir"},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)), ID: fmt.Sprint("p-", jtiSeq.Add(1)),
		},
		ClientID: client, Scope: scope,
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

const fullScope = "system/Questionnaire.rs system/DocumentReference.cruds system/QuestionnaireResponse.cruds"

// request sends method path with the two tokens ("" to omit) and extra
// headers.
func (f *fixture) request(method, path, payer, ehr string, hdr ...string) *httptest.ResponseRecorder {
	return f.requestFrom("", method, path, payer, ehr, hdr...)
}

// requestFrom is request from the remote address addr ("host:port"; ""
// keeps httptest's 192.0.2.1:1234).
func (f *fixture) requestFrom(addr, method, path, payer, ehr string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(""))
	if addr != "" {
		req.RemoteAddr = addr
	}
	if payer != "" {
		req.Header.Set("Authorization", "Bearer "+payer)
	}
	if ehr != "" {
		req.Header.Set(HeaderEHRAuthorization, "Bearer "+ehr)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	f.seen.Store(nil)
	f.engine.ServeHTTP(rec, req)
	return rec
}

// outcome decodes an OperationOutcome's first issue.
func outcome(t testing.TB, rec *httptest.ResponseRecorder) (code, diagnostics string) {
	t.Helper()
	var oo struct {
		ResourceType string `json:"resourceType"`
		Issue        []struct {
			Code        string `json:"code"`
			Diagnostics string `json:"diagnostics"`
		} `json:"issue"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &oo); err != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
		t.Fatalf("not an OperationOutcome (%d): %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
		t.Fatalf("Content-Type %q", ct)
	}
	return oo.Issue[0].Code, oo.Issue[0].Diagnostics
}
