// Package authz is the mock EHR's SMART App Launch 2.2 authorization server,
// built on github.com/ory/fosite: discovery (SMART and OpenID Connect),
// the authorization endpoint with its login, patient picker and consent
// pages, the token endpoint (authorization_code with PKCE S256,
// refresh_token with rotation and reuse detection, client_credentials for
// system/ scopes), RFC 7662 introspection, RFC 7009 revocation, RFC 7591
// registration and the JWK Set.
//
// fosite runs the grants; this package adds what SMART and the contract
// require on top: exact redirect URI matching, the SMART aud check, launch
// contexts, SMART scope semantics (smart.ScopeStrategy), private_key_jwt
// through the shared clientauth.Verifier, RFC 9068 JWT access tokens
// through shared/accesstoken, and uniform RFC 6749 §5.2 errors.
package authz

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/url"
	"strings"
	"time"

	josev3 "github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	"github.com/ory/fosite/token/jwt"
	"gorm.io/gorm"

	"dtrsandbox/ehr/internal/directory"
	"dtrsandbox/ehr/internal/launch"
	"dtrsandbox/ehr/internal/oauthstore"
	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/smart"
)

// Lifetimes.
const (
	DefaultAccessTokenTTL = 15 * time.Minute
	AuthorizeCodeTTL      = 2 * time.Minute
	IDTokenTTL            = time.Hour
	// InteractionTTL bounds the login, picker and consent pages of one
	// authorization request.
	InteractionTTL = 10 * time.Minute
)

// URLs are the authorization server's public addresses.
type URLs struct {
	Public        string // EHR_PUBLIC_URL, e.g. https://localhost:8441
	FHIRBase      string // issuer and access token audience: Public + "/fhir"
	Authorize     string
	Token         string // also the one accepted client assertion "aud"
	Introspect    string
	Revoke        string
	Register      string
	JWKS          string
	SMARTConfig   string
	OpenIDConfig  string
	InteractPath  string // where the login, picker and consent forms post
	AuthorizePath string
}

// Paths of the endpoints, relative to the public URL.
const (
	PathAuthorize   = "/oauth/authorize"
	PathInteract    = "/oauth/authorize/interact"
	PathToken       = "/oauth/token"
	PathIntrospect  = "/oauth/introspect"
	PathRevoke      = "/oauth/revoke"
	PathRegister    = "/oauth/register"
	PathFHIR        = "/fhir"
	PathJWKS        = "/fhir/.well-known/jwks.json"
	PathSMARTConfig = "/fhir/.well-known/smart-configuration"
	PathOIDCConfig  = "/fhir/.well-known/openid-configuration"
)

// NewURLs derives every address from the public base URL.
func NewURLs(public string) URLs {
	public = strings.TrimRight(public, "/")
	return URLs{
		Public:        public,
		FHIRBase:      public + PathFHIR,
		Authorize:     public + PathAuthorize,
		Token:         public + PathToken,
		Introspect:    public + PathIntrospect,
		Revoke:        public + PathRevoke,
		Register:      public + PathRegister,
		JWKS:          public + PathJWKS,
		SMARTConfig:   public + PathSMARTConfig,
		OpenIDConfig:  public + PathOIDCConfig,
		InteractPath:  PathInteract,
		AuthorizePath: PathAuthorize,
	}
}

// Launches is the launch service as authorize uses it.
type Launches interface {
	Consume(ctx context.Context, launchID, clientID string) (*launch.Context, error)
}

// Config wires a Server.
type Config struct {
	PublicURL string
	Store     *oauthstore.Store
	// DB holds the consents and pending authorization interactions.
	DB        *gorm.DB
	Launches  Launches
	Directory directory.Directory
	Keys      *Keys
	// JTIs records used client assertion jti values (clientauth.GormJTIStore).
	JTIs clientauth.JTIStore
	// RemoteKeys fetches clients' jwks_uri.
	RemoteKeys     *jwks.Remote
	AccessTokenTTL time.Duration // DefaultAccessTokenTTL if zero
	// Templates holds the authz-*.html pages and the shared layout.
	Templates *template.Template
	Logger    *slog.Logger
	// SecureCookies marks the interaction cookie Secure (TLS on).
	SecureCookies bool
	Now           func() time.Time
}

