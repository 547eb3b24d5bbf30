package server

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/smart"
	"dtrsandbox/smartapp/internal/standin"
)

func TestUnknownIssuerGetsAPageNotARedirect(t *testing.T) {
	h := newHarness(t, standin.EHROptions{})
	for _, path := range []string{
		"/launch?iss=https%3A%2F%2Fevil.example%2Ffhir&launch=abc",
		"/standalone?iss=https%3A%2F%2Fevil.example%2Ffhir",
	} {
		resp, err := h.noFollow().Get(h.app.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Fatalf("%s: %d Location %q", path, resp.StatusCode, resp.Header.Get("Location"))
		}
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || resp.Header.Get("Content-Security-Policy") == "" {
			t.Fatalf("%s: headers %v", path, resp.Header)
		}
	}
	resp, body := h.do(http.MethodGet, "/launch?iss="+url.QueryEscape(h.ehr.Issuer()), nil, nil)
	if resp.StatusCode != http.StatusBadRequest || !contains(body, "no launch parameter") {
		t.Fatalf("launch without launch: %d %s", resp.StatusCode, body)
	}
}

func TestEHRLaunchStepByStep(t *testing.T) {
	h := newHarness(t, standin.EHROptions{})
	c := h.noFollow()
	resp, err := c.Get(h.launchURL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	authz := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(authz, h.ehr.Server.URL+"/authorize?") {
		t.Fatalf("launch: %d %q", resp.StatusCode, authz)
	}
	pending := sessionCookie(t, resp, h.srv.cookie)
	if !pending.HttpOnly || pending.SameSite != http.SameSiteLaxMode || pending.Path != "/" {
		t.Fatalf("pending cookie %+v", pending)
	}
	resp, err = c.Get(authz)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = c.Get(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/app" {
		t.Fatalf("callback: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	authed := sessionCookie(t, resp, h.srv.cookie)
	if authed.Value == pending.Value || !authed.HttpOnly || authed.Secure {
		t.Fatalf("session id not rotated or wrong attributes: %+v", authed)
	}
	if h.srv.Sessions().Get(pending.Value) != nil {
		t.Fatal("the pre-authorization session survived the callback")
	}
	if !strings.Contains(h.ehr.LastAuthorize().Get("scope"), "launch") || h.ehr.LastTokenForm().Get("code_verifier") == "" {
		t.Fatal("no PKCE verifier sent")
	}
}

func sessionCookie(t *testing.T, resp *http.Response, name string) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", name, resp.Header["Set-Cookie"])
	return nil
}

func TestSecureCookieUnderTLS(t *testing.T) {
	h := newHarness(t, standin.EHROptions{})
	key, _ := jwks.Generate(jwks.ES384)
	cfg := h.srv.cfg
	cfg.SigningKey, cfg.SecureCookies = key, true
	srv, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if srv.cookie != "__Host-dtr_session" {
		t.Fatalf("cookie name %q", srv.cookie)
	}
}

func TestCallbackRefusals(t *testing.T) {
	h := newHarness(t, standin.EHROptions{})
	// No pre-authorization session at all.
	resp, body := h.do(http.MethodGet, "/callback?code=abc&state=def", nil, nil)
	if resp.StatusCode != http.StatusBadRequest || !contains(body, "not started here") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	// A pending session, but a forged state.
	c := h.noFollow()
	r, err := c.Get(h.launchURL())
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	resp, body = h.do(http.MethodGet, "/callback?code=abc&state=forged", nil, nil)
	if resp.StatusCode != http.StatusBadRequest || !contains(body, "state mismatch") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	// The EHR said no.
	r, _ = c.Get(h.launchURL())
	r.Body.Close()
	state := mustParse(t, r.Header.Get("Location")).Query().Get("state")
	resp, body = h.do(http.MethodGet, "/callback?"+url.Values{"state": {state}, "error": {"access_denied"}, "error_description": {"<b>no</b>"}}.Encode(), nil, nil)
	if resp.StatusCode != http.StatusForbidden || !contains(body, "&lt;b&gt;no&lt;/b&gt;") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestAPIRequiresSessionAndCSRF(t *testing.T) {
	h := newHarness(t, standin.EHROptions{})
	var e apiError
	body := h.getJSON("/api/context", http.StatusUnauthorized, nil)
	_ = json.Unmarshal(body, &e)
	if e.Code != "no_session" {
		t.Fatalf("%s", body)
	}
	csrf := h.launch()
	for name, hdr := range map[string]http.Header{
		"no token":     {"Content-Type": {"application/json"}},
		"wrong token":  {"Content-Type": {"application/json"}, "X-Csrf-Token": {"nope"}},
		"cross origin": {"Content-Type": {"application/json"}, "X-Csrf-Token": {csrf}, "Origin": {"https://evil.example"}},
		"form post":    {"Content-Type": {"application/x-www-form-urlencoded"}, "X-Csrf-Token": {csrf}},
	} {
		resp, b := h.do(http.MethodPost, "/api/draft", hdr, response("2"))
		if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Fatalf("%s: %d %s", name, resp.StatusCode, b)
		}
	}
	if len(h.payer.Docs()) != 0 {
		t.Fatal("a refused request reached the payer")
	}
	resp, b := h.post("/api/draft", csrf, response("2"))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

func TestJSONFlowAndNoTokenReachesTheBrowser(t *testing.T) {
	h := newHarness(t, standin.EHROptions{NeedPatientBanner: true})
	csrf := h.launch()
	var ctx struct {
		Patient struct{ Name, BirthDate string }
		Order   struct{ Reference string }
		Banner  bool `json:"need_patient_banner"`
	}
	bodies := [][]byte{h.getJSON("/api/context", 200, &ctx)}
	if ctx.Patient.Name != "Harold James Whitfield" || ctx.Order.Reference != "DeviceRequest/dr-oxygen-1" || !ctx.Banner {
		t.Fatalf("context %+v", ctx)
	}
	var form struct {
		Questionnaire json.RawMessage
		Draft         *struct{ ID string }
	}
	bodies = append(bodies, h.getJSON("/api/questionnaire", 200, &form))
	if form.Draft != nil || !contains(form.Questionnaire, "home-oxygen") {
		t.Fatalf("form draft %+v", form.Draft)
	}
	resp, b := h.post("/api/draft", csrf, response("2.5"))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	bodies = append(bodies, b)
	resp, b = h.post("/api/draft", csrf, response("3"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	bodies = append(bodies, h.getJSON("/api/questionnaire", 200, &form))
	if form.Draft == nil {
		t.Fatal("saved draft not offered")
	}
	var sec securityView
	bodies = append(bodies, h.getJSON("/api/security", 200, &sec))
	if !contains(sec.EHR.AccessToken.Payload, `"patient":"pat-1"`) || sec.Payer.AccessToken == nil || len(sec.PayerAnswers) < 3 || sec.EHR.IDToken == nil {
		t.Fatalf("security %+v", sec)
	}
	resp, b = h.post("/api/submit", csrf, response("3"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("submit %d %s", resp.StatusCode, b)
	}
	bodies = append(bodies, b)
	var docs []struct{ ID, Status, DocStatus string }
	bodies = append(bodies, h.getJSON("/api/documents", 200, &docs))
	if len(docs) != 2 {
		t.Fatalf("documents %+v", docs)
	}
	_, page := h.do(http.MethodGet, "/app", nil, nil)
	bodies = append(bodies, page)

	sess := h.session()
	ehrToken, _ := sess.EHRAccessToken()
	payerToken, ok := sess.PayerToken(h.clock.Now(), 0)
	if !ok {
		t.Fatal("no payer token")
	}
	for _, tok := range []string{ehrToken, payerToken} {
		if !jwtPattern.MatchString(tok) {
			t.Fatalf("jwtPattern (the harness's check of every answer) does not match a real token %.40s…", tok)
		}
		sig := tok[strings.LastIndex(tok, ".")+1:]
		for i, b := range bodies {
			if contains(b, tok) || contains(b, sig) {
				t.Fatalf("answer %d carries a token: %.200s", i, b)
			}
		}
	}
}

// TestExpiredSession: the EHR token expires in the middle of the work
// (form loaded, a draft saved). Every API call then answers 401 JSON with
// code session_expired and a relaunch hint, nothing reaches the payer, and
// /app answers a page that says what to do: no 500, no stack trace.
func TestExpiredSession(t *testing.T) {
	h := newHarness(t, standin.EHROptions{TokenTTL: 10 * time.Minute})
	csrf := h.launch()
	h.getJSON("/api/questionnaire", http.StatusOK, nil)
	if resp, b := h.post("/api/draft", csrf, response("2")); resp.StatusCode != http.StatusCreated {
		t.Fatalf("draft before expiry: %d %s", resp.StatusCode, b)
	}
	payerCalls := len(h.payer.Recorded())
	h.clock.Advance(11 * time.Minute)
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/api/context"}, {http.MethodGet, "/api/questionnaire"}, {http.MethodGet, "/api/documents"},
		{http.MethodGet, "/api/security"}, {http.MethodPost, "/api/draft"}, {http.MethodPost, "/api/submit"},
	} {
		var resp *http.Response
		var body []byte
		if c.method == http.MethodPost {
			resp, body = h.post(c.path, csrf, response("3"))
		} else {
			resp, body = h.do(c.method, c.path, nil, nil)
		}
		var e apiError
		if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != http.StatusUnauthorized || e.Code != "session_expired" ||
			!strings.Contains(e.Message, "Relaunch the app from the EHR") || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s after expiry: %d %s", c.method, c.path, resp.StatusCode, body)
		}
	}
	if n := len(h.payer.Recorded()); n != payerCalls {
		t.Errorf("%d payer calls after the EHR session expired", n-payerCalls)
	}
	if len(h.payer.Docs()) != 1 {
		t.Errorf("%d documents, want the one draft saved before expiry", len(h.payer.Docs()))
	}
	resp, page := h.do(http.MethodGet, "/app", nil, nil)
	if resp.StatusCode != http.StatusUnauthorized || !contains(page, "EHR session expired") || !contains(page, "Relaunch") ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("%d %s", resp.StatusCode, page)
	}
}

// TestEHRRefusesTheTokenMidSession: the EHR stops accepting the token
// before its exp (revoked, or the EHR restarted) just as the answers are
// submitted: the final document is at the payer, the write-back is refused.
// The app answers 401 with a relaunch hint and what was already done, not
// a 5xx.
func TestEHRRefusesTheTokenMidSession(t *testing.T) {
	h := newHarness(t, standin.EHROptions{})
	csrf := h.launch()
	h.getJSON("/api/questionnaire", http.StatusOK, nil)
	h.ehr.RevokeTokens()
	resp, body := h.post("/api/submit", csrf, response("3"))
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if resp.StatusCode != http.StatusUnauthorized || e.Code != "submit_incomplete" || e.Source != "ehr" || e.Status != http.StatusUnauthorized ||
		!strings.Contains(e.Message, "relaunch the app from the EHR") || e.Done == nil || e.Done.DocumentID == "" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if len(h.ehr.WrittenBack()) != 0 {
		t.Fatal("written back with a refused token")
	}
}

// TestSignerRefusesANearlyExpiredSession: a session whose EHR token
// expires within the signer's margin gets no payer client assertion; the
// page is told to relaunch, and the payer's token endpoint is never asked.
func TestSignerRefusesANearlyExpiredSession(t *testing.T) {
	h := newHarness(t, standin.EHROptions{TokenTTL: 10 * time.Minute})
	h.launch()
	exp := h.session().ExpiresAt()
	h.clock.Advance(exp.Sub(h.clock.Now()) - 2*time.Second) // the app's session is live, for 2 s
	var e apiError
	body := h.getJSON("/api/questionnaire", http.StatusUnauthorized, &e)
	if e.Code != "session_expired" || !strings.Contains(e.Message, "Relaunch") {
		t.Fatalf("%s", body)
	}
	if n := h.payer.TokenRequests(); n != 0 {
		t.Fatalf("%d payer token requests for a session the signer must refuse", n)
	}
}

func TestPayerFailuresAnswerJSON(t *testing.T) {
	tests := []struct {
		fault    standin.Fault
		http     int
		code     string
		retry    string
		contains string
	}{
		{standin.Fault{Status: 503, Diag: "maintenance window"}, 502, "payer_error", "", "temporarily unavailable"},
		{standin.Fault{Status: 403, Diag: "subject mismatch"}, 502, "payer_error", "", "subject mismatch"},
		{standin.Fault{Status: 429, RetryAfter: "12"}, 429, "payer_rate_limited", "12", "12 seconds"},
		{standin.Fault{Status: 412, Diag: "version mismatch"}, 409, "draft_conflict", "", "changed elsewhere"},
		// 401 twice: the app drops its cached payer token, gets a fresh one,
		// and gives up when that is refused too.
		{standin.Fault{Status: 401, Diag: "EHR token not accepted", Times: 2}, 502, "payer_error", "", "did not accept the app's credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.code+"/"+http.StatusText(tt.fault.Status), func(t *testing.T) {
			h := newHarness(t, standin.EHROptions{})
			csrf := h.launch()
			h.getJSON("/api/questionnaire", 200, nil)
			f := tt.fault
			f.Path = "DocumentReference"
			h.payer.Fail(f)
			resp, body := h.post("/api/draft", csrf, response("2"))
			var e apiError
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if resp.StatusCode != tt.http || e.Code != tt.code || e.Status != tt.fault.Status || e.Source != "payer" ||
				!strings.Contains(e.Message, tt.contains) || e.Outcome == nil {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if resp.Header.Get("Retry-After") != tt.retry || e.RetryAfter != tt.retry {
				t.Fatalf("Retry-After %q, retry_after %q", resp.Header.Get("Retry-After"), e.RetryAfter)
			}
			// The fault is spent: the same draft now saves.
			if resp, body := h.post("/api/draft", csrf, response("2")); resp.StatusCode != http.StatusCreated {
				t.Fatalf("after the fault: %d %s", resp.StatusCode, body)
			}
		})
	}
	// The payer's token endpoint refuses (SMART Backend Services: OAuth
	// errors, 429 with Retry-After).
	for _, tt := range []struct {
		fault      standin.Fault
		http       int
		code, want string
	}{
		{standin.Fault{Status: 429, RetryAfter: "30", Diag: "too many token requests"}, 429, "payer_rate_limited", "try again in 30 seconds"},
		{standin.Fault{Status: 401, Diag: "unknown key"}, 502, "payer_error", "did not issue a token"},
		{standin.Fault{Status: 400, Diag: "scope not allowed"}, 502, "payer_error", "scope not allowed"},
	} {
		t.Run("token endpoint "+http.StatusText(tt.fault.Status), func(t *testing.T) {
			h := newHarness(t, standin.EHROptions{})
			csrf := h.launch()
			h.payer.FailToken(tt.fault)
			resp, body := h.post("/api/draft", csrf, response("2"))
			var e apiError
			_ = json.Unmarshal(body, &e)
			if resp.StatusCode != tt.http || e.Code != tt.code || e.Status != tt.fault.Status || !strings.Contains(e.Message, tt.want) {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if tt.fault.RetryAfter != "" && resp.Header.Get("Retry-After") != tt.fault.RetryAfter {
				t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		h := newHarness(t, standin.EHROptions{})
		csrf := h.launch()
		h.payer.Server.Close()
		resp, body := h.post("/api/draft", csrf, response("2"))
		var e apiError
		_ = json.Unmarshal(body, &e)
		if resp.StatusCode != http.StatusBadGateway || e.Code != "payer_unreachable" || e.Status != 0 || e.Source != "payer" ||
			!strings.Contains(e.Message, "could not be reached") {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
}

func TestPagesAndKeys(t *testing.T) {
	h := newHarness(t, standin.EHROptions{})
	resp, body := h.do(http.MethodGet, "/", nil, nil)
	if resp.StatusCode != 200 || !contains(body, h.ehr.Issuer()) || !contains(body, `href="/standalone?iss=`) {
		t.Fatalf("home %d %s", resp.StatusCode, body)
	}
	checkCSP(t, "/", resp)
	resp, body = h.do(http.MethodGet, "/.well-known/jwks.json", nil, nil)
	if set, err := jwks.ParsePublicSet(body); resp.StatusCode != 200 || err != nil || len(set.Keys) != 1 {
		t.Fatalf("jwks %d %v", resp.StatusCode, err)
	}
	resp, _ = h.do(http.MethodGet, "/healthz", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	resp, body = h.do(http.MethodGet, "/app", nil, nil)
	if resp.StatusCode != http.StatusUnauthorized || !contains(body, "Not signed in") {
		t.Fatalf("/app without session %d", resp.StatusCode)
	}
	checkCSP(t, "/app (error page)", resp)
	resp, _ = h.do(http.MethodGet, "/no-such-page", nil, nil)
	checkCSP(t, "404 page", resp)
	for _, p := range []string{"/static/smartapp/app.js", "/static/lforms/40.1.3/webcomponent/main.js", "/static/css/sandbox.css"} {
		if resp, _ := h.do(http.MethodGet, p, nil, nil); resp.StatusCode != 200 {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
	}
	h.launch()
	resp, page := h.do(http.MethodGet, "/app", nil, nil)
	checkCSP(t, "/app", resp)
	if regexp.MustCompile(`<script(\s[^>]*)?>\s*[^<\s]`).Match(page) || regexp.MustCompile(`\son[a-z]+\s*=`).Match(page) ||
		!contains(page, `src="/static/smartapp/app.js"`) {
		t.Fatalf("inline script or event handler on the app page, or app.js missing:\n%s", page)
	}
}

// checkCSP parses a page's Content-Security-Policy (CSP3 §2.2) and
// requires scripts from this origin only: script-src (or default-src, which
// it falls back to) exactly 'self', no 'unsafe-inline', 'unsafe-eval',
// data:, blob: or wildcard anywhere a script could come from; no framing,
// no plugins, no <base> tricks.
func checkCSP(t *testing.T, what string, resp *http.Response) {
	t.Helper()
	raw := resp.Header.Get("Content-Security-Policy")
	if raw == "" {
		t.Fatalf("%s: no Content-Security-Policy", what)
	}
	dirs := map[string][]string{}
	for _, d := range strings.Split(raw, ";") {
		f := strings.Fields(strings.ToLower(d))
		if len(f) == 0 {
			continue
		}
		if _, dup := dirs[f[0]]; dup {
			t.Errorf("%s: directive %s twice (the second is ignored)", what, f[0])
		}
		dirs[f[0]] = f[1:]
	}
	for _, name := range []string{"script-src", "default-src", "script-src-elem", "script-src-attr"} {
		v, ok := dirs[name]
		if !ok {
			continue
		}
		for _, src := range v {
			if src != "'self'" && src != "'none'" {
				t.Errorf("%s: %s allows %s (CSP: %q)", what, name, src, raw)
			}
		}
	}
	if v := dirs["script-src"]; len(v) != 1 || v[0] != "'self'" {
		t.Errorf("%s: script-src %v, want exactly 'self'", what, v)
	}
	for name, want := range map[string]string{"object-src": "'none'", "base-uri": "'none'", "frame-ancestors": "'none'", "form-action": "'self'"} {
		if v := dirs[name]; len(v) != 1 || v[0] != want {
			t.Errorf("%s: %s %v, want %s", what, name, v, want)
		}
	}
}

func TestStandaloneLaunchPicksAnOrder(t *testing.T) {
	h := newHarness(t, standin.EHROptions{FHIRContext: []smart.ContextItem{}})
	_, home := h.do(http.MethodGet, "/", nil, nil)
	m := regexp.MustCompile(`href="(/standalone\?iss=[^"]*)"`).FindSubmatch(home)
	if m == nil {
		t.Fatalf("no standalone link on %s", home)
	}
	resp, err := h.web.Get(h.app.URL + html.UnescapeString(string(m[1])))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/app" || !strings.Contains(h.ehr.LastAuthorize().Get("scope"), "launch/patient") || h.ehr.LastAuthorize().Has("launch") {
		t.Fatalf("standalone: %s %v", resp.Request.URL, h.ehr.LastAuthorize())
	}
	var ctx struct {
		CSRF  string          `json:"csrf_token"`
		Order json.RawMessage `json:"order"`
	}
	h.getJSON("/api/context", 200, &ctx)
	if string(ctx.Order) != "null" {
		t.Fatalf("order %s", ctx.Order)
	}
	var orders []struct{ Reference string }
	h.getJSON("/api/orders", 200, &orders)
	if len(orders) != 1 {
		t.Fatalf("orders %+v", orders)
	}
	r, b := h.do(http.MethodPost, "/api/order", http.Header{"Content-Type": {"application/json"}, "X-Csrf-Token": {ctx.CSRF}}, []byte(`{"reference":"`+orders[0].Reference+`"}`))
	if r.StatusCode != 200 || !contains(b, "dr-oxygen-1") {
		t.Fatalf("%d %s", r.StatusCode, b)
	}
	h.getJSON("/api/questionnaire", 200, nil)
}

// TestLaunchWhenTheEHRIsDown: a launch from an EHR that cannot be reached
// answers a readable page (502), not a 500 or a redirect.
func TestLaunchWhenTheEHRIsDown(t *testing.T) {
	h := newHarness(t, standin.EHROptions{})
	h.ehr.Server.Close()
	resp, body := h.do(http.MethodGet, "/launch?"+url.Values{"iss": {h.ehr.Issuer()}, "launch": {"abc"}}.Encode(), nil, nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!contains(body, "EHR unavailable") || !contains(body, "Try again") || resp.Request.URL.Path != "/launch" {
		t.Fatalf("%d at %s: %s", resp.StatusCode, resp.Request.URL, body)
	}
	checkCSP(t, "launch error page", resp)
}
