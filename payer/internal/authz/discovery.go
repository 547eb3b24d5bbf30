package authz

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"dtrsandbox/shared/smart"
)

// discoveryDocument renders the SMART configuration of a Backend Services
// server (SMART App Launch 2.2 "Conformance" and "Backend Services",
// CONTRACT.md "Discovery"): token and registration endpoints,
// client_credentials only, private_key_jwt only, RS384 and ES384 among the
// assertion algorithms, the supported scopes, and the
// client-confidential-asymmetric capability. No issuer: the payer does not
// offer sso-openid-connect. The registration endpoint is listed only while
// registration is open.
func (s *Server) discoveryDocument() ([]byte, error) {
	doc := smart.Configuration{
		JWKSURI:                           s.cfg.PublicURL + JWKSPath,
		TokenEndpoint:                     s.tokenURL,
		GrantTypesSupported:               []string{GrantClientCredentials},
		TokenEndpointAuthMethodsSupported: []string{"private_key_jwt"},
		TokenEndpointAuthSigningAlgValuesSupported: append([]string(nil), SupportedSigningAlgs...),
		ScopesSupported: append([]string(nil), SupportedScopes...),
		Capabilities:    []string{smart.CapClientConfidentialAsymmetric},
	}
	if s.cfg.RegistrationOpen {
		doc.RegistrationEndpoint = s.cfg.PublicURL + RegistrationPath
	}
	if err := doc.Validate(); err != nil {
		return nil, fmt.Errorf("authz: own discovery document: %w", err)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("authz: encode discovery document: %w", err)
	}
	return b, nil
}

// Discovery serves {fhir}/.well-known/smart-configuration.
func (s *Server) Discovery() gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("Content-Length", strconv.Itoa(len(s.discovery)))
		c.Status(http.StatusOK)
		if c.Request.Method != http.MethodHead {
			_, _ = c.Writer.Write(s.discovery)
		}
	}
}
