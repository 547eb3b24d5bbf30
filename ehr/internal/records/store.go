// Package records is the EHR's clinical record store: FHIR R4 resources kept
// as their JSON bodies, verbatim except for the server-managed id and
// meta.versionId/meta.lastUpdated (R4 resource.html#Meta), in one gorm table
// that works on SQLite and PostgreSQL, beside a small search index filled
// when a resource is written (identifier, status, subject/beneficiary,
// encounter, questionnaire) and the patient compartment each resource
// belongs to.
//
// The store knows nothing of tokens or scopes: the FHIR API
// (ehr/internal/fhirapi) decides what a caller may see and passes the
// confinement down (Query.Patient, the Update check).
package records

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// resourceRow is one stored resource (table fhir_resources).
type resourceRow struct {
	ResourceType string    `gorm:"primaryKey;size:64"`
	ResourceID   string    `gorm:"primaryKey;size:64"`
	PatientID    string    `gorm:"size:64;not null;default:'';index:idx_fhir_resources_patient"`
	VersionID    int       `gorm:"not null"`
	LastUpdated  time.Time `gorm:"not null;index:idx_fhir_resources_updated"`
	Body         []byte    `gorm:"not null"`
}

func (resourceRow) TableName() string { return "fhir_resources" }

// paramRow is one search-index entry of a resource (table
// fhir_search_params), replaced whenever the resource is written.
type paramRow struct {
	RowID        uint64 `gorm:"primaryKey;autoIncrement"`
	ResourceType string `gorm:"size:64;not null;index:idx_fhir_params_owner,priority:1;index:idx_fhir_params_lookup,priority:1"`
	ResourceID   string `gorm:"size:64;not null;index:idx_fhir_params_owner,priority:2"`
	Name         string `gorm:"size:64;not null;index:idx_fhir_params_lookup,priority:2"`
	System       string `gorm:"size:1024;not null;default:''"`
	Value        string `gorm:"size:1024;not null;index:idx_fhir_params_lookup,priority:3"`
}

func (paramRow) TableName() string { return "fhir_search_params" }

// Record is one stored resource as the API serves it.
type Record struct {
	Type        string
	ID          string
	PatientID   string // patient compartment, "" when the resource is in none
	VersionID   int
	LastUpdated time.Time
	Body        []byte // FHIR JSON, with id, meta.versionId and meta.lastUpdated set
}

// ETag is the weak entity tag of the record's version (R4 http.html#versioning).
func (r *Record) ETag() string { return `W/"` + strconv.Itoa(r.VersionID) + `"` }

// Errors of the store. ErrNotFound and ErrVersionConflict are matched with
// errors.Is; invalid bodies are *InvalidError.
var (
	ErrNotFound        = errors.New("records: resource not found")
	ErrVersionConflict = errors.New("records: the resource changed during the update")
)

// InvalidError reports a body the store cannot keep (not a JSON object of
// the right resourceType, duplicate keys, an element of the wrong JSON
// type). Hint is safe to show the caller.
type InvalidError struct {
	Hint  string
	Cause error
}

func (e *InvalidError) Error() string { return "records: invalid resource: " + e.Hint }
func (e *InvalidError) Unwrap() error { return e.Cause }

func invalid(cause error) *InvalidError { return &InvalidError{Hint: cause.Error(), Cause: cause} }

// Store is the gorm-backed record store.
type Store struct {
	db  *gorm.DB
	now func() time.Time
}

// Open migrates the tables (gorm AutoMigrate) and returns the store.
func Open(db *gorm.DB) (*Store, error) {
	if err := db.AutoMigrate(&resourceRow{}, &paramRow{}); err != nil {
		return nil, fmt.Errorf("records: migrate: %w", err)
	}
	return &Store{db: db, now: time.Now}, nil
}

// timestamp is the store's clock in UTC, at the millisecond precision that
// meta.lastUpdated carries, so the stored time and the body agree.
func (s *Store) timestamp() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

func (row *resourceRow) record() *Record {
	return &Record{
		Type: row.ResourceType, ID: row.ResourceID, PatientID: row.PatientID,
		VersionID: row.VersionID, LastUpdated: row.LastUpdated.UTC(), Body: row.Body,
	}
}

