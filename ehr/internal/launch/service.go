package launch

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"
	"gorm.io/gorm"

	"dtrsandbox/ehr/internal/directory"
	"dtrsandbox/ehr/internal/oauthstore"
	"dtrsandbox/shared/fhir"
	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/oautherr"
	"dtrsandbox/shared/smart"
)

// Lifetime of a launch: SMART leaves it to the EHR; five minutes covers a
// slow browser and keeps a leaked launch id short-lived.
const DefaultTTL = 5 * time.Minute

// MaxContextItems bounds fhirContext.
const MaxContextItems = 10

// Context is a consumed launch: what the EHR knew when the clinician clicked
// "Launch" (SMART App Launch 2.2, "Launch context arrives with your
// access_token").
type Context struct {
	ClientID     string
	Practitioner string // Practitioner id
	Patient      string // Patient id
	Encounter    string // Encounter id, "" if none
	FHIRContext  []smart.ContextItem
	CreatedAt    time.Time // the click: the user's authentication time
}

// ClientStore is the part of the client registry a launch needs.
type ClientStore interface {
	Client(ctx context.Context, id string) (*oauthstore.Client, error)
}

// Config of a Service.
type Config struct {
	DB        *gorm.DB
	Clients   ClientStore
	Directory directory.Directory
	// FHIRBase is the iss the app is launched with.
	FHIRBase string
	TTL      time.Duration // DefaultTTL if zero
	Now      func() time.Time
}

// Service creates and consumes launches. Launch ids are 256-bit random
// values; only their SHA-256 is stored.
type Service struct {
	cfg Config
}

// launchRow is one row of ehr_launches.
type launchRow struct {
	IDHash       string `gorm:"primaryKey;size:64"`
	ClientID     string `gorm:"size:255;not null"`
	Practitioner string `gorm:"size:64;not null"`
	Patient      string `gorm:"size:64;not null"`
	Encounter    string `gorm:"size:64;not null"`
	FHIRContext  string `gorm:"type:text;not null"`
	CreatedAt    time.Time
	ExpiresAt    time.Time `gorm:"not null;index"`
	UsedAt       *time.Time
}

func (launchRow) TableName() string { return "ehr_launches" }

