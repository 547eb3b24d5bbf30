package dtr

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"dtrsandbox/shared/fhir"
	"dtrsandbox/smartapp/internal/payer"
	"dtrsandbox/smartapp/internal/session"
)

// Document type of the stored answers: LOINC 74465-6 "Questionnaire
// response Document", the LOINC document code for a completed or partial
// questionnaire response.
const (
	LOINC            = "http://loinc.org"
	DocTypeCode      = "74465-6"
	DocTypeDisplay   = "Questionnaire response Document"
	DocStatusDraft   = "preliminary"
	DocStatusFinal   = "final"
	StatusCurrent    = "current"
	StatusSuperseded = "superseded"
	// RelatesToReplaces is the document-relationship-type code of a final
	// document that replaces its draft (R4 valueset-document-relationship-type).
	RelatesToReplaces = "replaces"
)

// MaxResponseBytes bounds a QuestionnaireResponse from the page.
const MaxResponseBytes = 1 << 20

// DraftView is a saved draft offered for resume.
type DraftView struct {
	ID                    string          `json:"id"`
	VersionID             string          `json:"versionId,omitempty"`
	Date                  string          `json:"date,omitempty"`
	QuestionnaireResponse json.RawMessage `json:"questionnaireResponse"`
}

// FormView is GET /api/questionnaire.
type FormView struct {
	Questionnaire json.RawMessage `json:"questionnaire"`
	Draft         *DraftView      `json:"draft"`
	// DraftError says why the payer could not be asked for a saved draft;
	// the form is still usable (answers are kept in the page).
	DraftError string `json:"draft_error,omitempty"`
}

// Form returns the questionnaire for the session's order and coverage (from
// the payer's $questionnaire-package, cached for the session) and the
// latest saved draft for this order, if any (resume).
func (s *Service) Form(ctx context.Context, sess *session.Session) (*FormView, error) {
	if err := s.requireOrder(ctx, sess); err != nil {
		return nil, err
	}
	q, err := s.questionnaire(ctx, sess)
	if err != nil {
		return nil, err
	}
	d, err := s.findDraft(ctx, sess)
	if err != nil {
		var pe *payer.Error
		if !errors.As(err, &pe) {
			return nil, err
		}
		return &FormView{Questionnaire: q, DraftError: pe.Message}, nil
	}
	return &FormView{Questionnaire: q, Draft: d}, nil
}

func (s *Service) requireOrder(ctx context.Context, sess *session.Session) error {
	if sess.Launch() == nil {
		return &Problem{Status: http.StatusUnauthorized, Message: "Not signed in: launch the app from the EHR."}
	}
	if err := s.resolve(ctx, sess); err != nil {
		return err
	}
	if sess.Workspace().OrderRef == "" {
		return &Problem{Status: http.StatusConflict, Message: "Choose the order to document first."}
	}
	return nil
}

// questionnaire fetches the package once and picks the questionnaire the
// order's CRD coverage-information names, else the first one.
func (s *Service) questionnaire(ctx context.Context, sess *session.Session) (json.RawMessage, error) {
	w := sess.Workspace()
	if w.Questionnaire != nil {
		return w.Questionnaire, nil
	}
	pkg, err := s.Payer.QuestionnairePackage(ctx, sess, w.Coverage, w.Order)
	if err != nil {
		return nil, err
	}
	want := orderView("", w.Order).Questionnaire
	chosen := pkg.Questionnaires[0]
	for _, q := range pkg.Questionnaires {
		if want != "" && canonicalOf(q) == strings.Split(want, "|")[0] {
			chosen = q
			break
		}
	}
	sess.UpdateWorkspace(func(w *session.Workspace) { w.Questionnaire = chosen })
	return chosen, nil
}

// canonicalOf is a questionnaire's url.
func canonicalOf(q json.RawMessage) string {
	var h struct {
		URL string `json:"url"`
	}
	_ = json.Unmarshal(q, &h)
	return h.URL
}

// questionnaireCanonical is url|version of the session's questionnaire.
func questionnaireCanonical(q json.RawMessage) (canonical, title string) {
	var h struct {
		URL, Version, Title, Name string
	}
	_ = json.Unmarshal(q, &h)
	canonical = h.URL
	if canonical != "" && h.Version != "" {
		canonical += "|" + h.Version
	}
	title = h.Title
	if title == "" {
		title = h.Name
	}
	return canonical, title
}

