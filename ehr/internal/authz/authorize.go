package authz

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"

	"dtrsandbox/ehr/internal/oauthstore"
	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/oautherr"
	"dtrsandbox/shared/smart"
)

// Authorization request limits.
const (
	// MinStateLength: RFC 6749 §10.12 wants state unguessable; fosite's
	// default of 8 characters is the floor.
	MinStateLength = 8
	MaxStateLength = 1024
	MaxNonceLength = 1024
)

// pkceChallenge is an S256 code_challenge: BASE64URL(SHA-256(verifier)),
// always 43 characters (RFC 7636 §4.2).
var pkceChallenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// authorizeRequest is an authorization request whose client and redirect
// URI are known good (errors from here on go back to the client).
type authorizeRequest struct {
	params      url.Values
	client      *oauthstore.Client
	redirectURI string
	state       string // echoed in error redirects ("" when unusable)
	scopes      smart.Scopes
	launchID    string
	prompt      []string
}

// authorizeError is a refusal of an authorization request: redirected to
// the client when redirect is true (RFC 6749 §4.1.2.1), otherwise shown to
// the user (an invalid client_id or redirect_uri must never redirect).
type authorizeError struct {
	err      *oautherr.Error
	redirect bool
}

// Authorize serves GET and POST /oauth/authorize (RFC 6749 §4.1.1; SMART
// App Launch 2.2 "authorize-post"): it validates the request, spends the
// launch of an EHR launch, and either issues the code at once (EHR launch
// of an approved client) or starts the login / patient picker / consent
// pages.
func (s *Server) Authorize(c *gin.Context) {
	ctx := c.Request.Context()
	params, err := readAuthorizeParams(c)
	if err != nil {
		s.errorPage(c, err.Status, "The authorization request is invalid", err)
		return
	}
	ar, aerr := s.parseAuthorize(ctx, params)
	if aerr != nil {
		s.refuseAuthorize(c, ar, aerr)
		return
	}
	it, aerr := s.startInteraction(ctx, ar)
	if aerr != nil {
		s.refuseAuthorize(c, ar, aerr)
		return
	}
	s.advance(c, ar, it)
}

// readAuthorizeParams takes the parameters from the query (GET) or from a
// form body (POST, SMART "authorize-post"), never both.
func readAuthorizeParams(c *gin.Context) (url.Values, *oautherr.Error) {
	r := c.Request
	switch r.Method {
	case http.MethodGet:
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, oautherr.InvalidRequest("The query string is malformed.").WithCause(err)
		}
		return q, nil
	case http.MethodPost:
		if r.URL.RawQuery != "" {
			return nil, oautherr.InvalidRequest("With POST, send the parameters in the body only.")
		}
		return readFormBody(c)
	}
	return nil, oautherr.InvalidRequest("Use GET or POST.")
}