// Read returns the current version of typ/id, or ErrNotFound.
func (s *Store) Read(ctx context.Context, typ, id string) (*Record, error) {
	var row resourceRow
	err := s.db.WithContext(ctx).
		Where("resource_type = ? AND resource_id = ?", typ, id).
		Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("records: read %s/%s: %w", typ, id, err)
	}
	return row.record(), nil
}

// Exists reports whether typ/id is stored.
func (s *Store) Exists(ctx context.Context, typ, id string) (bool, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&resourceRow{}).
		Where("resource_type = ? AND resource_id = ?", typ, id).
		Count(&n).Error
	if err != nil {
		return false, fmt.Errorf("records: exists %s/%s: %w", typ, id, err)
	}
	return n > 0, nil
}

// List returns every stored resource of typ, ordered by id.
func (s *Store) List(ctx context.Context, typ string) ([]Record, error) {
	var rows []resourceRow
	err := s.db.WithContext(ctx).
		Where("resource_type = ?", typ).
		Order("resource_id").
		Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("records: list %s: %w", typ, err)
	}
	out := make([]Record, len(rows))
	for i := range rows {
		out[i] = *rows[i].record()
	}
	return out, nil
}

// newID returns a server-assigned logical id: 26 random base32 characters
// (130 bits), lower-cased, a valid FHIR id.
func newID() string { return strings.ToLower(rand.Text()) }

// Create stores body as a new resource of type typ with a server-assigned
// id and version 1 (R4 http.html#create: an id in the body is replaced).
func (s *Store) Create(ctx context.Context, typ string, body []byte) (*Record, error) {
	id := newID()
	row, params, err := s.prepare(typ, id, body, 1)
	if err != nil {
		return nil, err
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(row).Error; err != nil {
			return err
		}
		return insertParams(tx, params)
	})
	if err != nil {
		return nil, fmt.Errorf("records: create %s: %w", typ, err)
	}
	return row.record(), nil
}

// Update replaces typ/id with body as its next version. check sees the
// current record inside the transaction, before anything is written; an
// error from it aborts the update and is returned as is (the FHIR API uses
// it for If-Match and for patient confinement). A missing resource is
// ErrNotFound; a concurrent update that won the race is ErrVersionConflict.
func (s *Store) Update(ctx context.Context, typ, id string, body []byte, check func(current *Record) error) (*Record, error) {
	var updated *Record
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var cur resourceRow
		err := tx.Where("resource_type = ? AND resource_id = ?", typ, id).Take(&cur).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(cur.record()); err != nil {
				return err
			}
		}
		row, params, err := s.prepare(typ, id, body, cur.VersionID+1)
		if err != nil {
			return err
		}
		if err := replace(tx, row, cur.VersionID, params); err != nil {
			return err
		}
		updated = row.record()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return updated, nil
}

// prepare stamps body with id and version and computes its index.
func (s *Store) prepare(typ, id string, body []byte, version int) (*resourceRow, []paramRow, error) {
	now := s.timestamp()
	stamped, err := stamp(body, typ, id, version, now)
	if err != nil {
		return nil, nil, invalid(err)
	}
	idx, err := derive(typ, id, stamped)
	if err != nil {
		return nil, nil, invalid(err)
	}
	row := &resourceRow{
		ResourceType: typ, ResourceID: id, PatientID: idx.patientID,
		VersionID: version, LastUpdated: now, Body: stamped,
	}
	return row, idx.rows, nil
}

// replace writes row over the version fromVersion (optimistic: if another
// transaction moved the version on, nothing is written) and replaces the
// resource's index rows.
func replace(tx *gorm.DB, row *resourceRow, fromVersion int, params []paramRow) error {
	res := tx.Model(&resourceRow{}).
		Where("resource_type = ? AND resource_id = ? AND version_id = ?", row.ResourceType, row.ResourceID, fromVersion).
		Updates(map[string]any{
			"patient_id":   row.PatientID,
			"version_id":   row.VersionID,
			"last_updated": row.LastUpdated,
			"body":         row.Body,
		})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected != 1 {
		return ErrVersionConflict
	}
	if err := tx.Where("resource_type = ? AND resource_id = ?", row.ResourceType, row.ResourceID).
		Delete(&paramRow{}).Error; err != nil {
		return err
	}
	return insertParams(tx, params)
}

func insertParams(tx *gorm.DB, params []paramRow) error {
	if len(params) == 0 {
		return nil
	}
	return tx.CreateInBatches(&params, 100).Error
}