// currentDocuments searches the payer for the current documents related to
// the session's order (absolute on the EHR's base, also returned).
func (s *Service) currentDocuments(ctx context.Context, sess *session.Session, op string) (order string, docs []payer.Stored, err error) {
	order = absolute(sess.Launch().Issuer, sess.Workspace().OrderRef)
	docs, err = s.Payer.SearchDocumentReferences(ctx, sess, op, url.Values{"related": {order}, "status": {StatusCurrent}})
	return order, docs, err
}

// findDraft searches the payer for the current draft of this order (the
// newest if several) and remembers it in the session.
func (s *Service) findDraft(ctx context.Context, sess *session.Session) (*DraftView, error) {
	order, docs, err := s.currentDocuments(ctx, sess, "look for a saved draft")
	if err != nil {
		return nil, err
	}
	return rememberDraft(sess, order, docs)
}

// rememberDraft picks the current draft of order among docs (the newest if
// several) and remembers it in the session.
func rememberDraft(sess *session.Session, order string, docs []payer.Stored) (*DraftView, error) {
	var best *payer.Stored
	for i := range docs {
		d := &docs[i]
		if d.Doc.Status != StatusCurrent || d.Doc.DocStatus != DocStatusDraft || !relatedTo(&d.Doc, order) || !isDTRDocument(&d.Doc) {
			continue
		}
		if best == nil || newer(&d.Doc, &best.Doc) {
			best = d
		}
	}
	if best == nil {
		sess.UpdateWorkspace(func(w *session.Workspace) { w.Draft = nil })
		return nil, nil
	}
	qr, err := attachedResponse(&best.Doc)
	if err != nil {
		return nil, &payer.Error{Op: "load the saved draft", Status: http.StatusOK, Message: "The saved draft at the payer does not hold a readable QuestionnaireResponse.", Cause: err}
	}
	ref := &session.DraftRef{ID: best.ID, VersionID: best.VersionID}
	sess.UpdateWorkspace(func(w *session.Workspace) { w.Draft = ref })
	return &DraftView{ID: best.ID, VersionID: best.VersionID, Date: best.Doc.Date, QuestionnaireResponse: qr}, nil
}

func relatedTo(d *fhir.DocumentReference, order string) bool {
	if d.Context == nil {
		return false
	}
	for _, r := range d.Context.Related {
		if r.Reference == order {
			return true
		}
	}
	return false
}

func isDTRDocument(d *fhir.DocumentReference) bool {
	if d.Type == nil {
		return false
	}
	return slices.ContainsFunc(d.Type.Coding, func(c fhir.Coding) bool { return c.System == LOINC && c.Code == DocTypeCode })
}

// newer compares meta.lastUpdated, then date (RFC 3339 strings of one
// server compare as text).
func newer(a, b *fhir.DocumentReference) bool {
	la, lb := "", ""
	if a.Meta != nil {
		la = a.Meta.LastUpdated
	}
	if b.Meta != nil {
		lb = b.Meta.LastUpdated
	}
	if la != lb {
		return la > lb
	}
	return a.Date > b.Date
}

// attachedResponse decodes the QuestionnaireResponse in the document's
// attachment (application/fhir+json, base64).
func attachedResponse(d *fhir.DocumentReference) (json.RawMessage, error) {
	for _, c := range d.Content {
		a := c.Attachment
		if a == nil || !strings.HasPrefix(a.ContentType, fhir.ContentType) || a.Data == "" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(a.Data)
		if err != nil {
			return nil, err
		}
		if rt, err := fhir.ResourceType(b); err != nil || rt != "QuestionnaireResponse" {
			return nil, errors.New("attachment is not a QuestionnaireResponse")
		}
		return b, nil
	}
	return nil, errors.New("no application/fhir+json attachment")
}

// formInput is where SaveDraft and Submit start: the session's order
// resolved, its questionnaire, and body, the page's QuestionnaireResponse,
// parsed.
func (s *Service) formInput(ctx context.Context, sess *session.Session, body []byte) (json.RawMessage, *fhir.QuestionnaireResponse, error) {
	if err := s.requireOrder(ctx, sess); err != nil {
		return nil, nil, err
	}
	q, err := s.questionnaire(ctx, sess)
	if err != nil {
		return nil, nil, err
	}
	qr, err := parseResponse(body)
	if err != nil {
		return nil, nil, err
	}
	return q, qr, nil
}

