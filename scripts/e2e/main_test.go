package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dtrsandbox/shared/config"
	"dtrsandbox/shared/launcher"
	"dtrsandbox/shared/launcher/launchertest"
	"dtrsandbox/shared/testutil/logbuf"
)

// The three service binaries are built once per test binary and shared.
var builds launchertest.Builds

func TestMain(m *testing.M) { builds.Main(m) }

// repoRoot is the folder holding go.work (tests run in scripts/e2e).
func repoRoot(t testing.TB) string {
	t.Helper()
	root := config.RepoRoot()
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		t.Fatalf("no go.work above the test's directory: %v", err)
	}
	return root
}

func buildServices(t testing.TB) map[string]string {
	t.Helper()
	return builds.Get(t)
}

// startSandbox runs the three services on free ports with TLS and a fresh
// data directory; they are stopped (and must stop cleanly) at cleanup.
// Their logs go to the test log only when the test fails.
func startSandbox(t *testing.T) *launcher.Sandbox {
	t.Helper()
	sb, _ := startOnFreePorts(t, 3, func(ports []int, dataDir string) launcher.Config {
		return launcher.Config{
			DataDir: dataDir,
			TLS:     true,
			Ports:   map[string]int{launcher.EHR: ports[0], launcher.SmartApp: ports[1], launcher.Payer: ports[2]},
		}
	})
	return sb
}

// startAttempts is how often startOnFreePorts tries new ports.
const startAttempts = 3

// startOnFreePorts builds the services (once per test binary) and starts
// the configuration that mk makes for n free ports and a fresh data
// directory, with Root, Output and a start timeout filled in. A free port
// can be taken by another process (every package's tests run in parallel)
// between launcher.FreePorts, which closes its listeners, and the
// service's listen: such a clash is retried with new ports and a new data
// directory. The sandbox is stopped (cleanly, or the test fails) at
// cleanup; its logs go to the test log only when the test fails.
func startOnFreePorts(t *testing.T, n int, mk func(ports []int, dataDir string) launcher.Config) (*launcher.Sandbox, *logbuf.Lines) {
	t.Helper()
	b := buildServices(t)
	var (
		sb   *launcher.Sandbox
		logs *logbuf.Lines
		err  error
	)
	for attempt := 1; ; attempt++ {
		ports, perr := launcher.FreePorts(n)
		if perr != nil {
			t.Fatal(perr)
		}
		logs = &logbuf.Lines{}
		cfg := mk(ports, t.TempDir())
		cfg.Root, cfg.Output = repoRoot(t), logs
		ctx, cancel := context.WithTimeout(context.Background(), within(t, 5*time.Minute))
		sb, err = launcher.Start(ctx, cfg, b)
		cancel()
		if err == nil {
			break
		}
		if attempt < startAttempts && portClash(err.Error()+"\n"+logs.Tail(50)) {
			t.Logf("attempt %d: a port was taken meanwhile, retrying with other ports: %v", attempt, err)
			continue
		}
		t.Fatalf("starting the sandbox: %v\n--- service logs ---\n%s", err, logs.Tail(200))
	}
	t.Cleanup(func() {
		if err := sb.Stop(); err != nil {
			t.Errorf("stopping the sandbox: %v", err)
		}
		if t.Failed() {
			t.Logf("--- service logs (last 200 lines) ---\n%s", logs.Tail(200))
		}
	})
	return sb, logs
}

// portClash reports whether a start failed because a port was taken.
func portClash(out string) bool {
	return strings.Contains(out, "cannot listen") || strings.Contains(out, "address already in use")
}

// within is d, or less when the test binary's deadline (go test -timeout)
// comes sooner: the time left minus a minute for the cleanup and the
// other tests' report. Waits are bounded by it rather than by a guess at
// how fast a loaded CI machine is.
func within(t *testing.T, d time.Duration) time.Duration {
	if dl, ok := t.Deadline(); ok {
		if left := time.Until(dl) - time.Minute; left < d {
			return max(left, 10*time.Second)
		}
	}
	return d
}
