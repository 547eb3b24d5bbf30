package authz

import (
	"fmt"
	"path/filepath"

	"dtrsandbox/shared/jwks"
)

// Key file names under {data}/payer/keys/.
const (
	AccessTokenKeyFile = "access-token-es256.pem"
	AssertionKeyFile   = "client-assertion-es384.pem"
)

// Keys are the payer's own signing keys. Both public halves are published
// at {payer}/.well-known/jwks.json (RFC 7517 §5).
type Keys struct {
	// AccessToken (ES256) signs the payer's RFC 9068 access tokens.
	AccessToken *jwks.SigningKey
	// Assertion (ES384) signs the payer's private_key_jwt client assertions
	// at EHR introspection endpoints (RFC 7523 §2.2, SMART Backend Services).
	Assertion *jwks.SigningKey
}

// LoadKeys reads the keys in dir, generating any that are missing (see
// jwks.LoadOrCreate: 0600 files, atomic creation).
func LoadKeys(dir string) (*Keys, error) {
	at, err := jwks.LoadOrCreate(filepath.Join(dir, AccessTokenKeyFile), jwks.ES256)
	if err != nil {
		return nil, fmt.Errorf("authz: access-token key: %w", err)
	}
	as, err := jwks.LoadOrCreate(filepath.Join(dir, AssertionKeyFile), jwks.ES384)
	if err != nil {
		return nil, fmt.Errorf("authz: client-assertion key: %w", err)
	}
	return &Keys{AccessToken: at, Assertion: as}, nil
}

// Set is the published key set: the access-token key, then the assertion key.
func (k *Keys) Set() jwks.Set { return jwks.Set{k.AccessToken, k.Assertion} }
