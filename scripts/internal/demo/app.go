package demo

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"dtrsandbox/shared/fhir"
)

// appSession is one browser session with the SMART app after its EHR
// launch: the session cookie (in the browser's jar) and the CSRF token its
// JSON API wants on POSTs (smartapp/internal/server/routes.go).
type appSession struct {
	b       *browser
	base    string
	context appContext
}

// appContext is GET /api/context.
type appContext struct {
	Issuer  string `json:"issuer"`
	Patient struct {
		ID        string `json:"id"`
		Reference string `json:"reference"`
		Name      string `json:"name"`
	} `json:"patient"`
	User struct {
		Reference string `json:"reference"`
		Name      string `json:"name"`
	} `json:"user"`
	Order *struct {
		Reference         string `json:"reference"`
		AbsoluteReference string `json:"absoluteReference"`
	} `json:"order"`
	CSRFToken string `json:"csrf_token"`
}

// appAuthorize opens the launch URL in a fresh browser and follows the
// redirects: app /launch -> EHR authorize -> app /callback -> the app's
// page. The EHR must not show a consent page to dtr-app.
func (f *flow) appAuthorize(launchURL string) (string, error) {
	s, authz, err := f.openApp(launchURL)
	if err != nil {
		return "", err
	}
	f.app = s
	q := authz.Query()
	f.appScope = q.Get("scope")
	return fmt.Sprintf("%s; PKCE %s, aud %s, scope %q; %s", f.lastChain, q.Get("code_challenge_method"), q.Get("aud"), f.appScope, s.describe()), nil
}

