package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"dtrsandbox/ehr/internal/authz"
	"dtrsandbox/ehr/internal/oauthstore"
	"dtrsandbox/shared/jwks"
)

// TestRegistration: RFC 7591 successes and every refusal, with the exact
// error code and no client stored.
func TestRegistration(t *testing.T) {
	e := startEHR(t)
	key := mustKey(t, jwks.ES384)
	pub, err := jwks.Set{key}.MarshalPublic()
	if err != nil {
		t.Fatal(err)
	}
	var pubSet any
	json.Unmarshal(pub, &pubSet)
	good := func() map[string]any {
		return map[string]any{
			"client_name": "Good app", "redirect_uris": []string{"https://app.example/cb"},
			"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://app.example/jwks.json",
			"token_endpoint_auth_signing_alg": "ES384", "grant_types": []string{"authorization_code", "refresh_token"},
			"scope": "launch openid patient/*.rs", "launch_url": "https://app.example/launch",
		}
	}
	with := func(edit func(m map[string]any)) map[string]any { m := good(); edit(m); return m }
	clients := func() int64 {
		var n int64
		if err := e.srv.DB().Table(oauthstore.TableClients).Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("private_key_jwt with jwks_uri", func(t *testing.T) {
		status, body := e.postJSON(authz.PathRegister, good())
		var m map[string]any
		json.Unmarshal(body, &m)
		if status != 201 || m["client_id"] == nil || m["client_secret"] != nil || m["jwks_uri"] != "https://app.example/jwks.json" {
			t.Fatalf("got %d %s", status, body)
		}
	})
	t.Run("private_key_jwt with inline jwks", func(t *testing.T) {
		status, body := e.postJSON(authz.PathRegister, with(func(m map[string]any) { delete(m, "jwks_uri"); m["jwks"] = pubSet }))
		if status != 201 {
			t.Fatalf("got %d %s", status, body)
		}
	})
	t.Run("client_secret_basic gets a secret, stored hashed", func(t *testing.T) {
		status, body := e.postJSON(authz.PathRegister, map[string]any{
			"redirect_uris": []string{"http://127.0.0.1:9999/cb"}, "scope": "openid",
		})
		var m struct {
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
			Method       string `json:"token_endpoint_auth_method"`
		}
		json.Unmarshal(body, &m)
		if status != 201 || m.ClientSecret == "" || m.Method != "client_secret_basic" {
			t.Fatalf("got %d %s", status, body)
		}
		var stored []byte
		if err := e.srv.DB().Table(oauthstore.TableClients).Where("id = ?", m.ClientID).Select("secret_hash").Row().Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if string(stored) == m.ClientSecret || len(stored) != 32 {
			t.Fatalf("secret stored as %q", stored)
		}
	})

	privateJWK := map[string]any{"keys": []any{map[string]any{"kty": "EC", "crv": "P-256", "kid": "k", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}}}
	cases := []struct {
		name string
		meta any
		raw  string // a raw body instead of meta
		ct   string
		code string
	}{
		{name: "http redirect off loopback", meta: with(func(m map[string]any) { m["redirect_uris"] = []string{"http://app.example/cb"} }), code: "invalid_redirect_uri"},
		{name: "redirect with fragment", meta: with(func(m map[string]any) { m["redirect_uris"] = []string{"https://app.example/cb#x"} }), code: "invalid_redirect_uri"},
		{name: "wildcard redirect", meta: with(func(m map[string]any) { m["redirect_uris"] = []string{"https://*.example/cb"} }), code: "invalid_redirect_uri"},
		{name: "relative redirect", meta: with(func(m map[string]any) { m["redirect_uris"] = []string{"/cb"} }), code: "invalid_redirect_uri"},
		{name: "javascript redirect", meta: with(func(m map[string]any) { m["redirect_uris"] = []string{"javascript:alert(1)"} }), code: "invalid_redirect_uri"},
		{name: "redirect with user info", meta: with(func(m map[string]any) { m["redirect_uris"] = []string{"https://u:p@app.example/cb"} }), code: "invalid_redirect_uri"},
		{name: "no redirect for the code grant", meta: with(func(m map[string]any) { delete(m, "redirect_uris") }), code: "invalid_redirect_uri"},
		{name: "private_key_jwt without keys", meta: with(func(m map[string]any) { delete(m, "jwks_uri") }), code: "invalid_client_metadata"},
		{name: "jwks and jwks_uri", meta: with(func(m map[string]any) { m["jwks"] = pubSet }), code: "invalid_client_metadata"},
		{name: "jwks with a private key", meta: with(func(m map[string]any) { delete(m, "jwks_uri"); m["jwks"] = privateJWK }), code: "invalid_client_metadata"},
		{name: "jwks without a key for the alg", meta: with(func(m map[string]any) {
			delete(m, "jwks_uri")
			m["jwks"] = pubSet
			m["token_endpoint_auth_signing_alg"] = "RS384"
		}), code: "invalid_client_metadata"},
		{name: "jwks_uri over http", meta: with(func(m map[string]any) { m["jwks_uri"] = "http://app.example/jwks.json" }), code: "invalid_client_metadata"},
		{name: "signing alg HS256", meta: with(func(m map[string]any) { m["token_endpoint_auth_signing_alg"] = "HS256" }), code: "invalid_client_metadata"},
		{name: "signing alg none", meta: with(func(m map[string]any) { m["token_endpoint_auth_signing_alg"] = "none" }), code: "invalid_client_metadata"},
		{name: "client_secret_post", meta: with(func(m map[string]any) {
			m["token_endpoint_auth_method"] = "client_secret_post"
			delete(m, "jwks_uri")
			delete(m, "token_endpoint_auth_signing_alg")
		}), code: "invalid_client_metadata"},
		{name: "keys with client_secret_basic", meta: with(func(m map[string]any) { m["token_endpoint_auth_method"] = "client_secret_basic" }), code: "invalid_client_metadata"},
		{name: "password grant", meta: with(func(m map[string]any) { m["grant_types"] = []string{"password"} }), code: "invalid_client_metadata"},
		{name: "implicit response type", meta: with(func(m map[string]any) { m["response_types"] = []string{"token"} }), code: "invalid_client_metadata"},
		{name: "refresh without code", meta: with(func(m map[string]any) { m["grant_types"] = []string{"refresh_token"}; delete(m, "redirect_uris") }), code: "invalid_client_metadata"},
		{name: "public client_credentials", meta: map[string]any{"token_endpoint_auth_method": "none", "grant_types": []string{"client_credentials"}, "scope": "system/*.rs"}, code: "invalid_client_metadata"},
		{name: "malformed scope", meta: with(func(m map[string]any) { m["scope"] = "patient/*.xyz" }), code: "invalid_client_metadata"},
		{name: "no scope", meta: with(func(m map[string]any) { delete(m, "scope") }), code: "invalid_client_metadata"},
		{name: "launch_url over http", meta: with(func(m map[string]any) { m["launch_url"] = "http://app.example/launch" }), code: "invalid_client_metadata"},
		{name: "wrong type", meta: with(func(m map[string]any) { m["redirect_uris"] = "https://app.example/cb" }), code: "invalid_client_metadata"},
		{name: "case-variant member", raw: `{"redirect_uris":["https://a.example/cb"],"scope":"openid","token_endpoint_auth_method":"client_secret_basic","Token_Endpoint_Auth_Method":"none"}`, code: "invalid_client_metadata"},
		{name: "repeated member", raw: `{"redirect_uris":["https://a.example/cb"],"scope":"openid","token_endpoint_auth_method":"none","token_endpoint_auth_method":"client_secret_basic"}`, code: "invalid_client_metadata"},
		{name: "not JSON", raw: `client_name=x`, code: "invalid_client_metadata"},
		{name: "form content type", raw: `{}`, ct: "application/x-www-form-urlencoded", code: "invalid_client_metadata"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := clients()
			var status int
			var body []byte
			if c.raw != "" {
				ct := c.ct
				if ct == "" {
					ct = "application/json"
				}
				resp, err := e.client.Post(e.url+authz.PathRegister, ct, strings.NewReader(c.raw))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				status = resp.StatusCode
				body = readAll(resp)
			} else {
				status, body = e.postJSON(authz.PathRegister, c.meta)
			}
			if status != http.StatusBadRequest || oauthError(t, body) != c.code {
				t.Fatalf("got %d %s, want 400 %s", status, body, c.code)
			}
			if after := clients(); after != before {
				t.Fatalf("clients %d -> %d", before, after)
			}
		})
	}
}
