package chart

import (
	"html/template"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"dtrsandbox/ehr/internal/launch"
	"dtrsandbox/shared/oautherr"
	"dtrsandbox/shared/smart"
)

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so each answer can be checked.
type browser struct {
	t      *testing.T
	hs     *harness
	client *http.Client
}

func newBrowser(t *testing.T, hs *harness) *browser {
	jar, _ := cookiejar.New(nil)
	c := hs.server.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: t, hs: hs, client: c}
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (b *browser) get(path string) answer {
	b.t.Helper()
	resp, err := b.client.Get(b.hs.server.URL + path)
	if err != nil {
		b.t.Fatal(err)
	}
	return read(b.t, resp)
}

func (b *browser) post(path string, form url.Values, header ...string) answer {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.hs.server.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	return read(b.t, resp)
}

func read(t *testing.T, resp *http.Response) answer {
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, a answer) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(a.body)
	if m == nil {
		t.Fatalf("no csrf field in page: %s", a.body)
	}
	return m[1]
}

// login signs in as practitioner and returns the session's CSRF token.
func (b *browser) login(practitioner string) string {
	b.t.Helper()
	page := b.get("/login")
	if page.status != 200 {
		b.t.Fatalf("login page %d", page.status)
	}
	a := b.post("/login", url.Values{"csrf": {csrfOf(b.t, page)}, "practitioner": {practitioner}})
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/" {
		b.t.Fatalf("login: %d %s", a.status, a.header.Get("Location"))
	}
	return csrfOf(b.t, b.get("/"))
}

func mustContain(t *testing.T, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("page lacks %q", w)
		}
	}
}

func TestLogin(t *testing.T) {
	hs := newHarness(t, false)
	b := newBrowser(t, hs)

	if a := b.get("/"); a.status != http.StatusSeeOther || a.header.Get("Location") != "/login" {
		t.Fatalf("anonymous /: %d %q", a.status, a.header.Get("Location"))
	}
	if a := b.get("/patients/pat-1"); a.status != http.StatusSeeOther || a.header.Get("Location") != "/login" {
		t.Fatalf("anonymous chart: %d", a.status)
	}
	page := b.get("/login")
	mustContain(t, page.body, "Dr. Alice M. Carter, MD", "Dr. Benjamin J. Ortiz, DO", `value="prac-1"`, `value="prac-2"`)
	cookie := page.header.Get("Set-Cookie")
	for _, attr := range []string{"ehr_chart_session=", "HttpOnly", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(cookie, attr) {
			t.Errorf("cookie %q lacks %s", cookie, attr)
		}
	}
	if strings.Contains(cookie, "Secure") {
		t.Errorf("Secure cookie over plain HTTP: %q", cookie)
	}
	csrf := csrfOf(t, page)

	refused := []struct {
		name   string
		form   url.Values
		header []string
		want   int
	}{
		{"no csrf", url.Values{"practitioner": {"prac-1"}}, nil, 403},
		{"wrong csrf", url.Values{"csrf": {"AAAA"}, "practitioner": {"prac-1"}}, nil, 403},
		{"cross-origin", url.Values{"csrf": {csrf}, "practitioner": {"prac-1"}}, []string{"Origin", "https://evil.test"}, 403},
		{"unknown practitioner", url.Values{"csrf": {csrf}, "practitioner": {"prac-9"}}, nil, 400},
		{"a patient is not a clinician", url.Values{"csrf": {csrf}, "practitioner": {"pat-1"}}, nil, 400},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			a := b.post("/login", tc.form, tc.header...)
			if a.status != tc.want {
				t.Fatalf("status %d, want %d", a.status, tc.want)
			}
			mustContain(t, a.body, `class="error-message"`)
			if a := b.get("/"); a.status != http.StatusSeeOther {
				t.Errorf("signed in after a refused login")
			}
		})
	}

	a := b.post("/login", url.Values{"csrf": {csrf}, "practitioner": {"prac-2"}}, "Origin", hs.server.URL)
	if a.status != http.StatusSeeOther {
		t.Fatalf("login %d: %s", a.status, a.body)
	}
	list := b.get("/")
	if list.status != 200 {
		t.Fatalf("patients %d", list.status)
	}
	mustContain(t, list.body, "Signed in as", "Dr. Benjamin J. Ortiz, DO")
	if csrfOf(t, list) == csrf {
		t.Error("CSRF token not rotated at login")
	}
	if a := b.get("/login"); a.status != http.StatusSeeOther {
		t.Errorf("login page when signed in: %d", a.status)
	}

	// Logout needs the CSRF token, then ends the session.
	if a := b.post("/logout", url.Values{"csrf": {"nope"}}); a.status != 403 {
		t.Errorf("logout without token: %d", a.status)
	}
	if a := b.post("/logout", url.Values{"csrf": {csrfOf(t, list)}}); a.status != http.StatusSeeOther || a.header.Get("Location") != "/login" {
		t.Errorf("logout: %d", a.status)
	}
	if a := b.get("/"); a.status != http.StatusSeeOther {
		t.Errorf("still signed in after logout: %d", a.status)
	}
}

