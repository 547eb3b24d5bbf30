package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"dtrsandbox/payer/internal/authz"
	"dtrsandbox/shared/fhir"
)

// TestOversizedHeaders: 33 KiB of header fields (over the 32 KiB cap, but
// within what net/http itself would still serve) are refused with 431
// (RFC 6585 §5) before the gate acts: an OperationOutcome under /fhir, an
// RFC 6749 error under /oauth. Under the cap the request is served.
func TestOversizedHeaders(t *testing.T) {
	w := probeWorld(t, "sqlite", nil)
	pad := []string{"X-Pad", strings.Repeat("p", 33<<10)}
	auth := []string{"Authorization", "Bearer " + w.payerToken(fullScope), "X-EHR-Authorization", "Bearer " + w.ehrToken("dtr-app", "pat-1")}

	if resp, body := w.do("GET", "/fhir/metadata", "", "X-Pad", strings.Repeat("p", 30<<10)); resp.StatusCode != http.StatusOK {
		t.Fatalf("30 KiB of headers: %d %s", resp.StatusCode, body)
	}

	p0, e0 := w.crypto()
	audits := w.rows("audit_events")
	for _, tc := range []struct {
		name, method, path string
		hdr                []string
	}{
		{"metadata", "GET", "/fhir/metadata", pad},
		{"gated search", "GET", "/fhir/DocumentReference", append(pad, auth...)},
		{"console", "GET", "/console", pad},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := w.do(tc.method, tc.path, "", tc.hdr...)
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
				t.Fatalf("Content-Type %q", ct)
			}
			var oo struct {
				ResourceType string `json:"resourceType"`
				Issue        []struct{ Code string }
			}
			if err := json.Unmarshal([]byte(body), &oo); err != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) != 1 || oo.Issue[0].Code != fhir.IssueTooLong {
				t.Fatalf("not a too-long OperationOutcome: %s", body)
			}
		})
	}
	t.Run("token", func(t *testing.T) {
		resp, body := w.do("POST", authz.TokenPath, "grant_type=client_credentials", append(pad, "Content-Type", "application/x-www-form-urlencoded")...)
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		var e struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error != "invalid_request" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("not an RFC 6749 error: %s %s", resp.Header.Get("Content-Type"), body)
		}
	})
	if p, e := w.crypto(); p != p0 || e != e0 {
		t.Fatalf("%d payer and %d EHR signature checks for refused requests; want none", p-p0, e-e0)
	}
	if got := w.rows("audit_events") - audits; got != 0 {
		t.Fatalf("%d AuditEvents for requests refused before the gate", got)
	}
}
