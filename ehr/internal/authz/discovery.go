package authz

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/smart"
)

// Capabilities this server really implements (SMART App Launch 2.2,
// Conformance "Capabilities"). Not listed: context-banner and context-style
// (no styling), context-standalone-encounter (the picker chooses a patient
// only), smart-app-state.
var capabilities = []string{
	smart.CapLaunchEHR,
	smart.CapLaunchStandalone,
	smart.CapAuthorizePost,
	smart.CapClientPublic,
	smart.CapClientConfidentialSymmetric,
	smart.CapClientConfidentialAsymmetric,
	smart.CapSSOOpenIDConnect,
	smart.CapContextEHRPatient,
	smart.CapContextEHREncounter,
	smart.CapContextStandalonePatient,
	smart.CapPermissionOffline,
	smart.CapPermissionOnline,
	smart.CapPermissionPatient,
	smart.CapPermissionUser,
	smart.CapPermissionV1,
	smart.CapPermissionV2,
}

var (
	authMethods   = []string{"private_key_jwt", "client_secret_basic", "none"}
	grantTypes    = []string{"authorization_code", "refresh_token", "client_credentials"}
	scopeExamples = []string{
		"openid", "fhirUser", "launch", "launch/patient", "launch/encounter",
		"offline_access", "online_access",
		"patient/*.rs", "user/*.rs", "system/*.rs", "patient/*.read", "user/*.read", "system/*.read",
		"patient/QuestionnaireResponse.cu", "user/QuestionnaireResponse.cu",
		"patient/DocumentReference.cu", "user/DocumentReference.cu",
	}
)

// smartConfiguration renders {fhir}/.well-known/smart-configuration (SMART
// App Launch 2.2 §"Metadata"), checked against the SMART rules at start-up.
func (s *Server) smartConfiguration() ([]byte, error) {
	c := &smart.Configuration{
		Issuer:                            s.urls.FHIRBase,
		JWKSURI:                           s.urls.JWKS,
		AuthorizationEndpoint:             s.urls.Authorize,
		GrantTypesSupported:               grantTypes,
		TokenEndpoint:                     s.urls.Token,
		TokenEndpointAuthMethodsSupported: authMethods,
		TokenEndpointAuthSigningAlgValuesSupported: clientauth.DefaultAlgorithms,
		RegistrationEndpoint:                       s.urls.Register,
		ScopesSupported:                            scopeExamples,
		ResponseTypesSupported:                     []string{"code"},
		IntrospectionEndpoint:                      s.urls.Introspect,
		RevocationEndpoint:                         s.urls.Revoke,
		Capabilities:                               capabilities,
		CodeChallengeMethodsSupported:              []string{"S256"},
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("authz: smart-configuration: %w", err)
	}
	return json.Marshal(c)
}

// openIDProviderMetadata is the OpenID Connect Discovery 1.0 §3 document.
type openIDProviderMetadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	JWKSURI                                    string   `json:"jwks_uri"`
	RegistrationEndpoint                       string   `json:"registration_endpoint"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	ScopesSupported                            []string `json:"scopes_supported"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	SubjectTypesSupported                      []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported           []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	ClaimsSupported                            []string `json:"claims_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	PromptValuesSupported                      []string `json:"prompt_values_supported"`
	ClaimsParameterSupported                   bool     `json:"claims_parameter_supported"`
	RequestParameterSupported                  bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported               bool     `json:"request_uri_parameter_supported"`
}

func (s *Server) openIDConfiguration() ([]byte, error) {
	return json.Marshal(&openIDProviderMetadata{
		Issuer:                                     s.urls.FHIRBase,
		AuthorizationEndpoint:                      s.urls.Authorize,
		TokenEndpoint:                              s.urls.Token,
		JWKSURI:                                    s.urls.JWKS,
		RegistrationEndpoint:                       s.urls.Register,
		IntrospectionEndpoint:                      s.urls.Introspect,
		RevocationEndpoint:                         s.urls.Revoke,
		ScopesSupported:                            scopeExamples,
		ResponseTypesSupported:                     []string{"code"},
		ResponseModesSupported:                     []string{"query"},
		GrantTypesSupported:                        grantTypes,
		SubjectTypesSupported:                      []string{"public"},
		IDTokenSigningAlgValuesSupported:           []string{s.keys.IDToken.Alg},
		TokenEndpointAuthMethodsSupported:          authMethods,
		TokenEndpointAuthSigningAlgValuesSupported: clientauth.DefaultAlgorithms,
		ClaimsSupported:                            []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "fhirUser"},
		CodeChallengeMethodsSupported:              []string{"S256"},
		PromptValuesSupported:                      []string{"none", "login", "consent"},
	})
}

// SMARTConfiguration serves GET {fhir}/.well-known/smart-configuration.
func (s *Server) SMARTConfiguration(c *gin.Context) { writeDiscovery(c, s.discovery) }

// OpenIDConfiguration serves GET {fhir}/.well-known/openid-configuration.
func (s *Server) OpenIDConfiguration(c *gin.Context) { writeDiscovery(c, s.oidcDiscovery) }

func writeDiscovery(c *gin.Context, body []byte) {
	c.Header("Cache-Control", "public, max-age=300")
	c.Header("Access-Control-Allow-Origin", "*")
	c.Data(http.StatusOK, "application/json", body)
}

// JWKS serves the public keys at {fhir}/.well-known/jwks.json.
func (s *Server) JWKS() http.Handler { return jwksHandler(s.keys) }
