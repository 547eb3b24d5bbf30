package server_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"dtrsandbox/ehr/internal/authz"
)

// TestInteractionCookie: the cookie that binds a sign-in to its browser is
// __Host- prefixed, Secure, HttpOnly and SameSite=Lax, so a cross-site
// form post arrives without it and is refused; nothing is issued.
func TestInteractionCookie(t *testing.T) {
	e := startEHR(t)
	redirect := e.app.URL + "/cb"
	id := registerClient(t, e, map[string]any{
		"redirect_uris": []string{redirect}, "token_endpoint_auth_method": "none", "scope": "openid launch/patient patient/*.rs",
	})
	v := oauth2.GenerateVerifier()
	q := url.Values{
		"response_type": {"code"}, "client_id": {id}, "redirect_uri": {redirect}, "scope": {"openid launch/patient patient/*.rs"},
		"state": {"cookie-state-1"}, "aud": {e.fhir}, "code_challenge": {oauth2.S256ChallengeFromVerifier(v)}, "code_challenge_method": {"S256"},
	}
	victim := e.browser()
	login := victim.get(e.url + authz.PathAuthorize + "?" + q.Encode())
	var binding *http.Cookie
	for _, c := range (&http.Response{Header: login.header}).Cookies() {
		if c.Name == "__Host-ehr_authz" {
			binding = c
		}
	}
	if binding == nil || !binding.Secure || !binding.HttpOnly || binding.SameSite != http.SameSiteLaxMode || binding.Path != "/" || binding.Domain != "" {
		t.Fatalf("binding cookie %+v (Set-Cookie %q)", binding, login.header.Values("Set-Cookie"))
	}
	before := e.counts()
	// A page on another site posts the victim's form fields: the browser
	// sends no cookie with a cross-site POST (SameSite=Lax).
	form := login.formFields(t)
	form.Set("action", "login")
	form.Set("practitioner", "prac-1")
	resp, body := e.postForm(authz.PathInteract, form)
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Location") != "" {
		t.Fatalf("cookieless post: %d %s", resp.StatusCode, body)
	}
	// ... nor can it skip the form and deny on the user's behalf.
	form.Set("action", "deny")
	if resp, _ := e.postForm(authz.PathInteract, form); resp.StatusCode != http.StatusForbidden || resp.Header.Get("Location") != "" {
		t.Fatalf("cookieless deny: %d", resp.StatusCode)
	}
	e.assertNothingIssued(before)
	// The victim's own browser still completes the sign-in.
	picker := victim.submit(login, url.Values{"action": {"login"}, "practitioner": {"prac-1"}})
	if picker.status != http.StatusOK || !strings.Contains(picker.body, `name="patient"`) {
		t.Fatalf("picker: %d", picker.status)
	}
	// The picker's form is bound the same way.
	form = picker.formFields(t)
	form.Set("action", "patient")
	form.Set("patient", "pat-2")
	if resp, _ := e.postForm(authz.PathInteract, form); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cookieless picker post: %d", resp.StatusCode)
	}
	if csp := picker.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || picker.header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("picker framing headers %q", csp)
	}
}

var chartCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestChartLaunchForm: the chart's Launch DTR form is CSRF- and
// origin-checked, and the browser is only ever sent to the DTR app's
// registered launch URL, whatever the form carries.
func TestChartLaunchForm(t *testing.T) {
	e := startEHR(t)
	b := e.browser()
	csrfOf := func(p *page) string {
		t.Helper()
		m := chartCSRF.FindStringSubmatch(p.body)
		if m == nil {
			t.Fatalf("no csrf in %d %.300s", p.status, p.body)
		}
		return m[1]
	}
	loginPage := b.get(e.url + "/login")
	var session *http.Cookie
	for _, c := range (&http.Response{Header: loginPage.header}).Cookies() {
		if c.Name == "ehr_chart_session" {
			session = c
		}
	}
	if session == nil || !session.Secure || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode {
		t.Fatalf("session cookie %+v", session)
	}
	if p := b.post(e.url+"/login", url.Values{"csrf": {csrfOf(loginPage)}, "practitioner": {"prac-1"}}); p.status != http.StatusSeeOther {
		t.Fatalf("login: %d %s", p.status, p.body)
	}
	chart := b.get(e.url + "/patients/pat-1")
	csrf := csrfOf(chart)
	launches := func() int64 {
		var n int64
		e.srv.DB().Table("ehr_launches").Count(&n)
		return n
	}
	post := func(form url.Values, header ...string) *page {
		req, _ := http.NewRequest(http.MethodPost, e.url+"/patients/pat-1/launch", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		return b.do(req)
	}
	order := "DeviceRequest/dr-oxygen-1"
	before := launches()
	for name, p := range map[string]*page{
		"no csrf":         post(url.Values{"order": {order}}),
		"wrong csrf":      post(url.Values{"order": {order}, "csrf": {csrf + "x"}}),
		"cross-origin":    post(url.Values{"order": {order}, "csrf": {csrf}}, "Origin", "https://attacker.example"),
		"opaque origin":   post(url.Values{"order": {order}, "csrf": {csrf}}, "Origin", "null"),
		"another's order": post(url.Values{"order": {"DeviceRequest/dr-cpap-2"}, "csrf": {csrf}}),
		"not an order":    post(url.Values{"order": {"https://attacker.example/x"}, "csrf": {csrf}}),
		"no session":      e.browser().post(e.url+"/patients/pat-1/launch", url.Values{"order": {order}, "csrf": {csrf}}),
	} {
		if p.status >= 500 || (p.status == http.StatusSeeOther && p.location.Path != "/login") || (p.status != http.StatusSeeOther && p.status < 400) {
			t.Errorf("%s: %d %v", name, p.status, p.location)
		}
	}
	if launches() != before {
		t.Fatalf("a refused form created a launch")
	}
	p := post(url.Values{"order": {order}, "csrf": {csrf}, "launch_url": {"https://attacker.example/launch"}, "client_id": {"attacker"}})
	if p.status != http.StatusSeeOther || p.location == nil || p.location.Scheme+"://"+p.location.Host+p.location.Path != e.app.URL+"/launch" {
		t.Fatalf("launch went to %d %v", p.status, p.location)
	}
	if p.location.Query().Get("iss") != e.fhir || p.location.Query().Get("launch") == "" {
		t.Fatalf("launch URL %v", p.location)
	}
}