// Saved is POST /api/draft.
type Saved struct {
	ID        string    `json:"id"`
	VersionID string    `json:"versionId,omitempty"`
	Created   bool      `json:"created"`
	SavedAt   time.Time `json:"savedAt"`
}

// SaveDraft stores body, the page's QuestionnaireResponse, as the order's
// draft at the payer: a DocumentReference (status current, docStatus
// preliminary) holding the response with status in-progress. An existing
// draft is updated with If-Match on the version the app last saw, so a
// draft changed elsewhere is never overwritten (the payer answers 412).
func (s *Service) SaveDraft(ctx context.Context, sess *session.Session, body []byte) (*Saved, error) {
	defer sess.LockFlow()()
	q, qr, err := s.formInput(ctx, sess, body)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	w := sess.Workspace()
	payerQR := s.payerCopy(sess, q, qr, "in-progress", now)
	doc, err := s.document(sess, q, payerQR, DocStatusDraft, now)
	if err != nil {
		return nil, err
	}
	draft := w.Draft
	if draft == nil {
		if _, err := s.findDraft(ctx, sess); err != nil {
			return nil, err
		}
		draft = sess.Workspace().Draft
	}
	const op = "save the draft"
	if draft != nil {
		st, err := s.Payer.UpdateDocumentReference(ctx, sess, op, draft.ID, draft.VersionID, doc)
		var pe *payer.Error
		switch {
		case err == nil:
			ref := &session.DraftRef{ID: st.ID, VersionID: st.VersionID}
			sess.UpdateWorkspace(func(w *session.Workspace) { w.Draft = ref })
			return &Saved{ID: st.ID, VersionID: st.VersionID, SavedAt: now}, nil
		case errors.As(err, &pe) && (pe.Status == http.StatusNotFound || pe.Status == http.StatusGone):
			// the draft is gone: save a new one below
		default:
			return nil, err
		}
	}
	st, err := s.Payer.CreateDocumentReference(ctx, sess, op, doc)
	if err != nil {
		return nil, err
	}
	ref := &session.DraftRef{ID: st.ID, VersionID: st.VersionID}
	sess.UpdateWorkspace(func(w *session.Workspace) { w.Draft = ref })
	return &Saved{ID: st.ID, VersionID: st.VersionID, Created: true, SavedAt: now}, nil
}

// Submitted is POST /api/submit.
type Submitted struct {
	DocumentID                 string `json:"documentId"`
	DocumentVersionID          string `json:"documentVersionId,omitempty"`
	SupersededDraftID          string `json:"supersededDraftId,omitempty"`
	EHRQuestionnaireResponseID string `json:"ehrQuestionnaireResponseId"`
}

// SubmitError is a submit that stopped after some steps held; Done says
// which (a retry of the same answers resumes after them).
type SubmitError struct {
	Err  error
	Done Submitted
}

func (e *SubmitError) Error() string { return "dtr: submit incomplete: " + e.Err.Error() }
func (e *SubmitError) Unwrap() error { return e.Err }

