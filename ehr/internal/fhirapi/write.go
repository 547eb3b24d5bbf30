package fhirapi

import (
	"errors"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"dtrsandbox/ehr/internal/records"
	"dtrsandbox/shared/fhir"
	"dtrsandbox/shared/smart"
)

// Create is POST [base]/:type (R4 http.html#create): the server assigns
// the id (one in the body is ignored), answers 201 with Location, ETag and
// Last-Modified. The subject must be a Patient of this EHR; with a
// patient-level token it must be the token's patient, else 403 and nothing
// is stored.
func (h *Handler) Create(c *gin.Context) {
	typ := c.Param("type")
	acc, ok := h.begin(c, typ, interactionCreate)
	if !ok {
		return
	}
	body, doc, ok := h.readResource(c, typ)
	if !ok {
		return
	}
	if !h.checkReferences(c, acc, doc) {
		return
	}
	rec, err := h.store.Create(c.Request.Context(), typ, body)
	if !h.storeError(c, "create", err) {
		return
	}
	c.Header("Location", h.fullURL(rec.Type, rec.ID)+"/_history/"+strconv.Itoa(rec.VersionID))
	writeWithPreference(c, http.StatusCreated, rec)
}

// Update is PUT [base]/:type/:id (R4 http.html#update): the body's id must
// be the URL's; If-Match (a weak ETag W/"n") makes it conditional on the
// current version, 412 when it differs (R4 http.html#concurrency). A
// resource outside the caller's patient compartment answers 404 as a
// missing one does (update-as-create is not supported). The new body must
// still name the token's patient when the token is patient-level.
func (h *Handler) Update(c *gin.Context) {
	typ, id := c.Param("type"), c.Param("id")
	acc, ok := h.begin(c, typ, interactionUpdate)
	if !ok {
		return
	}
	if !checkID(c, id) {
		return
	}
	ifMatch, hasIfMatch, ok := parseIfMatch(c)
	if !ok {
		return
	}
	body, doc, ok := h.readResource(c, typ)
	if !ok {
		return
	}
	if doc.ID != id {
		fail(c, http.StatusBadRequest, fhir.IssueInvalid, "the resource id must equal the id in the URL")
		return
	}
	if !h.checkReferences(c, acc, doc) {
		return
	}
	rec, err := h.store.Update(c.Request.Context(), typ, id, body, func(cur *records.Record) error {
		if !acc.sees(cur) {
			return records.ErrNotFound
		}
		if hasIfMatch && cur.VersionID != ifMatch {
			return errPreconditionFailed
		}
		return nil
	})
	switch {
	case errors.Is(err, records.ErrNotFound):
		notFound(c, typ, id)
		return
	case errors.Is(err, errPreconditionFailed), errors.Is(err, records.ErrVersionConflict) && hasIfMatch:
		// A concurrent update that won the race also moved the version
		// If-Match named.
		fail(c, http.StatusPreconditionFailed, fhir.IssueConflict, "If-Match does not name the current version")
		return
	}
	if !h.storeError(c, "update", err) {
		return
	}
	writeWithPreference(c, http.StatusOK, rec)
}

var errPreconditionFailed = errors.New("fhirapi: If-Match does not match")

// parseIfMatch reads If-Match: W/"n" (or "n"), n a version id.
func parseIfMatch(c *gin.Context) (version int, present, ok bool) {
	raw := strings.TrimSpace(c.GetHeader("If-Match"))
	if raw == "" {
		return 0, false, true
	}
	tag := strings.TrimPrefix(raw, "W/")
	if len(tag) >= 2 && tag[0] == '"' && tag[len(tag)-1] == '"' {
		if n, err := strconv.Atoi(tag[1 : len(tag)-1]); err == nil && n > 0 {
			return n, true, true
		}
	}
	fail(c, http.StatusBadRequest, fhir.IssueValue, `If-Match must be a version ETag such as W/"1"`)
	return 0, false, false
}

// storeError answers a store error and reports whether there was none.
func (h *Handler) storeError(c *gin.Context, what string, err error) bool {
	var ie *records.InvalidError
	switch {
	case err == nil:
		return true
	case errors.As(err, &ie):
		fail(c, http.StatusBadRequest, fhir.IssueStructure, ie.Hint)
	case errors.Is(err, records.ErrVersionConflict):
		fail(c, http.StatusConflict, fhir.IssueConflict, "the resource was changed by another request; read it and try again")
	default:
		h.failInternal(c, what, err)
	}
	return false
}

// writable is what the API checks in a QuestionnaireResponse or
// DocumentReference body.
type writable struct {
	ResourceType string
	ID           string
	Status       string
	Subject      *fhir.Reference
	Encounter    *fhir.Reference
}

// statuses are the required status codes (R4 value sets
// questionnaire-answers-status and document-reference-status).
var statuses = map[string][]string{
	"QuestionnaireResponse": {"in-progress", "completed", "amended", "entered-in-error", "stopped"},
	"DocumentReference":     {"current", "superseded", "entered-in-error"},
}

