package oauthstore

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/ory/fosite"
	"gorm.io/gorm"
)

// RefreshScoper is implemented by sessions that carry the scope a refresh
// token keeps when the access token issued beside it was narrowed (RFC 6749
// §6: "the refresh token scope MUST be identical to that of the refresh token
// included by the client in the request"). When it returns a non-empty list,
// CreateRefreshTokenSession stores it as the refresh token's granted scope.
type RefreshScoper interface {
	RefreshTokenScopes() []string
}

// --- authorization codes (oauth2.AuthorizeCodeStorage) ----------------------

// CreateAuthorizeCodeSession stores the authorization request behind a code.
func (s *Store) CreateAuthorizeCodeSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.createGrant(ctx, &authorizeCodeRow{}, signature, r, fosite.AuthorizeCode)
}

// GetAuthorizeCodeSession returns the request behind a code. A code already
// exchanged returns the request together with fosite.ErrInvalidatedAuthorizeCode,
// so that fosite revokes every token the first exchange issued.
func (s *Store) GetAuthorizeCodeSession(ctx context.Context, signature string, _ fosite.Session) (fosite.Requester, error) {
	return s.getGrant(ctx, &authorizeCodeRow{}, signature, fosite.ErrInvalidatedAuthorizeCode)
}

// InvalidateAuthorizeCodeSession marks a code used. It succeeds for exactly
// one caller: a second, concurrent exchange of the same code finds it
// already inactive and gets fosite.ErrInvalidatedAuthorizeCode.
func (s *Store) InvalidateAuthorizeCodeSession(ctx context.Context, signature string) error {
	res := s.conn(ctx).Model(&authorizeCodeRow{}).
		Where("signature = ? AND active = ?", signature, true).
		Update("active", false)
	if res.Error != nil {
		return fmt.Errorf("oauthstore: invalidate code: %w", res.Error)
	}
	if res.RowsAffected != 1 {
		return fosite.ErrInvalidatedAuthorizeCode
	}
	return nil
}

// --- PKCE (pkce.PKCERequestStorage) -------------------------------------

// CreatePKCERequestSession stores the code challenge of a code.
func (s *Store) CreatePKCERequestSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.createGrant(ctx, &pkceRow{}, signature, r, fosite.AuthorizeCode)
}

// GetPKCERequestSession returns the request holding the code challenge.
func (s *Store) GetPKCERequestSession(ctx context.Context, signature string, _ fosite.Session) (fosite.Requester, error) {
	return s.getGrant(ctx, &pkceRow{}, signature, nil)
}

// DeletePKCERequestSession removes the challenge: fosite does so before it
// compares the verifier, so a wrong verifier spends the code.
func (s *Store) DeletePKCERequestSession(ctx context.Context, signature string) error {
	return s.delete(ctx, &pkceRow{}, signature)
}

// --- OpenID Connect (openid.OpenIDConnectRequestStorage) ----------------

// codeKey is how an OpenID Connect session is keyed: fosite passes the code
// itself, which is never stored.
func codeKey(code string) string {
	sum := sha256.Sum256([]byte(code))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// CreateOpenIDConnectSession stores the OpenID Connect request of a code.
func (s *Store) CreateOpenIDConnectSession(ctx context.Context, authorizeCode string, r fosite.Requester) error {
	return s.createGrant(ctx, &oidcSessionRow{}, codeKey(authorizeCode), r, fosite.AuthorizeCode)
}

// GetOpenIDConnectSession returns the OpenID Connect request of a code, or
// fosite.ErrNotFound (openid.ErrNoSessionFound).
func (s *Store) GetOpenIDConnectSession(ctx context.Context, authorizeCode string, _ fosite.Requester) (fosite.Requester, error) {
	return s.getGrant(ctx, &oidcSessionRow{}, codeKey(authorizeCode), nil)
}

// DeleteOpenIDConnectSession removes it once the ID token is issued.
func (s *Store) DeleteOpenIDConnectSession(ctx context.Context, authorizeCode string) error {
	return s.delete(ctx, &oidcSessionRow{}, codeKey(authorizeCode))
}

// --- access tokens (oauth2.AccessTokenStorage) ----------------------------

// CreateAccessTokenSession stores the grant behind an access token.
func (s *Store) CreateAccessTokenSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.createGrant(ctx, &accessTokenRow{}, signature, r, fosite.AccessToken)
}

// GetAccessTokenSession returns the grant behind an access token;
// fosite.ErrNotFound if unknown, fosite.ErrInactiveToken once revoked.
func (s *Store) GetAccessTokenSession(ctx context.Context, signature string, _ fosite.Session) (fosite.Requester, error) {
	var row accessTokenRow
	if err := s.first(ctx, &row, signature); err != nil {
		return nil, err
	}
	if !row.Active {
		return nil, fosite.ErrInactiveToken
	}
	return s.decodeGrant(ctx, &row.GrantFields)
}

// DeleteAccessTokenSession removes an access token.
func (s *Store) DeleteAccessTokenSession(ctx context.Context, signature string) error {
	return s.delete(ctx, &accessTokenRow{}, signature)
}

// --- refresh tokens (oauth2.RefreshTokenStorage) --------------------------

