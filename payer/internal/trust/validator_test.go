package trust

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"dtrsandbox/shared/accesstoken"
	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/testutil/jwttest"
)

func TestJWKSModeAccepts(t *testing.T) {
	clk := newClock()
	ehr := newFakeEHR(t, clk)
	v := newValidator(t, mustRegistry(t, ehr.entry(ModeJWKS)), clk)
	ac, err := v.Validate(t.Context(), ehr.token(nil))
	if err != nil {
		t.Fatal(err)
	}
	if ac.Issuer != ehr.issuer || ac.ClientID != "dtr-app" || ac.Patient != "pat-1" || ac.FHIRUser != "Practitioner/prac-1" ||
		len(ac.FHIRContext) != 1 || !ac.Scopes.Has("patient/*.rs") || ac.ExpiresAt.IsZero() {
		t.Fatalf("context %+v", ac)
	}
	if ehr.discoveryHits.Load() != 1 || ehr.jwksHits.Load() != 1 {
		t.Fatalf("discovery %d jwks %d", ehr.discoveryHits.Load(), ehr.jwksHits.Load())
	}
}

// TestJWKSModeFailures: every failure class, with its audited reason.
func TestJWKSModeFailures(t *testing.T) {
	clk := newClock()
	ehr, other := newFakeEHR(t, clk), newFakeEHR(t, clk)
	v := newValidator(t, mustRegistry(t, ehr.entry(ModeJWKS), other.entry(ModeJWKS)), clk)
	unlisted := newFakeEHR(t, clk)
	// The same kid as the EHR's key, but another key: a forged kid.
	forger, _ := jwks.Generate("ES256")
	forger.KID = ehr.key.KID
	now := clk.Now()

	idToken := jwttest.Sign(t, ehr.key, "JWT", jwt.MapClaims{"iss": ehr.issuer, "sub": "prac-1", "aud": "dtr-app",
		"exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "nonce": "n", "fhirUser": "Practitioner/prac-1"})
	refreshJWT := jwttest.Sign(t, ehr.key, "JWT", jwt.MapClaims{"iss": ehr.issuer, "sub": "prac-1", "aud": ehr.issuer,
		"client_id": "dtr-app", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "jti": "r", "token_use": "refresh_token"})
	assertionJWT := jwttest.Sign(t, ehr.key, "JWT", jwt.MapClaims{"iss": "dtr-app", "sub": "dtr-app", "aud": ehr.srv.URL + "/token",
		"exp": now.Add(time.Minute).Unix(), "jti": "a"})
	noType := jwttest.Sign(t, ehr.key, "", jwt.MapClaims{"iss": ehr.issuer, "sub": "prac-1", "aud": ehr.issuer, "client_id": "dtr-app",
		"exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "jti": "n", "patient": "pat-1"})
	payerKey, _ := jwks.Generate("ES256")
	payerToken, _ := accesstoken.Sign(payerKey, &accesstoken.Claims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer: "https://payer.example", Subject: "dtr-app", Audience: jwt.ClaimStrings{"https://payer.example/fhir"},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), ID: "p"}, ClientID: "dtr-app"})
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, ehr.claims(nil))
	hs.Header["typ"], hs.Header["kid"] = "at+jwt", ehr.key.KID
	hsToken, _ := hs.SignedString([]byte("secret"))
	noneTok := jwt.NewWithClaims(jwt.SigningMethodNone, ehr.claims(nil))
	noneTok.Header["typ"], noneTok.Header["kid"] = "at+jwt", ehr.key.KID
	noneToken, _ := noneTok.SignedString(jwt.UnsafeAllowNoneSignatureType)
	tampered := func() string {
		raw := ehr.token(nil)
		parts := strings.Split(raw, ".")
		other := strings.Split(ehr.token(func(c *accesstoken.Claims) { c.Patient = "pat-2" }), ".")
		return parts[0] + "." + other[1] + "." + parts[2]
	}()

	tests := []struct {
		name   string
		raw    string
		reason Reason
		status int
	}{
		{"issuer not listed", unlisted.token(nil), ReasonUntrusted, 401},
		{"no issuer", jwttest.Sign(t, ehr.key, "at+jwt", jwt.MapClaims{"sub": "s", "aud": ehr.issuer, "client_id": "dtr-app",
			"exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "jti": "x"}), ReasonMissingClaim, 401},
		{"signed by another listed issuer's key", ehr.tokenWith(other.key, nil), ReasonUnknownKey, 401},
		{"claims another issuer, signed by this one", other.tokenWith(ehr.key, nil), ReasonUnknownKey, 401},
		{"forged kid", ehr.tokenWith(forger, nil), ReasonSignature, 401},
		{"tampered claims", tampered, ReasonSignature, 401},
		{"aud is another EHR", ehr.token(func(c *accesstoken.Claims) { c.Audience = jwt.ClaimStrings{other.issuer} }), ReasonAudience, 401},
		{"aud is the payer", ehr.token(func(c *accesstoken.Claims) { c.Audience = jwt.ClaimStrings{"https://payer.example/fhir"} }), ReasonAudience, 401},
		{"id_token", idToken, ReasonWrongType, 401},
		{"refresh token JWT", refreshJWT, ReasonWrongType, 401},
		{"an app's client assertion", assertionJWT, ReasonUntrusted, 401},
		{"a client assertion the EHR signed", jwttest.Sign(t, ehr.key, "JWT", jwt.MapClaims{"iss": ehr.issuer, "sub": ehr.issuer,
			"aud": ehr.issuer, "exp": now.Add(time.Minute).Unix(), "jti": "a"}), ReasonWrongType, 401},
		{"no typ", noType, ReasonWrongType, 401},
		{"the payer's own token", payerToken, ReasonUntrusted, 401},
		{"expired", ehr.token(func(c *accesstoken.Claims) {
			c.IssuedAt = jwt.NewNumericDate(now.Add(-time.Hour))
			c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Second))
		}), ReasonExpired, 401},
		{"not yet valid", ehr.token(func(c *accesstoken.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(2 * time.Minute)) }), ReasonNotYetValid, 401},
		{"missing exp", jwttest.Sign(t, ehr.key, "at+jwt", jwt.MapClaims{"iss": ehr.issuer, "sub": "s", "aud": ehr.issuer,
			"client_id": "dtr-app", "iat": now.Unix(), "jti": "x"}), ReasonMissingClaim, 401},
		{"HS256", hsToken, ReasonAlgorithm, 401},
		{"alg none", noneToken, ReasonMalformed, 401},
		{"alg none with a signature part", noneToken + "AAAA", ReasonAlgorithm, 401},
		{"garbage JWT", "a.b.c", ReasonMalformed, 401},
		{"opaque without an introspection EHR", "opaque-token-value", ReasonMalformed, 401},
		{"empty", "", ReasonMalformed, 401},
		{"over 8 KiB", ehr.token(func(c *accesstoken.Claims) { c.Scope = strings.Repeat("x", 9000) }), ReasonTooLarge, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Validate(t.Context(), tt.raw)
			f := wantReason(t, err, tt.reason)
			if f.Status() != tt.status {
				t.Fatalf("status %d", f.Status())
			}
		})
	}
}

