// Package launchertest builds the service binaries for the cross-service
// tests: once per test binary, on first use, into a temporary folder that
// is removed when the tests end.
//
//	var builds = launchertest.Builds{Services: []string{launcher.EHR, launcher.Payer}}
//
//	func TestMain(m *testing.M) { builds.Main(m) }
//
//	func TestX(t *testing.T) { bins := builds.Get(t); … }
package launchertest

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

// buildTimeout bounds the one build.
const buildTimeout = 10 * time.Minute

// Builds are the binaries of a test binary's services.
type Builds struct {
	Services []string // default launcher.Services

	dir  string
	once sync.Once
	bins map[string]string
	err  error
}

// Main is the test binary's TestMain: it makes the folder for the
// binaries, runs the tests, removes the folder and exits with the tests'
// code.
func (b *Builds) Main(m *testing.M) {
	dir, err := os.MkdirTemp("", "launchertest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	b.dir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Get builds the services (the first time) and returns their binaries by
// service name; a failed build fails the test.
func (b *Builds) Get(t testing.TB) map[string]string {
	t.Helper()
	if b.dir == "" {
		t.Fatal("launchertest: Builds.Get without Builds.Main in TestMain")
	}
	root := config.RepoRoot()
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		t.Fatalf("no go.work above the test's directory: %v", err)
	}
	b.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		b.bins, b.err = launcher.Build(ctx, launcher.Config{
			Root: root, BinDir: b.dir, DataDir: b.dir, Services: b.Services,
		})
	})
	if b.err != nil {
		names := b.Services
		if len(names) == 0 {
			names = launcher.Services
		}
		t.Fatalf("building the services (%s): %v", strings.Join(names, ", "), b.err)
	}
	return b.bins
}
