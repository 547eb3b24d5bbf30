package documents

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"dtrsandbox/shared/database"

	"gorm.io/gorm"
)

// docRow is the current version of one stored document: the JSON exactly as
// served (the client's JSON with the server-owned elements set), the
// columns search filters on, and who created it with which scopes.
type docRow struct {
	ResourceType string `gorm:"column:resource_type;primaryKey;size:32;index:idx_documents_patient,priority:1"`
	ID           string `gorm:"column:id;primaryKey;size:64"`
	VersionID    int64  `gorm:"column:version_id;not null"`
	// LastUpdatedUS is meta.lastUpdated in Unix microseconds.
	LastUpdatedUS int64  `gorm:"column:last_updated_us;not null;index:idx_documents_patient,priority:3"`
	Patient       string `gorm:"column:patient;size:512;not null;index:idx_documents_patient,priority:2"`
	Status        string `gorm:"column:status;size:32;not null"`
	Title         string `gorm:"column:title;size:256"`
	// DateLo and DateHi are the date (DocumentReference.date) or authored
	// (QuestionnaireResponse.authored) range, NULL when absent.
	DateLo *int64 `gorm:"column:date_lo"`
	DateHi *int64 `gorm:"column:date_hi"`
	// The creator: the payer client, the EHR user, and the scopes of both
	// tokens (space-delimited), with a digest of the pair for filtering.
	CreatorClientID    string `gorm:"column:creator_client_id;size:256;not null"`
	CreatorFHIRUser    string `gorm:"column:creator_fhir_user;size:512"`
	CreatorEHRIssuer   string `gorm:"column:creator_ehr_issuer;size:512"`
	CreatorPayerScopes string `gorm:"column:creator_payer_scopes;type:text;not null"`
	CreatorEHRScopes   string `gorm:"column:creator_ehr_scopes;type:text;not null"`
	ScopeKey           string `gorm:"column:scope_key;size:64;not null;index:idx_documents_scope_key"`
	Body               string `gorm:"column:body;type:text;not null"`
}

func (docRow) TableName() string { return "documents" }

// paramRow is one indexed search value of a document's current version.
type paramRow struct {
	ResourceType string `gorm:"column:resource_type;primaryKey;size:32"`
	ResourceID   string `gorm:"column:resource_id;primaryKey;size:64"`
	Name         string `gorm:"column:name;primaryKey;size:32;index:idx_document_params_lookup,priority:1"`
	System       string `gorm:"column:system;primaryKey;size:1024"`
	Value        string `gorm:"column:value;primaryKey;size:1024;index:idx_document_params_lookup,priority:2"`
}

func (paramRow) TableName() string { return "document_params" }

// historyRow is a version replaced by an update, kept for audit (there is
// no _history endpoint).
type historyRow struct {
	ResourceType  string `gorm:"column:resource_type;primaryKey;size:32"`
	ID            string `gorm:"column:id;primaryKey;size:64"`
	VersionID     int64  `gorm:"column:version_id;primaryKey"`
	LastUpdatedUS int64  `gorm:"column:last_updated_us;not null"`
	Patient       string `gorm:"column:patient;size:512;not null"`
	Body          string `gorm:"column:body;type:text;not null"`
	// ReplacedUS and ReplacedBy say when and by which client the version
	// was superseded.
	ReplacedUS int64  `gorm:"column:replaced_us;not null"`
	ReplacedBy string `gorm:"column:replaced_by;size:256;not null"`
}

func (historyRow) TableName() string { return "document_history" }

// Errors of the store.
var (
	// ErrNotFound: no document with that type and id for that patient.
	ErrNotFound = errors.New("documents: not found")
	// ErrVersionConflict: the document changed since the version given.
	ErrVersionConflict = errors.New("documents: version conflict")
)

// Creator is who stored a document, with the scopes of both tokens.
type Creator struct {
	ClientID    string
	FHIRUser    string
	EHRIssuer   string
	PayerScopes string
	EHRScopes   string
}

// Document is one stored version.
type Document struct {
	ResourceType string
	ID           string
	VersionID    int64
	LastUpdated  time.Time
	Patient      string
	Status       string
	Title        string
	Creator      Creator
	Body         []byte
}

// Store keeps DocumentReference and QuestionnaireResponse resources.
// Every read path takes the patient: the store has no unconfined read
// except AdminList (console) and Locate (audit reasons).
type Store struct {
	db *gorm.DB
}

// NewStore migrates the document tables and returns the store.
func NewStore(db *gorm.DB) (*Store, error) {
	if db == nil {
		return nil, errors.New("documents: nil database")
	}
	if err := db.AutoMigrate(&docRow{}, &paramRow{}, &historyRow{}); err != nil {
		return nil, fmt.Errorf("documents: migrate: %w", err)
	}
	return &Store{db: db}, nil
}

// DB returns the database, for transactions that span the store and the
// audit trail.
func (s *Store) DB() *gorm.DB { return s.db }

