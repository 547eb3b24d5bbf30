package authz

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"

	"dtrsandbox/ehr/internal/oauthstore"
	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/fhir"
	"dtrsandbox/shared/httpserver"
	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/oautherr"
	"dtrsandbox/shared/smart"
)

// Registration limits.
const (
	MaxRedirectURIs  = 10
	MaxURLLength     = 2048
	MaxClientNameLen = 200
)

// registrationRequest is the RFC 7591 §2 client metadata this server
// understands (unknown metadata is ignored, §2), plus the SMART
// "launch_url" extension: where the EHR opens the app for an EHR launch.
type registrationRequest struct {
	ClientName              *string         `json:"client_name"`
	RedirectURIs            []string        `json:"redirect_uris"`
	TokenEndpointAuthMethod *string         `json:"token_endpoint_auth_method"`
	GrantTypes              []string        `json:"grant_types"`
	ResponseTypes           []string        `json:"response_types"`
	Scope                   *string         `json:"scope"`
	JWKS                    json.RawMessage `json:"jwks"`
	JWKSURI                 *string         `json:"jwks_uri"`
	SigningAlg              *string         `json:"token_endpoint_auth_signing_alg"`
	LaunchURL               *string         `json:"launch_url"`
}

// registrationResponse is the RFC 7591 §3.2.1 answer.
type registrationResponse struct {
	ClientID                string          `json:"client_id"`
	ClientSecret            string          `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64           `json:"client_id_issued_at"`
	ClientSecretExpiresAt   *int64          `json:"client_secret_expires_at,omitempty"`
	ClientName              string          `json:"client_name,omitempty"`
	RedirectURIs            []string        `json:"redirect_uris,omitempty"`
	GrantTypes              []string        `json:"grant_types"`
	ResponseTypes           []string        `json:"response_types"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
	SigningAlg              string          `json:"token_endpoint_auth_signing_alg,omitempty"`
	JWKSURI                 string          `json:"jwks_uri,omitempty"`
	JWKS                    json.RawMessage `json:"jwks,omitempty"`
	Scope                   string          `json:"scope"`
	LaunchURL               string          `json:"launch_url,omitempty"`
}

// Register serves POST /oauth/register (RFC 7591), open in the sandbox. It
// answers 201 with the client_id (and a client_secret for
// client_secret_basic, stored only as a hash), or 400 with
// invalid_client_metadata / invalid_redirect_uri.
func (s *Server) Register(c *gin.Context) {
	ctx := c.Request.Context()
	req, e := readRegistration(c)
	if e != nil {
		s.writeOAuth(c, "registration refused", e)
		return
	}
	client, e := validateRegistration(req)
	if e != nil {
		s.writeOAuth(c, "registration refused", e)
		return
	}
	var secret string
	var err error
	if client.ID, err = randomString(16); err != nil {
		s.writeOAuth(c, "registration failed", oautherr.ServerError("The client could not be registered.").WithCause(err))
		return
	}
	if client.TokenEndpointAuthMethod == oauthstore.AuthClientSecretBasic {
		if secret, err = randomString(32); err != nil {
			s.writeOAuth(c, "registration failed", oautherr.ServerError("The client could not be registered.").WithCause(err))
			return
		}
		client.Secret = oauthstore.HashSecret(secret)
	}
	client.CreatedAt = s.now().UTC().Truncate(time.Second)
	if err := s.store.CreateClient(ctx, client); err != nil {
		s.writeOAuth(c, "registration failed", oautherr.ServerError("The client could not be registered.").WithCause(err))
		return
	}
	resp := registrationResponse{
		ClientID:                client.ID,
		ClientSecret:            secret,
		ClientIDIssuedAt:        client.CreatedAt.Unix(),
		ClientName:              client.Name,
		RedirectURIs:            client.RedirectURIs,
		GrantTypes:              client.GrantTypes,
		ResponseTypes:           client.ResponseTypes,
		TokenEndpointAuthMethod: client.TokenEndpointAuthMethod,
		SigningAlg:              client.TokenEndpointAuthSigningAlgorithm,
		JWKSURI:                 client.JSONWebKeysURI,
		Scope:                   strings.Join(client.Scopes, " "),
		LaunchURL:               client.LaunchURL,
	}
	if secret != "" {
		zero := int64(0)
		resp.ClientSecretExpiresAt = &zero
	}
	if client.PublicKeys != nil {
		resp.JWKS, _ = json.Marshal(client.PublicKeys)
	}
	s.log.Info("client registered", "client_id", client.ID, "auth_method", client.TokenEndpointAuthMethod, "grant_types", client.GrantTypes)
	writeJSON(c, http.StatusCreated, resp)
}

