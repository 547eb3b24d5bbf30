package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"dtrsandbox/ehr/internal/authz"
	"dtrsandbox/ehr/internal/launch"
	"dtrsandbox/ehr/internal/oauthstore"
)

// TestRedirectURIRegistration: what RFC 7591 registration accepts as a
// redirect URI (https, or http on a loopback address, RFC 8252 §7.3) and
// what it refuses with invalid_redirect_uri, storing nothing.
func TestRedirectURIRegistration(t *testing.T) {
	e := startEHR(t)
	register := func(uri string) (int, string) {
		status, body := e.postJSON(authz.PathRegister, map[string]any{
			"redirect_uris": []string{uri}, "token_endpoint_auth_method": "none", "scope": "openid",
		})
		if status == http.StatusCreated {
			return status, ""
		}
		return status, oauthError(t, body)
	}
	clients := func() int64 {
		var n int64
		e.srv.DB().Table(oauthstore.TableClients).Count(&n)
		return n
	}
	for _, uri := range []string{
		"https://app.example/cb", "https://app.example:8443/cb?tenant=a", "http://127.0.0.1:9000/cb", "http://[::1]:9000/cb",
		"http://localhost:9000/cb", "http://[::ffff:127.0.0.1]/cb",
	} {
		if status, code := register(uri); status != http.StatusCreated {
			t.Errorf("%q refused: %s", uri, code)
		}
	}
	for _, uri := range []string{
		"http://app.example/cb",                // http off loopback
		"http://localhost.evil.example/cb",     // looks like loopback
		"http://127.0.0.1.nip.io/cb",           // resolves to loopback, but is a name
		"http://127.1/cb",                      // short form: not an IP literal Go accepts
		"http://0.0.0.0/cb",                    // not loopback
		"http://0177.0.0.1/cb",                 // octal
		"https://app.example/cb#",              // empty fragment
		"https://app.example/cb#x",             // fragment
		"https://user@app.example/cb",          // user info
		"https://app.example@evil.example/cb",  // user info hiding the host
		`https://evil.example\@app.example/cb`, // backslash trick
		"https://app.example%2f@evil.example/cb",
		"https://*.app.example/cb",      // wildcard
		"https://app.example/c b",       // space
		"https://app.example/cb\u2028",  // not ASCII (an IRI, not a URI)
		"https://app.example/caf\u00e9", // not ASCII
		"https://app.example/cb\x7f",    // DEL
		"https:///cb",                   // no host
		"//app.example/cb",              // scheme-relative
		"/cb",                           // relative
		"javascript:alert(1)",
		"data:text/html,<script>alert(1)</script>",
		"file:///etc/passwd",
		"ftp://app.example/cb",
		"app.example/cb",
		"https://app.example/" + strings.Repeat("a", authz.MaxURLLength),
	} {
		before := clients()
		if status, code := register(uri); status != http.StatusBadRequest || code != "invalid_redirect_uri" {
			t.Errorf("%q: got %d %s, want 400 invalid_redirect_uri", uri, status, code)
		}
		if after := clients(); after != before {
			t.Errorf("%q: a client was stored", uri)
		}
	}
}

// TestRedirectURIMatching: at the authorization endpoint the redirect_uri
// must be one the client registered, compared as an exact string. Every
// near miss is shown as an error page (400) and never redirected to.
func TestRedirectURIMatching(t *testing.T) {
	e := startEHR(t)
	registered := e.app.URL + "/cb" // http://127.0.0.1:PORT/cb
	u, _ := url.Parse(registered)
	port := u.Port()
	id := registerClient(t, e, map[string]any{
		"redirect_uris": []string{registered, "https://app.example/cb?tenant=a"}, "token_endpoint_auth_method": "none",
		"scope": "openid launch/patient patient/*.rs",
	})
	authorize := func(redirectURI string) *page {
		v := oauth2.GenerateVerifier()
		q := url.Values{
			"response_type": {"code"}, "client_id": {id}, "redirect_uri": {redirectURI}, "scope": {"openid patient/*.rs"},
			"state": {"matching-state-1"}, "aud": {e.fhir}, "code_challenge": {oauth2.S256ChallengeFromVerifier(v)},
			"code_challenge_method": {"S256"},
		}
		return e.browser().get(e.url + authz.PathAuthorize + "?" + q.Encode())
	}
	for _, ok := range []string{registered, "https://app.example/cb?tenant=a"} {
		if p := authorize(ok); p.status != http.StatusOK || !strings.Contains(p.body, `name="practitioner"`) {
			t.Errorf("%q: want the login page, got %d %v", ok, p.status, p.location)
		}
	}
	for _, miss := range []string{
		"http://localhost:" + port + "/cb",        // localhost for 127.0.0.1
		"http://[::1]:" + port + "/cb",            // another loopback address
		"http://127.0.0.1:1/cb",                   // another port
		"http://127.0.0.1/cb",                     // no port
		"HTTP://127.0.0.1:" + port + "/cb",        // scheme case
		"http://127.0.0.1:" + port + "/CB",        // path case
		registered + "/",                          // trailing slash
		registered + "?",                          // empty query
		registered + "?x=1",                       // extra query
		registered + "#",                          // empty fragment
		registered + "#x",                         // fragment
		"http://127.0.0.1:" + port + "/%63b",      // percent-encoded "c"
		"http://127.0.0.1:" + port + "/./cb",      // dot segment
		"http://127.0.0.1:" + port + "//cb",       // double slash
		"http://u@127.0.0.1:" + port + "/cb",      // user info
		"http://127.0.0.1:" + port + "@evil/cb",   // host smuggling
		"https://app.example/cb",                  // registered with its query only
		"https://app.example/cb?tenant=a&x=1",     // extra query on a registered one
		"https://app.example/cb?tenant=b",         // another query
		url.QueryEscape(registered),               // double encoding
		" " + registered,                          // leading space
		registered + "\n",                         // trailing newline
		"https://attacker.example/cb",             // foreign
		"javascript:alert(document.domain)//cb",   // script
		"http://127.0.0.1:" + port + "\\@evil/cb", // backslash
	} {
		p := authorize(miss)
		if p.status != http.StatusBadRequest || p.location != nil || !strings.Contains(p.body, "Error code: invalid_request") {
			t.Errorf("%q: want an error page, got %d %v", miss, p.status, p.location)
		}
		if strings.Contains(p.body, "attacker.example") || strings.Contains(p.body, "evil") {
			t.Errorf("%q: the page echoes the redirect URI", miss)
		}
	}
}

