// Package server assembles the payer: database, keys, stores, the
// trusted-EHR registry and its watcher, the authorization server, the gate
// and the data handlers, behind one http.Handler (see routes.go for the
// whole HTTP surface). It is constructible in-process so cross-service
// tests can run a payer without a binary.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"dtrsandbox/payer/internal/audit"
	"dtrsandbox/payer/internal/authz"
	"dtrsandbox/payer/internal/capability"
	"dtrsandbox/payer/internal/console"
	"dtrsandbox/payer/internal/documents"
	"dtrsandbox/payer/internal/gate"
	"dtrsandbox/payer/internal/questionnaires"
	"dtrsandbox/payer/internal/trust"
	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/database"
	"dtrsandbox/shared/jwks"
)

// Config of a payer. PublicURL, DataDir and TrustedEHRsPath are required.
type Config struct {
	// PublicURL is the payer's base URL as callers see it
	// (PAYER_PUBLIC_URL), without a trailing slash.
	PublicURL string
	// DataDir is the sandbox data directory; the payer keeps its keys in
	// {DataDir}/payer/keys, its SQLite file at {DataDir}/payer/payer.db
	// and a generated admin token at {DataDir}/payer/admin-token.
	DataDir string
	// DatabaseURL selects PostgreSQL (PAYER_DATABASE_URL); empty: SQLite.
	DatabaseURL string
	// TrustedEHRsPath is the trusted-EHR registry file (PAYER_TRUSTED_EHRS).
	TrustedEHRsPath string
	// RegistrationOpen enables RFC 7591 registration (PAYER_REGISTRATION).
	RegistrationOpen bool
	// AdminToken (PAYER_ADMIN_TOKEN); empty: generated into the data dir.
	AdminToken string
	// SmartAppURL is where the seeded dtr-app client lives
	// (PAYER_SMARTAPP_URL); its jwks_uri is {SmartAppURL}/.well-known/jwks.json.
	SmartAppURL string
	// EHRIssuer is the issuer in dtr-app's seeded ehr_client_ids
	// (PAYER_EHR_ISSUER).
	EHRIssuer string
	// IntrospectionCacheTTL (PAYER_INTROSPECTION_CACHE_TTL, 30s).
	IntrospectionCacheTTL time.Duration
	// RateLimit per client per second (PAYER_RATE_LIMIT, 20; negative: off).
	RateLimit float64
	// HTTPClient makes outbound calls (EHR discovery, JWKS, introspection,
	// client jwks_uri); it should trust the sandbox CA.
	HTTPClient *http.Client
	// AllowHTTP accepts plain-http jwks_uri values off loopback
	// (SANDBOX_TLS=off across containers).
	AllowHTTP bool
	// RegistryPollInterval is how often the registry file is checked (1s).
	RegistryPollInterval time.Duration
	Logger               *slog.Logger
}

// DefaultIntrospectionCacheTTL is PAYER_INTROSPECTION_CACHE_TTL's default.
const DefaultIntrospectionCacheTTL = 30 * time.Second

// SeedClientID is the seeded SMART app client (CONTRACT.md).
const SeedClientID = "dtr-app"

