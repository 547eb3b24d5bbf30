package main

import (
	"bytes"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
)

// parseIntegrity returns the SHA-512 digest carried by an npm "integrity"
// value. The value uses the Subresource Integrity metadata grammar (W3C SRI
// §3.1): whitespace-separated "<alg>-<base64>[?options]" entries. Only
// sha512 is accepted, as npm records it for every published tarball; weaker
// algorithms (sha1, sha256) are ignored, and a value with no sha512 entry is
// an error. When several sha512 entries are present they must agree.
func parseIntegrity(s string) ([]byte, error) {
	var digest []byte
	for _, entry := range strings.Fields(s) {
		alg, b64, ok := strings.Cut(entry, "-")
		if !ok {
			return nil, fmt.Errorf("integrity entry %q: want <alg>-<base64>", entry)
		}
		if alg != "sha512" {
			continue
		}
		b64, _, _ = strings.Cut(b64, "?") // SRI §3.1 option-expression, unused
		d, err := base64.StdEncoding.Strict().DecodeString(b64)
		if err != nil {
			return nil, fmt.Errorf("integrity entry %q: bad base64: %w", entry, err)
		}
		if len(d) != sha512.Size {
			return nil, fmt.Errorf("integrity entry %q: digest is %d bytes, want %d", entry, len(d), sha512.Size)
		}
		if digest != nil && !bytes.Equal(digest, d) {
			return nil, fmt.Errorf("integrity %q: conflicting sha512 entries", s)
		}
		digest = d
	}
	if digest == nil {
		return nil, fmt.Errorf("integrity %q: no sha512 entry", s)
	}
	return digest, nil
}

// verifyIntegrity reads r to the end and fails unless its SHA-512 equals the
// digest in integrity.
func verifyIntegrity(r io.Reader, integrity string) error {
	want, err := parseIntegrity(integrity)
	if err != nil {
		return err
	}
	h := sha512.New()
	if _, err := io.Copy(h, r); err != nil {
		return fmt.Errorf("hashing tarball: %w", err)
	}
	got := h.Sum(nil)
	if !bytes.Equal(got, want) {
		return fmt.Errorf("tarball integrity mismatch: got sha512-%s, pinned %s (refusing to extract)",
			base64.StdEncoding.EncodeToString(got), integrity)
	}
	return nil
}
