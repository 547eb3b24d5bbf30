package database

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"dtrsandbox/shared/testutil/pgtest"
	"gorm.io/gorm"
)

type row struct {
	K string `gorm:"primaryKey"`
	V int
}

// Both drivers: open, migrate, unique violation detected, concurrent writers.
func TestDrivers(t *testing.T) {
	drivers := map[string]func(t *testing.T) Config{
		"sqlite":   func(t *testing.T) Config { return Config{SQLitePath: filepath.Join(t.TempDir(), "x", "t.db")} },
		"postgres": func(t *testing.T) Config { return Config{URL: pgtest.Start(t)} },
	}
	for name, cfg := range drivers {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db, err := Open(ctx, cfg(t))
			if err != nil {
				t.Fatal(err)
			}
			defer Close(db)
			if err := db.AutoMigrate(&row{}); err != nil {
				t.Fatal(err)
			}
			if err := db.Create(&row{K: "a", V: 1}).Error; err != nil {
				t.Fatal(err)
			}
			if err := db.Create(&row{K: "a", V: 2}).Error; !IsDuplicate(err) {
				t.Fatalf("want duplicate, got %v", err)
			}
			var wg sync.WaitGroup
			errs := make(chan error, 40)
			for i := 0; i < 40; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					errs <- db.Transaction(func(tx *gorm.DB) error {
						return tx.Create(&row{K: "k" + string(rune('A'+i)), V: i}).Error
					})
				}(i)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("concurrent write: %v", err)
				}
			}
			var n int64
			db.Model(&row{}).Count(&n)
			if n != 41 {
				t.Fatalf("rows %d, want 41", n)
			}
			if res, err := IntegrityCheck(ctx, db); err != nil || res != "ok" {
				t.Fatalf("integrity %q %v", res, err)
			}
		})
	}
}

func TestRejectsUnknownURL(t *testing.T) {
	if _, err := Open(context.Background(), Config{URL: "mysql://u:secret@h/db"}); err == nil {
		t.Fatal("want error")
	} else if strings.Contains(err.Error(), "secret") {
		t.Fatalf("password leaked: %v", err)
	}
}
