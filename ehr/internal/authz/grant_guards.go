package authz

import (
	"context"
	"errors"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/pkce"

	"dtrsandbox/ehr/internal/oauthstore"
	"dtrsandbox/shared/smart"
)

// Refresh token family limits. A refresh token lives RefreshTokenTTL from
// its issue (sliding), but a family (every token descending from one
// authorization) never outlives its grant by more than these.
const (
	RefreshTokenTTL     = 30 * 24 * time.Hour
	OfflineFamilyMaxAge = 90 * 24 * time.Hour
	// OnlineFamilyMaxAge bounds online_access (SMART 2.2: valid while the
	// user is online): the EHR has no session to watch, so a work shift.
	OnlineFamilyMaxAge = 12 * time.Hour
)

// familyDeadline is when the refresh token family of a grant ends.
func familyDeadline(sess *Session) time.Time {
	if sess.Offline {
		return sess.GrantedAt.Add(OfflineFamilyMaxAge)
	}
	return sess.GrantedAt.Add(OnlineFamilyMaxAge)
}

// capRefreshExpiry bounds the next refresh token by the family deadline.
func capRefreshExpiry(sess *Session) {
	deadline := familyDeadline(sess)
	if exp := sess.GetExpiresAt(fosite.RefreshToken); exp.IsZero() || exp.After(deadline) {
		sess.SetExpiresAt(fosite.RefreshToken, deadline)
	}
}

func sessionOf(r fosite.Requester) (*Session, error) {
	sess, ok := r.GetSession().(*Session)
	if !ok || sess == nil {
		return nil, fosite.ErrServerError.WithDebug("session is not an authz.Session")
	}
	return sess, nil
}

// invalidScope is invalid_scope for a scope that does not parse, with the
// parser's hint (*smart.ScopeError) when there is one.
func invalidScope(err error) *fosite.RFC6749Error {
	var se *smart.ScopeError
	if errors.As(err, &se) {
		return fosite.ErrInvalidScope.WithHint(se.Hint).WithWrap(err)
	}
	return fosite.ErrInvalidScope.WithWrap(err)
}

// revokeFamily revokes every token of the grant requestID.
func revokeFamily(ctx context.Context, store *oauthstore.Store, requestID string) error {
	return errors.Join(store.RevokeAccessToken(ctx, requestID), store.RevokeRefreshToken(ctx, requestID))
}

// codeGrant is fosite's authorization_code token handler (RFC 6749 §4.1.3)
// with two additions: the refresh token family deadline, and a concurrent
// second exchange of the same code (which loses the race in
// InvalidateAuthorizeCodeSession) answered like any reuse: invalid_grant,
// and every token of the grant revoked (RFC 6749 §4.1.2).
type codeGrant struct {
	*oauth2.AuthorizeExplicitGrantHandler
	store *oauthstore.Store
}

func (g *codeGrant) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if err := g.AuthorizeExplicitGrantHandler.HandleTokenEndpointRequest(ctx, r); err != nil {
		return err
	}
	sess, err := sessionOf(r)
	if err != nil {
		return err
	}
	capRefreshExpiry(sess)
	return nil
}

func (g *codeGrant) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	err := g.AuthorizeExplicitGrantHandler.PopulateTokenEndpointResponse(ctx, r, resp)
	if err != nil && errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		if rerr := revokeFamily(ctx, g.store, r.GetID()); rerr != nil {
			return fosite.ErrServerError.WithWrap(errors.Join(err, rerr))
		}
		return fosite.ErrInvalidGrant.WithHint("The authorization code has already been used.").WithWrap(err)
	}
	return err
}

// pkceGrant is fosite's PKCE handler (RFC 7636 §4.6) with one addition at
// the token endpoint: a refused code_verifier also spends the authorization
// code, and if another exchange of the same code has already issued tokens,
// revokes them (RFC 6749 §4.1.2: a code used twice revokes what it bought).
//
// fosite deletes the PKCE binding before it compares the verifier. Without
// this guard, two concurrent exchanges of one code could both pass the
// code check, the first delete the binding and go on to issue tokens, and
// the second fail for want of the binding without revoking anything: a
// code presented twice would leave the first exchange's tokens active.
// With it, whichever of the two requests writes second sees the other's
// write: either the issuing exchange finds the code spent and fails, or the
// refused one finds the code spent and revokes the family.
type pkceGrant struct {
	*pkce.Handler
	codes oauth2.AuthorizeCodeStrategy
	store *oauthstore.Store
}

func (g *pkceGrant) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	err := g.Handler.HandleTokenEndpointRequest(ctx, r)
	if err == nil || errors.Is(err, fosite.ErrUnknownRequest) || !r.GetGrantTypes().ExactOne("authorization_code") {
		return err
	}
	// The code handler ran first and found an active code of this client:
	// r carries its grant's request ID.
	sig := g.codes.AuthorizeCodeSignature(ctx, r.GetRequestForm().Get("code"))
	switch ierr := g.store.InvalidateAuthorizeCodeSession(ctx, sig); {
	case ierr == nil:
		return err
	case errors.Is(ierr, fosite.ErrInvalidatedAuthorizeCode):
		if rerr := revokeFamily(ctx, g.store, r.GetID()); rerr != nil {
			return fosite.ErrServerError.WithWrap(errors.Join(err, rerr))
		}
		return err
	default:
		return fosite.ErrServerError.WithWrap(errors.Join(err, ierr))
	}
}

