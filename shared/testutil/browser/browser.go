// Package browser starts headless Chromium for a test, through chromedp,
// the way the services' browser tests drive their pages: Debian's Chromium
// at /usr/bin/chromium (CHROMIUM overrides the path), no sandbox, no GPU,
// no background traffic, a throwaway profile in a temporary directory. The
// browser stops when the test ends.
package browser

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// DefaultPath is Debian's Chromium.
const DefaultPath = "/usr/bin/chromium"

// Options of one browser.
type Options struct {
	// Width and Height of the window; default 1280×1000.
	Width, Height int
	// SPKIs are base64 SHA-256 hashes of certificates' public keys (see
	// SPKIHashes) that Chromium accepts although no trusted CA signed them
	// (--ignore-certificate-errors-spki-list): the sandbox CA never enters
	// a trust store.
	SPKIs []string
}

// Path is the Chromium to run: CHROMIUM, or DefaultPath.
func Path() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return DefaultPath
}

// New starts headless Chromium with its first tab and returns that tab's
// chromedp context; tabs of their own come from chromedp.NewContext on it.
// The start has no timeout of its own (bound the returned context for the
// test's steps). Without Chromium the test fails: every page is tested in
// a real browser, never skipped.
func New(t testing.TB, opts Options) context.Context {
	t.Helper()
	exe := Path()
	if _, err := os.Stat(exe); err != nil {
		t.Fatalf("the browser tests need Chromium at %s (or CHROMIUM=path): .ci/run installs it (apt-get install chromium): %v", exe, err)
	}
	w, h := opts.Width, opts.Height
	if w == 0 || h == 0 {
		w, h = 1280, 1000
	}
	// The profile directory is made before the cleanups below are
	// registered, so it is removed after the browser stopped.
	profile := t.TempDir()
	allocOpts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	if len(opts.SPKIs) > 0 {
		allocOpts = append(allocOpts, chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(opts.SPKIs, ",")))
	}
	allocOpts = append(allocOpts, chromedp.UserDataDir(profile), chromedp.WindowSize(w, h))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), allocOpts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // start the browser and its first tab
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// Screenshot keeps a full-page PNG of the tab as file; a failure is only
// logged (a missing screenshot fails no test).
func Screenshot(t testing.TB, ctx context.Context, file string) {
	t.Helper()
	if err := chromedp.Do(ctx, ScreenshotAction(file)); err != nil {
		t.Logf("screenshot %s: %v", file, err)
	}
}

// ScreenshotAction is an action that keeps a full-page PNG as file.
func ScreenshotAction(file string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
		buf, err := chromedp.FullScreenshot(100)(ctx, tgt)
		if err != nil {
			return err
		}
		return os.WriteFile(file, buf, 0o644)
	})
}

// SPKIHashes are the base64 SHA-256 hashes of the public keys of the
// certificates in the PEM files (the first certificate of each), for
// Options.SPKIs.
func SPKIHashes(certFiles ...string) ([]string, error) {
	var out []string
	for _, f := range certFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		block, _ := pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("%s holds no certificate", f)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
		out = append(out, base64.StdEncoding.EncodeToString(sum[:]))
	}
	return out, nil
}

// Console keeps what the pages of one tab wrote to the console.
type Console struct {
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

// CollectConsole starts keeping the console messages of the tab ctx.
func CollectConsole(ctx context.Context) *Console {
	c := &Console{}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			c.mu.Lock()
			c.msgs = append(c.msgs, m)
			c.mu.Unlock()
		}
	}()
	return c
}

// Messages are the messages kept so far.
func (c *Console) Messages() []chromedp.ConsoleMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]chromedp.ConsoleMessage(nil), c.msgs...)
}
