package demo

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/fhir"
	"dtrsandbox/shared/jwks"
)

// Two checks need what only dtr-app holds: reading the stored document at
// the payer (the app's API lists documents but never hands out their
// content or its tokens), and presenting dtr-app's EHR token from another
// app (a token leaked from the app). The demo, run by the sandbox's
// operator on the machine that runs it, uses the app's private key from
// the data directory to get real dtr-app tokens itself: an EHR launch for
// pat-1, the authorization code caught on its way to the app's callback,
// exchanged with an assertion signed by that key; and a payer token the
// same way.

// appKeyPath is where the smartapp keeps its signing key
// (SMARTAPP_SIGNING_KEY, default {data}/smartapp/keys/signing-es384.pem).
func (f *flow) appKeyPath() string {
	if p := os.Getenv("SMARTAPP_SIGNING_KEY"); p != "" {
		return p
	}
	if f.cfg.DataDir == "" {
		return ""
	}
	return filepath.Join(f.cfg.DataDir, "smartapp", "keys", "signing-es384.pem")
}

// loadKey reads a PKCS#8 PEM private key without ever creating one.
func loadKey(path string) (*jwks.SigningKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s holds no PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve == elliptic.P384() {
			return jwks.NewSigningKey(k, jwks.ES384)
		}
		return jwks.NewSigningKey(k, jwks.ES256)
	case *rsa.PrivateKey:
		return jwks.NewSigningKey(k, jwks.RS384)
	}
	return nil, fmt.Errorf("%s: unsupported key type %T", path, k)
}

// obtainLegitToken gets dtr-app's EHR token for pat-1 and its payer token
// (once per run).
func (f *flow) obtainLegitToken() error {
	if f.legitEHRToken != "" {
		return nil
	}
	path := f.appKeyPath()
	if path == "" {
		return errors.New("needs the sandbox data directory (sandbox demo -data DIR) for dtr-app's key")
	}
	key, err := loadKey(path)
	if err != nil {
		return fmt.Errorf("dtr-app's key: %w", err)
	}
	scope := f.appScope
	if scope == "" {
		return errors.New("the scope dtr-app asks for is unknown (step 2 did not run)")
	}
	launch, err := f.launch(AppClientID, Patient, Practitioner, Encounter, []string{Coverage, Order}, "")
	if err != nil {
		return err
	}
	signer := &clientauth.Signer{Key: key, ClientID: AppClientID}
	ehrTok, err := f.authorizeCode(AppClientID, strings.TrimRight(f.cfg.App, "/")+"/callback", scope, launch, signer)
	if err != nil {
		return fmt.Errorf("dtr-app EHR token: %w", err)
	}
	if ehrTok.Patient != Patient {
		return fmt.Errorf("dtr-app's EHR token is for %q, want %s", ehrTok.Patient, Patient)
	}
	payerTok, err := assertionToken(f.ctx, f.api, f.payer.TokenEndpoint, signer, url.Values{
		"grant_type": {"client_credentials"},
		"scope":      {strings.Join(f.payer.ScopesSupported, " ")},
	})
	if err != nil {
		return fmt.Errorf("dtr-app payer token: %w", err)
	}
	f.legitEHRToken, f.legitPayerToken = ehrTok.AccessToken, payerTok.AccessToken
	f.legitTokenSource = "obtained as dtr-app with its key from " + path
	return nil
}

// appDocument is one entry of the app's GET /api/documents.
type appDocument struct {
	ID            string   `json:"id"`
	VersionID     string   `json:"versionId"`
	Status        string   `json:"status"`
	DocStatus     string   `json:"docStatus"`
	Replaces      []string `json:"replaces"`
	AnswersStatus string   `json:"answersStatus"`
}

