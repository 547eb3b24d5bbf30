package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"dtrsandbox/smartapp/internal/standin"
)

// TestOversizedHeaders: 33 KiB of header fields (over the 32 KiB cap of
// httpserver.MaxHeaderBytes, but within what net/http itself would still
// serve) are refused with 431 (RFC 6585 §5), also in a signed-in session:
// the API's JSON error under /api/, the error page elsewhere.
func TestOversizedHeaders(t *testing.T) {
	h := newHarness(t, standin.EHROptions{})
	h.launch()
	pad := http.Header{"X-Pad": {strings.Repeat("p", 33<<10)}}

	resp, body := h.do(http.MethodGet, "/api/context", pad, nil)
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge ||
		e.Code != "bad_request" || e.Source != "app" || e.Status != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("API: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("API headers: %v", resp.Header)
	}

	resp, body = h.do(http.MethodGet, "/app", pad, nil)
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !contains(body, "<html") || !contains(body, "headers are too large") {
		t.Fatalf("page: %d %s", resp.StatusCode, body)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("page headers: %v", resp.Header)
	}

	// The same session under the cap is served.
	if resp, body := h.do(http.MethodGet, "/api/context", http.Header{"X-Pad": {strings.Repeat("p", 30<<10)}}, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("30 KiB of headers: %d %s", resp.StatusCode, body)
	}
}
