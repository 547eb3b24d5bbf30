// Package up is `sandbox up`: build the three services, start them as
// separate processes over HTTPS (CONTRACT.md "Commands"), wait until each
// answers /healthz, print where everything is, and stop all three cleanly
// when the context ends (Ctrl-C).
package up

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"dtrsandbox/shared/launcher"
	"dtrsandbox/shared/localtls"
)

// Options of one `sandbox up`.
type Options struct {
	Root    string         // repository root (go.work)
	DataDir string         // SANDBOX_DATA_DIR for the services (absolute)
	TLS     bool           // SANDBOX_TLS
	Ports   map[string]int // per service; missing ones keep the CONTRACT.md ports
	Out     io.Writer      // the banner and progress lines
	Logs    io.Writer      // service log lines, prefixed "[ehr] " etc.
	// Started is when the command started, for the "healthy after" line;
	// zero means when Run was called.
	Started time.Time
	// Ready, if set, is called once all three services are healthy.
	Ready func(*launcher.Sandbox)
}

// Timing of a start.
type Timing struct {
	Build   time.Duration // go build of the three binaries
	Start   time.Duration // processes started until all three answered /healthz
	Healthy time.Duration // command start until all three were healthy
}

// Run builds and starts the sandbox, prints the banner, and blocks until ctx
// is done (then stops the services and returns nil if they stopped cleanly)
// or a service exits on its own (then stops the others and returns an error).
func Run(ctx context.Context, opts Options) error {
	if opts.Started.IsZero() {
		opts.Started = time.Now()
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	cfg := launcher.Config{
		Root:    opts.Root,
		DataDir: opts.DataDir,
		TLS:     opts.TLS,
		Ports:   opts.Ports,
		Output:  opts.Logs,
	}
	fmt.Fprintf(opts.Out, "sandbox: building ehr, payer, smartapp (data dir %s)\n", opts.DataDir)
	var tm Timing
	t0 := time.Now()
	bins, err := launcher.Build(ctx, cfg)
	if err != nil {
		return err
	}
	tm.Build = time.Since(t0)
	fmt.Fprintf(opts.Out, "sandbox: built in %s; starting the services\n", round(tm.Build))
	t1 := time.Now()
	sb, err := launcher.Start(ctx, cfg, bins)
	if err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while starting: Start stopped what it had started
		}
		return err
	}
	tm.Start = time.Since(t1)
	tm.Healthy = time.Since(opts.Started)

	info := Info{
		Config:   sb.Config(),
		Timing:   tm,
		AdminEnv: os.Getenv("PAYER_ADMIN_TOKEN") != "",
	}
	info.AdminTokenPath = filepath.Join(opts.DataDir, "payer", "admin-token")
	if !info.AdminEnv {
		if b, err := os.ReadFile(info.AdminTokenPath); err == nil {
			info.AdminToken = strings.TrimSpace(string(b))
		}
	}
	Banner(opts.Out, info)
	if opts.Ready != nil {
		opts.Ready(sb)
	}

	exited := make(chan string, len(launcher.Services))
	for _, name := range launcher.Services {
		go func() {
			select {
			case <-sb.Done(name):
				exited <- name
			case <-ctx.Done():
			}
		}()
	}
	select {
	case <-ctx.Done():
		fmt.Fprintln(opts.Out, "\nsandbox: stopping ehr, payer, smartapp ...")
		t := time.Now()
		if err := sb.Stop(); err != nil {
			return fmt.Errorf("sandbox: stop: %w", err)
		}
		fmt.Fprintf(opts.Out, "sandbox: stopped cleanly in %s\n", round(time.Since(t)))
		return nil
	case name := <-exited:
		_, why := sb.Exited(name)
		stopErr := sb.Stop()
		return errors.Join(fmt.Errorf("sandbox: %s exited unexpectedly (%v); stopped the others — see its [%s] log lines above", name, why, name), stopErr)
	}
}

// Info is what the banner shows.
type Info struct {
	Config         launcher.Config
	Timing         Timing
	AdminTokenPath string
	AdminToken     string // empty when unreadable or set by env
	AdminEnv       bool   // PAYER_ADMIN_TOKEN is set
}

