package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// compose is the part of docker-compose.yml the test reads (after YAML
// merge keys are applied).
type compose struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       any               `yaml:"build"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		Volumes     []string          `yaml:"volumes"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		DependsOn map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

// TestComposeFile checks docker-compose.yml without a Docker engine: three
// services from one image, each listening on 0.0.0.0 with its public URL
// on localhost and its port published, server-to-server calls rewritten to
// the service names, the shared data volume, the payer's compose registry,
// healthchecks by the healthcheck binary, and start order by health.
func TestComposeFile(t *testing.T) {
	root := repoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	internal := "https://localhost:8441=https://ehr:8441,https://localhost:8442=https://smartapp:8442,https://localhost:8443=https://payer:8443"
	want := []struct {
		name, port, prefix string
		deps               []string
	}{
		{"ehr", "8441", "EHR_", nil},
		{"payer", "8443", "PAYER_", []string{"ehr"}},
		{"smartapp", "8442", "SMARTAPP_", []string{"ehr", "payer"}},
	}
	if len(c.Services) != len(want) {
		t.Errorf("%d services, want 3", len(c.Services))
	}
	image := ""
	for _, w := range want {
		t.Run(w.name, func(t *testing.T) {
			s, ok := c.Services[w.name]
			if !ok {
				t.Fatalf("no service %s", w.name)
			}
			if image == "" {
				image = s.Image
			}
			if s.Image == "" || s.Image != image {
				t.Errorf("image %q: every service must run the one image (%q)", s.Image, image)
			}
			if s.Build == nil {
				t.Error("no build section")
			}
			if !slices.Equal(s.Command, []string{w.name}) {
				t.Errorf("command %v, want [%s]", s.Command, w.name)
			}
			env := s.Environment
			checks := map[string]string{
				"SANDBOX_DATA_DIR":      "/data",
				"SANDBOX_INTERNAL_URLS": internal,
				w.prefix + "ADDR":       "0.0.0.0:" + w.port,
				w.prefix + "PUBLIC_URL": "https://localhost:" + w.port,
			}
			for k, v := range checks {
				if env[k] != v {
					t.Errorf("%s = %q, want %q", k, env[k], v)
				}
			}
			if tlsOn := env["SANDBOX_TLS"]; tlsOn != "" && tlsOn != "on" {
				t.Errorf("SANDBOX_TLS = %q", tlsOn)
			}
			if !slices.Contains(s.Ports, w.port+":"+w.port) {
				t.Errorf("ports %v do not publish %s", s.Ports, w.port)
			}
			if !slices.Contains(s.Volumes, "sandbox-data:/data") {
				t.Errorf("volumes %v lack sandbox-data:/data", s.Volumes)
			}
			hc := s.Healthcheck.Test
			if len(hc) < 3 || hc[0] != "CMD" || hc[1] != "healthcheck" || hc[2] != "https://localhost:"+w.port {
				t.Errorf("healthcheck %v, want [CMD healthcheck https://localhost:%s]", hc, w.port)
			}
			var deps []string
			for d, cond := range s.DependsOn {
				deps = append(deps, d)
				if cond.Condition != "service_healthy" {
					t.Errorf("depends_on %s: condition %q, want service_healthy", d, cond.Condition)
				}
			}
			slices.Sort(deps)
			if !slices.Equal(deps, w.deps) {
				t.Errorf("depends_on %v, want %v", deps, w.deps)
			}
		})
	}
	if _, ok := c.Volumes["sandbox-data"]; !ok {
		t.Error("no named volume sandbox-data")
	}

	// The services point at each other by their public URLs.
	env := func(s, k string) string { return c.Services[s].Environment[k] }
	for k, v := range map[[2]string]string{
		{"ehr", "EHR_SMARTAPP_URL"}:        "https://localhost:8442",
		{"ehr", "EHR_PAYER_JWKS_URI"}:      "https://localhost:8443/.well-known/jwks.json",
		{"payer", "PAYER_SMARTAPP_URL"}:    "https://localhost:8442",
		{"payer", "PAYER_EHR_ISSUER"}:      "https://localhost:8441/fhir",
		{"smartapp", "SMARTAPP_EHRS"}:      "https://localhost:8441/fhir=dtr-app",
		{"smartapp", "SMARTAPP_PAYER_URL"}: "https://localhost:8443/fhir",
	} {
		if got := env(k[0], k[1]); got != v {
			t.Errorf("%s %s = %q, want %q", k[0], k[1], got, v)
		}
	}

	// The payer's registry for compose is mounted where PAYER_TRUSTED_EHRS says.
	reg := env("payer", "PAYER_TRUSTED_EHRS")
	var mounted string
	for _, v := range c.Services["payer"].Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == reg {
			mounted = parts[0]
		}
	}
	if reg == "" || mounted == "" {
		t.Fatalf("PAYER_TRUSTED_EHRS %q is not a mounted file (volumes %v)", reg, c.Services["payer"].Volumes)
	}
	checkComposeRegistry(t, filepath.Join(root, mounted))
}