// NewService migrates the launch table and returns the service.
func NewService(cfg Config) (*Service, error) {
	switch {
	case cfg.DB == nil:
		return nil, errors.New("launch: Config.DB is required")
	case cfg.Clients == nil:
		return nil, errors.New("launch: Config.Clients is required")
	case cfg.Directory == nil:
		return nil, errors.New("launch: Config.Directory is required")
	case cfg.FHIRBase == "":
		return nil, errors.New("launch: Config.FHIRBase is required")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := cfg.DB.AutoMigrate(&launchRow{}); err != nil {
		return nil, fmt.Errorf("launch: migrate: %w", err)
	}
	return &Service{cfg: cfg}, nil
}

// Create records a launch for req and returns its id and the URL that opens
// the app ("<launch url>?iss=<fhir base>&launch=<id>", SMART App Launch 2.2
// "EHR launch"). Every refusal is an *oautherr.Error (invalid_request, 400)
// naming the bad member; a store failure is a server_error.
func (s *Service) Create(ctx context.Context, req Request) (*Created, error) {
	client, err := s.validate(ctx, &req)
	if err != nil {
		return nil, err
	}
	launchURL, err := launchURLFor(client, req.LaunchURL)
	if err != nil {
		return nil, err
	}
	id, err := newLaunchID()
	if err != nil {
		return nil, oautherr.ServerError("The launch could not be created.").WithCause(err)
	}
	items, err := json.Marshal(req.FHIRContext)
	if err != nil {
		return nil, oautherr.ServerError("The launch could not be created.").WithCause(err)
	}
	now := s.cfg.Now().UTC()
	row := &launchRow{
		IDHash:       hashID(id),
		ClientID:     client.ID,
		Practitioner: req.Practitioner,
		Patient:      req.Patient,
		Encounter:    req.Encounter,
		FHIRContext:  string(items),
		CreatedAt:    now,
		ExpiresAt:    now.Add(s.cfg.TTL),
	}
	if err := s.cfg.DB.WithContext(ctx).Create(row).Error; err != nil {
		return nil, oautherr.ServerError("The launch could not be created.").WithCause(err)
	}
	u, err := url.Parse(launchURL)
	if err != nil {
		return nil, oautherr.ServerError("The launch could not be created.").WithCause(err)
	}
	q := u.Query()
	q.Set("iss", s.cfg.FHIRBase)
	q.Set("launch", id)
	u.RawQuery = q.Encode()
	return &Created{Launch: id, LaunchURL: u.String()}, nil
}

// validate checks req against the registry and the records; it returns the
// client to launch.
func (s *Service) validate(ctx context.Context, req *Request) (*oauthstore.Client, error) {
	if req.ClientID == "" {
		return nil, oautherr.InvalidRequest("client_id is required.")
	}
	client, err := s.cfg.Clients.Client(ctx, req.ClientID)
	switch {
	case errors.Is(err, fosite.ErrNotFound):
		return nil, oautherr.InvalidRequest("Unknown client_id.")
	case err != nil:
		return nil, oautherr.ServerError("The client could not be looked up.").WithCause(err)
	}
	if len(client.RedirectURIs) == 0 || !client.GetGrantTypes().Has("authorization_code") {
		return nil, oautherr.InvalidRequest("The client is not registered for the authorization code grant, so it cannot be launched.")
	}
	if err := s.mustExist(ctx, "practitioner", "Practitioner", req.Practitioner, true); err != nil {
		return nil, err
	}
	if err := s.mustExist(ctx, "patient", "Patient", req.Patient, true); err != nil {
		return nil, err
	}
	if err := s.mustExist(ctx, "encounter", "Encounter", req.Encounter, false); err != nil {
		return nil, err
	}
	if len(req.FHIRContext) > MaxContextItems {
		return nil, oautherr.InvalidRequest("fhirContext has more than %d items.", MaxContextItems)
	}
	for i, item := range req.FHIRContext {
		if err := item.Validate(); err != nil {
			var ce *smart.ContextError
			if errors.As(err, &ce) {
				return nil, oautherr.InvalidRequest("fhirContext[%d]: %s", i, ce.Hint)
			}
			return nil, oautherr.InvalidRequest("fhirContext[%d] is invalid.", i)
		}
		if item.Reference == "" {
			continue
		}
		typ, id, _ := strings.Cut(item.Reference, "/")
		if err := s.mustExist(ctx, fmt.Sprintf("fhirContext[%d].reference", i), typ, id, true); err != nil {
			return nil, err
		}
	}
	return client, nil
}

// mustExist checks that resourceType/id is in the EHR.
func (s *Service) mustExist(ctx context.Context, member, resourceType, id string, required bool) error {
	if id == "" {
		if required {
			return oautherr.InvalidRequest("%s is required.", member)
		}
		return nil
	}
	if !fhir.ValidID(id) {
		return oautherr.InvalidRequest("%s is not a valid FHIR id.", member)
	}
	ok, err := s.cfg.Directory.Exists(ctx, resourceType, id)
	switch {
	case err != nil:
		return oautherr.ServerError("The EHR records could not be read.").WithCause(err)
	case !ok:
		return oautherr.InvalidRequest("%s %s/%s does not exist in this EHR.", member, resourceType, id)
	}
	return nil
}

// launchURLFor chooses the URL that opens the app: the client's registered
// launch URL by default. A caller-supplied one must be an https URL (http
// only on loopback) on the origin of the registered launch URL or of one of
// the client's redirect URIs, so the launch id is only ever handed to the
// app it was issued for.
func launchURLFor(c *oauthstore.Client, requested string) (string, error) {
	if requested == "" {
		if c.LaunchURL == "" {
			return "", oautherr.InvalidRequest("The client has no registered launch URL; give launch_url.")
		}
		return c.LaunchURL, nil
	}
	if requested == c.LaunchURL {
		return requested, nil
	}
	u, err := url.Parse(requested)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || u.Fragment != "" ||
		!(u.Scheme == "https" || u.Scheme == "http" && jwks.IsLoopback(u.Hostname())) {
		return "", oautherr.InvalidRequest("launch_url must be an absolute https URL (http only on a loopback address) without a fragment.")
	}
	origins := append([]string{c.LaunchURL}, c.RedirectURIs...)
	for _, o := range origins {
		if ru, err := url.Parse(o); err == nil && o != "" && ru.Scheme == u.Scheme && ru.Host == u.Host {
			return requested, nil
		}
	}
	return "", oautherr.InvalidRequest("launch_url must be on the origin of the client's registered launch URL or redirect URIs.")
}

// errInvalidLaunch is the one answer for any launch that cannot be used, so
// the caller learns nothing about launches of other clients.
var errInvalidLaunch = oautherr.InvalidRequest("The launch parameter is unknown, expired, already used or was issued for another client.")

// Consume spends a launch for clientID and returns its context. It succeeds
// at most once per launch, atomically across concurrent requests and
// replicas sharing the database. An unknown, expired, used or foreign launch
// is an *oautherr.Error (invalid_request) whose cause says which, for the
// log; a foreign attempt does not spend the launch.
func (s *Service) Consume(ctx context.Context, launchID, clientID string) (*Context, error) {
	if launchID == "" || len(launchID) > 128 || clientID == "" {
		return nil, errInvalidLaunch.WithCause(errors.New("launch: malformed launch id"))
	}
	h := hashID(launchID)
	now := s.cfg.Now().UTC()
	db := s.cfg.DB.WithContext(ctx)
	res := db.Model(&launchRow{}).
		Where("id_hash = ? AND client_id = ? AND used_at IS NULL AND expires_at > ?", h, clientID, now).
		Update("used_at", now)
	if res.Error != nil {
		return nil, oautherr.ServerError("The launch could not be read.").WithCause(res.Error)
	}
	var row launchRow
	if err := db.Where("id_hash = ?", h).Take(&row).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, errInvalidLaunch.WithCause(errors.New("launch: unknown launch"))
		}
		return nil, oautherr.ServerError("The launch could not be read.").WithCause(err)
	}
	if res.RowsAffected != 1 {
		return nil, errInvalidLaunch.WithCause(whyUnusable(&row, clientID, now))
	}
	var items []smart.ContextItem
	if err := json.Unmarshal([]byte(row.FHIRContext), &items); err != nil {
		return nil, oautherr.ServerError("The launch could not be read.").WithCause(err)
	}
	return &Context{
		ClientID:     row.ClientID,
		Practitioner: row.Practitioner,
		Patient:      row.Patient,
		Encounter:    row.Encounter,
		FHIRContext:  items,
		CreatedAt:    row.CreatedAt.UTC(),
	}, nil
}

func whyUnusable(row *launchRow, clientID string, now time.Time) error {
	switch {
	case row.ClientID != clientID:
		return fmt.Errorf("launch: issued for client %q, presented by %q", row.ClientID, clientID)
	case row.UsedAt != nil:
		return fmt.Errorf("launch: already used at %s", row.UsedAt.UTC().Format(time.RFC3339))
	case !now.Before(row.ExpiresAt):
		return fmt.Errorf("launch: expired at %s", row.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return errors.New("launch: not usable")
}

// Purge deletes launches that expired before now.
func (s *Service) Purge(ctx context.Context) error {
	return s.cfg.DB.WithContext(ctx).Where("expires_at < ?", s.cfg.Now().UTC()).Delete(&launchRow{}).Error
}

func newLaunchID() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func hashID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
