package authz

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"dtrsandbox/shared/smart"
)

// consentRow records what a user approved for a client (one row per user
// and client), so the consent page is shown once unless more is asked.
type consentRow struct {
	Subject   string `gorm:"primaryKey;size:255"`
	ClientID  string `gorm:"primaryKey;size:255"`
	Scope     string `gorm:"type:text;not null"`
	UpdatedAt time.Time
}

func (consentRow) TableName() string { return "authz_consents" }

type consentStore struct{ db *gorm.DB }

func newConsentStore(db *gorm.DB) (*consentStore, error) {
	if err := db.AutoMigrate(&consentRow{}); err != nil {
		return nil, fmt.Errorf("authz: migrate consents: %w", err)
	}
	return &consentStore{db: db}, nil
}

// covers reports whether subject already approved every scope in scopes for
// clientID (SMART scope semantics: approving patient/*.rs covers
// patient/Observation.rs).
func (s *consentStore) covers(ctx context.Context, subject, clientID string, scopes []string) (bool, error) {
	var row consentRow
	err := s.db.WithContext(ctx).Where("subject = ? AND client_id = ?", subject, clientID).Take(&row).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("authz: read consent: %w", err)
	}
	approved := []string{row.Scope}
	for _, sc := range scopes {
		if !smart.ScopeStrategy(approved, sc) {
			return false, nil
		}
	}
	return true, nil
}

// record adds scopes to what subject approved for clientID.
func (s *consentStore) record(ctx context.Context, subject, clientID string, scopes []string) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var row consentRow
		err := tx.Where("subject = ? AND client_id = ?", subject, clientID).Take(&row).Error
		if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
			return fmt.Errorf("authz: read consent: %w", err)
		}
		merged := strings.Fields(row.Scope)
		for _, sc := range scopes {
			if !slices.Contains(merged, sc) {
				merged = append(merged, sc)
			}
		}
		row = consentRow{Subject: subject, ClientID: clientID, Scope: strings.Join(merged, " "), UpdatedAt: time.Now().UTC()}
		return tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "subject"}, {Name: "client_id"}},
			DoUpdates: clause.AssignmentColumns([]string{"scope", "updated_at"}),
		}).Create(&row).Error
	})
}
