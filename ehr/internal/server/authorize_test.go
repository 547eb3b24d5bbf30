package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"dtrsandbox/ehr/internal/authz"
	"dtrsandbox/ehr/internal/launch"
)

// TestAuthorizeRefusals: every class of bad authorization request. Errors
// about the client or the redirect URI are shown to the user and never
// redirected; the others go back to the registered redirect URI with the
// exact RFC 6749 §4.1.2.1 code and the state. None issues a code.
func TestAuthorizeRefusals(t *testing.T) {
	e := startEHR(t)
	callback := e.app.URL + "/callback"

	// A second client with its own launch, for the foreign-launch case.
	other := registerClient(t, e, map[string]any{
		"client_name": "Other app", "redirect_uris": []string{e.app.URL + "/other"}, "launch_url": e.app.URL + "/other-launch",
		"token_endpoint_auth_method": "none", "scope": "launch openid patient/*.rs",
	})
	foreign := e.launch(launch.Request{ClientID: other, Patient: "pat-2", Practitioner: "prac-2"})

	used := e.launch(dtrLaunch())
	verifier := oauth2.GenerateVerifier()
	if p := e.browser().get(e.authorizeURL(authParams{scope: dtrScope, state: "first-use-state", verifier: verifier, launch: used.Launch})); p.location == nil || p.location.Query().Get("code") == "" {
		t.Fatalf("first use of the launch: %d %v", p.status, p.location)
	}

	type tc struct {
		name string
		// build returns the authorization URL (launch is a fresh valid one).
		build func(launchID string) string
		// before runs ahead of the request (e.g. moves the clock).
		before func()
		// page: the error is shown, not redirected.
		page  bool
		code  string // the error code (redirect) or "" for a page
		state string // the state expected back ("" = none)
	}
	base := func(l string, extra url.Values) string {
		return e.authorizeURL(authParams{scope: dtrScope, state: "valid-state-123", verifier: verifier, launch: l, extra: extra})
	}
	cases := []tc{
		{name: "unknown client_id", page: true, build: func(l string) string { return base(l, url.Values{"client_id": {"nobody"}}) }},
		{name: "missing client_id", page: true, build: func(l string) string { return base(l, url.Values{"client_id": nil}) }},
		{name: "redirect_uri not registered", page: true, build: func(l string) string {
			return base(l, url.Values{"redirect_uri": {"https://attacker.example/callback"}})
		}},
		{name: "redirect_uri with a trailing slash", page: true, build: func(l string) string { return base(l, url.Values{"redirect_uri": {callback + "/"}}) }},
		{name: "redirect_uri with an extra query", page: true, build: func(l string) string { return base(l, url.Values{"redirect_uri": {callback + "?x=1"}}) }},
		{name: "redirect_uri in other case", page: true, build: func(l string) string {
			return base(l, url.Values{"redirect_uri": {strings.Replace(callback, "callback", "Callback", 1)}})
		}},
		{name: "redirect_uri missing", page: true, build: func(l string) string { return base(l, url.Values{"redirect_uri": nil}) }},
		{name: "redirect_uri repeated", page: true, build: func(l string) string {
			return base(l, url.Values{"redirect_uri": {callback, "https://attacker.example/cb"}})
		}},
		{name: "no code_challenge", code: "invalid_request", state: "valid-state-123", build: func(l string) string {
			return base(l, url.Values{"code_challenge": nil, "code_challenge_method": nil})
		}},
		{name: "code_challenge_method plain", code: "invalid_request", state: "valid-state-123", build: func(l string) string {
			return base(l, url.Values{"code_challenge": {verifier}, "code_challenge_method": {"plain"}})
		}},
		{name: "code_challenge_method missing", code: "invalid_request", state: "valid-state-123", build: func(l string) string {
			return base(l, url.Values{"code_challenge_method": nil})
		}},
		{name: "code_challenge not S256-shaped", code: "invalid_request", state: "valid-state-123", build: func(l string) string {
			return base(l, url.Values{"code_challenge": {"short"}})
		}},
		{name: "state missing", code: "invalid_request", build: func(l string) string { return base(l, url.Values{"state": nil}) }},
		{name: "state too short", code: "invalid_request", state: "abc", build: func(l string) string { return base(l, url.Values{"state": {"abc"}}) }},
		{name: "aud of another server", code: "invalid_request", state: "valid-state-123", build: func(l string) string {
			return base(l, url.Values{"aud": {"https://payer.example/fhir"}})
		}},
		{name: "aud missing", code: "invalid_request", state: "valid-state-123", build: func(l string) string { return base(l, url.Values{"aud": nil}) }},
		{name: "aud with another path", code: "invalid_request", state: "valid-state-123", build: func(l string) string {
			return base(l, url.Values{"aud": {e.url + "/fhir2"}})
		}},
		{name: "response_type token", code: "unsupported_response_type", state: "valid-state-123", build: func(l string) string {
			return base(l, url.Values{"response_type": {"token"}})
		}},
		{name: "response_mode fragment", code: "invalid_request", state: "valid-state-123", build: func(l string) string {
			return base(l, url.Values{"response_mode": {"fragment"}})
		}},
		{name: "scope beyond the registration", code: "invalid_scope", state: "valid-state-123", build: func(l string) string {
			return base(l, url.Values{"scope": {"launch openid patient/*.cruds"}})
		}},
		{name: "system scope not registered", code: "invalid_scope", state: "valid-state-123", build: func(l string) string {
			return base(l, url.Values{"scope": {"launch system/*.rs"}})
		}},
		{name: "malformed scope", code: "invalid_scope", state: "valid-state-123", build: func(l string) string {
			return base(l, url.Values{"scope": {"launch patient/*.xyz"}})
		}},
		{name: "launch scope without launch", code: "invalid_request", state: "valid-state-123", build: func(string) string { return base("", nil) }},
		{name: "launch without launch scope", code: "invalid_scope", state: "valid-state-123", build: func(l string) string {
			return base(l, url.Values{"scope": {"openid patient/*.rs"}})
		}},
		{name: "unknown launch", code: "invalid_request", state: "valid-state-123", build: func(string) string { return base("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", nil) }},
		{name: "reused launch", code: "invalid_request", state: "valid-state-123", build: func(string) string { return base(used.Launch, nil) }},
		{name: "launch of another client", code: "invalid_request", state: "valid-state-123", build: func(string) string { return base(foreign.Launch, nil) }},
		{name: "expired launch", code: "invalid_request", state: "valid-state-123",
			before: func() { e.clock.Advance(launch.DefaultTTL + time.Second) },
			build:  func(l string) string { return base(l, nil) }},
		{name: "request object", code: "request_not_supported", state: "valid-state-123", build: func(l string) string {
			return base(l, url.Values{"request": {"eyJhbGciOiJub25lIn0.eyJyZWRpcmVjdF91cmkiOiJodHRwczovL2F0dGFja2VyIn0."}})
		}},
		{name: "request_uri", code: "request_uri_not_supported", state: "valid-state-123", build: func(l string) string {
			return base(l, url.Values{"request_uri": {"urn:ietf:params:oauth:request_uri:abc"}})
		}},
		{name: "repeated scope", code: "invalid_request", state: "valid-state-123", build: func(l string) string {
			return base(l, url.Values{"scope": {"launch", "launch openid"}})
		}},
		{name: "short nonce", code: "invalid_request", state: "valid-state-123", build: func(l string) string {
			return base(l, url.Values{"nonce": {"n"}})
		}},
		{name: "unknown prompt", code: "invalid_request", state: "valid-state-123", build: func(l string) string {
			return base(l, url.Values{"prompt": {"select_account"}})
		}},
		{name: "prompt=login in an EHR launch", code: "login_required", state: "valid-state-123", build: func(l string) string {
			return base(l, url.Values{"prompt": {"login"}})
		}},
		{name: "prompt=none when login is needed", code: "login_required", state: "valid-state-123", build: func(string) string {
			return e.authorizeURL(authParams{scope: "openid patient/*.rs", state: "valid-state-123", verifier: verifier, extra: url.Values{"prompt": {"none"}}})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fresh := e.launch(dtrLaunch()).Launch
			if c.before != nil {
				c.before()
				defer e.clock.Reset()
			}
			before := e.counts()
			p := e.browser().get(c.build(fresh))
			if c.page {
				if p.location != nil || p.status != http.StatusBadRequest || !strings.Contains(p.body, "Error code: ") {
					t.Fatalf("want an error page without redirect, got %d %v %.200s", p.status, p.location, p.body)
				}
			} else {
				if got := p.errorFrom(t, callback); got != c.code {
					t.Fatalf("error %q (%s), want %q", got, p.location.Query().Get("error_description"), c.code)
				}
				if got := p.location.Query().Get("state"); got != c.state {
					t.Fatalf("state %q, want %q", got, c.state)
				}
			}
			e.assertNothingIssued(before)
		})
	}

	// The foreign attempt did not spend the other client's launch.
	ov := oauth2.GenerateVerifier()
	q := url.Values{
		"response_type": {"code"}, "client_id": {other}, "redirect_uri": {e.app.URL + "/other"}, "scope": {"launch openid"},
		"state": {"other-state-1"}, "aud": {e.fhir}, "launch": {foreign.Launch},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(ov)}, "code_challenge_method": {"S256"},
	}
	p := e.browser().get(e.url + authz.PathAuthorize + "?" + q.Encode())
	// A non-approved client sees the consent page (user from the launch,
	// no login page).
	if p.status != http.StatusOK || !strings.Contains(p.body, `value="approve"`) || strings.Contains(p.body, `name="practitioner"`) {
		t.Fatalf("other client with its launch: %d %.300s", p.status, p.body)
	}
}