// readResource checks the media type (415), reads the body (413), decodes
// it strictly (400: malformed JSON, duplicate or case-variant keys, wrong
// JSON types) and checks resourceType and the required elements.
func (h *Handler) readResource(c *gin.Context, typ string) ([]byte, writable, bool) {
	mt, params, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || (mt != fhir.ContentType && mt != "application/json") ||
		(params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8")) {
		fail(c, http.StatusUnsupportedMediaType, fhir.IssueNotSupported, "the body must be application/fhir+json (UTF-8)")
		return nil, writable{}, false
	}
	body, ok := h.readBody(c)
	if !ok {
		return nil, writable{}, false
	}
	doc, err := decodeWritable(typ, body)
	if err != nil {
		fail(c, http.StatusBadRequest, fhir.IssueStructure, err.Error())
		return nil, writable{}, false
	}
	if doc.ResourceType != typ {
		fail(c, http.StatusBadRequest, fhir.IssueInvalid, "resourceType must be "+typ)
		return nil, writable{}, false
	}
	if !slices.Contains(statuses[typ], doc.Status) {
		fail(c, http.StatusBadRequest, fhir.IssueRequired, "status is required and must be one of "+strings.Join(statuses[typ], ", "))
		return nil, writable{}, false
	}
	return body, doc, true
}

func decodeWritable(typ string, body []byte) (writable, error) {
	switch typ {
	case "QuestionnaireResponse":
		var r fhir.QuestionnaireResponse
		if err := fhir.Decode(body, &r); err != nil {
			return writable{}, err
		}
		return writable{r.ResourceType, r.ID, r.Status, r.Subject, r.Encounter}, nil
	case "DocumentReference":
		var r fhir.DocumentReference
		if err := fhir.Decode(body, &r); err != nil {
			return writable{}, err
		}
		if len(r.Content) == 0 || slices.ContainsFunc(r.Content, func(ct fhir.DocumentReferenceContent) bool { return ct.Attachment == nil }) {
			return writable{}, errors.New("a DocumentReference needs content with an attachment")
		}
		return writable{r.ResourceType, r.ID, r.Status, r.Subject, nil}, nil
	}
	return writable{}, errors.New("resource type " + typ + " is not writable")
}

// checkReferences applies the write rules on subject and encounter:
//   - subject must be a literal reference to a Patient of this EHR
//     (relative, or absolute with this server's base); with a
//     patient-level token it must be the token's patient: 403 otherwise;
//     with a user or system token a subject that is not a known patient
//     answers 422;
//   - an encounter, when present, must be an Encounter of that patient (422).
func (h *Handler) checkReferences(c *gin.Context, acc access, doc writable) bool {
	patient, ok := h.localReference(doc.Subject, "Patient")
	if acc.level == smart.LevelPatient && (!ok || patient != acc.token.Patient) {
		h.forbid(c, "with a patient-level token, subject must reference the token's patient (Patient/"+acc.token.Patient+")")
		return false
	}
	if !ok {
		fail(c, http.StatusUnprocessableEntity, fhir.IssueBusinessRule, "subject must reference a Patient of this EHR (Patient/{id})")
		return false
	}
	exists, err := h.store.Exists(c.Request.Context(), "Patient", patient)
	if err != nil {
		h.failInternal(c, "check subject", err)
		return false
	}
	if !exists {
		fail(c, http.StatusUnprocessableEntity, fhir.IssueBusinessRule, "subject Patient/"+patient+" is not a patient of this EHR")
		return false
	}
	if doc.Encounter == nil {
		return true
	}
	enc, ok := h.localReference(doc.Encounter, "Encounter")
	if ok {
		rec, err := h.store.Read(c.Request.Context(), "Encounter", enc)
		switch {
		case errors.Is(err, records.ErrNotFound):
			ok = false
		case err != nil:
			h.failInternal(c, "check encounter", err)
			return false
		default:
			ok = rec.PatientID == patient
		}
	}
	if !ok {
		fail(c, http.StatusUnprocessableEntity, fhir.IssueBusinessRule, "encounter must reference an Encounter of the subject in this EHR")
		return false
	}
	return true
}

// localReference returns the id of ref when it is a literal reference to a
// resource of type typ on this server.
func (h *Handler) localReference(ref *fhir.Reference, typ string) (string, bool) {
	if ref == nil {
		return "", false
	}
	base, t, id, ok := fhir.ParseReference(ref.Reference)
	if !ok || t != typ || (base != "" && base != h.base) {
		return "", false
	}
	return id, true
}

// writeWithPreference honours Prefer: return=minimal | representation |
// OperationOutcome (R4 http.html#ops); representation is the default.
func writeWithPreference(c *gin.Context, status int, rec *records.Record) {
	setVersionHeaders(c, rec)
	for _, pref := range strings.Split(c.GetHeader("Prefer"), ",") {
		switch strings.TrimSpace(pref) {
		case "return=minimal":
			c.Status(status)
			c.Writer.WriteHeaderNow()
			return
		case "return=OperationOutcome":
			fhir.WriteOutcome(c.Writer, status, fhir.IssueInformational, rec.Type+"/"+rec.ID+" version "+strconv.Itoa(rec.VersionID)+" stored")
			return
		}
	}
	fhir.WriteResource(c.Writer, status, rec.Body)
}
