package smart

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
)

// SMART 2.2 capabilities (Conformance, "Capabilities").
const (
	CapLaunchEHR                    = "launch-ehr"
	CapLaunchStandalone             = "launch-standalone"
	CapAuthorizePost                = "authorize-post"
	CapClientPublic                 = "client-public"
	CapClientConfidentialSymmetric  = "client-confidential-symmetric"
	CapClientConfidentialAsymmetric = "client-confidential-asymmetric"
	CapSSOOpenIDConnect             = "sso-openid-connect"
	CapContextBanner                = "context-banner"
	CapContextStyle                 = "context-style"
	CapContextEHRPatient            = "context-ehr-patient"
	CapContextEHREncounter          = "context-ehr-encounter"
	CapContextStandalonePatient     = "context-standalone-patient"
	CapContextStandaloneEncounter   = "context-standalone-encounter"
	CapPermissionOffline            = "permission-offline"
	CapPermissionOnline             = "permission-online"
	CapPermissionPatient            = "permission-patient"
	CapPermissionUser               = "permission-user"
	CapPermissionV1                 = "permission-v1"
	CapPermissionV2                 = "permission-v2"
	CapSMARTAppState                = "smart-app-state"
)

// AssociatedEndpoint is an entry of associated_endpoints: an endpoint that
// shares this FHIR endpoint's authorization mechanism (experimental in 2.2).
type AssociatedEndpoint struct {
	URL          string   `json:"url"`
	Capabilities []string `json:"capabilities"`
}

// BrandIdentifier is the FHIR Identifier of user_access_brand_identifier,
// naming the primary entry of the Brand Bundle (User Access Brands).
type BrandIdentifier struct {
	System string `json:"system,omitempty"`
	Value  string `json:"value,omitempty"`
}

