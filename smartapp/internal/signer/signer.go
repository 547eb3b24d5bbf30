// Package signer is the app's "vendor signer": the only holder of the app's
// private key. It publishes the public half at /.well-known/jwks.json and
// signs client assertions (RFC 7523 §2.2, SMART App Launch 2.2 "Client
// Authentication: Asymmetric") in two cases only:
//
//   - AssertionForEHR: the authorization-code exchange at a known EHR's token
//     endpoint;
//   - AssertionForPayer: a payer client_credentials request (SMART Backend
//     Services) on behalf of a session whose EHR launch access token this
//     signer itself verified with that EHR (signature against the EHR's
//     jwks_uri, iss, aud = the EHR's FHIR base, client_id, exp), and only
//     while that token has not expired.
//
// The proof of verification is an Attestation. Its fields are unexported, so
// no other package can make a non-zero one: the only way to obtain it is
// VerifyEHRAccessToken. AssertionForPayer re-checks that the attestation
// belongs to the very token the session holds (SHA-256) and that the token
// is still unexpired at signing time.
package signer

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"dtrsandbox/shared/accesstoken"
	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/smart"
)

// EHR is one EHR the app accepts launches from, with the client id the app
// was registered under there.
type EHR struct {
	Issuer   string // the EHR's FHIR base = token issuer
	ClientID string
}

// Discovery returns a FHIR server's SMART discovery document.
type Discovery interface {
	Get(ctx context.Context, base string) (*smart.Configuration, error)
}

// KeySource returns a public key from the JWK Set at jwksURI (jwks.Remote).
type KeySource interface {
	Key(ctx context.Context, jwksURI, kid, alg string) (crypto.PublicKey, error)
}

// Config of a Signer. Key, EHRs, PayerFHIRBase, PayerClientID, Discovery and
// Keys are required.
type Config struct {
	Key           *jwks.SigningKey
	EHRs          []EHR
	PayerFHIRBase string
	PayerClientID string
	Discovery     Discovery
	Keys          KeySource
	// Now is the clock (time.Now).
	Now func() time.Time
	// MinRemaining: a payer assertion is refused when the EHR token expires
	// sooner than this (5s), so a payer call does not start with a token
	// about to die on the way.
	MinRemaining time.Duration
}

// Signer holds the key. It is safe for concurrent use.
type Signer struct {
	cfg  Config
	ehrs map[string]EHR
	jwks http.Handler
}

