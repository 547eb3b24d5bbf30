package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"dtrsandbox/shared/launcher"
	headless "dtrsandbox/shared/testutil/browser"
)

// leafSPKIs are the base64 SHA-256 hashes of the three services' leaf
// public keys, for --ignore-certificate-errors-spki-list: Chromium then
// accepts exactly those certificates, the sandbox CA never enters a trust
// store.
func leafSPKIs(t *testing.T, dataDir string) []string {
	t.Helper()
	var files []string
	for _, s := range launcher.Services {
		files = append(files, filepath.Join(dataDir, "tls", s+".pem"))
	}
	out, err := headless.SPKIHashes(files...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The home-oxygen form's answer codes.
const answerSystem = "|http://sandbox.dtr.example/fhir/CodeSystem/dtr-answer|"

// TestBrowserFlow is the clinician's flow in headless Chromium: sign in to
// the EHR chart, open pat-1, Launch DTR on the home-oxygen order, the app
// opens (no consent page for dtr-app) and renders the LHC-Forms form; type
// two answers, Save draft, close the tab; launch again from the chart in a
// new tab: the draft is resumed with the typed answer; complete the form,
// Submit; back in the chart the response shows under the patient.
// Screenshots of every page go to test-artifacts/e2e/.
func TestBrowserFlow(t *testing.T) { browserFlow(t, nil) }

// browserFlow is TestBrowserFlow; tabHook, if set, runs on each new tab
// before it is used.
func browserFlow(t *testing.T, tabHook func(context.Context)) {
	sb := startSandbox(t)
	dataDir := sb.Config().DataDir
	artifacts := filepath.Join(repoRoot(t), "test-artifacts", "e2e")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	old, _ := filepath.Glob(filepath.Join(artifacts, "*.png"))
	for _, f := range old {
		os.Remove(f)
	}

	// The browser and its first tab; they stop when the test ends.
	browserCtx := headless.New(t, headless.Options{Width: 1280, Height: 1000, SPKIs: leafSPKIs(t, dataDir)})

	ehr, app := sb.URL(launcher.EHR), sb.URL(launcher.SmartApp)
	marker := "J44.9 COPD, e2e " + time.Now().UTC().Format("150405")

	// --- first tab: chart, launch, type, save the draft ---
	// The browser's first tab stays blank; each launch gets a tab of its own.
	tab1, cancelTab1 := chromedp.NewContext(browserCtx)
	defer cancelTab1()
	if err := chromedp.Do(tab1); err != nil { // open the tab without a timeout: it lives as long as tab1
		t.Fatalf("opening a tab: %v", err)
	}
	if tabHook != nil {
		tabHook(tab1)
	}
	console1 := headless.CollectConsole(tab1)
	b := &tab{t: t, ctx: tab1, dir: artifacts}
	b.do(chromedp.Navigate(ehr+"/"), chromedp.WaitVisible(chromedp.CSS("#sign-in")))
	b.shot("01-ehr-sign-in")
	b.do(chromedp.Click(chromedp.CSS(`input[name="practitioner"][value="prac-1"]`)))
	b.click(chromedp.CSS("#sign-in"))
	b.expectPage("patients", "EHR sign-in")
	b.shot("02-ehr-patients")
	b.click(chromedp.CSS(`#patients a[href="/patients/pat-1"]`))
	b.expectPage("orders", "pat-1's chart")
	b.shot("03-ehr-chart-pat-1")
	b.launchDTR(app)
	b.shot("04-app-form")
	if note := b.text(chromedp.CSS("#form-note")); strings.Contains(note, "Resumed") {
		t.Errorf("first launch already resumes a draft: %q", note)
	}
	b.do(
		chromedp.SendKeys(field("f2f.diagnosis"), marker),
		chromedp.SendKeys(field("order.flow-rate"), "2"),
		chromedp.Click(chromedp.CSS("#save-draft")),
	)
	draftID := b.poll(`document.body.dataset.lastDraft || (!document.getElementById('alert').hidden && 'alert: ' + document.getElementById('alert').innerText)`)
	b.shot("05-app-draft-saved")
	if strings.HasPrefix(draftID, "alert: ") {
		t.Fatalf("Save draft failed: %s", draftID)
	}
	t.Logf("draft saved: DocumentReference/%s (%s)", draftID, b.text(chromedp.CSS("#status")))

	// --- second tab: launch again, the draft is there, complete, submit ---
	// The first tab is closed: its sessionStorage copy of the answers goes
	// with it, so what the relaunch shows comes from the payer.
	checkConsole(t, console1, app)
	if err := chromedp.Cancel(tab1); err != nil {
		t.Fatalf("closing the first tab: %v", err)
	}
	tab2, cancelTab2 := chromedp.NewContext(browserCtx)
	defer cancelTab2()
	if err := chromedp.Do(tab2); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	if tabHook != nil {
		tabHook(tab2)
	}
	console2 := headless.CollectConsole(tab2)
	b = &tab{t: t, ctx: tab2, dir: artifacts, n: b.n}
	b.do(chromedp.Navigate(ehr + "/patients/pat-1"))
	b.expectPage("orders", "pat-1's chart")
	b.shot("06-ehr-chart-again")
	b.launchDTR(app)
	b.shot("07-app-draft-resumed")
	if note := b.text(chromedp.CSS("#form-note")); !strings.Contains(note, "Resumed the draft saved at the payer") {
		t.Errorf("form note %q: the relaunch did not resume the payer draft", note)
	}
	if got := b.value(field("f2f.diagnosis")); got != marker {
		t.Fatalf("resumed draft: diagnosis %q, want the typed %q", got, marker)
	}
	if got := b.value(field("order.flow-rate")); got != "2" {
		t.Errorf("resumed draft: flow rate %q, want 2", got)
	}

	date := func(linkID, v string) chromedp.Action[chromedp.Void] {
		return chromedp.SendKeys(chromedp.CSS(`[id="`+linkID+`/1/1"] input`), v+kb.Enter)
	}
	b.do(
		chromedp.Click(field("order.equipment"+answerSystem+"o2-stationary-concentrator")),
		chromedp.Click(field("order.usage"+answerSystem+"o2-use-continuous")),
		chromedp.SendKeys(field("order.length-of-need"), "99"),
		date("f2f.date", "03/02/2026"),
		chromedp.Click(field("f2f.alternatives|true")),
		chromedp.WaitVisible(field("f2f.alternatives-detail")),
		chromedp.SendKeys(field("f2f.alternatives-detail"), "Bronchodilators and pulmonary rehabilitation, ineffective"),
		date("testing.date", "02/20/2026"),
		chromedp.Click(field("testing.condition"+answerSystem+"o2-test-rest")),
		chromedp.Click(field("testing.method"+answerSystem+"o2-method-abg")),
		chromedp.WaitVisible(field("testing.pao2")),
		chromedp.SendKeys(field("testing.pao2"), "52"),
		chromedp.SendKeys(field("testing.performer"), "Prairie Regional Pulmonary Lab"),
		chromedp.SendKeys(field("attestation.name"), "Dr. Alice M. Carter"),
		chromedp.SendKeys(field("attestation.npi"), "1234567893"),
		chromedp.Click(field("attestation.statement|true")),
		date("attestation.date", "03/04/2026"),
	)
	b.shot("08-app-completed")
	b.do(chromedp.Click(chromedp.CSS("#submit")))
	submitted := b.poll(`document.body.dataset.submitted || (!document.getElementById('alert').hidden && 'alert: ' + document.getElementById('alert').innerText)`)
	if strings.HasPrefix(submitted, "alert: ") {
		b.shot("09-app-submit-refused")
		t.Fatalf("Submit failed: %s", submitted)
	}
	// The app's document list shows the final document.
	b.poll(`document.getElementById('documents').innerText.includes(` + jsString(submitted) + `)`)
	b.shot("09-app-submitted")
	// The security panel shows decoded claims; the page holds no token.
	b.poll(`document.getElementById('sec-payer-at').textContent.includes('"payload"')`)
	if html := b.eval(`document.documentElement.outerHTML`); jwtPattern.MatchString(html) {
		t.Errorf("the app page holds a JWT-shaped string: %.80s…", jwtPattern.FindString(html))
	}
	checkConsole(t, console2, app)
	status := b.text(chromedp.CSS("#status"))
	m := regexp.MustCompile(`QuestionnaireResponse/([A-Za-z0-9\-.]+)`).FindStringSubmatch(status)
	if m == nil {
		t.Fatalf("submit status %q names no QuestionnaireResponse", status)
	}
	qrID := m[1]
	t.Logf("submitted: DocumentReference/%s; %s", submitted, status)

	// --- back in the chart: the response shows under the patient ---
	b.do(chromedp.Navigate(ehr + "/patients/pat-1"))
	b.expectPage("documentation", "pat-1's chart")
	row := chromedp.CSS(`tr[data-response="` + qrID + `"]`)
	b.do(chromedp.ScrollIntoView(row))
	b.shot("10-ehr-documentation-received")
	rowText := b.text(row)
	for _, want := range []string{"Completed", "DeviceRequest/dr-oxygen-1"} {
		if !strings.Contains(rowText, want) {
			t.Errorf("the chart's row for QuestionnaireResponse/%s lacks %q: %q", qrID, want, rowText)
		}
	}
	b.click(chromedp.CSS(`tr[data-response="` + qrID + `"] a`))
	b.expectPage("answers", "the response page")
	b.shot("11-ehr-response")
	if answers := b.text(chromedp.CSS("#answers")); !strings.Contains(answers, marker) {
		t.Errorf("the chart's response lacks the typed diagnosis %q", marker)
	}
}

// field selects an LHC-Forms element by its id ("<linkId>/1/1", with
// "|<answer>" for a radio or checkbox label).
func field(id string) chromedp.CSS {
	if i := strings.Index(id, "|"); i >= 0 {
		return chromedp.CSS(`[id="` + id[:i] + `/1/1` + id[i:] + `"]`)
	}
	return chromedp.CSS(`[id="` + id + `/1/1"]`)
}

// tab drives one browser tab; every failure stops the test with a
// screenshot of where it happened.
type tab struct {
	t   *testing.T
	ctx context.Context
	dir string
	n   int
}

func (b *tab) fail(format string, args ...any) {
	b.t.Helper()
	b.shot("failure")
	ctx, cancel := b.timed()
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	b.t.Fatalf("%s (at %s)", fmt.Sprintf(format, args...), loc)
}

// stepTimeout bounds each browser action. Generous: on a loaded 2-core CI
// machine the three services, Chromium and other packages' tests share the
// CPU, and LHC-Forms is a large script to parse. Every wait is a poll for a
// condition, so a fast machine never waits this long.
const stepTimeout = 90 * time.Second

func (b *tab) timed() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, stepTimeout)
}