// Submit finishes the documentation with body, the page's completed
// QuestionnaireResponse: (1) a final DocumentReference at the payer
// (docStatus final) that replaces the draft (relatesTo replaces); (2) the
// draft marked superseded (If-Match); (3) the completed response written
// back to the EHR (subject Patient/{id}, basedOn the order). A retry with
// the same answers after a failure resumes at the step that failed.
func (s *Service) Submit(ctx context.Context, sess *session.Session, body []byte) (*Submitted, error) {
	defer sess.LockFlow()()
	q, qr, err := s.formInput(ctx, sess, body)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(body)
	w := sess.Workspace()
	sub := w.Submitted
	if sub == nil || sub.Digest != digest {
		sub = &session.Submission{Digest: digest, DraftToSupersede: w.Draft}
		// One search of the order's current documents finds both the draft
		// to supersede (unless the session already knows it) and an earlier
		// final document of these answers.
		op := "look for an earlier submission"
		if sub.DraftToSupersede == nil {
			op = "look for a saved draft"
		}
		order, docs, err := s.currentDocuments(ctx, sess, op)
		if err != nil {
			return nil, err
		}
		if sub.DraftToSupersede == nil {
			if _, err := rememberDraft(sess, order, docs); err != nil {
				return nil, err
			}
			sub.DraftToSupersede = sess.Workspace().Draft
		}
		// A submission of these answers may already be at the payer from an
		// earlier session whose write-back to the EHR failed (the EHR token
		// expired or was refused): the user relaunched and submits again.
		// Reuse that final document instead of storing a second one.
		fin, err := existingFinal(order, docs, qr)
		if err != nil {
			return nil, err
		}
		sub.Final = fin
	}
	save := func() {
		cp := *sub
		sess.UpdateWorkspace(func(w *session.Workspace) { w.Submitted = &cp })
	}
	now := s.now().UTC()
	done := func() Submitted {
		out := Submitted{SupersededDraftID: sub.SupersededDraft, EHRQuestionnaireResponseID: sub.EHRResponseID}
		if sub.Final != nil {
			out.DocumentID, out.DocumentVersionID = sub.Final.ID, sub.Final.VersionID
		}
		return out
	}

	// (1) the final document
	if sub.Final == nil {
		payerQR := s.payerCopy(sess, q, qr, "completed", now)
		doc, err := s.document(sess, q, payerQR, DocStatusFinal, now)
		if err != nil {
			return nil, err
		}
		if d := sub.DraftToSupersede; d != nil {
			doc.RelatesTo = []fhir.DocumentReferenceRelatesTo{{Code: RelatesToReplaces, Target: &fhir.Reference{Reference: "DocumentReference/" + d.ID}}}
		}
		st, err := s.Payer.CreateDocumentReference(ctx, sess, "submit the final documentation", doc)
		if err != nil {
			return nil, err
		}
		sub.Final = &session.DraftRef{ID: st.ID, VersionID: st.VersionID}
		save()
	}

	// (2) the draft, superseded
	if d := sub.DraftToSupersede; d != nil && sub.SupersededDraft == "" {
		if err := s.supersede(ctx, sess, d); err != nil {
			return nil, &SubmitError{Err: err, Done: done()}
		}
		sub.SupersededDraft = d.ID
		save()
		sess.UpdateWorkspace(func(w *session.Workspace) { w.Draft = nil })
	}

	// (3) the write-back to the EHR
	if sub.EHRResponseID == "" {
		id, err := s.EHR.CreateQuestionnaireResponse(ctx, sess, s.ehrCopy(sess, q, qr, now))
		if err != nil {
			return nil, &SubmitError{Err: err, Done: done()}
		}
		sub.EHRResponseID = id
		save()
	}
	return ptr(done()), nil
}

func ptr[T any](v T) *T { return &v }

// existingFinal is the current final DTR document of order among docs
// whose QuestionnaireResponse holds exactly qr's answers, or nil.
func existingFinal(order string, docs []payer.Stored, qr *fhir.QuestionnaireResponse) (*session.DraftRef, error) {
	want, err := json.Marshal(qr.Item)
	if err != nil {
		return nil, &Problem{Status: http.StatusBadRequest, Message: "The QuestionnaireResponse could not be encoded.", Cause: err}
	}
	for _, d := range docs {
		if d.Doc.Status != StatusCurrent || d.Doc.DocStatus != DocStatusFinal || !relatedTo(&d.Doc, order) || !isDTRDocument(&d.Doc) {
			continue
		}
		raw, err := attachedResponse(&d.Doc)
		if err != nil {
			continue
		}
		var stored fhir.QuestionnaireResponse
		if fhir.Decode(raw, &stored) != nil || stored.Status != "completed" {
			continue
		}
		if got, err := json.Marshal(stored.Item); err == nil && string(got) == string(want) {
			return &session.DraftRef{ID: d.ID, VersionID: d.VersionID}, nil
		}
	}
	return nil, nil
}

