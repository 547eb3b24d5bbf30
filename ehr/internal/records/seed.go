package records

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"dtrsandbox/ehr/internal/seed"
	"dtrsandbox/shared/database"
)

// Seed loads the fixed demo resources. It is idempotent: a resource that is
// missing is created at version 1; one whose stored content already equals
// the seed (ignoring the server-managed id and meta.versionId/lastUpdated)
// is left alone, version and lastUpdated unchanged; one whose content
// differs (the seed changed between releases) becomes a new version. Each
// resource is written in its own transaction, and an insert that loses a
// race with another replica is retried as a comparison, so concurrent
// starts converge.
func (s *Store) Seed(ctx context.Context, resources []seed.Resource) error {
	for _, r := range resources {
		err := s.seedOne(ctx, r)
		if database.IsDuplicate(err) || errors.Is(err, ErrVersionConflict) {
			// Another replica wrote it between our read and our write: read
			// it again and compare with it.
			err = s.seedOne(ctx, r)
		}
		if err != nil {
			return fmt.Errorf("records: seed %s/%s: %w", r.Type, r.ID, err)
		}
	}
	return nil
}

func (s *Store) seedOne(ctx context.Context, r seed.Resource) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var cur resourceRow
		err := tx.Where("resource_type = ? AND resource_id = ?", r.Type, r.ID).Take(&cur).Error
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound):
			row, params, err := s.prepare(r.Type, r.ID, r.JSON, 1)
			if err != nil {
				return err
			}
			if err := tx.Create(row).Error; err != nil {
				return err
			}
			return insertParams(tx, params)
		case err != nil:
			return err
		}
		same, err := stamp(r.JSON, r.Type, r.ID, cur.VersionID, cur.LastUpdated)
		if err != nil {
			return invalid(err)
		}
		if bytes.Equal(same, cur.Body) {
			return nil
		}
		row, params, err := s.prepare(r.Type, r.ID, r.JSON, cur.VersionID+1)
		if err != nil {
			return err
		}
		return replace(tx, row, cur.VersionID, params)
	})
}
