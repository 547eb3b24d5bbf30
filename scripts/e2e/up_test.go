package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"dtrsandbox/shared/httpclient"
	"dtrsandbox/shared/launcher"
	"dtrsandbox/shared/localtls"
	"dtrsandbox/shared/testutil/logbuf"
)

// TestUpCommand runs the built `sandbox up` with a temporary data directory
// and free ports, waits until all three services answer /healthz over TLS
// and the banner is printed (URLs, the CA and how to trust it, where to
// click), checks the services' log lines are prefixed, runs `sandbox demo`
// against it (every step printed with outcome and time, exit 0), then
// sends SIGINT (Ctrl-C) and expects a clean stop with exit code 0, the
// ports free again.
func TestUpCommand(t *testing.T) {
	root := repoRoot(t)
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "sandbox")
	build := exec.Command("go", "build", "-o", bin, "./scripts/sandbox")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./scripts/sandbox: %v\n%s", err, out)
	}

	var (
		u        *upProcess
		ports    []int
		dataDir  string
		portFlag string
	)
	for attempt := 1; ; attempt++ {
		var err error
		if ports, err = launcher.FreePorts(3); err != nil {
			t.Fatal(err)
		}
		dataDir = filepath.Join(tmp, fmt.Sprintf("data-%d", attempt))
		portFlag = fmt.Sprintf("ehr=%d,smartapp=%d,payer=%d", ports[0], ports[1], ports[2])
		u = startUp(t, root, bin, "up", "-data", dataDir, "-ports", portFlag)
		// Up: the banner appears once all three are healthy. The build of
		// the services (cached by the earlier tests) is included.
		err = u.waitFor("DTR sandbox is up", within(t, 6*time.Minute))
		if err == nil {
			break
		}
		if attempt < startAttempts && u.hasExited() && portClash(u.out.String()) {
			t.Logf("attempt %d: a port was taken meanwhile, retrying with other ports", attempt)
			continue
		}
		t.Fatalf("sandbox up: %v\n--- output ---\n%s", err, u.out.String())
	}
	banner := u.out.String()
	client, err := httpclient.New(httpclient.Config{CAFile: localtls.CAPath(dataDir), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{launcher.EHR, launcher.SmartApp, launcher.Payer} {
		base := fmt.Sprintf("https://localhost:%d", ports[i])
		resp, err := client.Get(base + "/healthz")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s /healthz: %d", name, resp.StatusCode)
		}
		if !strings.Contains(banner, base) {
			t.Errorf("the banner does not show %s's URL %s", name, base)
		}
		// Each service's JSON log lines come prefixed with its name.
		if !regexp.MustCompile(`(?m)^\[` + name + `\] \{`).MatchString(banner) {
			t.Errorf("no log line prefixed [%s] before the banner", name)
		}
	}
	for _, want := range []string{
		localtls.CAPath(dataDir), "curl --cacert", "update-ca-certificates", "security add-trusted-cert",
		filepath.Join(dataDir, "payer", "admin-token"), "Where to click first", "Launch DTR", "healthy", "Ctrl-C",
	} {
		if !strings.Contains(banner, want) {
			t.Errorf("the banner lacks %q", want)
		}
	}

	// `sandbox demo` against the running sandbox.
	demoCmd := exec.Command(bin, "demo", "-data", dataDir, "-ports", portFlag)
	demoCmd.Dir = root
	demoCmd.Env = append(os.Environ(), "SANDBOX_TLS=on")
	demoOut, demoErr := demoCmd.CombinedOutput()
	if demoErr != nil {
		t.Errorf("sandbox demo against the running sandbox: %v\n%s", demoErr, demoOut)
	}
	if strings.Contains(string(demoOut), "starting a sandbox of its own") {
		t.Error("sandbox demo did not find the running sandbox")
	}
	steps := regexp.MustCompile(`(?m)^(PASS|FAIL)  \d+\. .+ \(\d+ ms\)`).FindAllString(string(demoOut), -1)
	if len(steps) < 16 || !strings.Contains(string(demoOut), "RESULT: PASS") {
		t.Errorf("sandbox demo printed %d steps with outcome and time, want 16 and RESULT: PASS:\n%s", len(steps), demoOut)
	}

	// Ctrl-C.
	sent := time.Now()
	if err := u.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	// Each service gets 20 s to drain before it is killed (and up then
	// reports an error): wait for longer than all three.
	select {
	case <-u.exited:
		if u.waitErr != nil {
			t.Fatalf("sandbox up after SIGINT: %v (want exit 0)", u.waitErr)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("sandbox up did not exit within 90 s of SIGINT")
	}
	t.Logf("stopped %s after SIGINT", time.Since(sent).Round(time.Millisecond))
	if !strings.Contains(u.out.String(), "stopped cleanly") {
		t.Errorf("no \"stopped cleanly\" line after SIGINT")
	}
	for i, p := range ports {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Errorf("port %d (%s) still taken after the stop: %v", p, []string{"ehr", "smartapp", "payer"}[i], err)
			continue
		}
		l.Close()
	}
}

// upProcess is a running `sandbox` command.
type upProcess struct {
	cmd     *exec.Cmd
	out     *logbuf.Buffer
	exited  chan struct{} // closed when the process has exited
	waitErr error         // its exit error, set before exited is closed
}

// startUp starts bin with args in root; the process is killed at cleanup
// if still running, and its output logged if the test failed.
func startUp(t *testing.T, root, bin string, args ...string) *upProcess {
	t.Helper()
	u := &upProcess{cmd: exec.Command(bin, args...), out: &logbuf.Buffer{}, exited: make(chan struct{})}
	u.cmd.Dir = root
	u.cmd.Env = append(os.Environ(), "SANDBOX_TLS=on")
	u.cmd.Stdout, u.cmd.Stderr = u.out, u.out
	if err := u.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { u.waitErr = u.cmd.Wait(); close(u.exited) }()
	t.Cleanup(func() {
		if !u.hasExited() {
			_ = u.cmd.Process.Kill()
			<-u.exited
		}
		if t.Failed() {
			t.Logf("--- sandbox %s output ---\n%s", args[0], u.out.String())
		}
	})
	return u
}

func (u *upProcess) hasExited() bool {
	select {
	case <-u.exited:
		return true
	default:
		return false
	}
}

// waitFor polls the output for text until timeout; it fails early when the
// process exits first.
func (u *upProcess) waitFor(text string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !strings.Contains(u.out.String(), text) {
		select {
		case <-u.exited:
			if strings.Contains(u.out.String(), text) {
				return nil
			}
			return fmt.Errorf("exited before printing %q: %v", text, u.waitErr)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %q within %s", text, timeout)
		}
	}
	return nil
}