func TestSessionCookie(t *testing.T) {
	hs := newHarness(t, true)
	b := newBrowser(t, hs)
	b.login("prac-1")
	u, _ := url.Parse(hs.server.URL)
	var value string
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == sessionCookie {
			value = c.Value
		}
	}
	if value == "" {
		t.Fatal("no session cookie")
	}
	if a := b.get("/login"); a.status != http.StatusSeeOther {
		t.Fatalf("signed-in /login: %d", a.status)
	}

	tampered := []string{
		"", "garbage", value + "x", strings.Replace(value, ".", "x.", 1),
		// a forged payload signed with another key
		mustEncode(t, newSigner([]byte("another key, 32 bytes or longer!"), DefaultSessionTTL, hs.handler.now), session{Practitioner: "prac-2", CSRF: "c", Expires: 1 << 40}),
		// an expired session with a valid signature
		mustEncode(t, hs.handler.sessions, session{Practitioner: "prac-2", CSRF: "c", Expires: 1}),
	}
	for i, v := range tampered {
		b.client.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: v, Path: "/"}})
		if a := b.get("/"); a.status != http.StatusSeeOther {
			t.Errorf("tampered cookie %d accepted: %d", i, a.status)
		}
	}
	b.client.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: value, Path: "/"}})
	if a := b.get("/"); a.status != 200 {
		t.Errorf("genuine cookie refused: %d", a.status)
	}

	// Over TLS the cookie is Secure.
	a := newBrowser(t, hs).get("/login")
	if c := a.header.Get("Set-Cookie"); !strings.Contains(c, "Secure") {
		t.Errorf("cookie over TLS lacks Secure: %q", c)
	}
}

