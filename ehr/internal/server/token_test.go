package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"dtrsandbox/ehr/internal/authz"
)

// TestCodeExchangeRefusals: PKCE, code reuse (which revokes what the first
// exchange issued), another client's code, redirect_uri mismatch.
func TestCodeExchangeRefusals(t *testing.T) {
	e := startEHR(t)
	callback := e.app.URL + "/callback"
	exchangeForm := func(code, verifier string, extra url.Values) url.Values {
		f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {callback}}
		if verifier != "" {
			f.Set("code_verifier", verifier)
		}
		for k, v := range extra {
			if v == nil {
				f.Del(k)
			} else {
				f[k] = v
			}
		}
		return e.appTokenForm(f)
	}
	refuse := func(t *testing.T, form url.Values, status int, code string, basic ...string) {
		t.Helper()
		before := e.counts()
		tr, got, body := e.token(form, basic...)
		if tr != nil || got != status || oauthError(t, body) != code {
			t.Fatalf("got %d %s, want %d %s", got, body, status, code)
		}
		e.assertNothingIssued(before)
	}

	t.Run("wrong verifier, then the right one", func(t *testing.T) {
		code, verifier := e.ehrLaunchCode(dtrScope)
		refuse(t, exchangeForm(code, oauth2.GenerateVerifier(), nil), 400, "invalid_grant")
		// The failed attempt spent the PKCE binding: the code is dead.
		refuse(t, exchangeForm(code, verifier, nil), 400, "invalid_grant")
	})
	t.Run("missing verifier", func(t *testing.T) {
		code, _ := e.ehrLaunchCode(dtrScope)
		refuse(t, exchangeForm(code, "", nil), 400, "invalid_grant")
	})
	t.Run("verifier of another authorization", func(t *testing.T) {
		_, otherVerifier := e.ehrLaunchCode(dtrScope)
		code, _ := e.ehrLaunchCode(dtrScope)
		refuse(t, exchangeForm(code, otherVerifier, nil), 400, "invalid_grant")
	})
	t.Run("verifier too short", func(t *testing.T) {
		code, _ := e.ehrLaunchCode(dtrScope)
		refuse(t, exchangeForm(code, "abc", nil), 400, "invalid_grant")
	})
	t.Run("redirect_uri differs", func(t *testing.T) {
		code, verifier := e.ehrLaunchCode(dtrScope)
		refuse(t, exchangeForm(code, verifier, url.Values{"redirect_uri": {callback + "/x"}}), 400, "invalid_grant")
	})
	t.Run("redirect_uri missing", func(t *testing.T) {
		// RFC 6749 §4.1.3: required when the authorization request had one.
		code, verifier := e.ehrLaunchCode(dtrScope)
		refuse(t, exchangeForm(code, verifier, url.Values{"redirect_uri": nil}), 400, "invalid_grant")
	})
	t.Run("unknown code", func(t *testing.T) {
		refuse(t, exchangeForm("nope.nope", oauth2.GenerateVerifier(), nil), 400, "invalid_grant")
	})
	t.Run("code of another client", func(t *testing.T) {
		id, secret := registerConfidential(t, e)
		code, verifier := e.ehrLaunchCode(dtrScope)
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {callback}}
		refuse(t, form, 400, "invalid_grant", id, secret)
		// The foreign attempt did not spend the code: its owner redeems it.
		if tr, status, body := e.exchange(code, verifier); tr == nil {
			t.Fatalf("owner after a foreign attempt: %d %s", status, body)
		}
	})
	t.Run("code used twice revokes the first tokens", func(t *testing.T) {
		code, verifier := e.ehrLaunchCode(dtrScope)
		first, status, body := e.exchange(code, verifier)
		if first == nil {
			t.Fatalf("first exchange: %d %s", status, body)
		}
		if m := e.introspect(first.AccessToken); m["active"] != true {
			t.Fatalf("first token %v", m)
		}
		refuse(t, exchangeForm(code, verifier, nil), 400, "invalid_grant")
		e.assertInactive(first.AccessToken)
		refuse(t, e.appTokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}), 400, "invalid_grant")
	})
}

// registerConfidential registers a client_secret_basic client allowed the
// code flow and returns its credentials.
func registerConfidential(t testing.TB, e *ehr) (string, string) {
	t.Helper()
	status, body := e.postJSON(authz.PathRegister, map[string]any{
		"redirect_uris": []string{e.app.URL + "/callback"}, "token_endpoint_auth_method": "client_secret_basic",
		"grant_types": []string{"authorization_code", "client_credentials"}, "scope": "launch openid patient/*.rs system/Patient.rs",
	})
	if status != http.StatusCreated {
		t.Fatalf("register: %d %s", status, body)
	}
	var reg struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := jsonUnmarshal(body, &reg); err != nil || reg.ClientSecret == "" {
		t.Fatalf("register: %s", body)
	}
	return reg.ClientID, reg.ClientSecret
}

