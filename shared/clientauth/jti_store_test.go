package clientauth

import (
	"context"
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"dtrsandbox/shared/oautherr"
	"dtrsandbox/shared/testutil/pgtest"
)

func openSQLite(t testing.TB, translate bool) *gorm.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jti.db")
	dsn := "file:" + path + "?_journal_mode=WAL&_busy_timeout=10000&_txlock=immediate"
	db, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{TranslateError: translate, Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	return db
}

func TestGormJTIStore(t *testing.T) {
	for _, translate := range []bool{true, false} {
		name := "TranslateError"
		if !translate {
			name = "raw driver errors"
		}
		t.Run(name, func(t *testing.T) {
			store, err := NewGormJTIStore(openSQLite(t, translate))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			exp := testNow.Add(time.Minute)
			if err := store.Claim(ctx, "app", "j1", exp); err != nil {
				t.Fatal(err)
			}
			if err := store.Claim(ctx, "app", "j1", exp); !errors.Is(err, ErrReplay) {
				t.Fatalf("second claim: %v", err)
			}
			if err := store.Claim(ctx, "other-app", "j1", exp); err != nil {
				t.Fatalf("same jti from another issuer: %v", err)
			}
			if err := store.Claim(ctx, "app", "J1", exp); err != nil {
				t.Fatalf("jti compared case-insensitively: %v", err)
			}
			// Purge drops only what expired before the cut-off.
			if err := store.Claim(ctx, "app", "old", testNow.Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}
			if err := store.Purge(ctx, testNow); err != nil {
				t.Fatal(err)
			}
			if err := store.Claim(ctx, "app", "old", testNow.Add(time.Minute)); err != nil {
				t.Fatalf("purged jti still blocked: %v", err)
			}
			if err := store.Claim(ctx, "app", "j1", exp); !errors.Is(err, ErrReplay) {
				t.Fatalf("unexpired jti purged: %v", err)
			}
		})
	}
}

func TestGormJTIStoreSchema(t *testing.T) {
	db := openSQLite(t, true)
	if _, err := NewGormJTIStore(db); err != nil {
		t.Fatal(err)
	}
	if _, err := NewGormJTIStore(db); err != nil { // migrating twice is harmless
		t.Fatal(err)
	}
	m := db.Migrator()
	if !m.HasTable("used_jtis") || !m.HasIndex(&usedJTI{}, "idx_used_jtis_expires_at") {
		t.Fatal("table or expires_at index missing")
	}
	var sql string
	if err := db.Raw(`SELECT sql FROM sqlite_master WHERE name = 'used_jtis'`).Scan(&sql).Error; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.ReplaceAll(sql, "`", ""), "PRIMARY KEY (issuer,jti)") {
		t.Fatalf("no composite primary key: %s", sql)
	}
}

// Twenty replicas of a request carrying the same valid assertion: exactly one
// wins, the others see a replay, whatever the interleaving.
func TestVerifyConcurrentReplaySQLite(t *testing.T) {
	f := newFixture(t)
	store, err := NewGormJTIStore(openSQLite(t, true))
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(Config{TokenURL: tokenURL, Clients: f.clients, JTIs: store, Now: func() time.Time { return testNow }})
	raw := f.validSpec("app").sign(t)

	errs := verifyAtOnce(raw, 20, v)
	ok := 0
	for i, err := range errs {
		if err == nil {
			ok++
			continue
		}
		oe := oautherr.As(err)
		if oe.Code != oautherr.CodeInvalidClient || !strings.Contains(oe.Description, "replay") {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d callers accepted, want exactly 1", ok)
	}
}

// verifyAtOnce has n callers present the assertion raw at the same moment,
// caller i to verifiers[i%len(verifiers)], and returns what each was told.
func verifyAtOnce(raw string, n int, verifiers ...*Verifier) []error {
	var start, done sync.WaitGroup
	start.Add(1)
	errs := make([]error, n)
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			_, errs[i] = verifiers[i%len(verifiers)].Verify(context.Background(), url.Values{ParamAssertionType: {AssertionType}, ParamAssertion: {raw}})
		}()
	}
	start.Done()
	done.Wait()
	return errs
}

// Two replicas, each with its own connection pool, sharing one PostgreSQL:
// the composite primary key lets exactly one of them accept an assertion.
func TestVerifyConcurrentReplayPostgresReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	dsn := pgtest.Start(t)
	f := newFixture(t)
	var verifiers []*Verifier
	for i, translate := range []bool{true, false} { // replica 2 sees raw SQLSTATE 23505 errors
		db, err := gorm.Open(postgres.Open(dsn), &gorm.Config{TranslateError: translate, Logger: logger.Discard})
		if err != nil {
			t.Fatal(err)
		}
		sqlDB, err := db.DB()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sqlDB.Close() })
		for try := 0; ; try++ { // the server may still be finishing its start-up
			if err = sqlDB.Ping(); err == nil || try == 50 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		store, err := NewGormJTIStore(db)
		if err != nil {
			t.Fatal(err)
		}
		verifiers = append(verifiers, NewVerifier(Config{TokenURL: tokenURL, Clients: f.clients, JTIs: store, Now: func() time.Time { return testNow }}))
	}

	for round := range 3 {
		raw := f.validSpec("app").sign(t)
		errs := verifyAtOnce(raw, 20, verifiers...)
		ok := 0
		for i, err := range errs {
			if err == nil {
				ok++
				continue
			}
			if oe := oautherr.As(err); oe.Code != oautherr.CodeInvalidClient || !strings.Contains(oe.Description, "replay") {
				t.Errorf("round %d caller %d: %v", round, i, err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d callers accepted, want exactly 1", round, ok)
		}
	}
}
