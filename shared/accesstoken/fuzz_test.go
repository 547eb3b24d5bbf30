package accesstoken

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify: Verify never panics, refuses with an *Error that has a known
// reason, and never accepts a token that an independent check does not find
// signed by one of the issuer's keys.
func FuzzVerify(f *testing.F) {
	es, rs, evil := testKeys(f)
	keys := issuerKeys(f)
	goodES, _ := Sign(es, validClaims())
	goodRS, _ := Sign(rs, validClaims())
	forged, _ := Sign(evil, validClaims())
	parts := strings.Split(goodES, ".")
	for _, seed := range []string{
		goodES,
		goodRS,
		forged,
		parts[0] + "." + parts[1] + ".",
		parts[0] + "." + parts[1] + "." + parts[2] + "=",
		parts[0] + ".." + parts[2],
		strings.Replace(goodES, ".", "..", 1),
		forge(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, map[string]any{"alg": "none", "typ": "at+jwt", "kid": es.KID}, validClaims()),
		forge(f, jwt.SigningMethodHS256, []byte("secret"), map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": es.KID}, validClaims()),
		forge(f, jwt.SigningMethodES256, es.Private, map[string]any{"alg": "ES256", "typ": "JWT", "kid": es.KID}, validClaims()),
		"",
		".",
		"..",
		"a.b.c",
		"eyJhbGciOiJFUzI1NiJ9.e30.",
	} {
		f.Add(seed)
	}
	known := map[Reason]bool{
		ReasonTooLarge: true, ReasonMalformed: true, ReasonWrongType: true, ReasonAlgorithm: true,
		ReasonMissingClaim: true, ReasonIssuer: true, ReasonAudience: true, ReasonExpired: true,
		ReasonNotYetValid: true, ReasonUnknownKey: true, ReasonSignature: true,
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := Verify(context.Background(), raw, keys, opts())
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !known[e.Reason] {
				t.Fatalf("refusal %T %v has no known reason", err, err)
			}
			return
		}
		if c == nil {
			t.Fatal("nil claims without an error")
		}
		if !signedByIssuer(raw, es.Private.Public().(*ecdsa.PublicKey), rs.Private.Public().(*rsa.PublicKey)) {
			t.Fatalf("accepted a token not signed by the issuer: %q", raw)
		}
	})
}

// signedByIssuer checks the signature with the standard library alone.
func signedByIssuer(raw string, es *ecdsa.PublicKey, rs *rsa.PublicKey) bool {
	p := strings.Split(raw, ".")
	if len(p) != 3 {
		return false
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(p[0])
	sig, err2 := base64.RawURLEncoding.DecodeString(p[2])
	var h struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
	}
	if err1 != nil || err2 != nil || json.Unmarshal(hb, &h) != nil {
		return false
	}
	if !strings.EqualFold(h.Typ, "at+jwt") && !strings.EqualFold(h.Typ, "application/at+jwt") {
		return false
	}
	digest := sha256.Sum256([]byte(p[0] + "." + p[1]))
	switch h.Alg {
	case "ES256":
		return len(sig) == 64 && ecdsa.Verify(es, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
	case "RS256":
		return rsa.VerifyPKCS1v15(rs, crypto.SHA256, digest[:], sig) == nil
	}
	return false
}
