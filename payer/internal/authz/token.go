package authz

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"

	"dtrsandbox/payer/internal/audit"
	"dtrsandbox/shared/oautherr"
	"dtrsandbox/shared/smart"
)

// MaxTokenRequestBody bounds a token request; a client assertion is at
// most clientauth.MaxAssertionSize (8 KiB).
const MaxTokenRequestBody = 16 << 10

// tokenResponse is RFC 6749 §5.1 as SMART Backend Services uses it: no
// refresh token.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

// newProvider assembles fosite with the one token endpoint handler the
// payer offers (client_credentials), client authentication by
// clientauth.Verifier only, SMART scope matching, and RFC 9068 tokens.
func (s *Server) newProvider() fosite.OAuth2Provider {
	fcfg := &fosite.Config{
		AccessTokenLifespan:          s.cfg.AccessTokenLifetime,
		ScopeStrategy:                smart.ScopeStrategy,
		AudienceMatchingStrategy:     fosite.DefaultAudienceMatchingStrategy,
		ClientAuthenticationStrategy: s.authenticateClient,
		TokenURL:                     s.tokenURL,
	}
	strategy := &accessTokenStrategy{
		key: s.cfg.Keys.AccessToken, issuer: s.cfg.PublicURL, audience: s.fhirBase,
		lifetime: s.cfg.AccessTokenLifetime, now: s.cfg.Now,
	}
	fcfg.TokenEndpointHandlers = fosite.TokenEndpointHandlers{&oauth2.ClientCredentialsGrantHandler{
		HandleHelper: &oauth2.HandleHelper{AccessTokenStrategy: strategy, AccessTokenStorage: s.cfg.Tokens, Config: fcfg},
		Config:       fcfg,
	}}
	return &fosite.Fosite{Store: fositeStore{s}, Config: fcfg}
}

// authenticateClient is fosite's ClientAuthenticationStrategy: the client
// assertion (RFC 7523 §2.2) is the only accepted client authentication,
// checked by clientauth.Verifier (signature with a registered key, aud =
// the token URL, exp within 5 minutes, iss = sub, jti single-use in the
// shared database). Its *oautherr.Error refusals pass through fosite
// unchanged.
func (s *Server) authenticateClient(ctx context.Context, _ *http.Request, form url.Values) (fosite.Client, error) {
	ac, err := s.verifier.Verify(ctx, form)
	if err != nil {
		return nil, err
	}
	c, err := s.cfg.Clients.Get(ctx, ac.ID)
	if err != nil {
		return nil, oautherr.ServerError("The client could not be loaded.").WithCause(err)
	}
	return &fositeClient{c: c, audience: []string{s.fhirBase}}, nil
}

// fositeStore is fosite's ClientManager. Client assertions never reach
// fosite's own JWT checks (authenticateClient replaces them), so its jti
// methods refuse rather than pretend.
type fositeStore struct{ s *Server }

func (f fositeStore) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := f.s.cfg.Clients.Get(ctx, id)
	if errors.Is(err, ErrClientNotFound) {
		return nil, fosite.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &fositeClient{c: c, audience: []string{f.s.fhirBase}}, nil
}

func (fositeStore) ClientAssertionJWTValid(context.Context, string) error {
	return errors.New("authz: client assertion jti values are kept by clientauth.JTIStore")
}

func (fositeStore) SetClientAssertionJWT(context.Context, string, time.Time) error {
	return errors.New("authz: client assertion jti values are kept by clientauth.JTIStore")
}

// Token is the token endpoint (RFC 6749 §4.4 client_credentials with the
// SMART Backend Services client assertion). Success: 200 with an RFC 9068
// access token, no refresh token. Errors: RFC 6749 §5.2 JSON. Both carry
// Cache-Control: no-store.
func (s *Server) Token() gin.HandlerFunc {
	return func(c *gin.Context) {
		form, err := parseTokenRequest(c)
		if err == nil {
			err = validateTokenRequest(c.Request, form)
		}
		if err != nil {
			s.tokenFailed(c, "", err)
			return
		}
		resp, clientID, err := s.issue(c.Request.Context(), c.Request)
		if err != nil {
			s.tokenFailed(c, clientID, err)
			return
		}
		s.record(c, audit.Event{
			Action: "E", Interaction: "token", Outcome: audit.OutcomeSuccess,
			Status: http.StatusOK, ClientID: clientID,
		})
		h := c.Writer.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Pragma", "no-cache")
		c.JSON(http.StatusOK, resp)
	}
}

