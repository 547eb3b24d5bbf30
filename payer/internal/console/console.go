// Package console is the payer's admin console: a sign-in with the admin
// token, then server-rendered pages listing the stored DTR documents and
// the audit trail. It is not open to the world: every page without a valid
// session redirects to the sign-in page.
//
// Security: the session cookie is HttpOnly, Secure, SameSite=Strict and
// __Host- prefixed, signed with a key derived from the admin token; POSTs
// (sign-in, sign-out) must come from the console's own origin (Origin or
// Sec-Fetch-Site), and sign-out also carries a per-session CSRF token.
// Sign-in failures are throttled. Pages are no-store with a strict CSP.
// Every page view and sign-in attempt is recorded as an AuditEvent.
//
// Routes (outside the FHIR gate; the console authenticates itself):
//
//	GET  /console            h.Index      (redirects)
//	GET  /console/login      h.LoginForm
//	POST /console/login      h.Login
//	POST /console/logout     h.Logout
//	GET  /console/documents  h.Documents
//	GET  /console/audit      h.AuditTrail
//
// with h, err := console.New(console.Config{Documents: docStore, Audit: auditStore, AdminToken: token, Logger: log}).
// The pages use /static/css/sandbox.css (web.Static()).
package console

import (
	"bytes"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"dtrsandbox/payer/internal/audit"
	"dtrsandbox/payer/internal/documents"
	"dtrsandbox/web"

	"github.com/gin-gonic/gin"
)

// Config configures the console.
type Config struct {
	Documents *documents.Store
	Audit     *audit.Store
	// AdminToken is the token that signs in (PAYER_ADMIN_TOKEN or the
	// generated one). Empty refuses every sign-in.
	AdminToken string
	// PublicOrigin is the payer's public origin (https://localhost:8443),
	// which POSTs must come from; empty compares with the request's Host.
	PublicOrigin string
	Logger       *slog.Logger
	// Templates overrides the parsed templates (tests); nil parses
	// web.Templates("payer").
	Templates  *template.Template
	SessionTTL time.Duration // default 8 hours
	Now        func() time.Time
}

// Console serves the admin pages.
type Console struct {
	docs     *documents.Store
	audit    *audit.Store
	token    string
	origin   string
	log      *slog.Logger
	tmpl     *template.Template
	sessions *sessions
	limiter  *limiter
	now      func() time.Time
}

// Pages.
const (
	pathLogin     = "/console/login"
	pathDocuments = "/console/documents"
)

// New checks cfg and returns the console.
func New(cfg Config) (*Console, error) {
	if cfg.Documents == nil || cfg.Audit == nil {
		return nil, errors.New("console: needs the document and audit stores")
	}
	h := &Console{docs: cfg.Documents, audit: cfg.Audit, token: cfg.AdminToken, log: cfg.Logger,
		tmpl: cfg.Templates, now: cfg.Now, limiter: newLimiter(10, time.Minute, 10000)}
	if cfg.PublicOrigin != "" {
		u, err := url.Parse(cfg.PublicOrigin)
		if err != nil || u.Host == "" {
			return nil, errors.New("console: PublicOrigin must be an absolute URL")
		}
		h.origin = u.Scheme + "://" + u.Host
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.tmpl == nil {
		t, err := web.Templates("payer", Funcs())
		if err != nil {
			return nil, err
		}
		h.tmpl = t
	}
	for _, name := range []string{"console_login.html", "console_documents.html", "console_audit.html"} {
		if h.tmpl.Lookup(name) == nil {
			return nil, errors.New("console: template " + name + " missing")
		}
	}
	ttl := cfg.SessionTTL
	if ttl <= 0 {
		ttl = 8 * time.Hour
	}
	h.sessions = newSessions(cfg.AdminToken, ttl, h.now)
	return h, nil
}

// Funcs are the template functions the console pages use.
func Funcs() template.FuncMap {
	return template.FuncMap{
		"when":         func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
		"outcomeLabel": audit.OutcomeLabel,
	}
}

// render writes a page with the console's security headers.
func (h *Console) render(c *gin.Context, status int, name string, data any) {
	var buf bytes.Buffer
	if err := h.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		h.log.Error("console: render", "template", name, "err", err)
		c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("the page could not be rendered"))
		return
	}
	hd := c.Writer.Header()
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// current returns the request's valid session, or nil.
func (h *Console) current(c *gin.Context) *session {
	ck, err := c.Request.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	ss, err := h.sessions.check(ck.Value)
	if err != nil {
		return nil
	}
	return ss
}

// requireSession returns the session or redirects to the sign-in page.
func (h *Console) requireSession(c *gin.Context) *session {
	ss := h.current(c)
	if ss == nil {
		c.Header("Cache-Control", "no-store")
		c.Redirect(http.StatusSeeOther, pathLogin)
	}
	return ss
}

