package server

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"dtrsandbox/shared/config"
	"dtrsandbox/shared/fhir"
	headless "dtrsandbox/shared/testutil/browser"
	"dtrsandbox/smartapp/internal/session"
	"dtrsandbox/smartapp/internal/standin"
)

// browserTimeout bounds a whole browser test. It is generous on purpose:
// these tests run on a loaded 2-core CI machine beside every other package,
// and each wait below is a poll for a condition, never a fixed sleep.
const browserTimeout = 5 * time.Minute

// browser starts headless Chromium with a throwaway profile and collects
// the page's console (see checkConsole).
func browser(t *testing.T) (context.Context, *headless.Console) {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	ctx := headless.New(t, headless.Options{Width: 1400, Height: 1600})
	ctx, cancel := context.WithTimeout(ctx, browserTimeout)
	t.Cleanup(cancel)
	return ctx, headless.CollectConsole(ctx)
}

// checkConsole fails the test on a Content-Security-Policy violation
// (something the page needs was blocked) or an uncaught exception in the
// page.
func checkConsole(t *testing.T, c *headless.Console) {
	t.Helper()
	for _, m := range c.Messages() {
		if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
			t.Errorf("page console: %s (%s:%d)", m, m.URL, m.Line)
		}
	}
}

// waitJS waits until the JavaScript expression is true.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	poll := chromedp.Poll[bool](expr, chromedp.WithPollingInterval(100*time.Millisecond))
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := poll(ctx, t)
		return err
	})
}

// formReady waits for the app page to have loaded its form and finished
// its first look at the payer's documents (so a fault a test queues at the
// payer next is met by the request the test means, not by that refresh).
var formReady = chromedp.Steps(
	chromedp.WaitVisible(chromedp.CSS(`body[data-form-ready="true"]`)),
	chromedp.WaitVisible(chromedp.CSS(flowRateInput)),
	chromedp.WaitReady(chromedp.CSS(`body[data-documents]`)),
)

// flowRateInput selects the "Prescribed flow rate" input LHC-Forms renders
// for linkId order.flow-rate (element id = the item's linkId path).
const flowRateInput = `[id="order.flow-rate/1/1"]`

func artifactDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(config.RepoRoot(), "test-artifacts", "smartapp")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// screenshot keeps a full-page PNG as test-artifacts/smartapp/<name>.png.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	headless.Screenshot(t, ctx, filepath.Join(artifactDir(t), name+".png"))
}

// noTokenInPage fails if the rendered page (the whole DOM, after the app's
// script filled it) holds a JWT or one of the given raw tokens.
func noTokenInPage(t *testing.T, ctx context.Context, tokens ...string) {
	t.Helper()
	html, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if err != nil {
		t.Fatal(err)
	}
	if m := jwtPattern.FindString(html); m != "" {
		t.Errorf("the page holds a JWT: %.80s…", m)
	}
	for _, tok := range tokens {
		if tok != "" && strings.Contains(html, tok[strings.LastIndex(tok, ".")+1:]) {
			t.Error("the page holds a token's signature")
		}
	}
}

// browserSession is the server-side session of the browser's cookie.
func browserSession(t *testing.T, ctx context.Context, h *harness) *session.Session {
	t.Helper()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{h.app.URL + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if c.Name == h.srv.cookie {
			if !c.HTTPOnly {
				t.Error("the session cookie is readable by scripts")
			}
			if s := h.srv.Sessions().Get(c.Value); s != nil {
				return s
			}
		}
	}
	t.Fatal("the browser has no session cookie of a live session")
	return nil
}

// saveExpectingError clicks Save draft and waits for the app's error alert,
// returning its text.
func saveExpectingError(t *testing.T, ctx context.Context) string {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`delete document.body.dataset.lastError`),
		chromedp.Click(chromedp.CSS(`#save-draft`)),
		waitJS(`document.body.dataset.lastError !== undefined`),
	)
	if err != nil {
		t.Fatal(err)
	}
	alert, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#alert`)))
	if err != nil {
		t.Fatal(err)
	}
	return alert
}

