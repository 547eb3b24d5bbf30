package server_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"dtrsandbox/ehr/internal/authz"
)

// TestSurface: the routes that carry no flow of their own.
func TestSurface(t *testing.T) {
	e := startEHR(t)
	get := func(path string) (*http.Response, map[string]any) {
		t.Helper()
		resp, err := e.client.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp, m
	}
	if resp, m := get("/healthz"); resp.StatusCode != 200 || m["status"] != "ok" {
		t.Fatalf("healthz %d %v", resp.StatusCode, m)
	}
	resp, oidc := get(authz.PathOIDCConfig)
	if resp.StatusCode != 200 || oidc["issuer"] != e.fhir || oidc["jwks_uri"] != e.url+authz.PathJWKS ||
		!slices.Equal(toStrings(oidc["id_token_signing_alg_values_supported"]), []string{"RS256"}) ||
		!slices.Equal(toStrings(oidc["code_challenge_methods_supported"]), []string{"S256"}) {
		t.Fatalf("openid-configuration %d %v", resp.StatusCode, oidc)
	}
	resp, sc := get(authz.PathSMARTConfig)
	if resp.StatusCode != 200 {
		t.Fatalf("smart-configuration %d", resp.StatusCode)
	}
	for _, want := range []string{"launch-ehr", "launch-standalone", "authorize-post", "client-public", "client-confidential-symmetric",
		"client-confidential-asymmetric", "sso-openid-connect", "context-ehr-patient", "context-ehr-encounter",
		"context-standalone-patient", "permission-offline", "permission-online", "permission-patient", "permission-user",
		"permission-v1", "permission-v2"} {
		if !slices.Contains(toStrings(sc["capabilities"]), want) {
			t.Errorf("capability %s missing", want)
		}
	}
	for _, want := range []string{"private_key_jwt", "client_secret_basic", "none"} {
		if !slices.Contains(toStrings(sc["token_endpoint_auth_methods_supported"]), want) {
			t.Errorf("auth method %s missing", want)
		}
	}
	for _, want := range []string{"RS384", "ES384"} {
		if !slices.Contains(toStrings(sc["token_endpoint_auth_signing_alg_values_supported"]), want) {
			t.Errorf("alg %s missing", want)
		}
	}
	for k, want := range map[string]string{
		"issuer": e.fhir, "authorization_endpoint": e.url + authz.PathAuthorize, "token_endpoint": e.tokenURL(),
		"introspection_endpoint": e.url + authz.PathIntrospect, "revocation_endpoint": e.url + authz.PathRevoke,
		"registration_endpoint": e.url + authz.PathRegister, "jwks_uri": e.url + authz.PathJWKS,
	} {
		if sc[k] != want {
			t.Errorf("%s = %v, want %s", k, sc[k], want)
		}
	}
	if resp, ks := get(authz.PathJWKS); resp.StatusCode != 200 || len(ks["keys"].([]any)) != 2 {
		t.Fatalf("jwks %d %v", resp.StatusCode, ks)
	}
	if resp, _ := get("/fhir/metadata"); resp.StatusCode != 200 {
		t.Fatalf("metadata %d", resp.StatusCode)
	}
	if resp, _ := get("/fhir/Patient/pat-1"); resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("FHIR read without a token: %d", resp.StatusCode)
	}
	if resp, _ := get("/static/css/sandbox.css"); resp.StatusCode != 200 {
		t.Fatalf("stylesheet %d", resp.StatusCode)
	}
	if resp, _ := get("/static/css/"); resp.StatusCode != 404 {
		t.Fatalf("directory listing %d", resp.StatusCode)
	}
	if resp, m := get("/nowhere"); resp.StatusCode != 404 || m["error"] == nil {
		t.Fatalf("unknown route %d %v", resp.StatusCode, m)
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}