// TestRefreshRefusals: rotation, reuse (family revoked), scope widening.
func TestRefreshRefusals(t *testing.T) {
	e := startEHR(t)
	newGrant := func() *tokenResponse {
		code, verifier := e.ehrLaunchCode(dtrScope)
		tr, status, body := e.exchange(code, verifier)
		if tr == nil {
			t.Fatalf("exchange: %d %s", status, body)
		}
		return tr
	}
	refresh := func(rt string, extra url.Values) (*tokenResponse, int, []byte) {
		f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
		for k, v := range extra {
			f[k] = v
		}
		return e.token(e.appTokenForm(f))
	}

	t.Run("rotated refresh token reused: family revoked", func(t *testing.T) {
		g := newGrant()
		next, status, body := refresh(g.RefreshToken, nil)
		if next == nil {
			t.Fatalf("refresh: %d %s", status, body)
		}
		before := e.counts()
		if tr, status, body := refresh(g.RefreshToken, nil); tr != nil || status != 400 || oauthError(t, body) != "invalid_grant" {
			t.Fatalf("reuse: %d %s", status, body)
		}
		e.assertNothingIssued(before)
		e.assertInactive(next.AccessToken)
		if tr, status, body := refresh(next.RefreshToken, nil); tr != nil || oauthError(t, body) != "invalid_grant" {
			t.Fatalf("newest refresh token after reuse: %d %s", status, body)
		}
	})
	t.Run("asking more scope", func(t *testing.T) {
		g := newGrant()
		for _, scope := range []string{dtrScope + " user/*.rs", "patient/*.cruds", "patient/DocumentReference.cu"} {
			before := e.counts()
			if tr, status, body := refresh(g.RefreshToken, url.Values{"scope": {scope}}); tr != nil || status != 400 || oauthError(t, body) != "invalid_scope" {
				t.Fatalf("scope %q: %d %s", scope, status, body)
			}
			e.assertNothingIssued(before)
		}
		// The refused attempts did not spend the refresh token.
		m := e.introspect(g.AccessToken)
		if m["active"] != true {
			t.Fatalf("grant after refused refreshes: %v", m)
		}
	})
	t.Run("narrower scope", func(t *testing.T) {
		g := newGrant()
		narrow, status, body := refresh(g.RefreshToken, url.Values{"scope": {"patient/Observation.rs offline_access"}})
		if narrow == nil {
			t.Fatalf("narrow refresh: %d %s", status, body)
		}
		if narrow.Scope != "patient/Observation.rs offline_access" || narrow.IDToken != "" {
			t.Fatalf("narrow %+v", narrow)
		}
		if m := e.introspect(narrow.AccessToken); m["scope"] != "patient/Observation.rs offline_access" {
			t.Fatalf("narrow token scope %v", m["scope"])
		}
		// The refresh token kept the original scope.
		full, status, body := refresh(narrow.RefreshToken, nil)
		if full == nil || full.Scope != dtrScope {
			t.Fatalf("refresh after narrowing: %d %s", status, body)
		}
	})
	t.Run("another client's refresh token", func(t *testing.T) {
		g := newGrant()
		id, secret := registerConfidential(t, e)
		// registerConfidential's client has no refresh_token grant.
		before := e.counts()
		_, status, body := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {g.RefreshToken}}, id, secret)
		if status != 400 || oauthError(t, body) != "unauthorized_client" {
			t.Fatalf("got %d %s", status, body)
		}
		e.assertNothingIssued(before)
	})
	t.Run("refresh token presented by another client", func(t *testing.T) {
		g := newGrant()
		public := registerClient(t, e, map[string]any{
			"redirect_uris": []string{e.app.URL + "/p"}, "token_endpoint_auth_method": "none",
			"grant_types": []string{"authorization_code", "refresh_token"}, "scope": dtrScope,
		})
		before := e.counts()
		_, status, body := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {g.RefreshToken}, "client_id": {public}})
		if status != 400 || oauthError(t, body) != "invalid_grant" {
			t.Fatalf("got %d %s", status, body)
		}
		e.assertNothingIssued(before)
		// The rightful client can still use it.
		if tr, status, body := refresh(g.RefreshToken, nil); tr == nil {
			t.Fatalf("owner refresh: %d %s", status, body)
		}
	})
	t.Run("garbage refresh token", func(t *testing.T) {
		before := e.counts()
		if tr, status, body := refresh("garbage", nil); tr != nil || oauthError(t, body) != "invalid_grant" {
			t.Fatalf("got %d %s", status, body)
		}
		e.assertNothingIssued(before)
	})
}

