package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"dtrsandbox/ehr/internal/authz"
	"dtrsandbox/shared/accesstoken"
	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/smart"
	"dtrsandbox/shared/testutil/jwttest"
)

// TestEHRLaunch drives the whole EHR launch with unmodified third-party
// clients: the launch API, the authorization request of golang.org/x/oauth2
// (PKCE S256) through a cookie-jar browser (dtr-app is EHR-approved: no
// page), the code exchange (x/oauth2, private_key_jwt), the ID token
// verified by go-oidc, the access token verified as RFC 9068, refresh with
// rotation, introspection by the payer (private_key_jwt and
// client_secret_basic), revocation, and introspection answering
// {"active":false}.
func TestEHRLaunch(t *testing.T) {
	e := startEHR(t)
	ctx := e.ctx()

	// The EHR's Launch button.
	l := e.launch(dtrLaunch())
	lu, err := url.Parse(l.LaunchURL)
	if err != nil {
		t.Fatal(err)
	}
	if lu.Query().Get("iss") != e.fhir || lu.Query().Get("launch") != l.Launch || lu.Path != "/launch" {
		t.Fatalf("launch_url %s", l.LaunchURL)
	}

	// The app discovers the EHR (SMART configuration).
	resp, err := e.client.Get(e.fhir + "/.well-known/smart-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var sc smart.Configuration
	if err := json.NewDecoder(resp.Body).Decode(&sc); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	if sc.AuthorizationEndpoint != e.url+authz.PathAuthorize || sc.TokenEndpoint != e.tokenURL() ||
		!reflect.DeepEqual(sc.CodeChallengeMethodsSupported, []string{"S256"}) {
		t.Fatalf("smart-configuration %+v", sc)
	}

	// Authorization request from x/oauth2 with PKCE.
	conf := e.appConfig(strings.Fields(dtrScope)...)
	verifier := oauth2.GenerateVerifier()
	state := "st-" + verifier[:16]
	authURL := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("aud", lu.Query().Get("iss")), oauth2.SetAuthURLParam("launch", l.Launch))
	code := e.browser().get(authURL).codeFrom(t, e, state)

	// Code exchange with x/oauth2 (verifier + client assertion).
	before := e.counts()
	tok, err := conf.Exchange(ctx, code, append(e.assertionOpts(), oauth2.VerifierOption(verifier))...)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	after := e.counts()
	if after["oauth_access_tokens"] != before["oauth_access_tokens"]+1 || after["oauth_refresh_tokens"] != before["oauth_refresh_tokens"]+1 {
		t.Fatalf("rows %v -> %v", before, after)
	}
	if tok.TokenType != "Bearer" || tok.RefreshToken == "" || tok.Expiry.Before(time.Now().Add(14*time.Minute)) {
		t.Fatalf("token %+v", tok)
	}
	if got := tok.Extra("patient"); got != "pat-1" {
		t.Fatalf("patient %v", got)
	}
	if got := tok.Extra("encounter"); got != "enc-1" {
		t.Fatalf("encounter %v", got)
	}
	if got := tok.Extra("need_patient_banner"); got != false {
		t.Fatalf("need_patient_banner %v", got)
	}
	fc, _ := json.Marshal(tok.Extra("fhirContext"))
	if string(fc) != `[{"reference":"Coverage/cov-1"},{"reference":"DeviceRequest/dr-oxygen-1"}]` {
		t.Fatalf("fhirContext %s", fc)
	}
	if got := tok.Extra("scope"); got != dtrScope {
		t.Fatalf("scope %v", got)
	}

	// The ID token, verified by go-oidc against the EHR's discovery and keys.
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, e.client), e.fhir)
	if err != nil {
		t.Fatalf("oidc discovery: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: authz.SmartAppClientID}).Verify(oidc.ClientContext(ctx, e.client), rawID)
	if err != nil {
		t.Fatalf("id_token: %v", err)
	}
	var idClaims struct {
		FHIRUser string `json:"fhirUser"`
	}
	if err := idt.Claims(&idClaims); err != nil {
		t.Fatal(err)
	}
	if idClaims.FHIRUser != e.fhir+"/Practitioner/prac-1" || idt.Subject != "Practitioner/prac-1" {
		t.Fatalf("id_token sub %q fhirUser %q", idt.Subject, idClaims.FHIRUser)
	}

	if h := jwttest.Header(t, rawID); h["alg"] != "RS256" || h["kid"] == nil || h["kid"] == "" {
		t.Fatalf("id_token header %v", h)
	}
	if h := jwttest.Header(t, tok.AccessToken); h["alg"] != "ES256" || h["typ"] != "at+jwt" || h["kid"] == nil {
		t.Fatalf("access token header %v", h)
	}

	// The access token is an RFC 9068 JWT with the launch context.
	claims := verifyAccessToken(t, e, tok.AccessToken)
	if claims.Issuer != e.fhir || claims.Audience[0] != e.fhir || claims.ClientID != authz.SmartAppClientID ||
		claims.Subject != "Practitioner/prac-1" || claims.Patient != "pat-1" || claims.Encounter != "enc-1" ||
		claims.FHIRUser != e.fhir+"/Practitioner/prac-1" || len(claims.FHIRContext) != 2 || claims.ID == "" || claims.Scope != dtrScope {
		t.Fatalf("claims %+v", claims)
	}

	// The FHIR API's verifier accepts it.
	ac, err := e.srv.Authz().Verifier().VerifyAccessToken(ctx, tok.AccessToken)
	if err != nil || ac.Patient != "pat-1" || ac.ClientID != authz.SmartAppClientID {
		t.Fatalf("VerifyAccessToken: %+v %v", ac, err)
	}

	// ... and so does the FHIR API over HTTP.
	if status := fhirRead(t, e, tok.AccessToken, "/Patient/pat-1"); status != http.StatusOK {
		t.Fatalf("FHIR read with the token: %d", status)
	}

	// Introspection by the payer, with private_key_jwt...
	m := e.introspect(tok.AccessToken)
	for k, want := range map[string]any{
		"active": true, "client_id": authz.SmartAppClientID, "iss": e.fhir, "sub": "Practitioner/prac-1",
		"token_type": "Bearer", "patient": "pat-1", "encounter": "enc-1", "fhirUser": e.fhir + "/Practitioner/prac-1", "scope": dtrScope,
	} {
		if m[k] != want {
			t.Errorf("introspection %s = %v, want %v", k, m[k], want)
		}
	}
	if m["exp"] == nil || m["iat"] == nil || m["fhirContext"] == nil {
		t.Errorf("introspection lacks exp, iat or fhirContext: %v", m)
	}
	// ... and with client_secret_basic.
	r, body := e.postForm(authz.PathIntrospect, url.Values{"token": {tok.AccessToken}}, authz.PayerClientID, payerSecret)
	if r.StatusCode != http.StatusOK || !strings.Contains(string(body), `"active":true`) {
		t.Fatalf("basic introspection: %d %s", r.StatusCode, body)
	}

	// Refresh: a new pair; the old refresh token and access token retire.
	refreshed, status, body := e.token(e.appTokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}))
	if refreshed == nil {
		t.Fatalf("refresh: %d %s", status, body)
	}
	if refreshed.RefreshToken == "" || refreshed.RefreshToken == tok.RefreshToken || refreshed.Patient != "pat-1" ||
		refreshed.Scope != dtrScope || refreshed.IDToken == "" || refreshed.TokenType != "Bearer" {
		t.Fatalf("refreshed %+v", refreshed)
	}
	e.assertInactive(tok.AccessToken)
	if m := e.introspect(refreshed.AccessToken); m["active"] != true || m["patient"] != "pat-1" {
		t.Fatalf("refreshed token introspection %v", m)
	}

	// Revocation of the access token: inactive at once, and its family too.
	r, body = e.postForm(authz.PathRevoke, e.appTokenForm(url.Values{"token": {refreshed.AccessToken}, "token_type_hint": {"access_token"}}))
	if r.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.StatusCode, body)
	}
	e.assertInactive(refreshed.AccessToken)
	if _, err := e.srv.Authz().Verifier().VerifyAccessToken(ctx, refreshed.AccessToken); err == nil {
		t.Fatal("revoked token still verifies")
	}
	if status := fhirRead(t, e, refreshed.AccessToken, "/Patient/pat-1"); status != http.StatusUnauthorized {
		t.Fatalf("FHIR read with a revoked token: %d", status)
	}
	if _, status, body := e.token(e.appTokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshed.RefreshToken}})); status != http.StatusBadRequest || oauthError(t, body) != "invalid_grant" {
		t.Fatalf("refresh after revocation: %d %s", status, body)
	}
}