func (b *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := b.timed()
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fail("%v", err)
	}
}

// click clicks and waits for the page it opens.
func (b *tab) click(sel chromedp.CSS) {
	b.t.Helper()
	ctx, cancel := b.timed()
	defer cancel()
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(sel)); err != nil {
		b.fail("click %v: %v", sel, err)
	}
}

func (b *tab) text(sel chromedp.CSS) string {
	b.t.Helper()
	ctx, cancel := b.timed()
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		b.fail("text of %v: %v", sel, err)
	}
	return s
}

func (b *tab) value(sel chromedp.CSS) string {
	b.t.Helper()
	ctx, cancel := b.timed()
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Value(sel))
	if err != nil {
		b.fail("value of %v: %v", sel, err)
	}
	return s
}

// poll waits up to two minutes for a JavaScript expression to be truthy
// and returns it as a string.
func (b *tab) poll(expr string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 3*time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Poll[any](expr, chromedp.WithPollingTimeout(2*time.Minute)))
	if err != nil {
		b.fail("waiting for %s: %v", expr, err)
	}
	return fmt.Sprint(v)
}

// expectPage waits for the element with id to show, and fails at once with
// the page's message when the EHR answers an error page instead.
func (b *tab) expectPage(id, what string) {
	b.t.Helper()
	got := b.poll(`(document.getElementById(` + jsString(id) + `) && 'ok') || (document.querySelector('.error-message') && 'error page: ' + document.querySelector('main').innerText)`)
	if got != "ok" {
		b.fail("%s: %s", what, strings.Join(strings.Fields(got), " "))
	}
}