// Configuration is the SMART App Launch 2.2 discovery document served at
// {fhir base}/.well-known/smart-configuration (Conformance, "Metadata").
// Every field is omitted when empty; Validate says which ones the listed
// capabilities require.
type Configuration struct {
	Issuer                                     string   `json:"issuer,omitempty"`
	JWKSURI                                    string   `json:"jwks_uri,omitempty"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint,omitempty"`
	GrantTypesSupported                        []string `json:"grant_types_supported,omitempty"`
	TokenEndpoint                              string   `json:"token_endpoint,omitempty"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	RegistrationEndpoint                       string   `json:"registration_endpoint,omitempty"`
	// SMARTAppStateEndpoint is deprecated in 2.2 in favour of
	// AssociatedEndpoints with the smart-app-state capability.
	SMARTAppStateEndpoint         string               `json:"smart_app_state_endpoint,omitempty"`
	AssociatedEndpoints           []AssociatedEndpoint `json:"associated_endpoints,omitempty"`
	UserAccessBrandBundle         string               `json:"user_access_brand_bundle,omitempty"`
	UserAccessBrandIdentifier     *BrandIdentifier     `json:"user_access_brand_identifier,omitempty"`
	ScopesSupported               []string             `json:"scopes_supported,omitempty"`
	ResponseTypesSupported        []string             `json:"response_types_supported,omitempty"`
	ManagementEndpoint            string               `json:"management_endpoint,omitempty"`
	IntrospectionEndpoint         string               `json:"introspection_endpoint,omitempty"`
	RevocationEndpoint            string               `json:"revocation_endpoint,omitempty"`
	Capabilities                  []string             `json:"capabilities,omitempty"`
	CodeChallengeMethodsSupported []string             `json:"code_challenge_methods_supported,omitempty"`
}

// ErrInvalidConfiguration is matched (errors.Is) by every *ConfigError.
var ErrInvalidConfiguration = errors.New("smart: invalid smart-configuration")

// ConfigError is one rule of the discovery document that does not hold.
type ConfigError struct {
	// Field is the JSON name of the offending member.
	Field string
	// Problem says what is wrong.
	Problem string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("smart-configuration %s: %s", e.Field, e.Problem)
}

// Is makes errors.Is(err, ErrInvalidConfiguration) true.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfiguration }

// HasCapability reports whether cap is listed in capabilities.
func (c *Configuration) HasCapability(cap string) bool { return slices.Contains(c.Capabilities, cap) }

// Validate checks the document against what SMART App Launch 2.2 marks
// REQUIRED or CONDITIONAL for the capabilities it lists, and returns every
// violation joined (errors.Join of *ConfigError), or nil.
//
//   - token_endpoint, capabilities, grant_types_supported: REQUIRED.
//   - authorization_endpoint: required with launch-ehr or launch-standalone,
//     and then grant_types_supported includes authorization_code.
//   - code_challenge_methods_supported: required where SMART App Launch is
//     supported (a launch capability or the authorization_code grant);
//     wherever present it SHALL include S256 and SHALL NOT include plain. A
//     Backend Services-only server (client_credentials) may omit it: the
//     Backend Services discovery requirements (client-confidential-asymmetric)
//     do not list it.
//   - issuer and jwks_uri: required with sso-openid-connect; issuer is
//     omitted otherwise.
//   - client-confidential-asymmetric: token_endpoint_auth_methods_supported
//     includes private_key_jwt and token_endpoint_auth_signing_alg_values_supported
//     includes RS384 or ES384.
//   - client-confidential-symmetric: a listed token_endpoint_auth_methods_supported
//     includes client_secret_basic or client_secret_post.
//   - every endpoint URL is absolute (http or https, with a host);
//     associated_endpoints entries have a url and capabilities; a brand
//     identifier has a value.
func (c *Configuration) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}

	// REQUIRED members.
	if c.TokenEndpoint == "" {
		bad("token_endpoint", "is required")
	}
	if len(c.Capabilities) == 0 {
		bad("capabilities", "is required")
	}
	for _, cp := range c.Capabilities {
		if cp == "" {
			bad("capabilities", "contains an empty string")
			break
		}
	}
	if len(c.GrantTypesSupported) == 0 {
		bad("grant_types_supported", "is required (authorization_code for App Launch, client_credentials for Backend Services)")
	}

	// App Launch.
	launch := c.HasCapability(CapLaunchEHR) || c.HasCapability(CapLaunchStandalone)
	if launch {
		if c.AuthorizationEndpoint == "" {
			bad("authorization_endpoint", "is required with launch-ehr or launch-standalone")
		}
		if len(c.GrantTypesSupported) > 0 && !slices.Contains(c.GrantTypesSupported, "authorization_code") {
			bad("grant_types_supported", "must include authorization_code with launch-ehr or launch-standalone")
		}
	}
	appLaunch := launch || slices.Contains(c.GrantTypesSupported, "authorization_code")
	switch {
	case len(c.CodeChallengeMethodsSupported) == 0:
		if appLaunch {
			bad("code_challenge_methods_supported", "is required and must include S256")
		}
	default:
		if !slices.Contains(c.CodeChallengeMethodsSupported, "S256") {
			bad("code_challenge_methods_supported", "must include S256")
		}
		if slices.Contains(c.CodeChallengeMethodsSupported, "plain") {
			bad("code_challenge_methods_supported", "must not include plain")
		}
	}

	// OpenID Connect.
	if c.HasCapability(CapSSOOpenIDConnect) {
		if c.Issuer == "" {
			bad("issuer", "is required with sso-openid-connect")
		}
		if c.JWKSURI == "" {
			bad("jwks_uri", "is required with sso-openid-connect")
		}
	} else if c.Issuer != "" {
		bad("issuer", "is omitted unless capabilities include sso-openid-connect")
	}

	// Client authentication profiles.
	if c.HasCapability(CapClientConfidentialAsymmetric) {
		if !slices.Contains(c.TokenEndpointAuthMethodsSupported, "private_key_jwt") {
			bad("token_endpoint_auth_methods_supported", "must include private_key_jwt with client-confidential-asymmetric")
		}
		if !slices.Contains(c.TokenEndpointAuthSigningAlgValuesSupported, "RS384") &&
			!slices.Contains(c.TokenEndpointAuthSigningAlgValuesSupported, "ES384") {
			bad("token_endpoint_auth_signing_alg_values_supported", "must include RS384 or ES384 with client-confidential-asymmetric")
		}
	}
	if c.HasCapability(CapClientConfidentialSymmetric) && len(c.TokenEndpointAuthMethodsSupported) > 0 &&
		!slices.Contains(c.TokenEndpointAuthMethodsSupported, "client_secret_basic") &&
		!slices.Contains(c.TokenEndpointAuthMethodsSupported, "client_secret_post") {
		bad("token_endpoint_auth_methods_supported", "must include client_secret_basic or client_secret_post with client-confidential-symmetric")
	}

	// All endpoint URLs SHALL be absolute.
	for _, u := range []struct{ field, value string }{
		{"issuer", c.Issuer},
		{"jwks_uri", c.JWKSURI},
		{"authorization_endpoint", c.AuthorizationEndpoint},
		{"token_endpoint", c.TokenEndpoint},
		{"registration_endpoint", c.RegistrationEndpoint},
		{"smart_app_state_endpoint", c.SMARTAppStateEndpoint},
		{"user_access_brand_bundle", c.UserAccessBrandBundle},
		{"management_endpoint", c.ManagementEndpoint},
		{"introspection_endpoint", c.IntrospectionEndpoint},
		{"revocation_endpoint", c.RevocationEndpoint},
	} {
		if u.value != "" && !absoluteHTTPURL(u.value) {
			bad(u.field, "must be an absolute http(s) URL")
		}
	}
	for i, ae := range c.AssociatedEndpoints {
		field := fmt.Sprintf("associated_endpoints[%d]", i)
		if !absoluteHTTPURL(ae.URL) {
			bad(field+".url", "must be an absolute http(s) URL")
		}
		if len(ae.Capabilities) == 0 {
			bad(field+".capabilities", "is required")
		}
	}
	if c.UserAccessBrandIdentifier != nil && c.UserAccessBrandIdentifier.Value == "" {
		bad("user_access_brand_identifier", "must have a value")
	}
	return errors.Join(errs...)
}

func absoluteHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}
