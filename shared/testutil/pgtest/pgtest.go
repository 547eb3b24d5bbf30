// Package pgtest starts a throwaway PostgreSQL server for a test, from the
// Debian binaries at /usr/lib/postgresql/15/bin (PGTEST_BIN overrides),
// listening on loopback only, with its data in a temporary directory that is
// removed afterwards. As root (CI), the server runs as the postgres user,
// since PostgreSQL refuses to run as root.
package pgtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"dtrsandbox/shared/launcher"
)

// DefaultBin is where Debian installs PostgreSQL 15.
const DefaultBin = "/usr/lib/postgresql/15/bin"

// Start starts a server and returns a postgres:// URL to a fresh database.
// The server stops when the test ends.
func Start(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("PGTEST_BIN")
	if bin == "" {
		bin = DefaultBin
	}
	if _, err := os.Stat(filepath.Join(bin, "postgres")); err != nil {
		t.Fatalf("pgtest: PostgreSQL not found in %s (install postgresql-15; .ci/run does): %v", bin, err)
	}
	dir, err := os.MkdirTemp("", "pgtest-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cred, err := credential(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		if err := cmd.Run(); err != nil {
			t.Fatalf("pgtest: %s: %v\n%s", name, err, out.String())
		}
	}
	run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")

	port := freePort(t)
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-k", dir,
		"-c", "fsync=off", "-c", "max_connections=200")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	var logBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatalf("pgtest: start postgres: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT) // fast shutdown
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgtest: postgres did not start: %s", logBuf.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// "accepting connections" may lag the socket briefly; the caller's
	// driver retries through database.Open's ping.
	time.Sleep(200 * time.Millisecond)
	return fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", addr)
}

// credential: as root, hand dir to the postgres user and run as it.
func credential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root needs a postgres user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// freePort is a port outside the ephemeral range (see launcher.FreePorts),
// so no test's outgoing connection takes it before PostgreSQL binds it.
func freePort(t testing.TB) int {
	ports, err := launcher.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return ports[0]
}