// Banner prints the URLs, how to trust the CA, the payer admin token and
// where to click first.
func Banner(w io.Writer, in Info) {
	c := in.Config
	ehr, app, payer := c.BaseURL(launcher.EHR), c.BaseURL(launcher.SmartApp), c.BaseURL(launcher.Payer)
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("")
	p("DTR sandbox is up: ehr, payer and smartapp healthy %s after start (build %s, start to healthy %s).",
		round(in.Timing.Healthy), round(in.Timing.Build), round(in.Timing.Start))
	p("")
	p("  EHR (chart, authorization server)  %s", ehr)
	p("      FHIR base / issuer             %s/fhir", ehr)
	p("  SMART DTR app                      %s", app)
	p("  Payer (DTR documents, audit)       %s", payer)
	p("      FHIR base                      %s/fhir", payer)
	p("  Data directory                     %s", c.DataDir)
	p("")
	if c.TLS {
		ca := localtls.CAPath(c.DataDir)
		p("TLS: every service uses a certificate from the sandbox's own CA:")
		p("  %s", ca)
		p("Trust it where you need it (and remove it again when you are done):")
		p("  curl:            curl --cacert %s %s/healthz", ca, ehr)
		p("  Firefox:         Settings > Privacy & Security > Certificates > View Certificates >")
		p("                   Authorities > Import... > %s > tick \"Trust this CA to identify websites\"", ca)
		p("  Chrome/Chromium: Settings > Privacy and security > Security > Manage certificates >")
		p("                   Authorities (Linux) > Import > %s; on macOS and Windows Chrome uses the system store", ca)
		p("  Debian/Ubuntu:   sudo cp %s /usr/local/share/ca-certificates/dtr-sandbox.crt && sudo update-ca-certificates", ca)
		p("  macOS:           sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain %s", ca)
	} else {
		p("TLS is off (SANDBOX_TLS=off): plain HTTP on localhost only.")
	}
	p("")
	switch {
	case in.AdminEnv:
		p("Payer admin token (audit log, console): the value of PAYER_ADMIN_TOKEN.")
	case in.AdminToken != "":
		p("Payer admin token (audit log, console; a local sandbox secret): %s", in.AdminToken)
		p("  stored in %s", in.AdminTokenPath)
		p("  curl -H \"Authorization: Bearer $(cat %s)\" %s/fhir/AuditEvent", in.AdminTokenPath, payer)
	default:
		p("Payer admin token: cat %s", in.AdminTokenPath)
	}
	p("")
	p("Where to click first:")
	p("  1. Open %s/ (the EHR chart).", ehr)
	p("  2. Pick a clinician (prac-1), then a patient (pat-1).")
	p("  3. On the home-oxygen order (DeviceRequest/dr-oxygen-1) click \"Launch DTR\": the app opens, fill the form, Save draft, Submit.")
	p("  Headless, the same flow and the security checks: go run ./scripts/sandbox demo")
	p("")
	p("Ctrl-C stops all three.")
}

// ParsePorts reads "ehr=9441,smartapp=9442,payer=9443" (any subset).
func ParsePorts(s string) (map[string]int, error) {
	ports := map[string]int{}
	if strings.TrimSpace(s) == "" {
		return ports, nil
	}
	known := map[string]bool{}
	for _, n := range launcher.Services {
		known[n] = true
	}
	for _, pair := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
		name = strings.TrimSpace(name)
		if !ok || !known[name] {
			return nil, fmt.Errorf("ports: %q is not service=port with service one of ehr, smartapp, payer", pair)
		}
		if _, dup := ports[name]; dup {
			return nil, fmt.Errorf("ports: %s given twice", name)
		}
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("ports: %s=%q is not a port number", name, val)
		}
		ports[name] = n
	}
	// No two services on one port, counting the defaults of those not given.
	merged := map[string]int{}
	for n, p := range launcher.DefaultPorts {
		merged[n] = p
	}
	for n, p := range ports {
		merged[n] = p
	}
	seen := map[int]string{}
	for _, n := range sortedKeys(merged) {
		p := merged[n]
		if other, dup := seen[p]; dup {
			return nil, fmt.Errorf("ports: %s and %s both on %d", other, n, p)
		}
		seen[p] = n
	}
	return ports, nil
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// round keeps durations readable: 1.234s, 87ms.
func round(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
