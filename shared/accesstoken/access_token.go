// Package accesstoken issues and verifies JWT access tokens per RFC 9068 ("JSON
// Web Token (JWT) Profile for OAuth 2.0 Access Tokens"), carrying the SMART App
// Launch 2.2 launch context (patient, encounter, fhirUser, fhirContext).
//
// Verification is strict and cheapest first: size, structure, typ (§2.1,
// §4: typ must be at+jwt, so an id_token or client assertion signed by the
// same key is never taken for an access token), algorithm, required claims,
// issuer, audience and times, then the key and the signature. Every refusal
// carries a Reason for the audit log.
package accesstoken

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/jws"
	"dtrsandbox/shared/oautherr"
	"dtrsandbox/shared/smart"
)

// Header "typ" of an RFC 9068 token (§2.1); "application/at+jwt" is the same
// media type written in full (RFC 7515 §4.1.9).
const (
	TypeAccessToken     = "at+jwt"
	TypeAccessTokenFull = "application/at+jwt"
)

// DefaultMaxSize bounds a token before anything is parsed.
const DefaultMaxSize = 8 << 10

// DefaultLeeway is the clock skew tolerated on nbf and iat.
const DefaultLeeway = 30 * time.Second

// DefaultAlgorithms are accepted when VerifyOptions.Algorithms is empty.
var DefaultAlgorithms = []string{"ES256", "ES384", "RS256", "RS384"}

// Claims are the RFC 9068 §2.2 claims plus SMART launch context. Audience is
// the FHIR base the token is for.
type Claims struct {
	jwt.RegisteredClaims
	ClientID    string              `json:"client_id"`
	Scope       string              `json:"scope"`
	Patient     string              `json:"patient,omitempty"`
	Encounter   string              `json:"encounter,omitempty"`
	FHIRUser    string              `json:"fhirUser,omitempty"`
	FHIRContext []smart.ContextItem `json:"fhirContext,omitempty"`
}

// Reason says why a token was refused, for audit logs and metrics.
type Reason string

// Reasons, in the order Verify checks them.
const (
	ReasonTooLarge      Reason = "too_large"
	ReasonMalformed     Reason = "malformed"
	ReasonWrongType     Reason = "wrong_type"
	ReasonAlgorithm     Reason = "algorithm"
	ReasonMissingClaim  Reason = "missing_claim"
	ReasonIssuer        Reason = "issuer"
	ReasonAudience      Reason = "audience"
	ReasonExpired       Reason = "expired"
	ReasonNotYetValid   Reason = "not_yet_valid"
	ReasonUnknownKey    Reason = "unknown_key"
	ReasonSignature     Reason = "signature"
	ReasonConfiguration Reason = "configuration" // the verifier, not the token, is at fault
)

// String is the reason in words, for an audit event or a log line.
func (r Reason) String() string {
	switch r {
	case ReasonTooLarge:
		return "token is larger than allowed"
	case ReasonMalformed:
		return "token is not a well-formed signed JWT"
	case ReasonWrongType:
		return "token is not a JWT access token (typ must be at+jwt)"
	case ReasonAlgorithm:
		return "token signing algorithm is not allowed"
	case ReasonMissingClaim:
		return "token lacks a required claim"
	case ReasonIssuer:
		return "token issuer is not the expected one"
	case ReasonAudience:
		return "token audience does not include this server"
	case ReasonExpired:
		return "token has expired"
	case ReasonNotYetValid:
		return "token is not yet valid"
	case ReasonUnknownKey:
		return "token signing key is unknown"
	case ReasonSignature:
		return "token signature is invalid"
	case ReasonConfiguration:
		return "token verifier is misconfigured"
	default:
		return "token refused (" + string(r) + ")"
	}
}

// Error is a refusal: the Reason and the detail behind it (for the log).
type Error struct {
	Reason Reason
	Err    error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return "accesstoken: " + e.Reason.String()
	}
	return "accesstoken: " + e.Reason.String() + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// OAuth renders the refusal as the RFC 6750 §3.1 error a resource server
// answers with: invalid_token (401) whose hint is the reason, or
// server_error for a misconfigured verifier.
func (e *Error) OAuth() *oautherr.Error {
	if e.Reason == ReasonConfiguration {
		return oautherr.ServerError("The access token could not be checked.").WithCause(e)
	}
	return oautherr.InvalidToken("The access token was refused: %s.", e.Reason.String()).WithCause(e)
}

func fail(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Err: fmt.Errorf(format, args...)}
}

