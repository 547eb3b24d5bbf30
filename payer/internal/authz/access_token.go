package authz

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"gorm.io/gorm"

	"dtrsandbox/shared/accesstoken"
	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/smart"
)

// tokenSession is the fosite session of one token request: the expiry
// fosite sets and the jti and lifetime of the token issued, for the
// token log and the response.
type tokenSession struct {
	ExpiresAt map[fosite.TokenType]time.Time
	Subject   string
	JTI       string
	IssuedAt  time.Time
	Expiry    time.Time
}

var _ fosite.Session = (*tokenSession)(nil)

func newTokenSession() *tokenSession {
	return &tokenSession{ExpiresAt: map[fosite.TokenType]time.Time{}}
}

func (s *tokenSession) SetExpiresAt(key fosite.TokenType, exp time.Time) { s.ExpiresAt[key] = exp }
func (s *tokenSession) GetExpiresAt(key fosite.TokenType) time.Time      { return s.ExpiresAt[key] }
func (s *tokenSession) GetUsername() string                              { return "" }
func (s *tokenSession) GetSubject() string                               { return s.Subject }
func (s *tokenSession) Clone() fosite.Session {
	c := *s
	c.ExpiresAt = make(map[fosite.TokenType]time.Time, len(s.ExpiresAt))
	for k, v := range s.ExpiresAt {
		c.ExpiresAt[k] = v
	}
	return &c
}

// accessTokenStrategy issues RFC 9068 JWT access tokens (ES256, typ
// at+jwt) through accesstoken.Sign: iss = the payer's base URL, sub =
// client_id = the client, aud = the payer's FHIR base, the granted scope,
// iat, exp (at most the configured lifetime, never over 300 s) and a
// random jti. It implements fosite's oauth2.AccessTokenStrategy.
type accessTokenStrategy struct {
	key      *jwks.SigningKey
	issuer   string
	audience string
	lifetime time.Duration
	now      func() time.Time
}

var _ oauth2.AccessTokenStrategy = (*accessTokenStrategy)(nil)

// AccessTokenSignature is the JWS signature part, fosite's handle for a
// JWT access token. The payer never stores it.
func (a *accessTokenStrategy) AccessTokenSignature(_ context.Context, token string) string {
	if i := strings.LastIndexByte(token, '.'); i >= 0 {
		return token[i+1:]
	}
	return ""
}

func (a *accessTokenStrategy) GenerateAccessToken(_ context.Context, r fosite.Requester) (string, string, error) {
	sess, ok := r.GetSession().(*tokenSession)
	if !ok || r.GetClient() == nil {
		return "", "", errors.New("authz: unexpected token request state")
	}
	jti, err := randomID()
	if err != nil {
		return "", "", err
	}
	now := a.now().UTC().Truncate(time.Second)
	exp := now.Add(a.lifetime)
	clientID := r.GetClient().GetID()
	claims := &accesstoken.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    a.issuer,
			Subject:   clientID,
			Audience:  jwt.ClaimStrings{a.audience},
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        jti,
		},
		ClientID: clientID,
		Scope:    strings.Join(r.GetGrantedScopes(), " "),
	}
	tok, err := accesstoken.Sign(a.key, claims)
	if err != nil {
		return "", "", err
	}
	sess.JTI, sess.IssuedAt, sess.Expiry = jti, now, exp
	sess.SetExpiresAt(fosite.AccessToken, exp)
	return tok, a.AccessTokenSignature(context.Background(), tok), nil
}

// ValidateAccessToken is not used by the client_credentials flow; the
// gate verifies payer tokens with AccessTokenVerifier.
func (a *accessTokenStrategy) ValidateAccessToken(ctx context.Context, _ fosite.Requester, token string) error {
	return errors.New("authz: payer access tokens are verified by AccessTokenVerifier")
}

