package launcher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"dtrsandbox/shared/localtls"
	"dtrsandbox/shared/testutil/logbuf"
)

// The test binary doubles as a fake service: with LAUNCHER_FAKE set it reads
// the environment a real service would (SANDBOX_*, {PREFIX}_ADDR) and serves
// /healthz, so Start, Stop and Kill are tested on real processes without
// building the three services.
const fakeEnv = "LAUNCHER_FAKE"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeEnv); mode != "" {
		os.Exit(fakeService(mode))
	}
	os.Exit(m.Run())
}

// fakeService modes: "ok" (serve, exit 0 on SIGTERM), "crash" (exit 3 at
// once), "stubborn" (serve, ignore SIGTERM).
func fakeService(mode string) int {
	name := os.Getenv("LAUNCHER_FAKE_NAME")
	prefix := strings.ToUpper(name) + "_"
	fmt.Println(`{"msg":"starting","service":"` + name + `"}`)
	fmt.Fprint(os.Stderr, "to stderr\n")
	if mode == "crash" {
		fmt.Print("fatal: no database") // no newline: the launcher must flush it
		return 3
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	ln, err := net.Listen("tcp", os.Getenv(prefix+"ADDR"))
	if err != nil {
		fmt.Println("listen:", err)
		return 1
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			io.WriteString(w, "ok")
			return
		}
		if r.URL.Path == "/env" {
			json.NewEncoder(w).Encode(os.Environ())
			return
		}
		http.NotFound(w, r)
	})}
	if os.Getenv("SANDBOX_TLS") == "on" {
		p, err := localtls.Ensure(os.Getenv("SANDBOX_DATA_DIR"), name, localtls.DefaultHosts())
		if err != nil {
			fmt.Println("tls:", err)
			return 1
		}
		cfg, err := localtls.ServerConfig(p)
		if err != nil {
			fmt.Println("tls:", err)
			return 1
		}
		srv.TLSConfig = cfg
		go srv.ServeTLS(ln, "", "")
	} else {
		go srv.Serve(ln)
	}
	for range sigs {
		if mode == "stubborn" {
			fmt.Println("ignoring SIGTERM")
			continue
		}
		srv.Close()
		fmt.Println("stopped")
		return 0
	}
	return 0
}

// fakeConfig runs every service as this test binary in the given modes.
func fakeConfig(t *testing.T, tls bool, modes map[string]string) (Config, map[string]string, *logbuf.Buffer) {
	t.Helper()
	ports, err := FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	out := &logbuf.Buffer{}
	cfg := Config{
		Root:          t.TempDir(),
		DataDir:       t.TempDir(),
		TLS:           tls,
		Ports:         map[string]int{EHR: ports[0], SmartApp: ports[1], Payer: ports[2]},
		Env:           map[string][]string{},
		Output:        out,
		StopTimeout:   10 * time.Second,
		HealthTimeout: 20 * time.Second,
	}
	bins := map[string]string{}
	for _, s := range Services {
		mode := modes[s]
		if mode == "" {
			mode = "ok"
		}
		cfg.Env[s] = []string{fakeEnv + "=" + mode, "LAUNCHER_FAKE_NAME=" + s}
		bins[s] = os.Args[0]
	}
	return cfg, bins, out
}

