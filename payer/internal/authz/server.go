// Package authz is the payer's own authorization server for apps, per SMART
// Backend Services (SMART App Launch 2.2, "Backend Services"): discovery,
// RFC 7591 dynamic registration (with the ehr_client_ids extension of
// CONTRACT.md), a client_credentials token endpoint that authenticates
// clients only by a private_key_jwt client assertion (RFC 7523), the
// payer's JWK Set, and verification of the RFC 9068 access tokens it
// issues.
package authz

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/ory/fosite"

	"dtrsandbox/payer/internal/audit"
	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/jwks"
)

// Paths of the authorization server, relative to the payer's base URL.
const (
	TokenPath        = "/oauth/token"
	RegistrationPath = "/oauth/register"
	JWKSPath         = "/.well-known/jwks.json"
	FHIRPath         = "/fhir"
	DiscoveryPath    = FHIRPath + "/.well-known/smart-configuration"
)

// MaxAccessTokenLifetime is the longest a payer access token lives
// (CONTRACT.md "Access tokens live at most 300 s").
const MaxAccessTokenLifetime = 300 * time.Second

// IssuerRegistry says whether an EHR issuer is trusted (trust.Registry).
type IssuerRegistry interface {
	Trusted(issuer string) bool
}

// Config of the authorization server.
type Config struct {
	// PublicURL is the payer's base URL as clients see it, without a
	// trailing slash; the issuer of its access tokens.
	PublicURL string
	Clients   *ClientStore
	Tokens    *TokenLog
	Keys      *Keys
	// ClientKeys fetches clients' jwks_uri sets.
	ClientKeys *jwks.Remote
	// JTIs remembers used client-assertion jti values (GormJTIStore: one
	// database for every replica).
	JTIs clientauth.JTIStore
	// Trusted is the trusted-EHR registry: ehr_client_ids may name only
	// issuers it lists.
	Trusted IssuerRegistry
	// RegistrationOpen enables RFC 7591 registration (PAYER_REGISTRATION).
	RegistrationOpen bool
	// AllowHTTPJWKSURI accepts http jwks_uri values on non-loopback hosts
	// (SANDBOX_TLS=off across containers only).
	AllowHTTPJWKSURI bool
	// Audit, if set, records one event per token and registration request.
	Audit  audit.Recorder
	Logger *slog.Logger
	// AccessTokenLifetime (300s, at most MaxAccessTokenLifetime).
	AccessTokenLifetime time.Duration
	Now                 func() time.Time
}

// Server is the authorization server. Its handlers are mounted by
// payer/internal/server.
type Server struct {
	cfg       Config
	tokenURL  string
	fhirBase  string
	verifier  *clientauth.Verifier
	provider  fosite.OAuth2Provider
	discovery []byte
	access    *AccessTokenVerifier
}

// New checks cfg and builds the server.
func New(cfg Config) (*Server, error) {
	u, err := url.Parse(cfg.PublicURL)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "":
		return nil, fmt.Errorf("authz: PublicURL %q must be an absolute http(s) URL without a path", cfg.PublicURL)
	case cfg.Clients == nil || cfg.Tokens == nil || cfg.Keys == nil || cfg.JTIs == nil || cfg.Trusted == nil:
		return nil, errors.New("authz: Clients, Tokens, Keys, JTIs and Trusted are required")
	case cfg.AccessTokenLifetime > MaxAccessTokenLifetime:
		return nil, fmt.Errorf("authz: access token lifetime %s exceeds %s", cfg.AccessTokenLifetime, MaxAccessTokenLifetime)
	}
	if cfg.AccessTokenLifetime <= 0 {
		cfg.AccessTokenLifetime = MaxAccessTokenLifetime
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ClientKeys == nil {
		cfg.ClientKeys = jwks.NewRemote(nil, jwks.RemoteOptions{AllowHTTP: cfg.AllowHTTPJWKSURI, Now: cfg.Now})
	}
	s := &Server{
		cfg:      cfg,
		tokenURL: cfg.PublicURL + TokenPath,
		fhirBase: cfg.PublicURL + FHIRPath,
	}
	s.verifier = clientauth.NewVerifier(clientauth.Config{
		TokenURL:    s.tokenURL,
		Clients:     cfg.Clients,
		Keys:        cfg.ClientKeys,
		JTIs:        cfg.JTIs,
		Now:         cfg.Now,
		MaxLifetime: clientauth.MaxAssertionLifetime,
		Algorithms:  SupportedSigningAlgs,
	})
	s.provider = s.newProvider()
	if s.discovery, err = s.discoveryDocument(); err != nil {
		return nil, err
	}
	s.access = NewAccessTokenVerifier(cfg.Keys.AccessToken, cfg.PublicURL, s.fhirBase, cfg.Now)
	return s, nil
}

// TokenURL is the token endpoint: the one aud of a client assertion.
func (s *Server) TokenURL() string { return s.tokenURL }

// FHIRBase is the payer's FHIR base: the aud of its access tokens.
func (s *Server) FHIRBase() string { return s.fhirBase }

// AccessTokens verifies the payer's own access tokens (for the gate).
func (s *Server) AccessTokens() *AccessTokenVerifier { return s.access }