// TestAuthorizePost: the same request sent as a form (SMART authorize-post).
func TestAuthorizePost(t *testing.T) {
	e := startEHR(t)
	l := e.launch(dtrLaunch())
	verifier := oauth2.GenerateVerifier()
	u, _ := url.Parse(e.authorizeURL(authParams{scope: dtrScope, state: "post-state-01", verifier: verifier, launch: l.Launch}))
	p := e.browser().post(e.url+authz.PathAuthorize, u.Query())
	code := p.codeFrom(t, e, "post-state-01")
	if tr, status, body := e.exchange(code, verifier); tr == nil || tr.Patient != "pat-1" {
		t.Fatalf("exchange: %d %s", status, body)
	}
}

// TestInteractionForms: the consent form is bound to its browser and CSRF
// token, accepts each action only at its step, and issues one code.
func TestInteractionForms(t *testing.T) {
	e := startEHR(t)
	redirect := e.app.URL + "/cb"
	id := registerClient(t, e, map[string]any{
		"redirect_uris": []string{redirect}, "token_endpoint_auth_method": "none", "scope": "openid launch/patient patient/*.rs",
	})
	start := func(b *browser) *page {
		v := oauth2.GenerateVerifier()
		q := url.Values{
			"response_type": {"code"}, "client_id": {id}, "redirect_uri": {redirect}, "scope": {"openid launch/patient patient/*.rs"},
			"state": {"forms-state-1"}, "aud": {e.fhir}, "code_challenge": {oauth2.S256ChallengeFromVerifier(v)}, "code_challenge_method": {"S256"},
		}
		p := b.get(e.url + authz.PathAuthorize + "?" + q.Encode())
		if p.status != http.StatusOK {
			t.Fatalf("login page: %d %s", p.status, p.body)
		}
		return p
	}
	victim := e.browser()
	login := start(victim)

	t.Run("other browser", func(t *testing.T) {
		attacker := e.browser()
		start(attacker) // the attacker has a binding cookie of its own
		p := attacker.submit(login, url.Values{"action": {"login"}, "practitioner": {"prac-1"}})
		if p.status != http.StatusForbidden {
			t.Fatalf("got %d", p.status)
		}
	})
	t.Run("wrong csrf", func(t *testing.T) {
		form := login.formFields(t)
		form.Set("csrf", strings.Repeat("A", 43))
		form.Set("action", "login")
		form.Set("practitioner", "prac-1")
		if p := victim.post(e.url+authz.PathInteract, form); p.status != http.StatusForbidden {
			t.Fatalf("got %d", p.status)
		}
	})
	t.Run("approve before login", func(t *testing.T) {
		if p := victim.submit(login, url.Values{"action": {"approve"}}); p.status != http.StatusConflict {
			t.Fatalf("got %d", p.status)
		}
	})
	t.Run("unknown practitioner", func(t *testing.T) {
		if p := victim.submit(login, url.Values{"action": {"login"}, "practitioner": {"prac-999"}}); p.status != http.StatusBadRequest || !strings.Contains(p.body, `name="practitioner"`) {
			t.Fatalf("got %d %.200s", p.status, p.body)
		}
	})
	picker := victim.submit(login, url.Values{"action": {"login"}, "practitioner": {"prac-1"}})
	consent := victim.submit(picker, url.Values{"action": {"patient"}, "patient": {"pat-3"}})
	if !strings.Contains(consent.body, `value="approve"`) {
		t.Fatalf("consent page: %d %s", consent.status, consent.body)
	}
	if csp := consent.header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' "+e.app.URL) || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("consent page CSP %q", csp)
	}
	if cc := consent.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("consent page Cache-Control %q", cc)
	}
	before := e.counts()
	done := victim.submit(consent, url.Values{"action": {"approve"}})
	if done.status != http.StatusSeeOther || done.location.Query().Get("code") == "" {
		t.Fatalf("approve: %d %v", done.status, done.location)
	}
	if after := e.counts(); after["oauth_authorize_codes"] != before["oauth_authorize_codes"]+1 {
		t.Fatalf("codes %v -> %v", before, after)
	}
	t.Run("submitted twice", func(t *testing.T) {
		before := e.counts()
		if p := victim.submit(consent, url.Values{"action": {"approve"}}); p.status != http.StatusBadRequest || p.location != nil {
			t.Fatalf("got %d %v", p.status, p.location)
		}
		e.assertNothingIssued(before)
	})
	t.Run("deny", func(t *testing.T) {
		b := e.browser()
		p := start(b)
		p = b.submit(p, url.Values{"action": {"deny"}})
		if got := p.errorFrom(t, redirect); got != "access_denied" || p.location.Query().Get("state") != "forms-state-1" {
			t.Fatalf("deny: %s", p.location)
		}
	})
}

// registerClient registers a client and returns its id.
func registerClient(t testing.TB, e *ehr, meta map[string]any) string {
	t.Helper()
	status, body := e.postJSON(authz.PathRegister, meta)
	if status != http.StatusCreated {
		t.Fatalf("register: %d %s", status, body)
	}
	var out struct {
		ClientID string `json:"client_id"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.ClientID == "" {
		t.Fatalf("register: %s", body)
	}
	return out.ClientID
}
