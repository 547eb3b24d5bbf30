package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
)

// record is one stored AuditEvent: the FHIR JSON plus the columns the
// admin search filters on. It never holds a token: Event has no field for
// one and query strings are scrubbed (ScrubQuery).
type record struct {
	ID           string `gorm:"primaryKey;size:64"`
	RecordedUS   int64  `gorm:"column:recorded_us;not null;index:idx_audit_recorded"`
	Patient      string `gorm:"size:512;index:idx_audit_patient"`
	ClientID     string `gorm:"column:client_id;size:256;index:idx_audit_client"`
	FHIRUser     string `gorm:"column:fhir_user;size:512;index:idx_audit_user"`
	Outcome      string `gorm:"size:4;not null;index:idx_audit_outcome"`
	Action       string `gorm:"size:1"`
	Interaction  string `gorm:"size:32"`
	ResourceType string `gorm:"size:64"`
	ResourceID   string `gorm:"size:64"`
	Reason       string `gorm:"type:text"`
	Status       int
	Body         string `gorm:"type:text;not null"`
}

func (record) TableName() string { return "audit_events" }

// StoreConfig configures a Store.
type StoreConfig struct {
	// Source is the payer's FHIR base URL, written as the AuditEvent
	// observer and used for the identifier system of client ids
	// ("{Source}/client_id"). Without it the observer has no identifier
	// and client ids use the system "urn:dtrsandbox:payer:client_id".
	Source string
}

// Store keeps AuditEvents in the service database. It implements Recorder.
type Store struct {
	db     *gorm.DB
	source string
}

var _ Recorder = (*Store)(nil)

// NewStore migrates the audit table and returns the store.
func NewStore(db *gorm.DB, cfg StoreConfig) (*Store, error) {
	if db == nil {
		return nil, errors.New("audit: nil database")
	}
	if err := db.AutoMigrate(&record{}); err != nil {
		return nil, fmt.Errorf("audit: migrate: %w", err)
	}
	return &Store{db: db, source: cfg.Source}, nil
}

// Validation limits: an event is refused (and so is the request it
// records) rather than stored truncated.
const maxFieldLen = 4096

// Record writes ev as a FHIR AuditEvent. With a non-nil tx the row is part
// of that transaction and commits or rolls back with the change it
// records; with nil it is committed on its own before Record returns.
func (s *Store) Record(ctx context.Context, tx *gorm.DB, ev Event) error {
	if err := checkEvent(&ev); err != nil {
		return err
	}
	id, err := newID()
	if err != nil {
		return err
	}
	body, err := json.Marshal(buildAuditEvent(id, ev, s.source))
	if err != nil {
		return fmt.Errorf("audit: encode: %w", err)
	}
	rec := record{
		ID:           id,
		RecordedUS:   ev.Time.UnixMicro(),
		Patient:      ev.Patient,
		ClientID:     ev.ClientID,
		FHIRUser:     ev.FHIRUser,
		Outcome:      ev.Outcome,
		Action:       ev.Action,
		Interaction:  ev.Interaction,
		ResourceType: ev.ResourceType,
		ResourceID:   ev.ResourceID,
		Reason:       ev.Reason,
		Status:       ev.Status,
		Body:         string(body),
	}
	db := tx
	if db == nil {
		db = s.db
	}
	if err := db.WithContext(ctx).Create(&rec).Error; err != nil {
		return fmt.Errorf("audit: insert: %w", err)
	}
	return nil
}

// checkEvent fills defaults and refuses an event that would be misleading.
func checkEvent(ev *Event) error {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if len(ev.Query) > 64*1024 {
		ev.Query = ev.Query[:64*1024] // before cleanText, which mends a character cut in half
	}
	cleanText(ev)
	ev.Time = ev.Time.UTC()
	switch ev.Outcome {
	case OutcomeSuccess, OutcomeMinorFailure, OutcomeSeriousFail, OutcomeMajorFailure:
	case "":
		return errors.New("audit: event without outcome")
	default:
		return fmt.Errorf("audit: unknown outcome %q", ev.Outcome)
	}
	switch ev.Action {
	case "C", "R", "U", "D", "E":
	default:
		return fmt.Errorf("audit: unknown action %q", ev.Action)
	}
	if ev.Outcome != OutcomeSuccess && ev.Reason == "" {
		return errors.New("audit: a failed request needs a reason")
	}
	for _, f := range []string{ev.Interaction, ev.ResourceType, ev.ResourceID, ev.Reason, ev.ClientID,
		ev.FHIRUser, ev.EHRIssuer, ev.Patient, ev.PurposeOfUse, ev.SourceIP} {
		if len(f) > maxFieldLen {
			return errors.New("audit: event field too long")
		}
	}
	return nil
}

