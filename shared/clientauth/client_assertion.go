// Package clientauth authenticates OAuth clients by a signed JWT, the
// "private_key_jwt" method: RFC 7523 §2.2 and §3 (JWT client authentication),
// OpenID Connect Core §9, and SMART App Launch 2.2 "Client Authentication:
// Asymmetric (public key)" as used by SMART Backend Services.
//
// The Verifier is strict: the assertion's header and claims are checked
// cheapest first, the signature is verified with a key taken only from the
// client's registration (inline JWKS or its jwks_uri, never from the JWT
// header), and the jti is claimed last, so a refused assertion never burns
// its jti. The Signer makes assertions for our own services (the SMART app at
// the payer, the payer at an EHR).
package clientauth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/jws"
	"dtrsandbox/shared/oautherr"
)

// AssertionType is the client_assertion_type of RFC 7523 §2.2.
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// AuthMethodPrivateKeyJWT is the token_endpoint_auth_method (RFC 7591 §2,
// OIDC Core §9) this package implements.
const AuthMethodPrivateKeyJWT = "private_key_jwt"

// Limits on an assertion.
const (
	MaxAssertionSize = 8 << 10 // bytes of the compact JWS
	MaxJTILength     = 256     // characters
)

// Form parameter names (RFC 7521 §4.2).
const (
	ParamAssertionType = "client_assertion_type"
	ParamAssertion     = "client_assertion"
	ParamClientID      = "client_id"
)

var (
	// ErrUnknownClient is what a ClientStore returns for an id it does not know.
	ErrUnknownClient = errors.New("clientauth: unknown client")
	// ErrReplay is what a JTIStore returns for a (issuer, jti) already claimed.
	ErrReplay = errors.New("clientauth: jti already used")
)

// Client is what the verifier needs to know about a registered client.
type Client struct {
	ID         string
	AuthMethod string // token_endpoint_auth_method; must be private_key_jwt
	SigningAlg string // token_endpoint_auth_signing_alg, "" if not registered
	JWKSURI    string // jwks_uri, if registered by reference
	JWKS       *jose.JSONWebKeySet
	// Record is the ClientStore's own record of the client, if it sets
	// one: Verify returns this Client, so the caller has the record
	// without a second lookup.
	Record any
}

// ClientStore looks clients up by client_id.
type ClientStore interface {
	// AssertionClient returns the client, or ErrUnknownClient.
	AssertionClient(ctx context.Context, id string) (*Client, error)
}

// JTIStore remembers the jti values already used, per issuer (RFC 7523 §3
// item 7; SMART Backend Services: the server must reject a reused jti).
type JTIStore interface {
	// Claim records (issuer, jti) until exp, or returns ErrReplay if it is
	// already recorded. It must be atomic across every replica.
	Claim(ctx context.Context, issuer, jti string, exp time.Time) error
}

// DefaultAlgorithms are the JWS algorithms accepted when Config.Algorithms is
// empty. SMART requires RS384 and ES384; the others cost nothing to allow.
var DefaultAlgorithms = []string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512"}

// Config configures a Verifier. TokenURL, Clients and JTIs are required;
// Keys is required for clients registered with a jwks_uri.
type Config struct {
	// TokenURL is the one accepted "aud": the token endpoint URL, exactly.
	TokenURL string
	Clients  ClientStore
	Keys     *jwks.Remote
	JTIs     JTIStore
	// Now is the clock (time.Now).
	Now func() time.Time
	// MaxLifetime: exp may be at most this far ahead of now (5m, SMART
	// Backend Services).
	MaxLifetime time.Duration
	// Leeway absorbs clock skew on iat and nbf only (30s; negative: none).
	// exp is checked without leeway.
	Leeway time.Duration
	// Algorithms accepted (DefaultAlgorithms). "none" and HS* are refused
	// whatever this says.
	Algorithms []string
}

// Verifier checks client assertions. It is safe for concurrent use.
type Verifier struct {
	cfg Config
}

// NewVerifier fills in the defaults of cfg and returns a Verifier.
func NewVerifier(cfg Config) *Verifier {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxLifetime <= 0 {
		cfg.MaxLifetime = 5 * time.Minute
	}
	switch {
	case cfg.Leeway == 0:
		cfg.Leeway = 30 * time.Second
	case cfg.Leeway < 0:
		cfg.Leeway = 0
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = DefaultAlgorithms
	}
	cfg.Algorithms = slices.Clone(cfg.Algorithms)
	return &Verifier{cfg: cfg}
}