func TestJWKSModeFailsClosed(t *testing.T) {
	clk := newClock()
	ehr := newFakeEHR(t, clk)
	ehr.jwksDown = true
	v := newValidator(t, mustRegistry(t, ehr.entry(ModeJWKS)), clk)
	_, err := v.Validate(t.Context(), ehr.token(nil))
	if f := wantReason(t, err, ReasonEHRUnavailable); f.Status() != http.StatusServiceUnavailable {
		t.Fatalf("status %d", f.Status())
	}
	ehr.srv.Close() // discovery gone too (after it was cached): still 503
	clk.Advance(time.Minute)
	_, err = v.Validate(t.Context(), ehr.token(nil))
	wantReason(t, err, ReasonEHRUnavailable)
}

// TestJWKSModeRefetchLimit: a flood of unknown kids fetches the EHR's key
// set at most once more per minute; a key the EHR adds later is picked up
// once that minute has passed.
func TestJWKSModeRefetchLimit(t *testing.T) {
	clk := newClock()
	ehr := newFakeEHR(t, clk)
	v := newValidator(t, mustRegistry(t, ehr.entry(ModeJWKS)), clk)
	if _, err := v.Validate(t.Context(), ehr.token(nil)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(61 * time.Second) // the set is still fresh (max-age=300), but a refetch is allowed again
	rotated, _ := jwks.Generate("ES256")
	for i := range 50 {
		junk, _ := jwks.Generate("ES256")
		if i == 0 {
			junk = rotated // the first unknown kid is the one the EHR will publish
		}
		_, err := v.Validate(t.Context(), ehr.tokenWith(junk, nil))
		wantReason(t, err, ReasonUnknownKey)
	}
	if hits := ehr.jwksHits.Load(); hits != 2 {
		t.Fatalf("JWKS fetched %d times for 50 unknown kids; want 2 (first fetch + one refetch)", hits)
	}
	ehr.mu.Lock()
	ehr.extraKeys = append(ehr.extraKeys, rotated)
	ehr.mu.Unlock()
	if _, err := v.Validate(t.Context(), ehr.tokenWith(rotated, nil)); AsFailure(err) == nil {
		t.Fatal("rotated key accepted before the refetch limit passed")
	}
	clk.Advance(61 * time.Second)
	if _, err := v.Validate(t.Context(), ehr.tokenWith(rotated, nil)); err != nil {
		t.Fatalf("rotated key after a minute: %v", err)
	}
	if hits := ehr.jwksHits.Load(); hits != 3 {
		t.Fatalf("JWKS fetched %d times; want 3", hits)
	}
}

// TestJWKSModeCacheControl: the EHR's key set is reused while its
// Cache-Control max-age runs (fresh tokens with a known kid cost no fetch),
// fetched again once it has run out, and kept at least a minute when the
// EHR says no-store (so a token flood cannot make the payer hammer it).
func TestJWKSModeCacheControl(t *testing.T) {
	cases := []struct {
		cacheControl string
		fresh        time.Duration // still cached just before this
	}{
		{"max-age=300", 300 * time.Second},
		{"public, max-age=120", 120 * time.Second},
		{"no-store", time.Minute},
		{"max-age=5", time.Minute}, // floor: at most one fetch a minute
	}
	for _, tc := range cases {
		t.Run(tc.cacheControl, func(t *testing.T) {
			clk := newClock()
			ehr := newFakeEHR(t, clk)
			ehr.jwksCacheControl = tc.cacheControl
			v := newValidator(t, mustRegistry(t, ehr.entry(ModeJWKS)), clk)
			validate := func() {
				t.Helper()
				if _, err := v.Validate(t.Context(), ehr.token(nil)); err != nil { // a new token each time: no token cache
					t.Fatal(err)
				}
			}
			validate()
			clk.Advance(tc.fresh - time.Second)
			validate()
			if n := ehr.jwksHits.Load(); n != 1 {
				t.Fatalf("%d JWKS fetches within the cache lifetime, want 1", n)
			}
			clk.Advance(2 * time.Second)
			validate()
			if n := ehr.jwksHits.Load(); n != 2 {
				t.Fatalf("%d JWKS fetches after the cache lifetime, want 2", n)
			}
		})
	}
}

// TestJWKSModeCache: a verified token is served from the cache (no
// further signature checks) until its exp, and not after.
func TestJWKSModeCache(t *testing.T) {
	clk := newClock()
	ehr := newFakeEHR(t, clk)
	v := newValidator(t, mustRegistry(t, ehr.entry(ModeJWKS)), clk)
	raw := ehr.token(func(c *accesstoken.Claims) { c.ExpiresAt = jwt.NewNumericDate(clk.Now().Add(90 * time.Second)) })
	for range 10 {
		if _, err := v.Validate(t.Context(), raw); err != nil {
			t.Fatal(err)
		}
	}
	if s := v.Stats(); s.Verifications != 1 || s.Cached != 1 {
		t.Fatalf("stats %+v: want one verification, one cached token", s)
	}
	clk.Advance(89 * time.Second)
	if _, err := v.Validate(t.Context(), raw); err != nil || v.Stats().Verifications != 1 {
		t.Fatalf("just before exp: %v, %+v", err, v.Stats())
	}
	clk.Advance(time.Second)
	_, err := v.Validate(t.Context(), raw)
	wantReason(t, err, ReasonExpired)
}

func TestIntrospectionModeAccepts(t *testing.T) {
	for _, auth := range []string{AuthClientSecretBasic, AuthPrivateKeyJWT} {
		t.Run(auth, func(t *testing.T) {
			clk := newClock()
			ehr := newFakeEHR(t, clk)
			ehr.auth = auth
			payerKey, _ := jwks.Generate("ES384")
			ehr.payerKeys = publicSetOf(payerKey)
			v := newValidator(t, mustRegistry(t, ehr.entry(ModeIntrospection)), clk, func(c *Config) { c.AssertionKey = payerKey })
			ac, err := v.Validate(t.Context(), ehr.token(nil))
			if err != nil {
				t.Fatal(err)
			}
			if ac.Issuer != ehr.issuer || ac.ClientID != "dtr-app" || ac.Patient != "pat-1" || ac.FHIRUser != "Practitioner/prac-1" ||
				!ac.Scopes.Has("user/QuestionnaireResponse.cru") || len(ac.FHIRContext) != 1 {
				t.Fatalf("context %+v", ac)
			}
			if ehr.introspectHit.Load() != 1 || ehr.authFailures.Load() != 0 {
				t.Fatalf("introspections %d auth failures %d", ehr.introspectHit.Load(), ehr.authFailures.Load())
			}
		})
	}
}

func TestIntrospectionModeFailures(t *testing.T) {
	clk := newClock()
	ehr := newFakeEHR(t, clk)
	v := newValidator(t, mustRegistry(t, ehr.entry(ModeIntrospection)), clk)
	now := clk.Now()
	answer := func(status int, body any) func(string) (int, any) {
		return func(string) (int, any) { return status, body }
	}
	active := func(edit map[string]any) map[string]any {
		m := map[string]any{"active": true, "client_id": "dtr-app", "scope": "launch patient/*.rs", "patient": "pat-1",
			"exp": now.Add(time.Minute).Unix(), "iss": ehr.issuer, "sub": "prac-1", "token_type": "Bearer"}
		for k, x := range edit {
			if x == nil {
				delete(m, k)
			} else {
				m[k] = x
			}
		}
		return m
	}
	idToken := jwttest.Sign(t, ehr.key, "JWT", jwt.MapClaims{"iss": ehr.issuer, "aud": "dtr-app", "exp": now.Add(time.Minute).Unix()})
	tests := []struct {
		name       string
		raw        string
		answer     func(string) (int, any)
		reason     Reason
		introspect bool // whether the EHR is asked at all
	}{
		{"unknown to the EHR", ehr.tokenWith(mustES256(t), nil), answer(200, map[string]any{"active": false}), ReasonInactive, true},
		{"revoked", ehr.token(nil), answer(200, map[string]any{"active": false}), ReasonInactive, true},
		{"refresh token reported active", ehr.token(nil), answer(200, active(map[string]any{"token_use": "refresh_token"})), ReasonWrongType, true},
		{"token_type refresh_token", ehr.token(nil), answer(200, active(map[string]any{"token_type": "refresh_token"})), ReasonWrongType, true},
		{"answer names another issuer", ehr.token(nil), answer(200, active(map[string]any{"iss": "https://elsewhere.example/fhir"})), ReasonIssuer, true},
		{"answer names another audience", ehr.token(nil), answer(200, active(map[string]any{"aud": "https://payer.example/fhir"})), ReasonAudience, true},
		{"answer without client_id", ehr.token(nil), answer(200, active(map[string]any{"client_id": nil})), ReasonMissingClaim, true},
		{"answer says expired", ehr.token(nil), answer(200, active(map[string]any{"exp": now.Add(-time.Second).Unix()})), ReasonExpired, true},
		{"opaque token without exp", "opaque.token-1", answer(200, active(map[string]any{"exp": nil})), ReasonMissingClaim, true},
		{"EHR error", ehr.token(nil), answer(500, map[string]any{"error": "boom"}), ReasonEHRUnavailable, true},
		{"EHR answers garbage", ehr.token(nil), answer(200, "not an object"), ReasonEHRUnavailable, true},
		{"id_token: refused locally", idToken, nil, ReasonWrongType, false},
		{"expired JWT: refused locally", ehr.token(func(c *accesstoken.Claims) {
			c.IssuedAt, c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Hour)), jwt.NewNumericDate(now.Add(-time.Minute))
		}), nil, ReasonExpired, false},
		{"JWT for another audience: refused locally", ehr.token(func(c *accesstoken.Claims) { c.Audience = jwt.ClaimStrings{"https://x.example"} }), nil, ReasonAudience, false},
		{"JWT without exp: refused locally", jwttest.Sign(t, ehr.key, "at+jwt", jwt.MapClaims{"iss": ehr.issuer, "aud": ehr.issuer}), nil, ReasonMissingClaim, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ehr.mu.Lock()
			ehr.answer = tt.answer
			ehr.mu.Unlock()
			before := ehr.introspectHit.Load()
			_, err := v.Validate(t.Context(), tt.raw)
			f := wantReason(t, err, tt.reason)
			if asked := ehr.introspectHit.Load() > before; asked != tt.introspect {
				t.Fatalf("EHR asked: %v, want %v", asked, tt.introspect)
			}
			if tt.reason == ReasonEHRUnavailable && f.Status() != http.StatusServiceUnavailable {
				t.Fatalf("status %d", f.Status())
			}
			if _, err := v.Validate(t.Context(), tt.raw); AsFailure(err) == nil {
				t.Fatal("refusal turned into acceptance on retry (cached?)")
			}
		})
	}
}

