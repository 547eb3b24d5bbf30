package dtr_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"dtrsandbox/shared/fhir"
	"dtrsandbox/shared/smart"
	"dtrsandbox/smartapp/internal/dtr"
	"dtrsandbox/smartapp/internal/payer"
	"dtrsandbox/smartapp/internal/standin"
	"dtrsandbox/smartapp/internal/testworld"
)

// response is what the page sends: LHC-Forms output with one answer.
func response(flow string) []byte {
	return []byte(`{"resourceType":"QuestionnaireResponse","status":"in-progress","questionnaire":"ignored",
	 "subject":{"reference":"Patient/someone-else"},
	 "source":{"reference":"Patient/someone-else"},"author":{"reference":"Patient/someone-else"},
	 "item":[{"linkId":"order","text":"Oxygen order","item":[
	   {"linkId":"order.flow-rate","text":"Prescribed flow rate","answer":[{"valueDecimal":` + flow + `}]}]}]}`)
}

// attached decodes the QuestionnaireResponse in a document's attachment.
func attached(t *testing.T, d fhir.DocumentReference) fhir.QuestionnaireResponse {
	t.Helper()
	if len(d.Content) != 1 || d.Content[0].Attachment == nil || d.Content[0].Attachment.ContentType != "application/fhir+json" {
		t.Fatalf("content %+v", d.Content)
	}
	b, err := base64.StdEncoding.DecodeString(d.Content[0].Attachment.Data)
	if err != nil {
		t.Fatalf("attachment data is not base64: %v", err)
	}
	var qr fhir.QuestionnaireResponse
	if err := fhir.Decode(b, &qr); err != nil {
		t.Fatal(err)
	}
	return qr
}

func flowRate(qr fhir.QuestionnaireResponse) string {
	for _, it := range qr.Item {
		for _, sub := range it.Item {
			if sub.LinkID == "order.flow-rate" && len(sub.Answer) == 1 && sub.Answer[0].ValueDecimal != nil {
				return string(*sub.Answer[0].ValueDecimal)
			}
		}
	}
	return ""
}

func TestFormLoadsTheQuestionnaire(t *testing.T) {
	w := testworld.New(t, standin.EHROptions{})
	s := w.Session(t, time.Hour)
	f, err := w.Flow.Form(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(f.Questionnaire), `"id":"home-oxygen"`) || f.Draft != nil {
		t.Fatalf("form %s draft %+v", f.Questionnaire[:80], f.Draft)
	}
	var in fhir.Parameters
	_ = json.Unmarshal(w.Payer.Recorded()[0].Body, &in)
	var cov, ord struct{ ResourceType, ID string }
	_ = json.Unmarshal(in.Parameter[0].Resource, &cov)
	_ = json.Unmarshal(in.Parameter[1].Resource, &ord)
	if cov.ID != "cov-1" || ord.ResourceType != "DeviceRequest" || ord.ID != "dr-oxygen-1" {
		t.Fatalf("$questionnaire-package got %+v %+v", cov, ord)
	}
}

