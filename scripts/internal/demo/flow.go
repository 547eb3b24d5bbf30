package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"dtrsandbox/shared/fhir"
	"dtrsandbox/shared/smart"
)

// flow is one run's state.
type flow struct {
	cfg       Config
	ctx       context.Context
	out       io.Writer
	transport http.RoundTripper
	api       *http.Client // no cookies, no redirects followed
	steps     []Step

	ehr, payer *smart.Configuration

	launchedAt, submittedAt time.Time
	marker                  string // recognisable free-text answer of this run

	// provider flow
	appScope      string // the scope dtr-app asked the EHR for
	lastChain     string // the redirect chain of the last app launch
	draftID       string // the draft DocumentReference at the payer
	app           *appSession
	questionnaire *fhir.Questionnaire
	saved         *fhir.QuestionnaireResponse // the draft as saved
	submitted     *fhir.QuestionnaireResponse // the completed response as submitted
	docID         string                      // the final DocumentReference at the payer
	ehrQRID       string                      // the QuestionnaireResponse written back to the EHR

	// security
	atk              *attacker
	legitEHRToken    string // a dtr-app EHR token for pat-1
	legitPayerToken  string // a dtr-app payer token
	legitTokenSource string
	forgedToken      string
	consentShown     bool // the last authorizeCode met a consent page
}