func TestBrowserRendersFormAndSavesDraft(t *testing.T) {
	ctx, cons := browser(t)
	h := newHarness(t, standin.EHROptions{NeedPatientBanner: true})

	// EHR launch in the browser: /launch -> stand-in authorize -> /callback -> /app.
	if err := chromedp.Do(ctx, chromedp.Navigate(h.launchURL()), formReady); err != nil {
		t.Fatal(err)
	}
	banner, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#banner`)))
	if err != nil || !strings.Contains(banner, "Harold James Whitfield") || !strings.Contains(banner, "1948-03-14") {
		t.Fatalf("patient banner %q (%v)", banner, err)
	}
	user, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#user`)))
	if !strings.Contains(user, "Dr. Alice M. Carter, MD") {
		t.Errorf("signed-in user shown as %q, want the practitioner's name", user)
	}
	screenshot(t, ctx, "app")

	// Fill one field and save the draft.
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(flowRateInput), "2.5"),
		chromedp.Click(chromedp.CSS(`#save-draft`)),
		waitJS(`document.body.dataset.lastDraft !== undefined`),
	)
	if err != nil {
		t.Fatal(err)
	}
	docs := h.payer.Docs()
	if len(docs) != 1 {
		t.Fatalf("%d documents at the payer", len(docs))
	}
	for _, d := range docs {
		qr := decodeAttachment(t, d)
		if d.DocStatus != "preliminary" || qr.Status != "in-progress" || answer(qr, "order.flow-rate") != "2.5" {
			t.Fatalf("draft %s/%s holds flow rate %q", d.DocStatus, qr.Status, answer(qr, "order.flow-rate"))
		}
	}
	status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#status`)))
	if !strings.Contains(status, "Draft saved") {
		t.Fatalf("status %q", status)
	}

	// The security panel shows the decoded claims of both tokens, and the
	// whole page holds no token.
	if err := chromedp.Do(ctx, waitJS(`document.getElementById('sec-payer-at').textContent.includes('"payload"') &&
		document.getElementById('sec-answers').textContent.includes('POST DocumentReference')`)); err != nil {
		t.Fatal(err)
	}
	panel, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`aside.security`)))
	for _, want := range []string{`"patient": "pat-1"`, `"client_id": "dtr-app"`, `"sub": "dtr-app"`, `"fhirUser"`, "201"} {
		if !strings.Contains(panel, want) {
			t.Errorf("the security panel lacks %s", want)
		}
	}
	sess := browserSession(t, ctx, h)
	ehrToken, _ := sess.EHRAccessToken()
	payerToken, _ := sess.PayerToken(h.clock.Now(), 0)
	if ehrToken == "" || payerToken == "" {
		t.Fatal("the browser's session has no tokens")
	}
	noTokenInPage(t, ctx, ehrToken, payerToken)
	screenshot(t, ctx, "app-draft-saved")

	// Resume: a reload (sessionStorage was cleared by the save) pre-fills
	// the form from the draft at the payer.
	if err := chromedp.Do(ctx, chromedp.Reload(), formReady); err != nil {
		t.Fatal(err)
	}
	v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(flowRateInput)))
	if err != nil || v != "2.5" {
		t.Fatalf("resumed flow rate %q (%v)", v, err)
	}
	note, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#form-note`)))
	if !strings.Contains(note, "Resumed the draft") {
		t.Fatalf("note %q", note)
	}
	checkConsole(t, cons)

	// The browser enforces the CSP: an inline script does not run.
	ran, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
		window.__inlineRan = false;
		const s = document.createElement('script');
		s.textContent = 'window.__inlineRan = true';
		document.body.appendChild(s);
		return window.__inlineRan;
	})()`))
	if err != nil || ran {
		t.Fatalf("an inline script ran (%v): the CSP allows inline scripts", err)
	}
}

// TestBrowserKeepsAnswersWhenThePayerFails: the payer answers 503, 429
// (with Retry-After), 401 and 403, then cannot be reached at all; each time
// the page says what happened, in words, and the typed answer stays in the
// form, also across a reload.
func TestBrowserKeepsAnswersWhenThePayerFails(t *testing.T) {
	ctx, cons := browser(t)
	h := newHarness(t, standin.EHROptions{})
	if err := chromedp.Do(ctx, chromedp.Navigate(h.launchURL()), formReady); err != nil {
		t.Fatal(err)
	}
	if hidden, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById('banner').hidden`)); !hidden {
		t.Error("patient banner shown although the EHR did not ask for it (need_patient_banner false)")
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(flowRateInput), "4")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		fault standin.Fault
		close bool // the payer is gone
		want  []string
		panel string // in the security panel's payer answers
	}{
		{name: "503", fault: standin.Fault{Status: 503, Diag: "payer maintenance"},
			want: []string{"temporarily unavailable", "payer maintenance"}},
		{name: "429", fault: standin.Fault{Status: 429, RetryAfter: "17", Diag: "slow down"},
			want: []string{"rate limiting", "try again in 17 seconds"}, panel: "retry after 17 s"},
		{name: "401", fault: standin.Fault{Status: 401, Diag: "EHR token not accepted", Times: 2}, // the app retries once with a fresh token
			want: []string{"did not accept the app's credentials (401)", "EHR token not accepted"}},
		{name: "403", fault: standin.Fault{Status: 403, Diag: "subject is not the EHR token's patient"},
			want: []string{"refused this request (403)", "subject is not the EHR token's patient"}},
		{name: "unreachable", close: true, want: []string{"could not be reached", "Nothing was lost"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.payer.Docs())
			if tt.close {
				h.payer.Server.Close()
			} else {
				f := tt.fault
				f.Path = "DocumentReference"
				h.payer.Fail(f)
			}
			alert := saveExpectingError(t, ctx)
			for _, w := range tt.want {
				if !strings.Contains(alert, w) {
					t.Errorf("alert %q lacks %q", alert, w)
				}
			}
			if strings.Contains(alert, "goroutine") || strings.Contains(alert, ".go:") {
				t.Errorf("alert shows internals: %q", alert)
			}
			if v, _ := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(flowRateInput))); v != "4" {
				t.Fatalf("answer lost after the failed save: %q", v)
			}
			status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#status`)))
			if !strings.Contains(status, "kept in this page") {
				t.Errorf("status %q", status)
			}
			if !tt.close && len(h.payer.Docs()) != before {
				t.Fatal("stored despite the failure")
			}
			if tt.panel != "" {
				if err := chromedp.Do(ctx, waitJS(`document.getElementById('sec-answers').textContent.includes(`+strconv.Quote(tt.panel)+`)`)); err != nil {
					t.Errorf("the security panel does not show %q: %v", tt.panel, err)
				}
			}
			noTokenInPage(t, ctx)
			screenshot(t, ctx, "app-payer-"+tt.name)
		})
	}

	// A reload keeps the unsaved answer (sessionStorage), the payer still
	// gone: the form loads, with a note that no draft could be looked up.
	if err := chromedp.Do(ctx, chromedp.Reload(), formReady); err != nil {
		t.Fatal(err)
	}
	if v, _ := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(flowRateInput))); v != "4" {
		t.Fatalf("answer lost after a reload: %q", v)
	}
	note, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#form-note`)))
	alert, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#alert`)))
	if !strings.Contains(note, "Restored the answers typed in this tab") || !strings.Contains(alert, "could not be reached") {
		t.Errorf("after the reload: note %q, alert %q", note, alert)
	}
	checkConsole(t, cons)
}