// sameOrigin rejects cross-site POSTs (CSRF): the Origin header, when
// present, must be the console's origin; Sec-Fetch-Site, when present,
// must be same-origin. A POST with neither (old clients, curl) is allowed:
// the SameSite=Strict cookie and the CSRF token still apply.
func (h *Console) sameOrigin(c *gin.Context) bool {
	if site := c.GetHeader("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return false
	}
	o := c.GetHeader("Origin")
	if o == "" {
		return true
	}
	if h.origin != "" {
		return o == h.origin
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == c.Request.Host
}

func (h *Console) record(c *gin.Context, ev audit.Event) bool {
	ev.Time, ev.ClientID, ev.SourceIP = h.now(), audit.AdminPrincipal, c.RemoteIP()
	if err := h.audit.Record(c.Request.Context(), nil, ev); err != nil {
		h.log.Error("console: audit record failed", "err", err)
		c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("the request could not be recorded"))
		return false
	}
	return true
}

// ---- pages ----

type page struct {
	Title string
	CSRF  string
	Error string
}

// Index redirects to the documents page, or to sign-in.
func (h *Console) Index(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	if h.current(c) != nil {
		c.Redirect(http.StatusSeeOther, pathDocuments)
		return
	}
	c.Redirect(http.StatusSeeOther, pathLogin)
}

// LoginForm shows the sign-in form.
func (h *Console) LoginForm(c *gin.Context) {
	if h.current(c) != nil {
		c.Header("Cache-Control", "no-store")
		c.Redirect(http.StatusSeeOther, pathDocuments)
		return
	}
	h.render(c, http.StatusOK, "console_login.html", page{Title: "Payer console: sign in"})
}

// Login checks the admin token (constant time) and starts a session.
func (h *Console) Login(c *gin.Context) {
	ev := audit.Event{Action: "E", Interaction: "login", ResourceType: ""}
	fail := func(status int, msg, reason string) {
		ev.Outcome, ev.Reason, ev.Status = audit.OutcomeMinorFailure, reason, status
		if !h.record(c, ev) {
			return
		}
		h.render(c, status, "console_login.html", page{Title: "Payer console: sign in", Error: msg})
	}
	if !h.sameOrigin(c) {
		fail(http.StatusForbidden, "Sign in from the console page.", "console sign-in from another origin")
		return
	}
	now := h.now()
	addr := c.ClientIP() // the socket peer: the engine trusts no proxy header
	if h.limiter.blocked(addr, now) {
		c.Header("Retry-After", "60")
		fail(http.StatusTooManyRequests, "Too many failed sign-ins; wait a minute.", "console sign-in throttled")
		return
	}
	if c.Request.ContentLength > maxFormBody {
		fail(http.StatusRequestEntityTooLarge, "The sign-in form is too large.", "console sign-in form too large")
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxFormBody)
	token := strings.TrimSpace(c.PostForm("token"))
	if !audit.TokenEqual(token, h.token) {
		h.limiter.fail(addr, now)
		fail(http.StatusUnauthorized, "That is not the admin token.", "console sign-in with a wrong admin token")
		return
	}
	tok, err := h.sessions.issue()
	if err != nil {
		h.log.Error("console: session", "err", err)
		c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("sign-in failed"))
		return
	}
	ev.Outcome, ev.Status = audit.OutcomeSuccess, http.StatusSeeOther
	if !h.record(c, ev) {
		return
	}
	http.SetCookie(c.Writer, &http.Cookie{
		Name: sessionCookie, Value: tok, Path: "/", MaxAge: int(h.sessions.ttl.Seconds()),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode,
	})
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusSeeOther, pathDocuments)
}

// Logout ends the session (POST with the session's CSRF token).
func (h *Console) Logout(c *gin.Context) {
	ss := h.requireSession(c)
	if ss == nil {
		return
	}
	if c.Request.ContentLength <= maxFormBody {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxFormBody)
	} else {
		c.Request.Body = http.NoBody // an oversized form carries no CSRF token
	}
	if !h.sameOrigin(c) || !h.sessions.checkCSRF(ss, c.PostForm("csrf")) {
		ev := audit.Event{Action: "E", Interaction: "logout", Outcome: audit.OutcomeMinorFailure,
			Reason: "console sign-out without a valid CSRF token", Status: http.StatusForbidden}
		if h.record(c, ev) {
			c.Data(http.StatusForbidden, "text/plain; charset=utf-8", []byte("forbidden"))
		}
		return
	}
	h.sessions.revoke(ss)
	if !h.record(c, audit.Event{Action: "E", Interaction: "logout", Outcome: audit.OutcomeSuccess, Status: http.StatusSeeOther}) {
		return
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusSeeOther, pathLogin)
}