// Transaction runs fn in one database transaction (BEGIN IMMEDIATE on
// SQLite): everything fn writes through tx commits together or not at all.
func (s *Store) Transaction(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return s.db.WithContext(ctx).Transaction(fn)
}

// scopeKey digests a creator's scope pair, so search can filter on the
// pairs the caller covers.
func scopeKey(payer, ehr string) string {
	sum := sha256.Sum256([]byte(payer + "\n" + ehr))
	return hex.EncodeToString(sum[:])
}

func newRow(d *Document, ix Index) docRow {
	row := docRow{
		ResourceType: d.ResourceType, ID: d.ID, VersionID: d.VersionID,
		LastUpdatedUS: d.LastUpdated.UnixMicro(), Patient: d.Patient, Status: ix.Status,
		Title:           clipTitle(ix.Title),
		CreatorClientID: d.Creator.ClientID, CreatorFHIRUser: d.Creator.FHIRUser, CreatorEHRIssuer: d.Creator.EHRIssuer,
		CreatorPayerScopes: d.Creator.PayerScopes, CreatorEHRScopes: d.Creator.EHRScopes,
		ScopeKey: scopeKey(d.Creator.PayerScopes, d.Creator.EHRScopes),
		Body:     string(d.Body),
	}
	if ix.Date != nil {
		lo, hi := ix.Date.Lo, ix.Date.Hi
		row.DateLo, row.DateHi = &lo, &hi
	}
	return row
}

// clipTitle keeps the console's title column short and storable: at most
// 256 bytes of valid UTF-8 without NUL (it is display text, derived from
// the body, which is stored verbatim).
func clipTitle(s string) string {
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if len(s) <= 256 {
		return s
	}
	s = s[:253]
	return strings.ToValidUTF8(s, "") + "..."
}

func paramRows(resourceType, id string, ix Index) []paramRow {
	rows := make([]paramRow, 0, len(ix.Params))
	for _, p := range ix.Params {
		rows = append(rows, paramRow{ResourceType: resourceType, ResourceID: id, Name: p.Name, System: p.System, Value: p.Value})
	}
	return rows
}

// Insert stores a new document (version 1) and its index in tx.
func (s *Store) Insert(ctx context.Context, tx *gorm.DB, d *Document, ix Index) error {
	if d.Patient == "" {
		return errors.New("documents: insert without patient")
	}
	row := newRow(d, ix)
	if err := tx.WithContext(ctx).Create(&row).Error; err != nil {
		return fmt.Errorf("documents: insert: %w", err)
	}
	if params := paramRows(d.ResourceType, d.ID, ix); len(params) > 0 {
		if err := tx.WithContext(ctx).Create(&params).Error; err != nil {
			return fmt.Errorf("documents: insert index: %w", err)
		}
	}
	return nil
}

// Replace makes next the current version of a document in tx, provided the
// stored one is still prev (same patient, same version): the previous
// version goes to the history table, the index is rebuilt. It returns
// ErrVersionConflict when another update got there first.
func (s *Store) Replace(ctx context.Context, tx *gorm.DB, prev, next *Document, ix Index, by string) error {
	if next.Patient == "" || next.Patient != prev.Patient {
		return errors.New("documents: replace must keep the patient")
	}
	row := newRow(next, ix)
	res := tx.WithContext(ctx).Model(&docRow{}).
		Where("resource_type = ? AND id = ? AND patient = ? AND version_id = ?", prev.ResourceType, prev.ID, prev.Patient, prev.VersionID).
		Updates(map[string]any{
			"version_id": row.VersionID, "last_updated_us": row.LastUpdatedUS, "status": row.Status,
			"title": row.Title, "date_lo": row.DateLo, "date_hi": row.DateHi, "body": row.Body,
		})
	if res.Error != nil {
		return fmt.Errorf("documents: update: %w", res.Error)
	}
	if res.RowsAffected != 1 {
		return ErrVersionConflict
	}
	hist := historyRow{
		ResourceType: prev.ResourceType, ID: prev.ID, VersionID: prev.VersionID,
		LastUpdatedUS: prev.LastUpdated.UnixMicro(), Patient: prev.Patient, Body: string(prev.Body),
		ReplacedUS: next.LastUpdated.UnixMicro(), ReplacedBy: by,
	}
	if err := tx.WithContext(ctx).Create(&hist).Error; err != nil {
		if database.IsDuplicate(err) {
			return ErrVersionConflict
		}
		return fmt.Errorf("documents: history: %w", err)
	}
	if err := tx.WithContext(ctx).Where("resource_type = ? AND resource_id = ?", prev.ResourceType, prev.ID).Delete(&paramRow{}).Error; err != nil {
		return fmt.Errorf("documents: clear index: %w", err)
	}
	if params := paramRows(next.ResourceType, next.ID, ix); len(params) > 0 {
		if err := tx.WithContext(ctx).Create(&params).Error; err != nil {
			return fmt.Errorf("documents: index: %w", err)
		}
	}
	return nil
}