// issuedToken is one row of payer_access_tokens: which token was issued to
// whom, for how long. Never the token or its signature.
type issuedToken struct {
	JTI       string    `gorm:"column:jti;primaryKey"`
	ClientID  string    `gorm:"not null;index"`
	Scope     string    `gorm:"not null"`
	IssuedAt  time.Time `gorm:"not null"`
	ExpiresAt time.Time `gorm:"not null;index"`
}

func (issuedToken) TableName() string { return "payer_access_tokens" }

// TokenLog records every access token issued (its jti, client, scope and
// lifetime). It is fosite's AccessTokenStorage for the client_credentials
// handler: tokens are self-contained JWTs, so only creation is used.
type TokenLog struct{ db *gorm.DB }

var _ oauth2.AccessTokenStorage = (*TokenLog)(nil)

// NewTokenLog migrates payer_access_tokens.
func NewTokenLog(db *gorm.DB) (*TokenLog, error) {
	if db == nil {
		return nil, errors.New("authz: nil database")
	}
	if err := db.AutoMigrate(&issuedToken{}); err != nil {
		return nil, fmt.Errorf("authz: migrate payer_access_tokens: %w", err)
	}
	return &TokenLog{db: db}, nil
}

// CreateAccessTokenSession records the token fosite is about to return.
func (l *TokenLog) CreateAccessTokenSession(ctx context.Context, _ string, r fosite.Requester) error {
	sess, ok := r.GetSession().(*tokenSession)
	if !ok || sess.JTI == "" || r.GetClient() == nil {
		return errors.New("authz: token session without jti")
	}
	row := issuedToken{
		JTI: sess.JTI, ClientID: r.GetClient().GetID(), Scope: strings.Join(r.GetGrantedScopes(), " "),
		IssuedAt: sess.IssuedAt.UTC(), ExpiresAt: sess.Expiry.UTC(),
	}
	if err := l.db.WithContext(ctx).Create(&row).Error; err != nil {
		return fmt.Errorf("authz: record access token: %w", err)
	}
	return nil
}

// GetAccessTokenSession is not offered: payer tokens are verified from
// their signature, not looked up.
func (l *TokenLog) GetAccessTokenSession(context.Context, string, fosite.Session) (fosite.Requester, error) {
	return nil, fosite.ErrNotFound
}

// DeleteAccessTokenSession is not offered (no revocation endpoint).
func (l *TokenLog) DeleteAccessTokenSession(context.Context, string) error {
	return fosite.ErrNotFound
}

// Count is the number of tokens issued to clientID ("" for all clients).
func (l *TokenLog) Count(ctx context.Context, clientID string) (int64, error) {
	q := l.db.WithContext(ctx).Model(&issuedToken{})
	if clientID != "" {
		q = q.Where("client_id = ?", clientID)
	}
	var n int64
	err := q.Count(&n).Error
	return n, err
}

// Purge deletes the records of tokens that expired before the given time.
func (l *TokenLog) Purge(ctx context.Context, before time.Time) error {
	return l.db.WithContext(ctx).Where("expires_at < ?", before.UTC()).Delete(&issuedToken{}).Error
}

// PayerToken is a verified payer access token.
type PayerToken struct {
	ClientID  string
	Scopes    smart.Scopes
	ExpiresAt time.Time
	ID        string
}

// AccessTokenVerifier verifies the payer's own access tokens (RFC 9068 §4
// as the resource server): typ at+jwt, ES256 only, the payer's own key
// only, iss = the payer, aud = its FHIR base, unexpired, sub = client_id.
// A verified token is remembered by its SHA-256 until its exp, so an app
// reusing its token for many requests costs one signature check, not one
// per request (payer tokens cannot be revoked, so nothing is lost).
type AccessTokenVerifier struct {
	kid  string
	pub  crypto.PublicKey
	opts accesstoken.VerifyOptions
	now  func() time.Time

	mu    sync.RWMutex
	cache map[[32]byte]*PayerToken

	verifications atomic.Int64 // signature checks started
}

const maxCachedPayerTokens = 10000