// run is the whole demo, step by step. A step whose input an earlier step
// failed to produce is reported as failed ("not run: needs ...").
func (f *flow) run() {
	f.api = &http.Client{
		Transport:     f.transport,
		Timeout:       f.cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	f.marker = "DTR demo " + time.Now().UTC().Format("15:04:05") + " " + randomString(4)

	var launchURL string
	provider := []struct {
		name string
		fn   stepFunc
	}{
		{"EHR launch", func() (string, error) {
			f.launchedAt = time.Now()
			u, detail, err := f.ehrLaunch()
			launchURL = u
			return detail, err
		}},
		{"app authorization", func() (string, error) { return f.appAuthorize(launchURL) }},
		{"questionnaire loaded", f.loadQuestionnaire},
		{"draft saved", f.saveDraft},
		{"relaunch", f.relaunch},
		{"draft resumed", f.resumeDraft},
		{"submitted", func() (string, error) {
			d, err := f.submit()
			if err == nil {
				f.submittedAt = time.Now()
			}
			return d, err
		}},
		{"document at the payer", f.checkPayerDocument},
		{"audit at the payer", f.checkPayerAudit},
		{"written back to the EHR", f.checkEHRWriteBack},
	}
	failed := ""
	for _, s := range provider {
		if failed != "" {
			f.skip(s.name, failed)
			continue
		}
		if !f.step(s.name, s.fn) {
			failed = fmt.Sprintf("%d. %s", len(f.steps), s.name)
		}
	}

	// The attacks. The attacker's own setup does not depend on the
	// provider flow; reading pat-1's document needs its id.
	if !f.step("attacker app registered and launched for pat-2", f.setupAttacker) {
		need := fmt.Sprintf("%d. attacker app", len(f.steps))
		for _, n := range []string{"attack: read pat-1's document by id -> 404", "attack: search pat-1 by patient and subject -> nothing",
			"attack: forged EHR token -> 401", "attack: dtr-app's EHR token with the attacker's payer token -> 403", "attacks audited as denied"} {
			f.skip(n, need)
		}
		return
	}
	if f.docID == "" {
		f.skip("attack: read pat-1's document by id -> 404", "the id of pat-1's document (steps 7-8)")
	} else {
		f.step("attack: read pat-1's document by id -> 404", f.attackReadByID)
	}
	if f.docID == "" {
		f.skip("attack: search pat-1 by patient and subject -> nothing", "a pat-1 document to look for (steps 7-8)")
	} else {
		f.step("attack: search pat-1 by patient and subject -> nothing", f.attackSearch)
	}
	f.step("attack: forged EHR token -> 401", f.attackForgedToken)
	f.step("attack: dtr-app's EHR token with the attacker's payer token -> 403", func() (string, error) {
		if err := f.obtainLegitToken(); err != nil {
			return "", err
		}
		return f.attackStolenToken()
	})
	f.step("attacks audited as denied", f.checkAttackAudit)
}

// ehrLaunch is the clinician's "Launch DTR" click as the EHR's API
// (CONTRACT.md "The EHR's launch button").
func (f *flow) ehrLaunch() (string, string, error) {
	if err := f.discoverServers(); err != nil {
		return "", "", err
	}
	launch, launchURL, err := f.launchFull(AppClientID, Patient, Practitioner, Encounter, []string{Coverage, Order}, "")
	if err != nil {
		return "", "", err
	}
	u, err := url.Parse(launchURL)
	if err != nil {
		return "", "", fmt.Errorf("launch_url %q: %w", launchURL, err)
	}
	if !strings.HasPrefix(launchURL, strings.TrimRight(f.cfg.App, "/")+"/") {
		return "", "", fmt.Errorf("launch_url %s is not at the app %s", launchURL, f.cfg.App)
	}
	if u.Query().Get("iss") != f.cfg.EHRFHIR() || u.Query().Get("launch") != launch {
		return "", "", fmt.Errorf("launch_url %s lacks iss=%s and launch=%s", launchURL, f.cfg.EHRFHIR(), launch)
	}
	return launchURL, fmt.Sprintf("launch %s for %s by %s with %s, %s -> %s", short(launch), Patient, Practitioner, Coverage, Order, u.Host+u.Path), nil
}

// discoverServers reads the EHR's and the payer's SMART configuration,
// once: the provider flow needs them first, and the attacker's setup reads
// them itself when the provider flow failed before.
func (f *flow) discoverServers() error {
	var err error
	if f.ehr == nil {
		if f.ehr, err = discover(f.ctx, f.api, f.cfg.EHRFHIR()); err != nil {
			return err
		}
	}
	if f.payer == nil {
		if f.payer, err = discover(f.ctx, f.api, f.cfg.PayerFHIR()); err != nil {
			return err
		}
	}
	return nil
}

// launch is POST {ehr}/api/launch; it returns the launch id.
func (f *flow) launch(clientID, patient, practitioner, encounter string, context []string, launchURL string) (string, error) {
	l, _, err := f.launchFull(clientID, patient, practitioner, encounter, context, launchURL)
	return l, err
}

func (f *flow) launchFull(clientID, patient, practitioner, encounter string, context []string, launchURL string) (string, string, error) {
	body := map[string]any{"client_id": clientID, "patient": patient, "practitioner": practitioner}
	if encounter != "" {
		body["encounter"] = encounter
	}
	var items []map[string]string
	for _, r := range context {
		items = append(items, map[string]string{"reference": r})
	}
	if len(items) > 0 {
		body["fhirContext"] = items
	}
	if launchURL != "" {
		body["launch_url"] = launchURL
	}
	res, err := do(f.ctx, f.api, http.MethodPost, strings.TrimRight(f.cfg.EHR, "/")+"/api/launch", nil, body)
	if err != nil {
		return "", "", err
	}
	var out struct {
		Launch    string `json:"launch"`
		LaunchURL string `json:"launch_url"`
	}
	if err := res.expect("POST /api/launch", &out, http.StatusCreated); err != nil {
		return "", "", err
	}
	if out.Launch == "" || out.LaunchURL == "" {
		return "", "", errors.New("POST /api/launch answered no launch or launch_url")
	}
	return out.Launch, out.LaunchURL, nil
}

// checkEHRWriteBack reads the completed QuestionnaireResponse back from the
// EHR's FHIR API as a system client the demo registers itself (RFC 7591,
// client_secret_basic, client_credentials with system/QuestionnaireResponse.rs).
func (f *flow) checkEHRWriteBack() (string, error) {
	reg, err := register(f.ctx, f.api, f.ehr.RegistrationEndpoint, map[string]any{
		"client_name":                "DTR demo checker (reads QuestionnaireResponses)",
		"token_endpoint_auth_method": "client_secret_basic",
		"grant_types":                []string{"client_credentials"},
		"scope":                      "system/QuestionnaireResponse.rs",
	})
	if err != nil {
		return "", err
	}
	if reg.ClientSecret == "" {
		return "", errors.New("EHR registration of a client_secret_basic client answered no client_secret")
	}
	tok, err := token(f.ctx, f.api, f.ehr.TokenEndpoint, url.Values{
		"grant_type": {"client_credentials"},
		"scope":      {"system/QuestionnaireResponse.rs"},
	}, reg.ClientID, reg.ClientSecret)
	if err != nil {
		return "", err
	}
	h := map[string]string{"Authorization": bearer(tok.AccessToken)}
	var qr fhir.QuestionnaireResponse
	how := ""
	if f.ehrQRID != "" {
		res, err := do(f.ctx, f.api, http.MethodGet, f.cfg.EHRFHIR()+"/QuestionnaireResponse/"+f.ehrQRID, h, nil)
		if err != nil {
			return "", err
		}
		if err := res.expect("GET QuestionnaireResponse/"+f.ehrQRID+" at the EHR", &qr, http.StatusOK); err != nil {
			return "", err
		}
		how = "read QuestionnaireResponse/" + f.ehrQRID
	} else {
		res, err := do(f.ctx, f.api, http.MethodGet, f.cfg.EHRFHIR()+"/QuestionnaireResponse?patient="+Patient, h, nil)
		if err != nil {
			return "", err
		}
		var b fhir.Bundle
		if err := res.expect("search QuestionnaireResponse?patient="+Patient+" at the EHR", &b, http.StatusOK); err != nil {
			return "", err
		}
		found := false
		for _, e := range b.Entry {
			var c fhir.QuestionnaireResponse
			if json.Unmarshal(e.Resource, &c) == nil && sameAnswers(f.submitted.Item, c.Item) == nil {
				qr, found = c, true
			}
		}
		if !found {
			return "", fmt.Errorf("none of the %d QuestionnaireResponses of %s at the EHR holds the submitted answers", len(b.Entry), Patient)
		}
		how = fmt.Sprintf("found QuestionnaireResponse/%s among %d by search", qr.ID, len(b.Entry))
	}
	if qr.Status != "completed" {
		return "", fmt.Errorf("the EHR's QuestionnaireResponse/%s has status %q, want completed", qr.ID, qr.Status)
	}
	if qr.Subject == nil || !strings.HasSuffix(qr.Subject.Reference, "Patient/"+Patient) {
		return "", fmt.Errorf("the EHR's QuestionnaireResponse/%s has subject %v, want Patient/%s", qr.ID, qr.Subject, Patient)
	}
	if err := sameAnswers(f.submitted.Item, qr.Item); err != nil {
		return "", fmt.Errorf("the EHR's copy differs from the submission: %w", err)
	}
	return fmt.Sprintf("%s as registered client %s (client_credentials, %s): completed, subject %s, answers match",
		how, short(reg.ClientID), tok.Scope, qr.Subject.Reference), nil
}
