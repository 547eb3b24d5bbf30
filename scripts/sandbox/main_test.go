package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// The tests run the command itself: the test binary re-executes itself
// with DTR_SANDBOX_MAIN set, and then runs main with the arguments in it
// (a JSON array), so exit codes are the real ones.
const mainEnv = "DTR_SANDBOX_MAIN"

func TestMain(m *testing.M) {
	if args := os.Getenv(mainEnv); args != "" {
		var a []string
		if err := json.Unmarshal([]byte(args), &a); err != nil {
			panic(err)
		}
		os.Args = append([]string{"sandbox"}, a...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// run executes `sandbox args...` and returns its combined output and exit code.
func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	enc, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), mainEnv+"="+string(enc), "SANDBOX_DATA_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("sandbox %v: %v", args, err)
	return "", -1
}

// TestDemoExitsNonZeroWhenAStepFails: `sandbox demo` against services that
// answer /healthz but nothing else prints the failed step with its outcome
// and time, the skipped ones, RESULT: FAIL, and exits 1. (The passing run,
// exit 0, is scripts/e2e TestUpCommand.)
func TestDemoExitsNonZeroWhenAStepFails(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.Write([]byte(`{"status":"ok"}`))
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	out, code := run(t, "demo", "-tls=false", "-ehr", srv.URL, "-app", srv.URL, "-payer", srv.URL)
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	if strings.Contains(out, "starting a sandbox of its own") {
		t.Fatalf("the demo did not use the running services:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^FAIL  1\. EHR launch \(\d+ ms\) .*404`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^FAIL  2\. app authorization \(\d+ ms\) not run: needs 1\. EHR launch`).MatchString(out) ||
		!strings.Contains(out, "RESULT: FAIL") {
		t.Fatalf("output:\n%s", out)
	}
}

func TestUsageAndExitCodes(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage: sandbox"},
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{[]string{"help"}, 0, "commands:"},
		{[]string{"up", "-h"}, 0, "Ctrl-C"},
		{[]string{"up", "-ports", "ehr=notaport"}, 2, "not a port number"},
		{[]string{"up", "-ports", "ehr=9000,payer=9000"}, 2, "both on 9000"},
		{[]string{"up", "extra"}, 2, "unexpected arguments"},
		{[]string{"demo", "-runs", "0"}, 2, "-runs must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(append([]string{"sandbox"}, tt.args...), " "), func(t *testing.T) {
			out, code := run(t, tt.args...)
			if code != tt.code || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d (want %d), output lacks %q:\n%s", code, tt.code, tt.want, out)
			}
		})
	}
}