// refreshGrant is fosite's refresh_token handler (RFC 6749 §6) with
// rotation and reuse detection (fosite, via oauthstore), plus:
//   - the family deadline (OfflineFamilyMaxAge / OnlineFamilyMaxAge);
//   - a "scope" parameter may only narrow: every scope asked for must be
//     covered by the scope originally granted (invalid_scope otherwise);
//     the new access token gets the narrower scope, the new refresh token
//     keeps the original one;
//   - a concurrent second use of the same refresh token (which loses the
//     race in RotateRefreshToken) is reuse: invalid_grant, family revoked.
type refreshGrant struct {
	*oauth2.RefreshTokenGrantHandler
	store *oauthstore.Store
	now   func() time.Time
}

func (g *refreshGrant) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if err := g.RefreshTokenGrantHandler.HandleTokenEndpointRequest(ctx, r); err != nil {
		return err
	}
	sess, err := sessionOf(r)
	if err != nil {
		return err
	}
	granted := append(fosite.Arguments(nil), r.GetGrantedScopes()...)
	if !g.now().Before(familyDeadline(sess)) {
		return fosite.ErrInvalidGrant.WithHint("The refresh token has reached the maximum age of its grant; authorize again.")
	}
	capRefreshExpiry(sess)
	sess.RefreshScopes = nil
	raw, asked := r.GetRequestForm()["scope"]
	if !asked {
		return nil
	}
	requested, perr := smart.ParseScopes(raw[0])
	if perr != nil {
		return invalidScope(perr)
	}
	if requested.Len() == 0 {
		return fosite.ErrInvalidScope.WithHint("The scope parameter is empty; omit it to keep the granted scope.")
	}
	for _, s := range requested.Strings() {
		if !smart.ScopeStrategy(granted, s) {
			return fosite.ErrInvalidScope.WithHintf("Scope '%s' was not granted to this refresh token; a refresh can only narrow the scope (RFC 6749 section 6).", clip(s))
		}
	}
	ar, ok := r.(*fosite.AccessRequest)
	if !ok {
		return fosite.ErrServerError.WithDebug("access request of an unexpected type")
	}
	sess.RefreshScopes = granted
	ar.GrantedScope = fosite.Arguments(requested.Strings())
	return nil
}

func (g *refreshGrant) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	err := g.RefreshTokenGrantHandler.PopulateTokenEndpointResponse(ctx, r, resp)
	if err != nil && errors.Is(err, fosite.ErrInactiveToken) {
		if rerr := revokeFamily(ctx, g.store, r.GetID()); rerr != nil {
			return fosite.ErrServerError.WithWrap(errors.Join(err, rerr))
		}
		return fosite.ErrInvalidGrant.WithHint("The refresh token was already used.").WithWrap(err)
	}
	return err
}

// clientCredentialsGrant is fosite's client_credentials handler (RFC 6749
// §4.4, SMART Backend Services) restricted to system/ scopes: a scope is
// required, every scope must be a well-formed system-level clinical scope
// covered by the client's registration, and the token's subject is the
// client itself (RFC 9068 §2.2). fosite 0.49 checks the scopes but does not
// grant them; this handler does.
type clientCredentialsGrant struct {
	*oauth2.ClientCredentialsGrantHandler
}

func (g *clientCredentialsGrant) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if !g.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	if !r.GetClient().GetGrantTypes().Has("client_credentials") {
		return fosite.ErrUnauthorizedClient.WithHint("The client is not registered for the client_credentials grant.")
	}
	if err := g.ClientCredentialsGrantHandler.HandleTokenEndpointRequest(ctx, r); err != nil {
		return err
	}
	scopes, err := smart.ParseScopeList(r.GetRequestedScopes())
	if err != nil {
		return invalidScope(err)
	}
	if scopes.Len() == 0 {
		return fosite.ErrInvalidScope.WithHint("A scope is required: ask for system/ scopes such as system/Patient.rs.")
	}
	if len(scopes.Other()) > 0 {
		return fosite.ErrInvalidScope.WithHintf("Scope '%s' cannot be granted to client_credentials; only system/ scopes can.", clip(scopes.Other()[0]))
	}
	for _, sc := range scopes.Clinical() {
		if sc.Level != smart.LevelSystem {
			return fosite.ErrInvalidScope.WithHintf("Scope '%s' cannot be granted to client_credentials; only system/ scopes can.", clip(sc.Raw))
		}
	}
	sess, serr := sessionOf(r)
	if serr != nil {
		return serr
	}
	sess.Subject = r.GetClient().GetID()
	sess.SMART = LaunchContext{Mode: ModeBackend}
	for _, s := range scopes.Strings() {
		r.GrantScope(s)
	}
	return nil
}