// parseTokenRequest reads the form body (RFC 6749 §3.2: POST,
// application/x-www-form-urlencoded, no parameter twice, nothing in the
// query string where credentials would end up in logs).
func parseTokenRequest(c *gin.Context) (url.Values, error) {
	r := c.Request
	if r.Method != http.MethodPost {
		return nil, oautherr.InvalidRequest("The token endpoint accepts POST only.")
	}
	if r.URL.RawQuery != "" {
		return nil, oautherr.InvalidRequest("Token request parameters belong in the request body, not the URL.")
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, oautherr.InvalidRequest("The token request must be sent as application/x-www-form-urlencoded.")
	}
	if r.ContentLength > MaxTokenRequestBody { // refused on the announced size, unread
		return nil, oautherr.InvalidRequest("The token request body is larger than %d bytes.", MaxTokenRequestBody)
	}
	r.Body = http.MaxBytesReader(c.Writer, r.Body, MaxTokenRequestBody)
	if err := r.ParseForm(); err != nil {
		return nil, oautherr.InvalidRequest("The token request body could not be parsed (at most %d bytes of form data).", MaxTokenRequestBody).WithCause(err)
	}
	for name, vals := range r.PostForm {
		if len(vals) > 1 {
			return nil, oautherr.InvalidRequest("The %s parameter is repeated.", clip(name))
		}
	}
	return r.PostForm, nil
}

// validateTokenRequest makes the cheap refusals before any lookup or
// cryptography: the grant type, the absence of other client credentials,
// and a well-formed system scope.
func validateTokenRequest(r *http.Request, form url.Values) error {
	switch gt := form.Get("grant_type"); {
	case gt == "":
		return oautherr.InvalidRequest("grant_type is missing; this payer offers client_credentials.")
	case gt != GrantClientCredentials:
		return oautherr.UnsupportedGrantType("grant_type %s is not offered; this payer offers client_credentials only (SMART Backend Services).", clip(gt))
	}
	if _, _, basic := r.BasicAuth(); basic || form.Has("client_secret") {
		return oautherr.InvalidClient("This payer authenticates clients only by private_key_jwt client assertions, not by a client secret.")
	}
	if r.Header.Get("Authorization") != "" {
		return oautherr.InvalidClient("This payer authenticates clients only by private_key_jwt client assertions, not by an Authorization header.")
	}
	scope := strings.TrimSpace(form.Get("scope"))
	if scope == "" {
		return oautherr.InvalidScope("scope is required (SMART Backend Services), e.g. %s.", SupportedScopes[0])
	}
	if _, err := checkSystemScopes(scope); err != nil {
		return oautherr.InvalidScope("%s", err.Error())
	}
	return nil
}

// issue runs fosite: client authentication, the client_credentials
// handler (scopes within the registration, client allowed the grant), and
// token issuance. It returns the authenticated client id even on failure
// when there is one.
func (s *Server) issue(ctx context.Context, r *http.Request) (*tokenResponse, string, error) {
	sess := newTokenSession()
	ar, err := s.provider.NewAccessRequest(ctx, r, sess)
	clientID := ""
	if ar != nil && ar.GetClient() != nil {
		clientID = ar.GetClient().GetID()
	}
	if err != nil {
		return nil, clientID, fromFosite(err)
	}
	for _, sc := range ar.GetRequestedScopes() {
		ar.GrantScope(sc)
	}
	sess.Subject = clientID
	resp, err := s.provider.NewAccessResponse(ctx, ar)
	if err != nil {
		return nil, clientID, fromFosite(err)
	}
	return &tokenResponse{
		AccessToken: resp.GetAccessToken(),
		TokenType:   "Bearer",
		ExpiresIn:   int64(sess.Expiry.Sub(sess.IssuedAt) / time.Second),
		Scope:       strings.Join(ar.GetGrantedScopes(), " "),
	}, clientID, nil
}

// fromFosite turns a fosite error into an oautherr.Error with the same RFC
// 6749 code and status; our own errors pass through.
func fromFosite(err error) *oautherr.Error {
	var oe *oautherr.Error
	if errors.As(err, &oe) {
		return oe
	}
	var fe *fosite.RFC6749Error
	if errors.As(err, &fe) {
		hint := fe.HintField
		if hint == "" {
			hint = fe.DescriptionField
		}
		status := fe.CodeField
		if status == 0 {
			status = http.StatusBadRequest
		}
		if fe.ErrorField == fosite.ErrServerError.ErrorField || status >= 500 {
			return oautherr.ServerError("The token could not be issued.").WithCause(err)
		}
		return oautherr.New(fe.ErrorField, status, "%s", hint).WithCause(err)
	}
	return oautherr.ServerError("The token could not be issued.").WithCause(err)
}

func (s *Server) tokenFailed(c *gin.Context, clientID string, err error) {
	e := oautherr.As(err)
	s.logError(c, "token refused", e)
	s.record(c, audit.Event{
		Action: "E", Interaction: "token", Outcome: outcomeFor(e.Status),
		Reason: e.Code + ": " + e.Description, Status: e.Status, ClientID: clientID,
	})
	oautherr.Write(c.Writer, e)
}
