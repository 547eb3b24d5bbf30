package integration

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"dtrsandbox/shared/database"
	"dtrsandbox/shared/testutil/pgtest"
)

// cast is who plays in a sandbox: alice, the honest DTR app (keys by
// jwks_uri), working for pat-1; mallory, a second app with valid keys, its
// own registrations and its own legitimate launch for pat-2 (keys inline),
// who tries to reach pat-1's documentation.
type cast struct {
	w              *world
	alice, mallory *app
	a, m           *seat // alice for pat-1, mallory for pat-2

	aliceDoc   string // pat-1's draft from the happy path
	aliceETag  string // its current ETag
	canary     string // a string only pat-1's draft contains
	malloryDoc string // pat-2's own draft
}

func newCast(t *testing.T, w *world) *cast {
	t.Helper()
	alice := newApp(t, w, "alice", true)
	mallory := newApp(t, w, "mallory", false)
	return &cast{w: w, alice: alice, mallory: mallory, a: alice.open(t, launchPat1), m: mallory.open(t, launchPat2)}
}

// TestSQLite runs every scenario against one sandbox on SQLite, in order:
// the happy path leaves pat-1's draft that the attacks go after, and the
// scenarios that switch the registry, stop the EHR or kill the payer come
// last. The EHR issues one-minute tokens (EHR_ACCESS_TOKEN_TTL=1m, its
// minimum) so that a real EHR token really expires during the run, and the
// payer reuses an introspection answer for at most a second.
func TestSQLite(t *testing.T) {
	t.Parallel()
	w := startWorld(t, worldOptions{
		ehrEnv:   []string{"EHR_ACCESS_TOKEN_TTL=1m"},
		payerEnv: []string{"PAYER_INTROSPECTION_CACHE_TTL=1s"},
	})
	c := newCast(t, w)
	// A token launched now expires while the scenarios run; the jwks-mode
	// scenario revokes it and then watches it expire.
	early := c.alice.launch(t, launchPat1)

	if !t.Run("happy path", func(t *testing.T) { happyPath(t, c) }) {
		t.Fatal("the other scenarios need the happy path's document")
	}
	t.Run("attacks", func(t *testing.T) { attackTable(t, c) })
	t.Run("revocation/introspection mode", func(t *testing.T) { revocationIntrospection(t, c) })
	t.Run("concurrent writers", func(t *testing.T) { concurrentWriters(t, c, 50) })
	t.Run("revocation/jwks mode until exp", func(t *testing.T) { revocationJWKS(t, c, early) })
	t.Run("EHR down fails closed", func(t *testing.T) { ehrDown(t, c) })
	t.Run("payer killed during writes", func(t *testing.T) { payerCrash(t, c) })
}

// TestPostgres runs the happy path and the attack table with both
// services on PostgreSQL (one throwaway server, a database each).
func TestPostgres(t *testing.T) {
	t.Parallel()
	admin := pgtest.Start(t)
	payerDB, ehrDB := createDatabase(t, admin, "payer_it"), createDatabase(t, admin, "ehr_it")
	w := startWorld(t, worldOptions{payerDB: payerDB, ehrDB: ehrDB})
	if got := w.readOnlyDB(t).Dialector.Name(); got != "postgres" {
		t.Fatalf("payer database is %s", got)
	}
	c := newCast(t, w)
	if !t.Run("happy path", func(t *testing.T) { happyPath(t, c) }) {
		t.Fatal("the attacks need the happy path's document")
	}
	t.Run("attacks", func(t *testing.T) { attackTable(t, c) })
}

// createDatabase makes a database on the server at adminURL and returns
// its URL.
func createDatabase(t *testing.T, adminURL, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := database.Open(ctx, database.Config{URL: adminURL})
	if err != nil {
		t.Fatal(err)
	}
	defer database.Close(db)
	if err := db.Exec("CREATE DATABASE " + name).Error; err != nil {
		t.Fatalf("CREATE DATABASE %s: %v", name, err)
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + strings.TrimPrefix(name, "/")
	return u.String()
}