// TestBrowserEHRSessionExpiresMidSession: the EHR token expires while the
// clinician is typing. Save draft answers a readable "relaunch" message
// (not an error code or a stack trace) and keeps the answer; reloading
// /app shows the expired-session page; relaunching from the EHR in the
// same tab brings the typed answer back, and it can then be saved.
func TestBrowserEHRSessionExpiresMidSession(t *testing.T) {
	ctx, cons := browser(t)
	h := newHarness(t, standin.EHROptions{TokenTTL: 30 * time.Minute})
	if err := chromedp.Do(ctx, chromedp.Navigate(h.launchURL()), formReady,
		chromedp.SendKeys(chromedp.CSS(flowRateInput), "3.5")); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(31 * time.Minute)
	alert := saveExpectingError(t, ctx)
	for _, w := range []string{"EHR session has expired", "Relaunch the app from the EHR", "draft saved at the payer is offered again"} {
		if !strings.Contains(alert, w) {
			t.Errorf("alert %q lacks %q", alert, w)
		}
	}
	if code, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.dataset.lastError`)); code != "session_expired" {
		t.Errorf("error code %q, want session_expired", code)
	}
	if v, _ := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(flowRateInput))); v != "3.5" {
		t.Fatalf("answer lost: %q", v)
	}
	if len(h.payer.Docs()) != 0 {
		t.Fatal("saved with an expired EHR session")
	}
	screenshot(t, ctx, "app-session-expired")

	// Reloading /app: a page that says what to do.
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`.error-message`))); err != nil {
		t.Fatal(err)
	}
	page, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main`)))
	if !strings.Contains(page, "EHR session expired") || !strings.Contains(page, "Relaunch the app from the EHR") {
		t.Fatalf("expired-session page: %q", page)
	}
	screenshot(t, ctx, "app-session-expired-page")

	// Relaunch in the same tab (the clock back to when the EHR's new token
	// is valid): the typed answer is restored, and now it saves.
	h.clock.Advance(-31 * time.Minute)
	if err := chromedp.Do(ctx, chromedp.Navigate(h.launchURL()), formReady); err != nil {
		t.Fatal(err)
	}
	if v, _ := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(flowRateInput))); v != "3.5" {
		t.Fatalf("relaunch did not restore the typed answer: %q", v)
	}
	note, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#form-note`)))
	if !strings.Contains(note, "Restored the answers typed in this tab") {
		t.Errorf("note %q", note)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#save-draft`)), waitJS(`document.body.dataset.lastDraft !== undefined`)); err != nil {
		t.Fatal(err)
	}
	docs := h.payer.Docs()
	if len(docs) != 1 {
		t.Fatalf("%d documents after the save", len(docs))
	}
	for _, d := range docs {
		if got := answer(decodeAttachment(t, d), "order.flow-rate"); got != "3.5" {
			t.Fatalf("saved flow rate %q", got)
		}
	}
	checkConsole(t, cons)
}