// checkPayerDocument: the app lists the final document and the superseded
// draft; read at the payer, the document's subject is the EHR's absolute
// patient URL and its attachment is the completed QuestionnaireResponse.
func (f *flow) checkPayerDocument() (string, error) {
	res, err := f.app.get(f, "/api/documents")
	if err != nil {
		return "", err
	}
	var docs []appDocument
	if err := res.expect("GET /api/documents", &docs, http.StatusOK); err != nil {
		return "", err
	}
	var final, draft *appDocument
	for i := range docs {
		switch docs[i].ID {
		case f.docID:
			final = &docs[i]
		case f.draftID:
			draft = &docs[i]
		}
	}
	switch {
	case final == nil:
		return "", fmt.Errorf("the app's document list (%d) lacks DocumentReference/%s", len(docs), f.docID)
	case final.Status != "current":
		return "", fmt.Errorf("DocumentReference/%s has status %q, want current", f.docID, final.Status)
	case draft != nil && draft.Status != "superseded":
		return "", fmt.Errorf("the draft DocumentReference/%s has status %q, want superseded", f.draftID, draft.Status)
	}

	if err := f.obtainLegitToken(); err != nil {
		return "", err
	}
	r, err := do(f.ctx, f.api, http.MethodGet, f.cfg.PayerFHIR()+"/DocumentReference/"+f.docID, headers(f.legitPayerToken, f.legitEHRToken), nil)
	if err != nil {
		return "", err
	}
	var d fhir.DocumentReference
	if err := r.expect("GET DocumentReference/"+f.docID+" at the payer", &d, http.StatusOK); err != nil {
		return "", err
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
		return "", fmt.Errorf("the payer answered Content-Type %q, want application/fhir+json", ct)
	}
	want := f.cfg.PatientURL(Patient)
	if d.Subject == nil || d.Subject.Reference != want {
		return "", fmt.Errorf("DocumentReference/%s subject %+v, want %s", d.ID, d.Subject, want)
	}
	// The order, as an absolute reference to the EHR (CONTRACT.md "SMART
	// app"; the payer cannot resolve a relative one).
	wantOrder := f.cfg.EHRFHIR() + "/" + Order
	if d.Context == nil || !slices.ContainsFunc(d.Context.Related, func(r fhir.Reference) bool { return r.Reference == wantOrder }) {
		var related any
		if d.Context != nil {
			related = d.Context.Related
		}
		return "", fmt.Errorf("DocumentReference/%s context.related %+v, want the order %s", d.ID, related, wantOrder)
	}
	if len(d.Content) == 0 || d.Content[0].Attachment == nil {
		return "", fmt.Errorf("DocumentReference/%s has no attachment", d.ID)
	}
	att := d.Content[0].Attachment
	if !strings.HasPrefix(att.ContentType, "application/fhir+json") {
		return "", fmt.Errorf("attachment contentType %q, want application/fhir+json", att.ContentType)
	}
	raw, err := base64.StdEncoding.DecodeString(att.Data)
	if err != nil {
		return "", fmt.Errorf("attachment data is not base64: %w", err)
	}
	var qr fhir.QuestionnaireResponse
	if err := json.Unmarshal(raw, &qr); err != nil || qr.ResourceType != "QuestionnaireResponse" {
		return "", fmt.Errorf("the attachment is not a QuestionnaireResponse (%v)", err)
	}
	if qr.Status != "completed" {
		return "", fmt.Errorf("the attached QuestionnaireResponse has status %q, want completed", qr.Status)
	}
	if err := sameAnswers(f.submitted.Item, qr.Item); err != nil {
		return "", fmt.Errorf("the attached QuestionnaireResponse differs from the submission: %w", err)
	}
	draftNote := "draft not listed"
	if draft != nil {
		draftNote = "draft " + draft.ID + " superseded"
	}
	return fmt.Sprintf("DocumentReference/%s: status %s, docStatus %s, subject %s, order %s, attachment %s = completed QuestionnaireResponse with the %d submitted answers; %s (read as dtr-app, key from the data dir)",
		d.ID, d.Status, d.DocStatus, d.Subject.Reference, wantOrder, att.ContentType, len(answerSet(qr.Item)), draftNote), nil
}
