package integration

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"dtrsandbox/shared/fhir"
)

// happyPath: alice, registered at both servers, with a payer token and an
// EHR launch token for pat-1 (Coverage/cov-1, DeviceRequest/dr-oxygen-1),
// gets the home-oxygen Questionnaire from $questionnaire-package, saves a
// draft DocumentReference (the QuestionnaireResponse as a base64
// attachment, context.related the absolute order URL), finds it by
// search, updates it with If-Match, and reads it back. The payer binds it
// to {EHR FHIR base}/Patient/pat-1 and audits each step.
func happyPath(t *testing.T, c *cast) {
	w, s := c.w, c.a.fresh(t)
	since := time.Now()
	pat1 := w.ehrFHIR + "/Patient/pat-1"
	if s.patientRef() != pat1 {
		t.Fatalf("launch patient %s", s.patientRef())
	}

	// The questionnaire for the order.
	r := s.questionnairePackage(t)
	if r.status != http.StatusOK {
		t.Fatalf("$questionnaire-package: %s", r)
	}
	q := packagedQuestionnaire(t, r)
	if q.ID != "home-oxygen" || q.URL != homeOxygenURL || q.Status != "active" {
		t.Fatalf("packaged questionnaire id %q url %q status %q", q.ID, q.URL, q.Status)
	}
	for _, linkID := range []string{"f2f.diagnosis", "f2f.alternatives"} {
		if !slices.Contains(linkIDs(q.Item), linkID) {
			t.Fatalf("the home-oxygen questionnaire has no item %s", linkID)
		}
	}
	w.requireAudit(t, since, auditWant{agent: c.alice.payerID, outcome: "0", status: http.StatusOK})

	// The draft: no subject, so the payer stamps the launch patient.
	c.canary = "canary-" + randomHex(t, 8)
	r = s.create(t, w.draft(t, c.canary))
	id, etag := createdID(t, w, r)
	var created fhir.DocumentReference
	r.decode(t, &created)
	if created.ID != id || created.Subject == nil || created.Subject.Reference != pat1 ||
		created.Meta == nil || created.Meta.VersionID != "1" || created.Context == nil ||
		len(created.Context.Related) != 1 || created.Context.Related[0].Reference != w.ehrFHIR+"/DeviceRequest/dr-oxygen-1" {
		t.Fatalf("created document %s", r.body)
	}
	if !strings.Contains(answerText(t, &created), c.canary) {
		t.Fatalf("the stored attachment lost the answers: %s", r.body)
	}
	create := w.requireAudit(t, since, auditWant{agent: c.alice.payerID, outcome: "0", status: http.StatusCreated, what: "DocumentReference/" + id})
	if !slices.Contains(create.what(), pat1) {
		t.Fatalf("the create's AuditEvent names no patient %s: %s", pat1, create.raw)
	}
	if _, user := create.agents(); user != w.ehrFHIR+"/Practitioner/prac-1" {
		t.Fatalf("the create's AuditEvent user %q: %s", user, create.raw)
	}
	if create.ev.Action != "C" {
		t.Fatalf("the create's AuditEvent action %q", create.ev.Action)
	}

	// Found by search: the order it documents, the patient, and POST _search by id.
	for _, q := range []url.Values{
		{"related": {w.ehrFHIR + "/DeviceRequest/dr-oxygen-1"}},
		{"patient": {pat1}},
		{"subject": {pat1}, "status": {"current"}},
	} {
		_, docs := bundleDocs(t, s.search(t, q))
		if !slices.ContainsFunc(docs, func(d fhir.DocumentReference) bool { return d.ID == id }) {
			t.Fatalf("search %s does not find %s", q.Encode(), id)
		}
	}
	r = s.fhir(t, http.MethodPost, "/DocumentReference/_search", []byte(url.Values{"_id": {id}}.Encode()),
		"Content-Type", "application/x-www-form-urlencoded")
	if _, docs := bundleDocs(t, r); len(docs) != 1 || docs[0].ID != id {
		t.Fatalf("POST _search by _id: %s", r)
	}

	// The update: one more answer, the subject now written out, If-Match.
	updated := w.documentReference(t, w.questionnaireResponse("in-progress", nil,
		answer{"f2f", "f2f.diagnosis", map[string]any{"valueString": c.canary}},
		answer{"f2f", "f2f.alternatives", map[string]any{"valueBoolean": true}},
	), map[string]any{"reference": pat1}, map[string]any{"id": id})
	r = s.fhir(t, http.MethodPut, "/DocumentReference/"+id, updated, "If-Match", etag)
	if r.status != http.StatusOK || r.header.Get("ETag") != `W/"2"` {
		t.Fatalf("update with If-Match %s: %s (ETag %q)", etag, r, r.header.Get("ETag"))
	}
	if stale := s.fhir(t, http.MethodPut, "/DocumentReference/"+id, updated, "If-Match", etag); stale.status != http.StatusPreconditionFailed {
		t.Fatalf("update with a stale If-Match: %s", stale)
	}

	// Read back: version 2, same patient, both answers.
	r = s.read(t, id)
	if r.status != http.StatusOK || r.header.Get("ETag") != `W/"2"` {
		t.Fatalf("read: %s (ETag %q)", r, r.header.Get("ETag"))
	}
	var got fhir.DocumentReference
	r.decode(t, &got)
	if got.ID != id || got.Meta == nil || got.Meta.VersionID != "2" || got.Subject == nil || got.Subject.Reference != pat1 {
		t.Fatalf("read back %s", r.body)
	}
	if text := answerText(t, &got); !strings.Contains(text, c.canary) || !strings.Contains(text, `"valueBoolean":true`) {
		t.Fatalf("read back without both answers: %s", text)
	}
	w.requireAudit(t, since, auditWant{agent: c.alice.payerID, outcome: "0", status: http.StatusOK, what: "DocumentReference/" + id})
	c.aliceDoc, c.aliceETag = id, `W/"2"`
}

// packagedQuestionnaire is the Questionnaire of the first PackageBundle.
func packagedQuestionnaire(t *testing.T, r *reply) *fhir.Questionnaire {
	t.Helper()
	var out fhir.Parameters
	r.decode(t, &out)
	for _, p := range out.Parameter {
		if p.Name != "PackageBundle" {
			continue
		}
		var b fhir.Bundle
		if err := json.Unmarshal(p.Resource, &b); err != nil {
			t.Fatal(err)
		}
		if b.Type != "collection" || len(b.Entry) == 0 {
			t.Fatalf("PackageBundle %s", p.Resource)
		}
		var q fhir.Questionnaire
		if err := json.Unmarshal(b.Entry[0].Resource, &q); err != nil {
			t.Fatal(err)
		}
		if q.ResourceType != "Questionnaire" {
			t.Fatalf("the PackageBundle's first entry is a %s", q.ResourceType)
		}
		return &q
	}
	t.Fatalf("no PackageBundle in %s", clip(r.body))
	return nil
}

// linkIDs lists every item's linkId, depth first.
func linkIDs(items []fhir.QuestionnaireItem) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.LinkID)
		out = append(out, linkIDs(it.Item)...)
	}
	return out
}

// answerText is the attached QuestionnaireResponse as JSON text.
func answerText(t *testing.T, d *fhir.DocumentReference) string {
	t.Helper()
	b, err := json.Marshal(attachedResponse(t, d))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