func decodeAttachment(t *testing.T, d fhir.DocumentReference) fhir.QuestionnaireResponse {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(d.Content[0].Attachment.Data)
	if err != nil {
		t.Fatal(err)
	}
	var qr fhir.QuestionnaireResponse
	if err := fhir.Decode(b, &qr); err != nil {
		t.Fatal(err)
	}
	return qr
}

// answer is the first answer to linkID anywhere in qr, as text.
func answer(qr fhir.QuestionnaireResponse, linkID string) string {
	var walk func(items []fhir.QuestionnaireResponseItem) string
	walk = func(items []fhir.QuestionnaireResponseItem) string {
		for _, it := range items {
			if it.LinkID == linkID && len(it.Answer) > 0 {
				a := it.Answer[0]
				switch {
				case a.ValueDecimal != nil:
					return string(*a.ValueDecimal)
				case a.ValueQuantity != nil && a.ValueQuantity.Value != nil:
					return string(*a.ValueQuantity.Value)
				case a.ValueInteger != nil:
					return strconv.Itoa(*a.ValueInteger)
				case a.ValueString != "":
					return a.ValueString
				}
			}
			if v := walk(it.Item); v != "" {
				return v
			}
			for _, a := range it.Answer {
				if v := walk(a.Item); v != "" {
					return v
				}
			}
		}
		return ""
	}
	return walk(qr.Item)
}
