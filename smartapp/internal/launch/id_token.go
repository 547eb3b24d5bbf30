package launch

import (
	"context"
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"dtrsandbox/smartapp/internal/signer"
)

// idTokenAlg is the one id_token algorithm accepted: SMART App Launch 2.2
// ("Scopes for requesting identity data") requires servers to sign id_tokens
// with RS256, and the EHR does.
const idTokenAlg = "RS256"

// IDClaims are the id_token claims the app reads (OpenID Connect Core §2,
// SMART's fhirUser).
type IDClaims struct {
	jwt.RegisteredClaims
	Nonce           string `json:"nonce,omitempty"`
	AuthorizedParty string `json:"azp,omitempty"`
	FHIRUser        string `json:"fhirUser,omitempty"`
	Name            string `json:"name,omitempty"`
}

type idTokenCheck struct {
	Keys     signer.KeySource
	JWKSURI  string
	Issuer   string
	ClientID string
	Nonce    string // "" when none was sent
	Now      func() time.Time
}

// verifyIDToken applies OpenID Connect Core §3.1.3.7: RS256 signature with a
// key from the EHR's jwks_uri (the alg is fixed, never taken from the
// header), iss equal to the EHR issuer, aud containing the client id (and
// azp equal to it when aud has several values), exp in the future, iat
// present, and the nonce sent with the authorization request.
func verifyIDToken(ctx context.Context, raw string, c idTokenCheck) (*IDClaims, error) {
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{idTokenAlg}),
		jwt.WithIssuer(c.Issuer),
		jwt.WithAudience(c.ClientID),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(30*time.Second),
		jwt.WithTimeFunc(c.Now),
		jwt.WithStrictDecoding(), // non-canonical base64url (non-zero unused bits) refused, as in the shared verifiers
	)
	var claims IDClaims
	_, err := parser.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); typ != "" && !strings.EqualFold(typ, "JWT") {
			return nil, fmt.Errorf("typ %q is not an id_token", typ)
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("id_token has no kid")
		}
		key, err := c.Keys.Key(ctx, c.JWKSURI, kid, idTokenAlg)
		if err != nil {
			return nil, err
		}
		if _, ok := key.(*rsa.PublicKey); !ok {
			return nil, fmt.Errorf("key %q is not an RSA key", kid)
		}
		return crypto.PublicKey(key), nil
	})
	if err != nil {
		return nil, fmt.Errorf("id_token: %w", err)
	}
	if claims.Subject == "" {
		return nil, errors.New("id_token: no sub")
	}
	if len(claims.Audience) > 1 && claims.AuthorizedParty != c.ClientID {
		return nil, errors.New("id_token: several audiences and azp is not this client")
	}
	if claims.AuthorizedParty != "" && claims.AuthorizedParty != c.ClientID {
		return nil, errors.New("id_token: azp is another client")
	}
	if c.Nonce != "" && claims.Nonce != c.Nonce {
		return nil, errors.New("id_token: nonce does not match the authorization request")
	}
	if slices.Contains(claims.Audience, "") {
		return nil, errors.New("id_token: empty audience")
	}
	return &claims, nil
}