func mustEncode(t *testing.T, s *signer, sess session) string {
	v, err := s.encode(sess)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPatientListAndChart(t *testing.T) {
	hs := newHarness(t, false)
	b := newBrowser(t, hs)
	b.login("prac-1")

	list := b.get("/")
	mustContain(t, list.body, "Harold James Whitfield", "1948-03-14", "RB-000101", "RB-000102", "RB-000103",
		"Sandbox Health Plan", "SHP100234501", `href="/patients/pat-1"`, `href="/patients/pat-3"`)
	if got := strings.Count(list.body, `<a href="/patients/`); got != 3 {
		t.Errorf("%d patient links, want 3", got)
	}

	chart := b.get("/patients/pat-1")
	if chart.status != 200 {
		t.Fatalf("chart %d", chart.status)
	}
	mustContain(t, chart.body, "Harold James Whitfield", "RB-000101", "Sandbox Gold PPO", "SHP100234501",
		"Established patient office visit", "Home oxygen concentrator", "E1390", "lisinopril", "No documentation has been written back")
	for _, h := range []string{"Cache-Control", "Content-Security-Policy"} {
		if chart.header.Get(h) == "" {
			t.Errorf("no %s", h)
		}
	}
	// Exactly one order needs documentation, and it carries the badge and the button.
	if n := strings.Count(chart.body, "chart-doc-required"); n != 1 {
		t.Errorf("%d documentation badges, want 1", n)
	}
	if n := strings.Count(chart.body, `class="chart-launch"`); n != 1 {
		t.Errorf("%d launch buttons, want 1", n)
	}
	row := rowOf(t, chart.body, "DeviceRequest/dr-oxygen-1")
	mustContain(t, row, "Documentation required", "Launch DTR", `name="order" value="DeviceRequest/dr-oxygen-1"`)
	for _, other := range []string{"MedicationRequest/mr-lisinopril-1", "ServiceRequest/sr-cbc-1"} {
		if r := rowOf(t, chart.body, other); strings.Contains(r, "Launch DTR") || strings.Contains(r, "Documentation required") {
			t.Errorf("%s offers DTR", other)
		}
	}
	// Other patients' orders are not on this chart.
	if strings.Contains(chart.body, "dr-cpap-2") || strings.Contains(chart.body, "dr-wheelchair-3") {
		t.Error("another patient's order on pat-1's chart")
	}

	for _, tc := range []struct {
		path string
		want int
	}{{"/patients/pat-9", 404}, {"/patients/bad_id", 400}, {"/patients/prac-1", 404}} {
		a := b.get(tc.path)
		if a.status != tc.want {
			t.Errorf("%s: %d, want %d", tc.path, a.status, tc.want)
		}
		mustContain(t, a.body, `class="error-message"`)
	}
}

// rowOf returns the <tr> of an order.
func rowOf(t *testing.T, body, ref string) string {
	t.Helper()
	start := strings.Index(body, `data-order="`+ref+`"`)
	if start < 0 {
		t.Fatalf("no row for %s", ref)
	}
	end := strings.Index(body[start:], "</tr>")
	return body[start : start+end]
}

func TestLaunchDTR(t *testing.T) {
	hs := newHarness(t, false)
	b := newBrowser(t, hs)
	csrf := b.login("prac-2")

	refused := []struct {
		name, patient, order, csrf string
		want                       int
	}{
		{"no csrf", "pat-1", "DeviceRequest/dr-oxygen-1", "", 403},
		{"wrong csrf", "pat-1", "DeviceRequest/dr-oxygen-1", "XXXX", 403},
		{"another patient's order", "pat-1", "DeviceRequest/dr-cpap-2", csrf, 400},
		{"order without documentation needs", "pat-1", "MedicationRequest/mr-lisinopril-1", csrf, 400},
		{"not an order type", "pat-1", "Coverage/cov-1", csrf, 400},
		{"missing order", "pat-1", "DeviceRequest/nope", csrf, 400},
		{"garbage order", "pat-1", "javascript:alert(1)", csrf, 400},
		{"missing patient", "pat-9", "DeviceRequest/dr-oxygen-1", csrf, 404},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			_, before := hs.launcher.last()
			a := b.post("/patients/"+tc.patient+"/launch", url.Values{"csrf": {tc.csrf}, "order": {tc.order}})
			if a.status != tc.want {
				t.Fatalf("status %d, want %d: %s", a.status, tc.want, a.body)
			}
			mustContain(t, a.body, `class="error-message"`)
			if _, after := hs.launcher.last(); after != before {
				t.Error("a launch was created")
			}
		})
	}

	a := b.post("/patients/pat-1/launch", url.Values{"csrf": {csrf}, "order": {"DeviceRequest/dr-oxygen-1"}})
	if a.status != http.StatusSeeOther {
		t.Fatalf("launch %d: %s", a.status, a.body)
	}
	got, _ := hs.launcher.last()
	want := launch.Request{
		ClientID: "dtr-app", Patient: "pat-1", Practitioner: "prac-2", Encounter: "enc-1",
		FHIRContext: []smart.ContextItem{{Reference: "Coverage/cov-1"}, {Reference: "DeviceRequest/dr-oxygen-1"}},
	}
	if got.ClientID != want.ClientID || got.Patient != want.Patient || got.Practitioner != want.Practitioner ||
		got.Encounter != want.Encounter || !slices.Equal(got.FHIRContext, want.FHIRContext) || got.LaunchURL != "" {
		t.Errorf("launch request %+v, want %+v", got, want)
	}
	loc, err := url.Parse(a.header.Get("Location"))
	if err != nil || loc.Path != "/test-app/launch" || loc.Query().Get("iss") != fhirBase || loc.Query().Get("launch") == "" {
		t.Errorf("redirect to %q", a.header.Get("Location"))
	}
	for _, order := range []string{"DeviceRequest/dr-cpap-2"} {
		a := b.post("/patients/pat-2/launch", url.Values{"csrf": {csrf}, "order": {order}})
		got, _ := hs.launcher.last()
		if a.status != http.StatusSeeOther || got.Patient != "pat-2" || got.Encounter != "enc-2" ||
			!slices.Equal(got.FHIRContext, []smart.ContextItem{{Reference: "Coverage/cov-2"}, {Reference: order}}) {
			t.Errorf("pat-2 launch: %d %+v", a.status, got)
		}
	}

	t.Run("launcher refuses", func(t *testing.T) {
		hs.launcher.fail(oautherr.InvalidRequest("client dtr-app has no launch URL"), "")
		defer hs.launcher.fail(nil, "")
		a := b.post("/patients/pat-1/launch", url.Values{"csrf": {csrf}, "order": {"DeviceRequest/dr-oxygen-1"}})
		if a.status != http.StatusBadGateway {
			t.Fatalf("status %d", a.status)
		}
		mustContain(t, a.body, "client dtr-app has no launch URL")
	})
	t.Run("launcher fails", func(t *testing.T) {
		hs.launcher.fail(io.ErrUnexpectedEOF, "")
		defer hs.launcher.fail(nil, "")
		a := b.post("/patients/pat-1/launch", url.Values{"csrf": {csrf}, "order": {"DeviceRequest/dr-oxygen-1"}})
		if a.status != http.StatusInternalServerError || strings.Contains(a.body, "unexpected EOF") {
			t.Fatalf("status %d, body %s", a.status, a.body)
		}
	})
	t.Run("launch URL not http", func(t *testing.T) {
		hs.launcher.fail(nil, "javascript:alert(1)")
		defer hs.launcher.fail(nil, "")
		a := b.post("/patients/pat-1/launch", url.Values{"csrf": {csrf}, "order": {"DeviceRequest/dr-oxygen-1"}})
		if a.status != http.StatusInternalServerError || a.header.Get("Location") != "" {
			t.Fatalf("status %d, Location %q", a.status, a.header.Get("Location"))
		}
	})
}