// readRegistration reads the JSON body strictly: application/json, at most
// MaxFormBytes, one object, no repeated or case-variant member names (Go's
// decoder would otherwise let "Token_Endpoint_Auth_Method" or a second
// "token_endpoint_auth_method" decide the method).
func readRegistration(c *gin.Context) (*registrationRequest, *oautherr.Error) {
	r := c.Request
	if r.URL.RawQuery != "" {
		return nil, oautherr.InvalidRequest("Send the metadata in the body, not in the query string.")
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, oautherr.InvalidClientMetadata("The body must be application/json.")
	}
	if httpserver.DeclaredTooLarge(c) || r.ContentLength > MaxFormBytes {
		return nil, tooLarge()
	}
	body, err := io.ReadAll(io.LimitReader(http.MaxBytesReader(c.Writer, r.Body, MaxFormBytes), MaxFormBytes+1))
	if err != nil || len(body) > MaxFormBytes {
		if err == nil || httpserver.IsTooLarge(err) {
			return nil, tooLarge()
		}
		return nil, oautherr.InvalidRequest("The body could not be read.").WithCause(err)
	}
	if !utf8.Valid(body) {
		// RFC 8259 §8.1; Go's decoder would silently turn the bad bytes
		// into U+FFFD.
		return nil, oautherr.InvalidClientMetadata("The metadata is not UTF-8 JSON.")
	}
	var req registrationRequest
	if err := fhir.Decode(body, &req); err != nil {
		var de *fhir.DecodeError
		if errors.As(err, &de) {
			return nil, oautherr.InvalidClientMetadata("The metadata is not acceptable JSON: %s.", strings.TrimPrefix(de.Reason, "fhir: ")).WithCause(err)
		}
		return nil, oautherr.InvalidClientMetadata("The metadata is not acceptable JSON.").WithCause(err)
	}
	return &req, nil
}