// Server is the authorization server. Its methods are gin handlers; routes
// are declared in internal/server.
type Server struct {
	urls          URLs
	provider      *fosite.Fosite
	store         *oauthstore.Store
	auth          *clientAuthenticator
	tokens        *TokenVerifier
	launches      Launches
	dir           directory.Directory
	consents      *consentStore
	interactions  *interactionStore
	tmpl          *template.Template
	log           *slog.Logger
	keys          *Keys
	now           func() time.Time
	secureCookies bool
	discovery     []byte
	oidcDiscovery []byte
}

// New builds the fosite provider and the endpoints.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.PublicURL == "":
		return nil, errors.New("authz: Config.PublicURL is required")
	case cfg.Store == nil, cfg.DB == nil:
		return nil, errors.New("authz: Config.Store and Config.DB are required")
	case cfg.Launches == nil, cfg.Directory == nil:
		return nil, errors.New("authz: Config.Launches and Config.Directory are required")
	case cfg.Keys == nil || cfg.Keys.AccessToken == nil || cfg.Keys.IDToken == nil || len(cfg.Keys.HMAC) < 32:
		return nil, errors.New("authz: Config.Keys is incomplete")
	case cfg.JTIs == nil:
		return nil, errors.New("authz: Config.JTIs is required")
	case cfg.Templates == nil:
		return nil, errors.New("authz: Config.Templates is required")
	}
	if _, err := url.Parse(cfg.PublicURL); err != nil {
		return nil, fmt.Errorf("authz: public URL: %w", err)
	}
	if cfg.Keys.AccessToken.Alg != jwks.ES256 || cfg.Keys.IDToken.Alg != jwks.RS256 {
		return nil, errors.New("authz: access tokens need an ES256 key and ID tokens an RS256 key")
	}
	for _, name := range []string{"authz-login.html", "authz-patient.html", "authz-consent.html", "error.html"} {
		if cfg.Templates.Lookup(name) == nil {
			return nil, fmt.Errorf("authz: template %s is missing", name)
		}
	}
	if cfg.AccessTokenTTL <= 0 {
		cfg.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	urls := NewURLs(cfg.PublicURL)
	consents, err := newConsentStore(cfg.DB)
	if err != nil {
		return nil, err
	}
	interactions, err := newInteractionStore(cfg.DB, cfg.Now)
	if err != nil {
		return nil, err
	}
	s := &Server{
		urls:          urls,
		store:         cfg.Store,
		launches:      cfg.Launches,
		dir:           cfg.Directory,
		consents:      consents,
		interactions:  interactions,
		tmpl:          cfg.Templates,
		log:           cfg.Logger,
		keys:          cfg.Keys,
		now:           cfg.Now,
		secureCookies: cfg.SecureCookies,
	}
	s.auth = &clientAuthenticator{
		clients: cfg.Store,
		verifier: clientauth.NewVerifier(clientauth.Config{
			TokenURL: urls.Token,
			Clients:  cfg.Store,
			Keys:     cfg.RemoteKeys,
			JTIs:     cfg.JTIs,
			Now:      cfg.Now,
		}),
	}
	ats := &accessTokenStrategy{key: cfg.Keys.AccessToken, issuer: urls.FHIRBase, now: cfg.Now}
	s.tokens = &TokenVerifier{strategy: ats, store: cfg.Store}
	s.provider = s.compose(cfg, ats)
	if s.discovery, err = s.smartConfiguration(); err != nil {
		return nil, err
	}
	if s.oidcDiscovery, err = s.openIDConfiguration(); err != nil {
		return nil, err
	}
	return s, nil
}

