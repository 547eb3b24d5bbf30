package jwks

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"dtrsandbox/shared/testutil/testclock"
)

func newClock() *testclock.Clock { return testclock.New(time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)) }

// jwksServer serves a mutable key set and counts fetches.
type jwksServer struct {
	*httptest.Server
	fetches      atomic.Int32
	mu           sync.Mutex
	keys         Set
	cacheControl string
	status       int
	gate         chan struct{} // when set, each request waits for it to close
}

func newJWKSServer(t *testing.T, keys ...*SigningKey) *jwksServer {
	s := &jwksServer{keys: keys, cacheControl: "public, max-age=300", status: 200}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		keys, cc, status, gate := s.keys, s.cacheControl, s.status, s.gate
		s.mu.Unlock()
		if gate != nil {
			<-gate
		}
		if status != 200 {
			http.Error(w, "down", status)
			return
		}
		body, err := keys.MarshalPublic()
		if err != nil {
			t.Error(err)
		}
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(f func(s *jwksServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *jwksServer) uri() string { return s.URL + "/jwks.json" }

func TestRemoteCacheHit(t *testing.T) {
	k := mustGenerate(t, "ES256")
	srv := newJWKSServer(t, k)
	clk := newClock()
	r := NewRemote(srv.Client(), RemoteOptions{Now: clk.Now})
	ctx := context.Background()
	for range 5 {
		if _, err := r.Key(ctx, srv.uri(), k.KID, "ES256"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Set(ctx, srv.uri()); err != nil {
		t.Fatal(err)
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
}

func TestRemoteMaxAgeExpiry(t *testing.T) {
	tests := []struct {
		name         string
		cacheControl string
		fresh        time.Duration // still cached just before this
	}{
		{"max-age honoured", "public, max-age=120", 120 * time.Second},
		{"max-age bounded by MaxTTL", "max-age=86400", time.Hour},
		{"no-store floors at MinRefetch", "no-store", time.Minute},
		{"no-cache floors at MinRefetch", "no-cache", time.Minute},
		{"max-age=0 floors at MinRefetch", "max-age=0", time.Minute},
		{"no header gives DefaultTTL", "", 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := mustGenerate(t, "ES256")
			srv := newJWKSServer(t, k)
			srv.set(func(s *jwksServer) { s.cacheControl = tt.cacheControl })
			clk := newClock()
			r := NewRemote(srv.Client(), RemoteOptions{Now: clk.Now})
			ctx := context.Background()
			get := func() {
				t.Helper()
				if _, err := r.Key(ctx, srv.uri(), k.KID, "ES256"); err != nil {
					t.Fatal(err)
				}
			}
			get()
			clk.Advance(tt.fresh - time.Second)
			get()
			if n := srv.fetches.Load(); n != 1 {
				t.Fatalf("refetched before expiry: %d fetches", n)
			}
			clk.Advance(2 * time.Second)
			get()
			if n := srv.fetches.Load(); n != 2 {
				t.Fatalf("not refetched after expiry: %d fetches", n)
			}
		})
	}
}

func TestRemoteUnknownKidRefetchOncePerMinute(t *testing.T) {
	old, rotated := mustGenerate(t, "ES384"), mustGenerate(t, "ES384")
	srv := newJWKSServer(t, old)
	clk := newClock()
	r := NewRemote(srv.Client(), RemoteOptions{Now: clk.Now})
	ctx := context.Background()

	if _, err := r.Key(ctx, srv.uri(), old.KID, "ES384"); err != nil {
		t.Fatal(err)
	}
	// The client rotates; the cached set (max-age 300) does not have the new kid.
	srv.set(func(s *jwksServer) { s.keys = Set{rotated, old} })
	for range 10 {
		if _, err := r.Key(ctx, srv.uri(), "junk", "ES384"); !errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("junk kid: %v", err)
		}
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("unknown kid refetched within the first minute: %d fetches", n)
	}
	clk.Advance(61 * time.Second)
	if _, err := r.Key(ctx, srv.uri(), rotated.KID, "ES384"); err != nil {
		t.Fatalf("rotated key not found after refetch: %v", err)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	for range 10 {
		_, _ = r.Key(ctx, srv.uri(), "junk-2", "ES384")
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("unknown kids refetched again within a minute: %d fetches", n)
	}
	clk.Advance(61 * time.Second)
	_, _ = r.Key(ctx, srv.uri(), "junk-3", "ES384")
	if n := srv.fetches.Load(); n != 3 {
		t.Fatalf("%d fetches after another minute, want 3", n)
	}
	// A kid that exists but does not fit the alg is no reason to refetch.
	clk.Advance(61 * time.Second)
	if _, err := r.Key(ctx, srv.uri(), old.KID, "ES256"); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("mismatch: %v", err)
	}
	if n := srv.fetches.Load(); n != 3 {
		t.Fatalf("key mismatch triggered a refetch: %d fetches", n)
	}
}

func TestRemoteConcurrentCallersShareOneFetch(t *testing.T) {
	k := mustGenerate(t, "RS256")
	srv := newJWKSServer(t, k)
	gate := make(chan struct{})
	srv.set(func(s *jwksServer) { s.gate = gate })
	r := NewRemote(srv.Client(), RemoteOptions{})

	const callers = 20
	var started, done sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			started.Done()
			_, err := r.Key(context.Background(), srv.uri(), k.KID, "RS256")
			errs <- err
		}()
	}
	started.Wait()
	time.Sleep(50 * time.Millisecond) // let the callers reach the wait; not a timing assertion
	close(gate)
	done.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for %d concurrent callers, want 1", n, callers)
	}
}

