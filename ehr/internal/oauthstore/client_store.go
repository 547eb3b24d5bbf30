package oauthstore

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	josev3 "github.com/go-jose/go-jose/v3"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/database"
	"dtrsandbox/shared/jwks"
)

// Token endpoint authentication methods (RFC 7591 §2).
const (
	AuthNone              = "none"
	AuthClientSecretBasic = "client_secret_basic"
	AuthPrivateKeyJWT     = "private_key_jwt"
)

// ErrClientExists is returned by CreateClient for a client_id already taken.
var ErrClientExists = errors.New("oauthstore: client_id already registered")

// Client is a registered OAuth client: fosite's OpenID Connect client (so the
// fosite handlers see its redirect URIs, grant types, scopes and
// token_endpoint_auth_method) plus what the EHR adds.
type Client struct {
	*fosite.DefaultOpenIDConnectClient
	// Name is the RFC 7591 client_name shown on the consent page.
	Name string
	// LaunchURL is where the EHR opens the app for an EHR launch.
	LaunchURL string
	// EHRApproved clients are trusted by the EHR: no consent page.
	EHRApproved bool
	// MayIntrospect clients may introspect any access token (RFC 7662 §4:
	// the server decides who may learn about which tokens). Other
	// confidential clients may introspect only their own.
	MayIntrospect bool
	// PublicKeys is the client's inline JWK Set (jwks), parsed strictly.
	PublicKeys *jose.JSONWebKeySet
	// CreatedAt is when the client was registered.
	CreatedAt time.Time
}

// IsPublic reports a client that does not authenticate (method none).
func (c *Client) IsPublic() bool { return c.TokenEndpointAuthMethod == AuthNone }

// HasSecret reports whether the client may authenticate with
// client_secret_basic.
func (c *Client) HasSecret() bool { return len(c.Secret) > 0 }

// CheckSecret compares secret with the stored hash in constant time.
func (c *Client) CheckSecret(secret string) bool {
	if len(c.Secret) == 0 || secret == "" {
		return false
	}
	return subtle.ConstantTimeCompare(HashSecret(secret), c.Secret) == 1
}

// HashSecret is how client secrets are stored: SHA-256. The EHR generates
// secrets with 256 bits of entropy (and refuses configured ones shorter than
// MinSecretLength), so a slow password hash would add latency to every
// token request without adding security.
func HashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// MinSecretLength is the shortest client secret accepted from configuration.
const MinSecretLength = 32

// clientRow is one row of oauth_clients.
type clientRow struct {
	ID            string `gorm:"primaryKey;size:255"`
	Name          string `gorm:"size:255;not null"`
	SecretHash    []byte
	RedirectURIs  string `gorm:"type:text;not null"`
	GrantTypes    string `gorm:"type:text;not null"`
	ResponseTypes string `gorm:"type:text;not null"`
	Scope         string `gorm:"type:text;not null"`
	AuthMethod    string `gorm:"size:64;not null"`
	SigningAlg    string `gorm:"size:16;not null"`
	JWKSURI       string `gorm:"type:text;not null"`
	JWKS          string `gorm:"type:text;not null"`
	LaunchURL     string `gorm:"type:text;not null"`
	EHRApproved   bool   `gorm:"not null"`
	MayIntrospect bool   `gorm:"not null"`
	CreatedAt     time.Time
}

func (clientRow) TableName() string { return TableClients }

