// Package jwttest builds and takes apart compact JWTs in tests, without the
// checks of the code under test.
package jwttest

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"dtrsandbox/shared/jwks"
)

// Sign signs claims with key under key's algorithm and kid, with the given
// typ header ("" for none).
func Sign(t testing.TB, key *jwks.SigningKey, typ string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(key.Method(), claims)
	tok.Header["kid"] = key.KID
	if typ == "" {
		delete(tok.Header, "typ")
	} else {
		tok.Header["typ"] = typ
	}
	s, err := tok.SignedString(key.Private)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Header decodes the JOSE header of a compact JWT without verifying it.
func Header(t testing.TB, raw string) map[string]any {
	t.Helper()
	return part(t, raw, 0)
}

// Claims decodes the claims of a compact JWT without verifying it.
func Claims(t testing.TB, raw string) map[string]any {
	t.Helper()
	return part(t, raw, 1)
}

func part(t testing.TB, raw string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWT: %.40s...", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
