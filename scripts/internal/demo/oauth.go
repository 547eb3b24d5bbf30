package demo

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/smart"
)

// discover reads the SMART discovery document of a FHIR server
// ({fhir}/.well-known/smart-configuration, SMART App Launch 2.2 §2.0); the
// demo needs its token and registration endpoints.
func discover(ctx context.Context, c *http.Client, fhirBase string) (*smart.Configuration, error) {
	res, err := do(ctx, c, http.MethodGet, fhirBase+"/.well-known/smart-configuration", nil, nil)
	if err != nil {
		return nil, err
	}
	var sc smart.Configuration
	if err := res.expect("SMART discovery at "+fhirBase, &sc, http.StatusOK); err != nil {
		return nil, err
	}
	if sc.TokenEndpoint == "" || sc.RegistrationEndpoint == "" {
		return nil, fmt.Errorf("SMART discovery at %s lacks token_endpoint or registration_endpoint", fhirBase)
	}
	return &sc, nil
}

// registered is the RFC 7591 §3.2.1 answer.
type registered struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// register sends RFC 7591 client metadata and expects 201.
func register(ctx context.Context, c *http.Client, endpoint string, meta map[string]any) (*registered, error) {
	res, err := do(ctx, c, http.MethodPost, endpoint, nil, meta)
	if err != nil {
		return nil, err
	}
	var r registered
	if err := res.expect("registration at "+endpoint, &r, http.StatusCreated); err != nil {
		return nil, err
	}
	if r.ClientID == "" {
		return nil, fmt.Errorf("registration at %s answered no client_id", endpoint)
	}
	return &r, nil
}

// tokenResponse is RFC 6749 §5.1 with the SMART launch context.
type tokenResponse struct {
	AccessToken string            `json:"access_token"`
	TokenType   string            `json:"token_type"`
	ExpiresIn   int               `json:"expires_in"`
	Scope       string            `json:"scope"`
	Patient     string            `json:"patient"`
	Encounter   string            `json:"encounter"`
	FHIRContext []json.RawMessage `json:"fhirContext"`
}

// token posts form to a token endpoint, with HTTP Basic client
// authentication when user is set.
func token(ctx context.Context, c *http.Client, endpoint string, form url.Values, user, pass string) (*tokenResponse, error) {
	hdr := map[string]string{}
	if user != "" {
		// RFC 6749 §2.3.1: form-urlencode both parts first.
		hdr["Authorization"] = "Basic " + base64.StdEncoding.EncodeToString(
			[]byte(url.QueryEscape(user)+":"+url.QueryEscape(pass)))
	}
	res, err := do(ctx, c, http.MethodPost, endpoint, hdr, form)
	if err != nil {
		return nil, err
	}
	var tr tokenResponse
	if err := res.expect("token request ("+form.Get("grant_type")+") at "+endpoint, &tr, http.StatusOK); err != nil {
		return nil, err
	}
	if tr.AccessToken == "" || !strings.EqualFold(tr.TokenType, "bearer") {
		return nil, fmt.Errorf("token endpoint %s answered no bearer access_token", endpoint)
	}
	return &tr, nil
}

// assertionToken is a private_key_jwt token request (RFC 7523 §2.2).
func assertionToken(ctx context.Context, c *http.Client, endpoint string, s *clientauth.Signer, form url.Values) (*tokenResponse, error) {
	f, err := s.Form(endpoint, form)
	if err != nil {
		return nil, err
	}
	return token(ctx, c, endpoint, f, "", "")
}

// pkce is an RFC 7636 verifier and its S256 challenge.
type pkce struct{ Verifier, Challenge string }

func newPKCE() pkce {
	v := randomString(32)
	sum := sha256.Sum256([]byte(v))
	return pkce{Verifier: v, Challenge: base64.RawURLEncoding.EncodeToString(sum[:])}
}

// randomString is n random bytes, base64url.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}