// Sign issues c as an RFC 9068 token with key: header typ at+jwt, kid, and
// the key's alg. iss, sub, aud, exp, iat, jti and client_id are required
// (§2.2); exp must be after iat.
func Sign(key *jwks.SigningKey, c *Claims) (string, error) {
	if key == nil || key.Private == nil || key.Method() == nil {
		return "", errors.New("accesstoken: no usable signing key")
	}
	if c == nil {
		return "", errors.New("accesstoken: no claims")
	}
	var missing []string
	for _, m := range []struct {
		name string
		ok   bool
	}{
		{"iss", c.Issuer != ""},
		{"sub", c.Subject != ""},
		{"aud", len(c.Audience) > 0 && !slices.Contains(c.Audience, "")},
		{"exp", c.ExpiresAt != nil},
		{"iat", c.IssuedAt != nil},
		{"jti", c.ID != ""},
		{"client_id", c.ClientID != ""},
	} {
		if !m.ok {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("accesstoken: missing claims: %s", strings.Join(missing, ", "))
	}
	if !c.ExpiresAt.After(c.IssuedAt.Time) {
		return "", errors.New("accesstoken: exp is not after iat")
	}
	tok := jwt.NewWithClaims(key.Method(), c)
	tok.Header["typ"] = TypeAccessToken
	tok.Header["kid"] = key.KID
	s, err := tok.SignedString(key.Private)
	if err != nil {
		return "", fmt.Errorf("accesstoken: sign: %w", err)
	}
	return s, nil
}

// VerifyOptions say what a resource server accepts. Issuer and Audience are
// required.
type VerifyOptions struct {
	Issuer   string // the one trusted "iss", exactly
	Audience string // "aud" must contain it exactly (RFC 9068 §4)
	// Algorithms accepted (DefaultAlgorithms); none and HS* never are.
	Algorithms []string
	// Now is the clock (time.Now).
	Now func() time.Time
	// Leeway tolerates clock skew on nbf and iat only, never on exp
	// (DefaultLeeway when zero; negative means none).
	Leeway time.Duration
	// MaxSize in bytes (DefaultMaxSize).
	MaxSize int
}

// KeyFunc returns the issuer's public key with kid for alg (for instance
// jwks.Remote.Key bound to the issuer's jwks_uri).
type KeyFunc func(ctx context.Context, kid, alg string) (crypto.PublicKey, error)

// Verify checks raw against opts and returns its claims. Any refusal is an
// *Error. Required claims: exp, iat, sub, client_id, jti (RFC 9068 §2.2),
// and iss and aud as configured.
func Verify(ctx context.Context, raw string, keys KeyFunc, opts VerifyOptions) (*Claims, error) {
	if opts.Issuer == "" || opts.Audience == "" || keys == nil {
		return nil, fail(ReasonConfiguration, "issuer, audience and key function are required")
	}
	maxSize := opts.MaxSize
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if len(raw) > maxSize {
		return nil, fail(ReasonTooLarge, "%d bytes, limit %d", len(raw), maxSize)
	}
	tok, err := parse(raw)
	if err != nil {
		return nil, err
	}
	if err := checkType(tok); err != nil {
		return nil, err
	}
	algs := opts.Algorithms
	if len(algs) == 0 {
		algs = DefaultAlgorithms
	}
	if err := checkAlg(tok, algs); err != nil {
		return nil, err
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if err := checkClaims(&tok.claims, opts, now()); err != nil {
		return nil, err
	}
	if err := verifySignature(ctx, tok, keys); err != nil {
		return nil, err
	}
	return &tok.claims, nil
}

// token is a compact JWS decoded but not yet trusted.
type token struct {
	signingInput string
	signature    []byte
	header       map[string]any
	claims       Claims
	alg, kid     string
}

func parse(raw string) (*token, error) {
	c, err := jws.Decode(raw)
	if err != nil {
		return nil, &Error{Reason: ReasonMalformed, Err: err}
	}
	t := &token{signingInput: c.SigningInput, signature: c.Signature}
	if err := jws.UnmarshalObject(c.Header, &t.header); err != nil {
		return nil, fail(ReasonMalformed, "header: %w", err)
	}
	if err := jws.UnmarshalObject(c.Payload, &t.claims); err != nil {
		return nil, fail(ReasonMalformed, "claims: %w", err)
	}
	if _, crit := t.header["crit"]; crit {
		return nil, fail(ReasonMalformed, "crit header not supported")
	}
	return t, nil
}

// checkType applies RFC 9068 §4: the typ header must be at+jwt.
func checkType(t *token) error {
	typ, _ := t.header["typ"].(string)
	if !strings.EqualFold(typ, TypeAccessToken) && !strings.EqualFold(typ, TypeAccessTokenFull) {
		return fail(ReasonWrongType, "typ %q", clip(typ))
	}
	return nil
}

func checkAlg(t *token, allowed []string) error {
	alg, _ := t.header["alg"].(string)
	switch {
	case alg == "":
		return fail(ReasonAlgorithm, "no alg")
	case strings.EqualFold(alg, "none"):
		return fail(ReasonAlgorithm, "alg none")
	case strings.HasPrefix(strings.ToUpper(alg), "HS"):
		return fail(ReasonAlgorithm, "symmetric alg %s", clip(alg))
	case !slices.Contains(allowed, alg):
		return fail(ReasonAlgorithm, "alg %s not allowed", clip(alg))
	}
	t.alg = alg
	return nil
}

// checkClaims: RFC 9068 §2.2 required claims, §4 issuer and audience, RFC
// 7519 §4.1.4/§4.1.5/§4.1.6 times. Leeway applies to nbf and iat only.
func checkClaims(c *Claims, opts VerifyOptions, now time.Time) error {
	var missing []string
	if c.ExpiresAt == nil {
		missing = append(missing, "exp")
	}
	if c.IssuedAt == nil {
		missing = append(missing, "iat")
	}
	if c.Subject == "" {
		missing = append(missing, "sub")
	}
	if c.ClientID == "" {
		missing = append(missing, "client_id")
	}
	if c.ID == "" {
		missing = append(missing, "jti")
	}
	if len(missing) > 0 {
		return fail(ReasonMissingClaim, "missing %s", strings.Join(missing, ", "))
	}
	if c.Issuer != opts.Issuer {
		return fail(ReasonIssuer, "iss %q", clip(c.Issuer))
	}
	if !slices.Contains(c.Audience, opts.Audience) {
		return fail(ReasonAudience, "aud %q", clip(strings.Join(c.Audience, " ")))
	}
	if !now.Before(c.ExpiresAt.Time) {
		return fail(ReasonExpired, "expired at %s", c.ExpiresAt.UTC().Format(time.RFC3339))
	}
	leeway := opts.Leeway
	if leeway == 0 {
		leeway = DefaultLeeway
	}
	limit := now.Add(max(leeway, 0))
	if c.NotBefore != nil && c.NotBefore.After(limit) {
		return fail(ReasonNotYetValid, "nbf %s", c.NotBefore.UTC().Format(time.RFC3339))
	}
	if c.IssuedAt.After(limit) {
		return fail(ReasonNotYetValid, "iat %s", c.IssuedAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// verifySignature gets the key for kid and checks the JWS signature (RFC
// 7515 §5.2) with the header's (already allowed) alg.
func verifySignature(ctx context.Context, t *token, keys KeyFunc) error {
	kid, _ := t.header["kid"].(string)
	if kid == "" {
		return fail(ReasonUnknownKey, "no kid")
	}
	key, err := keys(ctx, kid, t.alg)
	if err != nil {
		return &Error{Reason: ReasonUnknownKey, Err: err}
	}
	if err := jwks.KeyFitsAlg(key, t.alg); err != nil {
		return &Error{Reason: ReasonUnknownKey, Err: err}
	}
	method := jwt.GetSigningMethod(t.alg)
	if method == nil {
		return fail(ReasonAlgorithm, "alg %s has no implementation", t.alg)
	}
	if err := method.Verify(t.signingInput, t.signature, key); err != nil {
		return &Error{Reason: ReasonSignature, Err: err}
	}
	return nil
}

// PeekIssuer reads "iss" without verifying anything, so a resource server
// that trusts several issuers can pick the keys to verify with. Input longer
// than maxSize (DefaultMaxSize if not positive) is refused unread.
func PeekIssuer(raw string, maxSize int) (string, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if len(raw) > maxSize {
		return "", fail(ReasonTooLarge, "%d bytes, limit %d", len(raw), maxSize)
	}
	jt, err := jws.Decode(raw)
	if err != nil {
		return "", &Error{Reason: ReasonMalformed, Err: err}
	}
	var c struct {
		Issuer string `json:"iss"`
	}
	if err := jws.UnmarshalObject(jt.Payload, &c); err != nil {
		return "", fail(ReasonMalformed, "claims: %w", err)
	}
	if c.Issuer == "" {
		return "", fail(ReasonIssuer, "no iss")
	}
	return c.Issuer, nil
}

// clip shortens token-supplied text quoted in an error.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