// New checks cfg and returns a Signer.
func New(cfg Config) (*Signer, error) {
	var errs []error
	if cfg.Key == nil || cfg.Key.Private == nil {
		errs = append(errs, errors.New("no signing key"))
	}
	if len(cfg.EHRs) == 0 {
		errs = append(errs, errors.New("no EHR issuers"))
	}
	if cfg.PayerFHIRBase == "" || cfg.PayerClientID == "" {
		errs = append(errs, errors.New("payer FHIR base and client id are required"))
	}
	if cfg.Discovery == nil || cfg.Keys == nil {
		errs = append(errs, errors.New("discovery and key source are required"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("signer: %w", errors.Join(errs...))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MinRemaining <= 0 {
		cfg.MinRemaining = 5 * time.Second
	}
	cfg.PayerFHIRBase = strings.TrimRight(cfg.PayerFHIRBase, "/")
	s := &Signer{cfg: cfg, ehrs: map[string]EHR{}}
	for _, e := range cfg.EHRs {
		if e.Issuer == "" || e.ClientID == "" {
			return nil, fmt.Errorf("signer: EHR %q needs an issuer and a client id", e.Issuer)
		}
		s.ehrs[e.Issuer] = e
	}
	s.jwks = jwks.Handler(jwks.Set{cfg.Key})
	return s, nil
}

// JWKSHandler serves the public key set (GET /.well-known/jwks.json): the
// jwks_uri the app is registered with at the EHR and at the payer.
func (s *Signer) JWKSHandler() http.Handler { return s.jwks }

// KeyID is the kid of the signing key.
func (s *Signer) KeyID() string { return s.cfg.Key.KID }

// Refusal is a request the signer will not sign for. Hint is safe to show.
type Refusal struct {
	Hint  string
	Cause error
}

func (r *Refusal) Error() string {
	if r.Cause != nil {
		return "signer: refused: " + r.Hint + ": " + r.Cause.Error()
	}
	return "signer: refused: " + r.Hint
}

func (r *Refusal) Unwrap() error { return r.Cause }

// ErrExpired is wrapped by a Refusal for an EHR token past its exp.
var ErrExpired = errors.New("the EHR access token has expired")

// Attestation records that the signer verified one EHR access token. The
// zero value attests nothing.
type Attestation struct {
	issuer  string
	digest  [sha256.Size]byte
	expires time.Time
	claims  accesstoken.Claims
}

// Valid reports whether a is a real attestation (made by VerifyEHRAccessToken).
func (a Attestation) Valid() bool { return a.issuer != "" && !a.expires.IsZero() }

// Issuer is the EHR the token was verified with.
func (a Attestation) Issuer() string { return a.issuer }

// ExpiresAt is the token's exp.
func (a Attestation) ExpiresAt() time.Time { return a.expires }

// Claims returns a copy of the verified claims.
func (a Attestation) Claims() accesstoken.Claims {
	c := a.claims
	c.FHIRContext = append([]smart.ContextItem(nil), a.claims.FHIRContext...)
	return c
}

// Launch is what a session shows the signer: its raw EHR access token and
// the attestation it got for it.
type Launch interface {
	EHRAccessToken() (raw string, att Attestation)
}

// VerifyEHRAccessToken verifies raw, an EHR launch access token (RFC 9068
// JWT), against the EHR at issuer, which must be one of the configured EHRs:
// signature with a key from the jwks_uri in the EHR's discovery document,
// typ at+jwt, iss = issuer, aud contains issuer (the FHIR base the token is
// for), exp in the future, and client_id = the app's client id at that EHR
// (the token was issued to this app, not to another).
func (s *Signer) VerifyEHRAccessToken(ctx context.Context, issuer, raw string) (Attestation, error) {
	ehr, ok := s.ehrs[issuer]
	if !ok {
		return Attestation{}, &Refusal{Hint: "the EHR " + issuer + " is not one this app trusts"}
	}
	doc, err := s.cfg.Discovery.Get(ctx, issuer)
	if err != nil {
		return Attestation{}, &Refusal{Hint: "the EHR's discovery document is unavailable", Cause: err}
	}
	if doc.JWKSURI == "" {
		return Attestation{}, &Refusal{Hint: "the EHR publishes no jwks_uri, so its tokens cannot be verified"}
	}
	keys := func(ctx context.Context, kid, alg string) (crypto.PublicKey, error) {
		return s.cfg.Keys.Key(ctx, doc.JWKSURI, kid, alg)
	}
	claims, err := accesstoken.Verify(ctx, raw, keys, accesstoken.VerifyOptions{
		Issuer:   issuer,
		Audience: issuer,
		Now:      s.cfg.Now,
		Leeway:   30 * time.Second,
	})
	if err != nil {
		return Attestation{}, &Refusal{Hint: "the EHR access token did not verify", Cause: err}
	}
	if claims.ClientID != ehr.ClientID {
		return Attestation{}, &Refusal{Hint: "the EHR access token was issued to another client",
			Cause: fmt.Errorf("client_id %q, want %q", claims.ClientID, ehr.ClientID)}
	}
	return Attestation{
		issuer:  issuer,
		digest:  sha256.Sum256([]byte(raw)),
		expires: claims.ExpiresAt.Time,
		claims:  *claims,
	}, nil
}

// AssertionForEHR signs a client assertion for the token endpoint tokenURL
// of the EHR at issuer, as the app's client at that EHR. It refuses an
// unknown issuer, and a tokenURL other than the one the EHR's discovery
// document names (the assertion's aud is exactly that URL).
func (s *Signer) AssertionForEHR(ctx context.Context, issuer, tokenURL string) (string, error) {
	ehr, ok := s.ehrs[issuer]
	if !ok {
		return "", &Refusal{Hint: "the EHR " + issuer + " is not one this app trusts"}
	}
	doc, err := s.cfg.Discovery.Get(ctx, issuer)
	if err != nil {
		return "", &Refusal{Hint: "the EHR's discovery document is unavailable", Cause: err}
	}
	if tokenURL == "" || tokenURL != doc.TokenEndpoint {
		return "", &Refusal{Hint: "the token URL is not the EHR's token endpoint"}
	}
	signer := clientauth.Signer{Key: s.cfg.Key, ClientID: ehr.ClientID, Now: s.cfg.Now}
	return signer.Assertion(tokenURL)
}

// PayerAssertion is a signed assertion and the token endpoint it is for.
type PayerAssertion struct {
	TokenURL  string
	Assertion string
}

// Form is the client-authentication part of the token request (RFC 7521 §4.2).
func (p PayerAssertion) Form(extra url.Values) url.Values {
	form := url.Values{}
	for k, v := range extra {
		form[k] = append([]string(nil), v...)
	}
	form.Set(clientauth.ParamAssertionType, clientauth.AssertionType)
	form.Set(clientauth.ParamAssertion, p.Assertion)
	return form
}

// AssertionForPayer signs a client assertion for the payer's token endpoint
// (from the payer's discovery document), as the app's payer client, for the
// session l. It refuses unless l holds an EHR access token that this signer
// verified (a valid Attestation whose digest matches the token) and whose
// exp is still at least MinRemaining ahead.
func (s *Signer) AssertionForPayer(ctx context.Context, l Launch) (PayerAssertion, error) {
	if l == nil {
		return PayerAssertion{}, &Refusal{Hint: "no session"}
	}
	raw, att := l.EHRAccessToken()
	if err := s.checkAttestation(raw, att); err != nil {
		return PayerAssertion{}, err
	}
	doc, err := s.cfg.Discovery.Get(ctx, s.cfg.PayerFHIRBase)
	if err != nil {
		// Not a refusal: the payer is unavailable (the error says why).
		return PayerAssertion{}, fmt.Errorf("signer: payer discovery: %w", err)
	}
	signer := clientauth.Signer{Key: s.cfg.Key, ClientID: s.cfg.PayerClientID, Now: s.cfg.Now}
	a, err := signer.Assertion(doc.TokenEndpoint)
	if err != nil {
		return PayerAssertion{}, err
	}
	return PayerAssertion{TokenURL: doc.TokenEndpoint, Assertion: a}, nil
}

// checkAttestation is the gate of AssertionForPayer.
func (s *Signer) checkAttestation(raw string, att Attestation) error {
	if raw == "" {
		return &Refusal{Hint: "the session has no EHR access token"}
	}
	if !att.Valid() {
		return &Refusal{Hint: "the session's EHR access token was not verified by the signer"}
	}
	if _, ok := s.ehrs[att.issuer]; !ok {
		return &Refusal{Hint: "the session's EHR is not one this app trusts"}
	}
	sum := sha256.Sum256([]byte(raw))
	if subtle.ConstantTimeCompare(sum[:], att.digest[:]) != 1 {
		return &Refusal{Hint: "the session's EHR access token is not the one the signer verified"}
	}
	if !s.cfg.Now().Add(s.cfg.MinRemaining).Before(att.expires) {
		return &Refusal{Hint: "the EHR access token has expired; relaunch the app from the EHR", Cause: ErrExpired}
	}
	return nil
}
