// Package standin holds minimal stand-ins for the EHR and the payer, as
// httptest servers, for the app's unit tests: each implements only what
// the app calls (discovery, authorize, token, JWKS, a few FHIR
// interactions), checks what the real service would check about the app's
// requests (client assertions with the app's published key, PKCE, If-Match,
// both tokens), records the requests, and can be told to fail.
package standin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"dtrsandbox/shared/fhir"
	"dtrsandbox/shared/jwks"
)

// repoFile is a path relative to the repository root.
func repoFile(t testing.TB, rel string) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("standin: cannot locate the source tree")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..", filepath.FromSlash(rel))
}

// SeedResource reads a seeded EHR resource, e.g. "Patient-pat-1".
func SeedResource(t testing.TB, name string) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(repoFile(t, "ehr/internal/seed/data/"+name+".json"))
	if err != nil {
		t.Fatalf("standin: %v", err)
	}
	return b
}

// SeedQuestionnaire reads a seeded payer questionnaire, e.g. "home-oxygen".
func SeedQuestionnaire(t testing.TB, id string) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(repoFile(t, "payer/internal/questionnaires/data/Questionnaire-"+id+".json"))
	if err != nil {
		t.Fatalf("standin: %v", err)
	}
	return b
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeOAuth(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func bearer(r *http.Request, header string) string {
	v := r.Header.Get(header)
	if len(v) > 7 && strings.EqualFold(v[:7], "Bearer ") {
		return v[7:]
	}
	return ""
}

func outcome(w http.ResponseWriter, status int, code, diag string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="fhir"`)
	}
	fhir.WriteOutcome(w, status, code, diag)
}

// ServeJWKS publishes the public half of key at {url}/.well-known/jwks.json,
// as the app does, for stand-ins to check the app's client assertions.
func ServeJWKS(t testing.TB, key *jwks.SigningKey) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/.well-known/jwks.json", jwks.Handler(jwks.Set{key}))
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// Clock is a settable clock for tests.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts at the real time.
func NewClock() *Clock { return &Clock{t: time.Now()} }

// Now is the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Advance moves the clock.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
