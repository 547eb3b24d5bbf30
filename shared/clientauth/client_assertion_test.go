package clientauth

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/oautherr"
)

const tokenURL = "https://payer.example/auth/token"

var testNow = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

// --- fixtures ---------------------------------------------------------------

type clientMap map[string]*Client

func (m clientMap) AssertionClient(_ context.Context, id string) (*Client, error) {
	if c, ok := m[id]; ok {
		return c, nil
	}
	return nil, ErrUnknownClient
}

// recordingJTIs wraps a MemoryJTIStore and remembers which jti were claimed.
type recordingJTIs struct {
	*MemoryJTIStore
	calls atomic.Int32
}

func (r *recordingJTIs) Claim(ctx context.Context, iss, jti string, exp time.Time) error {
	r.calls.Add(1)
	return r.MemoryJTIStore.Claim(ctx, iss, jti, exp)
}

func (r *recordingJTIs) has(iss, jti string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.used[[2]string{iss, jti}]
	return ok
}

type fixture struct {
	es, rs, forger *jwks.SigningKey
	srv            *httptest.Server
	fetches        *atomic.Int32
	clients        clientMap
	jtis           *recordingJTIs
	v              *Verifier
}

func publicSet(t testing.TB, keys ...*jwks.SigningKey) *jose.JSONWebKeySet {
	t.Helper()
	b, err := jwks.Set(keys).MarshalPublic()
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwks.ParsePublicSet(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var (
	keysOnce               sync.Once
	keyES, keyRS, keyForge *jwks.SigningKey
)

// testKeys are generated once per test binary: RSA generation is slow.
func testKeys(t testing.TB) (es, rs, forger *jwks.SigningKey) {
	keysOnce.Do(func() {
		var err error
		if keyES, err = jwks.Generate("ES384"); err != nil {
			panic(err)
		}
		if keyRS, err = jwks.Generate("RS384"); err != nil {
			panic(err)
		}
		if keyForge, err = jwks.Generate("ES384"); err != nil {
			panic(err)
		}
	})
	return keyES, keyRS, keyForge
}

func newFixture(t testing.TB) *fixture {
	f := &fixture{fetches: new(atomic.Int32)}
	f.es, f.rs, f.forger = testKeys(t)
	body, err := jwks.Set{f.es, f.rs}.MarshalPublic()
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(f.srv.Close)
	inline := publicSet(t, f.es, f.rs)
	f.clients = clientMap{
		"app":       {ID: "app", AuthMethod: AuthMethodPrivateKeyJWT, JWKS: inline},
		"app-es384": {ID: "app-es384", AuthMethod: AuthMethodPrivateKeyJWT, SigningAlg: "ES384", JWKS: inline},
		"remote":    {ID: "remote", AuthMethod: AuthMethodPrivateKeyJWT, JWKSURI: f.srv.URL + "/jwks.json"},
		"basic":     {ID: "basic", AuthMethod: "client_secret_basic", JWKS: inline},
		"keyless":   {ID: "keyless", AuthMethod: AuthMethodPrivateKeyJWT},
	}
	f.jtis = &recordingJTIs{MemoryJTIStore: NewMemoryJTIStore(nil)}
	f.v = NewVerifier(Config{
		TokenURL: tokenURL,
		Clients:  f.clients,
		Keys:     jwks.NewRemote(f.srv.Client(), jwks.RemoteOptions{Now: func() time.Time { return testNow }}),
		JTIs:     f.jtis,
		Now:      func() time.Time { return testNow },
	})
	return f
}

var jtiCounter atomic.Int64

func freshJTI() string { return fmt.Sprintf("jti-%d", jtiCounter.Add(1)) }

// spec is an assertion under construction.
type spec struct {
	header map[string]any
	claims map[string]any
	method jwt.SigningMethod
	key    any
}

func (f *fixture) validSpec(client string) *spec {
	return &spec{
		header: map[string]any{"alg": "ES384", "kid": f.es.KID, "typ": "JWT"},
		claims: map[string]any{
			"iss": client, "sub": client, "aud": tokenURL,
			"iat": testNow.Unix(), "exp": testNow.Add(4 * time.Minute).Unix(), "jti": freshJTI(),
		},
		method: jwt.SigningMethodES384,
		key:    f.es.Private,
	}
}

func (f *fixture) useRSA(s *spec) {
	s.header["alg"], s.header["kid"] = "RS384", f.rs.KID
	s.method, s.key = jwt.SigningMethodRS384, f.rs.Private
}

func (s *spec) sign(t testing.TB) string {
	t.Helper()
	tok := &jwt.Token{Header: s.header, Claims: jwt.MapClaims(s.claims), Method: s.method}
	raw, err := tok.SignedString(s.key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func form(assertion string) url.Values {
	return url.Values{ParamAssertionType: {AssertionType}, ParamAssertion: {assertion}}
}

func b64s(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// --- refusals ---------------------------------------------------------------

func TestVerifyRefusals(t *testing.T) {
	f := newFixture(t)
	pubPEM := func() []byte {
		der, err := x509.MarshalPKIXPublicKey(f.es.Private.Public())
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}()
	jwkJSON, _ := json.Marshal(f.forger.PublicJWK())

	type row struct {
		name   string
		client string                             // iss/sub of the base spec ("app")
		mutate func(s *spec)                      // changes to the valid spec
		form   func(f url.Values, raw string)     // changes to the form
		raw    func(t *testing.T, s *spec) string // replaces signing entirely
		setup  func(s *spec)                      // runs before Verify
		code   string
		hint   string
		jtiOK  bool // the jti step was reached (replay row)
	}
	rows := []row{
		// request parameters: invalid_request
		{name: "client_assertion_type missing", form: func(v url.Values, _ string) { v.Del(ParamAssertionType) },
			code: oautherr.CodeInvalidRequest, hint: "client_assertion_type is missing"},
		{name: "client_assertion_type is the grant type URN", form: func(v url.Values, _ string) {
			v.Set(ParamAssertionType, "urn:ietf:params:oauth:grant-type:jwt-bearer")
		}, code: oautherr.CodeInvalidRequest, hint: "client_assertion_type must be exactly"},
		{name: "client_assertion_type differs in case", form: func(v url.Values, _ string) {
			v.Set(ParamAssertionType, strings.ToUpper(AssertionType))
		}, code: oautherr.CodeInvalidRequest, hint: "client_assertion_type must be exactly"},
		{name: "client_assertion missing", form: func(v url.Values, _ string) { v.Del(ParamAssertion) },
			code: oautherr.CodeInvalidRequest, hint: "client_assertion is missing"},
		{name: "client_assertion over 8 KiB", mutate: func(s *spec) { s.claims["pad"] = strings.Repeat("x", 8<<10) },
			code: oautherr.CodeInvalidRequest, hint: "larger than 8192 bytes"},
		{name: "client_assertion repeated", form: func(v url.Values, raw string) { v.Add(ParamAssertion, raw) },
			code: oautherr.CodeInvalidRequest, hint: "repeated"},

		// not a compact JWS
		{name: "two parts", raw: func(t *testing.T, s *spec) string { r := s.sign(t); return r[:strings.LastIndex(r, ".")] },
			code: oautherr.CodeInvalidClient, hint: "not a compact JWS"},
		{name: "five parts (JWE)", raw: func(t *testing.T, s *spec) string { return s.sign(t) + ".a.b" },
			code: oautherr.CodeInvalidClient, hint: "not a compact JWS"},
		{name: "newline inside", raw: func(t *testing.T, s *spec) string { r := s.sign(t); return r[:10] + "\n" + r[10:] },
			code: oautherr.CodeInvalidClient, hint: "not a compact JWS"},
		{name: "padded base64", raw: func(t *testing.T, s *spec) string { return s.sign(t) + "==" },
			code: oautherr.CodeInvalidClient, hint: "not a compact JWS"},
		{name: "header not an object", raw: func(t *testing.T, s *spec) string {
			r := s.sign(t)
			return b64s(`["alg"]`) + r[strings.Index(r, "."):]
		}, code: oautherr.CodeInvalidClient, hint: "header is not a JSON object"},
		{name: "claims of the wrong type", mutate: func(s *spec) { s.claims["exp"] = "tomorrow" },
			code: oautherr.CodeInvalidClient, hint: "claims are not a JSON object of the expected types"},

		// header
		{name: "alg none", raw: func(t *testing.T, s *spec) string {
			s.header["alg"] = "none"
			tok := &jwt.Token{Header: s.header, Claims: jwt.MapClaims(s.claims), Method: jwt.SigningMethodNone}
			r, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			return r + "AAAA" // a signature part, so only alg decides
		}, code: oautherr.CodeInvalidClient, hint: "alg none"},
		{name: "alg HS256 with the public key as secret", raw: func(t *testing.T, s *spec) string {
			s.header["alg"], s.method, s.key = "HS256", jwt.SigningMethodHS256, pubPEM
			return s.sign(t)
		}, code: oautherr.CodeInvalidClient, hint: "Symmetric client assertions"},
		{name: "alg not allowed (PS384)", mutate: func(s *spec) {
			f.useRSA(s)
			s.header["alg"], s.method = "PS384", jwt.SigningMethodPS384
		}, code: oautherr.CodeInvalidClient, hint: "alg PS384 is not accepted"},
		{name: "alg missing", mutate: func(s *spec) { delete(s.header, "alg") },
			code: oautherr.CodeInvalidClient, hint: "has no alg"},
		{name: "header carries jwk", mutate: func(s *spec) {
			var m map[string]any
			_ = json.Unmarshal(jwkJSON, &m)
			s.header["jwk"], s.header["kid"], s.key = m, f.forger.KID, f.forger.Private
		}, code: oautherr.CodeInvalidClient, hint: "must not carry jwk"},
		{name: "header carries x5c", mutate: func(s *spec) { s.header["x5c"] = []string{"MIIB"} },
			code: oautherr.CodeInvalidClient, hint: "must not carry x5c"},
		{name: "header carries x5u", mutate: func(s *spec) { s.header["x5u"] = "https://evil.example/cert.pem" },
			code: oautherr.CodeInvalidClient, hint: "must not carry x5u"},
		{name: "jku differs from registered jwks_uri", client: "remote", mutate: func(s *spec) {
			s.header["jku"] = f.srv.URL + "/jwks.json?x"
		}, code: oautherr.CodeInvalidClient, hint: "jku is not the client's registered jwks_uri"},
		{name: "jku for a client with inline keys", mutate: func(s *spec) { s.header["jku"] = f.srv.URL + "/jwks.json" },
			code: oautherr.CodeInvalidClient, hint: "jku is not the client's registered jwks_uri"},
		{name: "crit header", mutate: func(s *spec) { s.header["crit"] = []string{"exp"} },
			code: oautherr.CodeInvalidClient, hint: "crit is not supported"},
		{name: "no kid", mutate: func(s *spec) { delete(s.header, "kid") },
			code: oautherr.CodeInvalidClient, hint: "has no kid"},
		{name: "empty kid", mutate: func(s *spec) { s.header["kid"] = "" },
			code: oautherr.CodeInvalidClient, hint: "has no kid"},
		{name: "typ at+jwt", mutate: func(s *spec) { s.header["typ"] = "at+jwt" },
			code: oautherr.CodeInvalidClient, hint: "typ must be JWT"},
		{name: "typ not a string", mutate: func(s *spec) { s.header["typ"] = 1 },
			code: oautherr.CodeInvalidClient, hint: "typ must be JWT"},

		// iss, sub, client_id
		{name: "iss differs from sub", mutate: func(s *spec) { s.claims["sub"] = "someone-else" },
			code: oautherr.CodeInvalidClient, hint: "iss and sub must both be the client_id"},
		{name: "iss missing", mutate: func(s *spec) { delete(s.claims, "iss"); delete(s.claims, "sub") },
			code: oautherr.CodeInvalidClient, hint: "has no iss"},
		{name: "client_id parameter differs from iss", form: func(v url.Values, _ string) { v.Set(ParamClientID, "app-es384") },
			code: oautherr.CodeInvalidClient, hint: "client_id parameter does not match"},
		{name: "unknown client", client: "ghost",
			code: oautherr.CodeInvalidClient, hint: "Unknown client"},
		{name: "client not registered for private_key_jwt", client: "basic",
			code: oautherr.CodeInvalidClient, hint: "not registered for private_key_jwt"},
		{name: "alg differs from registered signing alg", client: "app-es384", mutate: f.useRSA,
			code: oautherr.CodeInvalidClient, hint: "registered token_endpoint_auth_signing_alg ES384"},
		{name: "client without keys", client: "keyless",
			code: oautherr.CodeInvalidClient, hint: "no registered keys"},
		{name: "kid not among the client's keys", mutate: func(s *spec) { s.header["kid"] = "not-registered" },
			code: oautherr.CodeInvalidClient, hint: "No key with kid not-registered"},
		{name: "kid not at the client's jwks_uri", client: "remote", mutate: func(s *spec) { s.header["kid"] = f.forger.KID; s.key = f.forger.Private },
			code: oautherr.CodeInvalidClient, hint: "No key with kid"},
		{name: "kid names a key of another type", mutate: func(s *spec) { s.header["kid"] = f.rs.KID },
			code: oautherr.CodeInvalidClient, hint: "cannot verify ES384"},
		{name: "signature by another key", mutate: func(s *spec) { s.key = f.forger.Private },
			code: oautherr.CodeInvalidClient, hint: "signature is invalid"},
		{name: "signature of another payload", raw: func(t *testing.T, s *spec) string {
			good := strings.Split(s.sign(t), ".")
			s.claims["jti"] = freshJTI() + "-other"
			other := strings.Split(s.sign(t), ".")
			return good[0] + "." + good[1] + "." + other[2]
		}, code: oautherr.CodeInvalidClient, hint: "signature is invalid"},

		// aud
		{name: "aud with a trailing slash", mutate: func(s *spec) { s.claims["aud"] = tokenURL + "/" },
			code: oautherr.CodeInvalidClient, hint: "aud must be exactly the token endpoint URL"},
		{name: "aud array of two", mutate: func(s *spec) { s.claims["aud"] = []string{tokenURL, "https://other.example"} },
			code: oautherr.CodeInvalidClient, hint: "aud must be exactly"},
		{name: "aud empty array", mutate: func(s *spec) { s.claims["aud"] = []string{} },
			code: oautherr.CodeInvalidClient, hint: "aud must be exactly"},
		{name: "aud missing", mutate: func(s *spec) { delete(s.claims, "aud") },
			code: oautherr.CodeInvalidClient, hint: "aud must be exactly"},
		{name: "aud is the issuer, not the token URL", mutate: func(s *spec) { s.claims["aud"] = "https://payer.example/fhir" },
			code: oautherr.CodeInvalidClient, hint: "aud must be exactly"},

		// times
		{name: "exp missing", mutate: func(s *spec) { delete(s.claims, "exp") },
			code: oautherr.CodeInvalidClient, hint: "has no exp"},
		{name: "exp past", mutate: func(s *spec) { s.claims["exp"] = testNow.Add(-time.Second).Unix() },
			code: oautherr.CodeInvalidClient, hint: "has expired"},
		{name: "exp now (no leeway on exp)", mutate: func(s *spec) { s.claims["exp"] = testNow.Unix() },
			code: oautherr.CodeInvalidClient, hint: "has expired"},
		{name: "exp more than 5 minutes ahead", mutate: func(s *spec) { s.claims["exp"] = testNow.Add(5*time.Minute + time.Second).Unix() },
			code: oautherr.CodeInvalidClient, hint: "more than 5m0s in the future"},
		{name: "nbf in the future beyond leeway", mutate: func(s *spec) { s.claims["nbf"] = testNow.Add(31 * time.Second).Unix() },
			code: oautherr.CodeInvalidClient, hint: "nbf is in the future"},
		{name: "iat in the future beyond leeway", mutate: func(s *spec) { s.claims["iat"] = testNow.Add(31 * time.Second).Unix() },
			code: oautherr.CodeInvalidClient, hint: "iat is in the future"},

		// jti
		{name: "jti missing", mutate: func(s *spec) { delete(s.claims, "jti") },
			code: oautherr.CodeInvalidClient, hint: "has no jti"},
		{name: "jti empty", mutate: func(s *spec) { s.claims["jti"] = "" },
			code: oautherr.CodeInvalidClient, hint: "has no jti"},
		{name: "jti of 257 characters", mutate: func(s *spec) { s.claims["jti"] = strings.Repeat("j", 257) },
			code: oautherr.CodeInvalidClient, hint: "jti is longer than 256"},
		{name: "jti already used", setup: func(s *spec) {
			if err := f.jtis.Claim(context.Background(), s.claims["iss"].(string), s.claims["jti"].(string), testNow.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}, code: oautherr.CodeInvalidClient, hint: "already been used (replay)", jtiOK: true},
	}

	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			client := tt.client
			if client == "" {
				client = "app"
			}
			s := f.validSpec(client)
			if tt.mutate != nil {
				tt.mutate(s)
			}
			var raw string
			if tt.raw != nil {
				raw = tt.raw(t, s)
			} else {
				raw = s.sign(t)
			}
			v := form(raw)
			if tt.form != nil {
				tt.form(v, raw)
			}
			if tt.setup != nil {
				tt.setup(s)
			}
			before := f.jtis.calls.Load()
			c, err := f.v.Verify(context.Background(), v)
			if err == nil {
				t.Fatalf("accepted, client %+v", c)
			}
			var oe *oautherr.Error
			if !errors.As(err, &oe) {
				t.Fatalf("not an *oautherr.Error: %T %v", err, err)
			}
			if oe.Code != tt.code {
				t.Fatalf("code %s, want %s (%v)", oe.Code, tt.code, err)
			}
			wantStatus := map[string]int{oautherr.CodeInvalidClient: 401, oautherr.CodeInvalidRequest: 400}[tt.code]
			if oe.Status != wantStatus {
				t.Errorf("status %d, want %d", oe.Status, wantStatus)
			}
			if !strings.Contains(oe.Description, tt.hint) {
				t.Errorf("hint %q does not say %q", oe.Description, tt.hint)
			}
			calls := f.jtis.calls.Load() - before
			if tt.jtiOK {
				if calls != 1 {
					t.Errorf("jti step reached %d times, want 1", calls)
				}
				return
			}
			if calls != 0 {
				t.Errorf("jti claimed (%d calls) for an assertion refused before the jti step", calls)
			}
			if jti, ok := s.claims["jti"].(string); ok && f.jtis.has(client, jti) {
				t.Errorf("jti %s burned", jti)
			}
		})
	}
}

// --- acceptance -------------------------------------------------------------

func TestVerifyHappyPaths(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		client string
		rsa    bool
		mutate func(s *spec)
		form   func(v url.Values)
	}{
		{name: "ES384 inline JWKS", client: "app"},
		{name: "RS384 inline JWKS", client: "app", rsa: true},
		{name: "ES384 jwks_uri", client: "remote"},
		{name: "RS384 jwks_uri", client: "remote", rsa: true},
		{name: "ES384 with registered signing alg", client: "app-es384"},
		{name: "jku equal to the registered jwks_uri", client: "remote", mutate: func(s *spec) { s.header["jku"] = f.srv.URL + "/jwks.json" }},
		{name: "aud array of one", client: "app", mutate: func(s *spec) { s.claims["aud"] = []string{tokenURL} }},
		{name: "typ jwt in lower case", client: "app", mutate: func(s *spec) { s.header["typ"] = "jwt" }},
		{name: "no typ", client: "app", mutate: func(s *spec) { delete(s.header, "typ") }},
		{name: "no iat", client: "app", mutate: func(s *spec) { delete(s.claims, "iat") }},
		{name: "exp exactly 5 minutes ahead", client: "app", mutate: func(s *spec) { s.claims["exp"] = testNow.Add(5 * time.Minute).Unix() }},
		{name: "nbf and iat within leeway", client: "app", mutate: func(s *spec) {
			s.claims["nbf"] = testNow.Add(29 * time.Second).Unix()
			s.claims["iat"] = testNow.Add(29 * time.Second).Unix()
		}},
		{name: "jti of 256 characters", client: "app", mutate: func(s *spec) { s.claims["jti"] = strings.Repeat("q", 255) + freshJTI()[:1] }},
		{name: "client_id parameter equal to iss", client: "app", form: func(v url.Values) { v.Set(ParamClientID, "app") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := f.validSpec(tt.client)
			if tt.rsa {
				f.useRSA(s)
			}
			if tt.mutate != nil {
				tt.mutate(s)
			}
			v := form(s.sign(t))
			if tt.form != nil {
				tt.form(v)
			}
			c, err := f.v.Verify(context.Background(), v)
			if err != nil {
				t.Fatal(err)
			}
			if c.ID != tt.client {
				t.Fatalf("client %q, want %q", c.ID, tt.client)
			}
			if !f.jtis.has(tt.client, s.claims["jti"].(string)) {
				t.Fatal("jti not claimed")
			}
			if _, err := f.v.Verify(context.Background(), v); err == nil {
				t.Fatal("the same assertion was accepted twice")
			}
		})
	}
	if n := f.fetches.Load(); n != 1 {
		t.Errorf("jwks_uri fetched %d times, want 1 (cached)", n)
	}
}

func TestSignerRoundTrip(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		client string
		key    *jwks.SigningKey
	}{{"app", f.es}, {"app", f.rs}, {"remote", f.es}, {"remote", f.rs}} {
		t.Run(tc.client+"/"+tc.key.Alg, func(t *testing.T) {
			s := &Signer{Key: tc.key, ClientID: tc.client, Now: func() time.Time { return testNow }}
			v, err := s.Form(tokenURL, url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.rs"}})
			if err != nil {
				t.Fatal(err)
			}
			if v.Get("grant_type") != "client_credentials" || v.Get(ParamAssertionType) != AssertionType {
				t.Fatalf("form %v", v)
			}
			c, err := f.v.Verify(context.Background(), v)
			if err != nil {
				t.Fatal(err)
			}
			if c.ID != tc.client {
				t.Fatalf("client %s", c.ID)
			}
			// The signed form: header alg/kid/typ, string aud, 4-minute exp, 128-bit jti.
			parts := strings.Split(v.Get(ParamAssertion), ".")
			var h map[string]any
			var cl map[string]any
			hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
			cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
			_ = json.Unmarshal(hb, &h)
			_ = json.Unmarshal(cb, &cl)
			if h["alg"] != tc.key.Alg || h["kid"] != tc.key.KID || h["typ"] != "JWT" {
				t.Errorf("header %v", h)
			}
			if cl["aud"] != tokenURL || cl["iss"] != tc.client || cl["sub"] != tc.client {
				t.Errorf("claims %v", cl)
			}
			if exp, iat := cl["exp"].(float64), cl["iat"].(float64); exp-iat != 240 {
				t.Errorf("lifetime %v s", exp-iat)
			}
			if jti, _ := base64.RawURLEncoding.DecodeString(cl["jti"].(string)); len(jti) != 16 {
				t.Errorf("jti %v", cl["jti"])
			}
		})
	}
}

func TestSignerRefusals(t *testing.T) {
	es, _, _ := testKeys(t)
	for name, s := range map[string]*Signer{
		"no key":            {ClientID: "app"},
		"no client id":      {Key: es},
		"lifetime over 5 m": {Key: es, ClientID: "app", Lifetime: 6 * time.Minute},
	} {
		if _, err := s.Assertion(tokenURL); err == nil {
			t.Errorf("%s: signed", name)
		}
	}
	if _, err := (&Signer{Key: es, ClientID: "app"}).Assertion(""); err == nil {
		t.Error("empty token URL signed")
	}
}

func TestVerifyMisconfigured(t *testing.T) {
	f := newFixture(t)
	raw := f.validSpec("app").sign(t)
	for name, cfg := range map[string]Config{
		"no token URL": {Clients: f.clients, JTIs: f.jtis},
		"no clients":   {TokenURL: tokenURL, JTIs: f.jtis},
		"no jti store": {TokenURL: tokenURL, Clients: f.clients},
	} {
		_, err := NewVerifier(cfg).Verify(context.Background(), form(raw))
		if oautherr.As(err).Code != oautherr.CodeServerError {
			t.Errorf("%s: %v", name, err)
		}
	}
	noKeys := NewVerifier(Config{TokenURL: tokenURL, Clients: f.clients, JTIs: f.jtis, Now: func() time.Time { return testNow }})
	if _, err := noKeys.Verify(context.Background(), form(f.validSpec("remote").sign(t))); oautherr.As(err).Code != oautherr.CodeServerError {
		t.Errorf("jwks_uri client without Keys: %v", err)
	}
}

func TestHasAssertion(t *testing.T) {
	if HasAssertion(url.Values{"client_id": {"x"}}) {
		t.Error("plain form reported as assertion")
	}
	if !HasAssertion(url.Values{ParamAssertion: {""}}) || !HasAssertion(url.Values{ParamAssertionType: {AssertionType}}) {
		t.Error("assertion form not reported")
	}
}
