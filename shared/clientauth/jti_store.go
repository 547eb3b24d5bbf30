package clientauth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"gorm.io/gorm"

	"dtrsandbox/shared/database"
)

// usedJTI is one row of used_jtis. The composite primary key (issuer, jti)
// makes a replay a unique-key violation, which the database detects
// atomically for every replica sharing it.
type usedJTI struct {
	Issuer    string    `gorm:"primaryKey;not null"`
	JTI       string    `gorm:"column:jti;primaryKey;not null"`
	ExpiresAt time.Time `gorm:"not null;index:idx_used_jtis_expires_at"`
}

func (usedJTI) TableName() string { return "used_jtis" }

// GormJTIStore is a JTIStore on SQLite or PostgreSQL through gorm.
type GormJTIStore struct {
	db *gorm.DB
}

// NewGormJTIStore migrates the used_jtis table. Open db with
// gorm.Config{TranslateError: true} so unique violations arrive as
// gorm.ErrDuplicatedKey (the raw SQLite and PostgreSQL errors are recognised
// too).
func NewGormJTIStore(db *gorm.DB) (*GormJTIStore, error) {
	if db == nil {
		return nil, errors.New("clientauth: nil database")
	}
	if err := db.AutoMigrate(&usedJTI{}); err != nil {
		return nil, fmt.Errorf("clientauth: migrate used_jtis: %w", err)
	}
	return &GormJTIStore{db: db}, nil
}

// Claim inserts (issuer, jti); a row already there means ErrReplay.
func (s *GormJTIStore) Claim(ctx context.Context, issuer, jti string, exp time.Time) error {
	err := s.db.WithContext(ctx).Create(&usedJTI{Issuer: issuer, JTI: jti, ExpiresAt: exp.UTC()}).Error
	switch {
	case err == nil:
		return nil
	case database.IsDuplicate(err):
		return fmt.Errorf("%w: %w", ErrReplay, err)
	default:
		return fmt.Errorf("clientauth: record jti: %w", err)
	}
}

// Purge deletes rows that expired before the given time: their assertions
// can no longer pass the exp check, so they cannot be replayed anyway.
func (s *GormJTIStore) Purge(ctx context.Context, before time.Time) error {
	if err := s.db.WithContext(ctx).Where("expires_at < ?", before.UTC()).Delete(&usedJTI{}).Error; err != nil {
		return fmt.Errorf("clientauth: purge used_jtis: %w", err)
	}
	return nil
}

// MemoryJTIStore is a JTIStore for one process (tests, single-instance
// tools). Expired entries are dropped as new ones arrive.
type MemoryJTIStore struct {
	mu    sync.Mutex
	used  map[[2]string]time.Time
	now   func() time.Time
	added int
}

// NewMemoryJTIStore makes an empty store; now is its clock (time.Now if nil).
func NewMemoryJTIStore(now func() time.Time) *MemoryJTIStore {
	if now == nil {
		now = time.Now
	}
	return &MemoryJTIStore{used: map[[2]string]time.Time{}, now: now}
}

// Claim records (issuer, jti) or returns ErrReplay.
func (m *MemoryJTIStore) Claim(_ context.Context, issuer, jti string, exp time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{issuer, jti}
	if _, ok := m.used[k]; ok {
		return ErrReplay
	}
	m.used[k] = exp
	if m.added++; m.added%1024 == 0 {
		now := m.now()
		for k, e := range m.used {
			if e.Before(now) {
				delete(m.used, k)
			}
		}
	}
	return nil
}

// Len is the number of jti values remembered.
func (m *MemoryJTIStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.used)
}