// compose assembles fosite by hand (not compose.ComposeAllEnabled): only the
// grants SMART needs, in a fixed order, with the guards of grant_guards.go.
// The order of the token endpoint handlers matters: the code handler runs
// before the PKCE guard, which relies on it having checked the code.
// Not composed, on purpose: implicit and hybrid flows, the password grant,
// the RFC 7523 JWT bearer grant, PAR, and fosite's own introspection (which
// falls back to refresh tokens; introspection.go never reports one active).
func (s *Server) compose(cfg Config, ats *accessTokenStrategy) *fosite.Fosite {
	fc := &fosite.Config{
		AccessTokenLifespan:            cfg.AccessTokenTTL,
		RefreshTokenLifespan:           RefreshTokenTTL,
		AuthorizeCodeLifespan:          AuthorizeCodeTTL,
		IDTokenLifespan:                IDTokenTTL,
		IDTokenIssuer:                  s.urls.FHIRBase,
		AccessTokenIssuer:              s.urls.FHIRBase,
		ScopeStrategy:                  smart.ScopeStrategy,
		AudienceMatchingStrategy:       fosite.DefaultAudienceMatchingStrategy,
		EnforcePKCE:                    true,
		EnablePKCEPlainChallengeMethod: false,
		AllowedPromptValues:            []string{"none", "login", "consent"},
		TokenURL:                       s.urls.Token,
		RedirectSecureChecker:          func(_ context.Context, u *url.URL) bool { return secureRedirect(u) },
		RefreshTokenScopes:             []string{smart.ScopeOfflineAccess, smart.ScopeOnlineAccess},
		MinParameterEntropy:            MinStateLength,
		ClientAuthenticationStrategy:   s.auth.Strategy,
		SendDebugMessagesToClients:     false,
		GlobalSecret:                   cfg.Keys.HMAC,
		TokenEntropy:                   32,
	}
	hmacs := compose.NewOAuth2HMACStrategy(fc)
	idKey := cfg.Keys.IDToken
	rsaKey, _ := idKey.Private.(*rsa.PrivateKey)
	signer := &jwt.DefaultSigner{GetPrivateKey: func(context.Context) (interface{}, error) {
		return &josev3.JSONWebKey{Key: rsaKey, KeyID: idKey.KID, Algorithm: idKey.Alg, Use: "sig"}, nil
	}}
	idTokens := &openid.DefaultStrategy{Signer: signer, Config: fc}
	idHelper := &openid.IDTokenHandleHelper{IDTokenStrategy: idTokens}
	explicit := &oauth2.AuthorizeExplicitGrantHandler{
		AccessTokenStrategy:    ats,
		RefreshTokenStrategy:   hmacs,
		AuthorizeCodeStrategy:  hmacs,
		CoreStorage:            cfg.Store,
		TokenRevocationStorage: cfg.Store,
		Config:                 fc,
	}
	pkceHandler := &pkce.Handler{AuthorizeCodeStrategy: hmacs, Storage: cfg.Store, Config: fc}
	oidcExplicit := &openid.OpenIDConnectExplicitHandler{
		OpenIDConnectRequestStorage:   cfg.Store,
		OpenIDConnectRequestValidator: openid.NewOpenIDConnectRequestValidator(signer, fc),
		IDTokenHandleHelper:           idHelper,
		Config:                        fc,
	}
	refresh := &refreshGrant{
		RefreshTokenGrantHandler: &oauth2.RefreshTokenGrantHandler{
			AccessTokenStrategy:    ats,
			RefreshTokenStrategy:   hmacs,
			TokenRevocationStorage: cfg.Store,
			Config:                 fc,
		},
		store: cfg.Store,
		now:   cfg.Now,
	}
	oidcRefresh := &openid.OpenIDConnectRefreshHandler{IDTokenHandleHelper: idHelper, Config: fc}
	clientCredentials := &clientCredentialsGrant{ClientCredentialsGrantHandler: &oauth2.ClientCredentialsGrantHandler{
		HandleHelper: &oauth2.HandleHelper{AccessTokenStrategy: ats, AccessTokenStorage: cfg.Store, Config: fc},
		Config:       fc,
	}}
	revocation := &oauth2.TokenRevocationHandler{
		TokenRevocationStorage: cfg.Store,
		AccessTokenStrategy:    ats,
		RefreshTokenStrategy:   hmacs,
	}
	code := &codeGrant{AuthorizeExplicitGrantHandler: explicit, store: cfg.Store}

	fc.AuthorizeEndpointHandlers = fosite.AuthorizeEndpointHandlers{explicit, pkceHandler, oidcExplicit}
	pkceToken := &pkceGrant{Handler: pkceHandler, codes: hmacs, store: cfg.Store}
	fc.TokenEndpointHandlers = fosite.TokenEndpointHandlers{code, pkceToken, oidcExplicit, refresh, oidcRefresh, clientCredentials}
	fc.RevocationHandlers = fosite.RevocationHandlers{revocation}
	return fosite.NewOAuth2Provider(cfg.Store, fc)
}

// Verifier is the access token check for the FHIR API.
func (s *Server) Verifier() *TokenVerifier { return s.tokens }

// URLs are the server's public addresses.
func (s *Server) URLs() URLs { return s.urls }

// Purge removes expired interactions (the other expired state is purged by
// its owner: oauthstore, launch, clientauth).
func (s *Server) Purge(ctx context.Context) error { return s.interactions.purge(ctx) }