// HasAssertion reports whether form attempts JWT client authentication, so a
// token endpoint can choose this verifier over client_secret_basic or none.
func HasAssertion(form url.Values) bool {
	return form.Has(ParamAssertion) || form.Has(ParamAssertionType)
}

// assertion is one client assertion on its way through the checks.
type assertion struct {
	raw      string
	header   map[string]any
	claims   assertionClaims
	alg, kid string
	jku      string
	hasJKU   bool
}

// assertionClaims are the claims RFC 7523 §3 constrains.
type assertionClaims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  jwt.ClaimStrings `json:"aud"`
	ExpiresAt *jwt.NumericDate `json:"exp"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	ID        *string          `json:"jti"`
}

// Verify authenticates the client that sent form (the decoded body of a
// token, introspection or revocation request) by its client assertion and
// returns it. Every refusal is an *oautherr.Error: invalid_request (400) for
// a missing, repeated, oversized or wrong-type parameter, invalid_client
// (401) for everything about the assertion itself, server_error only for a
// failing store or a misconfigured verifier.
func (v *Verifier) Verify(ctx context.Context, form url.Values) (*Client, error) {
	if err := v.checkConfig(); err != nil {
		return nil, err
	}
	raw, err := assertionParam(form)
	if err != nil {
		return nil, err
	}
	a, err := parseCompact(raw)
	if err != nil {
		return nil, err
	}
	if err := v.checkHeader(a); err != nil {
		return nil, err
	}
	if err := v.checkClaims(a, form); err != nil {
		return nil, err
	}
	client, err := v.lookupClient(ctx, a.claims.Issuer)
	if err != nil {
		return nil, err
	}
	if err := checkClient(a, client); err != nil {
		return nil, err
	}
	key, err := v.clientKey(ctx, client, a.kid, a.alg)
	if err != nil {
		return nil, err
	}
	if err := v.verifySignature(a, key); err != nil {
		return nil, err
	}
	if err := v.claimJTI(ctx, a); err != nil {
		return nil, err
	}
	return client, nil
}

func (v *Verifier) checkConfig() error {
	switch {
	case v.cfg.TokenURL == "":
		return oautherr.ServerError("Client authentication is not configured.").WithCause(errors.New("clientauth: Config.TokenURL is empty"))
	case v.cfg.Clients == nil:
		return oautherr.ServerError("Client authentication is not configured.").WithCause(errors.New("clientauth: Config.Clients is nil"))
	case v.cfg.JTIs == nil:
		return oautherr.ServerError("Client authentication is not configured.").WithCause(errors.New("clientauth: Config.JTIs is nil"))
	}
	return nil
}

// assertionParam checks the two parameters of RFC 7521 §4.2 and returns the
// assertion. RFC 6749 §3.2: parameters must not repeat.
func assertionParam(form url.Values) (string, error) {
	for _, p := range []string{ParamAssertionType, ParamAssertion, ParamClientID} {
		if len(form[p]) > 1 {
			return "", oautherr.InvalidRequest("The %s parameter is repeated.", p)
		}
	}
	switch typ := form.Get(ParamAssertionType); {
	case typ == "":
		return "", oautherr.InvalidRequest("client_assertion_type is missing; it must be %s.", AssertionType)
	case typ != AssertionType:
		return "", oautherr.InvalidRequest("client_assertion_type must be exactly %s.", AssertionType)
	}
	raw := form.Get(ParamAssertion)
	if raw == "" {
		return "", oautherr.InvalidRequest("client_assertion is missing.")
	}
	if len(raw) > MaxAssertionSize {
		return "", oautherr.InvalidRequest("client_assertion is larger than %d bytes.", MaxAssertionSize)
	}
	return raw, nil
}

// parseCompact decodes a compact JWS (RFC 7515 §7.1) without verifying it.
func parseCompact(raw string) (*assertion, error) {
	c, err := jws.Decode(raw)
	if err != nil {
		return nil, oautherr.InvalidClient("client_assertion is not a compact JWS (three base64url parts: header.payload.signature).").WithCause(err)
	}
	a := &assertion{raw: raw}
	if err := jws.UnmarshalObject(c.Header, &a.header); err != nil {
		return nil, oautherr.InvalidClient("The client_assertion header is not a JSON object.").WithCause(err)
	}
	if err := jws.UnmarshalObject(c.Payload, &a.claims); err != nil {
		return nil, oautherr.InvalidClient("The client_assertion claims are not a JSON object of the expected types.").WithCause(err)
	}
	return a, nil
}

// checkHeader applies RFC 7515 §4.1 and RFC 8725 §3.1/§3.11 to the header:
// an allowed asymmetric alg, a kid, no embedded or referenced keys other than
// a jku equal to the registered jwks_uri (checked with the client), an
// optional typ of JWT, no crit.
func (v *Verifier) checkHeader(a *assertion) error {
	alg, ok := a.header["alg"].(string)
	switch {
	case !ok || alg == "":
		return oautherr.InvalidClient("The client_assertion header has no alg.")
	case strings.EqualFold(alg, "none"):
		return oautherr.InvalidClient("Unsigned client assertions (alg none) are not accepted.")
	case strings.HasPrefix(strings.ToUpper(alg), "HS"):
		return oautherr.InvalidClient("Symmetric client assertions (alg %s) are not accepted; sign with a private key (%s).", clip(alg), strings.Join(v.cfg.Algorithms, ", "))
	case !slices.Contains(v.cfg.Algorithms, alg):
		return oautherr.InvalidClient("client_assertion alg %s is not accepted; use one of %s.", clip(alg), strings.Join(v.cfg.Algorithms, ", "))
	}
	a.alg = alg
	for _, h := range []string{"jwk", "x5c", "x5u"} {
		if _, present := a.header[h]; present {
			return oautherr.InvalidClient("The client_assertion header must not carry %s: keys come only from the client's registration.", h)
		}
	}
	if _, present := a.header["crit"]; present {
		return oautherr.InvalidClient("The client_assertion header crit is not supported.")
	}
	if jku, present := a.header["jku"]; present {
		s, ok := jku.(string)
		if !ok {
			return oautherr.InvalidClient("The client_assertion header jku must be a string.")
		}
		a.jku, a.hasJKU = s, true
	}
	kid, ok := a.header["kid"].(string)
	if !ok || kid == "" {
		return oautherr.InvalidClient("The client_assertion header has no kid.")
	}
	a.kid = kid
	if typ, present := a.header["typ"]; present {
		s, ok := typ.(string)
		if !ok || !strings.EqualFold(s, "JWT") {
			return oautherr.InvalidClient("The client_assertion typ must be JWT.")
		}
	}
	return nil
}

// checkClaims applies RFC 7523 §3 items 1-7 (and SMART Backend Services'
// 5-minute exp limit) to the unverified claims: cheap refusals before any
// lookup or cryptography. They are checked again as verified claims by
// verifySignature.
func (v *Verifier) checkClaims(a *assertion, form url.Values) error {
	c := &a.claims
	now := v.cfg.Now()
	switch {
	case c.Issuer == "":
		return oautherr.InvalidClient("The client_assertion has no iss; it must be the client_id.")
	case c.Subject != c.Issuer:
		return oautherr.InvalidClient("The client_assertion iss and sub must both be the client_id.")
	}
	if form.Has(ParamClientID) && form.Get(ParamClientID) != c.Issuer {
		return oautherr.InvalidClient("The client_id parameter does not match the client_assertion iss.")
	}
	if len(c.Audience) != 1 || c.Audience[0] != v.cfg.TokenURL {
		return oautherr.InvalidClient("The client_assertion aud must be exactly the token endpoint URL %s.", v.cfg.TokenURL)
	}
	switch {
	case c.ExpiresAt == nil:
		return oautherr.InvalidClient("The client_assertion has no exp.")
	case !now.Before(c.ExpiresAt.Time):
		return oautherr.InvalidClient("The client_assertion has expired.")
	case c.ExpiresAt.Time.After(now.Add(v.cfg.MaxLifetime)):
		return oautherr.InvalidClient("The client_assertion exp is more than %s in the future.", v.cfg.MaxLifetime)
	}
	if c.NotBefore != nil && c.NotBefore.Time.After(now.Add(v.cfg.Leeway)) {
		return oautherr.InvalidClient("The client_assertion nbf is in the future.")
	}
	if c.IssuedAt != nil && c.IssuedAt.Time.After(now.Add(v.cfg.Leeway)) {
		return oautherr.InvalidClient("The client_assertion iat is in the future.")
	}
	switch {
	case c.ID == nil || *c.ID == "":
		return oautherr.InvalidClient("The client_assertion has no jti.")
	case utf8.RuneCountInString(*c.ID) > MaxJTILength:
		return oautherr.InvalidClient("The client_assertion jti is longer than %d characters.", MaxJTILength)
	}
	return nil
}

func (v *Verifier) lookupClient(ctx context.Context, id string) (*Client, error) {
	c, err := v.cfg.Clients.AssertionClient(ctx, id)
	switch {
	case errors.Is(err, ErrUnknownClient):
		return nil, oautherr.InvalidClient("Unknown client.").WithCause(err)
	case err != nil:
		return nil, oautherr.ServerError("The client could not be looked up.").WithCause(err)
	case c == nil:
		return nil, oautherr.InvalidClient("Unknown client.").WithCause(ErrUnknownClient)
	}
	return c, nil
}

// checkClient matches the assertion to the client's registration (RFC 7591
// §2: token_endpoint_auth_method, token_endpoint_auth_signing_alg, jwks_uri).
func checkClient(a *assertion, c *Client) error {
	if c.AuthMethod != AuthMethodPrivateKeyJWT {
		return oautherr.InvalidClient("The client is not registered for private_key_jwt authentication.")
	}
	if c.SigningAlg != "" && c.SigningAlg != a.alg {
		return oautherr.InvalidClient("The client registered token_endpoint_auth_signing_alg %s; the client_assertion uses %s.", c.SigningAlg, a.alg)
	}
	if a.hasJKU && (c.JWKSURI == "" || a.jku != c.JWKSURI) {
		return oautherr.InvalidClient("The client_assertion header jku is not the client's registered jwks_uri.")
	}
	return nil
}

// clientKey finds the verification key among the client's registered keys.
func (v *Verifier) clientKey(ctx context.Context, c *Client, kid, alg string) (crypto.PublicKey, error) {
	var key crypto.PublicKey
	var err error
	switch {
	case c.JWKS != nil:
		key, err = jwks.FindKey(c.JWKS, kid, alg)
	case c.JWKSURI != "":
		if v.cfg.Keys == nil {
			return nil, oautherr.ServerError("The client's keys could not be obtained.").WithCause(errors.New("clientauth: Config.Keys is nil but the client has a jwks_uri"))
		}
		key, err = v.cfg.Keys.Key(ctx, c.JWKSURI, kid, alg)
	default:
		return nil, oautherr.InvalidClient("The client has no registered keys (jwks or jwks_uri).")
	}
	switch {
	case err == nil:
		return key, nil
	case errors.Is(err, jwks.ErrKeyNotFound):
		return nil, oautherr.InvalidClient("No key with kid %s is registered for the client.", clip(kid)).WithCause(err)
	case errors.Is(err, jwks.ErrKeyMismatch), errors.Is(err, jwks.ErrUnsupportedAlg):
		return nil, oautherr.InvalidClient("The client's key %s cannot verify %s.", clip(kid), alg).WithCause(err)
	default:
		return nil, oautherr.InvalidClient("The client's keys could not be fetched from its jwks_uri.").WithCause(err)
	}
}

// verifySignature checks the JWS signature (RFC 7515 §5.2) with the one alg
// the header named, then lets golang-jwt re-validate exp and iss.
func (v *Verifier) verifySignature(a *assertion, key crypto.PublicKey) error {
	_, err := jwt.ParseWithClaims(a.raw, &jwt.RegisteredClaims{},
		func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{a.alg}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(a.claims.Issuer),
		jwt.WithSubject(a.claims.Issuer),
		jwt.WithTimeFunc(v.cfg.Now),
		jwt.WithLeeway(v.cfg.Leeway),
		jwt.WithStrictDecoding(),
	)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return oautherr.InvalidClient("The client_assertion signature is invalid.").WithCause(err)
	default:
		return oautherr.InvalidClient("The client_assertion failed validation.").WithCause(err)
	}
}

// claimJTI records the jti so the assertion cannot be used again (RFC 7523 §3
// item 7). Done last: a refused assertion does not burn its jti.
func (v *Verifier) claimJTI(ctx context.Context, a *assertion) error {
	err := v.cfg.JTIs.Claim(ctx, a.claims.Issuer, *a.claims.ID, a.claims.ExpiresAt.Time)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrReplay):
		return oautherr.InvalidClient("The client_assertion jti has already been used (replay); make a new assertion for each request.").WithCause(err)
	default:
		return oautherr.ServerError("The client assertion could not be recorded.").WithCause(fmt.Errorf("clientauth: claim jti: %w", err))
	}
}

// clip shortens caller-supplied text echoed in a hint.
func clip(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	for i := limit; i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i] + "..."
		}
	}
	return ""
}
