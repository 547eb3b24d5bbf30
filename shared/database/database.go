// Package database opens the gorm database of a service: an SQLite file on
// disk by default, PostgreSQL when a postgres:// URL is configured.
//
// SQLite is set up for durability under concurrent writers: WAL journal,
// synchronous=FULL (an acknowledged commit survives power loss),
// busy_timeout (writers wait instead of failing), and BEGIN IMMEDIATE for
// write transactions (no deadlock upgrading a read lock to a write lock).
package database

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Config chooses the database.
type Config struct {
	URL        string // postgres://... ; empty means SQLite at SQLitePath
	SQLitePath string
	Logger     *slog.Logger
}

// Open connects and checks the connection.
func Open(ctx context.Context, cfg Config) (*gorm.DB, error) {
	gcfg := &gorm.Config{
		TranslateError: true, // unique violations become gorm.ErrDuplicatedKey on both drivers
		Logger:         logger.Discard,
		NowFunc:        func() time.Time { return time.Now().UTC() },
	}
	var (
		db  *gorm.DB
		err error
	)
	switch {
	case strings.HasPrefix(cfg.URL, "postgres://"), strings.HasPrefix(cfg.URL, "postgresql://"):
		db, err = gorm.Open(postgres.Open(cfg.URL), gcfg)
	case cfg.URL != "":
		return nil, fmt.Errorf("database: unsupported URL scheme in %q (want postgres://)", redact(cfg.URL))
	default:
		if cfg.SQLitePath == "" {
			return nil, errors.New("database: no SQLite path")
		}
		if err := os.MkdirAll(filepath.Dir(cfg.SQLitePath), 0o700); err != nil {
			return nil, err
		}
		db, err = gorm.Open(sqlite.Open(SQLiteDSN(cfg.SQLitePath)), gcfg)
	}
	if err != nil {
		return nil, fmt.Errorf("database: open: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	if db.Dialector.Name() == "sqlite" {
		// One writer at a time is SQLite's model; a small pool keeps readers
		// concurrent under WAL while writers queue on busy_timeout.
		sqlDB.SetMaxOpenConns(8)
	} else {
		sqlDB.SetMaxOpenConns(32)
	}
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pctx); err != nil {
		return nil, fmt.Errorf("database: ping: %w", err)
	}
	if cfg.Logger != nil {
		cfg.Logger.Info("database open", "driver", db.Dialector.Name())
	}
	return db, nil
}

// SQLiteDSN is the mattn/go-sqlite3 DSN with the durability settings above.
func SQLiteDSN(path string) string {
	return "file:" + path + "?_journal_mode=WAL&_busy_timeout=10000&_synchronous=FULL&_txlock=immediate&_foreign_keys=on"
}

// IsDuplicate reports a unique-key violation on either driver.
func IsDuplicate(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "UNIQUE constraint failed") || // SQLite
		strings.Contains(s, "SQLSTATE 23505") || // PostgreSQL (pgx)
		strings.Contains(s, "duplicate key value violates unique constraint") // PostgreSQL, message only
}

// IntegrityCheck runs SQLite's PRAGMA integrity_check (a no-op "ok" on
// PostgreSQL, which has no equivalent single check).
func IntegrityCheck(ctx context.Context, db *gorm.DB) (string, error) {
	if db.Dialector.Name() != "sqlite" {
		return "ok", nil
	}
	var res string
	if err := db.WithContext(ctx).Raw("PRAGMA integrity_check").Scan(&res).Error; err != nil {
		return "", err
	}
	return res, nil
}

// Close closes the underlying pool.
func Close(db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

func redact(u string) string {
	if i := strings.Index(u, "@"); i > 0 {
		if j := strings.Index(u, "://"); j > 0 && j < i {
			return u[:j+3] + "***" + u[i:]
		}
	}
	return u
}
