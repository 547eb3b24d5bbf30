package integration

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"dtrsandbox/shared/launcher"
)

// ehrDown: in introspection mode, with the EHR process killed, a request
// whose EHR token the payer has not cached is refused with 503 (fail
// closed: the payer cannot tell a good token from a revoked one), returns
// nothing and is audited; once the EHR is back the same token works.
func ehrDown(t *testing.T, c *cast) {
	w, a := c.w, c.a.fresh(t)
	tok := c.alice.launch(t, launchPat1) // never shown to the payer: not in its cache
	restarted := false
	defer func() {
		if !restarted {
			restartService(t, w, launcher.EHR)
		}
	}()
	if err := w.sb.Kill(launcher.EHR); err != nil {
		t.Fatal(err)
	}
	if _, err := w.trySend(http.MethodGet, w.ehrURL+"/healthz", nil, nil); !isTransportError(err) {
		t.Fatalf("the EHR still answers after SIGKILL: %v", err)
	}

	since := time.Now()
	for _, req := range []struct{ name, path string }{
		{"read", "/DocumentReference/" + c.aliceDoc},
		{"search", "/DocumentReference?" + url.Values{"_id": {c.aliceDoc}}.Encode()},
	} {
		r := w.payer(t, http.MethodGet, req.path, a.payerTok, tok.Access, nil)
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
			t.Fatalf("%s with the EHR down: %s (Retry-After %q), want 503", req.name, r, r.header.Get("Retry-After"))
		}
		if bytes.Contains(r.body, []byte(c.canary)) || bytes.Contains(r.body, []byte(`"entry"`)) {
			t.Fatalf("%s with the EHR down returned data: %s", req.name, r.body)
		}
	}
	w.requireAudit(t, since, auditWant{agent: c.alice.payerID, outcome: "8", status: 503, reason: "EHR token: ehr_unavailable"})

	restartService(t, w, launcher.EHR)
	restarted = true
	// The payer may back off from the EHR for the Retry-After it gave.
	deadline := time.Now().Add(60 * time.Second) // generous for a loaded CI machine; not a timing assertion
	for {
		r := w.payer(t, http.MethodGet, "/DocumentReference/"+c.aliceDoc, a.payerTok, tok.Access, nil)
		if r.status == http.StatusOK {
			break
		}
		if r.status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("read once the EHR is back: %s", r)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// restartService starts a killed service again and waits for /healthz.
func restartService(t *testing.T, w *world, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := w.sb.StartService(ctx, name); err != nil {
		t.Fatalf("restart %s: %v", name, err)
	}
	if err := w.sb.WaitHealthy(ctx, name, 60*time.Second); err != nil {
		t.Fatalf("%s after restart: %v", name, err)
	}
}