func TestIntrospectionOpaqueTokens(t *testing.T) {
	clk := newClock()
	ehr := newFakeEHR(t, clk)
	ehr.answer = func(raw string) (int, any) {
		if raw != "opaque-abc" {
			return 200, map[string]any{"active": false}
		}
		return 200, map[string]any{"active": true, "client_id": "dtr-app", "patient": "pat-1", "scope": "launch",
			"exp": clk.Now().Add(time.Minute).Unix()}
	}
	v := newValidator(t, mustRegistry(t, ehr.entry(ModeIntrospection)), clk)
	if ac, err := v.Validate(t.Context(), "opaque-abc"); err != nil || ac.Patient != "pat-1" {
		t.Fatalf("opaque token with one introspection EHR: %v %+v", err, ac)
	}
	// With two introspection EHRs the payer cannot tell whom to ask, and
	// will not show the token to an EHR that may not have issued it.
	two := newFakeEHR(t, clk)
	v2 := newValidator(t, mustRegistry(t, ehr.entry(ModeIntrospection), two.entry(ModeIntrospection)), clk)
	before := ehr.introspectHit.Load() + two.introspectHit.Load()
	_, err := v2.Validate(t.Context(), "opaque-abc")
	wantReason(t, err, ReasonMalformed)
	if ehr.introspectHit.Load()+two.introspectHit.Load() != before {
		t.Fatal("opaque token sent to an EHR")
	}
	_, err = v.Validate(t.Context(), "opaque token with spaces")
	wantReason(t, err, ReasonMalformed)
}

