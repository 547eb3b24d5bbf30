package authz

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"

	"dtrsandbox/shared/jwks"
)

// Keys are the EHR authorization server's secrets, kept under
// {data}/ehr/keys/ so a restart keeps every issued token valid.
type Keys struct {
	// AccessToken signs RFC 9068 access tokens (ES256).
	AccessToken *jwks.SigningKey
	// IDToken signs OpenID Connect ID tokens (RS256, which OIDC Core §15.1
	// and SMART require relying parties to support).
	IDToken *jwks.SigningKey
	// HMAC is fosite's global secret: authorization codes and refresh tokens
	// are random values with an HMAC-SHA512/256 signature under it.
	HMAC []byte
}

// Public is the JWK Set published at jwks_uri.
func (k *Keys) Public() jwks.Set { return jwks.Set{k.AccessToken, k.IDToken} }

// hmacSecretSize is the size of a generated HMAC secret (fosite requires at
// least 32 bytes).
const hmacSecretSize = 32

// LoadOrCreateKeys reads the keys in dir, creating any that is missing.
func LoadOrCreateKeys(dir string) (*Keys, error) {
	at, err := jwks.LoadOrCreate(filepath.Join(dir, "access-token-es256.pem"), jwks.ES256)
	if err != nil {
		return nil, err
	}
	id, err := jwks.LoadOrCreate(filepath.Join(dir, "id-token-rs256.pem"), jwks.RS256)
	if err != nil {
		return nil, err
	}
	secret, err := LoadOrCreateSecret(filepath.Join(dir, "hmac-secret"))
	if err != nil {
		return nil, err
	}
	return &Keys{AccessToken: at, IDToken: id, HMAC: secret}, nil
}

// LoadOrCreateSecret reads a raw 32-byte (or longer) secret file or creates
// it (0600, linked into place exclusively, so two processes starting
// together agree on one secret).
func LoadOrCreateSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if len(b) < hmacSecretSize {
			return nil, fmt.Errorf("authz: %s holds %d bytes, want %d", path, len(b), hmacSecretSize)
		}
		return b, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("authz: read secret: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("authz: create key directory: %w", err)
	}
	secret := make([]byte, hmacSecretSize)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("authz: random: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".secret-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("authz: create secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(secret); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("authz: write secret: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("authz: sync secret: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("authz: close secret: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return LoadOrCreateSecret(path) // another process won: use its secret
		}
		return nil, fmt.Errorf("authz: install secret: %w", err)
	}
	return secret, nil
}

// jwksHandler serves the public half of the access token and ID token keys.
func jwksHandler(k *Keys) http.Handler { return jwks.Handler(k.Public()) }