// maxFormBody caps the console's form bodies.
const maxFormBody = 4096

// pageSize of the lists.
const pageSize = 100

func offsetParam(c *gin.Context) int {
	n, err := strconv.Atoi(c.Query("offset"))
	if err != nil || n < 0 || n > 1_000_000 {
		return 0
	}
	return n
}

type documentsPage struct {
	page
	Patient, Type string
	Rows          []*documents.Document
	Total         int64
	Offset        int
	Next, Prev    string
}

// Documents lists the stored documents of every patient, newest first,
// filterable by patient and resource type.
func (h *Console) Documents(c *gin.Context) {
	ss := h.requireSession(c)
	if ss == nil {
		return
	}
	f := documents.AdminFilter{Patient: filterText(c.Query("patient")), Limit: pageSize, Offset: offsetParam(c)}
	switch t := c.Query("type"); t {
	case documents.TypeDocumentReference, documents.TypeQuestionnaireResponse:
		f.ResourceType = t
	}
	rows, total, err := h.docs.AdminList(c.Request.Context(), f)
	if err != nil {
		h.log.Error("console: documents", "err", err)
		c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("the documents could not be listed"))
		return
	}
	ev := audit.Event{Action: "R", Interaction: "search-type", ResourceType: "DocumentReference",
		Patient: f.Patient, Outcome: audit.OutcomeSuccess, Status: http.StatusOK, Query: "console " + c.Request.URL.RawQuery}
	if !h.record(c, ev) {
		return
	}
	data := documentsPage{page: page{Title: "Payer console: documents", CSRF: h.sessions.csrf(ss)},
		Patient: f.Patient, Type: f.ResourceType, Rows: rows, Total: total, Offset: f.Offset}
	data.Prev, data.Next = pager(c, f.Offset, len(rows), total)
	h.render(c, http.StatusOK, "console_documents.html", data)
}

type auditPage struct {
	page
	Patient, Outcome string
	Rows             []audit.Entry
	Total            int64
	Next, Prev       string
}

// AuditTrail lists AuditEvents, newest first, filterable by patient and
// outcome (success or failure).
func (h *Console) AuditTrail(c *gin.Context) {
	ss := h.requireSession(c)
	if ss == nil {
		return
	}
	patient := filterText(c.Query("patient"))
	outcome := c.Query("outcome")
	f := audit.Filter{Count: pageSize, Offset: offsetParam(c)}
	if patient != "" {
		f.Patient = []string{patient}
	}
	switch outcome {
	case "success":
		f.Outcome = []string{audit.OutcomeSuccess}
	case "failure":
		f.Outcome = []string{audit.OutcomeMinorFailure, audit.OutcomeSeriousFail, audit.OutcomeMajorFailure}
	default:
		outcome = ""
	}
	rows, total, err := h.audit.Search(c.Request.Context(), f)
	if err != nil {
		h.log.Error("console: audit", "err", err)
		c.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("the audit trail could not be listed"))
		return
	}
	ev := audit.Event{Action: "R", Interaction: "search-type", ResourceType: "AuditEvent",
		Patient: patient, Outcome: audit.OutcomeSuccess, Status: http.StatusOK, Query: "console " + c.Request.URL.RawQuery}
	if !h.record(c, ev) {
		return
	}
	data := auditPage{page: page{Title: "Payer console: audit trail", CSRF: h.sessions.csrf(ss)},
		Patient: patient, Outcome: outcome, Rows: rows, Total: total}
	data.Prev, data.Next = pager(c, f.Offset, len(rows), total)
	h.render(c, http.StatusOK, "console_audit.html", data)
}

// filterText is a filter value as the stores can bind it: trimmed, valid
// UTF-8, no NUL (PostgreSQL refuses those as text), at most 512 bytes.
func filterText(v string) string {
	v = strings.TrimSpace(strings.ReplaceAll(strings.ToValidUTF8(v, "\uFFFD"), "\x00", "\uFFFD"))
	if len(v) > 512 {
		v = strings.ToValidUTF8(v[:512], "")
	}
	return v
}

// pager returns the previous and next page URLs ("" when none).
func pager(c *gin.Context, offset, n int, total int64) (prev, next string) {
	q := c.Request.URL.Query()
	if offset > 0 {
		q.Set("offset", strconv.Itoa(max(0, offset-pageSize)))
		prev = c.Request.URL.Path + "?" + q.Encode()
	}
	if int64(offset+n) < total {
		q.Set("offset", strconv.Itoa(offset+n))
		next = c.Request.URL.Path + "?" + q.Encode()
	}
	return prev, next
}
