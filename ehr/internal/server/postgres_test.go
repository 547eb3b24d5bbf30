package server_test

import (
	"net/url"
	"testing"

	"dtrsandbox/shared/testutil/pgtest"
)

// TestPostgres runs an EHR launch, a code replay and a restart on
// PostgreSQL (EHR_DATABASE_URL).
func TestPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL skipped in -short mode")
	}
	e := startEHRWith(t, newPeers(t, t.TempDir(), pgtest.Start(t)))
	code, verifier := e.ehrLaunchCode(dtrScope)
	g, status, body := e.exchange(code, verifier)
	if g == nil || g.Patient != "pat-1" || len(g.FHIRContext) != 2 {
		t.Fatalf("exchange: %d %s", status, body)
	}
	if m := e.introspect(g.AccessToken); m["active"] != true {
		t.Fatalf("introspection %v", m)
	}
	if tr, _, body := e.exchange(code, verifier); tr != nil || oauthError(t, body) != "invalid_grant" {
		t.Fatalf("replayed code: %s", body)
	}
	e.assertInactive(g.AccessToken)

	code, verifier = e.ehrLaunchCode(dtrScope)
	g, status, body = e.exchange(code, verifier)
	if g == nil {
		t.Fatalf("exchange: %d %s", status, body)
	}
	// Concurrent copies of a code: PostgreSQL's row locks, not SQLite's
	// database lock, decide the race here.
	e.raceCodes(t, []int{2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 5, 10})

	e = e.restart()
	if m := e.introspect(g.AccessToken); m["active"] != true {
		t.Fatalf("after restart %v", m)
	}
	if tr, status, body := e.token(e.appTokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {g.RefreshToken}})); tr == nil {
		t.Fatalf("refresh after restart: %d %s", status, body)
	}
}
