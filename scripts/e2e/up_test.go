package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"dtrsandbox/shared/httpclient"
	"dtrsandbox/shared/launcher"
	"dtrsandbox/shared/localtls"
)

// TestUpCommand runs the built `sandbox up` with a temporary data directory
// and free ports, waits until all three services answer /healthz over TLS,
// sends SIGINT (Ctrl-C) and expects a clean stop with exit code 0 within a
// few seconds, the ports free again.
func TestUpCommand(t *testing.T) {
	root := repoRoot(t)
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "sandbox")
	build := exec.Command("go", "build", "-o", bin, "./scripts/sandbox")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./scripts/sandbox: %v\n%s", err, out)
	}
	ports, err := launcher.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(tmp, "data")
	portFlag := fmt.Sprintf("ehr=%d,smartapp=%d,payer=%d", ports[0], ports[1], ports[2])
	cmd := exec.Command(bin, "up", "-data", dataDir, "-ports", portFlag)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "SANDBOX_TLS=on")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// exited is closed when the process has exited, with its error in waitErr.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("--- sandbox up output ---\n%s", out.String())
		}
	})

	// Up: the banner appears once all three are healthy.
	deadline := time.Now().Add(4 * time.Minute)
	for !strings.Contains(out.String(), "DTR sandbox is up") {
		select {
		case <-exited:
			t.Fatalf("sandbox up exited before it was up: %v", waitErr)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("sandbox up did not print its banner within 4 minutes")
		}
	}
	banner := out.String()
	client, err := httpclient.New(httpclient.Config{CAFile: localtls.CAPath(dataDir), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{launcher.EHR, launcher.SmartApp, launcher.Payer} {
		u := fmt.Sprintf("https://localhost:%d", ports[i])
		resp, err := client.Get(u + "/healthz")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s /healthz: %d", name, resp.StatusCode)
		}
		if !strings.Contains(banner, u) {
			t.Errorf("the banner does not show %s's URL %s", name, u)
		}
	}
	for _, want := range []string{
		localtls.CAPath(dataDir), "curl --cacert", "update-ca-certificates", "security add-trusted-cert",
		filepath.Join(dataDir, "payer", "admin-token"), "Launch DTR", "healthy",
	} {
		if !strings.Contains(banner, want) {
			t.Errorf("the banner lacks %q", want)
		}
	}

	// Ctrl-C.
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("sandbox up after SIGINT: %v (want exit 0)", waitErr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("sandbox up did not exit within 30 s of SIGINT")
	}
	t.Logf("stopped %s after SIGINT", time.Since(sent).Round(time.Millisecond))
	if !strings.Contains(out.String(), "stopped cleanly") {
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

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
