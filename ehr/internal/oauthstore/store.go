// Package oauthstore is the EHR authorization server's persistence: a gorm
// implementation of the storage interfaces of github.com/ory/fosite
// (fosite.ClientManager, oauth2.CoreStorage, oauth2.TokenRevocationStorage,
// pkce.PKCERequestStorage, openid.OpenIDConnectRequestStorage and
// storage.Transactional) plus the client registry (RFC 7591) that the
// client-assertion verifier (clientauth.ClientStore) reads.
//
// Every grant is stored as JSON (the fosite request with its session) under
// the token's signature, never the token itself: authorization codes and
// refresh tokens are keyed by their HMAC signature, access tokens by the
// SHA-256 of the JWT, OpenID Connect sessions by the SHA-256 of the code. A
// database dump therefore yields no usable credential. All tokens of one
// grant share the fosite request ID, which is how a replayed code or refresh
// token revokes the whole family (RFC 6749 §4.1.2 and §10.4; OAuth 2.0
// Security BCP §4.14).
package oauthstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ory/fosite"
	"gorm.io/gorm"
)

// Table names, exported so tests can count rows.
const (
	TableClients        = "oauth_clients"
	TableAuthorizeCodes = "oauth_authorize_codes"
	TablePKCE           = "oauth_pkce_requests"
	TableOIDCSessions   = "oauth_oidc_sessions"
	TableAccessTokens   = "oauth_access_tokens"
	TableRefreshTokens  = "oauth_refresh_tokens"
)

// Options configures a Store.
type Options struct {
	// NewSession returns an empty session of the type the authorization
	// server stores (stored sessions are decoded into it). Required.
	NewSession func() fosite.Session
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Store is the gorm-backed fosite storage. It is safe for concurrent use.
type Store struct {
	db         *gorm.DB
	newSession func() fosite.Session
	now        func() time.Time
}

// New migrates the tables and returns a Store.
func New(db *gorm.DB, opts Options) (*Store, error) {
	if db == nil {
		return nil, errors.New("oauthstore: nil database")
	}
	if opts.NewSession == nil {
		return nil, errors.New("oauthstore: Options.NewSession is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := db.AutoMigrate(&clientRow{}, &authorizeCodeRow{}, &pkceRow{}, &oidcSessionRow{},
		&accessTokenRow{}, &refreshTokenRow{}); err != nil {
		return nil, fmt.Errorf("oauthstore: migrate: %w", err)
	}
	return &Store{db: db, newSession: opts.NewSession, now: opts.Now}, nil
}

// txKey carries the open transaction in a context (storage.Transactional).
type txKey struct{}

// BeginTX opens a transaction that every storage call made with the
// returned context joins (fosite's storage.Transactional). On SQLite it is a
// BEGIN IMMEDIATE (see database.SQLiteDSN), so concurrent grants serialise.
func (s *Store) BeginTX(ctx context.Context) (context.Context, error) {
	if _, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		return nil, errors.New("oauthstore: transaction already open")
	}
	tx := s.db.WithContext(ctx).Begin()
	if tx.Error != nil {
		return nil, fmt.Errorf("oauthstore: begin: %w", tx.Error)
	}
	return context.WithValue(ctx, txKey{}, tx), nil
}

// Commit commits the transaction opened by BeginTX.
func (s *Store) Commit(ctx context.Context) error {
	tx, ok := ctx.Value(txKey{}).(*gorm.DB)
	if !ok {
		return errors.New("oauthstore: commit without a transaction")
	}
	if err := tx.Commit().Error; err != nil {
		return fmt.Errorf("oauthstore: commit: %w", err)
	}
	return nil
}

// Rollback abandons the transaction opened by BeginTX.
func (s *Store) Rollback(ctx context.Context) error {
	tx, ok := ctx.Value(txKey{}).(*gorm.DB)
	if !ok {
		return errors.New("oauthstore: rollback without a transaction")
	}
	if err := tx.Rollback().Error; err != nil && !errors.Is(err, gorm.ErrInvalidTransaction) {
		return fmt.Errorf("oauthstore: rollback: %w", err)
	}
	return nil
}

// conn is the open transaction of ctx, or the pool.
func (s *Store) conn(ctx context.Context) *gorm.DB {
	if tx, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		return tx
	}
	return s.db.WithContext(ctx)
}

// DB is the underlying database (for the services that share it).
func (s *Store) DB() *gorm.DB { return s.db }

// Purge deletes grants that can no longer be used: expired authorization
// codes, PKCE and OpenID Connect sessions, and access and refresh tokens
// past their expiry. It is safe to run at any time.
func (s *Store) Purge(ctx context.Context) error {
	now := s.now().UTC()
	for _, m := range []any{&authorizeCodeRow{}, &pkceRow{}, &oidcSessionRow{}, &accessTokenRow{}, &refreshTokenRow{}} {
		if err := s.db.WithContext(ctx).Where("expires_at < ?", now).Delete(m).Error; err != nil {
			return fmt.Errorf("oauthstore: purge: %w", err)
		}
	}
	return nil
}
