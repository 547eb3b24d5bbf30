package chart

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"dtrsandbox/shared/smart"
	headless "dtrsandbox/shared/testutil/browser"
)

// TestBrowserLaunchDTR drives the chart in headless Chromium: sign in, open
// pat-1's chart, see the home-oxygen order with its badge, click Launch DTR
// and land on the app's launch URL; then see written-back documentation.
// Screenshots of each page go to test-artifacts/ehr/ at the repository root.
func TestBrowserLaunchDTR(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	hs := newHarness(t, false)
	artifacts := filepath.Join(repoRoot, "test-artifacts", "ehr")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	// A browser started without a timeout; each step is bounded below.
	browserCtx := headless.New(t, headless.Options{Width: 1280, Height: 900})
	ctx, cancel := context.WithTimeout(browserCtx, 90*time.Second)
	defer cancel()

	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatal(err)
		}
	}
	// click clicks and waits for the page it opens to load.
	click := func(sel string) {
		t.Helper()
		if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
			t.Fatalf("click %s: %v", sel, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return headless.ScreenshotAction(filepath.Join(artifacts, name))
	}
	base := hs.server.URL

	do(chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("sign-in")), shot("01-login.png"))
	do(chromedp.Click(chromedp.CSS(`input[name="practitioner"][value="prac-1"]`)))
	click("#sign-in")
	do(chromedp.WaitVisible(chromedp.ID("patients")), shot("02-patients.png"))
	signedInAs := text("#signed-in-as")
	click(`#patients a[href="/patients/pat-1"]`)
	do(chromedp.WaitVisible(chromedp.ID("orders")), shot("03-chart-pat-1.png"))
	orderRow := text(`tr[data-order="DeviceRequest/dr-oxygen-1"]`)
	otherRows, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('tr.chart-order:not(.chart-needs-doc)')).map(r => r.innerText)`))
	if err != nil {
		t.Fatal(err)
	}
	click(`tr[data-order="DeviceRequest/dr-oxygen-1"] button.chart-launch`)
	do(chromedp.WaitVisible(chromedp.ID("launched")), shot("04-app-launched.png"))
	location, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	iss, launchID := text("#iss"), text("#launch")

	if signedInAs != "Dr. Alice M. Carter, MD" {
		t.Errorf("signed in as %q", signedInAs)
	}
	for _, want := range []string{"Home oxygen concentrator", "Documentation required", "Launch DTR"} {
		if !strings.Contains(orderRow, want) {
			t.Errorf("oxygen order row lacks %q: %q", want, orderRow)
		}
	}
	if len(otherRows) == 0 {
		t.Error("no other orders shown")
	}
	for _, r := range otherRows {
		if strings.Contains(r, "Launch DTR") || strings.Contains(r, "Documentation required") {
			t.Errorf("order without documentation needs offers DTR: %q", r)
		}
	}
	u, err := url.Parse(location)
	if err != nil || !strings.HasPrefix(location, base+"/test-app/launch?") || u.Query().Get("launch") != launchID || iss != fhirBase {
		t.Errorf("landed on %q (iss %q, launch %q)", location, iss, launchID)
	}
	req, n := hs.launcher.last()
	if n != 1 {
		t.Fatalf("%d launches created, want 1", n)
	}
	if req.ClientID != "dtr-app" || req.Patient != "pat-1" || req.Practitioner != "prac-1" || req.Encounter != "enc-1" ||
		!slices.Equal(req.FHIRContext, []smart.ContextItem{{Reference: "Coverage/cov-1"}, {Reference: "DeviceRequest/dr-oxygen-1"}}) {
		t.Errorf("launch request %+v", req)
	}

	// The app writes the completed questionnaire back; the chart shows it.
	qr := hs.writeBack(t, "pat-1", "completed")
	do(chromedp.Navigate(base+"/patients/pat-1"), chromedp.WaitVisible(chromedp.ID("documentation")), shot("05-chart-documentation-received.png"))
	docSection := text("#documentation")
	click(`tr[data-response="` + qr.ID + `"] a`)
	do(chromedp.WaitVisible(chromedp.ID("answers")), shot("06-response.png"))
	answers := text("#answers")
	do(chromedp.Navigate(base+"/patients/pat-9"), chromedp.WaitVisible(chromedp.CSS(".error-message")), shot("07-error.png"))
	if msg := text(".error-message"); !strings.Contains(msg, "no patient pat-9") {
		t.Errorf("error page says %q", msg)
	}
	for _, want := range []string{"home-oxygen", "Completed", "DeviceRequest/dr-oxygen-1"} {
		if !strings.Contains(docSection, want) {
			t.Errorf("documentation section lacks %q: %q", want, docSection)
		}
	}
	if !strings.Contains(answers, "87") || !strings.Contains(answers, "Nasal cannula") {
		t.Errorf("answers %q", answers)
	}
}
