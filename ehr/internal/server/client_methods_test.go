package server_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"dtrsandbox/ehr/internal/authz"
	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/testutil/jwttest"
)

// registerKeyClient registers a client_credentials client with an inline
// JWK Set and the given token_endpoint_auth_signing_alg ("" for none).
func registerKeyClient(t *testing.T, e *ehr, alg string, keys ...*jwks.SigningKey) string {
	t.Helper()
	pub, err := jwks.Set(keys).MarshalPublic()
	if err != nil {
		t.Fatal(err)
	}
	meta := map[string]any{
		"token_endpoint_auth_method": "private_key_jwt", "jwks": json.RawMessage(pub),
		"grant_types": []string{"client_credentials"}, "scope": "system/Patient.rs",
	}
	if alg != "" {
		meta["token_endpoint_auth_signing_alg"] = alg
	}
	return registerClient(t, e, meta)
}

// TestAssertionAlgorithms: SMART requires RS384 and ES384 client
// assertions; a client that registered one algorithm may use only that
// one, a client that registered none may use either.
func TestAssertionAlgorithms(t *testing.T) {
	e := startEHR(t)
	rsa, ec := mustKey(t, jwks.RS384), mustKey(t, jwks.ES384)
	rsOnly := registerKeyClient(t, e, jwks.RS384, rsa, ec)
	ecOnly := registerKeyClient(t, e, jwks.ES384, rsa, ec)
	either := registerKeyClient(t, e, "", rsa, ec)
	cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"system/Patient.rs"}}
	try := func(client string, key *jwks.SigningKey) (*tokenResponse, int, []byte) {
		f, err := (&clientauth.Signer{Key: key, ClientID: client}).Form(e.tokenURL(), cc)
		if err != nil {
			t.Fatal(err)
		}
		return e.token(f)
	}
	for _, c := range []struct {
		name   string
		client string
		key    *jwks.SigningKey
		ok     bool
	}{
		{"RS384 client, RS384", rsOnly, rsa, true},
		{"RS384 client, ES384", rsOnly, ec, false},
		{"ES384 client, ES384", ecOnly, ec, true},
		{"ES384 client, RS384", ecOnly, rsa, false},
		{"no alg registered, RS384", either, rsa, true},
		{"no alg registered, ES384", either, ec, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := e.counts()
			tr, status, body := try(c.client, c.key)
			switch {
			case c.ok && tr == nil:
				t.Fatalf("refused: %d %s", status, body)
			case c.ok:
				if claims := verifyAccessToken(t, e, tr.AccessToken); claims.ClientID != c.client || claims.Subject != c.client {
					t.Fatalf("claims %+v", claims)
				}
			case tr != nil || status != http.StatusUnauthorized || oauthError(t, body) != "invalid_client":
				t.Fatalf("accepted or wrong refusal: %d %s", status, body)
			default:
				e.assertNothingIssued(before)
			}
		})
	}
}

// TestClientAuthenticationMethods: the methods the EHR refuses, and a
// public client's limits.
func TestClientAuthenticationMethods(t *testing.T) {
	e := startEHR(t)
	secretID, secret := registerConfidential(t, e)
	public := registerClient(t, e, map[string]any{
		"redirect_uris": []string{e.app.URL + "/p"}, "token_endpoint_auth_method": "none",
		"grant_types": []string{"authorization_code", "refresh_token"}, "scope": "openid system/Patient.rs patient/*.rs",
	})
	cc := func(extra url.Values) url.Values {
		f := url.Values{"grant_type": {"client_credentials"}, "scope": {"system/Patient.rs"}}
		for k, v := range extra {
			f[k] = v
		}
		return f
	}
	cases := []struct {
		name   string
		form   url.Values
		basic  []string
		status int
		code   string
	}{
		{"public client asks client_credentials", cc(url.Values{"client_id": {public}}), nil, 400, "unauthorized_client"},
		{"client_secret_post", cc(url.Values{"client_id": {secretID}, "client_secret": {secret}}), nil, 401, "invalid_client"},
		{"client_secret_post beside Basic", cc(url.Values{"client_secret": {secret}}), []string{secretID, secret}, 401, "invalid_client"},
		{"Basic with another client_id in the body", cc(url.Values{"client_id": {authz.PayerClientID}}), []string{secretID, secret}, 401, "invalid_client"},
		{"confidential client posing as public", cc(url.Values{"client_id": {secretID}}), nil, 401, "invalid_client"},
		{"private_key_jwt client posing as public", cc(url.Values{"client_id": {authz.PayerClientID}}), nil, 401, "invalid_client"},
		{"secret of another client", cc(nil), []string{secretID, payerSecret}, 401, "invalid_client"},
		{"secret with one character changed", cc(nil), []string{secretID, secret[:len(secret)-1] + string(secret[len(secret)-1]^1)}, 401, "invalid_client"},
		{"secret prefix", cc(nil), []string{secretID, secret[:len(secret)/2]}, 401, "invalid_client"},
		{"empty secret", cc(nil), []string{secretID, ""}, 401, "invalid_client"},
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
	t.Run("Basic without form-urlencoding", func(t *testing.T) {
		// RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic;
		// a raw "%zz" cannot be decoded.
		req := e.request(http.MethodPost, authz.PathToken, "application/x-www-form-urlencoded", strings.NewReader(cc(nil).Encode()))
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(secretID+":%zz")))
		checkError(t, "raw Basic", e.send(req), oauthJSON, 401, "invalid_client")
	})
	t.Run("the secret client itself", func(t *testing.T) {
		if tr, status, body := e.token(cc(nil), secretID, secret); tr == nil {
			t.Fatalf("got %d %s", status, body)
		}
	})
}