func TestStartStopOverTLS(t *testing.T) {
	cfg, bins, out := fakeConfig(t, true, nil)
	sb, err := Start(context.Background(), cfg, bins)
	if err != nil {
		t.Fatalf("Start: %v\n%s", err, out)
	}
	stopped := false
	defer func() {
		if !stopped {
			sb.Stop()
		}
	}()
	for _, s := range Services {
		resp, err := sb.Client().Get(sb.URL(s) + "/healthz")
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", s, resp.StatusCode)
		}
		if !strings.HasPrefix(sb.URL(s), "https://localhost:") {
			t.Errorf("URL(%s) = %s", s, sb.URL(s))
		}
	}
	// The payer got a registry for these ports.
	data, err := os.ReadFile(filepath.Join(cfg.DataDir, "payer", "trusted-ehrs.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), sb.URL(EHR)+"/fhir") {
		t.Errorf("trusted-ehrs.json does not name %s/fhir:\n%s", sb.URL(EHR), data)
	}
	// What the service sees in its environment.
	resp, err := sb.Client().Get(sb.URL(Payer) + "/env")
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	json.NewDecoder(resp.Body).Decode(&env)
	resp.Body.Close()
	for _, want := range []string{"PAYER_PUBLIC_URL=" + sb.URL(Payer), "PAYER_EHR_ISSUER=" + sb.URL(EHR) + "/fhir", "SANDBOX_DATA_DIR=" + cfg.DataDir} {
		if !contains(env, want) {
			t.Errorf("payer environment lacks %s", want)
		}
	}

	if err := sb.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	stopped = true
	for _, s := range Services {
		exited, err := sb.Exited(s)
		if !exited || err != nil {
			t.Errorf("%s: exited=%v err=%v", s, exited, err)
		}
	}
	logs := out.String()
	for _, s := range Services {
		for _, want := range []string{"[" + s + "] {\"msg\":\"starting\"", "[" + s + "] to stderr", "[" + s + "] stopped"} {
			if !strings.Contains(logs, want) {
				t.Errorf("logs lack %q:\n%s", want, logs)
			}
		}
	}
	if err := sb.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestStartReportsCrash(t *testing.T) {
	cfg, bins, out := fakeConfig(t, false, map[string]string{Payer: "crash"})
	sb, err := Start(context.Background(), cfg, bins)
	if err == nil {
		sb.Stop()
		t.Fatal("Start succeeded with a crashing payer")
	}
	if !strings.Contains(err.Error(), "payer exited before it was healthy") {
		t.Errorf("error = %v", err)
	}
	// The unterminated last line still reached the output, prefixed.
	if !strings.Contains(out.String(), "[payer] fatal: no database\n") {
		t.Errorf("crash output missing:\n%s", out)
	}
	// Start stopped the services it had started: their ports are free.
	if err := checkPortsFree(func() Config { c := cfg; c.defaults(); return c }()); err != nil {
		t.Errorf("after a failed Start: %v", err)
	}
}

func TestStopKillsStubbornService(t *testing.T) {
	cfg, bins, _ := fakeConfig(t, false, map[string]string{SmartApp: "stubborn"})
	cfg.StopTimeout = 2 * time.Second // long enough for a clean exit on a busy machine
	sb, err := Start(context.Background(), cfg, bins)
	if err != nil {
		t.Fatal(err)
	}
	err = sb.Stop()
	if err == nil || !strings.Contains(err.Error(), "smartapp did not stop") {
		t.Fatalf("Stop = %v, want smartapp killed", err)
	}
	if strings.Contains(err.Error(), "ehr") || strings.Contains(err.Error(), "payer") {
		t.Errorf("Stop blamed a service that stopped cleanly: %v", err)
	}
}

func TestKillAndRestart(t *testing.T) {
	cfg, bins, _ := fakeConfig(t, false, nil)
	ctx := context.Background()
	sb, err := Start(ctx, cfg, bins)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Stop()
	if err := sb.StartService(ctx, EHR); err == nil {
		t.Error("StartService on a running service succeeded")
	}
	if err := sb.Kill(EHR); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sb.Done(EHR):
	default:
		t.Fatal("Done(ehr) not closed after Kill")
	}
	if exited, err := sb.Exited(EHR); !exited || err == nil {
		t.Errorf("after Kill: exited=%v err=%v, want a signal exit", exited, err)
	}
	if err := sb.StartService(ctx, EHR); err != nil {
		t.Fatal(err)
	}
	if err := sb.WaitHealthy(ctx, EHR, 20*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestStartRefusesBusyPort(t *testing.T) {
	cfg, bins, _ := fakeConfig(t, false, nil)
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(cfg.Ports[Payer])))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sb, err := Start(context.Background(), cfg, bins)
	if err == nil {
		sb.Stop()
		t.Fatal("Start succeeded on a busy port")
	}
	if !strings.Contains(err.Error(), "payer cannot listen") {
		t.Errorf("error = %v", err)
	}
}

