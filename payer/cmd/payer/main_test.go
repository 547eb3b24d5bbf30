package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dtrsandbox/shared/config"
	"dtrsandbox/shared/launcher"
	"dtrsandbox/shared/localtls"
)

func TestLoadDefaults(t *testing.T) {
	env := config.FromMap(map[string]string{"SANDBOX_DATA_DIR": t.TempDir()})
	s := load(env)
	if err := env.Err(); err != nil {
		t.Fatal(err)
	}
	c := s.server
	if s.addr != ":8443" || c.PublicURL != "https://localhost:8443" || !c.RegistrationOpen || c.RateLimit != 20 ||
		c.IntrospectionCacheTTL != 30*time.Second || c.SmartAppURL != "https://localhost:8442" ||
		c.EHRIssuer != "https://localhost:8441/fhir" || c.AllowHTTP {
		t.Fatalf("defaults %+v addr %s", c, s.addr)
	}
	if c.TrustedEHRsPath != filepath.Join(config.RepoRoot(), "payer", "trusted-ehrs.json") {
		t.Fatalf("registry path %s", c.TrustedEHRsPath)
	}
	off := load(config.FromMap(map[string]string{"SANDBOX_TLS": "off", "PAYER_REGISTRATION": "closed", "PAYER_RATE_LIMIT": "5"}))
	if off.server.PublicURL != "http://localhost:8443" || !off.server.AllowHTTP || off.server.RegistrationOpen || off.server.RateLimit != 5 {
		t.Fatalf("TLS off %+v", off.server)
	}
}

func TestLoadRefuses(t *testing.T) {
	for name, m := range map[string]map[string]string{
		"registration":      {"PAYER_REGISTRATION": "maybe"},
		"rate limit zero":   {"PAYER_RATE_LIMIT": "0"},
		"rate limit text":   {"PAYER_RATE_LIMIT": "fast"},
		"ttl":               {"PAYER_INTROSPECTION_CACHE_TTL": "soon"},
		"public url":        {"PAYER_PUBLIC_URL": "localhost:8443"},
		"short admin token": {"PAYER_ADMIN_TOKEN": "short"},
	} {
		t.Run(name, func(t *testing.T) {
			env := config.FromMap(m)
			load(env)
			if env.Err() == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// TestRunServesAndStops starts the payer with TLS on a free port, waits
// for /healthz over the sandbox CA, then stops it with the context.
func TestRunServesAndStops(t *testing.T) {
	ports, err := launcher.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	data := t.TempDir()
	env := config.FromMap(map[string]string{
		"SANDBOX_DATA_DIR": data, "PAYER_ADDR": addr, "PAYER_PUBLIC_URL": "https://" + addr, "SANDBOX_LOG_LEVEL": "error",
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, env) }()

	var client *http.Client
	deadline := time.Now().Add(20 * time.Second)
	for {
		if client == nil {
			if pool, err := localtls.RootPool(localtls.CAPath(data)); err == nil {
				client = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
			}
		}
		if client != nil {
			if resp, err := client.Get("https://" + addr + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
		}
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("payer did not become healthy")
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, err := client.Get("https://" + addr + "/fhir/.well-known/smart-configuration")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("discovery: %v %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not stop")
	}
	if _, err := client.Get("https://" + addr + "/healthz"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("still serving after stop: %v", err)
	}
}
