package authz

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/ory/fosite"

	"dtrsandbox/shared/accesstoken"
	"dtrsandbox/shared/jwks"
)

// accessTokenStrategy is fosite's oauth2.AccessTokenStrategy issuing RFC 9068
// JWT access tokens (typ at+jwt, ES256, kid) through shared/accesstoken:
// iss and aud are the FHIR base; sub, client_id, scope, iat, exp and jti are
// always present; patient, encounter, fhirUser and fhirContext carry the
// SMART launch context (SMART App Launch 2.2, "Launch context arrives with
// your access_token").
//
// fosite still stores the grant under the token's signature (here the
// SHA-256 of the whole JWT), and every verification looks the row up, so a
// revoked token is refused at once even though its signature is still good.
type accessTokenStrategy struct {
	key    *jwks.SigningKey
	issuer string
	now    func() time.Time

	// verified remembers the claims of tokens whose signature and claims
	// already checked out, by SHA-256 of the token, until their exp: an app
	// reading the chart with one token pays one ECDSA verification, not one
	// per request. The grant lookup (revocation) still runs every time.
	verified claimsCache
}

// AccessTokenSignature is the storage key of a token: base64url SHA-256 of
// the whole compact JWT, so a token with any byte changed has no grant.
func (s *accessTokenStrategy) AccessTokenSignature(_ context.Context, token string) string {
	return tokenSignature(token)
}

func tokenSignature(token string) string { return digestSignature(tokenDigest(token)) }

// tokenDigest is the SHA-256 of a token: the claims cache key, and (as
// base64url) its storage key.
func tokenDigest(token string) [32]byte { return sha256.Sum256([]byte(token)) }

func digestSignature(digest [32]byte) string {
	return base64.RawURLEncoding.EncodeToString(digest[:])
}

// GenerateAccessToken signs the access token of requester.
func (s *accessTokenStrategy) GenerateAccessToken(_ context.Context, requester fosite.Requester) (string, string, error) {
	sess, ok := requester.GetSession().(*Session)
	if !ok {
		return "", "", errors.New("authz: session is not an authz.Session")
	}
	now := s.now().UTC()
	exp := sess.GetExpiresAt(fosite.AccessToken)
	if exp.IsZero() || !exp.After(now) {
		return "", "", errors.New("authz: access token expiry not set")
	}
	sub := sess.GetSubject()
	if sub == "" {
		return "", "", errors.New("authz: session has no subject")
	}
	jti, err := randomString(16)
	if err != nil {
		return "", "", err
	}
	claims := &accesstoken.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.issuer,
			Subject:   sub,
			Audience:  jwt.ClaimStrings{s.issuer},
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        jti,
		},
		ClientID:    requester.GetClient().GetID(),
		Scope:       strings.Join(requester.GetGrantedScopes(), " "),
		Patient:     sess.SMART.Patient,
		Encounter:   sess.SMART.Encounter,
		FHIRUser:    sess.SMART.FHIRUser,
		FHIRContext: sess.SMART.FHIRContext,
	}
	token, err := accesstoken.Sign(s.key, claims)
	if err != nil {
		return "", "", err
	}
	return token, tokenSignature(token), nil
}

// ValidateAccessToken verifies the JWT (signature, typ, iss, aud, exp) and
// that it belongs to the stored grant requester.
func (s *accessTokenStrategy) ValidateAccessToken(ctx context.Context, requester fosite.Requester, token string) error {
	claims, err := s.verify(ctx, token)
	if err != nil {
		return err
	}
	if requester != nil && requester.GetClient() != nil && claims.ClientID != requester.GetClient().GetID() {
		return fosite.ErrRequestUnauthorized.WithDebug("client_id of the token and of its grant differ")
	}
	return nil
}

// verify checks the JWT alone, with fosite's error types.
func (s *accessTokenStrategy) verify(ctx context.Context, token string) (*accesstoken.Claims, error) {
	return s.verifyDigest(ctx, token, tokenDigest(token))
}

// verifyDigest is verify for a caller that already holds tokenDigest(token).
func (s *accessTokenStrategy) verifyDigest(ctx context.Context, token string, key [32]byte) (*accesstoken.Claims, error) {
	now := time.Now
	if s.now != nil {
		now = s.now
	}
	if c, ok := s.verified.get(key, now()); ok {
		return c, nil
	}
	claims, err := accesstoken.Verify(ctx, token, s.keyFunc, accesstoken.VerifyOptions{
		Issuer:     s.issuer,
		Audience:   s.issuer,
		Algorithms: []string{s.key.Alg},
		Now:        s.now,
	})
	if err != nil {
		var ae *accesstoken.Error
		if errors.As(err, &ae) && ae.Reason == accesstoken.ReasonExpired {
			return nil, fosite.ErrTokenExpired.WithWrap(err)
		}
		return nil, fosite.ErrTokenSignatureMismatch.WithWrap(err)
	}
	s.verified.put(key, claims, now())
	return claims, nil
}

// claimsCache is a bounded map of verified claims, each valid until its exp.
type claimsCache struct {
	mu sync.Mutex
	m  map[[32]byte]*accesstoken.Claims
}

const maxVerifiedTokens = 10000

// get returns a copy of the claims for key while they are unexpired.
func (c *claimsCache) get(key [32]byte, now time.Time) (*accesstoken.Claims, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, ok := c.m[key]
	if !ok {
		return nil, false
	}
	if cl.ExpiresAt == nil || !now.Before(cl.ExpiresAt.Time) {
		delete(c.m, key) // expired: the full check answers (and says why)
		return nil, false
	}
	cp := *cl
	return &cp, true
}

// put remembers claims; when full it drops expired entries, then everything.
func (c *claimsCache) put(key [32]byte, cl *accesstoken.Claims, now time.Time) {
	if cl.ExpiresAt == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[[32]byte]*accesstoken.Claims{}
	}
	if len(c.m) >= maxVerifiedTokens {
		for k, v := range c.m {
			if !now.Before(v.ExpiresAt.Time) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxVerifiedTokens {
			clear(c.m)
		}
	}
	cp := *cl
	c.m[key] = &cp
}

// keyFunc knows one key: the EHR's own.
func (s *accessTokenStrategy) keyFunc(_ context.Context, kid, alg string) (crypto.PublicKey, error) {
	if kid != s.key.KID || alg != s.key.Alg {
		return nil, fmt.Errorf("%w: %q", jwks.ErrKeyNotFound, kid)
	}
	return s.key.Private.Public(), nil
}

// randomString is n random bytes, base64url.
func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("authz: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