// TestLaunchURL: the launch_url of POST /api/launch can only send the
// launch to the client's own origins (its registered launch URL or
// redirect URIs), so the launch API cannot be used as an open redirect or
// to hand a launch id to a third party; a refusal stores no launch.
func TestLaunchURL(t *testing.T) {
	e := startEHR(t)
	app, _ := url.Parse(e.app.URL) // http://127.0.0.1:PORT
	launches := func() int64 {
		var n int64
		e.srv.DB().Table("ehr_launches").Count(&n)
		return n
	}
	with := func(u string) launch.Request { r := dtrLaunch(); r.LaunchURL = u; return r }
	for _, bad := range []string{
		"https://attacker.example/launch",
		"http://localhost:" + app.Port() + "/launch",  // same app, other host name
		"http://127.0.0.1:1/launch",                   // other port
		"https://127.0.0.1:" + app.Port() + "/launch", // other scheme
		e.app.URL + "@attacker.example/launch",        // user info hiding the host
		"http://attacker.example\\@" + app.Host + "/launch",
		e.app.URL + "/launch#frag",
		"javascript://" + app.Host + "/%0aalert(1)",
		"//" + app.Host + "/launch",
		"/launch",
		"data:text/html,x",
	} {
		before := launches()
		status, body := e.postJSON("/api/launch", with(bad))
		if status != http.StatusBadRequest || oauthError(t, body) != "invalid_request" {
			t.Errorf("%q: got %d %s", bad, status, body)
		}
		if launches() != before {
			t.Errorf("%q: a launch was stored", bad)
		}
	}
	// Its own origin, any path: accepted, with iss and launch added.
	l := e.launch(with(e.app.URL + "/other/launch?x=1"))
	lu, _ := url.Parse(l.LaunchURL)
	if lu.Host != app.Host || lu.Path != "/other/launch" || lu.Query().Get("x") != "1" || lu.Query().Get("launch") != l.Launch || lu.Query().Get("iss") != e.fhir {
		t.Fatalf("launch_url %s", l.LaunchURL)
	}
	// A launch_url trying to pre-set iss or launch gets the EHR's values.
	l = e.launch(with(e.app.URL + "/launch?iss=https://attacker.example/fhir&launch=forged"))
	lu, _ = url.Parse(l.LaunchURL)
	if lu.Query()["iss"][0] != e.fhir || len(lu.Query()["iss"]) != 1 || lu.Query()["launch"][0] != l.Launch || len(lu.Query()["launch"]) != 1 {
		t.Fatalf("launch_url %s", l.LaunchURL)
	}
}

// TestJWKSURIRegistration: a private_key_jwt client's jwks_uri must be
// https, or http on a loopback address: no plain-http fetch of internal
// addresses (cloud metadata, private networks) on a client's say-so.
func TestJWKSURIRegistration(t *testing.T) {
	e := startEHR(t)
	register := func(uri string) (int, []byte) {
		return e.postJSON(authz.PathRegister, map[string]any{
			"redirect_uris": []string{"https://app.example/cb"}, "token_endpoint_auth_method": "private_key_jwt",
			"jwks_uri": uri, "token_endpoint_auth_signing_alg": "ES384", "scope": "openid",
		})
	}
	for _, bad := range []string{
		"http://169.254.169.254/latest/meta-data/", "http://metadata.google.internal/computeMetadata/v1/",
		"http://10.0.0.1/jwks.json", "http://192.168.1.1/jwks.json", "http://0.0.0.0:8441/jwks.json", "http://[::]:8441/jwks.json",
		"http://127.0.0.1.nip.io/jwks.json", "http://localhost.evil.example/jwks.json", "file:///etc/passwd",
		"ftp://app.example/jwks.json", "gopher://127.0.0.1:25/", "https://app.example/jwks.json#x", "https://u:p@app.example/jwks.json",
		"/jwks.json",
	} {
		if status, body := register(bad); status != http.StatusBadRequest || oauthError(t, body) != "invalid_client_metadata" {
			t.Errorf("%q: got %d %s", bad, status, body)
		}
	}
	for _, ok := range []string{"https://app.example/jwks.json", "http://127.0.0.1:9/jwks.json", "http://[::1]:9/jwks.json", "http://localhost:9/jwks.json"} {
		if status, body := register(ok); status != http.StatusCreated {
			t.Errorf("%q: got %d %s", ok, status, body)
		}
	}
}
