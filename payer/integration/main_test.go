package integration

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"dtrsandbox/shared/config"
	"dtrsandbox/shared/launcher"
)

// The EHR and payer binaries are built once per test binary and shared by
// every sandbox the tests start.
var (
	buildOnce sync.Once
	bins      map[string]string
	buildErr  error
	binDir    string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "payer-integration-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildServices compiles the EHR and the payer (once).
func buildServices(t testing.TB) map[string]string {
	t.Helper()
	buildOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		bins, buildErr = launcher.Build(ctx, launcher.Config{
			Root: config.RepoRoot(), BinDir: binDir, DataDir: binDir,
			Services: []string{launcher.EHR, launcher.Payer},
		})
	})
	if buildErr != nil {
		t.Fatalf("building the EHR and the payer: %v", buildErr)
	}
	return bins
}
