// Package jwks holds the signing keys a service keeps on disk, publishes the
// public half as a JWK Set (RFC 7517 §5), and fetches and caches the JWK Sets
// of other parties (a client's jwks_uri, a trusted EHR's keys).
//
// Key identifiers are RFC 7638 JWK thumbprints, so a kid names exactly one
// public key and a rotated key always gets a new kid.
package jwks

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// Algorithms a SigningKey can be generated for (RFC 7518 §3.1).
const (
	RS256 = "RS256"
	RS384 = "RS384"
	ES256 = "ES256"
	ES384 = "ES384"
)

// rsaBits is the modulus size of generated RSA keys, and the smallest modulus
// accepted from anyone (NIST SP 800-131A: 2048 bits minimum).
const rsaBits = 2048

// SigningKey is one private signing key with its JWS algorithm and its kid.
// Private is an *rsa.PrivateKey or an *ecdsa.PrivateKey.
type SigningKey struct {
	KID     string
	Alg     string
	Private crypto.Signer
}

// Generate makes a fresh key for alg: RSA-2048 for RS256/RS384, P-256 for
// ES256, P-384 for ES384. Its KID is the RFC 7638 thumbprint.
func Generate(alg string) (*SigningKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case RS256, RS384:
		priv, err = rsa.GenerateKey(rand.Reader, rsaBits)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ES384:
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	default:
		return nil, fmt.Errorf("jwks: cannot generate a key for alg %q (supported: RS256, RS384, ES256, ES384)", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("jwks: generate %s key: %w", alg, err)
	}
	return NewSigningKey(priv, alg)
}

// NewSigningKey wraps an existing private key, checking that it fits alg, and
// computes its kid.
func NewSigningKey(priv crypto.Signer, alg string) (*SigningKey, error) {
	if priv == nil {
		return nil, errors.New("jwks: nil private key")
	}
	if err := checkKeyFitsAlg(priv.Public(), alg); err != nil {
		return nil, err
	}
	kid, err := Thumbprint(priv.Public())
	if err != nil {
		return nil, err
	}
	return &SigningKey{KID: kid, Alg: alg, Private: priv}, nil
}

// Thumbprint is the RFC 7638 JWK thumbprint of pub: the base64url (no
// padding) SHA-256 of the key's required members in lexicographic order.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("jwks: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// Method is the golang-jwt signing method for the key's alg.
func (k *SigningKey) Method() jwt.SigningMethod {
	return jwt.GetSigningMethod(k.Alg)
}

// PublicJWK is the public half as a JWK with "use":"sig", "alg" and "kid"
// (RFC 7517 §4).
func (k *SigningKey) PublicJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Private.Public(), KeyID: k.KID, Algorithm: k.Alg, Use: "sig"}
}

// LoadOrCreate reads the PKCS#8 PEM private key at path, or, if there is no
// file, generates one for alg and writes it there (mode 0600, parent
// directories 0700). The file appears atomically: it is written to a temporary
// file in the same directory and linked into place, so a reader never sees a
// partial key and two processes starting together end up with the same key.
// An existing key that does not fit alg (wrong type or curve) is an error,
// never silently replaced.
func LoadOrCreate(path, alg string) (*SigningKey, error) {
	k, err := load(path, alg)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	k, err = Generate(alg)
	if err != nil {
		return nil, err
	}
	der, err := marshalPKCS8(k.Private)
	if err != nil {
		return nil, err
	}
	won, err := writeNew(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		return nil, err
	}
	if !won { // another process created it first: use theirs
		return load(path, alg)
	}
	return k, nil
}

func load(path, alg string) (*SigningKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("jwks: read key: %w", err)
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("jwks: %s: no PKCS#8 \"PRIVATE KEY\" PEM block", path)
	}
	if len(rest) > 0 && len(pemTrim(rest)) > 0 {
		return nil, fmt.Errorf("jwks: %s: unexpected data after the key", path)
	}
	parsed, err := parsePKCS8(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("jwks: %s: %w", path, err)
	}
	k, err := NewSigningKey(parsed, alg)
	if err != nil {
		return nil, fmt.Errorf("jwks: existing key %s does not fit %s: %w", path, alg, err)
	}
	return k, nil
}

func pemTrim(b []byte) []byte {
	for len(b) > 0 && (b[0] == '\n' || b[0] == '\r' || b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// writeNew puts data at path only if nothing is there yet. It reports false
// when another writer got there first.
func writeNew(path string, data []byte) (bool, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("jwks: create key directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".key-*.tmp")
	if err != nil {
		return false, fmt.Errorf("jwks: create temp key file: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // after a link the name is an extra link; after a rename it is gone
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return false, fmt.Errorf("jwks: chmod temp key file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return false, fmt.Errorf("jwks: write temp key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, fmt.Errorf("jwks: sync temp key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("jwks: close temp key file: %w", err)
	}
	// link(2) never replaces an existing file, unlike rename(2).
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		// Filesystems without hard links: fall back to rename, after a last
		// check that nobody has created the file meanwhile.
		if _, statErr := os.Lstat(path); statErr == nil {
			return false, nil
		}
		if err := os.Rename(tmpName, path); err != nil {
			return false, fmt.Errorf("jwks: move key into place: %w", err)
		}
	}
	syncDir(dir)
	return true, nil
}

// syncDir makes the new directory entry durable; failure only costs
// durability, never correctness, so it is ignored.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