func TestSaveDraftCreatesThenUpdatesWithIfMatch(t *testing.T) {
	w := testworld.New(t, standin.EHROptions{Encounter: "enc-1"})
	s := w.Session(t, time.Hour)
	ctx := context.Background()
	iss := w.EHR.Issuer()

	saved, err := w.Flow.SaveDraft(ctx, s, response("2.5"))
	if err != nil {
		t.Fatal(err)
	}
	if !saved.Created || saved.ID == "" || saved.VersionID != "1" {
		t.Fatalf("saved %+v", saved)
	}
	d := w.Payer.Docs()[saved.ID]
	if d.Status != "current" || d.DocStatus != "preliminary" {
		t.Fatalf("status %q docStatus %q", d.Status, d.DocStatus)
	}
	if d.Type == nil || d.Type.Coding[0].System != "http://loinc.org" || d.Type.Coding[0].Code != dtr.DocTypeCode {
		t.Fatalf("type %+v", d.Type)
	}
	if d.Subject == nil || d.Subject.Reference != iss+"/Patient/pat-1" {
		t.Fatalf("subject %+v", d.Subject)
	}
	if d.Context == nil || len(d.Context.Related) != 1 || d.Context.Related[0].Reference != iss+"/DeviceRequest/dr-oxygen-1" {
		t.Fatalf("context.related %+v", d.Context)
	}
	qr := attached(t, d)
	if qr.Status != "in-progress" || flowRate(qr) != "2.5" {
		t.Fatalf("attached response status %q flow %q", qr.Status, flowRate(qr))
	}
	if qr.Subject.Reference != iss+"/Patient/pat-1" || qr.BasedOn[0].Reference != iss+"/DeviceRequest/dr-oxygen-1" ||
		qr.Questionnaire != "http://sandbox.dtr.example/fhir/Questionnaire/home-oxygen|2026.1" || qr.Encounter.Reference != iss+"/Encounter/enc-1" {
		t.Fatalf("attached response references %+v %+v %q", qr.Subject, qr.BasedOn, qr.Questionnaire)
	}
	if qr.Source != nil || qr.Author == nil || qr.Author.Reference != iss+"/Practitioner/prac-1" {
		t.Fatalf("the page's source and author were kept: %+v %+v", qr.Source, qr.Author)
	}

	saved2, err := w.Flow.SaveDraft(ctx, s, response("3"))
	if err != nil {
		t.Fatal(err)
	}
	if saved2.Created || saved2.ID != saved.ID || saved2.VersionID != "2" {
		t.Fatalf("second save %+v", saved2)
	}
	recs := w.Payer.Recorded()
	last := recs[len(recs)-1]
	if last.Method != http.MethodPut || last.Path != "DocumentReference/"+saved.ID || last.IfMatch != `W/"1"` {
		t.Fatalf("update was %s %s If-Match %q", last.Method, last.Path, last.IfMatch)
	}
	if got := flowRate(attached(t, w.Payer.Docs()[saved.ID])); got != "3" {
		t.Fatalf("updated flow %q", got)
	}
	if len(w.Payer.Docs()) != 1 {
		t.Fatalf("%d documents, want the one draft", len(w.Payer.Docs()))
	}
}