// launchDTR clicks Launch DTR on pat-1's home-oxygen order and waits until
// the app's form is ready: the EHR's launch, its authorize endpoint (no
// consent page for dtr-app) and the app's callback are all redirects.
func (b *tab) launchDTR(app string) {
	b.t.Helper()
	b.click(chromedp.CSS(`tr[data-order="DeviceRequest/dr-oxygen-1"] button.chart-launch`))
	ready := b.poll(`document.body.dataset.formReady || (document.getElementById('alert') && !document.getElementById('alert').hidden && 'alert: ' + document.getElementById('alert').innerText) || (location.origin !== ` + jsString(app) + ` && 'at ' + location.href)`)
	if ready != "true" {
		b.fail("the app's form did not open: %s", ready)
	}
	ctx, cancel := b.timed()
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		b.fail("%v", err)
	}
	u, _ := url.Parse(loc)
	if u == nil || u.Scheme+"://"+u.Host != app || u.Path != "/app" {
		b.fail("after Launch DTR the browser is at %s, want %s/app", loc, app)
	}
}

// shot saves a full-page PNG as NN-name.png.
func (b *tab) shot(name string) {
	b.n++
	ctx, cancel := b.timed()
	defer cancel()
	file := filepath.Join(b.dir, name+".png")
	if name == "failure" {
		file = filepath.Join(b.dir, fmt.Sprintf("failure-%s.png", strings.ReplaceAll(b.t.Name(), "/", "_")))
	}
	headless.Screenshot(b.t, ctx, file)
}

// jwtPattern matches a compact JWS/JWT (three base64url segments).
var jwtPattern = regexp.MustCompile(`[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}`)

// eval runs a JavaScript expression and returns its string value.
func (b *tab) eval(expr string) string {
	b.t.Helper()
	ctx, cancel := b.timed()
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.fail("%s: %v", expr, err)
	}
	return s
}

// checkConsole fails the test on an uncaught exception in the app's pages
// (origin app; other origins' are logged) and on any
// Content-Security-Policy violation in the clinician's flow (the browser
// reports those without a URL): something a page needs was blocked.
func checkConsole(t *testing.T, c *headless.Console, app string) {
	t.Helper()
	for _, m := range c.Messages() {
		switch {
		case strings.Contains(m.Text, "Content Security Policy"):
			t.Errorf("page console: %s", m)
		case m.IsException() && strings.HasPrefix(m.URL, app+"/"):
			t.Errorf("app page console: %s (%s:%d)", m, m.URL, m.Line)
		case m.IsException():
			t.Logf("console (not the app's): %s (%s:%d)", m, m.URL, m.Line)
		}
	}
}

func jsString(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }
