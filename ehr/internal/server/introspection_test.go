package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"dtrsandbox/ehr/internal/authz"
	"dtrsandbox/shared/accesstoken"
	"dtrsandbox/shared/jwks"
)

// TestIntrospectionRefusals: callers must authenticate as confidential
// clients; anything but an active access token is exactly
// {"active":false}; a client that may not introspect others learns nothing
// about their tokens.
func TestIntrospectionRefusals(t *testing.T) {
	e := startEHR(t)
	code, verifier := e.ehrLaunchCode(dtrScope)
	g, status, body := e.exchange(code, verifier)
	if g == nil {
		t.Fatalf("exchange: %d %s", status, body)
	}

	t.Run("callers", func(t *testing.T) {
		public := registerClient(t, e, map[string]any{
			"redirect_uris": []string{e.app.URL + "/p"}, "token_endpoint_auth_method": "none", "scope": "openid",
		})
		cases := []struct {
			name   string
			form   url.Values
			basic  []string
			status int
			code   string
		}{
			{"unauthenticated", url.Values{"token": {g.AccessToken}}, nil, 401, "invalid_client"},
			{"public client", url.Values{"token": {g.AccessToken}, "client_id": {public}}, nil, 401, "invalid_client"},
			{"wrong secret", url.Values{"token": {g.AccessToken}}, []string{authz.PayerClientID, "not-the-secret"}, 401, "invalid_client"},
			{"unknown client", url.Values{"token": {g.AccessToken}}, []string{"nobody", payerSecret}, 401, "invalid_client"},
			{"no token", e.payerForm(url.Values{}), nil, 400, "invalid_request"},
			{"repeated token", e.payerForm(url.Values{"token": {g.AccessToken, g.AccessToken}}), nil, 400, "invalid_request"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				resp, body := e.postForm(authz.PathIntrospect, c.form, c.basic...)
				if resp.StatusCode != c.status || oauthError(t, body) != c.code || strings.Contains(string(body), `"active"`) {
					t.Fatalf("got %d %s, want %d %s", resp.StatusCode, body, c.status, c.code)
				}
				if c.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
					t.Fatal("401 without WWW-Authenticate")
				}
			})
		}
	})

	t.Run("bearer instead of client auth", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.url+authz.PathIntrospect, strings.NewReader(url.Values{"token": {g.AccessToken}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+g.AccessToken)
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		if resp.StatusCode != 401 || m["error"] != "invalid_client" {
			t.Fatalf("got %d %v", resp.StatusCode, m)
		}
	})

	forged := func(edit func(c *accesstoken.Claims), key *jwks.SigningKey) string {
		c := verifyAccessToken(t, e, g.AccessToken)
		edit(c)
		raw, err := accesstoken.Sign(key, c)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	tamper := func(raw string) string {
		parts := strings.Split(raw, ".")
		payload, _ := jwt.NewParser().DecodeSegment(parts[1])
		payload = []byte(strings.Replace(string(payload), `"pat-1"`, `"pat-2"`, 1))
		parts[1] = strings.TrimRight(jwtEncode(payload), "=")
		return strings.Join(parts, ".")
	}
	otherKey := mustKey(t, jwks.ES256)
	inactive := []struct {
		name  string
		token func() string
	}{
		{"refresh token", func() string { return g.RefreshToken }},
		{"id_token", func() string { return g.IDToken }},
		{"garbage", func() string { return "garbage" }},
		{"empty-looking JWT", func() string { return "e30.e30.e30" }},
		{"tampered payload", func() string { return tamper(g.AccessToken) }},
		{"signed by another key", func() string { return forged(func(*accesstoken.Claims) {}, otherKey) }},
		{"huge", func() string { return strings.Repeat("A", 20000) }},
		{"payer's client assertion", func() string { return e.payerAssertion().sign(t) }},
	}
	for _, c := range inactive {
		t.Run(c.name, func(t *testing.T) { e.assertInactive(c.token()) })
	}
	t.Run("expired", func(t *testing.T) {
		e.clock.Advance(16 * time.Minute)
		defer e.clock.Reset()
		// client_secret_basic: a payer assertion would be expired too.
		resp, body := e.postForm(authz.PathIntrospect, url.Values{"token": {g.AccessToken}}, authz.PayerClientID, payerSecret)
		if resp.StatusCode != 200 || string(body) != `{"active":false}` {
			t.Fatalf("got %d %s", resp.StatusCode, body)
		}
	})
	t.Run("other client's token, caller not allowed to introspect", func(t *testing.T) {
		id, secret := registerConfidential(t, e)
		resp, body := e.postForm(authz.PathIntrospect, url.Values{"token": {g.AccessToken}}, id, secret)
		if resp.StatusCode != 200 || string(body) != `{"active":false}` {
			t.Fatalf("got %d %s", resp.StatusCode, body)
		}
		// Its own token: active.
		tr, status, body := e.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"system/Patient.rs"}}, id, secret)
		if tr == nil {
			t.Fatalf("own token: %d %s", status, body)
		}
		resp, body = e.postForm(authz.PathIntrospect, url.Values{"token": {tr.AccessToken}}, id, secret)
		var m map[string]any
		json.Unmarshal(body, &m)
		if resp.StatusCode != 200 || m["active"] != true || m["client_id"] != id {
			t.Fatalf("own token: %d %s", resp.StatusCode, body)
		}
	})
	t.Run("still active afterwards", func(t *testing.T) {
		if m := e.introspect(g.AccessToken); m["active"] != true {
			t.Fatalf("%v", m)
		}
	})
	t.Run("exact inactive body", func(t *testing.T) {
		resp, body := e.postForm(authz.PathIntrospect, e.payerForm(url.Values{"token": {"garbage"}}))
		if resp.StatusCode != http.StatusOK || string(body) != `{"active":false}` || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("got %d %q %v", resp.StatusCode, body, resp.Header)
		}
	})
}

// TestRevocation: RFC 7009 at the revocation endpoint.
func TestRevocation(t *testing.T) {
	e := startEHR(t)
	grant := func() *tokenResponse {
		code, verifier := e.ehrLaunchCode(dtrScope)
		g, status, body := e.exchange(code, verifier)
		if g == nil {
			t.Fatalf("exchange: %d %s", status, body)
		}
		return g
	}
	revoke := func(form url.Values, basic ...string) (int, []byte) {
		resp, body := e.postForm(authz.PathRevoke, form, basic...)
		return resp.StatusCode, body
	}
	t.Run("refresh token revokes its family", func(t *testing.T) {
		g := grant()
		if status, body := revoke(e.appTokenForm(url.Values{"token": {g.RefreshToken}, "token_type_hint": {"refresh_token"}})); status != 200 {
			t.Fatalf("revoke: %d %s", status, body)
		}
		e.assertInactive(g.AccessToken)
		if tr, _, body := e.token(e.appTokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {g.RefreshToken}})); tr != nil || oauthError(t, body) != "invalid_grant" {
			t.Fatalf("refresh after revocation: %s", body)
		}
	})
	t.Run("access token without hint", func(t *testing.T) {
		g := grant()
		if status, body := revoke(e.appTokenForm(url.Values{"token": {g.AccessToken}})); status != 200 {
			t.Fatalf("revoke: %d %s", status, body)
		}
		e.assertInactive(g.AccessToken)
	})
	t.Run("another client's token is left alone", func(t *testing.T) {
		g := grant()
		id, secret := registerConfidential(t, e)
		if status, body := revoke(url.Values{"token": {g.AccessToken}}, id, secret); status != 200 {
			t.Fatalf("revoke: %d %s", status, body)
		}
		if m := e.introspect(g.AccessToken); m["active"] != true {
			t.Fatalf("revoked by another client: %v", m)
		}
	})
	t.Run("unknown token", func(t *testing.T) {
		if status, body := revoke(e.appTokenForm(url.Values{"token": {"garbage"}})); status != 200 {
			t.Fatalf("got %d %s", status, body)
		}
	})
	t.Run("unauthenticated", func(t *testing.T) {
		g := grant()
		status, body := revoke(url.Values{"token": {g.AccessToken}})
		if status != 401 || oauthError(t, body) != "invalid_client" {
			t.Fatalf("got %d %s", status, body)
		}
		if m := e.introspect(g.AccessToken); m["active"] != true {
			t.Fatalf("revoked without authentication: %v", m)
		}
	})
	t.Run("no token", func(t *testing.T) {
		if status, body := revoke(e.appTokenForm(url.Values{})); status != 400 || oauthError(t, body) != "invalid_request" {
			t.Fatalf("got %d %s", status, body)
		}
	})
}