// verifyAccessToken checks an access token with the published JWK Set.
func verifyAccessToken(t *testing.T, e *ehr, raw string) *accesstoken.Claims {
	t.Helper()
	remote := jwks.NewRemote(e.client, jwks.RemoteOptions{})
	claims, err := accesstoken.Verify(e.ctx(), raw, func(ctx contextT, kid, alg string) (publicKey, error) {
		return remote.Key(ctx, e.fhir+"/.well-known/jwks.json", kid, alg)
	}, accesstoken.VerifyOptions{Issuer: e.fhir, Audience: e.fhir})
	if err != nil {
		t.Fatalf("access token: %v", err)
	}
	return claims
}

// TestStandaloneLaunch: a public client registered through RFC 7591 signs
// a practitioner in, picks a patient, consents once, and refreshes with
// x/oauth2's own token source; a second launch skips the consent page.
func TestStandaloneLaunch(t *testing.T) {
	e := startEHR(t)
	ctx := e.ctx()
	redirect := e.app.URL + "/standalone"
	status, body := e.postJSON(authz.PathRegister, map[string]any{
		"client_name": "Standalone test app", "redirect_uris": []string{redirect},
		"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"},
		"scope": "openid fhirUser launch/patient online_access patient/*.rs",
	})
	if status != http.StatusCreated {
		t.Fatalf("register: %d %s", status, body)
	}
	var reg struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	json.Unmarshal(body, &reg)
	if reg.ClientID == "" || reg.ClientSecret != "" {
		t.Fatalf("registration %s", body)
	}
	conf := &oauth2.Config{
		ClientID:    reg.ClientID,
		Endpoint:    oauth2.Endpoint{AuthURL: e.url + authz.PathAuthorize, TokenURL: e.tokenURL(), AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL: redirect,
		Scopes:      []string{"openid", "fhirUser", "launch/patient", "online_access", "patient/*.rs"},
	}
	b := e.browser()
	run := func(wantConsent bool) *oauth2.Token {
		verifier := oauth2.GenerateVerifier()
		state := "standalone-" + verifier[:10]
		p := b.get(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("aud", e.fhir)))
		if p.status != http.StatusOK || !strings.Contains(p.body, `name="practitioner"`) {
			t.Fatalf("want the login page, got %d %s", p.status, p.body)
		}
		p = b.submit(p, url.Values{"action": {"login"}, "practitioner": {"prac-2"}})
		if p.status != http.StatusOK || !strings.Contains(p.body, `name="patient"`) {
			t.Fatalf("want the patient picker, got %d %s", p.status, p.body)
		}
		p = b.submit(p, url.Values{"action": {"patient"}, "patient": {"pat-2"}})
		if wantConsent {
			if p.status != http.StatusOK || !strings.Contains(p.body, `value="approve"`) {
				t.Fatalf("want the consent page, got %d %s", p.status, p.body)
			}
			p = b.submit(p, url.Values{"action": {"approve"}})
		}
		if p.status != http.StatusSeeOther || p.location.Query().Get("state") != state {
			t.Fatalf("want the redirect, got %d %v %s", p.status, p.location, p.body)
		}
		tok, err := conf.Exchange(ctx, p.location.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		return tok
	}
	tok := run(true)
	if tok.Extra("patient") != "pat-2" || tok.Extra("need_patient_banner") != true || tok.Extra("encounter") != nil {
		t.Fatalf("context %v %v %v", tok.Extra("patient"), tok.Extra("need_patient_banner"), tok.Extra("encounter"))
	}
	if claims := verifyAccessToken(t, e, tok.AccessToken); claims.Subject != "Practitioner/prac-2" || claims.Patient != "pat-2" {
		t.Fatalf("claims %+v", claims)
	}
	// x/oauth2 refreshes by itself once the token is expired.
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	fresh, err := conf.TokenSource(ctx, &expired).Token()
	if err != nil {
		t.Fatalf("refresh via x/oauth2: %v", err)
	}
	if fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == tok.RefreshToken || fresh.Extra("patient") != "pat-2" {
		t.Fatalf("refreshed %+v", fresh)
	}
	e.assertInactive(tok.AccessToken)
	// Second launch by the same user: no consent page.
	run(false)
}

