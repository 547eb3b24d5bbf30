package integration

import (
	"testing"

	"dtrsandbox/shared/launcher"
	"dtrsandbox/shared/launcher/launchertest"
)

// The EHR and payer binaries are built once per test binary and shared by
// every sandbox the tests start.
var builds = launchertest.Builds{Services: []string{launcher.EHR, launcher.Payer}}

func TestMain(m *testing.M) { builds.Main(m) }

// buildServices compiles the EHR and the payer (once).
func buildServices(t testing.TB) map[string]string {
	t.Helper()
	return builds.Get(t)
}
