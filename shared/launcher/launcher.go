// Package launcher builds the three service binaries and runs them as
// separate processes over real HTTPS, the way a developer runs the sandbox:
// `sandbox up` and `sandbox demo` use it, and so do the cross-service tests,
// which start the services on free ports with their own data directory.
package launcher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"dtrsandbox/shared/config"
	"dtrsandbox/shared/httpclient"
	"dtrsandbox/shared/localtls"
)

// The services, in start order.
const (
	EHR      = "ehr"
	Payer    = "payer"
	SmartApp = "smartapp"
)

// Services lists every service.
var Services = []string{EHR, Payer, SmartApp}

// DefaultPorts are the CONTRACT.md ports.
var DefaultPorts = map[string]int{EHR: 8441, SmartApp: 8442, Payer: 8443}

// Config of one sandbox run.
type Config struct {
	Root     string              // repository root (go.work); default config.RepoRoot()
	DataDir  string              // SANDBOX_DATA_DIR for the services
	TLS      bool                // SANDBOX_TLS
	Ports    map[string]int      // default DefaultPorts
	BinDir   string              // default {DataDir}/bin
	Env      map[string][]string // extra KEY=VALUE per service (override defaults)
	Output   io.Writer           // service logs, each line prefixed "[name] "; nil discards
	Services []string            // subset to run; default Services
	// Bind is the listen host; default 127.0.0.1 (loopback only).
	Bind string
	// StopTimeout is how long Stop waits for each service after SIGTERM
	// before SIGKILL; default 20 s (the services drain for at most 15 s).
	StopTimeout time.Duration
	// HealthTimeout is how long Start waits for each /healthz; default 90 s.
	HealthTimeout time.Duration
}

func (c *Config) defaults() {
	if c.Root == "" {
		c.Root = config.RepoRoot()
	}
	// A copy with every service's port: a partial map keeps the defaults for
	// the others, and the caller's map (or DefaultPorts) is never written.
	ports := make(map[string]int, len(DefaultPorts))
	for s, p := range DefaultPorts {
		ports[s] = p
	}
	for s, p := range c.Ports {
		if p != 0 {
			ports[s] = p
		}
	}
	c.Ports = ports
	if c.StopTimeout <= 0 {
		c.StopTimeout = 20 * time.Second
	}
	if c.HealthTimeout <= 0 {
		c.HealthTimeout = 90 * time.Second
	}
	if c.BinDir == "" {
		c.BinDir = filepath.Join(c.DataDir, "bin")
	}
	if c.Services == nil {
		c.Services = Services
	}
	if c.Bind == "" {
		c.Bind = "127.0.0.1"
	}
	if c.Output == nil {
		c.Output = io.Discard
	}
}

// BaseURL is the public base URL of a service ("https://localhost:8441").
func (c Config) BaseURL(service string) string {
	scheme := "https"
	if !c.TLS {
		scheme = "http"
	}
	return scheme + "://localhost:" + strconv.Itoa(c.port(service))
}

// port is the service's port in this run (DefaultPorts where unset).
func (c Config) port(service string) int {
	if p := c.Ports[service]; p != 0 {
		return p
	}
	return DefaultPorts[service]
}

// defaultTrust reports whether the committed payer/trusted-ehrs.json fits
// this run: TLS on and the EHR on its CONTRACT.md port.
func (c Config) defaultTrust() bool { return c.TLS && c.port(EHR) == DefaultPorts[EHR] }

// EHRFHIRBase is the EHR's issuer.
func (c Config) EHRFHIRBase() string { return c.BaseURL(EHR) + "/fhir" }

// PayerFHIRBase is the payer's FHIR base.
func (c Config) PayerFHIRBase() string { return c.BaseURL(Payer) + "/fhir" }

