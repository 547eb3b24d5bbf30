// Package server wires the mock EHR: database, keys, seeds, the
// authorization server, launches, records, the FHIR API and the chart, and
// exposes them as one http.Handler (routes.go lists every route).
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"dtrsandbox/ehr/internal/authz"
	"dtrsandbox/ehr/internal/chart"
	"dtrsandbox/ehr/internal/fhirapi"
	"dtrsandbox/ehr/internal/launch"
	"dtrsandbox/ehr/internal/oauthstore"
	"dtrsandbox/ehr/internal/records"
	"dtrsandbox/ehr/internal/seed"
	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/database"
	"dtrsandbox/shared/jwks"
	"dtrsandbox/web"
)

// Config is the EHR's configuration (cmd/ehr reads it from the
// environment).
type Config struct {
	PublicURL         string        // EHR_PUBLIC_URL
	DataDir           string        // SANDBOX_DATA_DIR: keys under {DataDir}/ehr/keys, SQLite at {DataDir}/ehr/ehr.db
	DatabaseURL       string        // EHR_DATABASE_URL (postgres://...), empty for SQLite
	SmartAppURL       string        // EHR_SMARTAPP_URL
	PayerJWKSURI      string        // EHR_PAYER_JWKS_URI
	PayerClientSecret string        // EHR_PAYER_CLIENT_SECRET (optional)
	AccessTokenTTL    time.Duration // EHR_ACCESS_TOKEN_TTL
	// TLS is true when the EHR serves HTTPS (cookies are then Secure).
	TLS bool
	// HTTPClient is the outbound client (trusting the sandbox CA), used to
	// fetch clients' jwks_uri.
	HTTPClient *http.Client
	Logger     *slog.Logger
	// Now is the clock (time.Now); tests move it.
	Now func() time.Time
}

// Server is the wired EHR.
type Server struct {
	db       *gorm.DB
	handler  http.Handler
	authz    *authz.Server
	launches *launch.Service
	oauth    *oauthstore.Store
	jtis     *clientauth.GormJTIStore
	log      *slog.Logger
	now      func() time.Time
	ready    atomic.Bool
}

// New opens the database, loads the keys, seeds the records and clients,
// and builds every handler.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PublicURL == "" || cfg.DataDir == "" {
		return nil, errors.New("server: PublicURL and DataDir are required")
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	db, err := database.Open(ctx, database.Config{
		URL:        cfg.DatabaseURL,
		SQLitePath: filepath.Join(cfg.DataDir, "ehr", "ehr.db"),
		Logger:     cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	s, err := build(ctx, cfg, db)
	if err != nil {
		_ = database.Close(db)
		return nil, err
	}
	return s, nil
}

func build(ctx context.Context, cfg Config, db *gorm.DB) (*Server, error) {
	keyDir := filepath.Join(cfg.DataDir, "ehr", "keys")
	keys, err := authz.LoadOrCreateKeys(keyDir)
	if err != nil {
		return nil, err
	}
	cookieKey, err := authz.LoadOrCreateSecret(filepath.Join(keyDir, "chart-cookie-key"))
	if err != nil {
		return nil, err
	}
	rec, err := records.Open(db)
	if err != nil {
		return nil, err
	}
	resources, err := seed.Resources()
	if err != nil {
		return nil, err
	}
	if err := rec.Seed(ctx, resources); err != nil {
		return nil, err
	}
	oauth, err := oauthstore.New(db, oauthstore.Options{NewSession: authz.NewSession, Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	if err := authz.SeedClients(ctx, oauth, authz.SeedConfig{
		SmartAppURL:       cfg.SmartAppURL,
		PayerJWKSURI:      cfg.PayerJWKSURI,
		PayerClientSecret: cfg.PayerClientSecret,
	}); err != nil {
		return nil, err
	}
	jtis, err := clientauth.NewGormJTIStore(db)
	if err != nil {
		return nil, err
	}
	urls := authz.NewURLs(cfg.PublicURL)
	launches, err := launch.NewService(launch.Config{
		DB: db, Clients: oauth, Directory: rec, FHIRBase: urls.FHIRBase, Now: cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	tmpl, err := web.Templates("ehr", nil)
	if err != nil {
		return nil, err
	}
	as, err := authz.New(authz.Config{
		PublicURL:      cfg.PublicURL,
		Store:          oauth,
		DB:             db,
		Launches:       launches,
		Directory:      rec,
		Keys:           keys,
		JTIs:           jtis,
		RemoteKeys:     jwks.NewRemote(cfg.HTTPClient, jwks.RemoteOptions{Now: cfg.Now}),
		AccessTokenTTL: cfg.AccessTokenTTL,
		Templates:      tmpl,
		Logger:         cfg.Logger,
		SecureCookies:  cfg.TLS,
		Now:            cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	api, err := fhirapi.New(fhirapi.Config{
		Base:           urls.FHIRBase,
		Store:          rec,
		Verifier:       as.Verifier(),
		SMARTConfigURL: urls.SMARTConfig,
		AuthorizeURL:   urls.Authorize,
		TokenURL:       urls.Token,
		RevokeURL:      urls.Revoke,
		IntrospectURL:  urls.Introspect,
		RegisterURL:    urls.Register,
		Logger:         cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	ch, err := chart.New(chart.Config{
		Records:   rec,
		Launcher:  launches,
		Templates: tmpl,
		FHIRBase:  urls.FHIRBase,
		ClientID:  authz.SmartAppClientID,
		Logger:    cfg.Logger,
		CookieKey: cookieKey,
	})
	if err != nil {
		return nil, err
	}
	s := &Server{db: db, authz: as, launches: launches, oauth: oauth, jtis: jtis, log: cfg.Logger, now: cfg.Now}
	s.handler = routes(s, handlers{authz: as, launches: launches, fhir: api, chart: ch, templates: tmpl}, cfg.Logger)
	if err := s.Purge(ctx); err != nil {
		return nil, fmt.Errorf("server: purge: %w", err)
	}
	s.ready.Store(true)
	return s, nil
}

// Handler is the EHR's whole HTTP surface.
func (s *Server) Handler() http.Handler { return s.handler }

// Authz is the authorization server (tests and benchmarks use it).
func (s *Server) Authz() *authz.Server { return s.authz }

// Launches is the launch service.
func (s *Server) Launches() *launch.Service { return s.launches }

// DB is the database (tests count rows in it).
func (s *Server) DB() *gorm.DB { return s.db }

// Purge deletes expired grants, launches, interactions and client
// assertion jti values.
func (s *Server) Purge(ctx context.Context) error {
	return errors.Join(
		s.oauth.Purge(ctx),
		s.launches.Purge(ctx),
		s.authz.Purge(ctx),
		s.jtis.Purge(ctx, s.now()),
	)
}

// Maintain purges every interval until ctx ends.
func (s *Server) Maintain(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Purge(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("purge failed", "error", err)
			}
		}
	}
}

// Close releases the database.
func (s *Server) Close() error {
	s.ready.Store(false)
	return database.Close(s.db)
}
