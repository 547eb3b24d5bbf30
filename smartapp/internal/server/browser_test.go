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

	"github.com/chromedp/chromedp"

	"dtrsandbox/shared/config"
	"dtrsandbox/shared/fhir"
	"dtrsandbox/smartapp/internal/standin"
)

const chromium = "/usr/bin/chromium"

// browser starts headless Chromium with a throwaway profile.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("no " + chromium)
	}
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1600),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 120*time.Second)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	return ctx
}

// waitJS waits until the JavaScript expression is true.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	poll := chromedp.Poll[bool](expr, chromedp.WithPollingInterval(100*time.Millisecond))
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := poll(ctx, t)
		return err
	})
}

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

func TestBrowserRendersFormAndSavesDraft(t *testing.T) {
	ctx := browser(t)
	h := newHarness(t, standin.EHROptions{NeedPatientBanner: true})

	// EHR launch in the browser: /launch -> stand-in authorize -> /callback -> /app.
	err := chromedp.Do(ctx,
		chromedp.Navigate(h.launchURL()),
		chromedp.WaitVisible(chromedp.CSS(`body[data-form-ready="true"]`)),
		chromedp.WaitVisible(chromedp.CSS(flowRateInput)),
	)
	if err != nil {
		t.Fatal(err)
	}
	banner, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#banner`)))
	if err != nil || !strings.Contains(banner, "Harold James Whitfield") || !strings.Contains(banner, "1948-03-14") {
		t.Fatalf("patient banner %q (%v)", banner, err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(artifactDir(t), "app.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shot)

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
	shot2, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err == nil {
		_ = os.WriteFile(filepath.Join(artifactDir(t), "app-draft-saved.png"), shot2, 0o644)
	}

	// Resume: a reload (sessionStorage was cleared by the save) pre-fills
	// the form from the draft at the payer.
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`body[data-form-ready="true"]`))); err != nil {
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
}

func TestBrowserKeepsAnswersWhenTheSaveFails(t *testing.T) {
	ctx := browser(t)
	h := newHarness(t, standin.EHROptions{})
	err := chromedp.Do(ctx,
		chromedp.Navigate(h.launchURL()),
		chromedp.WaitVisible(chromedp.CSS(`body[data-form-ready="true"]`)),
		chromedp.WaitVisible(chromedp.CSS(flowRateInput)),
	)
	if err != nil {
		t.Fatal(err)
	}
	h.payer.Fail(standin.Fault{Status: 503, Diag: "payer maintenance", Path: "DocumentReference", Times: 5})
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(flowRateInput), "4"),
		chromedp.Click(chromedp.CSS(`#save-draft`)),
		waitJS(`!document.getElementById('alert').hidden`),
	)
	if err != nil {
		t.Fatal(err)
	}
	alert, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#alert`)))
	if !strings.Contains(alert, "temporarily unavailable") || !strings.Contains(alert, "payer maintenance") {
		t.Fatalf("alert %q", alert)
	}
	if v, _ := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(flowRateInput))); v != "4" {
		t.Fatalf("answer lost after the failed save: %q", v)
	}
	if len(h.payer.Docs()) != 0 {
		t.Fatal("stored despite the failure")
	}
	if shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		_ = os.WriteFile(filepath.Join(artifactDir(t), "app-save-failed.png"), shot, 0o644)
	}
	// A reload keeps the unsaved answer (sessionStorage).
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`body[data-form-ready="true"]`)), chromedp.WaitVisible(chromedp.CSS(flowRateInput))); err != nil {
		t.Fatal(err)
	}
	if v, _ := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(flowRateInput))); v != "4" {
		t.Fatalf("answer lost after a reload: %q", v)
	}
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