// openApp runs one EHR launch through a new browser and returns the app
// session and the authorize request the app sent.
func (f *flow) openApp(launchURL string) (*appSession, *url.URL, error) {
	b := newBrowser(f.transport, f.cfg.Timeout)
	req, err := http.NewRequestWithContext(f.ctx, http.MethodGet, launchURL, nil)
	if err != nil {
		return nil, nil, err
	}
	p, err := b.navigate(req, nil)
	if err != nil {
		return nil, nil, err
	}
	f.lastChain = chain(p.Chain)
	var authz *url.URL
	sawCallback := false
	ehrHost, appHost := hostOf(f.cfg.EHR), hostOf(f.cfg.App)
	for _, u := range p.Chain {
		if u.Host == ehrHost && authz == nil && u.Query().Get("response_type") == "code" {
			authz = u
		}
		if u.Host == appHost && u.Query().Get("code") != "" {
			sawCallback = true
		}
	}
	switch {
	case authz == nil:
		return nil, nil, fmt.Errorf("the app never sent the browser to the EHR's authorization endpoint: %s (HTTP %d)", f.lastChain, p.Status)
	case p.URL.Host == ehrHost:
		return nil, nil, fmt.Errorf("the browser stayed at the EHR (%s, HTTP %d): a consent or login page for dtr-app? %s", p.URL.Path, p.Status, oneLine(string(clipBytes(p.Body, 160))))
	case !sawCallback:
		return nil, nil, fmt.Errorf("no callback with a code reached the app: %s", f.lastChain)
	case p.Status != http.StatusOK:
		return nil, nil, fmt.Errorf("the app's page after the callback answered HTTP %d: %s", p.Status, oneLine(string(clipBytes(p.Body, 200))))
	}
	if m := authz.Query().Get("code_challenge_method"); m != "S256" {
		return nil, nil, fmt.Errorf("the app's authorize request uses code_challenge_method %q, want S256", m)
	}
	if aud := authz.Query().Get("aud"); aud != f.cfg.EHRFHIR() {
		return nil, nil, fmt.Errorf("the app's authorize request has aud %q, want %s", aud, f.cfg.EHRFHIR())
	}
	s := &appSession{b: b, base: strings.TrimRight(f.cfg.App, "/")}
	if err := f.loadContext(s); err != nil {
		return nil, nil, err
	}
	return s, authz, nil
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

// loadContext reads GET /api/context: the launch context the app believes
// (from its verified token response) and the CSRF token.
func (f *flow) loadContext(s *appSession) error {
	res, err := s.get(f, "/api/context")
	if err != nil {
		return err
	}
	if err := res.expect("GET /api/context", &s.context, http.StatusOK); err != nil {
		return err
	}
	c := s.context
	switch {
	case c.CSRFToken == "":
		return errors.New("GET /api/context has no csrf_token")
	case c.Patient.ID != Patient:
		return fmt.Errorf("the app's context names patient %q, want %s", c.Patient.ID, Patient)
	case !strings.HasSuffix(c.User.Reference, "Practitioner/"+Practitioner):
		return fmt.Errorf("the app's context names user %q, want Practitioner/%s", c.User.Reference, Practitioner)
	case c.Order == nil || c.Order.Reference != Order:
		return fmt.Errorf("the app's context names order %+v, want %s", c.Order, Order)
	case c.Issuer != f.cfg.EHRFHIR():
		return fmt.Errorf("the app's context names issuer %q, want %s", c.Issuer, f.cfg.EHRFHIR())
	}
	return nil
}

func (s *appSession) describe() string {
	return fmt.Sprintf("app session for %s (%s), user %s, order %s", s.context.Patient.ID, s.context.Patient.Name, s.context.User.Reference, s.context.Order.Reference)
}

func (s *appSession) get(f *flow, path string) (*call, error) {
	return do(f.ctx, s.b.client, http.MethodGet, s.base+path, nil, nil)
}

func (s *appSession) post(f *flow, path string, body any) (*call, error) {
	return do(f.ctx, s.b.client, http.MethodPost, s.base+path, map[string]string{"X-CSRF-Token": s.context.CSRFToken}, body)
}

// questionnaireAnswer is GET /api/questionnaire.
type questionnaireAnswer struct {
	Questionnaire *fhir.Questionnaire `json:"questionnaire"`
	Draft         *struct {
		ID                    string                      `json:"id"`
		VersionID             string                      `json:"versionId"`
		Date                  string                      `json:"date"`
		QuestionnaireResponse *fhir.QuestionnaireResponse `json:"questionnaireResponse"`
	} `json:"draft"`
}

func (f *flow) getQuestionnaire(s *appSession) (*questionnaireAnswer, error) {
	res, err := s.get(f, "/api/questionnaire")
	if err != nil {
		return nil, err
	}
	var qa questionnaireAnswer
	if err := res.expect("GET /api/questionnaire", &qa, http.StatusOK); err != nil {
		return nil, err
	}
	if qa.Questionnaire == nil || qa.Questionnaire.ResourceType != "Questionnaire" {
		return nil, errors.New("GET /api/questionnaire answered no Questionnaire")
	}
	return &qa, nil
}

// loadQuestionnaire: the app fetched the order's questionnaire from the payer.
func (f *flow) loadQuestionnaire() (string, error) {
	qa, err := f.getQuestionnaire(f.app)
	if err != nil {
		return "", err
	}
	q := qa.Questionnaire
	if q.ID != QuestionnaireQ && !strings.HasSuffix(q.URL, "/Questionnaire/"+QuestionnaireQ) {
		return "", fmt.Errorf("questionnaire %s (%s), want %s", q.ID, q.URL, QuestionnaireQ)
	}
	f.questionnaire = q
	draft := "no draft yet"
	if qa.Draft != nil {
		draft = "an earlier draft exists (DocumentReference/" + qa.Draft.ID + ")"
	}
	return fmt.Sprintf("%s %q version %s, %d questions; %s", q.ID, q.Title, q.Version, countQuestions(q.Item), draft), nil
}

func countQuestions(items []fhir.QuestionnaireItem) int {
	n := 0
	for _, it := range items {
		if it.Type != "group" && it.Type != "display" {
			n++
		}
		n += countQuestions(it.Item)
	}
	return n
}

// saveDraft fills the form and saves it as the order's draft.
func (f *flow) saveDraft() (string, error) {
	qr, n := fill(f.questionnaire, f.marker, f.launchedAt)
	res, err := f.app.post(f, "/api/draft", qr)
	if err != nil {
		return "", err
	}
	var out struct {
		ID        string `json:"id"`
		VersionID string `json:"versionId"`
		Created   bool   `json:"created"`
	}
	if err := res.expect("POST /api/draft", &out, http.StatusOK, http.StatusCreated); err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", errors.New("POST /api/draft answered no draft id")
	}
	f.saved, f.draftID = qr, out.ID
	verb := "updated"
	if out.Created {
		verb = "created"
	}
	return fmt.Sprintf("%d answers, free text %q -> draft DocumentReference/%s %s (version %s)", n, f.marker, out.ID, verb, out.VersionID), nil
}