// TestTokenEndpointRefusals: malformed requests and client authentication
// methods the server refuses.
func TestTokenEndpointRefusals(t *testing.T) {
	e := startEHR(t)
	cases := []struct {
		name   string
		form   url.Values
		basic  []string
		status int
		code   string
	}{
		{"no grant_type", e.payerForm(url.Values{"scope": {"system/*.rs"}}), nil, 400, "invalid_request"},
		{"password grant", e.payerForm(url.Values{"grant_type": {"password"}, "username": {"a"}, "password": {"b"}}), nil, 400, "unsupported_grant_type"},
		{"jwt-bearer grant", e.payerForm(url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}}), nil, 400, "unsupported_grant_type"},
		{"implicit-style grant", e.payerForm(url.Values{"grant_type": {"implicit"}}), nil, 400, "unsupported_grant_type"},
		{"repeated grant_type", e.payerForm(url.Values{"grant_type": {"client_credentials", "client_credentials"}}), nil, 400, "invalid_request"},
		{"client_secret_post", url.Values{"grant_type": {"client_credentials"}, "client_id": {"payer"}, "client_secret": {payerSecret}, "scope": {"system/*.rs"}}, nil, 401, "invalid_client"},
		{"no client authentication", url.Values{"grant_type": {"client_credentials"}, "client_id": {"payer"}, "scope": {"system/*.rs"}}, nil, 401, "invalid_client"},
		{"no client at all", url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.rs"}}, nil, 401, "invalid_client"},
		{"wrong secret", url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.rs"}}, []string{"payer", "wrong-secret"}, 401, "invalid_client"},
		{"secret of a client without one", url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.rs"}}, []string{"dtr-app", ""}, 401, "invalid_client"},
		{"basic and assertion together", e.payerForm(url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.rs"}}), []string{"payer", payerSecret}, 400, "invalid_request"},
		{"client_credentials with user scope", e.payerForm(url.Values{"grant_type": {"client_credentials"}, "scope": {"user/*.rs"}}), nil, 400, "invalid_scope"},
		{"client_credentials with openid", e.payerForm(url.Values{"grant_type": {"client_credentials"}, "scope": {"openid system/*.rs"}}), nil, 400, "invalid_scope"},
		{"client_credentials beyond registration", e.payerForm(url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.cruds"}}), nil, 400, "invalid_scope"},
		{"client_credentials without scope", e.payerForm(url.Values{"grant_type": {"client_credentials"}}), nil, 400, "invalid_scope"},
		{"client_credentials for dtr-app", e.appTokenForm(url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.rs"}}), nil, 400, "unauthorized_client"},
		{"code grant for the payer", e.payerForm(url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "code_verifier": {oauth2.GenerateVerifier()}}), nil, 400, "unauthorized_client"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.counts()
			tr, status, body := e.token(c.form, c.basic...)
			if tr != nil || status != c.status || oauthError(t, body) != c.code {
				t.Fatalf("got %d %s, want %d %s", status, body, c.status, c.code)
			}
			e.assertNothingIssued(before)
		})
	}
	t.Run("query string parameters", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.tokenURL()+"?grant_type=client_credentials", strings.NewReader(e.payerForm(url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.rs"}}).Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("got %d", resp.StatusCode)
		}
	})
	t.Run("JSON body", func(t *testing.T) {
		status, body := e.postJSON(authz.PathToken, map[string]string{"grant_type": "client_credentials"})
		if status != 400 || oauthError(t, body) != "invalid_request" {
			t.Fatalf("got %d %s", status, body)
		}
	})
	t.Run("oversized body", func(t *testing.T) {
		resp, body := e.postForm(authz.PathToken, url.Values{"grant_type": {"client_credentials"}, "pad": {strings.Repeat("x", 70<<10)}})
		if resp.StatusCode != http.StatusRequestEntityTooLarge || oauthError(t, body) != "invalid_request" {
			t.Fatalf("got %d %s", resp.StatusCode, body)
		}
	})
	t.Run("GET", func(t *testing.T) {
		resp, err := e.client.Get(e.tokenURL())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("got %d", resp.StatusCode)
		}
	})
}