func TestEnviron(t *testing.T) {
	cfg := Config{
		Root:    "/repo",
		DataDir: "/data",
		TLS:     true,
		Ports:   map[string]int{EHR: 9441}, // others default
		Env:     map[string][]string{SmartApp: {"SMARTAPP_PAYER_URL=https://override/fhir"}},
	}
	tests := []struct {
		service string
		want    []string
	}{
		{EHR, []string{
			"SANDBOX_DATA_DIR=/data", "SANDBOX_TLS=on",
			"EHR_ADDR=127.0.0.1:9441", "EHR_PUBLIC_URL=https://localhost:9441",
			"EHR_SMARTAPP_URL=https://localhost:8442",
			"EHR_PAYER_JWKS_URI=https://localhost:8443/.well-known/jwks.json",
		}},
		{Payer, []string{
			"PAYER_ADDR=127.0.0.1:8443", "PAYER_PUBLIC_URL=https://localhost:8443",
			"PAYER_SMARTAPP_URL=https://localhost:8442",
			"PAYER_EHR_ISSUER=https://localhost:9441/fhir",
			"PAYER_TRUSTED_EHRS=/data/payer/trusted-ehrs.json",
		}},
		{SmartApp, []string{
			"SMARTAPP_ADDR=127.0.0.1:8442", "SMARTAPP_PUBLIC_URL=https://localhost:8442",
			"SMARTAPP_EHRS=https://localhost:9441/fhir=dtr-app",
			"SMARTAPP_PAYER_URL=https://localhost:8443/fhir",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			env := cfg.Environ(tt.service)
			for _, w := range tt.want {
				if !contains(env, w) {
					t.Errorf("missing %s in %v", w, env)
				}
			}
		})
	}
	t.Run("override comes last", func(t *testing.T) {
		env := cfg.Environ(SmartApp)
		if env[len(env)-1] != "SMARTAPP_PAYER_URL=https://override/fhir" {
			t.Errorf("last = %s", env[len(env)-1])
		}
	})
	t.Run("plain HTTP", func(t *testing.T) {
		c := cfg
		c.TLS = false
		env := c.Environ(EHR)
		for _, w := range []string{"SANDBOX_TLS=off", "EHR_PUBLIC_URL=http://localhost:9441"} {
			if !contains(env, w) {
				t.Errorf("missing %s", w)
			}
		}
	})
}

