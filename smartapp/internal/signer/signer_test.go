package signer_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"dtrsandbox/shared/jwks"
	"dtrsandbox/smartapp/internal/discovery"
	"dtrsandbox/smartapp/internal/signer"
	"dtrsandbox/smartapp/internal/standin"
)

type fixture struct {
	key   *jwks.SigningKey
	ehr   *standin.EHR
	payer *standin.Payer
	clock *standin.Clock
	s     *signer.Signer
}

func newFixture(t *testing.T, opts standin.EHROptions) *fixture {
	t.Helper()
	key, err := jwks.Generate(jwks.ES384)
	if err != nil {
		t.Fatal(err)
	}
	app := standin.ServeJWKS(t, key)
	opts.AppJWKSURI = app.URL + "/.well-known/jwks.json"
	f := &fixture{key: key, clock: standin.NewClock()}
	f.ehr = standin.NewEHR(t, opts)
	f.payer = standin.NewPayer(t, opts.AppJWKSURI, nil)
	disc := discovery.New(discovery.Config{})
	f.s, err = signer.New(signer.Config{
		Key: key, EHRs: []signer.EHR{{Issuer: f.ehr.Issuer(), ClientID: "dtr-app"}},
		PayerFHIRBase: f.payer.FHIRBase(), PayerClientID: "dtr-app",
		Discovery: disc, Keys: jwks.NewRemote(nil, jwks.RemoteOptions{}), Now: f.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// launch is a session as the signer sees it.
type launch struct {
	raw string
	att signer.Attestation
}

func (l launch) EHRAccessToken() (string, signer.Attestation) { return l.raw, l.att }

func (f *fixture) verified(t *testing.T) launch {
	t.Helper()
	raw, err := f.ehr.MintAccessToken(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	att, err := f.s.VerifyEHRAccessToken(context.Background(), f.ehr.Issuer(), raw)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return launch{raw: raw, att: att}
}

func TestAssertionForPayerRefusesUnverifiedSessions(t *testing.T) {
	f := newFixture(t, standin.EHROptions{})
	good := f.verified(t)
	other := f.verified(t)
	tests := []struct {
		name string
		l    signer.Launch
	}{
		{"no session", nil},
		{"no token", launch{}},
		{"token never verified", launch{raw: good.raw}},
		{"attestation of another token", launch{raw: good.raw, att: other.att}},
		{"token with a zero attestation", launch{raw: "a.b.c", att: signer.Attestation{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pa, err := f.s.AssertionForPayer(context.Background(), tt.l)
			var ref *signer.Refusal
			if !errors.As(err, &ref) {
				t.Fatalf("signed %+v, err %v", pa, err)
			}
		})
	}
	if _, err := f.s.AssertionForPayer(context.Background(), good); err != nil {
		t.Fatalf("a verified session was refused: %v", err)
	}
}

func TestAssertionForPayerRefusesExpiredSession(t *testing.T) {
	f := newFixture(t, standin.EHROptions{})
	l := f.verified(t) // expires in 1h
	if _, err := f.s.AssertionForPayer(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour - 2*time.Second) // inside MinRemaining of exp
	_, err := f.s.AssertionForPayer(context.Background(), l)
	if !errors.Is(err, signer.ErrExpired) {
		t.Fatalf("err %v, want ErrExpired", err)
	}
	f.clock.Advance(time.Hour)
	if _, err := f.s.AssertionForPayer(context.Background(), l); !errors.Is(err, signer.ErrExpired) {
		t.Fatalf("err %v, want ErrExpired", err)
	}
}

func TestVerifyEHRAccessTokenRefusals(t *testing.T) {
	tests := []struct {
		name string
		opts standin.EHROptions
		ttl  time.Duration
		iss  func(f *fixture) string
		raw  func(raw string) string
	}{
		{name: "wrong audience", opts: standin.EHROptions{AccessTokenAudience: "https://elsewhere.example/fhir"}},
		{name: "wrong issuer", opts: standin.EHROptions{AccessTokenIssuer: "https://elsewhere.example/fhir"}},
		{name: "issued to another client", opts: standin.EHROptions{AccessTokenClientID: "other-app"}},
		{name: "expired", ttl: -time.Minute},
		{name: "unknown EHR", iss: func(*fixture) string { return "https://unknown.example/fhir" }},
		{name: "tampered payload", raw: func(raw string) string {
			p := strings.Split(raw, ".")
			i := len(p[1]) / 2 // a character whose six bits are all in the payload
			p[1] = p[1][:i] + map[bool]string{true: "B", false: "A"}[p[1][i] == 'A'] + p[1][i+1:]
			return strings.Join(p, ".")
		}},
		{name: "not a JWT", raw: func(string) string { return "opaque-token" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.opts)
			ttl := tt.ttl
			if ttl == 0 {
				ttl = time.Hour
			}
			raw, err := f.ehr.MintAccessToken(ttl)
			if err != nil {
				t.Fatal(err)
			}
			if tt.raw != nil {
				raw = tt.raw(raw)
			}
			iss := f.ehr.Issuer()
			if tt.iss != nil {
				iss = tt.iss(f)
			}
			att, err := f.s.VerifyEHRAccessToken(context.Background(), iss, raw)
			if err == nil || att.Valid() {
				t.Fatalf("verified: %+v", att.Claims())
			}
		})
	}
}

func TestPayerAssertionClaims(t *testing.T) {
	f := newFixture(t, standin.EHROptions{})
	l := f.verified(t)
	a1, err := f.s.AssertionForPayer(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := f.s.AssertionForPayer(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	if a1.TokenURL != f.payer.TokenURL() {
		t.Fatalf("token URL %q, want the payer's %q", a1.TokenURL, f.payer.TokenURL())
	}
	c1 := checkAssertion(t, f.key, a1.Assertion, "dtr-app", f.payer.TokenURL(), f.clock.Now())
	c2 := checkAssertion(t, f.key, a2.Assertion, "dtr-app", f.payer.TokenURL(), f.clock.Now())
	if c1.ID == "" || c1.ID == c2.ID {
		t.Fatalf("jti not fresh: %q %q", c1.ID, c2.ID)
	}
	form := a1.Form(nil)
	if form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || form.Get("client_assertion") != a1.Assertion {
		t.Fatalf("form %v", form)
	}
}

func TestAssertionForEHR(t *testing.T) {
	f := newFixture(t, standin.EHROptions{})
	ctx := context.Background()
	if _, err := f.s.AssertionForEHR(ctx, "https://unknown.example/fhir", f.ehr.TokenURL()); err == nil {
		t.Fatal("signed for an unknown EHR")
	}
	if _, err := f.s.AssertionForEHR(ctx, f.ehr.Issuer(), "https://evil.example/token"); err == nil {
		t.Fatal("signed for a token URL the EHR does not publish")
	}
	a, err := f.s.AssertionForEHR(ctx, f.ehr.Issuer(), f.ehr.TokenURL())
	if err != nil {
		t.Fatal(err)
	}
	checkAssertion(t, f.key, a, "dtr-app", f.ehr.TokenURL(), f.clock.Now())
}

func TestJWKSPublishesOnlyThePublicKey(t *testing.T) {
	f := newFixture(t, standin.EHROptions{})
	srv := httptest.NewServer(f.s.JWKSHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	set, err := jwks.ParsePublicSet(body) // refuses any private member
	if err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if len(set.Keys) != 1 || set.Keys[0].KeyID != f.s.KeyID() || set.Keys[0].Algorithm != "ES384" {
		t.Fatalf("keys %+v", set.Keys)
	}
}

// checkAssertion verifies an assertion's signature with key and its claims
// per SMART Backend Services: ES384, kid, iss = sub = client, aud = the
// token URL, exp at most 5 minutes after now, jti.
func checkAssertion(t *testing.T, key *jwks.SigningKey, raw, client, aud string, now time.Time) jwt.RegisteredClaims {
	t.Helper()
	var c jwt.RegisteredClaims
	tok, err := jwt.ParseWithClaims(raw, &c, func(tok *jwt.Token) (any, error) {
		return key.Private.Public().(*ecdsa.PublicKey), nil
	}, jwt.WithValidMethods([]string{"ES384"}), jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		t.Fatalf("assertion does not verify: %v", err)
	}
	if tok.Header["kid"] != key.KID {
		t.Fatalf("kid %v, want %s", tok.Header["kid"], key.KID)
	}
	if c.Issuer != client || c.Subject != client {
		t.Fatalf("iss %q sub %q", c.Issuer, c.Subject)
	}
	payload, _ := jwt.NewParser().DecodeSegment(strings.Split(raw, ".")[1])
	var m map[string]any
	_ = json.Unmarshal(payload, &m)
	if m["aud"] != aud {
		t.Fatalf("aud %v, want the string %q", m["aud"], aud)
	}
	if c.ExpiresAt == nil || c.ExpiresAt.Sub(now) > 5*time.Minute || c.ID == "" {
		t.Fatalf("exp %v jti %q", c.ExpiresAt, c.ID)
	}
	return c
}