// Read returns the current version of resourceType/id if it is about
// patient, else ErrNotFound (a missing id and another patient's document
// are the same answer).
func (s *Store) Read(ctx context.Context, resourceType, id, patient string) (*Document, error) {
	if patient == "" {
		return nil, ErrNotFound
	}
	var row docRow
	err := s.db.WithContext(ctx).
		Where("resource_type = ? AND id = ? AND patient = ?", resourceType, id, patient).
		Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("documents: read: %w", err)
	}
	return row.document(), nil
}

// Locate reports whether resourceType/id exists for any patient. It is
// for the audit trail's denial reason only; never answer a caller with it.
func (s *Store) Locate(ctx context.Context, resourceType, id string) (bool, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&docRow{}).Where("resource_type = ? AND id = ?", resourceType, id).Count(&n).Error
	return n > 0, err
}

func (r *docRow) document() *Document {
	return &Document{
		ResourceType: r.ResourceType, ID: r.ID, VersionID: r.VersionID,
		LastUpdated: time.UnixMicro(r.LastUpdatedUS).UTC(), Patient: r.Patient, Status: r.Status, Title: r.Title,
		Creator: Creator{
			ClientID: r.CreatorClientID, FHIRUser: r.CreatorFHIRUser, EHRIssuer: r.CreatorEHRIssuer,
			PayerScopes: r.CreatorPayerScopes, EHRScopes: r.CreatorEHRScopes,
		},
		Body: []byte(r.Body),
	}
}

// Result is one page of a search.
type Result struct {
	// Total is the number of matches the caller may see, -1 when not
	// counted (_total=none).
	Total int64
	Docs  []*Document
}

// Search runs q (whose conditions always confine it to q.Patient) and
// keeps only documents whose creator allowed accepts (the creator's-scope
// rule). The filter runs on the distinct creator scope pairs among the
// matches, so counting and paging stay in SQL.
func (s *Store) Search(ctx context.Context, q *Query, allowed func(Creator) bool) (*Result, error) {
	where, args := q.Where()
	db := s.db.WithContext(ctx)

	var pairs []struct {
		ScopeKey           string
		CreatorPayerScopes string
		CreatorEHRScopes   string
	}
	if err := db.Raw("SELECT DISTINCT scope_key, creator_payer_scopes, creator_ehr_scopes FROM documents WHERE "+where, args...).
		Scan(&pairs).Error; err != nil {
		return nil, fmt.Errorf("documents: search: %w", err)
	}
	var keys []any
	for _, p := range pairs {
		if allowed(Creator{PayerScopes: p.CreatorPayerScopes, EHRScopes: p.CreatorEHRScopes}) {
			keys = append(keys, p.ScopeKey)
		}
	}
	res := &Result{Total: -1}
	if len(keys) == 0 {
		if q.Total != TotalNone {
			res.Total = 0
		}
		return res, nil
	}
	where += " AND documents.scope_key IN (" + placeholders(len(keys)) + ")"
	args = append(args, keys...)

	if q.Total != TotalNone {
		if err := db.Raw("SELECT COUNT(*) FROM documents WHERE "+where, args...).Scan(&res.Total).Error; err != nil {
			return nil, fmt.Errorf("documents: count: %w", err)
		}
	}
	if q.Count == 0 {
		return res, nil
	}
	var rows []docRow
	pageArgs := append(append([]any(nil), args...), q.Count, q.Offset)
	if err := db.Raw("SELECT * FROM documents WHERE "+where+" ORDER BY "+q.OrderBy()+" LIMIT ? OFFSET ?", pageArgs...).
		Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("documents: search: %w", err)
	}
	for i := range rows {
		res.Docs = append(res.Docs, rows[i].document())
	}
	return res, nil
}

// AdminFilter selects documents for the admin console.
type AdminFilter struct {
	Patient      string
	ResourceType string
	Limit        int
	Offset       int
}

// AdminList lists documents of every patient, newest first, for the admin
// console only (it is not patient-confined).
func (s *Store) AdminList(ctx context.Context, f AdminFilter) ([]*Document, int64, error) {
	q := s.db.WithContext(ctx).Model(&docRow{})
	if f.Patient != "" {
		q = q.Where("patient = ?", f.Patient)
	}
	if f.ResourceType != "" {
		q = q.Where("resource_type = ?", f.ResourceType)
	}
	var total int64
	if err := q.Session(&gorm.Session{}).Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("documents: admin count: %w", err)
	}
	limit := f.Limit
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	var rows []docRow
	if err := q.Order("last_updated_us DESC").Order("id").Limit(limit).Offset(f.Offset).Find(&rows).Error; err != nil {
		return nil, 0, fmt.Errorf("documents: admin list: %w", err)
	}
	out := make([]*Document, len(rows))
	for i := range rows {
		out[i] = rows[i].document()
	}
	return out, total, nil
}

// HistoryCount returns how many replaced versions of a document are kept.
func (s *Store) HistoryCount(ctx context.Context, resourceType, id string) (int64, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&historyRow{}).Where("resource_type = ? AND id = ?", resourceType, id).Count(&n).Error
	return n, err
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}