// TestIntrospectionByAnotherClient: a confidential client that is not
// allowed to introspect others (any client but the seeded payer) learns
// exactly {"active":false} about another client's active token, whatever
// its authentication method.
func TestIntrospectionByAnotherClient(t *testing.T) {
	e := startEHR(t)
	code, verifier := e.ehrLaunchCode(dtrScope)
	g, status, body := e.exchange(code, verifier)
	if g == nil {
		t.Fatalf("exchange: %d %s", status, body)
	}
	key := mustKey(t, jwks.ES384)
	other := registerKeyClient(t, e, jwks.ES384, key)
	f, err := (&clientauth.Signer{Key: key, ClientID: other}).Form(e.tokenURL(), url.Values{"token": {g.AccessToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp, body := e.postForm(authz.PathIntrospect, f)
	if resp.StatusCode != http.StatusOK || string(body) != `{"active":false}` {
		t.Fatalf("private_key_jwt client: %d %s", resp.StatusCode, body)
	}
	// dtr-app itself is confidential but not the payer: its own token is
	// active for it, the payer's is not.
	payerTok, status, body := e.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.rs"}}, authz.PayerClientID, payerSecret)
	if payerTok == nil {
		t.Fatalf("payer token: %d %s", status, body)
	}
	for tok, want := range map[string]bool{g.AccessToken: true, payerTok.AccessToken: false} {
		resp, body := e.postForm(authz.PathIntrospect, e.appTokenForm(url.Values{"token": {tok}}))
		var m map[string]any
		json.Unmarshal(body, &m)
		if resp.StatusCode != http.StatusOK || m["active"] != want || (!want && len(m) != 1) {
			t.Fatalf("dtr-app introspecting (want active=%v): %d %s", want, resp.StatusCode, body)
		}
	}
	if m := e.introspect(g.AccessToken); m["active"] != true {
		t.Fatalf("payer: %v", m)
	}
}

// TestIDTokenClaims: the ID token is RS256 with the EHR's kid, names the
// client as its only audience, echoes the nonce, carries fhirUser, and a
// refreshed ID token keeps sub, aud and auth_time.
func TestIDTokenClaims(t *testing.T) {
	e := startEHR(t)
	l := e.launch(dtrLaunch())
	verifier := oauth2.GenerateVerifier()
	const nonce = "nonce-0123456789"
	p := e.browser().get(e.authorizeURL(authParams{scope: dtrScope, state: "id-token-state", verifier: verifier, launch: l.Launch, extra: url.Values{"nonce": {nonce}}}))
	tr, status, body := e.exchange(p.codeFrom(t, e, "id-token-state"), verifier)
	if tr == nil {
		t.Fatalf("exchange: %d %s", status, body)
	}
	if h := jwttest.Header(t, tr.IDToken); h["alg"] != "RS256" || h["kid"] == nil || h["kid"] == "" {
		t.Fatalf("header %v", h)
	}
	first := jwttest.Claims(t, tr.IDToken)
	aud, _ := first["aud"].([]any)
	if len(aud) != 1 || aud[0] != authz.SmartAppClientID || first["nonce"] != nonce || first["iss"] != e.fhir ||
		first["sub"] != "Practitioner/prac-1" || first["fhirUser"] != e.fhir+"/Practitioner/prac-1" || first["auth_time"] == nil {
		t.Fatalf("claims %v", first)
	}
	if azp, ok := first["azp"]; ok && azp != authz.SmartAppClientID {
		t.Fatalf("azp %v", azp)
	}
	refreshed, status, body := e.token(e.appTokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}}))
	if refreshed == nil || refreshed.IDToken == "" {
		t.Fatalf("refresh: %d %s", status, body)
	}
	second := jwttest.Claims(t, refreshed.IDToken)
	for _, k := range []string{"iss", "sub", "auth_time", "fhirUser"} {
		if second[k] != first[k] {
			t.Errorf("refreshed %s = %v, was %v", k, second[k], first[k])
		}
	}
	if aud, _ := second["aud"].([]any); len(aud) != 1 || aud[0] != authz.SmartAppClientID {
		t.Errorf("refreshed aud %v", second["aud"])
	}
}

