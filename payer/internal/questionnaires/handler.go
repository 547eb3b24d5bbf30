package questionnaires

import (
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"dtrsandbox/payer/internal/access"
	"dtrsandbox/payer/internal/audit"
	"dtrsandbox/payer/internal/documents/searchparam"
	"dtrsandbox/shared/fhir"
	"dtrsandbox/shared/smart"

	"github.com/gin-gonic/gin"
)

// Routes served by this package (put them in payer/internal/server/routes.go,
// behind the gate's middleware: payer token required, EHR token optional):
//
//	GET  /fhir/Questionnaire                         h.Search
//	POST /fhir/Questionnaire/_search                 h.Search   (application/x-www-form-urlencoded)
//	POST /fhir/Questionnaire/$questionnaire-package  h.Package
//	GET  /fhir/Questionnaire/:id                     h.Read
//
// with h, err := questionnaires.New(questionnaires.Config{Audit: auditStore, Base: fhirBase, Logger: log}).
// gin matches the literal "$questionnaire-package" segment before ":id"
// only for POST; GET /fhir/Questionnaire/$questionnaire-package reaches
// Read and answers 404.

// Config configures the Questionnaire handlers.
type Config struct {
	Audit  audit.Recorder
	Base   string // the payer's FHIR base URL
	Logger *slog.Logger
	// Seeds overrides the embedded questionnaires (tests); nil uses Seeds().
	Seeds fs.FS
	// MaxBody caps $questionnaire-package bodies (default 1 MiB).
	MaxBody int64
	Now     func() time.Time
}

// Handler serves Questionnaire read, search and $questionnaire-package.
type Handler struct {
	catalog *Catalog
	audit   audit.Recorder
	base    string
	log     *slog.Logger
	maxBody int64
	now     func() time.Time
}

// New loads the catalog and returns the handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Audit == nil {
		return nil, errors.New("questionnaires: needs an audit Recorder")
	}
	if cfg.Base == "" {
		return nil, errors.New("questionnaires: needs the FHIR base URL")
	}
	seeds := cfg.Seeds
	if seeds == nil {
		seeds = Seeds()
	}
	cat, err := LoadCatalog(seeds)
	if err != nil {
		return nil, err
	}
	h := &Handler{catalog: cat, audit: cfg.Audit, base: strings.TrimSuffix(cfg.Base, "/"),
		log: cfg.Logger, maxBody: cfg.MaxBody, now: cfg.Now}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.maxBody <= 0 {
		h.maxBody = 1 << 20
	}
	if h.now == nil {
		h.now = time.Now
	}
	return h, nil
}

// Catalog returns the loaded questionnaires.
func (h *Handler) Catalog() *Catalog { return h.catalog }

// failure is a refused request: status, issue code, hint for the caller,
// reason for the audit trail.
type failure struct {
	status        int
	code, hint    string
	reason        string
	wwwAuthBearer bool
}

type request struct {
	c  *gin.Context
	p  *access.Principal
	ev audit.Event
}

// begin builds the AuditEvent skeleton and refuses (401) a request without
// a verified payer token, or with an EHR token but no usable launch
// patient, and (403) one whose payer token does not grant perm on
// Questionnaire.
func (h *Handler) begin(c *gin.Context, interaction, action string, perm smart.Perm) (*request, bool) {
	r := &request{c: c, p: access.From(c.Request.Context())}
	r.ev = audit.Event{Time: h.now(), Action: action, Interaction: interaction, ResourceType: "Questionnaire",
		Query: c.Request.URL.RawQuery, SourceIP: c.RemoteIP()}
	if id := c.Param("id"); fhir.ValidID(id) {
		r.ev.ResourceID = id
	}
	p := r.p
	r.ev.SetCaller(p)
	reason := ""
	switch {
	case p == nil:
		reason = "no verified caller"
	case p.ClientID == "":
		reason = "no payer client"
	case p.EHR != nil:
		if base, typ, _, ok := fhir.ParseReference(p.Patient); !ok || base == "" || typ != "Patient" {
			reason = "EHR token without a usable launch patient"
		}
	}
	if reason != "" {
		h.refuse(r, failure{status: http.StatusUnauthorized, code: fhir.IssueLogin,
			hint: "this request needs a payer access token", reason: reason, wwwAuthBearer: true})
		return nil, false
	}
	if _, ok := p.PayerScopes.Grant("Questionnaire", perm); !ok {
		h.refuse(r, failure{status: http.StatusForbidden, code: fhir.IssueForbidden,
			hint: "the payer access token does not grant " + perm.String() + " on Questionnaire", reason: "payer token lacks Questionnaire." + perm.String()})
		return nil, false
	}
	return r, true
}