// parseAuthorize validates everything that can be checked before the user
// is involved. The returned request is non-nil as soon as the client and
// redirect URI are validated, so later refusals can be redirected.
func (s *Server) parseAuthorize(ctx context.Context, params url.Values) (*authorizeRequest, *authorizeError) {
	page := func(e *oautherr.Error) (*authorizeRequest, *authorizeError) {
		return nil, &authorizeError{err: e}
	}
	for _, p := range []string{"client_id", "redirect_uri"} {
		if len(params[p]) > 1 {
			return page(oautherr.InvalidRequest("The %s parameter is repeated.", p))
		}
	}
	clientID := params.Get("client_id")
	if clientID == "" {
		return page(oautherr.InvalidRequest("The request has no client_id."))
	}
	client, err := s.store.Client(ctx, clientID)
	switch {
	case errors.Is(err, fosite.ErrNotFound):
		return page(oautherr.InvalidRequest("The client_id is not registered with this EHR."))
	case err != nil:
		return page(oautherr.ServerError("The client could not be looked up.").WithCause(err))
	}
	redirectURI := params.Get("redirect_uri")
	if redirectURI == "" {
		return page(oautherr.InvalidRequest("The request has no redirect_uri (SMART requires it)."))
	}
	if !slices.Contains(client.RedirectURIs, redirectURI) {
		return page(oautherr.InvalidRequest("The redirect_uri is not one the client registered (they are compared exactly)."))
	}

	ar := &authorizeRequest{params: params, client: client, redirectURI: redirectURI}
	if st := params.Get("state"); len(params["state"]) == 1 && len(st) <= MaxStateLength && isVSChars(st) {
		ar.state = st
	}
	back := func(e *oautherr.Error) (*authorizeRequest, *authorizeError) {
		return ar, &authorizeError{err: e, redirect: true}
	}
	if e := singleValued(params); e != nil {
		return back(e)
	}
	if e := checkResponseType(params, client); e != nil {
		return back(e)
	}
	if st := params.Get("state"); st == "" || len(st) < MinStateLength || len(st) > MaxStateLength || !isVSChars(st) {
		return back(oautherr.InvalidRequest("state is required: an unguessable value of %d to %d printable characters.", MinStateLength, MaxStateLength))
	}
	if e := checkUnsupported(params); e != nil {
		return back(e)
	}
	if e := checkPKCE(params); e != nil {
		return back(e)
	}
	if aud := params.Get("aud"); aud != s.urls.FHIRBase && aud != s.urls.FHIRBase+"/" {
		// SMART App Launch 2.2: the EHR "SHALL confirm that this value
		// corresponds to a FHIR server that the EHR serves" and SHALL NOT
		// issue a token otherwise.
		return back(oautherr.InvalidRequest("aud must be this EHR's FHIR base URL, %s.", s.urls.FHIRBase))
	}
	scopes, e := checkScopes(params.Get("scope"), client)
	if e != nil {
		return back(e)
	}
	ar.scopes = scopes
	ar.launchID = params.Get("launch")
	switch {
	case ar.launchID != "" && !scopes.Has(smart.ScopeLaunch):
		return back(oautherr.InvalidScope("A launch parameter needs the launch scope."))
	case ar.launchID == "" && scopes.Has(smart.ScopeLaunch):
		return back(oautherr.InvalidRequest("The launch scope needs the launch parameter the EHR gave the app."))
	}
	if n := params.Get("nonce"); params.Has("nonce") && (len(n) < MinStateLength || len(n) > MaxNonceLength || !isVSChars(n)) {
		return back(oautherr.InvalidRequest("nonce must have %d to %d printable characters.", MinStateLength, MaxNonceLength))
	}
	prompt, e := checkPrompt(params)
	if e != nil {
		return back(e)
	}
	ar.prompt = prompt
	return ar, nil
}

func checkResponseType(params url.Values, client *oauthstore.Client) *oautherr.Error {
	switch rt := params.Get("response_type"); {
	case rt == "":
		return oautherr.InvalidRequest("response_type is required (code).")
	case rt != "code":
		return oautherr.New(oautherr.CodeUnsupportedResponseType, http.StatusBadRequest, "Only response_type=code is supported.")
	}
	if !client.GetGrantTypes().Has("authorization_code") {
		return oautherr.UnauthorizedClient("The client is not registered for the authorization code grant.")
	}
	if rm := params.Get("response_mode"); rm != "" && rm != "query" {
		return oautherr.InvalidRequest("Only response_mode=query is supported.")
	}
	return nil
}

// checkUnsupported refuses OpenID Connect request objects and dynamic
// registration by parameter: fosite would otherwise accept an unsigned
// request object overriding the validated parameters.
func checkUnsupported(params url.Values) *oautherr.Error {
	switch {
	case params.Has("request"):
		return oautherr.New("request_not_supported", http.StatusBadRequest, "Request objects are not supported.")
	case params.Has("request_uri"):
		return oautherr.New("request_uri_not_supported", http.StatusBadRequest, "request_uri is not supported.")
	case params.Has("registration"):
		return oautherr.New("registration_not_supported", http.StatusBadRequest, "Use the registration endpoint.")
	case params.Has("claims"):
		return oautherr.InvalidRequest("The claims parameter is not supported.")
	case params.Has("audience"), params.Has("resource"):
		return oautherr.InvalidRequest("Name the FHIR server with aud; audience and resource are not supported.")
	}
	return nil
}

// checkPKCE: RFC 7636 with S256 only (SMART App Launch 2.2 requires S256
// and forbids plain).
func checkPKCE(params url.Values) *oautherr.Error {
	switch m := params.Get("code_challenge_method"); {
	case !params.Has("code_challenge"):
		return oautherr.InvalidRequest("code_challenge is required (PKCE with S256).")
	case m == "":
		return oautherr.InvalidRequest("code_challenge_method is required and must be S256 (plain is not accepted).")
	case m != "S256":
		return oautherr.InvalidRequest("code_challenge_method must be S256 (plain is not accepted).")
	case !pkceChallenge.MatchString(params.Get("code_challenge")):
		return oautherr.InvalidRequest("code_challenge must be the 43-character base64url SHA-256 of the code verifier.")
	}
	return nil
}

