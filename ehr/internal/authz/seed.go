package authz

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ory/fosite"

	"dtrsandbox/ehr/internal/oauthstore"
	"dtrsandbox/shared/jwks"
)

// Seeded client ids (CONTRACT.md "Seeded").
const (
	SmartAppClientID = "dtr-app"
	PayerClientID    = "payer"
)

// SmartAppScope is what the seeded DTR app may ask for.
const SmartAppScope = "launch launch/patient openid fhirUser offline_access online_access " +
	"patient/*.rs user/*.rs patient/QuestionnaireResponse.cu user/QuestionnaireResponse.cu patient/DocumentReference.cu"

// PayerScope is what the seeded payer may ask for with client_credentials.
const PayerScope = "system/*.rs"

// SeedConfig says where the seeded clients live.
type SeedConfig struct {
	// SmartAppURL is EHR_SMARTAPP_URL: the app's launch URL is
	// {SmartAppURL}/launch, its redirect URI {SmartAppURL}/callback, its
	// keys {SmartAppURL}/.well-known/jwks.json.
	SmartAppURL string
	// PayerJWKSURI is EHR_PAYER_JWKS_URI.
	PayerJWKSURI string
	// PayerClientSecret (EHR_PAYER_CLIENT_SECRET, optional, at least
	// oauthstore.MinSecretLength characters) lets the payer use
	// client_secret_basic as well as private_key_jwt.
	PayerClientSecret string
}

// SeedClients creates or refreshes the two fixed clients, so a restart
// with changed URLs takes effect and a repeated start changes nothing else:
//   - dtr-app: private_key_jwt (ES384, its jwks_uri), EHR-approved (no
//     consent page), authorization_code + refresh_token;
//   - payer: private_key_jwt (ES384, EHR_PAYER_JWKS_URI), optionally a
//     client secret, client_credentials only, allowed to introspect any
//     access token.
func SeedClients(ctx context.Context, store *oauthstore.Store, cfg SeedConfig) error {
	app := strings.TrimRight(cfg.SmartAppURL, "/")
	if !validAppURL(app) {
		return fmt.Errorf("authz: EHR_SMARTAPP_URL %q is not an https URL (or http on loopback)", cfg.SmartAppURL)
	}
	if !validAppURL(cfg.PayerJWKSURI) {
		return fmt.Errorf("authz: EHR_PAYER_JWKS_URI %q is not an https URL (or http on loopback)", cfg.PayerJWKSURI)
	}
	if cfg.PayerClientSecret != "" && len(cfg.PayerClientSecret) < oauthstore.MinSecretLength {
		return fmt.Errorf("authz: EHR_PAYER_CLIENT_SECRET must have at least %d characters", oauthstore.MinSecretLength)
	}
	created := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	dtrApp := &oauthstore.Client{
		DefaultOpenIDConnectClient: &fosite.DefaultOpenIDConnectClient{
			DefaultClient: &fosite.DefaultClient{
				ID:            SmartAppClientID,
				RedirectURIs:  []string{app + "/callback"},
				GrantTypes:    []string{"authorization_code", "refresh_token"},
				ResponseTypes: []string{"code"},
				Scopes:        strings.Fields(SmartAppScope),
				Audience:      []string{},
			},
			JSONWebKeysURI:                    app + "/.well-known/jwks.json",
			TokenEndpointAuthMethod:           oauthstore.AuthPrivateKeyJWT,
			TokenEndpointAuthSigningAlgorithm: jwks.ES384,
		},
		Name:        "DTR SMART App",
		LaunchURL:   app + "/launch",
		EHRApproved: true,
		CreatedAt:   created,
	}
	payer := &oauthstore.Client{
		DefaultOpenIDConnectClient: &fosite.DefaultOpenIDConnectClient{
			DefaultClient: &fosite.DefaultClient{
				ID:            PayerClientID,
				RedirectURIs:  []string{},
				GrantTypes:    []string{"client_credentials"},
				ResponseTypes: []string{},
				Scopes:        strings.Fields(PayerScope),
				Audience:      []string{},
			},
			JSONWebKeysURI:                    cfg.PayerJWKSURI,
			TokenEndpointAuthMethod:           oauthstore.AuthPrivateKeyJWT,
			TokenEndpointAuthSigningAlgorithm: jwks.ES384,
		},
		Name:          "Payer (DTR documentation)",
		MayIntrospect: true,
		CreatedAt:     created,
	}
	if cfg.PayerClientSecret != "" {
		payer.Secret = oauthstore.HashSecret(cfg.PayerClientSecret)
	}
	for _, c := range []*oauthstore.Client{dtrApp, payer} {
		if err := store.SaveClient(ctx, c); err != nil {
			return err
		}
	}
	return nil
}