// relaunch: a new EHR launch opens a new app session in a new browser.
func (f *flow) relaunch() (string, error) {
	_, launchURL, err := f.launchFull(AppClientID, Patient, Practitioner, Encounter, []string{Coverage, Order}, "")
	if err != nil {
		return "", err
	}
	old := f.app
	s, _, err := f.openApp(launchURL)
	if err != nil {
		return "", err
	}
	if old != nil && s.context.CSRFToken == old.context.CSRFToken {
		return "", errors.New("the new session has the old session's CSRF token")
	}
	f.app = s
	return "new launch, new browser, new " + s.describe(), nil
}

// resumeDraft: the new session finds the saved draft with its answers.
func (f *flow) resumeDraft() (string, error) {
	qa, err := f.getQuestionnaire(f.app)
	if err != nil {
		return "", err
	}
	switch {
	case qa.Draft == nil || qa.Draft.QuestionnaireResponse == nil:
		return "", errors.New("the relaunched app found no draft")
	case qa.Draft.ID != f.draftID:
		return "", fmt.Errorf("the relaunched app found draft %s, want the one saved, %s", qa.Draft.ID, f.draftID)
	}
	if err := sameAnswers(f.saved.Item, qa.Draft.QuestionnaireResponse.Item); err != nil {
		return "", err
	}
	return fmt.Sprintf("DocumentReference/%s with all %d saved answers, including %q", qa.Draft.ID, len(answerSet(f.saved.Item)), f.marker), nil
}

// submit completes the response and submits it: final document at the
// payer, draft superseded, QuestionnaireResponse written back to the EHR.
func (f *flow) submit() (string, error) {
	qr := *f.saved
	qr.Status = "completed"
	res, err := f.app.post(f, "/api/submit", &qr)
	if err != nil {
		return "", err
	}
	var out struct {
		DocumentID                 string `json:"documentId"`
		DocumentVersionID          string `json:"documentVersionId"`
		SupersededDraftID          string `json:"supersededDraftId"`
		EHRQuestionnaireResponseID string `json:"ehrQuestionnaireResponseId"`
	}
	if err := res.expect("POST /api/submit", &out, http.StatusOK, http.StatusCreated); err != nil {
		return "", err
	}
	f.submitted = &qr
	f.docID, f.ehrQRID = out.DocumentID, out.EHRQuestionnaireResponseID
	switch {
	case f.docID == "":
		return "", errors.New("POST /api/submit answered no documentId")
	case f.ehrQRID == "":
		return "", errors.New("POST /api/submit answered no ehrQuestionnaireResponseId")
	case out.SupersededDraftID != f.draftID:
		return "", fmt.Errorf("POST /api/submit superseded draft %q, want %s", out.SupersededDraftID, f.draftID)
	}
	return fmt.Sprintf("final DocumentReference/%s at the payer (draft %s superseded), QuestionnaireResponse/%s at the EHR", f.docID, out.SupersededDraftID, f.ehrQRID), nil
}
