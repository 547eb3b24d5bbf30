// Package dbtest gives the payer's store tests both databases: a fresh
// SQLite file and a fresh PostgreSQL database per test, the PostgreSQL
// databases on one throwaway server per test binary (pgtest.Start costs
// seconds of initdb; CREATE DATABASE costs milliseconds).
//
// A test package using it calls dbtest.Main from TestMain so the server
// stops when the tests end.
package dbtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"dtrsandbox/shared/database"
	"dtrsandbox/shared/testutil/pgtest"

	"gorm.io/gorm"
)

// Drivers are the database drivers every store test runs on.
var Drivers = []string{"sqlite", "postgres"}

// mainTB lets pgtest.Start run outside any one test: failures panic (the
// test binary fails) and cleanups run in Main.
type mainTB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
}

func (m *mainTB) Helper()                   {}
func (m *mainTB) Fatal(args ...any)         { panic("dbtest: " + fmt.Sprint(args...)) }
func (m *mainTB) Fatalf(f string, a ...any) { panic("dbtest: " + fmt.Sprintf(f, a...)) }
func (m *mainTB) Logf(f string, a ...any)   { fmt.Fprintf(os.Stderr, f+"\n", a...) }
func (m *mainTB) Cleanup(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cleanups = append(m.cleanups, f)
}

var (
	pgOnce   sync.Once
	pgServer string
	pgMain   = &mainTB{}
	pgSeq    atomic.Int64
)

// Main runs the tests, then stops the shared PostgreSQL server if one was
// started, and exits.
func Main(m *testing.M) {
	code := m.Run()
	pgMain.mu.Lock()
	cleanups := pgMain.cleanups
	pgMain.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	os.Exit(code)
}

// postgresURL returns a URL to a new, empty database on the shared server.
func postgresURL(tb testing.TB) string {
	tb.Helper()
	pgOnce.Do(func() { pgServer = pgtest.Start(pgMain) })
	name := fmt.Sprintf("t%d", pgSeq.Add(1))
	admin, err := database.Open(context.Background(), database.Config{URL: pgServer})
	if err != nil {
		tb.Fatal(err)
	}
	defer database.Close(admin)
	if err := admin.Exec("CREATE DATABASE " + name).Error; err != nil {
		tb.Fatal(err)
	}
	return strings.Replace(pgServer, "/postgres?", "/"+name+"?", 1)
}

// URL returns the URL of a new, empty PostgreSQL database on the shared
// server, for code that opens its own database (a service Config).
func URL(tb testing.TB) string {
	tb.Helper()
	return postgresURL(tb)
}

// Open returns a fresh database of driver ("sqlite" or "postgres"),
// closed when tb ends.
func Open(tb testing.TB, driver string) *gorm.DB {
	tb.Helper()
	cfg := database.Config{SQLitePath: filepath.Join(tb.TempDir(), "payer.db")}
	if driver == "postgres" {
		cfg = database.Config{URL: postgresURL(tb)}
	}
	db, err := database.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { database.Close(db) })
	return db
}

// ForEachDB runs fn as a subtest on a fresh SQLite file and on a fresh
// PostgreSQL database.
func ForEachDB(t *testing.T, fn func(t *testing.T, db *gorm.DB)) {
	for _, driver := range Drivers {
		t.Run(driver, func(t *testing.T) { fn(t, Open(t, driver)) })
	}
}