// refuse records and answers a refusal; an unrecorded refusal is a 500.
func (h *Handler) refuse(r *request, f failure) {
	r.ev.Outcome, r.ev.Reason, r.ev.Status = audit.OutcomeMinorFailure, f.reason, f.status
	if f.status >= 500 {
		r.ev.Outcome = audit.OutcomeSeriousFail
	}
	if !h.record(r) {
		return
	}
	if f.wwwAuthBearer {
		r.c.Header("WWW-Authenticate", `Bearer realm="payer"`)
	}
	fhir.WriteOutcome(r.c.Writer, f.status, f.code, f.hint)
}

func (h *Handler) record(r *request) bool {
	if err := h.audit.Record(r.c.Request.Context(), nil, r.ev); err != nil {
		h.log.Error("questionnaires: audit record failed", "err", err)
		fhir.WriteOutcome(r.c.Writer, http.StatusInternalServerError, fhir.IssueException, "the request could not be completed")
		return false
	}
	return true
}

// succeed records success and answers.
func (h *Handler) succeed(r *request, status int, write func()) {
	r.ev.Outcome, r.ev.Status = audit.OutcomeSuccess, status
	if !h.record(r) {
		return
	}
	write()
}

// Read handles GET {fhir}/Questionnaire/{id} (R4 http.html#read).
func (h *Handler) Read(c *gin.Context) {
	r, ok := h.begin(c, "read", "R", smart.PermRead)
	if !ok {
		return
	}
	e := h.catalog.byID[c.Param("id")]
	if e == nil {
		h.refuse(r, failure{status: http.StatusNotFound, code: fhir.IssueNotFound, hint: "no such resource", reason: "no such questionnaire"})
		return
	}
	h.succeed(r, http.StatusOK, func() {
		if e.q.Meta != nil && e.q.Meta.VersionID != "" {
			c.Header("ETag", `W/"`+e.q.Meta.VersionID+`"`)
		}
		fhir.WriteResource(c.Writer, http.StatusOK, e.raw)
	})
}

// searchFailure is a bad Questionnaire search.
type searchFailure struct{ code, hint string }

func (e *searchFailure) Error() string { return e.hint }

// Search handles GET {fhir}/Questionnaire and POST _search (R4
// questionnaire.html#search): url (exact, optionally url|version),
// version, status, name and title (string: case-insensitive prefix, or
// :exact / :contains), _id, _count, _summary=count, _total. Other
// parameters, modifiers and chains are 400 not-supported.
func (h *Handler) Search(c *gin.Context) {
	r, ok := h.begin(c, "search-type", "R", smart.PermSearch)
	if !ok {
		return
	}
	params, err := url.ParseQuery(c.Request.URL.RawQuery)
	if err == nil && c.Request.Method == http.MethodPost {
		var form url.Values
		form, err = h.readForm(c)
		for k, vs := range form {
			params[k] = append(params[k], vs...)
		}
	}
	if err != nil {
		h.refuse(r, failure{status: http.StatusBadRequest, code: fhir.IssueInvalid, hint: "the search parameters are not valid URL encoding", reason: "bad search: encoding"})
		return
	}
	r.ev.Query = params.Encode()
	matches, count, summary, total, err := h.search(params)
	if err != nil {
		sf := &searchFailure{code: fhir.IssueInvalid, hint: "bad search"}
		errors.As(err, &sf)
		h.refuse(r, failure{status: http.StatusBadRequest, code: sf.code, hint: sf.hint, reason: "bad search: " + sf.hint})
		return
	}
	b := &fhir.Bundle{ResourceType: "Bundle", Type: "searchset", Timestamp: h.now().UTC().Format(time.RFC3339)}
	if total {
		n := len(matches)
		b.Total = &n
	}
	self := h.base + "/Questionnaire"
	if enc := params.Encode(); enc != "" {
		self += "?" + enc
	}
	b.Link = []fhir.BundleLink{{Relation: "self", URL: self}}
	if !summary {
		for i, e := range matches {
			if i == count {
				break
			}
			b.Entry = append(b.Entry, fhir.BundleEntry{
				FullURL: h.base + "/Questionnaire/" + e.q.ID, Resource: json.RawMessage(e.raw),
				Search: &fhir.BundleEntrySearch{Mode: "match"},
			})
		}
	}
	h.succeed(r, http.StatusOK, func() { fhir.WriteJSON(c.Writer, http.StatusOK, b) })
}

func (h *Handler) readForm(c *gin.Context) (url.Values, error) {
	if !strings.HasPrefix(c.GetHeader("Content-Type"), "application/x-www-form-urlencoded") {
		return nil, errors.New("not a form")
	}
	body, err := readAll(c, h.maxBody)
	if err != nil {
		return nil, err
	}
	return url.ParseQuery(string(body))
}

