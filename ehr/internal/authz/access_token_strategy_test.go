package authz

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/ory/fosite"

	"dtrsandbox/shared/accesstoken"
	"dtrsandbox/shared/jwks"
)

// The verified-claims cache saves the signature check on repeat use, but
// never outlives the token: an expired token is refused as expired, and a
// token with any byte changed is verified (and refused) in full.
func TestVerifiedClaimsCache(t *testing.T) {
	key, err := jwks.Generate(jwks.ES256)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	s := &accessTokenStrategy{key: key, issuer: "https://ehr.test/fhir", now: func() time.Time { return now }}
	raw, err := accesstoken.Sign(key, &accesstoken.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: s.issuer, Subject: "prac-1", Audience: jwt.ClaimStrings{s.issuer}, ID: "j1",
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)),
		},
		ClientID: "dtr-app", Scope: "patient/*.rs", Patient: "pat-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 2 {
		c, err := s.verify(ctx, raw)
		if err != nil || c.Patient != "pat-1" {
			t.Fatalf("verify %d: %v %+v", i, err, c)
		}
		c.Patient = "pat-2" // callers get a copy
	}
	if n := len(s.verified.m); n != 1 {
		t.Fatalf("%d cached entries, want 1", n)
	}
	if c, _ := s.verify(ctx, raw); c.Patient != "pat-1" {
		t.Fatal("cached claims were changed through a returned copy")
	}
	// Another first signature character: unlike the last one, all six of
	// its bits are part of the signature, so the bytes certainly change.
	sigAt := strings.LastIndexByte(raw, '.') + 1
	tampered := raw[:sigAt] + map[bool]string{true: "B", false: "A"}[raw[sigAt] == 'A'] + raw[sigAt+1:]
	if _, err := s.verify(ctx, tampered); !errors.Is(err, fosite.ErrTokenSignatureMismatch) {
		t.Fatalf("tampered token: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := s.verify(ctx, raw); !errors.Is(err, fosite.ErrTokenExpired) {
		t.Fatalf("expired token from the cache: %v", err)
	}
	if n := len(s.verified.m); n != 0 {
		t.Fatalf("expired entry kept: %d", n)
	}
}