// cleanText makes every text field of ev valid UTF-8 without NUL (each
// bad byte or NUL becomes U+FFFD): parts of an event come from the caller
// (an id in a path, a query, a claim), and PostgreSQL refuses text with a
// NUL or invalid UTF-8, which would lose the whole event, and with it the
// request (a write fails when its event cannot be recorded).
func cleanText(ev *Event) {
	for _, f := range []*string{&ev.Action, &ev.Interaction, &ev.ResourceType, &ev.ResourceID, &ev.Query, &ev.Outcome,
		&ev.Reason, &ev.ClientID, &ev.FHIRUser, &ev.EHRIssuer, &ev.Patient, &ev.PurposeOfUse, &ev.SourceIP} {
		if !utf8.ValidString(*f) || strings.IndexByte(*f, 0) >= 0 {
			*f = strings.ReplaceAll(strings.ToValidUTF8(*f, "\uFFFD"), "\x00", "\uFFFD")
		}
	}
}

// newID returns a random FHIR id (32 hex digits, 128 bits).
func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("audit: random id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Filter selects events for the admin search and the console. Zero fields
// do not filter.
type Filter struct {
	Patient []string // absolute patient references (OR)
	Agent   []string // client_id or fhirUser (OR)
	Outcome []string // outcome codes (OR)
	Dates   []DateCond
	Count   int // page size, 1..MaxCount; 0 means DefaultCount
	Offset  int
	NoTotal bool // skip the count query
}

// DateCond is one AND-ed condition on the recorded time.
type DateCond struct {
	SQL  string // condition on the columns RecordedLo / RecordedHi (see searchparam.DateSQL)
	Args []any
}

// Column expressions of the recorded time as a range [lo, hi) in Unix
// microseconds, for searchparam.DateSQL.
const (
	RecordedLo = "recorded_us"
	RecordedHi = "(recorded_us + 1)"
)

// Page limits for Search.
const (
	DefaultCount = 50
	MaxCount     = 200
)

// Entry is one stored event, as the search and console show it.
type Entry struct {
	ID           string
	Recorded     time.Time
	Patient      string
	ClientID     string
	FHIRUser     string
	Outcome      string
	Action       string
	Interaction  string
	ResourceType string
	ResourceID   string
	Reason       string
	Status       int
	Body         []byte
}

// Search returns the events matching f, newest first, and the number of
// matches (-1 when f.NoTotal).
func (s *Store) Search(ctx context.Context, f Filter) ([]Entry, int64, error) {
	q := s.db.WithContext(ctx).Model(&record{})
	if len(f.Patient) > 0 {
		q = q.Where("patient IN ?", f.Patient)
	}
	if len(f.Agent) > 0 {
		q = q.Where("(client_id IN ? OR fhir_user IN ?)", f.Agent, f.Agent)
	}
	if len(f.Outcome) > 0 {
		q = q.Where("outcome IN ?", f.Outcome)
	}
	for _, d := range f.Dates {
		q = q.Where(d.SQL, d.Args...)
	}
	total := int64(-1)
	if !f.NoTotal {
		if err := q.Session(&gorm.Session{}).Count(&total).Error; err != nil {
			return nil, 0, fmt.Errorf("audit: count: %w", err)
		}
	}
	if f.Count < 0 { // total only
		return nil, total, nil
	}
	count := f.Count
	if count == 0 {
		count = DefaultCount
	}
	if count > MaxCount {
		count = MaxCount
	}
	var recs []record
	if err := q.Order("recorded_us DESC").Order("id").Limit(count).Offset(f.Offset).Find(&recs).Error; err != nil {
		return nil, 0, fmt.Errorf("audit: search: %w", err)
	}
	out := make([]Entry, len(recs))
	for i, r := range recs {
		out[i] = Entry{
			ID: r.ID, Recorded: time.UnixMicro(r.RecordedUS).UTC(), Patient: r.Patient, ClientID: r.ClientID,
			FHIRUser: r.FHIRUser, Outcome: r.Outcome, Action: r.Action, Interaction: r.Interaction,
			ResourceType: r.ResourceType, ResourceID: r.ResourceID, Reason: r.Reason, Status: r.Status,
			Body: []byte(r.Body),
		}
	}
	return out, total, nil
}

// OutcomeLabel names an outcome code for people.
func OutcomeLabel(code string) string {
	switch code {
	case OutcomeSuccess:
		return "success"
	case OutcomeMinorFailure:
		return "denied"
	case OutcomeSeriousFail:
		return "serious failure"
	case OutcomeMajorFailure:
		return "major failure"
	}
	return strings.TrimSpace(code)
}
