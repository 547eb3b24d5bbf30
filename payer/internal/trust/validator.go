package trust

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"dtrsandbox/shared/accesstoken"
	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/jws"
	"dtrsandbox/shared/smart"
)

// MaxTokenSize: an EHR token larger than this is refused before anything
// is decoded or verified.
const MaxTokenSize = 8 << 10

// Config of a Validator.
type Config struct {
	Registry *Registry
	// HTTPClient makes discovery and introspection calls (the sandbox
	// client trusting the local CA).
	HTTPClient *http.Client
	// Keys caches EHR JWK Sets (Cache-Control honoured, an unknown kid
	// refetched at most once a minute).
	Keys *jwks.Remote
	// AssertionKey is the payer's ES384 key for private_key_jwt at EHR
	// introspection endpoints.
	AssertionKey *jwks.SigningKey
	// IntrospectionTTL: an active answer is reused at most this long (30s;
	// PAYER_INTROSPECTION_CACHE_TTL), and never past the token's exp.
	IntrospectionTTL time.Duration
	// IntrospectionTimeout bounds one introspection call (5s).
	IntrospectionTimeout time.Duration
	// DiscoveryTTL: how long an EHR's discovery document is reused (10m).
	DiscoveryTTL time.Duration
	// Leeway for clock skew on nbf and iat (30s).
	Leeway time.Duration
	// CacheSize bounds the verified-token cache (10000 entries).
	CacheSize int
	Now       func() time.Time
	Logger    *slog.Logger
}

// Validator validates EHR access tokens. Safe for concurrent use.
type Validator struct {
	cfg    Config
	disc   *discoverer
	cache  *tokenCache
	flight flight

	introspections atomic.Int64 // introspection calls made
	verifications  atomic.Int64 // local signature verifications attempted
}

