package audit

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"dtrsandbox/payer/internal/access"
	"dtrsandbox/payer/internal/documents/searchparam"
	"dtrsandbox/shared/fhir"

	"github.com/gin-gonic/gin"
)

// Routes served by this package (put them in payer/internal/server/routes.go):
//
//	GET /fhir/AuditEvent    audit.AdminOnly(adminToken, audit.WithDenialAudit(store, log)), h.Search
//
// where store, _ := audit.NewStore(db, audit.StoreConfig{Source: fhirBase})
// and h, _ := audit.NewHandler(audit.HandlerConfig{Store: store, Base: fhirBase, Logger: log}).

// HandlerConfig configures the admin AuditEvent search.
type HandlerConfig struct {
	Store  *Store
	Base   string // the payer's FHIR base URL, for fullUrl and links
	Logger *slog.Logger
}

// Handler serves GET {fhir}/AuditEvent to the admin.
type Handler struct {
	store *Store
	base  string
	log   *slog.Logger
}

// NewHandler returns the AuditEvent search handler.
func NewHandler(cfg HandlerConfig) (*Handler, error) {
	if cfg.Store == nil {
		return nil, errors.New("audit: handler needs a Store")
	}
	if cfg.Base == "" {
		return nil, errors.New("audit: handler needs the FHIR base URL")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{store: cfg.Store, base: strings.TrimSuffix(cfg.Base, "/"), log: log}, nil
}

// searchError is a bad search request, answered 400.
type searchError struct {
	code string // OperationOutcome issue type
	hint string
}

func (e *searchError) Error() string { return e.hint }

// Search answers GET {fhir}/AuditEvent (R4 search.html) with a searchset
// Bundle, newest event first. Parameters: patient (absolute patient
// reference), agent (client_id or fhirUser), outcome (0, 4, 8, 12), date
// (prefixes eq, ge, le, gt, lt; repeat for a range), _count (at most 200),
// _offset. Comma lists are OR; repeated parameters are AND. Anything else
// is 400 not-supported. The search itself is recorded as an AuditEvent
// before the answer; if that fails the answer is 500 without data.
// Put AdminOnly in front of it.
func (h *Handler) Search(c *gin.Context) {
	start := time.Now()
	p := access.From(c.Request.Context())
	ev := Event{
		Time: start, Action: "R", Interaction: "search-type", ResourceType: "AuditEvent",
		Query: c.Request.URL.RawQuery, SourceIP: c.RemoteIP(),
	}
	if p == nil || p.ClientID != AdminPrincipal {
		ev.Outcome, ev.Reason, ev.Status = OutcomeMinorFailure, "no admin principal", http.StatusUnauthorized
		h.record(c, ev)
		c.Header("WWW-Authenticate", `Bearer realm="payer-admin"`)
		fhir.WriteOutcome(c.Writer, http.StatusUnauthorized, fhir.IssueLogin, "this endpoint needs the admin token as a Bearer token")
		return
	}
	ev.ClientID = p.ClientID

	params, err := url.ParseQuery(c.Request.URL.RawQuery)
	var f Filter
	if err == nil {
		f, err = parseFilter(params)
	}
	if err != nil {
		code, hint := fhir.IssueInvalid, "the query string is not valid URL encoding"
		var se *searchError
		if errors.As(err, &se) {
			code, hint = se.code, se.hint
		}
		ev.Outcome, ev.Reason, ev.Status = OutcomeMinorFailure, "bad search: "+hint, http.StatusBadRequest
		if !h.record(c, ev) {
			return
		}
		fhir.WriteOutcome(c.Writer, http.StatusBadRequest, code, hint)
		return
	}

	entries, total, err := h.store.Search(c.Request.Context(), f)
	if err != nil {
		h.log.Error("audit: search", "err", err)
		ev.Outcome, ev.Reason, ev.Status = OutcomeSeriousFail, "audit search failed", http.StatusInternalServerError
		if err := h.store.Record(c.Request.Context(), nil, ev); err != nil { // best effort: the store may be down
			h.log.Error("audit: record failed search", "err", err)
		}
		fhir.WriteOutcome(c.Writer, http.StatusInternalServerError, fhir.IssueException, "the audit trail could not be searched")
		return
	}
	ev.Outcome, ev.Status = OutcomeSuccess, http.StatusOK
	if !h.record(c, ev) {
		return
	}
	fhir.WriteJSON(c.Writer, http.StatusOK, h.bundle(params, f, entries, total))
}

// record writes ev; on failure it answers 500 and reports false.
func (h *Handler) record(c *gin.Context, ev Event) bool {
	if err := h.store.Record(c.Request.Context(), nil, ev); err != nil {
		h.log.Error("audit: record admin search", "err", err)
		fhir.WriteOutcome(c.Writer, http.StatusInternalServerError, fhir.IssueException, "the request could not be recorded in the audit trail")
		return false
	}
	return true
}

var validOutcomes = map[string]bool{OutcomeSuccess: true, OutcomeMinorFailure: true, OutcomeSeriousFail: true, OutcomeMajorFailure: true}

// parseFilter turns the admin search parameters into a Filter.
func parseFilter(params url.Values) (Filter, error) {
	var f Filter
	const maxValues = 50
	n := 0
	for name, values := range params {
		n += len(values)
		if n > maxValues {
			return f, &searchError{fhir.IssueTooCostly, "too many search parameters"}
		}
		if strings.ContainsAny(name, ":.") {
			return f, &searchError{fhir.IssueNotSupported, "modifiers and chained parameters are not supported: " + clip(name)}
		}
		for _, v := range values {
			if v == "" {
				return f, &searchError{fhir.IssueInvalid, "empty value for " + clip(name)}
			}
			if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
				return f, &searchError{fhir.IssueValue, "the value of " + clip(name) + " is not valid UTF-8 text"}
			}
		}
		switch name {
		case "patient":
			for _, v := range values {
				items, err := unescapeList(v)
				if err != nil {
					return f, err
				}
				f.Patient = andList(f.Patient, items)
			}
		case "agent":
			for _, v := range values {
				items, err := unescapeList(v)
				if err != nil {
					return f, err
				}
				f.Agent = andList(f.Agent, items)
			}
		case "outcome":
			for _, v := range values {
				var items []string
				for _, raw := range searchparam.SplitList(v) {
					tok, err := searchparam.ParseToken(raw)
					if err != nil || !validOutcomes[tok.Code] {
						return f, &searchError{fhir.IssueValue, "outcome must be 0, 4, 8 or 12"}
					}
					items = append(items, tok.Code)
				}
				f.Outcome = andList(f.Outcome, items)
			}
		case "date":
			for _, v := range values {
				var ors []string
				var args []any
				for _, raw := range searchparam.SplitList(v) {
					prefix, rest := searchparam.SplitPrefix(raw)
					r, err := searchparam.ParseSearch(rest)
					if err != nil {
						hint := "invalid date"
						var pe *searchparam.Error
						if errors.As(err, &pe) {
							hint = pe.Hint
						}
						return f, &searchError{fhir.IssueValue, hint}
					}
					cond, a, err := searchparam.DateSQL(RecordedLo, RecordedHi, prefix, r)
					if err != nil {
						return f, &searchError{fhir.IssueNotSupported, "date prefixes supported: eq, ge, le, gt, lt"}
					}
					ors = append(ors, cond)
					args = append(args, a...)
				}
				f.Dates = append(f.Dates, DateCond{SQL: "(" + strings.Join(ors, " OR ") + ")", Args: args})
			}
		case "_count":
			if len(values) != 1 {
				return f, &searchError{fhir.IssueInvalid, "_count given more than once"}
			}
			n, err := strconv.Atoi(values[0])
			if err != nil || n < 0 {
				return f, &searchError{fhir.IssueValue, "_count must be a non-negative integer"}
			}
			if n == 0 {
				n = -1 // total only
			}
			if n > MaxCount {
				n = MaxCount
			}
			f.Count = n
		case "_offset":
			if len(values) != 1 {
				return f, &searchError{fhir.IssueInvalid, "_offset given more than once"}
			}
			n, err := strconv.Atoi(values[0])
			if err != nil || n < 0 || n > 1_000_000 {
				return f, &searchError{fhir.IssueValue, "_offset must be a non-negative integer"}
			}
			f.Offset = n
		default:
			return f, &searchError{fhir.IssueNotSupported, "unsupported search parameter " + clip(name) + " (supported: patient, agent, outcome, date, _count, _offset)"}
		}
	}
	return f, nil
}