// TestNoStore: every answer that carries a token, a code, a secret or a
// statement about a token says Cache-Control: no-store (RFC 6749 §5.1,
// RFC 7662 §2.2, RFC 7591 §3.2.1), refusals included.
func TestNoStore(t *testing.T) {
	e := startEHR(t)
	check := func(what string, h http.Header, pragma bool) {
		t.Helper()
		if h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q", what, h.Get("Cache-Control"))
		}
		if pragma && h.Get("Pragma") != "no-cache" {
			t.Errorf("%s: Pragma %q", what, h.Get("Pragma"))
		}
	}
	// The code redirect.
	l := e.launch(dtrLaunch())
	verifier := oauth2.GenerateVerifier()
	p := e.browser().get(e.authorizeURL(authParams{scope: dtrScope, state: "no-store-state", verifier: verifier, launch: l.Launch}))
	check("code redirect", p.header, true)
	// An error redirect.
	p = e.browser().get(e.authorizeURL(authParams{scope: dtrScope, state: "no-store-state", verifier: verifier, launch: "unknown"}))
	check("error redirect", p.header, false)

	resp, _ := e.postForm(authz.PathToken, e.appTokenForm(url.Values{"grant_type": {"authorization_code"}, "code": {p.location.Query().Get("code")},
		"code_verifier": {verifier}, "redirect_uri": {e.app.URL + "/callback"}}))
	check("token refusal (400)", resp.Header, true)
	code := e.browser().get(e.authorizeURL(authParams{scope: dtrScope, state: "no-store-state", verifier: verifier, launch: e.launch(dtrLaunch()).Launch})).codeFrom(t, e, "no-store-state")
	resp, body := e.postForm(authz.PathToken, e.appTokenForm(url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"code_verifier": {verifier}, "redirect_uri": {e.app.URL + "/callback"}}))
	var tr tokenResponse
	if resp.StatusCode != 200 || json.Unmarshal(body, &tr) != nil {
		t.Fatalf("exchange: %d %s", resp.StatusCode, body)
	}
	check("token", resp.Header, true)
	resp, _ = e.postForm(authz.PathToken, url.Values{"grant_type": {"client_credentials"}}, authz.PayerClientID, "wrong")
	check("token refusal (401)", resp.Header, true)
	resp, _ = e.postForm(authz.PathToken, e.appTokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}}))
	check("refresh", resp.Header, true)

	resp, _ = e.postForm(authz.PathIntrospect, e.payerForm(url.Values{"token": {tr.AccessToken}}))
	check("introspection", resp.Header, true)
	resp, _ = e.postForm(authz.PathIntrospect, url.Values{"token": {tr.AccessToken}})
	check("introspection refusal", resp.Header, true)
	resp, _ = e.postForm(authz.PathRevoke, e.appTokenForm(url.Values{"token": {tr.RefreshToken}}))
	check("revocation", resp.Header, true)
	resp, _ = e.postForm(authz.PathRevoke, url.Values{"token": {tr.RefreshToken}})
	check("revocation refusal", resp.Header, true)

	for _, meta := range []map[string]any{
		{"redirect_uris": []string{"https://app.example/cb"}, "scope": "openid"}, // gets a secret
		{"redirect_uris": []string{"http://app.example/cb"}, "scope": "openid"},  // refused
	} {
		b, _ := json.Marshal(meta)
		r, err := e.client.Post(e.url+authz.PathRegister, "application/json", strings.NewReader(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		check("registration "+r.Status, r.Header, true)
	}
	for _, req := range []any{dtrLaunch(), map[string]string{"client_id": "nobody"}} {
		b, _ := json.Marshal(req)
		r, err := e.client.Post(e.url+"/api/launch", "application/json", strings.NewReader(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		check("launch "+r.Status, r.Header, false)
	}
}