func TestSaveDraftNeverOverwritesAChangedDraft(t *testing.T) {
	w := testworld.New(t, standin.EHROptions{})
	s := w.Session(t, time.Hour)
	ctx := context.Background()
	if _, err := w.Flow.SaveDraft(ctx, s, response("2.5")); err != nil {
		t.Fatal(err)
	}
	// Another session (a relaunch elsewhere) updates the draft meanwhile.
	other := w.Session(t, time.Hour)
	if _, err := w.Flow.Form(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Flow.SaveDraft(ctx, other, response("4")); err != nil {
		t.Fatal(err)
	}
	_, err := w.Flow.SaveDraft(ctx, s, response("9"))
	var pe *payer.Error
	if !errors.As(err, &pe) || pe.Status != http.StatusPreconditionFailed {
		t.Fatalf("err %v, want the payer's 412", err)
	}
	for _, d := range w.Payer.Docs() {
		if got := flowRate(attached(t, d)); got != "4" {
			t.Fatalf("draft overwritten: flow %q", got)
		}
	}
}

func TestRelaunchResumesTheDraft(t *testing.T) {
	w := testworld.New(t, standin.EHROptions{})
	ctx := context.Background()
	first := w.Session(t, time.Hour)
	saved, err := w.Flow.SaveDraft(ctx, first, response("2.5"))
	if err != nil {
		t.Fatal(err)
	}
	relaunch := w.Session(t, time.Hour)
	f, err := w.Flow.Form(ctx, relaunch)
	if err != nil {
		t.Fatal(err)
	}
	if f.Draft == nil || f.Draft.ID != saved.ID {
		t.Fatalf("draft not offered: %+v", f.Draft)
	}
	var qr fhir.QuestionnaireResponse
	if err := fhir.Decode(f.Draft.QuestionnaireResponse, &qr); err != nil || flowRate(qr) != "2.5" {
		t.Fatalf("resumed answers %s (%v)", f.Draft.QuestionnaireResponse, err)
	}
	// The relaunched session updates the same draft.
	saved2, err := w.Flow.SaveDraft(ctx, relaunch, response("3"))
	if err != nil || saved2.ID != saved.ID {
		t.Fatalf("%+v %v", saved2, err)
	}
}

func TestSubmitSupersedesTheDraftAndWritesBack(t *testing.T) {
	w := testworld.New(t, standin.EHROptions{})
	s := w.Session(t, time.Hour)
	ctx := context.Background()
	iss := w.EHR.Issuer()
	draft, err := w.Flow.SaveDraft(ctx, s, response("2.5"))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := w.Flow.Submit(ctx, s, response("3"))
	if err != nil {
		t.Fatal(err)
	}
	docs := w.Payer.Docs()
	final := docs[sub.DocumentID]
	if sub.DocumentID == draft.ID || final.Status != "current" || final.DocStatus != "final" {
		t.Fatalf("final %+v", final)
	}
	if len(final.RelatesTo) != 1 || final.RelatesTo[0].Code != "replaces" || final.RelatesTo[0].Target.Reference != "DocumentReference/"+draft.ID {
		t.Fatalf("relatesTo %+v", final.RelatesTo)
	}
	if qr := attached(t, final); qr.Status != "completed" || flowRate(qr) != "3" {
		t.Fatalf("final answers %q %q", qr.Status, flowRate(qr))
	}
	old := docs[draft.ID]
	if old.Status != "superseded" || sub.SupersededDraftID != draft.ID {
		t.Fatalf("draft status %q", old.Status)
	}
	var supersede *standin.Recorded
	for _, r := range w.Payer.Recorded() {
		if r.Method == http.MethodPut && r.Path == "DocumentReference/"+draft.ID && strings.Contains(string(r.Body), `"superseded"`) {
			supersede = &r
		}
	}
	if supersede == nil || supersede.IfMatch != `W/"1"` {
		t.Fatalf("supersede request %+v", supersede)
	}
	back := w.EHR.WrittenBack()
	if len(back) != 1 {
		t.Fatalf("%d responses written back", len(back))
	}
	var qr fhir.QuestionnaireResponse
	if err := fhir.Decode(back[0], &qr); err != nil {
		t.Fatal(err)
	}
	if qr.Status != "completed" || qr.Subject.Reference != "Patient/pat-1" || qr.BasedOn[0].Reference != "DeviceRequest/dr-oxygen-1" ||
		qr.Author.Reference != "Practitioner/prac-1" || flowRate(qr) != "3" || sub.EHRQuestionnaireResponseID == "" {
		t.Fatalf("written back %s", back[0])
	}
	if strings.Contains(string(back[0]), iss) {
		t.Fatalf("write-back carries absolute references to the EHR itself: %s", back[0])
	}
	// A relaunch finds no draft any more.
	f, err := w.Flow.Form(ctx, w.Session(t, time.Hour))
	if err != nil || f.Draft != nil {
		t.Fatalf("draft after submit %+v %v", f.Draft, err)
	}
}

func TestSubmitRetryResumesAfterAFailedWriteBack(t *testing.T) {
	w := testworld.New(t, standin.EHROptions{})
	s := w.Session(t, time.Hour)
	ctx := context.Background()
	if _, err := w.Flow.SaveDraft(ctx, s, response("2.5")); err != nil {
		t.Fatal(err)
	}
	w.EHR.FailWriteBack(http.StatusServiceUnavailable, 1)
	_, err := w.Flow.Submit(ctx, s, response("3"))
	var se *dtr.SubmitError
	if !errors.As(err, &se) || se.Done.DocumentID == "" || se.Done.SupersededDraftID == "" || se.Done.EHRQuestionnaireResponseID != "" {
		t.Fatalf("err %v", err)
	}
	sub, err := w.Flow.Submit(ctx, s, response("3"))
	if err != nil {
		t.Fatal(err)
	}
	if sub.DocumentID != se.Done.DocumentID || len(w.Payer.Docs()) != 2 || len(w.EHR.WrittenBack()) != 1 {
		t.Fatalf("retry repeated steps: %+v, %d documents, %d write-backs", sub, len(w.Payer.Docs()), len(w.EHR.WrittenBack()))
	}
}

// TestResubmitAfterRelaunchReusesTheFinalDocument: the write-back fails
// because the EHR no longer accepts the token; the user relaunches (a new
// session) and submits the same answers: the final document already at the
// payer is reused, not stored twice, and the write-back happens once.
func TestResubmitAfterRelaunchReusesTheFinalDocument(t *testing.T) {
	w := testworld.New(t, standin.EHROptions{})
	ctx := context.Background()
	s1 := w.Session(t, time.Hour)
	if _, err := w.Flow.SaveDraft(ctx, s1, response("2.5")); err != nil {
		t.Fatal(err)
	}
	w.EHR.FailWriteBack(http.StatusUnauthorized, 1)
	_, err := w.Flow.Submit(ctx, s1, response("3"))
	var se *dtr.SubmitError
	if !errors.As(err, &se) || se.Done.DocumentID == "" || se.Done.EHRQuestionnaireResponseID != "" {
		t.Fatalf("err %v", err)
	}
	s2 := w.Session(t, time.Hour)
	sub, err := w.Flow.Submit(ctx, s2, response("3"))
	if err != nil {
		t.Fatal(err)
	}
	if sub.DocumentID != se.Done.DocumentID || len(w.Payer.Docs()) != 2 || len(w.EHR.WrittenBack()) != 1 || sub.EHRQuestionnaireResponseID == "" {
		t.Fatalf("resubmit: %+v, %d documents (want the draft and one final), %d write-backs", sub, len(w.Payer.Docs()), len(w.EHR.WrittenBack()))
	}
	// Other answers are a new submission.
	s3 := w.Session(t, time.Hour)
	other, err := w.Flow.Submit(ctx, s3, response("4"))
	if err != nil {
		t.Fatal(err)
	}
	if other.DocumentID == sub.DocumentID || len(w.Payer.Docs()) != 3 {
		t.Fatalf("new answers reused the old final document: %+v", other)
	}
}

func TestSubmitWithoutDraft(t *testing.T) {
	w := testworld.New(t, standin.EHROptions{})
	s := w.Session(t, time.Hour)
	sub, err := w.Flow.Submit(context.Background(), s, response("3"))
	if err != nil {
		t.Fatal(err)
	}
	if d := w.Payer.Docs()[sub.DocumentID]; d.DocStatus != "final" || len(d.RelatesTo) != 0 || sub.SupersededDraftID != "" {
		t.Fatalf("final %+v", d)
	}
}

func TestBadResponsesAreRefused(t *testing.T) {
	w := testworld.New(t, standin.EHROptions{})
	s := w.Session(t, time.Hour)
	for name, body := range map[string]string{
		"empty":          ``,
		"not JSON":       `{`,
		"other resource": `{"resourceType":"Patient"}`,
		"duplicate key":  `{"resourceType":"QuestionnaireResponse","status":"completed","status":"x"}`,
		"case variant":   `{"resourceType":"QuestionnaireResponse","Subject":{"reference":"Patient/x"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := w.Flow.SaveDraft(context.Background(), s, []byte(body))
			var pr *dtr.Problem
			if !errors.As(err, &pr) || pr.Status != http.StatusBadRequest {
				t.Fatalf("err %v", err)
			}
		})
	}
	if len(w.Payer.Docs()) != 0 {
		t.Fatal("a bad response was stored")
	}
}

func TestContextView(t *testing.T) {
	w := testworld.New(t, standin.EHROptions{NeedPatientBanner: true})
	s := w.Session(t, time.Hour)
	v, err := w.Flow.Context(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if v.Patient.Name != "Harold James Whitfield" || v.Patient.BirthDate != "1948-03-14" || v.Order == nil ||
		v.Order.Reference != "DeviceRequest/dr-oxygen-1" || v.Coverage == nil || v.Coverage.MemberID != "SHP100234501" {
		t.Fatalf("context %+v order %+v coverage %+v", v, v.Order, v.Coverage)
	}
	// The id_token has no name (as the sandbox EHR's): the user's name is
	// read from the fhirUser resource at the EHR.
	if v.User.Reference != w.EHR.Issuer()+"/Practitioner/prac-1" || v.User.Name != "Dr. Alice M. Carter, MD" {
		t.Fatalf("user %+v", v.User)
	}
}

func TestStandaloneChoosesAnOrder(t *testing.T) {
	w := testworld.New(t, standin.EHROptions{FHIRContext: []smart.ContextItem{}})
	s := w.Session(t, time.Hour)
	ctx := context.Background()
	v, err := w.Flow.Context(ctx, s)
	if err != nil || v.Order != nil {
		t.Fatalf("%+v %v", v, err)
	}
	if _, err := w.Flow.Form(ctx, s); err == nil {
		t.Fatal("form without an order")
	}
	orders, err := w.Flow.Orders(ctx, s)
	if err != nil || len(orders) != 1 || orders[0].Reference != "DeviceRequest/dr-oxygen-1" {
		t.Fatalf("orders %+v %v", orders, err)
	}
	if err := w.Flow.SelectOrder(ctx, s, "DeviceRequest/dr-cpap-2"); err == nil {
		t.Fatal("selected another patient's order")
	}
	if err := w.Flow.SelectOrder(ctx, s, "DeviceRequest/dr-oxygen-1"); err != nil {
		t.Fatal(err)
	}
	if v, err := w.Flow.Context(ctx, s); err != nil || v.Coverage == nil || v.Coverage.Reference != "Coverage/cov-1" {
		t.Fatalf("%+v %v", v, err)
	}
}