// andList combines a repeated parameter: values must match every
// occurrence, so the OR sets intersect. An empty intersection matches
// nothing, which a single impossible value expresses.
func andList(prev, next []string) []string {
	if prev == nil {
		return next
	}
	keep := map[string]bool{}
	for _, v := range next {
		keep[v] = true
	}
	var out []string
	for _, v := range prev {
		if keep[v] {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return []string{"\x00no-match"}
	}
	return out
}

func unescapeList(v string) ([]string, error) {
	var out []string
	for _, raw := range searchparam.SplitList(v) {
		s, err := searchparam.Unescape(raw)
		if err != nil || s == "" {
			return nil, &searchError{fhir.IssueValue, "bad value in a comma list"}
		}
		out = append(out, s)
	}
	return out, nil
}

// bundle builds the searchset (R4 bundle.html, search.html#return).
func (h *Handler) bundle(params url.Values, f Filter, entries []Entry, total int64) *fhir.Bundle {
	b := &fhir.Bundle{ResourceType: "Bundle", Type: "searchset", Timestamp: time.Now().UTC().Format(time.RFC3339)}
	if total >= 0 {
		t := int(total)
		b.Total = &t
	}
	self := h.base + "/AuditEvent"
	if q := encodeSorted(params); q != "" {
		self += "?" + q
	}
	b.Link = []fhir.BundleLink{{Relation: "self", URL: self}}
	count := f.Count
	if count == 0 {
		count = DefaultCount
	}
	if count > 0 && total >= 0 && int64(f.Offset+len(entries)) < total {
		next := cloneValues(params)
		next.Set("_offset", strconv.Itoa(f.Offset+len(entries)))
		next.Set("_count", strconv.Itoa(count))
		b.Link = append(b.Link, fhir.BundleLink{Relation: "next", URL: h.base + "/AuditEvent?" + encodeSorted(next)})
	}
	if f.Count < 0 {
		entries = nil
	}
	for _, e := range entries {
		b.Entry = append(b.Entry, fhir.BundleEntry{
			FullURL:  h.base + "/AuditEvent/" + e.ID,
			Resource: json.RawMessage(e.Body),
			Search:   &fhir.BundleEntrySearch{Mode: "match"},
		})
	}
	return b
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// encodeSorted encodes v with keys in order (url.Values.Encode sorts keys;
// values keep their order).
func encodeSorted(v url.Values) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, val := range v[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(url.QueryEscape(k) + "=" + url.QueryEscape(val))
		}
	}
	return b.String()
}

func clip(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
