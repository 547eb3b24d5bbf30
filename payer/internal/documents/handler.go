package documents

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"dtrsandbox/payer/internal/access"
	"dtrsandbox/payer/internal/audit"
	"dtrsandbox/shared/fhir"
	"dtrsandbox/shared/httpserver"
	"dtrsandbox/shared/smart"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
)

// Config configures the document handlers.
type Config struct {
	Store *Store
	// Audit records one AuditEvent per request; for writes it is called
	// with the transaction of the change.
	Audit audit.Recorder
	// Base is the payer's FHIR base URL (https://localhost:8443/fhir), for
	// Location, fullUrl and links.
	Base   string
	Logger *slog.Logger
	// MaxBody caps request bodies (default 1 MiB), on top of any
	// httpserver.BodyLimit in front.
	MaxBody int64
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Handler serves DocumentReference and QuestionnaireResponse.
type Handler struct {
	store   *Store
	audit   audit.Recorder
	base    string
	log     *slog.Logger
	maxBody int64
	now     func() time.Time
}

// NewHandler checks cfg and returns the handler.
func NewHandler(cfg Config) (*Handler, error) {
	if cfg.Store == nil {
		return nil, errors.New("documents: handler needs a Store")
	}
	if cfg.Audit == nil {
		return nil, errors.New("documents: handler needs an audit Recorder")
	}
	if cfg.Base == "" {
		return nil, errors.New("documents: handler needs the FHIR base URL")
	}
	h := &Handler{
		store: cfg.Store, audit: cfg.Audit, base: strings.TrimSuffix(cfg.Base, "/"),
		log: cfg.Logger, maxBody: cfg.MaxBody, now: cfg.Now,
	}
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

// request is one request in flight: the caller and the AuditEvent it will
// produce (exactly one per request).
type request struct {
	c   *gin.Context
	p   *access.Principal
	typ string
	ev  audit.Event
}

// resourceTypeOf finds the resource type of the route: a ":type" parameter,
// or the literal segment of the route pattern naming one of the types this
// package serves.
func resourceTypeOf(c *gin.Context) string {
	if t := c.Param("type"); t != "" {
		return t
	}
	segs := strings.Split(c.FullPath(), "/")
	for i := len(segs) - 1; i >= 0; i-- {
		if segs[i] == TypeDocumentReference || segs[i] == TypeQuestionnaireResponse {
			return segs[i]
		}
	}
	return ""
}

// newRequest builds the request and its AuditEvent skeleton from the route
// and the principal the gate put in the context (if any).
func (h *Handler) newRequest(c *gin.Context, interaction, action string) *request {
	r := &request{c: c, typ: resourceTypeOf(c), p: access.From(c.Request.Context())}
	r.ev = audit.Event{
		Time: h.now(), Action: action, Interaction: interaction, ResourceType: r.typ, SourceIP: c.RemoteIP(),
	}
	if id := c.Param("id"); fhir.ValidID(id) {
		r.ev.ResourceID = id
	}
	r.ev.SetCaller(r.p)
	return r
}

// begin starts a request: it builds the AuditEvent skeleton from the
// principal and refuses (401, fail closed) a request without a verified
// payer token, EHR token and launch patient, and (403) one whose payer
// token does not grant perm on the type. It reports whether to go on.
func (h *Handler) begin(c *gin.Context, interaction, action string, perm smart.Perm) (*request, bool) {
	r := h.newRequest(c, interaction, action)
	if r.typ != TypeDocumentReference && r.typ != TypeQuestionnaireResponse {
		h.log.Error("documents: route without a known resource type", "path", c.FullPath())
		h.refuse(r, &requestError{Status: http.StatusNotFound, Code: fhir.IssueNotSupported,
			Hint: "unknown resource type", Reason: "route has no known resource type"})
		return nil, false
	}
	if reason := checkPrincipal(r.p); reason != "" {
		c.Header("WWW-Authenticate", `Bearer realm="payer"`)
		h.refuse(r, &requestError{Status: http.StatusUnauthorized, Code: fhir.IssueLogin,
			Hint: "this request needs a payer access token and an EHR access token (X-EHR-Authorization) with a patient", Reason: reason})
		return nil, false
	}
	if _, ok := r.p.PayerScopes.Grant(r.typ, perm); !ok {
		h.refuse(r, &requestError{Status: http.StatusForbidden, Code: fhir.IssueForbidden,
			Hint:   "the payer access token does not grant " + perm.String() + " on " + r.typ,
			Reason: "payer token lacks " + r.typ + "." + perm.String()})
		return nil, false
	}
	return r, true
}

// checkPrincipal says why a principal cannot use the document routes, or "".
func checkPrincipal(p *access.Principal) string {
	switch {
	case p == nil:
		return "no verified caller"
	case p.ClientID == "":
		return "no payer client"
	case p.EHR == nil:
		return "no verified EHR token"
	case p.Patient == "":
		return "no launch patient"
	}
	if base, typ, _, ok := fhir.ParseReference(p.Patient); !ok || base == "" || typ != "Patient" {
		return "launch patient is not an absolute Patient reference"
	}
	return ""
}

// covers applies the creator's-scope rule: the caller's payer and EHR
// scopes must each cover the creator's.
func (r *request) covers(c Creator) bool {
	payer, err1 := smart.ParseScopes(c.PayerScopes)
	ehr, err2 := smart.ParseScopes(c.EHRScopes)
	if err1 != nil || err2 != nil || r.p.EHR == nil {
		return false
	}
	return r.p.PayerScopes.Covers(payer) && r.p.EHR.Scopes.Covers(ehr)
}

// refuse records a denial and answers it with an OperationOutcome. If the
// denial cannot be recorded the answer is 500.
func (h *Handler) refuse(r *request, e *requestError) {
	r.ev.Outcome, r.ev.Reason, r.ev.Status = audit.OutcomeMinorFailure, e.Reason, e.Status
	if e.Status >= 500 {
		r.ev.Outcome = audit.OutcomeSeriousFail
	}
	if !h.record(r, nil) {
		return
	}
	fhir.WriteOutcome(r.c.Writer, e.Status, e.Code, e.Hint)
}

// record writes r's AuditEvent (in tx when given); on failure it answers
// 500 without data and reports false.
func (h *Handler) record(r *request, tx *gorm.DB) bool {
	if err := h.audit.Record(r.c.Request.Context(), tx, r.ev); err != nil {
		h.log.Error("documents: audit record failed", "err", err, "interaction", r.ev.Interaction)
		writeServerError(r.c)
		return false
	}
	return true
}

func writeServerError(c *gin.Context) {
	fhir.WriteOutcome(c.Writer, http.StatusInternalServerError, fhir.IssueException, "the request could not be completed; nothing was changed")
}

// fail answers a server-side failure: recorded (best effort, outside any
// transaction, which has rolled back) and 500 without data.
func (h *Handler) fail(r *request, err error) {
	h.log.Error("documents: request failed", "err", err, "interaction", r.ev.Interaction)
	r.ev.Outcome, r.ev.Reason, r.ev.Status = audit.OutcomeSeriousFail, "server error", http.StatusInternalServerError
	if rerr := h.audit.Record(r.c.Request.Context(), nil, r.ev); rerr != nil {
		h.log.Error("documents: audit record failed", "err", rerr)
	}
	writeServerError(r.c)
}

// readBody reads a FHIR JSON body under the cap.
func (h *Handler) readBody(c *gin.Context, wantForm bool) ([]byte, *requestError) {
	if httpserver.DeclaredTooLarge(c) || c.Request.ContentLength > h.maxBody {
		return nil, tooLarge()
	}
	if ce := strings.TrimSpace(c.GetHeader("Content-Encoding")); ce != "" && !strings.EqualFold(ce, "identity") {
		// RFC 9110 §15.5.16: an unsupported content coding is 415. The
		// body is never inflated (no decompression bombs), and a
		// compressed body is not misread as a malformed one.
		return nil, &requestError{Status: http.StatusUnsupportedMediaType, Code: fhir.IssueNotSupported,
			Hint: "Content-Encoding is not supported; send the body uncompressed", Reason: "unsupported content encoding"}
	}
	mt, mparams, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if cs, ok := mparams["charset"]; err == nil && ok && !strings.EqualFold(cs, "utf-8") {
		return nil, &requestError{Status: http.StatusUnsupportedMediaType, Code: fhir.IssueNotSupported,
			Hint: "the body must be UTF-8 (charset=utf-8)", Reason: "unsupported charset"}
	}
	switch {
	case wantForm && (err != nil || mt != "application/x-www-form-urlencoded"):
		return nil, &requestError{Status: http.StatusUnsupportedMediaType, Code: fhir.IssueNotSupported,
			Hint: "POST _search needs Content-Type application/x-www-form-urlencoded", Reason: "unsupported media type"}
	case !wantForm && (err != nil || (mt != fhir.ContentType && mt != "application/json")):
		return nil, &requestError{Status: http.StatusUnsupportedMediaType, Code: fhir.IssueNotSupported,
			Hint: "the body must be application/fhir+json", Reason: "unsupported media type"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, h.maxBody))
	if err != nil {
		if httpserver.IsTooLarge(err) {
			return nil, tooLarge()
		}
		return nil, badRequest(fhir.IssueStructure, "the body could not be read")
	}
	return body, nil
}

func tooLarge() *requestError {
	return &requestError{Status: http.StatusRequestEntityTooLarge, Code: fhir.IssueTooLong,
		Hint: "the body is larger than the server accepts", Reason: "body too large"}
}

// newID returns a server-assigned FHIR id: 32 hex digits (128 random bits).
func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// instant formats t as a FHIR instant with microsecond precision, the
// precision the store keeps.
func instant(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z07:00") }

func etag(version int64) string { return `W/"` + strconv.FormatInt(version, 10) + `"` }

// writeDocument answers with a stored version and its headers.
func (h *Handler) writeDocument(c *gin.Context, status int, d *Document) {
	hd := c.Writer.Header()
	hd.Set("ETag", etag(d.VersionID))
	hd.Set("Last-Modified", d.LastUpdated.UTC().Format(http.TimeFormat))
	loc := h.base + "/" + d.ResourceType + "/" + d.ID + "/_history/" + strconv.FormatInt(d.VersionID, 10)
	if status == http.StatusCreated {
		hd.Set("Location", loc)
	} else {
		hd.Set("Content-Location", loc)
	}
	fhir.WriteResource(c.Writer, status, d.Body)
}

// Create handles POST {fhir}/{type} (R4 http.html#create). The server
// assigns id and meta; a body without subject is stamped with the launch
// patient; a subject naming anything else is 403 and nothing is stored.
// The document and its AuditEvent commit in one transaction.
func (h *Handler) Create(c *gin.Context) {
	r, ok := h.begin(c, "create", "C", smart.PermCreate)
	if !ok {
		return
	}
	body, rerr := h.readBody(c, false)
	if rerr != nil {
		h.refuse(r, rerr)
		return
	}
	prep, rerr := prepare(r.typ, body, r.p.Patient)
	if rerr != nil {
		h.refuse(r, rerr)
		return
	}
	id, err := newID()
	if err != nil {
		h.fail(r, err)
		return
	}
	now := h.now().UTC().Truncate(time.Microsecond)
	out, err := prep.render(id, 1, instant(now), r.p.Patient)
	if err != nil {
		h.fail(r, err)
		return
	}
	doc := &Document{
		ResourceType: r.typ, ID: id, VersionID: 1, LastUpdated: now, Patient: r.p.Patient,
		Status: prep.index.Status, Creator: creatorOf(r.p), Body: out,
	}
	r.ev.ResourceID, r.ev.Outcome, r.ev.Status = id, audit.OutcomeSuccess, http.StatusCreated
	err = h.store.Transaction(c.Request.Context(), func(tx *gorm.DB) error {
		if err := h.store.Insert(c.Request.Context(), tx, doc, prep.index); err != nil {
			return err
		}
		return h.audit.Record(c.Request.Context(), tx, r.ev)
	})
	if err != nil {
		h.fail(r, err)
		return
	}
	h.writeDocument(c, http.StatusCreated, doc)
}

func creatorOf(p *access.Principal) Creator {
	cr := Creator{ClientID: p.ClientID, PayerScopes: p.PayerScopes.String()}
	if p.EHR != nil {
		cr.FHIRUser, cr.EHRIssuer, cr.EHRScopes = p.EHR.FHIRUser, p.EHR.Issuer, p.EHR.Scopes.String()
	}
	return cr
}

// notFound is the one answer for a document the caller may not see: a
// missing id, another patient's document and one whose creator's scopes
// the caller lacks are indistinguishable (same status, same bytes).
func notFound(reason string) *requestError {
	return &requestError{Status: http.StatusNotFound, Code: fhir.IssueNotFound, Hint: "no such resource", Reason: reason}
}

// Read handles GET {fhir}/{type}/{id} (R4 http.html#read).
func (h *Handler) Read(c *gin.Context) {
	if c.Param("id") == "_history" {
		h.History(c)
		return
	}
	r, ok := h.begin(c, "read", "R", smart.PermRead)
	if !ok {
		return
	}
	doc, rerr, _ := h.lookup(r)
	if rerr != nil {
		h.refuse(r, rerr)
		return
	}
	r.ev.Outcome, r.ev.Status = audit.OutcomeSuccess, http.StatusOK
	if !h.record(r, nil) {
		return
	}
	h.writeDocument(c, http.StatusOK, doc)
}

// reasonScopes is the audit reason of the creator's-scope rule.
const reasonScopes = "caller's scopes do not cover the creator's scopes"

// lookup finds the document of the route's id for the launch patient and
// applies the creator's-scope rule; every failure is the same 404, with
// the true reason kept for the audit trail. scopeDenied reports that the
// document exists for this patient but the creator's-scope rule refused it.
func (h *Handler) lookup(r *request) (doc *Document, rerr *requestError, scopeDenied bool) {
	id := r.c.Param("id")
	if !fhir.ValidID(id) {
		return nil, notFound("invalid id"), false
	}
	doc, err := h.store.Read(r.c.Request.Context(), r.typ, id, r.p.Patient)
	if errors.Is(err, ErrNotFound) {
		reason := "no such document"
		if found, lerr := h.store.Locate(r.c.Request.Context(), r.typ, id); lerr == nil && found {
			reason = "document of another patient"
		}
		return nil, notFound(reason), false
	}
	if err != nil {
		return nil, &requestError{Status: http.StatusInternalServerError, Code: fhir.IssueException,
			Hint: "the request could not be completed", Reason: "store error"}, false
	}
	if !r.covers(doc.Creator) {
		return nil, notFound(reasonScopes), true
	}
	return doc, nil, false
}

// Update handles PUT {fhir}/{type}/{id} (R4 http.html#update) as a
// version-aware update only: If-Match is required (428 without, 412 when
// stale), the document must exist for the launch patient (404 otherwise:
// no update-as-create) and the caller must cover the creator's scopes
// (403). The subject cannot change. The replaced version goes to the
// history table; the change and its AuditEvent commit together.
func (h *Handler) Update(c *gin.Context) {
	r, ok := h.begin(c, "update", "U", smart.PermUpdate)
	if !ok {
		return
	}
	ifMatches := c.Request.Header.Values("If-Match")
	if len(ifMatches) > 1 { // repeated header lines are one list (RFC 9110 §5.3): not one version
		h.refuse(r, badRequest(fhir.IssueValue, `If-Match must be one ETag such as W/"1", sent once`))
		return
	}
	ifMatch := c.GetHeader("If-Match")
	if ifMatch == "" {
		h.refuse(r, &requestError{Status: http.StatusPreconditionRequired, Code: fhir.IssueRequired,
			Hint: `updates need If-Match with the current ETag (W/"<versionId>")`, Reason: "If-Match missing"})
		return
	}
	want, okTag := parseETag(ifMatch)
	if !okTag {
		h.refuse(r, badRequest(fhir.IssueValue, `If-Match must be an ETag such as W/"1"`))
		return
	}
	body, rerr := h.readBody(c, false)
	if rerr != nil {
		h.refuse(r, rerr)
		return
	}
	prep, rerr := prepare(r.typ, body, r.p.Patient)
	if rerr != nil {
		h.refuse(r, rerr)
		return
	}
	id := c.Param("id")
	if prep.id == "" || prep.id != id {
		h.refuse(r, badRequest(fhir.IssueInvalid, "the body id must equal the id in the URL"))
		return
	}
	prev, rerr, scopeDenied := h.lookup(r)
	if rerr != nil {
		if scopeDenied {
			rerr = &requestError{Status: http.StatusForbidden, Code: fhir.IssueForbidden,
				Hint: "the access tokens do not carry the scopes this document was created with", Reason: rerr.Reason}
		}
		h.refuse(r, rerr)
		return
	}
	if prev.VersionID != want {
		h.refuse(r, &requestError{Status: http.StatusPreconditionFailed, Code: fhir.IssueConflict,
			Hint: "If-Match does not name the current version", Reason: "version mismatch"})
		return
	}
	now := h.now().UTC().Truncate(time.Microsecond)
	if !now.After(prev.LastUpdated) {
		now = prev.LastUpdated.Add(time.Microsecond)
	}
	out, err := prep.render(id, prev.VersionID+1, instant(now), prev.Patient)
	if err != nil {
		h.fail(r, err)
		return
	}
	next := &Document{
		ResourceType: r.typ, ID: id, VersionID: prev.VersionID + 1, LastUpdated: now, Patient: prev.Patient,
		Status: prep.index.Status, Creator: prev.Creator, Body: out,
	}
	r.ev.Outcome, r.ev.Status = audit.OutcomeSuccess, http.StatusOK
	err = h.store.Transaction(c.Request.Context(), func(tx *gorm.DB) error {
		if err := h.store.Replace(c.Request.Context(), tx, prev, next, prep.index, r.p.ClientID); err != nil {
			return err
		}
		return h.audit.Record(c.Request.Context(), tx, r.ev)
	})
	if errors.Is(err, ErrVersionConflict) {
		h.refuse(r, &requestError{Status: http.StatusPreconditionFailed, Code: fhir.IssueConflict,
			Hint: "the document changed; read it again", Reason: "concurrent update"})
		return
	}
	if err != nil {
		h.fail(r, err)
		return
	}
	h.writeDocument(c, http.StatusOK, next)
}

// parseETag reads a version from an If-Match value: one entity tag,
// W/"n" or "n", n the versionId exactly as the server writes it (digits,
// no sign, no leading zero). "*", a list of tags or any other text is not
// a version, and is refused rather than read loosely.
func parseETag(v string) (int64, bool) {
	v = strings.TrimSpace(v)
	v = strings.TrimPrefix(v, "W/")
	if len(v) < 3 || v[0] != '"' || v[len(v)-1] != '"' {
		return 0, false
	}
	digits := v[1 : len(v)-1]
	if digits[0] == '0' || strings.Trim(digits, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n < 1 {
		return 0, false
	}
	return n, true
}

// Search handles GET {fhir}/{type} and POST {fhir}/{type}/_search (R4
// http.html#search) with a searchset Bundle confined to the launch patient
// and filtered by the creator's-scope rule. Parameters in the query string
// and the form body combine as AND.
func (h *Handler) Search(c *gin.Context) {
	r, ok := h.begin(c, "search-type", "R", smart.PermSearch)
	if !ok {
		return
	}
	params, err := url.ParseQuery(c.Request.URL.RawQuery)
	if err != nil {
		r.ev.Query = c.Request.URL.RawQuery
		h.refuse(r, searchRefusal(fhir.IssueInvalid, "the query string is not valid URL encoding"))
		return
	}
	if c.Request.Method == http.MethodPost {
		body, rerr := h.readBody(c, true)
		if rerr != nil {
			r.ev.Query = params.Encode()
			h.refuse(r, rerr)
			return
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			r.ev.Query = params.Encode()
			h.refuse(r, searchRefusal(fhir.IssueInvalid, "the form body is not valid URL encoding"))
			return
		}
		for k, vs := range form {
			params[k] = append(params[k], vs...)
		}
	}
	r.ev.Query = params.Encode()
	q, err := Compile(r.typ, params, r.p.Patient)
	if err != nil {
		var se *SearchError
		if !errors.As(err, &se) {
			h.fail(r, err)
			return
		}
		h.refuse(r, searchRefusal(se.Code, se.Hint))
		return
	}
	res, err := h.store.Search(c.Request.Context(), q, r.covers)
	if err != nil {
		h.fail(r, err)
		return
	}
	r.ev.Outcome, r.ev.Status = audit.OutcomeSuccess, http.StatusOK
	if !h.record(r, nil) {
		return
	}
	fhir.WriteJSON(c.Writer, http.StatusOK, h.bundle(q, res))
}

// searchRefusal is a 400 for a search request, recorded as "bad search".
func searchRefusal(code, hint string) *requestError {
	return &requestError{Status: http.StatusBadRequest, Code: code, Hint: hint, Reason: "bad search: " + hint}
}

// bundle builds the searchset (R4 bundle.html, search.html#return).
func (h *Handler) bundle(q *Query, res *Result) *fhir.Bundle {
	b := &fhir.Bundle{ResourceType: "Bundle", Type: "searchset", Timestamp: instant(h.now())}
	if q.Total != TotalNone && res.Total >= 0 {
		t := int(res.Total)
		b.Total = &t
	}
	self := h.base + "/" + q.ResourceType
	if enc := q.Params.Encode(); enc != "" {
		self += "?" + enc
	}
	b.Link = []fhir.BundleLink{{Relation: "self", URL: self}}
	if q.Count > 0 && res.Total >= 0 && int64(q.Offset+len(res.Docs)) < res.Total {
		next := url.Values{}
		for k, vs := range q.Params {
			next[k] = vs
		}
		next.Set("_offset", strconv.Itoa(q.Offset+len(res.Docs)))
		next.Set("_count", strconv.Itoa(q.Count))
		b.Link = append(b.Link, fhir.BundleLink{Relation: "next", URL: h.base + "/" + q.ResourceType + "?" + next.Encode()})
	}
	for _, d := range res.Docs {
		b.Entry = append(b.Entry, fhir.BundleEntry{
			FullURL:  h.base + "/" + d.ResourceType + "/" + d.ID,
			Resource: json.RawMessage(d.Body),
			Search:   &fhir.BundleEntrySearch{Mode: "match"},
		})
	}
	return b
}
