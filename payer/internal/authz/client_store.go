package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/database"
	"dtrsandbox/shared/jwks"
)

// Errors of the client store, for errors.Is.
var (
	ErrClientNotFound = errors.New("authz: unknown client")
	ErrClientExists   = errors.New("authz: client id already registered")
	// ErrEHRClientIDTaken: another payer client already claimed that EHR
	// client id at that issuer (CONTRACT.md: "An EHR client id can be
	// claimed by one payer client only"). Wrapped by *EHRClientIDTakenError.
	ErrEHRClientIDTaken = errors.New("authz: EHR client id already claimed by another client")
)

// EHRClientIDTakenError names the claim that lost.
type EHRClientIDTakenError struct{ Issuer, EHRClientID string }

func (e *EHRClientIDTakenError) Error() string {
	return fmt.Sprintf("authz: EHR client id %q at %s already claimed by another client", e.EHRClientID, e.Issuer)
}

// Is makes errors.Is(err, ErrEHRClientIDTaken) true.
func (e *EHRClientIDTakenError) Is(target error) bool { return target == ErrEHRClientIDTaken }

// clientRow is one row of payer_clients.
type clientRow struct {
	ID         string `gorm:"primaryKey"`
	Name       string `gorm:"not null;default:''"`
	JWKS       string `gorm:"column:jwks;not null;default:''"` // public JWK Set JSON, "" when by reference
	JWKSURI    string `gorm:"column:jwks_uri;not null;default:''"`
	AuthMethod string `gorm:"not null"`
	SigningAlg string `gorm:"not null;default:''"`
	Scope      string `gorm:"not null"`
	GrantTypes string `gorm:"not null"` // space-delimited
	CreatedAt  time.Time
}

func (clientRow) TableName() string { return "payer_clients" }

// ehrClientRow is one entry of a client's ehr_client_ids. The primary key
// gives a client one EHR client id per issuer; the unique index on
// (issuer, ehr_client_id) lets only one payer client claim an EHR client
// id, enforced by the database for every replica and every concurrent
// registration.
type ehrClientRow struct {
	ClientID    string `gorm:"primaryKey"`
	Issuer      string `gorm:"primaryKey;uniqueIndex:idx_payer_ehr_claim,priority:1"`
	EHRClientID string `gorm:"column:ehr_client_id;not null;uniqueIndex:idx_payer_ehr_claim,priority:2"`
}

func (ehrClientRow) TableName() string { return "payer_client_ehr_ids" }

// ClientStore keeps registered clients in the database. Clients never
// change after registration (only the seed rewrites its own client, at
// startup), so lookups are cached in memory for a short while.
type ClientStore struct {
	db  *gorm.DB
	ttl time.Duration
	now func() time.Time

	mu    sync.RWMutex
	cache map[string]cachedClient
}

type cachedClient struct {
	c     *Client
	until time.Time
}

const maxCachedClients = 10000

// NewClientStore migrates the client tables. Open db with the database
// package (TranslateError on) so unique violations are recognised.
func NewClientStore(db *gorm.DB) (*ClientStore, error) {
	if db == nil {
		return nil, errors.New("authz: nil database")
	}
	if err := db.AutoMigrate(&clientRow{}, &ehrClientRow{}); err != nil {
		return nil, fmt.Errorf("authz: migrate client tables: %w", err)
	}
	return &ClientStore{db: db, ttl: time.Minute, now: time.Now, cache: map[string]cachedClient{}}, nil
}

// Create stores a new client and its EHR client id claims in one
// transaction: either all of it is stored or nothing.
func (s *ClientStore) Create(ctx context.Context, c *Client) error {
	row, err := toRow(c)
	if err != nil {
		return err
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(row).Error; err != nil {
			if database.IsDuplicate(err) {
				return fmt.Errorf("%w: %s", ErrClientExists, c.ID)
			}
			return fmt.Errorf("authz: store client: %w", err)
		}
		return insertClaims(tx, c)
	})
}

// insertClaims stores c's ehr_client_ids, one row at a time so a refusal
// names the claim that was already taken.
func insertClaims(tx *gorm.DB, c *Client) error {
	for _, iss := range slices.Sorted(maps.Keys(c.EHRClientIDs)) {
		r := ehrClientRow{ClientID: c.ID, Issuer: iss, EHRClientID: c.EHRClientIDs[iss]}
		if err := tx.Create(&r).Error; err != nil {
			if database.IsDuplicate(err) {
				return &EHRClientIDTakenError{Issuer: iss, EHRClientID: r.EHRClientID}
			}
			return fmt.Errorf("authz: store ehr_client_ids: %w", err)
		}
	}
	return nil
}

