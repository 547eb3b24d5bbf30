package trust

import (
	"context"
	"encoding/json"
	"fmt"
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

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"dtrsandbox/shared/accesstoken"
	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/smart"
	"dtrsandbox/shared/testutil/testclock"
)

func newClock() *testclock.Clock { return testclock.New(time.Now().Truncate(time.Second)) }

// fakeEHR is an EHR authorization server: SMART discovery, a JWK Set, an
// RFC 7662 introspection endpoint that authenticates the payer, and the
// tokens it has issued.
type fakeEHR struct {
	t      testing.TB
	srv    *httptest.Server
	key    *jwks.SigningKey
	clk    *testclock.Clock
	issuer string

	mu        sync.Mutex
	extraKeys []*jwks.SigningKey
	issued    map[string]jwt.MapClaims // raw token → introspection answer
	answer    func(raw string) (int, any)
	auth      string // client_secret_basic or private_key_jwt
	secret    string
	payerKeys *jose.JSONWebKeySet
	jwksDown  bool
	// jwksCacheControl is the Cache-Control of the JWK Set ("max-age=300").
	jwksCacheControl string

	jwksHits      atomic.Int64
	introspectHit atomic.Int64
	discoveryHits atomic.Int64
	authFailures  atomic.Int64
	verifier      *clientauth.Verifier
}

type payerClients struct{ e *fakeEHR }

func (p payerClients) AssertionClient(_ context.Context, id string) (*clientauth.Client, error) {
	if id != "payer" {
		return nil, clientauth.ErrUnknownClient
	}
	p.e.mu.Lock()
	defer p.e.mu.Unlock()
	return &clientauth.Client{ID: "payer", AuthMethod: clientauth.AuthMethodPrivateKeyJWT, JWKS: p.e.payerKeys}, nil
}

func newFakeEHR(t testing.TB, clk *testclock.Clock) *fakeEHR {
	t.Helper()
	key, err := jwks.Generate("ES256")
	if err != nil {
		t.Fatal(err)
	}
	e := &fakeEHR{t: t, key: key, clk: clk, issued: map[string]jwt.MapClaims{}, auth: AuthClientSecretBasic, secret: "s3cret/+="}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fhir/.well-known/smart-configuration", func(w http.ResponseWriter, r *http.Request) {
		e.discoveryHits.Add(1)
		json.NewEncoder(w).Encode(smart.Configuration{
			Issuer: e.issuer, JWKSURI: e.srv.URL + "/jwks", TokenEndpoint: e.srv.URL + "/token",
			IntrospectionEndpoint: e.srv.URL + "/introspect",
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		e.jwksHits.Add(1)
		e.mu.Lock()
		down, cc := e.jwksDown, e.jwksCacheControl
		set := append(jwks.Set{e.key}, e.extraKeys...)
		e.mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		b, _ := set.MarshalPublic()
		if cc == "" {
			cc = "max-age=300"
		}
		w.Header().Set("Cache-Control", cc)
		w.Write(b)
	})
	mux.HandleFunc("POST /introspect", e.introspect)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	e.issuer = e.srv.URL + "/fhir"
	e.verifier = clientauth.NewVerifier(clientauth.Config{
		TokenURL: e.srv.URL + "/token", Clients: payerClients{e}, JTIs: clientauth.NewMemoryJTIStore(nil), Now: clk.Now,
	})
	return e
}

func (e *fakeEHR) introspect(w http.ResponseWriter, r *http.Request) {
	e.introspectHit.Add(1)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", 400)
		return
	}
	e.mu.Lock()
	auth, secret := e.auth, e.secret
	e.mu.Unlock()
	switch auth {
	case AuthClientSecretBasic:
		id, pw, ok := r.BasicAuth()
		uid, _ := url.QueryUnescape(id)
		upw, _ := url.QueryUnescape(pw)
		if !ok || uid != "payer" || upw != secret {
			e.authFailures.Add(1)
			http.Error(w, `{"error":"invalid_client"}`, 401)
			return
		}
	case AuthPrivateKeyJWT:
		if _, err := e.verifier.Verify(r.Context(), r.PostForm); err != nil {
			e.authFailures.Add(1)
			http.Error(w, `{"error":"invalid_client"}`, 401)
			return
		}
	}
	raw := r.PostForm.Get("token")
	e.mu.Lock()
	answer := e.answer
	claims, ok := e.issued[raw]
	e.mu.Unlock()
	if answer != nil {
		status, body := answer(raw)
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(body)
		return
	}
	if !ok {
		json.NewEncoder(w).Encode(map[string]any{"active": false})
		return
	}
	out := map[string]any{"active": true, "token_type": "Bearer"}
	for k, v := range claims {
		out[k] = v
	}
	json.NewEncoder(w).Encode(out)
}