// Environ is the environment of one service: the contract's variables
// pointing the services at each other, then Config.Env overrides.
func (c Config) Environ(service string) []string {
	env := []string{
		"SANDBOX_DATA_DIR=" + c.DataDir,
		"SANDBOX_TLS=" + onOff(c.TLS),
	}
	bind := c.Bind
	if bind == "" {
		bind = "127.0.0.1"
	}
	addr := net.JoinHostPort(bind, strconv.Itoa(c.port(service)))
	switch service {
	case EHR:
		env = append(env,
			"EHR_ADDR="+addr,
			"EHR_PUBLIC_URL="+c.BaseURL(EHR),
			"EHR_SMARTAPP_URL="+c.BaseURL(SmartApp),
			"EHR_PAYER_JWKS_URI="+c.BaseURL(Payer)+"/.well-known/jwks.json",
		)
	case Payer:
		env = append(env,
			"PAYER_ADDR="+addr,
			"PAYER_PUBLIC_URL="+c.BaseURL(Payer),
			"PAYER_SMARTAPP_URL="+c.BaseURL(SmartApp),
			"PAYER_EHR_ISSUER="+c.EHRFHIRBase(),
			"PAYER_TRUSTED_EHRS="+c.TrustedEHRsPath(),
		)
	case SmartApp:
		env = append(env,
			"SMARTAPP_ADDR="+addr,
			"SMARTAPP_PUBLIC_URL="+c.BaseURL(SmartApp),
			"SMARTAPP_EHRS="+c.EHRFHIRBase()+"=dtr-app",
			"SMARTAPP_PAYER_URL="+c.PayerFHIRBase(),
		)
	}
	return append(env, c.Env[service]...)
}

// TrustedEHRsPath is the registry file the payer reads in this run: the
// committed payer/trusted-ehrs.json for the default setup, else a file
// written into the data directory for these ports.
func (c Config) TrustedEHRsPath() string {
	if c.defaultTrust() {
		return filepath.Join(c.Root, "payer", "trusted-ehrs.json")
	}
	return filepath.Join(c.DataDir, "payer", "trusted-ehrs.json")
}

// WriteTrustedEHRs writes the registry for a non-default run: the sandbox
// EHR in introspection mode, the payer authenticating with its own key.
func (c Config) WriteTrustedEHRs(mode string) error {
	base := c.EHRFHIRBase()
	doc := map[string]any{"ehrs": []map[string]any{{
		"issuer":                 base,
		"fhir_base":              base,
		"mode":                   mode,
		"jwks_uri":               base + "/.well-known/jwks.json",
		"introspection_endpoint": c.BaseURL(EHR) + "/oauth/introspect",
		"token_endpoint":         c.BaseURL(EHR) + "/oauth/token",
		"client_id":              "payer",
		"client_auth":            "private_key_jwt",
	}}}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	path := c.TrustedEHRsPath()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// Build compiles the binaries of cfg.Services into cfg.BinDir.
func Build(ctx context.Context, cfg Config) (map[string]string, error) {
	cfg.defaults()
	if err := os.MkdirAll(cfg.BinDir, 0o755); err != nil {
		return nil, err
	}
	bins := map[string]string{}
	args := []string{"build", "-o", cfg.BinDir + string(os.PathSeparator)}
	for _, s := range cfg.Services {
		args = append(args, "dtrsandbox/"+s+"/cmd/"+s)
		bins[s] = filepath.Join(cfg.BinDir, s)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = cfg.Root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("launcher: go build: %v\n%s", err, out)
	}
	return bins, nil
}

// Sandbox is a set of running services.
type Sandbox struct {
	cfg    Config
	bins   map[string]string
	out    *syncWriter // cfg.Output, shared by every service's log lines
	mu     sync.Mutex
	procs  map[string]*proc
	client *http.Client
}

type proc struct {
	cmd  *exec.Cmd
	logs *lineWriter
	done chan struct{}
	err  error // set before done is closed
}

// Start builds (unless bins are given), starts every service and waits until
// each answers /healthz. On error, whatever started is stopped.
func Start(ctx context.Context, cfg Config, bins map[string]string) (*Sandbox, error) {
	cfg.defaults()
	if err := checkPortsFree(cfg); err != nil {
		return nil, err
	}
	if !cfg.defaultTrust() {
		if err := cfg.WriteTrustedEHRs("introspection"); err != nil {
			return nil, err
		}
	}
	if bins == nil {
		var err error
		if bins, err = Build(ctx, cfg); err != nil {
			return nil, err
		}
	}
	s := &Sandbox{cfg: cfg, bins: bins, out: &syncWriter{w: cfg.Output}, procs: map[string]*proc{}}
	if cfg.TLS {
		// Make the CA now, so the health checks can trust it.
		if _, err := localtls.Ensure(cfg.DataDir, "launcher", localtls.DefaultHosts()); err != nil {
			return nil, err
		}
	}
	client, err := s.newClient()
	if err != nil {
		return nil, err
	}
	s.client = client
	for _, name := range cfg.Services {
		if err := s.StartService(ctx, name); err != nil {
			s.Stop()
			return nil, err
		}
	}
	for _, name := range cfg.Services {
		if err := s.WaitHealthy(ctx, name, cfg.HealthTimeout); err != nil {
			s.Stop()
			return nil, err
		}
	}
	return s, nil
}

// checkPortsFree refuses to start when a port is taken: otherwise the new
// service would exit on "address in use" while the health check is answered
// by whatever holds the port (often a sandbox that is already running).
func checkPortsFree(cfg Config) error {
	for _, name := range cfg.Services {
		addr := net.JoinHostPort(cfg.Bind, strconv.Itoa(cfg.port(name)))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("launcher: %s cannot listen on %s (is a sandbox already running? stop it or choose other ports): %w", name, addr, err)
		}
		l.Close()
	}
	return nil
}