// Seed creates c, or rewrites it (metadata and claims) when a client with
// its id exists, so a restart with a new configuration converges. A claim
// held by another client is an *EHRClientIDTakenError.
func (s *ClientStore) Seed(ctx context.Context, c *Client) error {
	row, err := toRow(c)
	if err != nil {
		return err
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "id"}},
			DoUpdates: clause.AssignmentColumns([]string{"name", "jwks", "jwks_uri", "auth_method", "signing_alg", "scope", "grant_types"}),
		}).Create(row).Error; err != nil {
			return fmt.Errorf("authz: seed client %s: %w", c.ID, err)
		}
		if err := tx.Where("client_id = ?", c.ID).Delete(&ehrClientRow{}).Error; err != nil {
			return fmt.Errorf("authz: seed client %s: %w", c.ID, err)
		}
		return insertClaims(tx, c)
	})
	s.forget(c.ID)
	return err
}

// Get returns the client with id, or ErrClientNotFound.
func (s *ClientStore) Get(ctx context.Context, id string) (*Client, error) {
	if c := s.cached(id); c != nil {
		return c, nil
	}
	var row clientRow
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&row).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return nil, ErrClientNotFound
	case err != nil:
		return nil, fmt.Errorf("authz: load client: %w", err)
	}
	var claims []ehrClientRow
	if err := s.db.WithContext(ctx).Where("client_id = ?", id).Find(&claims).Error; err != nil {
		return nil, fmt.Errorf("authz: load ehr_client_ids: %w", err)
	}
	c, err := fromRow(&row, claims)
	if err != nil {
		return nil, err
	}
	s.remember(c)
	return c, nil
}

// AssertionClient implements clientauth.ClientStore.
func (s *ClientStore) AssertionClient(ctx context.Context, id string) (*clientauth.Client, error) {
	c, err := s.Get(ctx, id)
	if errors.Is(err, ErrClientNotFound) {
		return nil, clientauth.ErrUnknownClient
	}
	if err != nil {
		return nil, err
	}
	return c.assertionClient(), nil
}

// EHRClientID returns the client id at issuer that the payer client
// clientID registered, and whether it registered one.
func (s *ClientStore) EHRClientID(ctx context.Context, clientID, issuer string) (string, bool, error) {
	c, err := s.Get(ctx, clientID)
	if err != nil {
		return "", false, err
	}
	id, ok := c.EHRClientIDs[issuer]
	return id, ok, nil
}

func (s *ClientStore) cached(id string) *Client {
	s.mu.RLock()
	e, ok := s.cache[id]
	s.mu.RUnlock()
	if !ok || !s.now().Before(e.until) {
		return nil
	}
	return e.c
}

func (s *ClientStore) remember(c *Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cache) >= maxCachedClients {
		clear(s.cache)
	}
	s.cache[c.ID] = cachedClient{c: c, until: s.now().Add(s.ttl)}
}

func (s *ClientStore) forget(id string) {
	s.mu.Lock()
	delete(s.cache, id)
	s.mu.Unlock()
}

func toRow(c *Client) (*clientRow, error) {
	row := &clientRow{
		ID: c.ID, Name: c.Name, JWKSURI: c.JWKSURI, AuthMethod: c.AuthMethod,
		SigningAlg: c.SigningAlg, Scope: c.Scope, GrantTypes: strings.Join(c.GrantTypes, " "),
		CreatedAt: c.IssuedAt.UTC(),
	}
	if c.JWKS != nil {
		b, err := json.Marshal(c.JWKS)
		if err != nil {
			return nil, fmt.Errorf("authz: encode jwks: %w", err)
		}
		row.JWKS = string(b)
	}
	return row, nil
}

func fromRow(row *clientRow, claims []ehrClientRow) (*Client, error) {
	c := &Client{
		ID: row.ID, Name: row.Name, JWKSURI: row.JWKSURI, AuthMethod: row.AuthMethod,
		SigningAlg: row.SigningAlg, Scope: row.Scope, GrantTypes: strings.Fields(row.GrantTypes),
		EHRClientIDs: make(map[string]string, len(claims)), IssuedAt: row.CreatedAt,
	}
	if row.JWKS != "" {
		set, err := jwks.ParsePublicSet([]byte(row.JWKS))
		if err != nil {
			return nil, fmt.Errorf("authz: stored jwks of %s: %w", row.ID, err)
		}
		c.JWKS = set
	}
	for _, cl := range claims {
		c.EHRClientIDs[cl.Issuer] = cl.EHRClientID
	}
	return c, nil
}

// publicSetJSON renders a parsed set for a registration response.
func publicSetJSON(set *jose.JSONWebKeySet) json.RawMessage {
	b, err := json.Marshal(set)
	if err != nil {
		return nil
	}
	return b
}
