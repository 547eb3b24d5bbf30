package authz

import (
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"

	"dtrsandbox/shared/clientauth"
)

// GrantClientCredentials is the only grant the payer issues tokens for
// (SMART Backend Services).
const GrantClientCredentials = "client_credentials"

// SupportedScopes are the scopes a payer client may register and request:
// system-level access (SMART Backend Services) to the payer's three
// resource types. A client may register any scope they cover at the system
// level, e.g. "system/DocumentReference.rs" or "system/Questionnaire.read".
var SupportedScopes = []string{
	"system/Questionnaire.rs",
	"system/DocumentReference.cruds",
	"system/QuestionnaireResponse.cruds",
}

// SupportedSigningAlgs are the client-assertion algorithms accepted
// (SMART requires RS384 and ES384; the rest are what clientauth verifies).
var SupportedSigningAlgs = []string{"RS384", "ES384", "RS256", "ES256", "RS512", "ES512"}

// Client is one registered payer client (RFC 7591 §2 metadata plus the
// ehr_client_ids extension of CONTRACT.md).
type Client struct {
	ID         string
	Name       string
	JWKS       *jose.JSONWebKeySet // inline keys, or nil
	JWKSURI    string              // keys by reference, or ""
	AuthMethod string              // always private_key_jwt
	SigningAlg string              // token_endpoint_auth_signing_alg, "" if not registered
	Scope      string              // space-delimited registered scopes
	GrantTypes []string
	// EHRClientIDs maps an EHR issuer to this app's client_id at that EHR:
	// the only EHR client whose tokens this client may present.
	EHRClientIDs map[string]string
	IssuedAt     time.Time
}

// assertionClient is the view clientauth.Verifier needs.
func (c *Client) assertionClient() *clientauth.Client {
	return &clientauth.Client{
		ID:         c.ID,
		AuthMethod: c.AuthMethod,
		SigningAlg: c.SigningAlg,
		JWKSURI:    c.JWKSURI,
		JWKS:       c.JWKS,
	}
}

// fositeClient adapts a Client to fosite.Client. The payer's clients are
// confidential (private_key_jwt), have no secret, no redirect URIs, and may
// ask only for the payer's FHIR base as audience.
type fositeClient struct {
	c        *Client
	audience []string
}

var _ fosite.Client = (*fositeClient)(nil)

func (f *fositeClient) GetID() string                      { return f.c.ID }
func (f *fositeClient) GetHashedSecret() []byte            { return nil }
func (f *fositeClient) GetRedirectURIs() []string          { return nil }
func (f *fositeClient) GetGrantTypes() fosite.Arguments    { return fosite.Arguments(f.c.GrantTypes) }
func (f *fositeClient) GetResponseTypes() fosite.Arguments { return nil }
func (f *fositeClient) GetScopes() fosite.Arguments {
	return fosite.Arguments(strings.Fields(f.c.Scope))
}
func (f *fositeClient) IsPublic() bool                { return false }
func (f *fositeClient) GetAudience() fosite.Arguments { return fosite.Arguments(f.audience) }