// Server is one assembled payer.
type Server struct {
	handler        http.Handler
	db             *gorm.DB
	adminTokenPath string
	ready          atomic.Bool

	// The two token verifiers, for tests and benchmarks that count
	// signature checks and introspection calls.
	payerTokens *authz.AccessTokenVerifier
	ehrTokens   *trust.Validator

	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// deps are the parts routes.go wires together.
type deps struct {
	log        *slog.Logger
	keys       *authz.Keys
	authz      *authz.Server
	gate       *gate.Gate
	auditStore *audit.Store
	auditH     *audit.Handler
	docs       *documents.Handler
	quest      *questionnaires.Handler
	metadata   gin.HandlerFunc
	console    *console.Console
	adminToken string
	ready      func() bool
}

// New builds a payer. Background work (registry watcher, expiry purges)
// runs until Close or until ctx is done.
func New(ctx context.Context, cfg Config) (s *Server, err error) {
	if cfg.PublicURL == "" || cfg.DataDir == "" || cfg.TrustedEHRsPath == "" {
		return nil, errors.New("server: PublicURL, DataDir and TrustedEHRsPath are required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	payerDir := filepath.Join(cfg.DataDir, "payer")
	fhirBase := cfg.PublicURL + authz.FHIRPath

	snap, err := trust.Load(cfg.TrustedEHRsPath)
	if err != nil {
		return nil, fmt.Errorf("server: trusted-EHR registry: %w", err)
	}
	registry := trust.NewRegistry(snap)
	log.Info("trusted EHR registry loaded", "path", cfg.TrustedEHRsPath, "issuers", snap.Issuers())

	keys, err := authz.LoadKeys(filepath.Join(payerDir, "keys"))
	if err != nil {
		return nil, err
	}
	db, err := database.Open(ctx, database.Config{
		URL: cfg.DatabaseURL, SQLitePath: filepath.Join(payerDir, "payer.db"), Logger: log,
	})
	if err != nil {
		return nil, err
	}
	s = &Server{db: db}
	defer func() {
		if err != nil {
			_ = database.Close(db)
		}
	}()

	clients, err := authz.NewClientStore(db)
	if err != nil {
		return nil, err
	}
	tokens, err := authz.NewTokenLog(db)
	if err != nil {
		return nil, err
	}
	jtis, err := clientauth.NewGormJTIStore(db)
	if err != nil {
		return nil, err
	}
	auditStore, err := audit.NewStore(db, audit.StoreConfig{Source: fhirBase})
	if err != nil {
		return nil, err
	}
	if err := seed(ctx, clients, cfg, registry, log); err != nil {
		return nil, err
	}

	adminToken, adminPath := cfg.AdminToken, ""
	if adminToken == "" {
		adminPath = filepath.Join(payerDir, "admin-token")
		if adminToken, err = audit.LoadOrCreateAdminToken(adminPath); err != nil {
			return nil, err
		}
	}
	s.adminTokenPath = adminPath

	remoteOpts := jwks.RemoteOptions{AllowHTTP: cfg.AllowHTTP}
	az, err := authz.New(authz.Config{
		PublicURL: cfg.PublicURL, Clients: clients, Tokens: tokens, Keys: keys,
		ClientKeys: jwks.NewRemote(cfg.HTTPClient, remoteOpts), JTIs: jtis,
		Trusted: registry, RegistrationOpen: cfg.RegistrationOpen, AllowHTTPJWKSURI: cfg.AllowHTTP,
		Audit: auditStore, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	validator, err := trust.NewValidator(trust.Config{
		Registry: registry, HTTPClient: cfg.HTTPClient, Keys: jwks.NewRemote(cfg.HTTPClient, remoteOpts),
		AssertionKey: keys.Assertion, IntrospectionTTL: cfg.IntrospectionCacheTTL, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	g, err := gate.New(gate.Config{
		PayerTokens: az.AccessTokens(), EHRTokens: validator, Bindings: clients, EHRBases: registry,
		Audit: auditStore, RateLimit: cfg.RateLimit, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	auditH, err := audit.NewHandler(audit.HandlerConfig{Store: auditStore, Base: fhirBase, Logger: log})
	if err != nil {
		return nil, err
	}
	docStore, err := documents.NewStore(db)
	if err != nil {
		return nil, err
	}
	docs, err := documents.NewHandler(documents.Config{Store: docStore, Audit: auditStore, Base: fhirBase, Logger: log})
	if err != nil {
		return nil, err
	}
	quest, err := questionnaires.New(questionnaires.Config{Audit: auditStore, Base: fhirBase, Logger: log})
	if err != nil {
		return nil, err
	}
	cons, err := console.New(console.Config{
		Documents: docStore, Audit: auditStore, AdminToken: adminToken, PublicOrigin: cfg.PublicURL, Logger: log,
	})
	if err != nil {
		return nil, err
	}

	metadata, err := capability.Handler(capability.Config{
		FHIRBase: fhirBase, TokenURL: cfg.PublicURL + authz.TokenPath,
		RegistrationURL: cfg.PublicURL + authz.RegistrationPath, SMARTConfigURL: cfg.PublicURL + authz.DiscoveryPath,
	})
	if err != nil {
		return nil, err
	}
	s.payerTokens, s.ehrTokens = az.AccessTokens(), validator
	s.handler = routes(&deps{
		log: log, keys: keys, authz: az, gate: g, metadata: metadata,
		auditStore: auditStore, auditH: auditH, docs: docs, quest: quest, console: cons, adminToken: adminToken,
		ready: s.ready.Load,
	})

	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	watcher := trust.NewWatcher(cfg.TrustedEHRsPath, registry, log)
	if cfg.RegistryPollInterval > 0 {
		watcher.Interval = cfg.RegistryPollInterval
	}
	s.wg.Add(2)
	go func() { defer s.wg.Done(); watcher.Run(bg) }()
	go func() { defer s.wg.Done(); purge(bg, jtis, tokens, log) }()
	go func() {
		select {
		case <-ctx.Done():
			cancel()
		case <-bg.Done():
		}
	}()
	s.ready.Store(true)
	return s, nil
}

// seed creates or refreshes the dtr-app client (CONTRACT.md "Seeded:
// dtr-app, with the smartapp's jwks_uri and its EHR client id").
func seed(ctx context.Context, clients *authz.ClientStore, cfg Config, reg *trust.Registry, log *slog.Logger) error {
	if cfg.SmartAppURL == "" || cfg.EHRIssuer == "" {
		return errors.New("server: SmartAppURL and EHRIssuer are required for the seeded dtr-app client")
	}
	if !reg.Trusted(cfg.EHRIssuer) {
		log.Warn("the seeded dtr-app's EHR issuer is not in the trusted-EHR registry; its EHR tokens will be refused until it is",
			"issuer", cfg.EHRIssuer, "registry", cfg.TrustedEHRsPath)
	}
	c := &authz.Client{
		ID: SeedClientID, Name: "Sandbox DTR app", JWKSURI: cfg.SmartAppURL + "/.well-known/jwks.json",
		AuthMethod: clientauth.AuthMethodPrivateKeyJWT, SigningAlg: jwks.ES384,
		Scope:      "system/Questionnaire.rs system/DocumentReference.cruds system/QuestionnaireResponse.cruds",
		GrantTypes: []string{authz.GrantClientCredentials}, EHRClientIDs: map[string]string{cfg.EHRIssuer: SeedClientID},
		IssuedAt: time.Now().UTC().Truncate(time.Second),
	}
	if err := clients.Seed(ctx, c); err != nil {
		return fmt.Errorf("server: seed %s: %w", SeedClientID, err)
	}
	return nil
}

// purge drops expired jti records and token records every ten minutes.
func purge(ctx context.Context, jtis *clientauth.GormJTIStore, tokens *authz.TokenLog, log *slog.Logger) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := time.Now()
			if err := jtis.Purge(ctx, now); err != nil && ctx.Err() == nil {
				log.Warn("purge of used client-assertion jti values failed", "err", err)
			}
			if err := tokens.Purge(ctx, now.Add(-time.Hour)); err != nil && ctx.Err() == nil {
				log.Warn("purge of issued-token records failed", "err", err)
			}
		}
	}
}

// Handler is the payer's whole HTTP surface.
func (s *Server) Handler() http.Handler { return s.handler }

// AdminTokenPath is the file holding the generated admin token, or ""
// when PAYER_ADMIN_TOKEN was given.
func (s *Server) AdminTokenPath() string { return s.adminTokenPath }

// DB is the payer's database (for tests).
func (s *Server) DB() *gorm.DB { return s.db }

// Close stops background work and closes the database. Call it after the
// HTTP server has finished its in-flight requests.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		s.ready.Store(false)
		s.cancel()
		s.wg.Wait()
		err = database.Close(s.db)
	})
	return err
}