// checkComposeRegistry: the EHR is trusted under its public issuer, the
// payer reaches its keys and introspection on the service name, and the
// assertion audience (the token endpoint) stays public.
func checkComposeRegistry(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		EHRs []map[string]string `json:"ehrs"`
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(f.EHRs) != 1 {
		t.Fatalf("%s lists %d EHRs, want 1", path, len(f.EHRs))
	}
	e := f.EHRs[0]
	known := []string{"issuer", "fhir_base", "mode", "jwks_uri", "introspection_endpoint", "token_endpoint", "client_id", "client_auth", "client_secret"}
	for k := range e {
		if !slices.Contains(known, k) {
			t.Errorf("%s: member %q is not in the registry format (CONTRACT.md \"Trusted EHRs\")", path, k)
		}
	}
	if e["client_auth"] == "private_key_jwt" && e["client_secret"] != "" {
		t.Error("private_key_jwt with a client_secret")
	}
	if e["issuer"] != "https://localhost:8441/fhir" {
		t.Errorf("issuer %q", e["issuer"])
	}
	internalURL := regexp.MustCompile(`^https://ehr:8441/`)
	for _, k := range []string{"jwks_uri", "introspection_endpoint"} {
		if !internalURL.MatchString(e[k]) {
			t.Errorf("%s = %q, want a URL on https://ehr:8441", k, e[k])
		}
	}
	if tok := e["token_endpoint"]; tok != "" && !strings.HasPrefix(tok, "https://localhost:8441/") {
		t.Errorf("token_endpoint %q: the client assertion's aud must be the public token URL", tok)
	}
	if e["mode"] != "introspection" && e["mode"] != "jwks" {
		t.Errorf("mode %q", e["mode"])
	}
	if e["client_id"] != "payer" {
		t.Errorf("client_id %q, want payer (the seeded client)", e["client_id"])
	}
}

// TestDockerfileMatchesCompose checks the image docker-compose.yml runs
// (Dockerfile) without a Docker engine: a multi-stage build whose Go
// matches go.work, that builds every command compose runs — the three
// services and the healthcheck binary its healthchecks call (the services'
// mains have no health-check mode, so scripts/healthcheck is in the image
// beside them) — into a directory on the runtime stage's PATH, with the
// data directory compose mounts and the ports it publishes.
func TestDockerfileMatchesCompose(t *testing.T) {
	root := repoRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	// Instructions, with continuation lines joined and comments dropped.
	var instrs []string
	cur := ""
	for _, line := range strings.Split(string(raw), "\n") {
		l := strings.TrimSpace(line)
		if strings.HasPrefix(l, "#") || (l == "" && cur == "") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cur += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		instrs = append(instrs, strings.Join(strings.Fields(cur+l), " "))
		cur = ""
	}

	var froms, builds []string
	var binDir, runtimeBin, dataEnv, expose string
	for _, in := range instrs {
		switch {
		case strings.HasPrefix(in, "FROM "):
			froms = append(froms, in)
		case strings.HasPrefix(in, "RUN ") && strings.Contains(in, "go build"):
			f := strings.Fields(in[strings.Index(in, "go build"):])
			for i := 2; i < len(f); i++ {
				switch {
				case f[i] == "-o" && i+1 < len(f):
					binDir = f[i+1]
					i++
				case strings.HasPrefix(f[i], "./"):
					builds = append(builds, f[i])
				}
			}
		case strings.HasPrefix(in, "COPY --from=build "):
			if f := strings.Fields(in); len(f) == 4 && binDir != "" && f[2] == binDir {
				runtimeBin = f[3]
			}
		case strings.HasPrefix(in, "ENV SANDBOX_DATA_DIR="):
			dataEnv = strings.TrimPrefix(in, "ENV SANDBOX_DATA_DIR=")
		case strings.HasPrefix(in, "EXPOSE "):
			expose = in
		}
	}
	if len(froms) < 2 || !strings.Contains(froms[0], "golang:") || !strings.HasSuffix(froms[0], " AS build") || strings.Contains(froms[len(froms)-1], "golang") {
		t.Errorf("not a multi-stage build (Go build stage, slim runtime): %v", froms)
	}
	work, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(work); m == nil || !strings.Contains(froms[0], "golang:"+string(m[1])) {
		t.Errorf("build stage %q does not use the Go of go.work (%s)", froms[0], m)
	}
	if runtimeBin != "/usr/local/bin/" && runtimeBin != "/usr/local/bin" {
		t.Errorf("the binaries (go build -o %q) are copied to %q, want /usr/local/bin on the runtime PATH", binDir, runtimeBin)
	}
	built := map[string]bool{}
	for _, b := range builds {
		main, err := os.ReadFile(filepath.Join(root, b, "main.go"))
		if err != nil || !strings.Contains(string(main), "package main") {
			t.Errorf("go build %s: not a main package (%v)", b, err)
		}
		built[filepath.Base(b)] = true
	}

	data, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	for name, s := range c.Services {
		if len(s.Command) == 0 || !built[s.Command[0]] {
			t.Errorf("%s: command %v is not built by the Dockerfile (it builds %v)", name, s.Command, builds)
		}
		if hc := s.Healthcheck.Test; len(hc) < 2 || !built[hc[1]] {
			t.Errorf("%s: healthcheck %v calls a binary the Dockerfile does not build", name, hc)
		}
		if s.Environment["SANDBOX_DATA_DIR"] != dataEnv {
			t.Errorf("%s: SANDBOX_DATA_DIR %q, the image's %q (the healthcheck finds the CA under it)", name, s.Environment["SANDBOX_DATA_DIR"], dataEnv)
		}
		for _, p := range s.Ports {
			if port := strings.Split(p, ":")[0]; !strings.Contains(expose, port) {
				t.Errorf("%s publishes %s, the Dockerfile exposes %q", name, port, expose)
			}
		}
	}
	if !built["healthcheck"] {
		t.Error("the Dockerfile does not build scripts/healthcheck")
	}
}