func (s *Sandbox) newClient() (*http.Client, error) {
	cfg := httpclient.Config{Timeout: 10 * time.Second}
	if s.cfg.TLS {
		cfg.CAFile = localtls.CAPath(s.cfg.DataDir)
	}
	return httpclient.New(cfg)
}

// Config is the run's configuration.
func (s *Sandbox) Config() Config { return s.cfg }

// Client trusts the sandbox CA.
func (s *Sandbox) Client() *http.Client { return s.client }

// URL is a service's public base URL.
func (s *Sandbox) URL(service string) string { return s.cfg.BaseURL(service) }

// StartService starts (or restarts, after Kill) one service.
func (s *Sandbox) StartService(ctx context.Context, name string) error {
	bin, ok := s.bins[name]
	if !ok {
		return fmt.Errorf("launcher: no binary for %s", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.procs[name]; p != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("launcher: %s is already running (pid %d)", name, p.cmd.Process.Pid)
		}
	}
	cmd := exec.Command(bin)
	cmd.Dir = s.cfg.Root
	cmd.Env = append(os.Environ(), s.cfg.Environ(name)...)
	// Own process group: a terminal Ctrl-C reaches only us, and we stop the
	// services in order. Pdeathsig: a crashed launcher leaves no orphans.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	lw := newLineWriter(s.out, "["+name+"] ")
	// One writer for both streams: exec then uses a single pipe, and the
	// copy is finished when Wait returns.
	cmd.Stdout, cmd.Stderr = lw, lw
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("launcher: start %s: %w", name, err)
	}
	p := &proc{cmd: cmd, logs: lw, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		lw.Flush() // a last line without a newline
		close(p.done)
	}()
	s.procs[name] = p
	return nil
}

// WaitHealthy polls GET {url}/healthz until 200, the process exits, or the
// timeout passes.
func (s *Sandbox) WaitHealthy(ctx context.Context, name string, timeout time.Duration) error {
	s.mu.Lock()
	p := s.procs[name]
	s.mu.Unlock()
	if p == nil {
		return fmt.Errorf("launcher: %s not started", name)
	}
	deadline := time.Now().Add(timeout)
	url := s.URL(name) + "/healthz"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := s.client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				select {
				case <-p.done: // answered by someone else, and ours is gone
				default:
					return nil
				}
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("launcher: %s exited before it was healthy: %v (its log lines above are prefixed [%s])", name, p.err, name)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("launcher: %s not healthy at %s after %s", name, url, timeout)
		}
	}
}

// Kill sends SIGKILL to one service and waits for it to die (crash tests).
func (s *Sandbox) Kill(name string) error {
	s.mu.Lock()
	p := s.procs[name]
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	return nil
}

