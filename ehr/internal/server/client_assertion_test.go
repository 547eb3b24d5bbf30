package server_test

import (
	"crypto/rand"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"dtrsandbox/ehr/internal/authz"
	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/jwks"
)

// assertion builds a client assertion for the payer with the given header
// and claim edits; key signs it (nil: alg none).
type assertion struct {
	method jwt.SigningMethod
	key    any
	header map[string]any
	claims jwt.MapClaims
}

func (e *ehr) payerAssertion() *assertion {
	now := time.Now()
	return &assertion{
		method: jwt.GetSigningMethod(e.payerKey.Alg),
		key:    e.payerKey.Private,
		header: map[string]any{"kid": e.payerKey.KID, "typ": "JWT"},
		claims: jwt.MapClaims{
			"iss": authz.PayerClientID, "sub": authz.PayerClientID, "aud": e.tokenURL(),
			"iat": now.Unix(), "exp": now.Add(4 * time.Minute).Unix(), "jti": randomJTI(),
		},
	}
}

func randomJTI() string { return rand.Text() }

func (a *assertion) sign(t testing.TB) string {
	t.Helper()
	tok := jwt.NewWithClaims(a.method, a.claims)
	for k, v := range a.header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(a.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestClientAssertionAttacks: every way a private_key_jwt assertion must be
// refused (RFC 7523 §3, SMART Backend Services, RFC 8725), at the token
// endpoint, with nothing issued; and 20 concurrent copies of one assertion
// buy exactly one token.
func TestClientAssertionAttacks(t *testing.T) {
	e := startEHR(t)
	ccForm := func(raw string, extra url.Values) url.Values {
		f := url.Values{
			"grant_type": {"client_credentials"}, "scope": {"system/*.rs"},
			"client_assertion_type": {clientauth.AssertionType}, "client_assertion": {raw},
		}
		for k, v := range extra {
			f[k] = v
		}
		return f
	}
	stranger := mustKey(t, jwks.ES384)
	cases := []struct {
		name   string
		edit   func(a *assertion)
		extra  url.Values
		status int
		code   string
	}{
		{name: "alg none", edit: func(a *assertion) { a.method, a.key = jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType }},
		{name: "HS256 with the kid", edit: func(a *assertion) {
			a.method, a.key = jwt.SigningMethodHS256, []byte("a shared secret a shared secret!")
		}},
		{name: "alg other than registered", edit: func(a *assertion) {
			a.method, a.key, a.header["kid"] = jwt.SigningMethodRS384, e.payerRSA.Private, e.payerRSA.KID
		}},
		{name: "unknown kid", edit: func(a *assertion) { a.key, a.header["kid"] = stranger.Private, stranger.KID }},
		{name: "registered kid, other key", edit: func(a *assertion) { a.key = stranger.Private }},
		{name: "no kid", edit: func(a *assertion) { a.header["kid"] = nil }},
		{name: "jku other than registered", edit: func(a *assertion) { a.header["jku"] = "https://attacker.example/jwks.json" }},
		{name: "embedded jwk", edit: func(a *assertion) {
			a.key, a.header["kid"], a.header["jwk"] = stranger.Private, stranger.KID, stranger.PublicJWK()
		}},
		{name: "x5u header", edit: func(a *assertion) { a.header["x5u"] = "https://attacker.example/cert.pem" }},
		{name: "typ not JWT", edit: func(a *assertion) { a.header["typ"] = "at+jwt" }},
		{name: "exp missing", edit: func(a *assertion) { delete(a.claims, "exp") }},
		{name: "exp past", edit: func(a *assertion) { a.claims["exp"] = time.Now().Add(-time.Second).Unix() }},
		{name: "exp more than 5 minutes ahead", edit: func(a *assertion) { a.claims["exp"] = time.Now().Add(6 * time.Minute).Unix() }},
		{name: "iat in the future", edit: func(a *assertion) { a.claims["iat"] = time.Now().Add(2 * time.Minute).Unix() }},
		{name: "iss differs from sub", edit: func(a *assertion) { a.claims["sub"] = authz.SmartAppClientID }},
		{name: "iss and sub another client", edit: func(a *assertion) {
			a.claims["iss"], a.claims["sub"] = authz.SmartAppClientID, authz.SmartAppClientID
		}},
		{name: "iss differs from client_id", extra: url.Values{"client_id": {authz.SmartAppClientID}}},
		{name: "aud the FHIR base", edit: func(a *assertion) { a.claims["aud"] = e.fhir }},
		{name: "aud with a trailing slash", edit: func(a *assertion) { a.claims["aud"] = e.tokenURL() + "/" }},
		{name: "aud two values", edit: func(a *assertion) { a.claims["aud"] = []string{e.tokenURL(), "https://other.example"} }},
		{name: "jti missing", edit: func(a *assertion) { delete(a.claims, "jti") }},
		{name: "unknown client", edit: func(a *assertion) { a.claims["iss"], a.claims["sub"] = "nobody", "nobody" }},
		{name: "wrong assertion type", extra: url.Values{"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:saml2-bearer"}}, status: 400, code: "invalid_request"},
		{name: "not a JWS", edit: nil, extra: url.Values{"client_assertion": {"not-a-jwt"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := e.payerAssertion()
			if c.edit != nil {
				c.edit(a)
			}
			status, code := c.status, c.code
			if status == 0 {
				status, code = 401, "invalid_client"
			}
			before := e.counts()
			tr, got, body := e.token(ccForm(a.sign(t), c.extra))
			if tr != nil || got != status || oauthError(t, body) != code {
				t.Fatalf("got %d %s, want %d %s", got, body, status, code)
			}
			e.assertNothingIssued(before)
		})
	}

	t.Run("jku equal to the registered jwks_uri", func(t *testing.T) {
		a := e.payerAssertion()
		a.header["jku"] = e.payer.URL + "/.well-known/jwks.json"
		if tr, status, body := e.token(ccForm(a.sign(t), nil)); tr == nil {
			t.Fatalf("got %d %s", status, body)
		}
	})
	t.Run("reused jti", func(t *testing.T) {
		raw := e.payerAssertion().sign(t)
		if tr, status, body := e.token(ccForm(raw, nil)); tr == nil {
			t.Fatalf("first use: %d %s", status, body)
		}
		before := e.counts()
		if tr, status, body := e.token(ccForm(raw, nil)); tr != nil || status != 401 || oauthError(t, body) != "invalid_client" {
			t.Fatalf("replay: %d %s", status, body)
		}
		e.assertNothingIssued(before)
	})
	t.Run("20 concurrent copies", func(t *testing.T) {
		raw := e.payerAssertion().sign(t)
		before := e.counts()
		var ok, refused atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				resp, body := e.postForm(authz.PathToken, ccForm(raw, nil))
				switch {
				case resp.StatusCode == 200:
					ok.Add(1)
				case resp.StatusCode == 401 && oauthError(t, body) == "invalid_client":
					refused.Add(1)
				default:
					t.Errorf("unexpected %d %s", resp.StatusCode, body)
				}
			}()
		}
		close(start)
		wg.Wait()
		if ok.Load() != 1 || refused.Load() != 19 {
			t.Fatalf("%d succeeded, %d refused", ok.Load(), refused.Load())
		}
		if after := e.counts(); after["oauth_access_tokens"] != before["oauth_access_tokens"]+1 {
			t.Fatalf("access tokens %d -> %d", before["oauth_access_tokens"], after["oauth_access_tokens"])
		}
	})
}
