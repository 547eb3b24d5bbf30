// Package chart is the mock EHR's clinician UI: a mock login (pick a
// practitioner), the patient list, a chart per patient with its coverage,
// encounters and orders, the "Launch DTR" button on orders whose Da Vinci
// CRD coverage-information says documentation is needed (SMART App Launch
// 2.2 "EHR launch"; DTR 2.0 launch context: the Coverage and the order in
// fhirContext), and the QuestionnaireResponses a DTR app wrote back.
//
// Pages are server-rendered from the shared templates (no script); state
// is a signed cookie; every form POST carries a CSRF token.
package chart

import (
	"bytes"
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"dtrsandbox/ehr/internal/directory"
	"dtrsandbox/ehr/internal/launch"
	"dtrsandbox/ehr/internal/records"
)

// DefaultClientID is the DTR app's client id at the EHR (CONTRACT.md:
// "the smartapp registered as client dtr-app").
const DefaultClientID = "dtr-app"

// DefaultSessionTTL is how long a clinician stays signed in.
const DefaultSessionTTL = 8 * time.Hour

// Records is what the chart reads (*records.Store).
type Records interface {
	directory.Directory
	Read(ctx context.Context, typ, id string) (*records.Record, error)
	Search(ctx context.Context, q *records.Query) (*records.Page, error)
}

var _ Records = (*records.Store)(nil)

// Launcher creates EHR launches (*launch.Service).
type Launcher interface {
	Create(ctx context.Context, req launch.Request) (*launch.Created, error)
}

// Config wires the chart.
type Config struct {
	Records  Records
	Launcher Launcher
	// Templates must hold "error.html" (shared layout) and the chart-*.html
	// pages: web.Templates("ehr", ...).
	Templates *template.Template
	// FHIRBase is the EHR's FHIR base URL (for reference parsing).
	FHIRBase string
	// ClientID is the client the Launch DTR button launches; DefaultClientID if "".
	ClientID string
	Logger   *slog.Logger
	// CookieKey signs the session cookie; at least 32 bytes of secret.
	CookieKey []byte
	// SessionTTL is DefaultSessionTTL if zero.
	SessionTTL time.Duration
}

// Handler serves the chart pages. Its methods are gin handlers for these
// routes:
//
//	GET  /                                 Patients
//	GET  /login                            LoginPage
//	POST /login                            Login
//	POST /logout                           Logout
//	GET  /patients/:id                     Chart
//	POST /patients/:id/launch              LaunchDTR
//	GET  /patients/:id/responses/:rid      Response
//
// and it needs /static/ served from web.Static() for its stylesheet.
type Handler struct {
	records  Records
	launcher Launcher
	tmpl     *template.Template
	fhirBase string
	clientID string
	log      *slog.Logger
	sessions *signer
	now      func() time.Time
}

var pages = []string{"chart-login.html", "chart-patients.html", "chart-patient.html", "chart-response.html", "error.html"}

// New checks cfg (every page template present, a long enough key) and
// builds the handler.
func New(cfg Config) (*Handler, error) {
	switch {
	case cfg.Records == nil:
		return nil, errors.New("chart: Config.Records is required")
	case cfg.Launcher == nil:
		return nil, errors.New("chart: Config.Launcher is required")
	case cfg.Templates == nil:
		return nil, errors.New("chart: Config.Templates is required")
	case len(cfg.CookieKey) < 32:
		return nil, errors.New("chart: Config.CookieKey must be at least 32 bytes")
	case cfg.FHIRBase == "":
		return nil, errors.New("chart: Config.FHIRBase is required")
	}
	for _, name := range pages {
		if cfg.Templates.Lookup(name) == nil {
			return nil, errors.New("chart: template " + name + " is missing")
		}
	}
	h := &Handler{
		records: cfg.Records, launcher: cfg.Launcher, tmpl: cfg.Templates,
		fhirBase: strings.TrimSuffix(cfg.FHIRBase, "/"), clientID: cfg.ClientID, log: cfg.Logger,
		now: time.Now,
	}
	if h.clientID == "" {
		h.clientID = DefaultClientID
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	ttl := cfg.SessionTTL
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	h.sessions = newSigner(cfg.CookieKey, ttl, func() time.Time { return h.now() })
	return h, nil
}

// page is what every chart template gets: the layout's Title, the signed-in
// clinician and the CSRF token for forms.
type page struct {
	Title string
	User  *directory.Person
	CSRF  string
}

// errorPage is the data of the shared "error.html".
type errorPage struct {
	Title, Message, Detail, Back string
}

// render executes name into a buffer first, so that a template failure
// never sends half a page.
func (h *Handler) render(c *gin.Context, status int, name string, data any) {
	var buf bytes.Buffer
	if err := h.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		h.log.ErrorContext(c.Request.Context(), "chart: render", "template", name, "error", err)
		if name != "error.html" {
			h.renderError(c, http.StatusInternalServerError, "Something went wrong", "The page could not be shown.", "/")
			return
		}
		c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("The page could not be shown."))
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Header("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// renderError answers a readable error page.
func (h *Handler) renderError(c *gin.Context, status int, title, message, back string) {
	h.render(c, status, "error.html", errorPage{Title: title, Message: message, Back: back})
	c.Abort()
}

// failInternal logs cause and answers a generic error page.
func (h *Handler) failInternal(c *gin.Context, what string, cause error) {
	h.log.ErrorContext(c.Request.Context(), "chart: "+what, "path", c.Request.URL.Path, "error", cause)
	h.renderError(c, http.StatusInternalServerError, "Something went wrong", "The EHR could not load this page. Try again.", "/")
}

// requireUser returns the signed-in clinician, or redirects to /login.
func (h *Handler) requireUser(c *gin.Context) (session, *directory.Person, bool) {
	sess, ok := h.sessions.current(c)
	if !ok || sess.Practitioner == "" {
		c.Redirect(http.StatusSeeOther, "/login")
		c.Abort()
		return session{}, nil, false
	}
	user, err := h.practitioner(c.Request.Context(), sess.Practitioner)
	if err != nil {
		h.failInternal(c, "load user", err)
		return session{}, nil, false
	}
	if user == nil { // the practitioner no longer exists
		h.sessions.clear(c)
		c.Redirect(http.StatusSeeOther, "/login")
		c.Abort()
		return session{}, nil, false
	}
	return sess, user, true
}

// practitioner finds one practitioner of the directory, nil if none.
func (h *Handler) practitioner(ctx context.Context, id string) (*directory.Person, error) {
	pracs, err := h.records.Practitioners(ctx)
	if err != nil {
		return nil, err
	}
	for i := range pracs {
		if pracs[i].ID == id {
			return &pracs[i], nil
		}
	}
	return nil, nil
}