// search filters the catalog. Repeated parameters are AND, comma lists OR.
func (h *Handler) search(params url.Values) (matches []*entry, count int, summary, total bool, err error) {
	count, total = 50, true
	type pred func(*entry) bool
	var preds []pred
	for name, values := range params {
		base, modifier, hasMod := strings.Cut(name, ":")
		if strings.Contains(name, ".") || strings.HasPrefix(name, "_has") {
			return nil, 0, false, false, &searchFailure{fhir.IssueNotSupported, "chained parameters and _has are not supported"}
		}
		if hasMod && !((base == "name" || base == "title") && (modifier == "exact" || modifier == "contains")) {
			return nil, 0, false, false, &searchFailure{fhir.IssueNotSupported, "modifier :" + clip(modifier) + " is not supported on " + clip(base)}
		}
		for _, v := range values {
			if v == "" {
				return nil, 0, false, false, &searchFailure{fhir.IssueInvalid, "empty value for " + clip(name)}
			}
			var items []string
			for _, it := range searchparam.SplitList(v) {
				s, uerr := searchparam.Unescape(it)
				if uerr != nil || s == "" {
					return nil, 0, false, false, &searchFailure{fhir.IssueValue, "bad value for " + clip(name)}
				}
				items = append(items, s)
			}
			anyOf := func(f func(e *entry, item string) bool) pred {
				return func(e *entry) bool {
					for _, it := range items {
						if f(e, it) {
							return true
						}
					}
					return false
				}
			}
			switch base {
			case "_id":
				preds = append(preds, anyOf(func(e *entry, it string) bool { return e.q.ID == it }))
			case "url":
				preds = append(preds, anyOf(func(e *entry, it string) bool {
					u, ver, versioned := strings.Cut(it, "|")
					return e.q.URL == u && (!versioned || e.q.Version == ver)
				}))
			case "version":
				preds = append(preds, anyOf(func(e *entry, it string) bool { return e.q.Version == it }))
			case "status":
				preds = append(preds, anyOf(func(e *entry, it string) bool {
					tok, terr := searchparam.ParseToken(it)
					return terr == nil && e.q.Status == tok.Code && (!tok.HasSystem || tok.System == "http://hl7.org/fhir/publication-status")
				}))
			case "name", "title":
				field := func(e *entry) string { return e.q.Name }
				if base == "title" {
					field = func(e *entry) string { return e.q.Title }
				}
				preds = append(preds, anyOf(func(e *entry, it string) bool { return matchString(field(e), it, modifier) }))
			case "_count":
				n, cerr := strconv.Atoi(v)
				if cerr != nil || n < 0 || len(values) > 1 {
					return nil, 0, false, false, &searchFailure{fhir.IssueValue, "_count must be one non-negative integer"}
				}
				count = min(n, 100)
			case "_summary":
				if v != "count" && v != "false" {
					return nil, 0, false, false, &searchFailure{fhir.IssueNotSupported, "_summary supports only count and false"}
				}
				summary = v == "count"
			case "_total":
				switch v {
				case "none":
					total = false
				case "accurate", "estimate":
				default:
					return nil, 0, false, false, &searchFailure{fhir.IssueValue, "_total must be none, estimate or accurate"}
				}
			case "_format":
				switch v {
				case "json", "application/json", "application/fhir+json":
				default:
					return nil, 0, false, false, &searchFailure{fhir.IssueNotSupported, "only JSON is supported (_format)"}
				}
			case "_pretty":
				if v != "true" && v != "false" {
					return nil, 0, false, false, &searchFailure{fhir.IssueValue, "_pretty must be true or false"}
				}
			default:
				return nil, 0, false, false, &searchFailure{fhir.IssueNotSupported, "unsupported search parameter " + clip(name)}
			}
		}
	}
	if summary {
		total = true
	}
	for _, e := range h.catalog.list {
		keep := true
		for _, p := range preds {
			if !p(e) {
				keep = false
				break
			}
		}
		if keep {
			matches = append(matches, e)
		}
	}
	return matches, count, summary, total, nil
}

// matchString applies R4 string search (search.html#string): by default
// case-insensitive starts-with; :exact exact; :contains substring
// (case-insensitive).
func matchString(field, value, modifier string) bool {
	switch modifier {
	case "exact":
		return field == value
	case "contains":
		return strings.Contains(strings.ToLower(field), strings.ToLower(value))
	}
	return strings.HasPrefix(strings.ToLower(field), strings.ToLower(value))
}

func clip(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strconv.Quote(strings.ToValidUTF8(s, "?"))
}
