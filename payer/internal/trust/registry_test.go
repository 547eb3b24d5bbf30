package trust

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dtrsandbox/shared/testutil/logbuf"
)

func TestParseRegistry(t *testing.T) {
	ok := `{"ehrs":[{"issuer":"https://ehr.example/fhir","mode":"jwks"},
	 {"issuer":"https://b.example/fhir","fhir_base":"https://b.example/r4","mode":"introspection","client_id":"payer","client_auth":"private_key_jwt","token_endpoint":"https://b.example/token"},
	 {"issuer":"http://localhost:8441/fhir","mode":"introspection","client_id":"payer","client_auth":"client_secret_basic","client_secret":"x","introspection_endpoint":"http://localhost:8441/oauth/introspect","jwks_uri":"http://localhost:8441/jwks"}]}`
	s, err := Parse([]byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	r := NewRegistry(s)
	if e, ok := r.Lookup("https://ehr.example/fhir"); !ok || e.FHIRBase != "https://ehr.example/fhir" {
		t.Fatalf("fhir_base default: %+v", e)
	}
	if base, _ := r.FHIRBase("https://b.example/fhir"); base != "https://b.example/r4" {
		t.Fatalf("fhir_base %s", base)
	}
	if r.Trusted("https://ehr.example/fhir/") || r.Trusted("https://EHR.example/fhir") {
		t.Fatal("issuers must match exactly")
	}
	if got := strings.Join(s.Issuers(), ","); got != "http://localhost:8441/fhir,https://b.example/fhir,https://ehr.example/fhir" {
		t.Fatalf("issuers %s", got)
	}
	if empty, err := Parse([]byte(`{"ehrs":[]}`)); err != nil || len(empty.Issuers()) != 0 {
		t.Fatalf("empty registry: %v", err)
	}

	bad := map[string]string{
		"not JSON":                   `{"ehrs":`,
		"no ehrs":                    `{}`,
		"ehrs null":                  `{"ehrs":null}`,
		"unknown member":             `{"ehrs":[{"issuer":"https://a.example","mode":"jwks","jwks_url":"https://a.example/k"}]}`,
		"unknown top-level member":   `{"ehrs":[],"extra":1}`,
		"duplicate member":           `{"ehrs":[{"issuer":"https://a.example","issuer":"https://b.example","mode":"jwks"}]}`,
		"case-variant member":        `{"ehrs":[{"issuer":"https://a.example","Issuer":"https://b.example","mode":"jwks"}]}`,
		"trailing data":              `{"ehrs":[]} {}`,
		"no issuer":                  `{"ehrs":[{"mode":"jwks"}]}`,
		"relative issuer":            `{"ehrs":[{"issuer":"/fhir","mode":"jwks"}]}`,
		"issuer with query":          `{"ehrs":[{"issuer":"https://a.example/fhir?x=1","mode":"jwks"}]}`,
		"issuer with fragment":       `{"ehrs":[{"issuer":"https://a.example/fhir#x","mode":"jwks"}]}`,
		"issuer with user info":      `{"ehrs":[{"issuer":"https://u@a.example/fhir","mode":"jwks"}]}`,
		"ftp jwks_uri":               `{"ehrs":[{"issuer":"https://a.example","mode":"jwks","jwks_uri":"ftp://a.example/k"}]}`,
		"no mode":                    `{"ehrs":[{"issuer":"https://a.example"}]}`,
		"unknown mode":               `{"ehrs":[{"issuer":"https://a.example","mode":"trust-me"}]}`,
		"introspection no client":    `{"ehrs":[{"issuer":"https://a.example","mode":"introspection","client_auth":"private_key_jwt"}]}`,
		"introspection no auth":      `{"ehrs":[{"issuer":"https://a.example","mode":"introspection","client_id":"p"}]}`,
		"basic without secret":       `{"ehrs":[{"issuer":"https://a.example","mode":"introspection","client_id":"p","client_auth":"client_secret_basic"}]}`,
		"private_key_jwt and secret": `{"ehrs":[{"issuer":"https://a.example","mode":"introspection","client_id":"p","client_auth":"private_key_jwt","client_secret":"x"}]}`,
		"unknown client_auth":        `{"ehrs":[{"issuer":"https://a.example","mode":"introspection","client_id":"p","client_auth":"none"}]}`,
		"issuer twice":               `{"ehrs":[{"issuer":"https://a.example","mode":"jwks"},{"issuer":"https://a.example","mode":"jwks"}]}`,
	}
	for name, data := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(data)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestDefaultRegistryFile(t *testing.T) {
	s, err := Load(filepath.Join("..", "..", "trusted-ehrs.json"))
	if err != nil {
		t.Fatal(err)
	}
	e, ok := NewRegistry(s).Lookup("https://localhost:8441/fhir")
	if !ok || e.Mode != ModeIntrospection || e.ClientID != "payer" || e.ClientAuth != AuthPrivateKeyJWT {
		t.Fatalf("the default registry does not list the sandbox EHR as expected: %+v", e)
	}
}

// TestWatcherReloads: a new file is seen without a restart, a bad file
// keeps the last good registry (and is logged once), a good file after it
// is taken again, and an issuer removed from the file loses its cached
// tokens at once.
func TestWatcherReloads(t *testing.T) {
	clk := newClock()
	one, two := newFakeEHR(t, clk), newFakeEHR(t, clk)
	dir := t.TempDir()
	path := writeRegistryFile(t, dir, one.entry(ModeJWKS))
	reg, w, logs := newLoggedWatcher(t, path)
	w.Interval = 10 * time.Millisecond
	ctx, cancel := contextWithCancel(t)
	defer cancel()
	go w.Run(ctx)
	v := newValidator(t, reg, clk)

	tokTwo := two.token(nil)
	if _, err := v.Validate(t.Context(), tokTwo); AsFailure(err) == nil || AsFailure(err).Reason != ReasonUntrusted {
		t.Fatalf("unlisted issuer: %v", err)
	}

	writeRegistry(t, path, one.entry(ModeJWKS), two.entry(ModeJWKS))
	waitFor(t, func() bool { return reg.Trusted(two.issuer) })
	if _, err := v.Validate(t.Context(), tokTwo); err != nil {
		t.Fatalf("newly listed EHR refused: %v", err)
	}

	// Written in one rename (half-done writes: TestWatcherWaitsOutHalfWrittenFile).
	writeFileAtomic(t, path, []byte(`{"ehrs":[{"issuer":"broken"}]}`))
	waitFor(t, func() bool { return strings.Contains(logs.String(), "keeping the last good one") })
	time.Sleep(50 * time.Millisecond) // several more polls of the same bad file
	if n := strings.Count(logs.String(), "keeping the last good one"); n != 1 {
		t.Fatalf("bad file logged %d times", n)
	}
	if !reg.Trusted(two.issuer) || !reg.Trusted(one.issuer) {
		t.Fatal("a bad file replaced the registry")
	}
	if _, err := v.Validate(t.Context(), two.token(nil)); err != nil {
		t.Fatalf("after a bad file: %v", err)
	}

	os.Remove(path)
	waitFor(t, func() bool { return strings.Contains(logs.String(), "no such file") }) // the watcher has seen it gone
	if !reg.Trusted(two.issuer) {
		t.Fatal("a missing file emptied the registry")
	}

	writeRegistry(t, path, one.entry(ModeJWKS))
	waitFor(t, func() bool { return !reg.Trusted(two.issuer) })
	if _, err := v.Validate(t.Context(), tokTwo); AsFailure(err) == nil || AsFailure(err).Reason != ReasonUntrusted {
		t.Fatalf("cached token of a removed EHR: %v", err)
	}
}

// TestWatcherSeesSameSizeRewrite: content hashing catches a rewrite that
// keeps size and modification time.
func TestWatcherSeesSameSizeRewrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.json")
	a := `{"ehrs":[{"issuer":"https://aaaa.example","mode":"jwks"}]}`
	b := `{"ehrs":[{"issuer":"https://bbbb.example","mode":"jwks"}]}`
	os.WriteFile(path, []byte(a), 0o600)
	fi, _ := os.Stat(path)
	snap, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry(snap)
	w := NewWatcher(path, reg, nil)
	if w.Check() {
		t.Fatal("reload without a change")
	}
	os.WriteFile(path, []byte(b), 0o600)
	os.Chtimes(path, fi.ModTime(), fi.ModTime())
	if !w.Check() || !reg.Trusted("https://bbbb.example") {
		t.Fatal("same-size, same-mtime rewrite not seen")
	}
}

// newLoggedWatcher loads the registry at path and watches it, logging to
// the returned buffer.
func newLoggedWatcher(t *testing.T, path string) (*Registry, *Watcher, *logbuf.Buffer) {
	t.Helper()
	snap, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry(snap)
	logs := &logbuf.Buffer{}
	return reg, NewWatcher(path, reg, slog.New(slog.NewJSONHandler(logs, nil))), logs
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // generous: a loaded CI machine, not a timing assertion
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWatcherWaitsOutHalfWrittenFile: an in-place write (truncate, then
// write) seen between its two halves is not reported; the finished bad file
// is reported once, after it stayed the same for one more poll, and a good
// file is taken at the first poll that sees it.
func TestWatcherWaitsOutHalfWrittenFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.json")
	good := `{"ehrs":[{"issuer":"https://aaaa.example","mode":"jwks"}]}`
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	reg, w, logs := newLoggedWatcher(t, path)
	reported := func() int { return strings.Count(logs.String(), "keeping the last good one") }

	steps := []struct {
		name    string
		content string // written in place before the poll; "" truncates
		write   bool
		reload  bool
		logged  int
	}{
		{"truncated, mid-write", "", true, false, 0},
		{"half the new file", `{"ehrs":[{"iss`, true, false, 0},
		{"finished but bad", `{"ehrs":[{"issuer":"broken"}]}`, true, false, 0},
		{"same bad file again", "", false, false, 1},
		{"and again", "", false, false, 1},
		{"good file", `{"ehrs":[{"issuer":"https://bbbb.example","mode":"jwks"}]}`, true, true, 1},
		{"rewritten in place: truncated", "", true, false, 1},
		{"rewritten in place: the same good file", `{"ehrs":[{"issuer":"https://bbbb.example","mode":"jwks"}]}`, true, false, 1},
		{"rewritten in place again: truncated", "", true, false, 1},
		{"and the same good file", `{"ehrs":[{"issuer":"https://bbbb.example","mode":"jwks"}]}`, true, false, 1},
		{"bad once more", `{"ehrs":[]`, true, false, 1},
		{"still bad", "", false, false, 2},
	}
	for _, s := range steps {
		if s.write {
			if err := os.WriteFile(path, []byte(s.content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if got := w.Check(); got != s.reload {
			t.Fatalf("%s: reload = %v, want %v", s.name, got, s.reload)
		}
		if n := reported(); n != s.logged {
			t.Fatalf("%s: reported %d times, want %d", s.name, n, s.logged)
		}
		if !reg.Trusted("https://aaaa.example") && !reg.Trusted("https://bbbb.example") {
			t.Fatalf("%s: registry emptied", s.name)
		}
	}
	if !reg.Trusted("https://bbbb.example") {
		t.Fatal("the good file was not kept")
	}
}