func TestIntrospectionFailsClosed(t *testing.T) {
	clk := newClock()
	ehr := newFakeEHR(t, clk)
	v := newValidator(t, mustRegistry(t, ehr.entry(ModeIntrospection)), clk)
	raw := ehr.token(nil)
	ehr.srv.Close()
	_, err := v.Validate(t.Context(), raw)
	if f := wantReason(t, err, ReasonEHRUnavailable); f.Status() != 503 {
		t.Fatalf("status %d", f.Status())
	}
	// A wrong client secret: the EHR answers 401, the payer fails closed.
	ehr2 := newFakeEHR(t, clk)
	entry := ehr2.entry(ModeIntrospection)
	entry["client_secret"] = "wrong"
	v2 := newValidator(t, mustRegistry(t, entry), clk)
	_, err = v2.Validate(t.Context(), ehr2.token(nil))
	wantReason(t, err, ReasonEHRUnavailable)
	if ehr2.authFailures.Load() != 1 {
		t.Fatal("EHR did not refuse the client")
	}
}

// TestIntrospectionCacheTTL: an active answer is reused for at most the
// TTL, and never past the token's exp.
func TestIntrospectionCacheTTL(t *testing.T) {
	clk := newClock()
	ehr := newFakeEHR(t, clk)
	v := newValidator(t, mustRegistry(t, ehr.entry(ModeIntrospection)), clk)
	raw := ehr.token(func(c *accesstoken.Claims) { c.ExpiresAt = jwt.NewNumericDate(clk.Now().Add(100 * time.Second)) })
	validate := func() {
		t.Helper()
		if _, err := v.Validate(t.Context(), raw); err != nil {
			t.Fatal(err)
		}
	}
	validate()
	validate()
	clk.Advance(29 * time.Second)
	validate()
	if n := ehr.introspectHit.Load(); n != 1 {
		t.Fatalf("%d introspections within the TTL", n)
	}
	clk.Advance(2 * time.Second) // past the 30s TTL
	validate()
	if n := ehr.introspectHit.Load(); n != 2 {
		t.Fatalf("%d introspections after the TTL; want 2", n)
	}
	// Revocation is seen once the TTL has run out.
	ehr.mu.Lock()
	delete(ehr.issued, raw)
	ehr.mu.Unlock()
	clk.Advance(31 * time.Second)
	_, err := v.Validate(t.Context(), raw)
	wantReason(t, err, ReasonInactive)

	// exp bound: a token with 10s left is cached 10s, not 30s.
	short := ehr.token(func(c *accesstoken.Claims) { c.ExpiresAt = jwt.NewNumericDate(clk.Now().Add(10 * time.Second)) })
	if _, err := v.Validate(t.Context(), short); err != nil {
		t.Fatal(err)
	}
	ehr.mu.Lock()
	ehr.answer = func(string) (int, any) { // a misbehaving EHR that would call it active forever
		return 200, map[string]any{"active": true, "client_id": "dtr-app", "patient": "pat-1", "exp": clk.Now().Add(time.Hour).Unix()}
	}
	ehr.mu.Unlock()
	before := ehr.introspectHit.Load()
	clk.Advance(11 * time.Second)
	_, err = v.Validate(t.Context(), short)
	wantReason(t, err, ReasonExpired)
	if ehr.introspectHit.Load() != before {
		t.Fatal("an expired token was sent for introspection")
	}
}

func TestIntrospectionSharedCall(t *testing.T) {
	clk := newClock()
	ehr := newFakeEHR(t, clk)
	gate := make(chan struct{})
	ehr.answer = func(raw string) (int, any) {
		<-gate
		return 200, map[string]any{"active": true, "client_id": "dtr-app", "patient": "pat-1", "exp": clk.Now().Add(time.Minute).Unix()}
	}
	v := newValidator(t, mustRegistry(t, ehr.entry(ModeIntrospection)), clk)
	raw := ehr.token(nil)
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := v.Validate(t.Context(), raw)
			errs <- err
		}()
	}
	time.Sleep(100 * time.Millisecond)
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := ehr.introspectHit.Load(); n != 1 {
		t.Fatalf("%d introspection calls for one cold token; want 1", n)
	}
}

func mustES256(t testing.TB) *jwks.SigningKey {
	k, err := jwks.Generate("ES256")
	if err != nil {
		t.Fatal(err)
	}
	return k
}