// checkScopes parses the scope (SMART grammar) and checks every scope
// against the client's registration (smart.Allowed).
func checkScopes(raw string, client *oauthstore.Client) (smart.Scopes, *oautherr.Error) {
	scopes, err := smart.ParseScopes(raw)
	if err != nil {
		var se *smart.ScopeError
		if errors.As(err, &se) {
			return smart.Scopes{}, oautherr.InvalidScope("%s", se.Hint)
		}
		return smart.Scopes{}, oautherr.InvalidScope("The scope is malformed.")
	}
	if scopes.Len() == 0 {
		return smart.Scopes{}, oautherr.InvalidScope("scope is required.")
	}
	registered := strings.Join(client.Scopes, " ")
	for _, sc := range scopes.Strings() {
		if ok, hint := smart.Allowed(sc, registered); !ok {
			return smart.Scopes{}, oautherr.InvalidScope("%s", hint)
		}
	}
	return scopes, nil
}

func checkPrompt(params url.Values) ([]string, *oautherr.Error) {
	prompt := strings.Fields(params.Get("prompt"))
	for _, p := range prompt {
		if p != "none" && p != "login" && p != "consent" {
			return nil, oautherr.InvalidRequest("prompt may be none, login or consent.")
		}
	}
	if slices.Contains(prompt, "none") && len(prompt) > 1 {
		return nil, oautherr.InvalidRequest("prompt=none cannot be combined with other values.")
	}
	if ma := params.Get("max_age"); params.Has("max_age") {
		if n, err := strconv.ParseUint(ma, 10, 31); err != nil || strconv.FormatUint(n, 10) != ma {
			return nil, oautherr.InvalidRequest("max_age must be a number of seconds.")
		}
	}
	return prompt, nil
}

// isVSChars: RFC 6749 Appendix A, VSCHAR = %x20-7E.
func isVSChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// secureRedirect is fosite's RedirectSecureChecker: https, or http on a
// loopback address (RFC 8252 §7.3).
func secureRedirect(u *url.URL) bool {
	if u == nil {
		return false
	}
	return u.Scheme == "https" || u.Scheme == "http" && jwks.IsLoopback(u.Hostname())
}

// startInteraction spends the launch (EHR launch) and works out who the
// user is and what remains to ask.
func (s *Server) startInteraction(ctx context.Context, ar *authorizeRequest) (*interaction, *authorizeError) {
	now := s.now().UTC()
	it := &interaction{
		clientID:  ar.client.ID,
		params:    ar.params,
		createdAt: now,
	}
	it.forceConsent = slices.Contains(ar.prompt, "consent")
	if ar.launchID != "" {
		if slices.Contains(ar.prompt, "login") {
			return nil, &authorizeError{err: oautherr.New("login_required", http.StatusBadRequest, "prompt=login cannot be honoured in an EHR launch: the user is the one who launched the app."), redirect: true}
		}
		lc, err := s.launches.Consume(ctx, ar.launchID, ar.client.ID)
		if err != nil {
			return nil, &authorizeError{err: oautherr.As(err), redirect: true}
		}
		it.launch = lc
		it.subject = lc.Practitioner
		it.authTime = lc.CreatedAt
		it.patient = lc.Patient
	}
	return it, nil
}

// refuseAuthorize answers a refused authorization request.
func (s *Server) refuseAuthorize(c *gin.Context, ar *authorizeRequest, ae *authorizeError) {
	if !ae.redirect || ar == nil {
		s.errorPage(c, ae.err.Status, "The authorization request is invalid", ae.err)
		return
	}
	s.redirectError(c, ar.redirectURI, ar.state, ae.err)
}

// redirectError sends the error back to the client (RFC 6749 §4.1.2.1).
func (s *Server) redirectError(c *gin.Context, redirectURI, state string, e *oautherr.Error) {
	logOAuthError(s.log, "authorization refused", e)
	u, err := url.Parse(redirectURI)
	if err != nil {
		s.errorPage(c, http.StatusBadRequest, "The authorization request is invalid", oautherr.InvalidRequest("The redirect_uri is invalid."))
		return
	}
	q := u.Query()
	q.Set("error", e.Code)
	if e.Description != "" {
		q.Set("error_description", e.Description)
	}
	if state != "" {
		q.Set("state", state)
	}
	u.RawQuery = q.Encode()
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusSeeOther, u.String())
}
