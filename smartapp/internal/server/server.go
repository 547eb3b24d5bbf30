// Package server is the app's HTTP surface: the SMART launch pages, the
// form page, the JSON API the page (or a headless demo with a cookie jar)
// drives, and the public key set. routes.go lists every route.
package server

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"dtrsandbox/shared/jwks"
	"dtrsandbox/smartapp/internal/discovery"
	"dtrsandbox/smartapp/internal/dtr"
	"dtrsandbox/smartapp/internal/ehr"
	"dtrsandbox/smartapp/internal/launch"
	"dtrsandbox/smartapp/internal/payer"
	"dtrsandbox/smartapp/internal/session"
	"dtrsandbox/smartapp/internal/signer"
	"dtrsandbox/web"
)

// Config of a Server. PublicURL, EHRs, PayerURL, PayerClientID, SigningKey
// and HTTP are required.
type Config struct {
	// PublicURL is the app's origin as browsers see it; the callback is
	// {PublicURL}/callback and the key set {PublicURL}/.well-known/jwks.json.
	PublicURL     string
	EHRs          []signer.EHR
	PayerURL      string
	PayerClientID string
	// SigningKey is the app's ES384 key; only the signer holds it.
	SigningKey *jwks.SigningKey
	// HTTP is the outbound client (trusting the sandbox CA).
	HTTP *http.Client
	// SecureCookies marks the session cookie Secure (and names it with the
	// __Host- prefix); on whenever the app is served over TLS.
	SecureCookies bool
	// AllowHTTPKeys lets the JWK Set cache fetch http:// key sets on
	// non-loopback hosts (SANDBOX_TLS=off across containers).
	AllowHTTPKeys bool
	Logger        *slog.Logger
	Now           func() time.Time
}

// Server is the app. It is safe for concurrent use.
type Server struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	origin   string
	tmpl     *template.Template
	sessions *session.Store
	signer   *signer.Signer
	launcher *launch.Launcher
	flow     *dtr.Service
	payer    *payer.Client
	cookie   string
	handler  http.Handler
}

// New wires the app: discovery cache, JWK Set cache, the vendor signer, the
// launcher, the payer and EHR clients, the form flow, sessions and routes.
// It makes no network call, so it works before the EHR and the payer are up.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.PublicURL == "" || len(cfg.EHRs) == 0 || cfg.PayerURL == "" || cfg.PayerClientID == "" || cfg.SigningKey == nil || cfg.HTTP == nil {
		return nil, errors.New("server: PublicURL, EHRs, PayerURL, PayerClientID, SigningKey and HTTP are required")
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, errors.New("server: PublicURL must be an absolute http(s) URL")
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Now, origin: u.Scheme + "://" + u.Host}
	s.cookie = "dtr_session"
	if cfg.SecureCookies {
		s.cookie = "__Host-dtr_session"
	}

	disc := discovery.New(discovery.Config{HTTP: cfg.HTTP, Now: cfg.Now})
	keys := jwks.NewRemote(cfg.HTTP, jwks.RemoteOptions{AllowHTTP: cfg.AllowHTTPKeys, Now: cfg.Now})
	s.signer, err = signer.New(signer.Config{
		Key: cfg.SigningKey, EHRs: cfg.EHRs,
		PayerFHIRBase: cfg.PayerURL, PayerClientID: cfg.PayerClientID,
		Discovery: disc, Keys: keys, Now: cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	s.launcher, err = launch.New(launch.Config{
		RedirectURI: cfg.PublicURL + "/callback", EHRs: cfg.EHRs,
		Discovery: disc, Signer: s.signer, Keys: keys, HTTP: cfg.HTTP, Now: cfg.Now, Log: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	s.payer, err = payer.New(payer.Config{FHIRBase: cfg.PayerURL, HTTP: cfg.HTTP, Signer: s.signer, Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	s.flow = &dtr.Service{Payer: s.payer, EHR: ehr.New(cfg.HTTP, cfg.Now), Now: cfg.Now}
	s.sessions = session.NewStore(cfg.Now)
	s.tmpl, err = web.Templates("smartapp", template.FuncMap{})
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"home.html", "app.html", "error.html"} {
		if s.tmpl.Lookup(name) == nil {
			return nil, errors.New("server: template " + name + " is missing")
		}
	}
	s.handler = s.routes()
	_ = ctx // nothing runs in the background: sessions are swept on insert
	return s, nil
}

// Handler is the app's whole HTTP surface.
func (s *Server) Handler() http.Handler { return s.handler }

// Sessions exposes the session store (tests, health).
func (s *Server) Sessions() *session.Store { return s.sessions }