// NewAccessTokenVerifier verifies tokens signed with key.
func NewAccessTokenVerifier(key *jwks.SigningKey, issuer, audience string, now func() time.Time) *AccessTokenVerifier {
	if now == nil {
		now = time.Now
	}
	return &AccessTokenVerifier{
		kid: key.KID, pub: key.Private.Public(), now: now, cache: map[[32]byte]*PayerToken{},
		opts: accesstoken.VerifyOptions{
			Issuer: issuer, Audience: audience, Algorithms: []string{key.Alg},
			Now: now, Leeway: 5 * time.Second, MaxSize: accesstoken.DefaultMaxSize,
		},
	}
}

// Verify returns the token's client and scopes, or an *accesstoken.Error
// whose Reason says why it was refused.
func (v *AccessTokenVerifier) Verify(ctx context.Context, raw string) (*PayerToken, error) {
	if len(raw) > accesstoken.DefaultMaxSize {
		return nil, &accesstoken.Error{Reason: accesstoken.ReasonTooLarge, Err: fmt.Errorf("%d bytes", len(raw))}
	}
	k := sha256.Sum256([]byte(raw))
	now := v.now()
	v.mu.RLock()
	pt := v.cache[k]
	v.mu.RUnlock()
	if pt != nil {
		if now.Before(pt.ExpiresAt) {
			cp := *pt
			return &cp, nil
		}
		v.mu.Lock()
		delete(v.cache, k)
		v.mu.Unlock()
	}
	pt, err := v.verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	if len(v.cache) >= maxCachedPayerTokens {
		for key, t := range v.cache {
			if !now.Before(t.ExpiresAt) || len(v.cache) >= maxCachedPayerTokens {
				delete(v.cache, key)
			}
		}
	}
	v.cache[k] = pt
	v.mu.Unlock()
	cp := *pt
	return &cp, nil
}

// CachedClient reports the client of raw when raw is a token this verifier
// has already verified and that has not expired: one SHA-256 and one map
// lookup, no decoding and no signature check. A token it has not seen, or
// one that has expired, is ("", false). The gate keys its rate limit on it,
// so a flood of forged tokens naming a client cannot drain that client's
// bucket (only a token the payer really issued and verified earns one).
func (v *AccessTokenVerifier) CachedClient(raw string) (string, bool) {
	if raw == "" || len(raw) > accesstoken.DefaultMaxSize {
		return "", false
	}
	k := sha256.Sum256([]byte(raw))
	v.mu.RLock()
	pt := v.cache[k]
	v.mu.RUnlock()
	if pt == nil || !v.now().Before(pt.ExpiresAt) {
		return "", false
	}
	return pt.ClientID, true
}

// Verifications is the number of signature checks started (cache misses),
// for tests and benchmarks.
func (v *AccessTokenVerifier) Verifications() int64 { return v.verifications.Load() }

func (v *AccessTokenVerifier) verify(ctx context.Context, raw string) (*PayerToken, error) {
	v.verifications.Add(1)
	c, err := accesstoken.Verify(ctx, raw, v.key, v.opts)
	if err != nil {
		return nil, err
	}
	if c.Subject != c.ClientID {
		return nil, &accesstoken.Error{Reason: accesstoken.ReasonMissingClaim, Err: errors.New("sub is not the client_id")}
	}
	scopes, err := smart.ParseScopes(c.Scope)
	if err != nil {
		return nil, &accesstoken.Error{Reason: accesstoken.ReasonMalformed, Err: err}
	}
	return &PayerToken{ClientID: c.ClientID, Scopes: scopes, ExpiresAt: c.ExpiresAt.Time, ID: c.ID}, nil
}

func (v *AccessTokenVerifier) key(_ context.Context, kid, alg string) (crypto.PublicKey, error) {
	if kid != v.kid {
		return nil, fmt.Errorf("%w: %q is not the payer's token key", jwks.ErrKeyNotFound, kid)
	}
	return v.pub, nil
}