// supersede marks the draft superseded: read it (for its current content
// and version), set status superseded, update with If-Match. A 412 means it
// changed meanwhile: read and try once more.
func (s *Service) supersede(ctx context.Context, sess *session.Session, d *session.DraftRef) error {
	const op = "mark the draft as superseded"
	for attempt := 0; ; attempt++ {
		cur, err := s.Payer.ReadDocumentReference(ctx, sess, op, d.ID)
		if err != nil {
			return err
		}
		if cur.Doc.Status == StatusSuperseded {
			return nil
		}
		doc := cur.Doc
		doc.Status = StatusSuperseded
		doc.Meta = nil
		_, err = s.Payer.UpdateDocumentReference(ctx, sess, op, d.ID, cur.VersionID, &doc)
		var pe *payer.Error
		if err != nil && errors.As(err, &pe) && pe.Status == http.StatusPreconditionFailed && attempt == 0 {
			continue
		}
		return err
	}
}

// parseResponse reads the page's QuestionnaireResponse strictly (R4 JSON,
// no duplicate or case-variant keys).
func parseResponse(body []byte) (*fhir.QuestionnaireResponse, error) {
	if len(body) == 0 {
		return nil, &Problem{Status: http.StatusBadRequest, Message: "The request has no QuestionnaireResponse."}
	}
	if len(body) > MaxResponseBytes {
		return nil, &Problem{Status: http.StatusRequestEntityTooLarge, Message: "The QuestionnaireResponse is too large."}
	}
	var qr fhir.QuestionnaireResponse
	if err := fhir.Decode(body, &qr); err != nil {
		return nil, &Problem{Status: http.StatusBadRequest, Message: "The QuestionnaireResponse is not valid FHIR JSON: " + err.Error()}
	}
	if qr.ResourceType != "QuestionnaireResponse" {
		return nil, &Problem{Status: http.StatusBadRequest, Message: "The body must be a QuestionnaireResponse."}
	}
	return &qr, nil
}

// absolute makes a relative EHR reference absolute on the EHR's base.
func absolute(iss, ref string) string {
	if ref == "" || strings.Contains(ref, "://") {
		return ref
	}
	return strings.TrimRight(iss, "/") + "/" + ref
}

// relative strips the EHR's base from an absolute reference to it.
func relative(iss, ref string) string {
	return strings.TrimPrefix(ref, strings.TrimRight(iss, "/")+"/")
}

// stamp fills the elements the app owns, whatever the page sent: the
// questionnaire canonical, status, subject, basedOn, encounter, author,
// source and authored. References are made absolute (for the payer) or
// relative (for the EHR) by ref. The page's source is dropped: the answers
// come from the signed-in user, who is the author, and a source naming
// another patient would be refused by the payer.
func (s *Service) stamp(sess *session.Session, q json.RawMessage, in *fhir.QuestionnaireResponse, status string, now time.Time, ref func(string) string) *fhir.QuestionnaireResponse {
	l := sess.Launch()
	w := sess.Workspace()
	qr := *in
	qr.ResourceType = "QuestionnaireResponse"
	qr.ID, qr.Meta = "", nil
	qr.Questionnaire, _ = questionnaireCanonical(q)
	qr.Status = status
	qr.Subject = &fhir.Reference{Reference: ref("Patient/" + l.Patient)}
	qr.BasedOn = []fhir.Reference{{Reference: ref(w.OrderRef)}}
	qr.Encounter = nil
	if l.Encounter != "" {
		qr.Encounter = &fhir.Reference{Reference: ref("Encounter/" + l.Encounter)}
	}
	qr.Author = nil
	if l.FHIRUser != "" {
		qr.Author = &fhir.Reference{Reference: ref(relative(l.Issuer, l.FHIRUser))}
	}
	qr.Source = nil
	qr.Authored = now.Format(time.RFC3339)
	return &qr
}

// payerCopy is the response as stored at the payer: references absolute
// on the EHR's base, so the payer knows whose patient and order they name.
func (s *Service) payerCopy(sess *session.Session, q json.RawMessage, qr *fhir.QuestionnaireResponse, status string, now time.Time) *fhir.QuestionnaireResponse {
	iss := sess.Launch().Issuer
	return s.stamp(sess, q, qr, status, now, func(r string) string { return absolute(iss, r) })
}

// ehrCopy is the response as written back to the EHR: references relative
// to the EHR itself.
func (s *Service) ehrCopy(sess *session.Session, q json.RawMessage, qr *fhir.QuestionnaireResponse, now time.Time) *fhir.QuestionnaireResponse {
	iss := sess.Launch().Issuer
	return s.stamp(sess, q, qr, "completed", now, func(r string) string { return relative(iss, r) })
}

