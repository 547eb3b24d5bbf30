package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"dtrsandbox/shared/config"
	"dtrsandbox/shared/launcher"
)

// The three service binaries are built once per test binary and shared.
var (
	buildOnce sync.Once
	bins      map[string]string
	buildErr  error
	binDir    string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dtr-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

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
	buildOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		bins, buildErr = launcher.Build(ctx, launcher.Config{Root: repoRoot(t), BinDir: binDir, DataDir: binDir})
	})
	if buildErr != nil {
		t.Fatalf("building the services: %v", buildErr)
	}
	return bins
}

// startSandbox runs the three services on free ports with TLS and a fresh
// data directory; they are stopped (and must stop cleanly) at cleanup.
// Their logs go to the test log only when the test fails.
func startSandbox(t *testing.T) *launcher.Sandbox {
	t.Helper()
	b := buildServices(t)
	ports, err := launcher.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	cfg := launcher.Config{
		Root:    repoRoot(t),
		DataDir: t.TempDir(),
		TLS:     true,
		Ports:   map[string]int{launcher.EHR: ports[0], launcher.SmartApp: ports[1], launcher.Payer: ports[2]},
		Output:  logs,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sb, err := launcher.Start(ctx, cfg, b)
	if err != nil {
		t.Fatalf("starting the sandbox: %v\n--- service logs ---\n%s", err, logs.tail(200))
	}
	t.Cleanup(func() {
		if err := sb.Stop(); err != nil {
			t.Errorf("stopping the sandbox: %v", err)
		}
		if t.Failed() {
			t.Logf("--- service logs (last 200 lines) ---\n%s", logs.tail(200))
		}
	})
	return sb
}

// logBuffer keeps the services' log lines.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
	part  string
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.part + string(p)
	parts := strings.Split(s, "\n")
	l.part = parts[len(parts)-1]
	l.lines = append(l.lines, parts[:len(parts)-1]...)
	return len(p), nil
}

func (l *logBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	from := max(0, len(l.lines)-n)
	return strings.Join(l.lines[from:], "\n")
}