// validateRegistration applies RFC 7591 §2 and the sandbox's rules and
// returns the client to store (without id or secret).
func validateRegistration(req *registrationRequest) (*oauthstore.Client, *oautherr.Error) {
	name := deref(req.ClientName)
	if utf8.RuneCountInString(name) > MaxClientNameLen || !utf8.ValidString(name) || strings.ContainsAny(name, "\x00\r\n") {
		return nil, oautherr.InvalidClientMetadata("client_name must be at most %d characters on one line.", MaxClientNameLen)
	}
	method := oauthstore.AuthClientSecretBasic // RFC 7591 §2 default
	if req.TokenEndpointAuthMethod != nil {
		method = *req.TokenEndpointAuthMethod
	}
	switch method {
	case oauthstore.AuthNone, oauthstore.AuthClientSecretBasic, oauthstore.AuthPrivateKeyJWT:
	default:
		return nil, oautherr.InvalidClientMetadata("token_endpoint_auth_method must be none, client_secret_basic or private_key_jwt.")
	}
	grants, e := validateGrantTypes(req.GrantTypes, method)
	if e != nil {
		return nil, e
	}
	responses, e := validateResponseTypes(req.ResponseTypes, grants)
	if e != nil {
		return nil, e
	}
	redirects, e := validateRedirectURIs(req.RedirectURIs, slices.Contains(grants, "authorization_code"))
	if e != nil {
		return nil, e
	}
	scope, e := validateScope(req.Scope)
	if e != nil {
		return nil, e
	}
	keys, jwksURI, alg, e := validateKeys(req, method)
	if e != nil {
		return nil, e
	}
	launchURL := ""
	if req.LaunchURL != nil {
		if !validAppURL(*req.LaunchURL) {
			return nil, oautherr.InvalidClientMetadata("launch_url must be an https URL (http only on a loopback address) without a fragment.")
		}
		launchURL = *req.LaunchURL
	}
	return &oauthstore.Client{
		DefaultOpenIDConnectClient: &fosite.DefaultOpenIDConnectClient{
			DefaultClient: &fosite.DefaultClient{
				RedirectURIs:  redirects,
				GrantTypes:    grants,
				ResponseTypes: responses,
				Scopes:        scope.Strings(),
				Audience:      []string{},
				Public:        method == oauthstore.AuthNone,
			},
			JSONWebKeysURI:                    jwksURI,
			TokenEndpointAuthMethod:           method,
			TokenEndpointAuthSigningAlgorithm: alg,
		},
		Name:       name,
		LaunchURL:  launchURL,
		PublicKeys: keys,
	}, nil
}

func validateGrantTypes(in []string, method string) ([]string, *oautherr.Error) {
	if in == nil {
		in = []string{"authorization_code"} // RFC 7591 §2 default
	}
	if len(in) == 0 {
		return nil, oautherr.InvalidClientMetadata("grant_types is empty.")
	}
	var out []string
	for _, g := range in {
		switch g {
		case "authorization_code", "refresh_token", "client_credentials":
		default:
			return nil, oautherr.InvalidClientMetadata("grant_types may hold authorization_code, refresh_token and client_credentials.")
		}
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	if slices.Contains(out, "refresh_token") && !slices.Contains(out, "authorization_code") {
		return nil, oautherr.InvalidClientMetadata("refresh_token needs the authorization_code grant.")
	}
	if slices.Contains(out, "client_credentials") && method == oauthstore.AuthNone {
		return nil, oautherr.InvalidClientMetadata("client_credentials needs client authentication (private_key_jwt or client_secret_basic).")
	}
	return out, nil
}

func validateResponseTypes(in []string, grants []string) ([]string, *oautherr.Error) {
	code := slices.Contains(grants, "authorization_code")
	if in == nil {
		if code {
			return []string{"code"}, nil
		}
		return []string{}, nil
	}
	for _, rt := range in {
		if rt != "code" {
			return nil, oautherr.InvalidClientMetadata("response_types may only hold code.")
		}
	}
	if has := len(in) > 0; has != code {
		return nil, oautherr.InvalidClientMetadata("response_types code and grant_types authorization_code go together (RFC 7591 section 2.1).")
	}
	if code {
		return []string{"code"}, nil
	}
	return []string{}, nil
}

// validateRedirectURIs: https, or http on a loopback address (RFC 8252
// §7.3); absolute, no fragment (RFC 6749 §3.1.2), no user info, no
// wildcard: they are later compared as exact strings.
func validateRedirectURIs(in []string, required bool) ([]string, *oautherr.Error) {
	if required && len(in) == 0 {
		return nil, oautherr.InvalidRedirectURI("redirect_uris is required with the authorization_code grant.")
	}
	if !required && len(in) > 0 {
		return nil, oautherr.InvalidRedirectURI("redirect_uris are only used with the authorization_code grant.")
	}
	if len(in) > MaxRedirectURIs {
		return nil, oautherr.InvalidRedirectURI("At most %d redirect_uris.", MaxRedirectURIs)
	}
	out := []string{}
	for _, raw := range in {
		if !validAppURL(raw) || strings.Contains(raw, "*") {
			return nil, oautherr.InvalidRedirectURI("Each redirect URI must be an absolute https URL (http only on a loopback address) without fragment, user info or wildcard.")
		}
		if !slices.Contains(out, raw) {
			out = append(out, raw)
		}
	}
	return out, nil
}

// validAppURL: an absolute https URL, or http on a loopback host, with no
// user info and no fragment, written in the URI characters of RFC 3986
// (printable ASCII: RFC 6749 §3.1.2 wants an absolute URI, not an IRI whose
// raw and percent-encoded forms would compare differently).
func validAppURL(raw string) bool {
	if raw == "" || len(raw) > MaxURLLength || strings.ContainsAny(raw, "\\#") {
		return false
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] <= 0x20 || raw[i] >= 0x7f {
			return false
		}
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return false
	}
	return secureRedirect(u)
}