// NewValidator fills in defaults.
func NewValidator(cfg Config) (*Validator, error) {
	if cfg.Registry == nil {
		return nil, errors.New("trust: Config.Registry is required")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Keys == nil {
		cfg.Keys = jwks.NewRemote(cfg.HTTPClient, jwks.RemoteOptions{Now: cfg.Now})
	}
	if cfg.IntrospectionTTL <= 0 {
		cfg.IntrospectionTTL = 30 * time.Second
	}
	if cfg.IntrospectionTimeout <= 0 {
		cfg.IntrospectionTimeout = 5 * time.Second
	}
	if cfg.DiscoveryTTL <= 0 {
		cfg.DiscoveryTTL = 10 * time.Minute
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Validator{
		cfg:   cfg,
		disc:  &discoverer{client: cfg.HTTPClient, ttl: cfg.DiscoveryTTL, backoff: 5 * time.Second, now: cfg.Now},
		cache: newTokenCache(cfg.CacheSize),
	}, nil
}

// Stats are counters for tests and benchmarks.
type Stats struct {
	Introspections int64 // introspection calls made
	Verifications  int64 // local JWT signature checks started
	Cached         int   // tokens in the cache
}

// Stats returns the counters.
func (v *Validator) Stats() Stats {
	return Stats{Introspections: v.introspections.Load(), Verifications: v.verifications.Load(), Cached: v.cache.len()}
}

// Validate checks an EHR access token and returns what it grants, or a
// *Failure whose Reason goes into the audit. In order:
//   - size (8 KiB) before anything else;
//   - the cache (SHA-256 of the token → context, until exp, or the
//     introspection TTL), if the issuer is still listed unchanged;
//   - the issuer, read unverified from the JWT, must be in the registry;
//   - jwks mode: RFC 9068 §4 verification with keys from that issuer's
//     jwks_uri only: typ at+jwt, alg, required claims, iss, aud = that
//     EHR's FHIR base, exp/nbf/iat, kid, signature;
//   - introspection mode: the JWT's typ, exp and aud are pre-checked
//     locally (no network for a token that cannot pass), then RFC 7662 at
//     that EHR decides. An opaque token is introspected only when exactly
//     one listed EHR uses introspection, so a token is never shown to an
//     EHR that may not have issued it.
//
// The patient and the client binding are the gate's to check.
func (v *Validator) Validate(ctx context.Context, raw string) (*smart.AccessContext, error) {
	if len(raw) > MaxTokenSize {
		return nil, failure(ReasonTooLarge, "", fmt.Errorf("%d bytes", len(raw)))
	}
	if raw == "" {
		return nil, failure(ReasonMalformed, "", errors.New("empty token"))
	}
	k := keyOf(raw)
	if ac := v.cache.get(k, v.cfg.Now(), v.cfg.Registry.Lookup); ac != nil {
		return ac, nil
	}
	if strings.Count(raw, ".") != 2 {
		return v.validateOpaque(ctx, raw, k)
	}
	iss, err := accesstoken.PeekIssuer(raw, MaxTokenSize)
	if err != nil {
		return nil, fromAccessToken(err, "")
	}
	ehr, ok := v.cfg.Registry.Lookup(iss)
	if !ok {
		return nil, failure(ReasonUntrusted, "", fmt.Errorf("iss %q is not in the trusted-EHR registry", clip(iss)))
	}
	if ehr.Mode == ModeJWKS {
		return v.verifyJWT(ctx, ehr, raw, k)
	}
	pre, f := v.precheck(ehr, raw)
	if f != nil {
		return nil, f
	}
	return v.introspect(ctx, ehr, raw, k, pre)
}

func (v *Validator) validateOpaque(ctx context.Context, raw string, k tokenKey) (*smart.AccessContext, error) {
	ehrs := v.cfg.Registry.introspectionEHRs()
	if len(ehrs) != 1 {
		return nil, failure(ReasonMalformed, "", fmt.Errorf("not a JWT, and %d EHRs use introspection", len(ehrs)))
	}
	for i := 0; i < len(raw); i++ { // RFC 6750 §2.1 b64token characters only
		c := raw[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/=", c) >= 0) {
			return nil, failure(ReasonMalformed, "", errors.New("character outside the bearer token syntax"))
		}
	}
	return v.introspect(ctx, ehrs[0], raw, k, nil)
}

// verifyJWT verifies a jwks-mode token locally and caches it until exp.
func (v *Validator) verifyJWT(ctx context.Context, ehr *EHR, raw string, k tokenKey) (*smart.AccessContext, error) {
	ep, err := v.disc.resolve(ctx, ehr, true, false, false)
	if err != nil {
		return nil, failure(ReasonEHRUnavailable, ehr.Issuer, err)
	}
	var fetchErr error
	keys := func(ctx context.Context, kid, alg string) (crypto.PublicKey, error) {
		v.verifications.Add(1)
		key, err := v.cfg.Keys.Key(ctx, ep.JWKSURI, kid, alg)
		if err != nil && !errors.Is(err, jwks.ErrKeyNotFound) && !errors.Is(err, jwks.ErrKeyMismatch) && !errors.Is(err, jwks.ErrUnsupportedAlg) {
			fetchErr = err
		}
		return key, err
	}
	claims, err := accesstoken.Verify(ctx, raw, keys, accesstoken.VerifyOptions{
		Issuer: ehr.Issuer, Audience: ehr.FHIRBase, Now: v.cfg.Now, Leeway: v.cfg.Leeway, MaxSize: MaxTokenSize,
	})
	if fetchErr != nil {
		return nil, failure(ReasonEHRUnavailable, ehr.Issuer, fetchErr)
	}
	if err != nil {
		return nil, fromAccessToken(err, ehr.Issuer)
	}
	scopes, err := smart.ParseScopes(claims.Scope)
	if err != nil {
		return nil, failure(ReasonMalformed, ehr.Issuer, fmt.Errorf("scope: %w", err))
	}
	ac := &smart.AccessContext{
		Issuer: ehr.Issuer, ClientID: claims.ClientID, Subject: claims.Subject, FHIRUser: claims.FHIRUser,
		Patient: claims.Patient, Encounter: claims.Encounter, Scopes: scopes, FHIRContext: claims.FHIRContext,
		IssuedAt: claims.IssuedAt.Time, ExpiresAt: claims.ExpiresAt.Time, TokenID: claims.ID,
	}
	v.cache.put(k, ac, claims.ExpiresAt.Time, ehr.fingerprint, v.cfg.Now())
	cp := *ac
	return &cp, nil
}

// fromAccessToken maps an accesstoken refusal to a Failure.
func fromAccessToken(err error, issuer string) *Failure {
	var ae *accesstoken.Error
	if !errors.As(err, &ae) {
		return failure(ReasonMalformed, issuer, err)
	}
	r := Reason(ae.Reason)
	switch ae.Reason {
	case accesstoken.ReasonConfiguration:
		r = ReasonEHRUnavailable
	case accesstoken.ReasonIssuer:
		if issuer == "" { // PeekIssuer: no iss at all
			r = ReasonMissingClaim
		}
	}
	return failure(r, issuer, err)
}

// jwtClaims are the claims pre-checked before introspection.
type jwtClaims struct {
	ExpiresAt *jwt.NumericDate `json:"exp"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	Audience  jwt.ClaimStrings `json:"aud"`
	ID        string           `json:"jti"`
}

// precheck refuses, without any network call, a JWT that introspection
// could only confirm as unusable here: not typ at+jwt (an id_token, a
// client assertion, a JWT refresh token), no exp or expired, not yet
// valid, or not for that EHR's FHIR base. Its claims are unverified; the
// introspection answer is what vouches for them.
func (v *Validator) precheck(ehr *EHR, raw string) (*jwtClaims, *Failure) {
	jt, err := jws.Decode(raw)
	if err != nil {
		return nil, failure(ReasonMalformed, ehr.Issuer, err)
	}
	var h struct {
		Typ string `json:"typ"`
	}
	var c jwtClaims
	if jws.UnmarshalObject(jt.Header, &h) != nil || jws.UnmarshalObject(jt.Payload, &c) != nil {
		return nil, failure(ReasonMalformed, ehr.Issuer, errors.New("header or claims are not JSON objects of the expected types"))
	}
	now := v.cfg.Now()
	switch {
	case !strings.EqualFold(h.Typ, accesstoken.TypeAccessToken) && !strings.EqualFold(h.Typ, accesstoken.TypeAccessTokenFull):
		return nil, failure(ReasonWrongType, ehr.Issuer, fmt.Errorf("typ %q", clip(h.Typ)))
	case c.ExpiresAt == nil:
		return nil, failure(ReasonMissingClaim, ehr.Issuer, errors.New("no exp"))
	case !now.Before(c.ExpiresAt.Time):
		return nil, failure(ReasonExpired, ehr.Issuer, fmt.Errorf("expired at %s", c.ExpiresAt.UTC().Format(time.RFC3339)))
	case c.NotBefore != nil && c.NotBefore.After(now.Add(v.cfg.Leeway)):
		return nil, failure(ReasonNotYetValid, ehr.Issuer, errors.New("nbf in the future"))
	case !slices.Contains(c.Audience, ehr.FHIRBase):
		return nil, failure(ReasonAudience, ehr.Issuer, fmt.Errorf("aud %q", clip(strings.Join(c.Audience, " "))))
	}
	return &c, nil
}