func TestDocumentationReceived(t *testing.T) {
	hs := newHarness(t, false)
	b := newBrowser(t, hs)
	b.login("prac-1")
	draft := hs.writeBack(t, "pat-1", "in-progress")
	chart := b.get("/patients/pat-1")
	mustContain(t, chart.body, "Documentation received", `data-response="`+draft.ID+`"`, "home-oxygen", "In progress")
	if !strings.Contains(rowOf(t, chart.body, "DeviceRequest/dr-oxygen-1"), "Documentation required") {
		t.Error("a draft satisfied the order")
	}
	done := hs.writeBack(t, "pat-1", "completed")
	chart = b.get("/patients/pat-1")
	mustContain(t, chart.body, `data-response="`+done.ID+`"`, "<code>DeviceRequest/dr-oxygen-1</code>")
	if !strings.Contains(rowOf(t, chart.body, "DeviceRequest/dr-oxygen-1"), "chart-doc-received") {
		t.Error("completed documentation not shown on the order")
	}
	other := hs.writeBack(t, "pat-2", "completed")
	if strings.Contains(b.get("/patients/pat-1").body, other.ID) {
		t.Error("pat-2's response on pat-1's chart")
	}

	resp := b.get("/patients/pat-1/responses/" + done.ID)
	if resp.status != 200 {
		t.Fatalf("response page %d", resp.status)
	}
	mustContain(t, resp.body, "Resting oxygen saturation on room air (%)", ">87<", "2026-02-16", "2 L/min", ">No<", "Nasal cannula", "Oxygen prescription", "Completed")
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/patients/pat-1/responses/" + other.ID, 404},
		{"/patients/pat-2/responses/" + done.ID, 404},
		{"/patients/pat-1/responses/nope", 404},
		{"/patients/pat-1/responses/bad_id", 400},
	} {
		if a := b.get(tc.path); a.status != tc.want {
			t.Errorf("%s: %d, want %d", tc.path, a.status, tc.want)
		}
	}
}

func TestNewChecksConfig(t *testing.T) {
	hs := newHarness(t, false)
	key := []byte("0123456789abcdef0123456789abcdef")
	full := Config{Records: hs.store, Launcher: hs.launcher, Templates: testTemplates(t), FHIRBase: fhirBase, CookieKey: key}
	if _, err := New(full); err != nil {
		t.Fatal(err)
	}
	missingPage := template.Must(template.New("x").Parse(`{{define "error.html"}}x{{end}}`))
	for name, mutate := range map[string]func(*Config){
		"no records":    func(c *Config) { c.Records = nil },
		"no launcher":   func(c *Config) { c.Launcher = nil },
		"no templates":  func(c *Config) { c.Templates = nil },
		"missing pages": func(c *Config) { c.Templates = missingPage },
		"short key":     func(c *Config) { c.CookieKey = key[:31] },
		"no FHIR base":  func(c *Config) { c.FHIRBase = "" },
	} {
		cfg := full
		mutate(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
