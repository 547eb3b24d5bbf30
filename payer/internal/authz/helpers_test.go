package authz

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"gorm.io/gorm"

	"dtrsandbox/payer/internal/audit"
	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/database"
	"dtrsandbox/shared/httpserver"
	"dtrsandbox/shared/jwks"
)

const (
	testPublicURL = "https://payer.test"
	testEHR       = "https://ehr.test/fhir"
	otherEHR      = "https://other-ehr.test/fhir"
)

// issuers is a fixed IssuerRegistry.
type issuers map[string]bool

func (i issuers) Trusted(iss string) bool { return i[iss] }

// memAudit collects events.
type memAudit struct {
	events chan audit.Event
}

func (m *memAudit) Record(_ context.Context, _ *gorm.DB, ev audit.Event) error {
	select {
	case m.events <- ev:
	default:
	}
	return nil
}

type env struct {
	t       testing.TB
	srv     *Server
	engine  *gin.Engine
	db      *gorm.DB
	clients *ClientStore
	tokens  *TokenLog
	audit   *memAudit
}

type envOption func(*Config)

func openDB(t testing.TB, url string) *gorm.DB {
	t.Helper()
	db, err := database.Open(context.Background(), database.Config{URL: url, SQLitePath: filepath.Join(t.TempDir(), "payer.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { database.Close(db) })
	return db
}

func newEnv(t testing.TB, opts ...envOption) *env {
	return newEnvDB(t, openDB(t, ""), opts...)
}

func newEnvDB(t testing.TB, db *gorm.DB, opts ...envOption) *env {
	t.Helper()
	clients, err := NewClientStore(db)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := NewTokenLog(db)
	if err != nil {
		t.Fatal(err)
	}
	jtis, err := clientauth.NewGormJTIStore(db)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := LoadKeys(filepath.Join(t.TempDir(), "keys"))
	if err != nil {
		t.Fatal(err)
	}
	rec := &memAudit{events: make(chan audit.Event, 1000)}
	cfg := Config{
		PublicURL: testPublicURL, Clients: clients, Tokens: tokens, Keys: keys, JTIs: jtis,
		Trusted: issuers{testEHR: true, otherEHR: true}, RegistrationOpen: true, Audit: rec,
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := httpserver.NewEngine()
	e.GET(DiscoveryPath, srv.Discovery())
	e.POST(RegistrationPath, srv.Register())
	e.POST(TokenPath, srv.Token())
	return &env{t: t, srv: srv, engine: e, db: db, clients: clients, tokens: tokens, audit: rec}
}

// do sends a request to the engine.
func (e *env) do(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.engine.ServeHTTP(rec, req)
	return rec
}

func (e *env) register(body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, RegistrationPath, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return e.do(req)
}

func (e *env) token(form url.Values) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, TokenPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return e.do(req)
}

func (e *env) countClients() int64 {
	var n int64
	if err := e.db.Model(&clientRow{}).Count(&n).Error; err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) countTokens() int64 {
	n, err := e.tokens.Count(context.Background(), "")
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// oauthError decodes an RFC 6749 §5.2 body.
func oauthError(t testing.TB, rec *httptest.ResponseRecorder) (code, desc string) {
	t.Helper()
	var b struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("not an OAuth error body (%d): %s", rec.Code, rec.Body)
	}
	return b.Error, b.Description
}

func mustKey(t testing.TB, alg string) *jwks.SigningKey {
	t.Helper()
	k, err := jwks.Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func publicSet(keys ...*jwks.SigningKey) *jose.JSONWebKeySet {
	set := &jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.PublicJWK())
	}
	return set
}

func publicSetString(t testing.TB, keys ...*jwks.SigningKey) string {
	b, err := json.Marshal(publicSet(keys...))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// addClient stores a client with inline keys directly.
func (e *env) addClient(id string, key *jwks.SigningKey, scope string, ehrIDs map[string]string) *Client {
	e.t.Helper()
	c := &Client{
		ID: id, Name: id, JWKS: publicSet(key), AuthMethod: clientauth.AuthMethodPrivateKeyJWT,
		SigningAlg: key.Alg, Scope: scope, GrantTypes: []string{GrantClientCredentials},
		EHRClientIDs: ehrIDs, IssuedAt: time.Now().UTC().Truncate(time.Second),
	}
	if err := e.clients.Create(context.Background(), c); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// assertion signs claims with key (method from alg, or key.Alg), with
// header fields added; a nil header value removes the field.
func assertion(t testing.TB, key any, alg string, hdr map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	m := jwt.GetSigningMethod(alg)
	if alg == "none" {
		m = jwt.SigningMethodNone
	}
	tok := jwt.NewWithClaims(m, claims)
	tok.Header["typ"] = "JWT"
	for k, v := range hdr {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// goodClaims are valid assertion claims for clientID at the test token URL.
func goodClaims(clientID string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss": clientID, "sub": clientID, "aud": testPublicURL + TokenPath,
		"iat": now.Unix(), "exp": now.Add(4 * time.Minute).Unix(), "jti": randomJTI(),
	}
}

func randomJTI() string {
	id, err := randomID()
	if err != nil {
		panic(err)
	}
	return id
}

// tokenForm is a client_credentials request with assertion a.
func tokenForm(a, scope string) url.Values {
	f := url.Values{
		"grant_type":            {"client_credentials"},
		"client_assertion_type": {clientauth.AssertionType},
		"client_assertion":      {a},
	}
	if scope != "" {
		f.Set("scope", scope)
	}
	return f
}
