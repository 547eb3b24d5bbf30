package authz

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"unicode/utf8"
)

// randomID is 128 random bits, base64url without padding.
func randomID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("authz: random id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// clip shortens caller-supplied text echoed in a hint and replaces
// characters that do not belong in an error_description (RFC 6749 §5.2:
// %x20-21 / %x23-5B / %x5D-7E).
func clip(s string) string {
	const limit = 64
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b[i] = '?'
		}
	}
	return string(b)
}
