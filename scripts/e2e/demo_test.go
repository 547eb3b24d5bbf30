package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dtrsandbox/scripts/internal/demo"
	"dtrsandbox/shared/launcher"
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
	ctx, cancel := context.WithTimeout(context.Background(), within(t, 4*time.Minute))
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
	for _, s := range rep.Steps {
		if !strings.Contains(out.String(), s.Line()) || !strings.Contains(s.Line(), " ms)") {
			t.Errorf("step %d is not printed with its outcome and time: %q", s.N, s.Line())
		}
	}
	checkAppKey(t, sb)
}

// checkAppKey: the app created its signing key on first start under the
// data directory, and publishes exactly its public half (same kid) at
// /.well-known/jwks.json, never the private part.
func checkAppKey(t *testing.T, sb *launcher.Sandbox) {
	t.Helper()
	path := filepath.Join(sb.Config().DataDir, "smartapp", "keys", "signing-es384.pem")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("the app's signing key: %v", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("%s mode %v: readable by others", path, fi.Mode().Perm())
	}
	pemData, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemData)
	if block == nil {
		t.Fatalf("%s holds no PEM block", path)
	}
	priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ec, ok := priv.(*ecdsa.PrivateKey)
	if !ok {
		t.Fatalf("the app's key is a %T, want ECDSA (ES384)", priv)
	}
	resp, err := sb.Client().Get(sb.URL(launcher.SmartApp) + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("app JWKS %s (%v)", body, err)
	}
	k := set.Keys[0]
	if _, leaked := k["d"]; leaked {
		t.Fatal("the app's JWKS publishes the private key")
	}
	point, err := ec.PublicKey.Bytes() // 0x04 || X || Y, 48 bytes each for P-384
	if err != nil || len(point) != 97 {
		t.Fatalf("the app's key is not a P-384 key: %v", err)
	}
	x := base64.RawURLEncoding.EncodeToString(point[1:49])
	if k["alg"] != "ES384" || k["crv"] != "P-384" || k["x"] != x || k["kid"] == "" {
		t.Errorf("the published key %v is not the one in %s", k, path)
	}
}
