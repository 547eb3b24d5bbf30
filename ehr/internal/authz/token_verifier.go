package authz

import (
	"context"
	"errors"

	"github.com/ory/fosite"

	"dtrsandbox/ehr/internal/oauthstore"
	"dtrsandbox/shared/accesstoken"
	"dtrsandbox/shared/oautherr"
	"dtrsandbox/shared/smart"
)

// TokenVerifier checks the EHR's access tokens for its own resource server
// (the FHIR API) and for introspection: the JWT must verify under the EHR's
// key (RFC 9068 §4: typ, iss, aud, exp, signature) AND its grant must still
// be active in the store, so revocation (RFC 7009) and family revocation
// take effect on the next request.
type TokenVerifier struct {
	strategy *accessTokenStrategy
	store    *oauthstore.Store
}

// activeToken is a verified, active access token.
type activeToken struct {
	claims *accesstoken.Claims
	grant  fosite.Requester
}

// VerifyAccessToken returns what an active access token grants. Refusals
// are *oautherr.Error invalid_token (401) whose hint says why without
// revealing anything about other tokens; a store failure is server_error.
func (v *TokenVerifier) VerifyAccessToken(ctx context.Context, raw string) (*smart.AccessContext, error) {
	t, err := v.check(ctx, raw)
	if err != nil {
		return nil, err
	}
	ac, perr := t.claims.AccessContext()
	if perr != nil {
		return nil, oautherr.InvalidToken("The access token is not valid.").WithCause(perr)
	}
	return ac, nil
}

// check verifies raw and finds its active grant.
func (v *TokenVerifier) check(ctx context.Context, raw string) (*activeToken, *oautherr.Error) {
	if raw == "" {
		return nil, oautherr.InvalidToken("No access token.")
	}
	digest := tokenDigest(raw) // hashed once: cache key and storage key
	claims, err := v.strategy.verifyDigest(ctx, raw, digest)
	if err != nil {
		if errors.Is(err, fosite.ErrTokenExpired) {
			return nil, oautherr.InvalidToken("The access token has expired.").WithCause(err)
		}
		return nil, oautherr.InvalidToken("The access token is not valid.").WithCause(err)
	}
	grant, err := v.store.GetAccessTokenSession(ctx, digestSignature(digest), nil)
	switch {
	case errors.Is(err, fosite.ErrNotFound), errors.Is(err, fosite.ErrInactiveToken):
		return nil, oautherr.InvalidToken("The access token has been revoked.").WithCause(err)
	case err != nil:
		return nil, oautherr.ServerError("The access token could not be checked.").WithCause(err)
	}
	if grant.GetClient().GetID() != claims.ClientID {
		return nil, oautherr.InvalidToken("The access token is not valid.").WithCause(errors.New("authz: token client_id differs from its grant"))
	}
	return &activeToken{claims: claims, grant: grant}, nil
}