// entry is this EHR's registry entry in mode.
func (e *fakeEHR) entry(mode string) map[string]any {
	m := map[string]any{"issuer": e.issuer, "fhir_base": e.issuer, "mode": mode}
	if mode == ModeIntrospection {
		m["client_id"] = "payer"
		m["client_auth"] = e.auth
		if e.auth == AuthClientSecretBasic {
			m["client_secret"] = e.secret
		}
	}
	return m
}

// claims are a valid launch token's claims, edited by mut.
func (e *fakeEHR) claims(mut func(c *accesstoken.Claims)) *accesstoken.Claims {
	now := e.clk.Now()
	c := &accesstoken.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: e.issuer, Subject: "prac-1", Audience: jwt.ClaimStrings{e.issuer},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)),
			ID: fmt.Sprintf("jti-%d", time.Now().UnixNano()),
		},
		ClientID: "dtr-app", Scope: "launch openid fhirUser patient/*.rs user/QuestionnaireResponse.cru",
		Patient: "pat-1", FHIRUser: "Practitioner/prac-1",
		FHIRContext: []smart.ContextItem{{Reference: "DeviceRequest/dr-oxygen-1"}},
	}
	if mut != nil {
		mut(c)
	}
	return c
}

// token signs claims with the EHR key and records it as issued.
func (e *fakeEHR) token(mut func(c *accesstoken.Claims)) string {
	return e.tokenWith(e.key, mut)
}

func (e *fakeEHR) tokenWith(key *jwks.SigningKey, mut func(c *accesstoken.Claims)) string {
	e.t.Helper()
	c := e.claims(mut)
	raw, err := accesstoken.Sign(key, c)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := json.Marshal(c)
	var m jwt.MapClaims
	json.Unmarshal(b, &m)
	e.mu.Lock()
	e.issued[raw] = m
	e.mu.Unlock()
	return raw
}

// writeRegistryFile writes a registry with the given entries and returns its path.
func writeRegistryFile(t testing.TB, dir string, entries ...map[string]any) string {
	t.Helper()
	path := filepath.Join(dir, "trusted-ehrs.json")
	writeRegistry(t, path, entries...)
	return path
}

func writeRegistry(t testing.TB, path string, entries ...map[string]any) {
	t.Helper()
	if entries == nil {
		entries = []map[string]any{}
	}
	b, err := json.Marshal(map[string]any{"ehrs": entries})
	if err != nil {
		t.Fatal(err)
	}
	writeFileAtomic(t, path, b)
}

// writeFileAtomic replaces path with data in one rename, so a poll sees
// the old content or the new, never half of it.
func writeFileAtomic(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func mustRegistry(t testing.TB, entries ...map[string]any) *Registry {
	t.Helper()
	if entries == nil {
		entries = []map[string]any{}
	}
	b, _ := json.Marshal(map[string]any{"ehrs": entries})
	s, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return NewRegistry(s)
}

type validatorOpt func(*Config)

func newValidator(t testing.TB, reg *Registry, clk *testclock.Clock, opts ...validatorOpt) *Validator {
	t.Helper()
	cfg := Config{
		Registry: reg, HTTPClient: &http.Client{Timeout: 5 * time.Second}, Now: clk.Now,
		Keys:             jwks.NewRemote(nil, jwks.RemoteOptions{Now: clk.Now}),
		IntrospectionTTL: 30 * time.Second,
	}
	for _, o := range opts {
		o(&cfg)
	}
	v, err := NewValidator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func wantReason(t testing.TB, err error, r Reason) *Failure {
	t.Helper()
	f := AsFailure(err)
	if f == nil || f.Reason != r {
		t.Fatalf("got %v, want reason %s", err, r)
	}
	if strings.Contains(f.Error(), "eyJ") {
		t.Fatalf("failure text quotes a token: %s", f.Error())
	}
	return f
}

func contextWithCancel(t testing.TB) (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

func publicSetOf(keys ...*jwks.SigningKey) *jose.JSONWebKeySet {
	set := &jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.PublicJWK())
	}
	return set
}
