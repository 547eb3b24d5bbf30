package authz

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/ory/fosite"

	"dtrsandbox/ehr/internal/oauthstore"
	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/oautherr"
)

// clientAuthenticator authenticates the client of a token, introspection or
// revocation request (RFC 6749 §2.3, §3.2.1). Exactly one method per request:
//
//   - private_key_jwt (RFC 7523 §2.2, SMART "client-confidential-asymmetric"):
//     client_assertion_type + client_assertion, verified by the shared
//     clientauth.Verifier (the same code the payer runs);
//   - client_secret_basic (RFC 6749 §2.3.1): HTTP Basic with the
//     form-urlencoded client_id and secret, for clients holding a secret;
//   - none (RFC 6749 §2.1 public clients, SMART "client-public"): client_id
//     in the body, for clients registered with method none.
//
// client_secret_post and combinations of methods are refused.
type clientAuthenticator struct {
	clients  *oauthstore.Store
	verifier *clientauth.Verifier
}

// Strategy is the function fosite calls (fosite.Config.ClientAuthenticationStrategy).
func (a *clientAuthenticator) Strategy(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
	c, err := a.Authenticate(ctx, r, form)
	if err != nil {
		return nil, toFosite(err)
	}
	return c, nil
}

// Authenticate identifies and authenticates the client. Every refusal is an
// *oautherr.Error: invalid_client (401) when the credentials are wrong or
// missing, invalid_request (400) for a malformed request.
func (a *clientAuthenticator) Authenticate(ctx context.Context, r *http.Request, form url.Values) (*oauthstore.Client, *oautherr.Error) {
	for _, p := range []string{"client_id", "client_secret", clientauth.ParamAssertion, clientauth.ParamAssertionType} {
		if len(form[p]) > 1 {
			return nil, oautherr.InvalidRequest("The %s parameter is repeated.", p)
		}
	}
	if form.Has("client_secret") {
		return nil, oautherr.InvalidClient("client_secret_post is not supported; send the secret with HTTP Basic (client_secret_basic) or use private_key_jwt.")
	}
	authz := r.Header.Values("Authorization")
	assertion := clientauth.HasAssertion(form)
	switch {
	case len(authz) > 1:
		return nil, oautherr.InvalidRequest("The Authorization header is repeated.")
	case len(authz) == 1 && assertion:
		return nil, oautherr.InvalidRequest("Use one client authentication method, not both HTTP Basic and a client assertion.")
	case len(authz) == 1:
		return a.basic(ctx, r, form)
	case assertion:
		return a.privateKeyJWT(ctx, form)
	default:
		return a.public(ctx, form)
	}
}

// basic is client_secret_basic (RFC 6749 §2.3.1).
func (a *clientAuthenticator) basic(ctx context.Context, r *http.Request, form url.Values) (*oauthstore.Client, *oautherr.Error) {
	rawID, rawSecret, ok := r.BasicAuth()
	if !ok {
		return nil, oautherr.InvalidClient("The Authorization header must use the Basic scheme (client_secret_basic).")
	}
	id, err1 := url.QueryUnescape(rawID)
	secret, err2 := url.QueryUnescape(rawSecret)
	if err1 != nil || err2 != nil || id == "" {
		return nil, oautherr.InvalidClient("The Basic credentials are not form-urlencoded client_id and client_secret (RFC 6749 section 2.3.1).")
	}
	if form.Has("client_id") && form.Get("client_id") != id {
		return nil, oautherr.InvalidClient("The client_id parameter does not match the authenticated client.")
	}
	c, e := a.load(ctx, id)
	if e != nil {
		return nil, e
	}
	if !c.CheckSecret(secret) {
		return nil, oautherr.InvalidClient("Client authentication failed.").WithCause(errors.New("authz: wrong client secret or client without one"))
	}
	return c, nil
}

// privateKeyJWT is RFC 7523 client authentication.
func (a *clientAuthenticator) privateKeyJWT(ctx context.Context, form url.Values) (*oauthstore.Client, *oautherr.Error) {
	ac, err := a.verifier.Verify(ctx, form)
	if err != nil {
		return nil, oautherr.As(err)
	}
	if c, ok := ac.Record.(*oauthstore.Client); ok {
		return c, nil // the verifier looked it up already
	}
	return a.load(ctx, ac.ID)
}

// public is a client that does not authenticate: it names itself and must
// be registered with token_endpoint_auth_method none.
func (a *clientAuthenticator) public(ctx context.Context, form url.Values) (*oauthstore.Client, *oautherr.Error) {
	id := form.Get("client_id")
	if id == "" {
		return nil, oautherr.InvalidClient("Client authentication is required (private_key_jwt, client_secret_basic, or client_id for a public client).")
	}
	c, e := a.load(ctx, id)
	if e != nil {
		return nil, e
	}
	if !c.IsPublic() {
		return nil, oautherr.InvalidClient("This client must authenticate (%s).", c.TokenEndpointAuthMethod)
	}
	return c, nil
}

func (a *clientAuthenticator) load(ctx context.Context, id string) (*oauthstore.Client, *oautherr.Error) {
	c, err := a.clients.Client(ctx, id)
	switch {
	case errors.Is(err, fosite.ErrNotFound):
		return nil, oautherr.InvalidClient("Client authentication failed.").WithCause(errors.New("authz: unknown client " + strings.ToValidUTF8(clip(id), "?")))
	case err != nil:
		return nil, oautherr.ServerError("The client could not be looked up.").WithCause(err)
	}
	return c, nil
}

// clip shortens caller-supplied text before it reaches a log or a hint.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