func toRow(c *Client) (*clientRow, error) {
	if c == nil || c.DefaultOpenIDConnectClient == nil || c.DefaultClient == nil || c.ID == "" {
		return nil, errors.New("oauthstore: client without an id")
	}
	enc := func(v []string) string {
		if v == nil {
			v = []string{}
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	row := &clientRow{
		ID:            c.ID,
		Name:          c.Name,
		SecretHash:    c.Secret,
		RedirectURIs:  enc(c.RedirectURIs),
		GrantTypes:    enc(c.GrantTypes),
		ResponseTypes: enc(c.ResponseTypes),
		Scope:         strings.Join(c.Scopes, " "),
		AuthMethod:    c.TokenEndpointAuthMethod,
		SigningAlg:    c.TokenEndpointAuthSigningAlgorithm,
		JWKSURI:       c.JSONWebKeysURI,
		LaunchURL:     c.LaunchURL,
		EHRApproved:   c.EHRApproved,
		MayIntrospect: c.MayIntrospect,
		CreatedAt:     c.CreatedAt,
	}
	if c.PublicKeys != nil {
		b, err := json.Marshal(c.PublicKeys)
		if err != nil {
			return nil, fmt.Errorf("oauthstore: encode jwks: %w", err)
		}
		row.JWKS = string(b)
	}
	if row.CreatedAt.IsZero() {
		row.CreatedAt = time.Now().UTC()
	}
	return row, nil
}

func fromRow(row *clientRow) (*Client, error) {
	var redirects, grants, responses []string
	for _, f := range []struct {
		raw string
		dst *[]string
	}{{row.RedirectURIs, &redirects}, {row.GrantTypes, &grants}, {row.ResponseTypes, &responses}} {
		if err := json.Unmarshal([]byte(f.raw), f.dst); err != nil {
			return nil, fmt.Errorf("oauthstore: client %q: %w", row.ID, err)
		}
	}
	c := &Client{
		DefaultOpenIDConnectClient: &fosite.DefaultOpenIDConnectClient{
			DefaultClient: &fosite.DefaultClient{
				ID:            row.ID,
				Secret:        row.SecretHash,
				RedirectURIs:  redirects,
				GrantTypes:    grants,
				ResponseTypes: responses,
				Scopes:        strings.Fields(row.Scope),
				Audience:      []string{},
				Public:        row.AuthMethod == AuthNone,
			},
			JSONWebKeysURI:                    row.JWKSURI,
			TokenEndpointAuthMethod:           row.AuthMethod,
			TokenEndpointAuthSigningAlgorithm: row.SigningAlg,
		},
		Name:          row.Name,
		LaunchURL:     row.LaunchURL,
		EHRApproved:   row.EHRApproved,
		MayIntrospect: row.MayIntrospect,
		CreatedAt:     row.CreatedAt,
	}
	if row.JWKS != "" {
		set, err := jwks.ParsePublicSet([]byte(row.JWKS))
		if err != nil {
			return nil, fmt.Errorf("oauthstore: client %q: %w", row.ID, err)
		}
		c.PublicKeys = set
		// fosite's own OpenID Connect interface speaks go-jose v3.
		var v3 josev3.JSONWebKeySet
		if err := json.Unmarshal([]byte(row.JWKS), &v3); err != nil {
			return nil, fmt.Errorf("oauthstore: client %q: %w", row.ID, err)
		}
		c.JSONWebKeys = &v3
	}
	return c, nil
}

// GetClient loads a client (fosite.ClientManager); fosite.ErrNotFound if none.
func (s *Store) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	return s.Client(ctx, id)
}

// Client loads a client as the EHR's type; fosite.ErrNotFound if none.
func (s *Store) Client(ctx context.Context, id string) (*Client, error) {
	if id == "" || len(id) > 255 {
		return nil, fosite.ErrNotFound
	}
	var row clientRow
	err := s.conn(ctx).Where("id = ?", id).Take(&row).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return nil, fosite.ErrNotFound
	case err != nil:
		return nil, fmt.Errorf("oauthstore: load client: %w", err)
	}
	return fromRow(&row)
}

// CreateClient registers a new client; ErrClientExists if the id is taken.
func (s *Store) CreateClient(ctx context.Context, c *Client) error {
	row, err := toRow(c)
	if err != nil {
		return err
	}
	if err := s.conn(ctx).Create(row).Error; err != nil {
		if database.IsDuplicate(err) {
			return ErrClientExists
		}
		return fmt.Errorf("oauthstore: create client: %w", err)
	}
	return nil
}

// SaveClient creates or replaces a client (used to seed fixed clients, so a
// changed configuration takes effect on the next start).
func (s *Store) SaveClient(ctx context.Context, c *Client) error {
	row, err := toRow(c)
	if err != nil {
		return err
	}
	if err := s.conn(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "id"}},
		UpdateAll: true,
	}).Create(row).Error; err != nil {
		return fmt.Errorf("oauthstore: save client: %w", err)
	}
	return nil
}

// AssertionClient is clientauth.ClientStore: what the private_key_jwt
// verifier needs to know of a client.
func (s *Store) AssertionClient(ctx context.Context, id string) (*clientauth.Client, error) {
	c, err := s.Client(ctx, id)
	switch {
	case errors.Is(err, fosite.ErrNotFound):
		return nil, clientauth.ErrUnknownClient
	case err != nil:
		return nil, err
	}
	return &clientauth.Client{
		ID:         c.ID,
		AuthMethod: c.TokenEndpointAuthMethod,
		SigningAlg: c.TokenEndpointAuthSigningAlgorithm,
		JWKSURI:    c.JSONWebKeysURI,
		JWKS:       c.PublicKeys,
		Record:     c,
	}, nil
}

// ClientAssertionJWTValid is part of fosite.ClientManager for fosite's
// built-in private_key_jwt authentication, which this server does not use:
// client assertions are verified by clientauth.Verifier, which records jti
// values in its own table. It fails closed, so that a misconfiguration that
// re-enabled fosite's path would refuse every assertion rather than accept
// replays.
func (s *Store) ClientAssertionJWTValid(context.Context, string) error {
	return fosite.ErrJTIKnown.WithHint("Client assertions are verified by the EHR's client authentication, not by fosite.")
}

// SetClientAssertionJWT belongs to the same unused fosite path and fails
// closed too (see ClientAssertionJWTValid).
func (s *Store) SetClientAssertionJWT(context.Context, string, time.Time) error {
	return fosite.ErrJTIKnown.WithHint("Client assertions are verified by the EHR's client authentication, not by fosite.")
}