// TestClientCredentials: the payer gets system/ tokens with x/oauth2's
// clientcredentials, by client_secret_basic and by private_key_jwt.
func TestClientCredentials(t *testing.T) {
	e := startEHR(t)
	ctx := e.ctx()
	basic := &clientcredentials.Config{
		ClientID: authz.PayerClientID, ClientSecret: payerSecret, TokenURL: e.tokenURL(),
		Scopes: []string{"system/Patient.rs"}, AuthStyle: oauth2.AuthStyleInHeader,
	}
	tok, err := basic.Token(ctx)
	if err != nil {
		t.Fatalf("basic: %v", err)
	}
	if tok.Extra("scope") != "system/Patient.rs" || tok.RefreshToken != "" || tok.Extra("patient") != nil {
		t.Fatalf("token %+v", tok)
	}
	claims := verifyAccessToken(t, e, tok.AccessToken)
	if claims.Subject != authz.PayerClientID || claims.ClientID != authz.PayerClientID || claims.Patient != "" {
		t.Fatalf("claims %+v", claims)
	}
	a, err := e.payerSigner().Assertion(e.tokenURL())
	if err != nil {
		t.Fatal(err)
	}
	jwtConf := &clientcredentials.Config{
		ClientID: authz.PayerClientID, TokenURL: e.tokenURL(), Scopes: []string{"system/*.rs"},
		AuthStyle:      oauth2.AuthStyleInParams,
		EndpointParams: url.Values{"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}},
	}
	if tok, err = jwtConf.Token(ctx); err != nil || tok.Extra("scope") != "system/*.rs" {
		t.Fatalf("private_key_jwt: %v %+v", err, tok)
	}
}

// fhirRead GETs {fhir}+path with the bearer token and returns the status.
func fhirRead(t *testing.T, e *ehr, token, path string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.fhir+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
