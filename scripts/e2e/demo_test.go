package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"dtrsandbox/scripts/internal/demo"
)

// TestDemo runs the headless demo — the provider flow, the payer and EHR
// checks and the four attacks — against a sandbox of its own, and fails on
// any step that did not hold.
func TestDemo(t *testing.T) {
	sb := startSandbox(t)
	cfg := demo.ConfigFor(sb)
	if cfg.AdminToken == "" {
		t.Fatalf("no payer admin token in %s/payer/admin-token", cfg.DataDir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out strings.Builder
	rep, err := demo.Run(ctx, cfg, &out)
	t.Logf("demo output:\n%s", out.String())
	if len(rep.Steps) < 16 {
		t.Errorf("the demo ran %d steps, want 16", len(rep.Steps))
	}
	for _, s := range rep.Failed() {
		t.Errorf("%s", s.Line())
	}
	if err != nil && rep.OK() {
		t.Errorf("Run returned %v with every step held", err)
	}
	if err == nil && !rep.OK() {
		t.Error("Run returned no error with a failed step")
	}
	if rep.OK() && rep.LaunchToSubmitted <= 0 {
		t.Error("no launch-to-submitted time for a run that submitted")
	}
}
