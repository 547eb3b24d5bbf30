package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dtrsandbox/scripts/internal/demo"
	"dtrsandbox/shared/launcher"
	"dtrsandbox/shared/localtls"
)

// TestComposeWiring runs the docker-compose wiring without Docker: every
// service's public URL is https://localhost:<port> where nothing listens,
// and SANDBOX_INTERNAL_URLS sends server-to-server calls to where the
// services really listen (here https://127.0.0.1:<other port>, in compose
// https://<service>:<port>; both are SANs of the leaf certificates). The
// payer reads scripts/compose/trusted-ehrs.json with those addresses
// substituted. The demo, with the same rewrites (what port publishing does
// for a browser), must hold every step: any call that ignores the rewrites
// would hit a closed port.
func TestComposeWiring(t *testing.T) {
	root := repoRoot(t)
	tmpl, err := os.ReadFile(filepath.Join(root, "scripts", "compose", "trusted-ehrs.json"))
	if err != nil {
		t.Fatal(err)
	}
	services := []string{launcher.EHR, launcher.SmartApp, launcher.Payer}
	var (
		public, internal map[string]string
		rewriteMap       map[string]string
		dataDir          string
	)
	// Ports 0-2 are the public ports, where nothing listens (another
	// process may even take them: nothing here calls them); 3-5 are where
	// the services listen.
	startOnFreePorts(t, 6, func(ports []int, dir string) launcher.Config {
		dataDir = dir
		public, internal, rewriteMap = map[string]string{}, map[string]string{}, map[string]string{}
		var rewrites []string
		for i, s := range services {
			public[s] = fmt.Sprintf("https://localhost:%d", ports[i])
			internal[s] = fmt.Sprintf("https://127.0.0.1:%d", ports[i+3])
			rewrites = append(rewrites, public[s]+"="+internal[s])
			rewriteMap[public[s]] = internal[s]
		}

		// The compose registry, for these addresses.
		reg := strings.NewReplacer(
			"https://localhost:8441", public[launcher.EHR],
			"https://ehr:8441", internal[launcher.EHR],
		).Replace(string(tmpl))
		if reg == string(tmpl) || strings.Contains(reg, ":8441") {
			t.Fatalf("scripts/compose/trusted-ehrs.json does not use the compose addresses:\n%s", tmpl)
		}
		regPath := filepath.Join(dir, "trusted-ehrs.compose.json")
		if err := os.WriteFile(regPath, []byte(reg), 0o600); err != nil {
			t.Fatal(err)
		}

		common := []string{"SANDBOX_INTERNAL_URLS=" + strings.Join(rewrites, ",")}
		return launcher.Config{
			DataDir: dir,
			TLS:     true,
			// The launcher listens and health-checks on the internal ports.
			Ports: map[string]int{launcher.EHR: ports[3], launcher.SmartApp: ports[4], launcher.Payer: ports[5]},
			Env: map[string][]string{
				launcher.EHR: append(common,
					"EHR_PUBLIC_URL="+public[launcher.EHR],
					"EHR_SMARTAPP_URL="+public[launcher.SmartApp],
					"EHR_PAYER_JWKS_URI="+public[launcher.Payer]+"/.well-known/jwks.json"),
				launcher.Payer: append(common,
					"PAYER_PUBLIC_URL="+public[launcher.Payer],
					"PAYER_SMARTAPP_URL="+public[launcher.SmartApp],
					"PAYER_EHR_ISSUER="+public[launcher.EHR]+"/fhir",
					"PAYER_TRUSTED_EHRS="+regPath),
				launcher.SmartApp: append(common,
					"SMARTAPP_PUBLIC_URL="+public[launcher.SmartApp],
					"SMARTAPP_EHRS="+public[launcher.EHR]+"/fhir=dtr-app",
					"SMARTAPP_PAYER_URL="+public[launcher.Payer]+"/fhir"),
			},
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), within(t, 4*time.Minute))
	defer cancel()

	dc := demo.Config{
		EHR:          public[launcher.EHR],
		App:          public[launcher.SmartApp],
		Payer:        public[launcher.Payer],
		CAFile:       localtls.CAPath(dataDir),
		AdminToken:   demo.AdminToken(dataDir),
		DataDir:      dataDir,
		InternalURLs: rewriteMap,
	}
	var out strings.Builder
	rep, err := demo.Run(ctx, dc, &out)
	t.Logf("demo output:\n%s", out.String())
	for _, s := range rep.Failed() {
		t.Errorf("%s", s.Line())
	}
	if err != nil && rep.OK() {
		t.Error(err)
	}
	if len(rep.Steps) < 16 {
		t.Errorf("%d steps, want 16", len(rep.Steps))
	}
}