// CreateRefreshTokenSession stores the grant behind a refresh token. If the
// session is a RefreshScoper with scopes, those are the refresh token's scope.
func (s *Store) CreateRefreshTokenSession(ctx context.Context, signature, accessSignature string, r fosite.Requester) error {
	g, err := s.encodeGrant(signature, r, fosite.RefreshToken)
	if err != nil {
		return err
	}
	if rs, ok := r.GetSession().(RefreshScoper); ok {
		if scopes := rs.RefreshTokenScopes(); len(scopes) > 0 {
			g.GrantedScopes = strings.Join(scopes, " ")
		}
	}
	return s.create(ctx, &refreshTokenRow{GrantFields: g, AccessSignature: accessSignature})
}

// GetRefreshTokenSession returns the grant behind a refresh token. A rotated
// or revoked token returns the request together with fosite.ErrInactiveToken,
// which fosite treats as reuse and answers by revoking the whole family.
func (s *Store) GetRefreshTokenSession(ctx context.Context, signature string, _ fosite.Session) (fosite.Requester, error) {
	return s.getGrant(ctx, &refreshTokenRow{}, signature, fosite.ErrInactiveToken)
}

// DeleteRefreshTokenSession removes a refresh token.
func (s *Store) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	return s.delete(ctx, &refreshTokenRow{}, signature)
}

// RotateRefreshToken retires the refresh token being exchanged and the
// access tokens of its grant, before fosite stores their successors in the
// same transaction. Only one exchange of a refresh token can win: a
// concurrent second one finds it inactive (fosite.ErrInactiveToken).
func (s *Store) RotateRefreshToken(ctx context.Context, requestID, signature string) error {
	res := s.conn(ctx).Model(&refreshTokenRow{}).
		Where("signature = ? AND request_id = ? AND active = ?", signature, requestID, true).
		Update("active", false)
	if res.Error != nil {
		return fmt.Errorf("oauthstore: rotate refresh token: %w", res.Error)
	}
	if res.RowsAffected != 1 {
		return fosite.ErrInactiveToken
	}
	return s.RevokeAccessToken(ctx, requestID)
}

// --- revocation (oauth2.TokenRevocationStorage, RFC 7009) -----------------

// RevokeRefreshToken deactivates every refresh token of the grant requestID.
func (s *Store) RevokeRefreshToken(ctx context.Context, requestID string) error {
	if err := s.conn(ctx).Model(&refreshTokenRow{}).
		Where("request_id = ? AND active = ?", requestID, true).
		Update("active", false).Error; err != nil {
		return fmt.Errorf("oauthstore: revoke refresh tokens: %w", err)
	}
	return nil
}

// RevokeAccessToken deactivates every access token of the grant requestID.
// The rows stay (inactive) until Purge, as a record of the revocation.
func (s *Store) RevokeAccessToken(ctx context.Context, requestID string) error {
	if err := s.conn(ctx).Model(&accessTokenRow{}).
		Where("request_id = ? AND active = ?", requestID, true).
		Update("active", false).Error; err != nil {
		return fmt.Errorf("oauthstore: revoke access tokens: %w", err)
	}
	return nil
}

// --- helpers --------------------------------------------------------------

// grantRow is a row of one of the grant tables: every row type embeds
// GrantFields, whose grant method it promotes.
type grantRow interface {
	grant() *GrantFields
}

func (g *GrantFields) grant() *GrantFields { return g }

// createGrant stores r under signature in the table of row (an empty row of
// that table); expiresFor is as for encodeGrant.
func (s *Store) createGrant(ctx context.Context, row grantRow, signature string, r fosite.Requester, expiresFor fosite.TokenType) error {
	g, err := s.encodeGrant(signature, r, expiresFor)
	if err != nil {
		return err
	}
	*row.grant() = g
	return s.create(ctx, row)
}

// getGrant loads the row stored under signature into row and decodes its
// request. When inactive is not nil, a row no longer active returns the
// request together with inactive (fosite's reuse signal).
func (s *Store) getGrant(ctx context.Context, row grantRow, signature string, inactive error) (fosite.Requester, error) {
	if err := s.first(ctx, row, signature); err != nil {
		return nil, err
	}
	g := row.grant()
	req, err := s.decodeGrant(ctx, g)
	if err != nil {
		return nil, err
	}
	if inactive != nil && !g.Active {
		return req, inactive
	}
	return req, nil
}

func (s *Store) create(ctx context.Context, row any) error {
	if err := s.conn(ctx).Create(row).Error; err != nil {
		return fmt.Errorf("oauthstore: store grant: %w", err)
	}
	return nil
}

// first loads the row with signature into dst, or fosite.ErrNotFound.
func (s *Store) first(ctx context.Context, dst any, signature string) error {
	err := s.conn(ctx).Where("signature = ?", signature).Take(dst).Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gorm.ErrRecordNotFound):
		return fosite.ErrNotFound
	default:
		return fmt.Errorf("oauthstore: load grant: %w", err)
	}
}

func (s *Store) delete(ctx context.Context, model any, signature string) error {
	if err := s.conn(ctx).Where("signature = ?", signature).Delete(model).Error; err != nil {
		return fmt.Errorf("oauthstore: delete grant: %w", err)
	}
	return nil
}
