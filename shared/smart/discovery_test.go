package smart

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// ehrConfig is what CONTRACT.md says the EHR publishes.
func ehrConfig() Configuration {
	return Configuration{
		Issuer:                            "https://localhost:8441/fhir",
		JWKSURI:                           "https://localhost:8441/fhir/.well-known/jwks.json",
		AuthorizationEndpoint:             "https://localhost:8441/oauth/authorize",
		TokenEndpoint:                     "https://localhost:8441/oauth/token",
		IntrospectionEndpoint:             "https://localhost:8441/oauth/introspect",
		RevocationEndpoint:                "https://localhost:8441/oauth/revoke",
		RegistrationEndpoint:              "https://localhost:8441/oauth/register",
		GrantTypesSupported:               []string{"authorization_code", "refresh_token", "client_credentials"},
		TokenEndpointAuthMethodsSupported: []string{"private_key_jwt", "client_secret_basic", "none"},
		TokenEndpointAuthSigningAlgValuesSupported: []string{"RS384", "ES384", "ES256"},
		ScopesSupported:               []string{"openid", "fhirUser", "launch", "launch/patient", "patient/*.rs", "user/*.cruds", "offline_access"},
		ResponseTypesSupported:        []string{"code"},
		CodeChallengeMethodsSupported: []string{"S256"},
		Capabilities: []string{
			CapLaunchEHR, CapLaunchStandalone, CapClientPublic, CapClientConfidentialSymmetric,
			CapClientConfidentialAsymmetric, CapSSOOpenIDConnect, CapContextEHRPatient, CapContextEHREncounter,
			CapContextStandalonePatient, CapPermissionOffline, CapPermissionOnline, CapPermissionPatient,
			CapPermissionUser, CapPermissionV1, CapPermissionV2, CapAuthorizePost,
		},
	}
}

// payerConfig is what CONTRACT.md says the payer publishes (Backend Services).
func payerConfig() Configuration {
	return Configuration{
		TokenEndpoint:                              "https://localhost:8443/oauth/token",
		RegistrationEndpoint:                       "https://localhost:8443/oauth/register",
		GrantTypesSupported:                        []string{"client_credentials"},
		TokenEndpointAuthMethodsSupported:          []string{"private_key_jwt"},
		TokenEndpointAuthSigningAlgValuesSupported: []string{"RS384", "ES384"},
		ScopesSupported:                            []string{"system/Questionnaire.rs", "system/DocumentReference.cruds"},
		Capabilities:                               []string{CapClientConfidentialAsymmetric},
	}
}

func TestConfigurationValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Configuration)
		base   func() Configuration
		fields []string // JSON names expected among the errors; nil = valid
	}{
		{"ehr valid", func(c *Configuration) {}, ehrConfig, nil},
		{"payer valid", func(c *Configuration) {}, payerConfig, nil},
		{"missing token endpoint", func(c *Configuration) { c.TokenEndpoint = "" }, payerConfig, []string{"token_endpoint"}},
		{"missing capabilities", func(c *Configuration) { c.Capabilities = nil }, payerConfig, []string{"capabilities"}},
		{"empty capability", func(c *Configuration) { c.Capabilities = append(c.Capabilities, "") }, payerConfig, []string{"capabilities"}},
		{"missing grant types", func(c *Configuration) { c.GrantTypesSupported = nil }, payerConfig, []string{"grant_types_supported"}},
		{"launch without authorization endpoint", func(c *Configuration) { c.AuthorizationEndpoint = "" }, ehrConfig, []string{"authorization_endpoint"}},
		{"launch-standalone alone needs authorization endpoint", func(c *Configuration) {
			c.AuthorizationEndpoint, c.Issuer = "", ""
			c.Capabilities = []string{CapLaunchStandalone}
		}, ehrConfig, []string{"authorization_endpoint"}},
		{"launch without authorization_code grant", func(c *Configuration) { c.GrantTypesSupported = []string{"client_credentials"} }, ehrConfig, []string{"grant_types_supported"}},
		{"launch without PKCE", func(c *Configuration) { c.CodeChallengeMethodsSupported = nil }, ehrConfig, []string{"code_challenge_methods_supported"}},
		{"authorization_code grant without PKCE", func(c *Configuration) {
			c.GrantTypesSupported = []string{"authorization_code"}
		}, payerConfig, []string{"code_challenge_methods_supported"}},
		{"PKCE without S256", func(c *Configuration) { c.CodeChallengeMethodsSupported = []string{"S512"} }, ehrConfig, []string{"code_challenge_methods_supported"}},
		{"PKCE with plain", func(c *Configuration) { c.CodeChallengeMethodsSupported = []string{"S256", "plain"} }, ehrConfig, []string{"code_challenge_methods_supported"}},
		{"plain on backend server", func(c *Configuration) { c.CodeChallengeMethodsSupported = []string{"plain"} }, payerConfig, []string{"code_challenge_methods_supported"}},
		{"sso without issuer and jwks", func(c *Configuration) { c.Issuer, c.JWKSURI = "", "" }, ehrConfig, []string{"issuer", "jwks_uri"}},
		{"issuer without sso", func(c *Configuration) { c.Issuer = "https://localhost:8443/fhir" }, payerConfig, []string{"issuer"}},
		{"jwks_uri without sso is fine", func(c *Configuration) { c.JWKSURI = "https://localhost:8443/.well-known/jwks.json" }, payerConfig, nil},
		{"asymmetric without private_key_jwt", func(c *Configuration) { c.TokenEndpointAuthMethodsSupported = []string{"client_secret_basic"} }, payerConfig, []string{"token_endpoint_auth_methods_supported"}},
		{"asymmetric without RS384/ES384", func(c *Configuration) { c.TokenEndpointAuthSigningAlgValuesSupported = []string{"RS256"} }, payerConfig, []string{"token_endpoint_auth_signing_alg_values_supported"}},
		{"asymmetric with ES384 only", func(c *Configuration) { c.TokenEndpointAuthSigningAlgValuesSupported = []string{"ES384"} }, payerConfig, nil},
		{"symmetric without basic or post", func(c *Configuration) {
			c.TokenEndpointAuthMethodsSupported = []string{"private_key_jwt", "none"}
		}, ehrConfig, []string{"token_endpoint_auth_methods_supported"}},
		{"relative endpoint", func(c *Configuration) { c.TokenEndpoint = "/oauth/token" }, payerConfig, []string{"token_endpoint"}},
		{"non-http endpoint", func(c *Configuration) { c.RevocationEndpoint = "ftp://localhost/revoke" }, ehrConfig, []string{"revocation_endpoint"}},
		{"bad associated endpoint", func(c *Configuration) {
			c.AssociatedEndpoints = []AssociatedEndpoint{{URL: "state.example.com"}}
		}, ehrConfig, []string{"associated_endpoints[0].url", "associated_endpoints[0].capabilities"}},
		{"good associated endpoint", func(c *Configuration) {
			c.AssociatedEndpoints = []AssociatedEndpoint{{URL: "https://state.example.com", Capabilities: []string{CapSMARTAppState}}}
		}, ehrConfig, nil},
		{"brand identifier without value", func(c *Configuration) { c.UserAccessBrandIdentifier = &BrandIdentifier{System: "urn:ietf:rfc:3986"} }, ehrConfig, []string{"user_access_brand_identifier"}},
		{"empty document", func(c *Configuration) { *c = Configuration{} }, payerConfig, []string{"token_endpoint", "capabilities", "grant_types_supported"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.base()
			tt.mutate(&c)
			err := c.Validate()
			if tt.fields == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors on %v", tt.fields)
			}
			if !errors.Is(err, ErrInvalidConfiguration) {
				t.Fatalf("error %v is not ErrInvalidConfiguration", err)
			}
			got := configErrorFields(err)
			for _, f := range tt.fields {
				if !got[f] {
					t.Fatalf("Validate() = %v; no error on %s", err, f)
				}
			}
			if len(got) != len(tt.fields) {
				t.Fatalf("Validate() = %v; want errors only on %v", err, tt.fields)
			}
		})
	}
}

func configErrorFields(err error) map[string]bool {
	out := map[string]bool{}
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var ce *ConfigError
		if errors.As(e, &ce) {
			out[ce.Field] = true
		}
	}
	walk(err)
	return out
}

func TestConfigurationJSON(t *testing.T) {
	b, err := json.Marshal(Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "{}" {
		t.Fatalf("empty configuration marshals to %s", b)
	}
	// The 2.2 sample response, with brand members added.
	sample := `{
  "issuer": "https://ehr.example.com",
  "jwks_uri": "https://ehr.example.com/.well-known/jwks.json",
  "authorization_endpoint": "https://ehr.example.com/auth/authorize",
  "token_endpoint": "https://ehr.example.com/auth/token",
  "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
  "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
  "grant_types_supported": ["authorization_code", "client_credentials"],
  "registration_endpoint": "https://ehr.example.com/auth/register",
  "scopes_supported": ["openid", "profile", "launch", "launch/patient", "patient/*.rs", "user/*.rs", "offline_access"],
  "response_types_supported": ["code"],
  "management_endpoint": "https://ehr.example.com/user/manage",
  "introspection_endpoint": "https://ehr.example.com/user/introspect",
  "revocation_endpoint": "https://ehr.example.com/user/revoke",
  "code_challenge_methods_supported": ["S256"],
  "capabilities": ["launch-ehr", "permission-patient", "permission-v2", "client-public", "client-confidential-symmetric", "context-ehr-patient", "sso-openid-connect"],
  "associated_endpoints": [{"url": "https://state.example.com", "capabilities": ["smart-app-state"]}],
  "user_access_brand_bundle": "https://example.org/brands.json",
  "user_access_brand_identifier": {"system": "urn:ietf:rfc:3986", "value": "https://example.org"}
}`
	dec := json.NewDecoder(strings.NewReader(sample))
	dec.DisallowUnknownFields()
	var c Configuration
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("decoding the SMART 2.2 sample: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the SMART 2.2 sample does not validate: %v", err)
	}
	if c.UserAccessBrandIdentifier == nil || c.UserAccessBrandIdentifier.Value != "https://example.org" || len(c.AssociatedEndpoints) != 1 {
		t.Fatalf("decoded %+v", c)
	}
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var a, b2 map[string]any
	_ = json.Unmarshal([]byte(sample), &a)
	_ = json.Unmarshal(out, &b2)
	if len(a) != len(b2) {
		t.Fatalf("round trip lost members: %d vs %d", len(a), len(b2))
	}
}
