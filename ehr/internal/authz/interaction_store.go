package authz

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"gorm.io/gorm"

	"dtrsandbox/ehr/internal/launch"
)

// interactionRow is an authorization request waiting for the user (login,
// patient picker, consent). The browser holds its id (in the forms) and a
// binding secret (in a cookie); the forms also carry a CSRF token. Only
// SHA-256 hashes of the three are stored.
type interactionRow struct {
	IDHash       string `gorm:"primaryKey;size:64"`
	BindingHash  string `gorm:"size:64;not null"`
	CSRFHash     string `gorm:"size:64;not null"`
	ClientID     string `gorm:"size:255;not null"`
	Params       string `gorm:"type:text;not null"`
	Launch       string `gorm:"type:text;not null"`
	Subject      string `gorm:"size:255;not null"`
	AuthTime     time.Time
	Patient      string `gorm:"size:64;not null"`
	Consented    bool   `gorm:"not null"`
	ForceConsent bool   `gorm:"not null"`
	CreatedAt    time.Time
	ExpiresAt    time.Time `gorm:"not null;index"`
	Done         bool      `gorm:"not null"`
}

func (interactionRow) TableName() string { return "authz_interactions" }

// interaction is a decoded interactionRow.
type interaction struct {
	idHash       string
	bindingHash  string
	csrfHash     string
	clientID     string
	params       url.Values
	launch       *launch.Context // nil for a standalone launch
	subject      string          // Practitioner id once known
	authTime     time.Time
	patient      string
	consented    bool
	forceConsent bool
	createdAt    time.Time
}

var errInteractionGone = errors.New("authz: interaction unknown, expired or finished")

type interactionStore struct {
	db  *gorm.DB
	now func() time.Time
}

func newInteractionStore(db *gorm.DB, now func() time.Time) (*interactionStore, error) {
	if err := db.AutoMigrate(&interactionRow{}); err != nil {
		return nil, fmt.Errorf("authz: migrate interactions: %w", err)
	}
	return &interactionStore{db: db, now: now}, nil
}

func hashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// sameHash compares a presented secret with a stored hash in constant time.
func sameHash(presented, stored string) bool {
	if presented == "" || stored == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(hashSecret(presented)), []byte(stored)) == 1
}

// create stores it (with the hashes already set).
func (s *interactionStore) create(ctx context.Context, it *interaction) error {
	params, err := json.Marshal(it.params)
	if err != nil {
		return err
	}
	launchJSON := ""
	if it.launch != nil {
		b, err := json.Marshal(it.launch)
		if err != nil {
			return err
		}
		launchJSON = string(b)
	}
	row := &interactionRow{
		IDHash:       it.idHash,
		BindingHash:  it.bindingHash,
		CSRFHash:     it.csrfHash,
		ClientID:     it.clientID,
		Params:       string(params),
		Launch:       launchJSON,
		Subject:      it.subject,
		AuthTime:     it.authTime.UTC(),
		Patient:      it.patient,
		Consented:    it.consented,
		ForceConsent: it.forceConsent,
		CreatedAt:    it.createdAt.UTC(),
		ExpiresAt:    it.createdAt.Add(InteractionTTL).UTC(),
	}
	if err := s.db.WithContext(ctx).Create(row).Error; err != nil {
		return fmt.Errorf("authz: store interaction: %w", err)
	}
	return nil
}

// load returns the pending interaction with id, or errInteractionGone.
func (s *interactionStore) load(ctx context.Context, id string) (*interaction, error) {
	if id == "" || len(id) > 128 {
		return nil, errInteractionGone
	}
	var row interactionRow
	err := s.db.WithContext(ctx).
		Where("id_hash = ? AND done = ? AND expires_at > ?", hashSecret(id), false, s.now().UTC()).
		Take(&row).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return nil, errInteractionGone
	case err != nil:
		return nil, fmt.Errorf("authz: load interaction: %w", err)
	}
	it := &interaction{
		idHash:       row.IDHash,
		bindingHash:  row.BindingHash,
		csrfHash:     row.CSRFHash,
		clientID:     row.ClientID,
		params:       url.Values{},
		subject:      row.Subject,
		authTime:     row.AuthTime.UTC(),
		patient:      row.Patient,
		consented:    row.Consented,
		forceConsent: row.ForceConsent,
		createdAt:    row.CreatedAt.UTC(),
	}
	if err := json.Unmarshal([]byte(row.Params), &it.params); err != nil {
		return nil, fmt.Errorf("authz: decode interaction: %w", err)
	}
	if row.Launch != "" {
		it.launch = &launch.Context{}
		if err := json.Unmarshal([]byte(row.Launch), it.launch); err != nil {
			return nil, fmt.Errorf("authz: decode interaction: %w", err)
		}
	}
	return it, nil
}

// update saves the user's progress; errInteractionGone if it finished meanwhile.
func (s *interactionStore) update(ctx context.Context, it *interaction) error {
	res := s.db.WithContext(ctx).Model(&interactionRow{}).
		Where("id_hash = ? AND done = ?", it.idHash, false).
		Updates(map[string]any{
			"subject":   it.subject,
			"auth_time": it.authTime.UTC(),
			"patient":   it.patient,
			"consented": it.consented,
		})
	switch {
	case res.Error != nil:
		return fmt.Errorf("authz: update interaction: %w", res.Error)
	case res.RowsAffected != 1:
		return errInteractionGone
	}
	return nil
}

// finish marks it done; only one caller can, so a form submitted twice
// issues one authorization code.
func (s *interactionStore) finish(ctx context.Context, it *interaction) error {
	res := s.db.WithContext(ctx).Model(&interactionRow{}).
		Where("id_hash = ? AND done = ?", it.idHash, false).
		Update("done", true)
	switch {
	case res.Error != nil:
		return fmt.Errorf("authz: finish interaction: %w", res.Error)
	case res.RowsAffected != 1:
		return errInteractionGone
	}
	return nil
}

// purge deletes interactions past their expiry.
func (s *interactionStore) purge(ctx context.Context) error {
	return s.db.WithContext(ctx).Where("expires_at < ?", s.now().UTC()).Delete(&interactionRow{}).Error
}