func TestRemoteFetchErrorKeepsValidCache(t *testing.T) {
	k := mustGenerate(t, "ES256")
	srv := newJWKSServer(t, k)
	clk := newClock()
	r := NewRemote(srv.Client(), RemoteOptions{Now: clk.Now})
	ctx := context.Background()
	if _, err := r.Key(ctx, srv.uri(), k.KID, "ES256"); err != nil {
		t.Fatal(err)
	}
	srv.set(func(s *jwksServer) { s.status = 500 })
	clk.Advance(61 * time.Second)
	if _, err := r.Key(ctx, srv.uri(), "unknown", "ES256"); err == nil {
		t.Fatal("unknown kid found")
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2 (the refetch got 500)", n)
	}
	if _, err := r.Key(ctx, srv.uri(), k.KID, "ES256"); err != nil {
		t.Fatalf("500 spoiled the cached set: %v", err)
	}
	// Once the cached set is stale it is not used, and a down server is not
	// hammered: errors are remembered for ErrorBackoff.
	clk.Advance(5 * time.Minute)
	if _, err := r.Key(ctx, srv.uri(), k.KID, "ES256"); err == nil {
		t.Fatal("stale set used")
	}
	for range 5 {
		_, _ = r.Key(ctx, srv.uri(), k.KID, "ES256")
	}
	if n := srv.fetches.Load(); n != 3 {
		t.Fatalf("%d fetches, want 3", n)
	}
	srv.set(func(s *jwksServer) { s.status = 200 })
	clk.Advance(6 * time.Second)
	if _, err := r.Key(ctx, srv.uri(), k.KID, "ES256"); err != nil {
		t.Fatalf("did not recover: %v", err)
	}
}

func TestRemoteRefusals(t *testing.T) {
	k := mustGenerate(t, "ES256")
	srv := newJWKSServer(t, k)
	r := NewRemote(srv.Client(), RemoteOptions{})
	ctx := context.Background()
	for _, uri := range []string{
		"http://example.com/jwks.json",
		"ftp://127.0.0.1/jwks.json",
		"https://user:pw@example.com/jwks.json",
		"/relative/jwks.json",
		"https:///nohost",
	} {
		if _, err := r.Set(ctx, uri); err == nil {
			t.Errorf("%s accepted", uri)
		}
	}
	if n := srv.fetches.Load(); n != 0 {
		t.Fatalf("%d fetches", n)
	}

	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", 70<<10) + `"}`))
	}))
	defer big.Close()
	if _, err := r.Set(ctx, big.URL); err == nil {
		t.Error("oversize set accepted")
	}

	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://example.com/jwks.json", http.StatusFound)
	}))
	defer redirect.Close()
	if _, err := r.Set(ctx, redirect.URL); err == nil {
		t.Error("redirect to plain http off loopback followed")
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	srv.set(func(s *jwksServer) { s.gate = make(chan struct{}) })
	if _, err := r.Set(cctx, srv.uri()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	srv.set(func(s *jwksServer) { close(s.gate); s.gate = nil })
}