func validateScope(in *string) (smart.Scopes, *oautherr.Error) {
	if in == nil || strings.TrimSpace(*in) == "" {
		return smart.Scopes{}, oautherr.InvalidClientMetadata("scope is required: list every scope the client may ask for.")
	}
	scopes, err := smart.ParseScopes(*in)
	if err != nil {
		var se *smart.ScopeError
		if errors.As(err, &se) {
			return smart.Scopes{}, oautherr.InvalidClientMetadata("%s", se.Hint)
		}
		return smart.Scopes{}, oautherr.InvalidClientMetadata("scope is malformed.")
	}
	return scopes, nil
}

// validateKeys: private_key_jwt needs exactly one of jwks and jwks_uri;
// other methods take neither. An inline set is parsed strictly (public
// keys only, each with a kid) and must hold a key for the registered alg.
func validateKeys(req *registrationRequest, method string) (*jose.JSONWebKeySet, string, string, *oautherr.Error) {
	hasJWKS := len(req.JWKS) > 0 && string(req.JWKS) != "null"
	hasURI := req.JWKSURI != nil
	alg := deref(req.SigningAlg)
	if method != oauthstore.AuthPrivateKeyJWT {
		if hasJWKS || hasURI || req.SigningAlg != nil {
			return nil, "", "", oautherr.InvalidClientMetadata("jwks, jwks_uri and token_endpoint_auth_signing_alg are only for private_key_jwt.")
		}
		return nil, "", "", nil
	}
	if hasJWKS == hasURI {
		return nil, "", "", oautherr.InvalidClientMetadata("private_key_jwt needs exactly one of jwks and jwks_uri.")
	}
	if req.SigningAlg != nil && !slices.Contains(clientauth.DefaultAlgorithms, alg) {
		return nil, "", "", oautherr.InvalidClientMetadata("token_endpoint_auth_signing_alg must be one of %s.", strings.Join(clientauth.DefaultAlgorithms, ", "))
	}
	if hasURI {
		if !validAppURL(*req.JWKSURI) {
			return nil, "", "", oautherr.InvalidClientMetadata("jwks_uri must be an https URL (http only on a loopback address).")
		}
		return nil, *req.JWKSURI, alg, nil
	}
	set, err := jwks.ParsePublicSet(req.JWKS)
	if err != nil {
		return nil, "", "", oautherr.InvalidClientMetadata("jwks is not an acceptable public JWK Set.").WithCause(err)
	}
	if len(set.Keys) == 0 {
		return nil, "", "", oautherr.InvalidClientMetadata("jwks holds no usable key.")
	}
	algs := clientauth.DefaultAlgorithms
	if alg != "" {
		algs = []string{alg}
	}
	for _, k := range set.Keys {
		for _, a := range algs {
			if _, err := jwks.FindKey(set, k.KeyID, a); err == nil {
				return set, "", alg, nil
			}
		}
	}
	return nil, "", "", oautherr.InvalidClientMetadata("jwks holds no key for %s.", strings.Join(algs, " or "))
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
