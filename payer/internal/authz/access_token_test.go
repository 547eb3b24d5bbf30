package authz

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"dtrsandbox/shared/accesstoken"
)

func TestAccessTokenVerifierRefuses(t *testing.T) {
	e := newEnv(t)
	own := e.srv.cfg.Keys.AccessToken
	stranger := mustKey(t, "ES256")
	now := time.Now()
	claims := func(mut func(c *accesstoken.Claims)) *accesstoken.Claims {
		c := &accesstoken.Claims{
			RegisteredClaims: jwt.RegisteredClaims{
				Issuer: testPublicURL, Subject: "app", Audience: jwt.ClaimStrings{testPublicURL + "/fhir"},
				IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), ID: "j",
			},
			ClientID: "app", Scope: "system/Questionnaire.rs",
		}
		if mut != nil {
			mut(c)
		}
		return c
	}
	signed := func(c *accesstoken.Claims) string {
		s, err := accesstoken.Sign(own, c)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	strangerTok, _ := accesstoken.Sign(stranger, claims(nil))
	// a client assertion signed with the payer key: typ JWT, not at+jwt
	assertionTyp := assertion(t, own.Private, "ES256", map[string]any{"kid": own.KID}, jwt.MapClaims{
		"iss": testPublicURL, "sub": "app", "aud": testPublicURL + "/fhir", "client_id": "app",
		"exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "jti": "x", "scope": "system/Questionnaire.rs"})

	if _, err := e.srv.AccessTokens().Verify(t.Context(), signed(claims(nil))); err != nil {
		t.Fatalf("good token refused: %v", err)
	}
	tests := []struct {
		name   string
		raw    string
		reason accesstoken.Reason
	}{
		{"another key", strangerTok, accesstoken.ReasonUnknownKey},
		{"expired", signed(claims(func(c *accesstoken.Claims) {
			c.IssuedAt = jwt.NewNumericDate(now.Add(-10 * time.Minute))
			c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Second))
		})), accesstoken.ReasonExpired},
		{"audience of the EHR", signed(claims(func(c *accesstoken.Claims) { c.Audience = jwt.ClaimStrings{testEHR} })), accesstoken.ReasonAudience},
		{"another issuer", signed(claims(func(c *accesstoken.Claims) { c.Issuer = testEHR })), accesstoken.ReasonIssuer},
		{"sub is not client_id", signed(claims(func(c *accesstoken.Claims) { c.Subject = "someone" })), accesstoken.ReasonMissingClaim},
		{"bad scope", signed(claims(func(c *accesstoken.Claims) { c.Scope = "system/x" })), accesstoken.ReasonMalformed},
		{"typ JWT", assertionTyp, accesstoken.ReasonWrongType},
		{"garbage", "not.a.token", accesstoken.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.srv.AccessTokens().Verify(t.Context(), tt.raw)
			var ae *accesstoken.Error
			if !errors.As(err, &ae) || ae.Reason != tt.reason {
				t.Fatalf("got %v, want reason %s", err, tt.reason)
			}
		})
	}
}

func TestSeedIsIdempotentAndConverges(t *testing.T) {
	e := newEnv(t)
	key := mustKey(t, "ES384")
	c := &Client{ID: "dtr-app", JWKSURI: "https://app.one/.well-known/jwks.json", AuthMethod: "private_key_jwt",
		SigningAlg: "ES384", Scope: appScope, GrantTypes: []string{GrantClientCredentials},
		EHRClientIDs: map[string]string{testEHR: "dtr-app"}, IssuedAt: time.Now()}
	for range 2 {
		if err := e.clients.Seed(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	c2 := *c
	c2.JWKSURI = "https://app.two/.well-known/jwks.json"
	c2.EHRClientIDs = map[string]string{otherEHR: "dtr-app"}
	if err := e.clients.Seed(t.Context(), &c2); err != nil {
		t.Fatal(err)
	}
	got, err := e.clients.Get(t.Context(), "dtr-app")
	if err != nil || got.JWKSURI != c2.JWKSURI || len(got.EHRClientIDs) != 1 || got.EHRClientIDs[otherEHR] != "dtr-app" {
		t.Fatalf("seed did not converge: %+v %v", got, err)
	}
	if e.countClients() != 1 {
		t.Fatalf("%d clients", e.countClients())
	}
	// A registered client holding the claim blocks a seed that wants it.
	e.addClient("squatter", key, appScope, map[string]string{testEHR: "dtr-app"})
	if err := e.clients.Seed(t.Context(), c); !errors.Is(err, ErrEHRClientIDTaken) {
		t.Fatalf("seed over a taken claim: %v", err)
	}
}

// TestAccessTokenVerifierCache: a verified token is reused until its exp
// and refused after, even from the cache.
func TestAccessTokenVerifierCache(t *testing.T) {
	key := mustKey(t, "ES256")
	now := time.Now().Truncate(time.Second)
	clock := now
	v := NewAccessTokenVerifier(key, testPublicURL, testPublicURL+"/fhir", func() time.Time { return clock })
	raw, err := accesstoken.Sign(key, &accesstoken.Claims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: testPublicURL, Subject: "app", Audience: jwt.ClaimStrings{testPublicURL + "/fhir"},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), ID: "j"},
		ClientID: "app", Scope: "system/Questionnaire.rs",
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := v.Verify(t.Context(), raw); err != nil {
			t.Fatal(err)
		}
	}
	if len(v.cache) != 1 {
		t.Fatalf("%d cached tokens", len(v.cache))
	}
	pt, _ := v.Verify(t.Context(), raw)
	pt.ClientID = "mutated" // callers get copies
	if again, _ := v.Verify(t.Context(), raw); again.ClientID != "app" {
		t.Fatal("cache entry mutated through a returned token")
	}
	clock = now.Add(time.Minute)
	_, err = v.Verify(t.Context(), raw)
	var ae *accesstoken.Error
	if !errors.As(err, &ae) || ae.Reason != accesstoken.ReasonExpired {
		t.Fatalf("expired cached token: %v", err)
	}
}