func TestTrustedEHRsPath(t *testing.T) {
	tests := []struct {
		name string
		tls  bool
		ehr  int
		want string
	}{
		{"default run uses the committed file", true, 0, "/repo/payer/trusted-ehrs.json"},
		{"default port explicit", true, 8441, "/repo/payer/trusted-ehrs.json"},
		{"other EHR port", true, 9441, "/data/payer/trusted-ehrs.json"},
		{"plain HTTP", false, 8441, "/data/payer/trusted-ehrs.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Root: "/repo", DataDir: "/data", TLS: tt.tls}
			if tt.ehr != 0 {
				c.Ports = map[string]int{EHR: tt.ehr}
			}
			if got := c.TrustedEHRsPath(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestWriteTrustedEHRs(t *testing.T) {
	for _, mode := range []string{"introspection", "jwks"} {
		t.Run(mode, func(t *testing.T) {
			c := Config{Root: t.TempDir(), DataDir: t.TempDir(), TLS: false, Ports: map[string]int{EHR: 18441}}
			if err := c.WriteTrustedEHRs(mode); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(c.TrustedEHRsPath())
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				EHRs []map[string]string `json:"ehrs"`
			}
			if err := json.Unmarshal(data, &doc); err != nil {
				t.Fatal(err)
			}
			if len(doc.EHRs) != 1 {
				t.Fatalf("%d entries", len(doc.EHRs))
			}
			e := doc.EHRs[0]
			want := map[string]string{
				"issuer":                 "http://localhost:18441/fhir",
				"fhir_base":              "http://localhost:18441/fhir",
				"mode":                   mode,
				"jwks_uri":               "http://localhost:18441/fhir/.well-known/jwks.json",
				"introspection_endpoint": "http://localhost:18441/oauth/introspect",
				"client_id":              "payer",
				"client_auth":            "private_key_jwt",
			}
			for k, v := range want {
				if e[k] != v {
					t.Errorf("%s = %q, want %q", k, e[k], v)
				}
			}
			if _, ok := e["client_secret"]; ok {
				t.Error("private_key_jwt entry carries a client_secret")
			}
		})
	}
}

func TestDefaultsDoNotShareMaps(t *testing.T) {
	c := Config{DataDir: "/d", Ports: map[string]int{Payer: 1}}
	c.defaults()
	c.Ports[EHR] = 2
	if DefaultPorts[EHR] != 8441 {
		t.Fatal("defaults() let a caller write DefaultPorts")
	}
	if c.Ports[SmartApp] != 8442 || c.Ports[Payer] != 1 {
		t.Errorf("ports = %v", c.Ports)
	}
	if c.Root == "" || c.BinDir != "/d/bin" || c.Bind != "127.0.0.1" {
		t.Errorf("defaults: root=%q bin=%q bind=%q", c.Root, c.BinDir, c.Bind)
	}
}

func TestLineWriter(t *testing.T) {
	long := strings.Repeat("x", maxLine+10)
	tests := []struct {
		name   string
		writes []string
		flush  bool
		want   string
	}{
		{"whole lines", []string{"a\nb\n"}, false, "[s] a\n[s] b\n"},
		{"split across writes", []string{"he", "llo\nwor", "ld\n"}, false, "[s] hello\n[s] world\n"},
		{"partial waits", []string{"no newline"}, false, ""},
		{"partial flushed", []string{"no newline"}, true, "[s] no newline\n"},
		{"CRLF", []string{"dos\r\n"}, false, "[s] dos\n"},
		{"empty line", []string{"\n"}, false, "[s] \n"},
		{"long line whole", []string{long + "\n"}, false, "[s] " + long + "\n"},
		{"long unterminated cut", []string{long}, false, "[s] " + long[:maxLine] + "\n"},
		{"long unterminated rest flushed", []string{long}, true, "[s] " + long[:maxLine] + "\n[s] xxxxxxxxxx\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			w := newLineWriter(&out, "[s] ")
			for _, s := range tt.writes {
				n, err := w.Write([]byte(s))
				if n != len(s) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if tt.flush {
				w.Flush()
			}
			if got := out.String(); got != tt.want {
				t.Errorf("got %q, want %q", clip(got), clip(tt.want))
			}
		})
	}
}

func TestLineWriterSurvivesFailingSink(t *testing.T) {
	w := newLineWriter(failWriter{}, "[s] ")
	if n, err := w.Write([]byte("line\n")); n != 5 || err != nil {
		t.Errorf("Write = %d, %v; a sink error must not reach the child's pipe", n, err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }

func TestFreePorts(t *testing.T) {
	ports, err := FreePorts(5)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("ports = %v", ports)
		}
		seen[p] = true
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Errorf("port %d not free after FreePorts: %v", p, err)
			continue
		}
		l.Close()
	}
	// Outside the ephemeral range, where outgoing connections take their
	// source ports, whenever the kernel leaves room below it.
	if lo, hi, ok := belowEphemeral(); ok {
		for _, p := range ports {
			if p < lo || p >= hi {
				t.Errorf("port %d outside [%d, %d)", p, lo, hi)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// clip keeps failure messages readable.
func clip(s string) string {
	if len(s) > 80 {
		return fmt.Sprintf("%s...(%d bytes)...%s", s[:40], len(s), s[len(s)-30:])
	}
	return s
}