// Stop sends SIGTERM to every service (reverse order), waits up to
// Config.StopTimeout each for a graceful exit, then kills what is left. It
// reports a service that had to be killed or that exited with an error on
// SIGTERM. Safe to call more than once.
func (s *Sandbox) Stop() error {
	s.mu.Lock()
	procs := make(map[string]*proc, len(s.procs))
	for k, v := range s.procs {
		procs[k] = v
	}
	s.mu.Unlock()
	var errs []error
	for i := len(s.cfg.Services) - 1; i >= 0; i-- {
		name := s.cfg.Services[i]
		p := procs[name]
		if p == nil {
			continue
		}
		select {
		case <-p.done:
			continue
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			if p.err != nil {
				errs = append(errs, fmt.Errorf("%s exited on SIGTERM with %v", name, p.err))
			}
		case <-time.After(s.cfg.StopTimeout):
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
			errs = append(errs, fmt.Errorf("%s did not stop within %s and was killed", name, s.cfg.StopTimeout))
		}
	}
	return errors.Join(errs...)
}

// Done is closed when the named service exits.
func (s *Sandbox) Done(name string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.procs[name]; p != nil {
		return p.done
	}
	c := make(chan struct{})
	close(c)
	return c
}

// Exited reports whether the named service has exited and, if so, its
// exit error (nil for a clean exit).
func (s *Sandbox) Exited(name string) (exited bool, err error) {
	s.mu.Lock()
	p := s.procs[name]
	s.mu.Unlock()
	if p == nil {
		return false, nil
	}
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// syncWriter serialises writes from the services' log copiers, so a shared
// Output (a bytes.Buffer, a testing log) sees whole lines, one at a time.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// maxLine is where an unterminated line is cut and written anyway.
const maxLine = 64 << 10

// lineWriter copies whole lines to out, each prefixed (e.g. "[ehr] "). A
// partial line waits for its newline (or Flush); a line longer than maxLine
// is written in pieces, each with the prefix.
type lineWriter struct {
	mu     sync.Mutex
	out    io.Writer
	prefix string
	buf    []byte
}

func newLineWriter(out io.Writer, prefix string) *lineWriter {
	return &lineWriter{out: out, prefix: prefix}
}

// Write never fails: a log sink error must not stop the service's output
// pipe (the child would block or die on SIGPIPE).
func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.emit(l.buf[:i])
		l.buf = l.buf[i+1:]
	}
	for len(l.buf) >= maxLine {
		l.emit(l.buf[:maxLine])
		l.buf = l.buf[maxLine:]
	}
	if len(l.buf) == 0 {
		l.buf = nil // let a large backing array go
	}
	return len(p), nil
}

// Flush writes a pending partial line.
func (l *lineWriter) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.emit(l.buf)
		l.buf = nil
	}
}

func (l *lineWriter) emit(line []byte) {
	out := make([]byte, 0, len(l.prefix)+len(line)+1)
	out = append(out, l.prefix...)
	out = append(out, bytes.TrimSuffix(line, []byte("\r"))...)
	out = append(out, '\n')
	_, _ = l.out.Write(out)
}

// FreePorts returns n distinct TCP ports that are free on loopback now.
//
// They are picked at random below the kernel's ephemeral range (Linux's
// ip_local_port_range), not by listening on port 0: a port the kernel hands
// out for ":0" comes from the same range as the source ports of outgoing
// connections, so between FreePorts closing its listener and a service
// binding the port, any connection made by a test running in parallel
// (every package's tests do) can take it. Below that range only another
// explicit bind can, which a random pick makes unlikely and Start's
// busy-port check reports. Where the range cannot be read, the kernel picks.
func FreePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	listen := func(port int) bool {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return false
		}
		ls = append(ls, l) // held until all n are picked, so they are distinct
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
		return true
	}
	if lo, hi, ok := belowEphemeral(); ok {
		for try := 0; len(ports) < n && try < 50*n; try++ {
			listen(lo + rand.IntN(hi-lo))
		}
	}
	for len(ports) < n {
		if !listen(0) {
			return nil, fmt.Errorf("launcher: no free port on 127.0.0.1")
		}
	}
	return ports, nil
}

// belowEphemeral is the port range [lo, hi) that FreePorts draws from: from
// 20000 up to the start of the ephemeral range, when that leaves room.
func belowEphemeral() (lo, hi int, ok bool) {
	const floor, minWidth = 20000, 2000
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, false
	}
	start, err := strconv.Atoi(f[0])
	if err != nil || start-floor < minWidth {
		return 0, 0, false
	}
	return floor, start, true
}
