package launch

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// randomToken is n random bytes, base64url without padding.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// newVerifier makes an RFC 7636 §4.1 code_verifier: 32 random bytes,
// base64url, 43 characters of the unreserved set.
func newVerifier() string { return randomToken(32) }

// challengeS256 is the RFC 7636 §4.2 S256 code_challenge of verifier:
// BASE64URL(SHA256(ASCII(verifier))).
func challengeS256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