// document wraps qr in the DocumentReference stored at the payer: type
// LOINC 74465-6, subject the absolute patient, context.related the
// absolute order, the response base64 in content.attachment
// (application/fhir+json).
func (s *Service) document(sess *session.Session, q json.RawMessage, qr *fhir.QuestionnaireResponse, docStatus string, now time.Time) (*fhir.DocumentReference, error) {
	l := sess.Launch()
	w := sess.Workspace()
	data, err := json.Marshal(qr)
	if err != nil {
		return nil, &Problem{Status: http.StatusBadRequest, Message: "The QuestionnaireResponse could not be encoded.", Cause: err}
	}
	_, title := questionnaireCanonical(q)
	what := "Draft"
	if docStatus == DocStatusFinal {
		what = "Completed"
	}
	size := len(data)
	doc := &fhir.DocumentReference{
		ResourceType: "DocumentReference",
		Status:       StatusCurrent,
		DocStatus:    docStatus,
		Type: &fhir.CodeableConcept{
			Coding: []fhir.Coding{{System: LOINC, Code: DocTypeCode, Display: DocTypeDisplay}},
			Text:   "DTR questionnaire response",
		},
		Subject:     &fhir.Reference{Reference: absolute(l.Issuer, "Patient/"+l.Patient)},
		Date:        now.Format(time.RFC3339),
		Description: strings.TrimSpace(what + " DTR documentation: " + title),
		Content: []fhir.DocumentReferenceContent{{Attachment: &fhir.Attachment{
			ContentType: fhir.ContentType,
			Data:        base64.StdEncoding.EncodeToString(data),
			Size:        &size,
			Title:       title,
			Creation:    now.Format(time.RFC3339),
		}}},
		Context: &fhir.DocumentReferenceContext{
			Related: []fhir.Reference{{Reference: absolute(l.Issuer, w.OrderRef)}},
		},
	}
	if l.FHIRUser != "" {
		doc.Author = []fhir.Reference{{Reference: absolute(l.Issuer, relative(l.Issuer, l.FHIRUser))}}
	}
	if l.Encounter != "" {
		doc.Context.Encounter = []fhir.Reference{{Reference: absolute(l.Issuer, "Encounter/"+l.Encounter)}}
	}
	return doc, nil
}

// DocumentView is one entry of GET /api/documents.
type DocumentView struct {
	ID          string   `json:"id"`
	VersionID   string   `json:"versionId,omitempty"`
	Status      string   `json:"status"`
	DocStatus   string   `json:"docStatus,omitempty"`
	Date        string   `json:"date,omitempty"`
	Description string   `json:"description,omitempty"`
	Replaces    []string `json:"replaces,omitempty"`
	Answers     string   `json:"answersStatus,omitempty"` // status of the QuestionnaireResponse inside
}

// Documents lists the payer's documents for the session's order (the
// payer confines the search to the patient).
func (s *Service) Documents(ctx context.Context, sess *session.Session) ([]DocumentView, error) {
	if err := s.requireOrder(ctx, sess); err != nil {
		return nil, err
	}
	order := absolute(sess.Launch().Issuer, sess.Workspace().OrderRef)
	docs, err := s.Payer.SearchDocumentReferences(ctx, sess, "list the documents at the payer", url.Values{"related": {order}})
	if err != nil {
		return nil, err
	}
	out := []DocumentView{}
	for _, d := range docs {
		if !relatedTo(&d.Doc, order) {
			continue
		}
		v := DocumentView{ID: d.ID, VersionID: d.VersionID, Status: d.Doc.Status, DocStatus: d.Doc.DocStatus, Date: d.Doc.Date, Description: d.Doc.Description}
		for _, r := range d.Doc.RelatesTo {
			if r.Code == RelatesToReplaces && r.Target != nil {
				v.Replaces = append(v.Replaces, r.Target.Reference)
			}
		}
		if qr, err := attachedResponse(&d.Doc); err == nil {
			var h struct {
				Status string `json:"status"`
			}
			_ = json.Unmarshal(qr, &h)
			v.Answers = h.Status
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b DocumentView) int { return strings.Compare(b.Date, a.Date) })
	return out, nil
}
