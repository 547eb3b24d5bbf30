package documents

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"dtrsandbox/payer/internal/audit"
	"dtrsandbox/shared/fhir"

	"gorm.io/gorm"
)

func attach(contentType string, data []byte) string {
	return `"content":[{"attachment":{"contentType":"` + contentType + `","data":"` + base64.StdEncoding.EncodeToString(data) + `"}}]`
}

// docRefWithContent is a DocumentReference without subject whose content
// member is given raw.
func docRefWithContent(content string) []byte {
	return []byte(`{"resourceType":"DocumentReference","status":"current",` + content + `}`)
}

// TestCreateConfinement: a create is stored only about the launch patient;
// any other subject, however written, is refused with nothing stored, and
// each request leaves exactly one AuditEvent with its reason.
func TestCreateConfinement(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 2<<20)
	cases := []struct {
		name    string
		caller  string
		typ     string
		body    []byte
		ctype   string
		status  int
		code    string // issue code of the OperationOutcome
		reason  string // substring of the AuditEvent reason
		subject string // stored subject on success
	}{
		{name: "no subject is stamped", typ: TypeDocumentReference, body: docRef("", nil), status: 201, subject: pat1},
		{name: "own absolute subject", typ: TypeDocumentReference, body: docRef(ref(pat1), nil), status: 201, subject: pat1},
		{name: "own subject with display and type", typ: TypeDocumentReference, body: docRef(`{"reference":"`+pat1+`","type":"Patient","display":"M W"}`, nil), status: 201, subject: pat1},
		{name: "another patient absolute", typ: TypeDocumentReference, body: docRef(ref(pat2), nil), status: 403, code: "forbidden", reason: "another patient"},
		{name: "other EHR same id", typ: TypeDocumentReference, body: docRef(ref("https://evil.test/fhir/Patient/pat-1"), nil), status: 403, code: "forbidden", reason: "another patient"},
		{name: "relative other", typ: TypeDocumentReference, body: docRef(ref("Patient/pat-2"), nil), status: 403, code: "forbidden", reason: "relative"},
		{name: "relative same id", typ: TypeDocumentReference, body: docRef(ref("Patient/pat-1"), nil), status: 403, code: "forbidden", reason: "relative"},
		{name: "versioned own", typ: TypeDocumentReference, body: docRef(ref(pat1+"/_history/1"), nil), status: 403, code: "forbidden", reason: "another patient"},
		{name: "contained", typ: TypeDocumentReference, body: docRef(ref("#p1"), nil, `"contained":[{"resourceType":"Patient","id":"p1"}]`), status: 403, code: "forbidden", reason: "contained"},
		{name: "conditional", typ: TypeDocumentReference, body: docRef(ref("Patient?identifier=http://x|1"), nil), status: 403, code: "forbidden", reason: "conditional"},
		{name: "urn uuid", typ: TypeDocumentReference, body: docRef(ref("urn:uuid:0f2d4b8e-6e1c-4f3a-b7a5-91c2de34a7f0"), nil), status: 403, code: "forbidden", reason: "URN"},
		{name: "identifier only", typ: TypeDocumentReference, body: docRef(`{"identifier":{"system":"http://mrn","value":"123"}}`, nil), status: 403, code: "forbidden", reason: "identifier"},
		{name: "own reference plus identifier", typ: TypeDocumentReference, body: docRef(`{"reference":"`+pat1+`","identifier":{"system":"http://mrn","value":"2"}}`, nil), status: 403, code: "forbidden", reason: "identifier"},
		{name: "display only", typ: TypeDocumentReference, body: docRef(`{"display":"Margaret"}`, nil), status: 403, code: "forbidden", reason: "no literal reference"},
		{name: "empty object", typ: TypeDocumentReference, body: docRef(`{}`, nil), status: 403, code: "forbidden", reason: "no literal reference"},
		{name: "null", typ: TypeDocumentReference, body: docRef(`null`, nil), status: 403, code: "forbidden", reason: "null"},
		{name: "wrong type", typ: TypeDocumentReference, body: docRef(`{"reference":"`+pat1+`","type":"Group"}`, nil), status: 403, code: "forbidden", reason: "type"},
		{name: "not a reference", typ: TypeDocumentReference, body: docRef(`"`+pat1+`"`, nil), status: 403, code: "forbidden", reason: "subject"},
		{name: "case-variant key", typ: TypeDocumentReference, body: []byte(strings.Replace(string(docRef("", nil)), `"status"`, `"Subject":`+ref(pat2)+`,"status"`, 1)), status: 403, code: "forbidden", reason: "subject"},
		{name: "long-s variant key", typ: TypeDocumentReference, body: []byte(strings.Replace(string(docRef("", nil)), `"status"`, `"ſubject":`+ref(pat2)+`,"status"`, 1)), status: 403, code: "forbidden", reason: "subject"},
		{name: "duplicate subject", typ: TypeDocumentReference, body: []byte(strings.Replace(string(docRef(ref(pat1), nil)), `"status"`, `"subject":`+ref(pat2)+`,"status"`, 1)), status: 403, code: "forbidden", reason: "subject"},
		{name: "case-variant reference key", typ: TypeDocumentReference, body: docRef(`{"reference":"`+pat1+`","Reference":"`+pat2+`"}`, nil), status: 403, code: "forbidden", reason: "subject"},
		{name: "contained Patient without reference to it", typ: TypeDocumentReference, body: docRef("", nil, `"contained":[{"resourceType":"Patient","id":"p2"}]`), status: 403, code: "forbidden", reason: "contained Patient"},
		{name: "contained QR of another patient", typ: TypeDocumentReference, body: docRef("", nil, `"contained":[`+string(questionnaireResponse(ref(pat2)))+`]`), status: 403, code: "forbidden", reason: "contained QuestionnaireResponse"},
		{name: "contained QR without subject", typ: TypeDocumentReference, body: docRef("", nil, `"contained":[`+string(questionnaireResponse(""))+`]`), status: 201, subject: pat1},
		{name: "QR containing a QR of another patient", typ: TypeQuestionnaireResponse, body: questionnaireResponse("", `"contained":[`+string(questionnaireResponse(ref(pat2)))+`]`), status: 403, code: "forbidden", reason: "contained"},
		{name: "sourcePatientInfo other", typ: TypeDocumentReference, body: []byte(strings.Replace(string(docRef("", nil)), `"context":{`, `"context":{"sourcePatientInfo":`+ref(pat2)+`,`, 1)), status: 403, code: "forbidden", reason: "sourcePatientInfo"},

		// The QuestionnaireResponse in the attachment.
		{name: "attached QR without subject", typ: TypeDocumentReference, body: docRef("", questionnaireResponse("")), status: 201, subject: pat1},
		{name: "attached QR own subject", typ: TypeDocumentReference, body: docRef("", questionnaireResponse(ref(pat1))), status: 201, subject: pat1},
		{name: "attached QR other patient", typ: TypeDocumentReference, body: docRef("", questionnaireResponse(ref(pat2))), status: 403, code: "forbidden", reason: "attached QuestionnaireResponse"},
		{name: "attached QR relative", typ: TypeDocumentReference, body: docRef("", questionnaireResponse(ref("Patient/pat-1"))), status: 403, code: "forbidden", reason: "relative"},
		{name: "attached QR case-variant subject", typ: TypeDocumentReference, body: docRef("", []byte(`{"resourceType":"QuestionnaireResponse","status":"completed","SUBJECT":`+ref(pat2)+`}`)), status: 403, code: "forbidden", reason: "subject"},
		{name: "attached QR as application/json", typ: TypeDocumentReference, body: docRefWithContent(attach("application/json", questionnaireResponse(ref(pat2)))), status: 403, code: "forbidden", reason: "attached"},
		{name: "attached QR with charset parameter", typ: TypeDocumentReference, body: docRefWithContent(attach("Application/FHIR+JSON; charset=utf-8", questionnaireResponse(ref(pat2)))), status: 403, code: "forbidden", reason: "attached"},
		{name: "attached data not base64", typ: TypeDocumentReference, body: docRefWithContent(`"content":[{"attachment":{"contentType":"application/fhir+json","data":"%%%"}}]`), status: 400, code: "value", reason: "base64"},
		{name: "attached Patient", typ: TypeDocumentReference, body: docRefWithContent(attach("application/fhir+json", []byte(`{"resourceType":"Patient","id":"x"}`))), status: 400, code: "invalid", reason: "must hold a QuestionnaireResponse"},
		{name: "data without contentType", typ: TypeDocumentReference, body: docRefWithContent(`"content":[{"attachment":{"data":"` + base64.StdEncoding.EncodeToString(questionnaireResponse(ref(pat2))) + `"}}]`), status: 400, code: "invariant", reason: "att-1"},
		{name: "attached QR containing a QR of another patient", typ: TypeDocumentReference, body: docRef("", questionnaireResponse("", `"contained":[`+string(questionnaireResponse(ref(pat2)))+`]`)), status: 403, code: "forbidden", reason: "attached QuestionnaireResponse: contained"},
		{name: "attached QR containing a Patient", typ: TypeDocumentReference, body: docRef("", questionnaireResponse("", `"contained":[{"resourceType":"Patient","id":"x"}]`)), status: 403, code: "forbidden", reason: "contained Patient"},
		{name: "nested contained QR of another patient", typ: TypeDocumentReference, body: docRef("", nil, `"contained":[`+string(questionnaireResponse("", `"contained":[`+string(questionnaireResponse(ref(pat2)))+`]`))+`]`), status: 403, code: "forbidden", reason: "contained QuestionnaireResponse"},
		{name: "gzip body", typ: TypeDocumentReference, body: docRef("", nil), ctype: "gzip", status: 415, code: "not-supported", reason: "content encoding"},
		{name: "latin-1 charset", typ: TypeDocumentReference, body: docRef("", nil), ctype: "application/fhir+json; charset=iso-8859-1", status: 415, code: "not-supported", reason: "charset"},
		{name: "utf-8 charset", typ: TypeDocumentReference, body: docRef("", nil), ctype: "application/fhir+json; charset=UTF-8", status: 201, subject: pat1},
		{name: "plain JSON attachment kept", typ: TypeDocumentReference, body: docRefWithContent(attach("application/json", []byte(`{"note":"x"}`))), status: 201, subject: pat1},

		// Other refusals.
		{name: "duplicate key elsewhere", typ: TypeDocumentReference, body: []byte(strings.Replace(string(docRef("", nil)), `"status":"current"`, `"status":"current","status":"superseded"`, 1)), status: 400, code: "structure", reason: "duplicate"},
		{name: "case-variant key elsewhere", typ: TypeDocumentReference, body: []byte(strings.Replace(string(docRef("", nil)), `"date"`, `"Date"`, 1)), status: 400, code: "structure", reason: "case"},
		{name: "wrong resourceType", typ: TypeDocumentReference, body: questionnaireResponse(""), status: 400, code: "invalid", reason: "resourceType"},
		{name: "bad status", typ: TypeDocumentReference, body: []byte(strings.Replace(string(docRef("", nil)), `"current"`, `"draft"`, 1)), status: 400, code: "value", reason: "status"},
		{name: "bad date", typ: TypeDocumentReference, body: []byte(strings.Replace(string(docRef("", nil)), `2024-05-02T15:09:31.118Z`, `yesterday`, 1)), status: 400, code: "value", reason: "date"},
		{name: "no content", typ: TypeDocumentReference, body: []byte(`{"resourceType":"DocumentReference","status":"current"}`), status: 400, code: "required", reason: "content"},
		{name: "not JSON", typ: TypeDocumentReference, body: []byte(`{"resourceType":`), status: 400, code: "structure", reason: "JSON"},
		{name: "too large", typ: TypeDocumentReference, body: big, status: 413, code: "too-long", reason: "too large"},
		{name: "wrong media type", typ: TypeDocumentReference, body: docRef("", nil), ctype: "text/plain", status: 415, code: "not-supported", reason: "media type"},

		// QuestionnaireResponse resources.
		{name: "QR no subject", typ: TypeQuestionnaireResponse, body: questionnaireResponse(""), status: 201, subject: pat1},
		{name: "QR other patient", typ: TypeQuestionnaireResponse, body: questionnaireResponse(ref(pat2)), status: 403, code: "forbidden", reason: "another patient"},
		{name: "QR relative same id", typ: TypeQuestionnaireResponse, body: questionnaireResponse(ref("Patient/pat-1")), status: 403, code: "forbidden", reason: "relative"},
		// Other elements that may name a patient: only the launch patient.
		{name: "QR source own patient", typ: TypeQuestionnaireResponse, body: questionnaireResponse("", `"source":`+ref(pat1)), status: 201, subject: pat1},
		{name: "QR author practitioner", typ: TypeQuestionnaireResponse, body: questionnaireResponse("", `"author":`+ref(ehrBase+"/Practitioner/prac-1")), status: 201, subject: pat1},
		{name: "QR source other patient", typ: TypeQuestionnaireResponse, body: questionnaireResponse("", `"source":`+ref(pat2)), status: 403, code: "forbidden", reason: "source names another patient"},
		{name: "QR author relative patient", typ: TypeQuestionnaireResponse, body: questionnaireResponse("", `"author":`+ref("Patient/pat-1")), status: 403, code: "forbidden", reason: "author is a relative reference"},
		{name: "QR author patient by identifier", typ: TypeQuestionnaireResponse, body: questionnaireResponse("", `"author":{"type":"Patient","identifier":{"value":"MRN-2"}}`), status: 403, code: "forbidden", reason: "author carries an identifier"},
		{name: "QR source conditional patient", typ: TypeQuestionnaireResponse, body: questionnaireResponse("", `"source":`+ref("Patient?identifier=MRN-2")), status: 403, code: "forbidden", reason: "source is a conditional reference"},
		{name: "attached QR source other patient", typ: TypeDocumentReference, body: docRef("", questionnaireResponse("", `"source":`+ref(pat2))), status: 403, code: "forbidden", reason: "attached QuestionnaireResponse: source names another patient"},
		{name: "contained QR author other patient", typ: TypeDocumentReference, body: docRef("", nil, `"contained":[`+string(questionnaireResponse("", `"author":`+ref(pat2)))+`]`), status: 403, code: "forbidden", reason: "contained QuestionnaireResponse: author names another patient"},
		{name: "DocumentReference author practitioner", typ: TypeDocumentReference, body: docRef("", nil, `"author":[`+ref(ehrBase+"/Practitioner/prac-1")+`]`), status: 201, subject: pat1},
		{name: "DocumentReference author other patient", typ: TypeDocumentReference, body: docRef("", nil, `"author":[`+ref(ehrBase+"/Practitioner/prac-1")+`,`+ref(pat2)+`]`), status: 403, code: "forbidden", reason: "author names another patient"},
		{name: "context.related other patient", typ: TypeDocumentReference, body: []byte(strings.Replace(string(docRef("", nil)), `"related":[`, `"related":[`+ref(pat2)+`,`, 1)), status: 403, code: "forbidden", reason: "context.related names another patient"},
		{name: "context.related typed patient", typ: TypeDocumentReference, body: []byte(strings.Replace(string(docRef("", nil)), `"related":[`, `"related":[{"reference":"`+ehrBase+`/Basic/x","type":"Patient"},`, 1)), status: 403, code: "forbidden", reason: "context.related"},

		{name: "QR bad status", typ: TypeQuestionnaireResponse, body: []byte(strings.Replace(string(questionnaireResponse("")), `"in-progress"`, `"draft"`, 1)), status: 400, code: "value", reason: "status"},

		// Callers.
		{name: "no principal", caller: "-", typ: TypeDocumentReference, body: docRef("", nil), status: 401, code: "login", reason: "no verified caller"},
		{name: "no EHR token", caller: "noehr", typ: TypeDocumentReference, body: docRef("", nil), status: 401, code: "login", reason: "no verified EHR token"},
		{name: "payer token without create", caller: "readonly", typ: TypeDocumentReference, body: docRef("", nil), status: 403, code: "forbidden", reason: "payer token lacks"},
	}
	forEachDB(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, nil)
		noEHR := principal(t, pat1, payerScopesFull, ehrScopesFull)
		noEHR.EHR = nil
		e.callers["noehr"] = noEHR
		e.callers["readonly"] = principal(t, pat1, "system/DocumentReference.rs", ehrScopesFull)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				caller := tc.caller
				if caller == "" {
					caller = "p1"
				}
				docsBefore, auditBefore := e.countDocs(), e.countAudit()
				var hdr []string
				body := tc.body
				switch tc.ctype {
				case "":
				case "gzip": // the same body, compressed, as Content-Encoding: gzip
					var z bytes.Buffer
					zw := gzip.NewWriter(&z)
					zw.Write(tc.body)
					zw.Close()
					body, hdr = z.Bytes(), []string{"Content-Encoding", "gzip"}
				default:
					hdr = []string{"Content-Type", tc.ctype}
				}
				r := e.do(caller, "POST", "/fhir/"+tc.typ, body, hdr...)
				if r.Code != tc.status {
					t.Fatalf("status %d, want %d: %s", r.Code, tc.status, r.Body)
				}
				if got := e.countAudit() - auditBefore; got != 1 {
					t.Fatalf("%d AuditEvents, want 1", got)
				}
				ev := e.lastAudit()
				if tc.status == 201 {
					if e.countDocs() != docsBefore+1 {
						t.Fatal("document not stored")
					}
					var m map[string]any
					if err := json.Unmarshal(r.Body, &m); err != nil {
						t.Fatal(err)
					}
					if got := subjectOf(m); got != tc.subject {
						t.Fatalf("stored subject %q, want %q", got, tc.subject)
					}
					id, _ := m["id"].(string)
					stored, err := e.store.Read(t.Context(), tc.typ, id, pat1)
					if err != nil || !bytes.Equal(stored.Body, r.Body) {
						t.Fatalf("stored body differs from the answer: %v", err)
					}
					if ev.Outcome != audit.OutcomeSuccess || ev.ResourceID != id || ev.Patient != pat1 {
						t.Fatalf("audit outcome %s reason %q action %s", ev.Outcome, ev.Reason, ev.Action)
					}
					return
				}
				if n := e.countDocs(); n != docsBefore {
					t.Fatalf("%d documents stored by a refused request", n-docsBefore)
				}
				if got := outcomeCode(t, r.Body); got != tc.code {
					t.Fatalf("issue code %q, want %q: %s", got, tc.code, r.Body)
				}
				if bytes.Contains(r.Body, []byte("pat-2")) {
					t.Fatalf("answer echoes the other patient: %s", r.Body)
				}
				if tc.status == 401 && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Fatal("401 without WWW-Authenticate: Bearer")
				}
				if ev.Outcome != audit.OutcomeMinorFailure || ev.Status != tc.status || !strings.Contains(ev.Reason, tc.reason) {
					t.Fatalf("audit outcome %s status %d reason %q, want reason with %q", ev.Outcome, ev.Status, ev.Reason, tc.reason)
				}
			})
		}
	})
}

// TestStoredVerbatim: the stored JSON is the client's, with only the
// server-owned elements set (id, meta.versionId, meta.lastUpdated, subject
// when absent); other meta members and unknown elements stay.
func TestStoredVerbatim(t *testing.T) {
	db := openDB(t, "sqlite")
	e := newEnv(t, db, nil)
	body := []byte(`{"resourceType":"DocumentReference","id":"client-chosen","meta":{"versionId":"9","security":[{"code":"R"}]},` +
		`"status":"current","extension":[{"url":"http://x","valueString":"  spaced  "}],"unknownElement":{"a":[1,2.50]},` +
		`"content":[{"attachment":{"contentType":"text/plain","data":"aGk="}}]}`)
	r := e.do("p1", "POST", "/fhir/DocumentReference", body)
	if r.Code != 201 {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatal(err)
	}
	var id string
	json.Unmarshal(m["id"], &id)
	if id == "client-chosen" || !fhir.ValidID(id) {
		t.Fatalf("id %q: the server assigns ids", id)
	}
	if got := string(m["unknownElement"]); got != `{"a":[1,2.50]}` {
		t.Fatalf("unknown element re-encoded: %s", got)
	}
	if got := string(m["extension"]); got != `[{"url":"http://x","valueString":"  spaced  "}]` {
		t.Fatalf("extension changed: %s", got)
	}
	var meta map[string]json.RawMessage
	json.Unmarshal(m["meta"], &meta)
	if string(meta["versionId"]) != `"1"` || string(meta["security"]) != `[{"code":"R"}]` || len(meta["lastUpdated"]) == 0 {
		t.Fatalf("meta %s", m["meta"])
	}
	if r.Header.Get("ETag") != `W/"1"` || r.Header.Get("Location") != testBase+"/DocumentReference/"+id+"/_history/1" {
		t.Fatalf("headers %v", r.Header)
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), fhir.ContentType) {
		t.Fatalf("content type %q", r.Header.Get("Content-Type"))
	}
}

// TestReadConfinement: another patient's document, a document whose
// creator had scopes the caller lacks, a missing id and an invalid id all
// answer the same 404 bytes; each read leaves one AuditEvent with the true
// reason.
func TestReadConfinement(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, nil)
		// A narrower caller for pat-1: lacks patient/QuestionnaireResponse.cru at the EHR.
		e.callers["p1narrow"] = principal(t, pat1, payerScopesFull, "launch openid fhirUser patient/Patient.r")
		e.callers["p1payernarrow"] = principal(t, pat1, "system/DocumentReference.rs", ehrScopesFull)
		own := e.create("p1", TypeDocumentReference, docRef("", nil))
		other := e.create("p2", TypeDocumentReference, docRef("", nil))
		qr := e.create("p1", TypeQuestionnaireResponse, questionnaireResponse(""))

		missing := e.do("p1", "GET", "/fhir/DocumentReference/does-not-exist", nil)
		if missing.Code != 404 {
			t.Fatalf("missing: %d", missing.Code)
		}
		cases := []struct {
			name, caller, path string
			status             int
			reason             string
		}{
			{"own", "p1", "/fhir/DocumentReference/" + own, 200, ""},
			{"other patient's", "p1", "/fhir/DocumentReference/" + other, 404, "another patient"},
			{"missing", "p1", "/fhir/DocumentReference/does-not-exist", 404, "no such document"},
			{"invalid id", "p1", "/fhir/DocumentReference/bad$id", 404, "invalid id"},
			{"QR id as DocumentReference", "p1", "/fhir/DocumentReference/" + qr, 404, "no such document"},
			{"EHR scopes not covering the creator's", "p1narrow", "/fhir/DocumentReference/" + own, 404, "creator's scopes"},
			{"payer scopes not covering the creator's", "p1payernarrow", "/fhir/DocumentReference/" + own, 404, "creator's scopes"},
			{"other patient reads pat-1's", "p2", "/fhir/DocumentReference/" + own, 404, "another patient"},
			{"no principal", "", "/fhir/DocumentReference/" + own, 401, "no verified caller"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := e.countAudit()
				r := e.do(tc.caller, "GET", tc.path, nil)
				if r.Code != tc.status {
					t.Fatalf("status %d, want %d: %s", r.Code, tc.status, r.Body)
				}
				if e.countAudit() != before+1 {
					t.Fatal("want exactly one AuditEvent")
				}
				ev := e.lastAudit()
				switch tc.status {
				case 200:
					if ev.Outcome != audit.OutcomeSuccess || r.Header.Get("ETag") != `W/"1"` {
						t.Fatalf("audit outcome %s, etag %q", ev.Outcome, r.Header.Get("ETag"))
					}
				case 404:
					if !bytes.Equal(r.Body, missing.Body) {
						t.Fatalf("404 differs from a missing id's:\n%s\n%s", r.Body, missing.Body)
					}
					if len(r.Header.Values("ETag")) != 0 {
						t.Fatal("404 with an ETag")
					}
					fallthrough
				default:
					if ev.Outcome != audit.OutcomeMinorFailure || !strings.Contains(ev.Reason, tc.reason) {
						t.Fatalf("audit reason %q, want %q", ev.Reason, tc.reason)
					}
				}
			})
		}
	})
}

// TestUpdateConfinement: If-Match is required, a stale one fails, another
// patient's or an unknown id is 404 (no update-as-create), the subject
// cannot change, the creator's scopes are required (403); a good update
// bumps the version and keeps the old one in history.
func TestUpdateConfinement(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, nil)
		e.callers["p1narrow"] = principal(t, pat1, payerScopesFull, "launch openid fhirUser patient/Patient.r")
		own := e.create("p1", TypeDocumentReference, docRef("", nil))
		other := e.create("p2", TypeDocumentReference, docRef("", nil))
		withID := func(id, subject, status string) []byte {
			b := docRef(subject, nil)
			b = []byte(strings.Replace(string(b), `"status":"current"`, `"id":"`+id+`","status":"`+status+`"`, 1))
			return b
		}
		cases := []struct {
			name, caller, id string
			body             []byte
			ifMatch          string
			status           int
			code, reason     string
		}{
			{"no If-Match", "p1", own, withID(own, "", "superseded"), "", 428, "required", "If-Match missing"},
			{"bad If-Match", "p1", own, withID(own, "", "superseded"), "*", 400, "value", "If-Match"},
			{"stale If-Match", "p1", own, withID(own, "", "superseded"), `W/"7"`, 412, "conflict", "version mismatch"},
			{"other patient's document", "p1", other, withID(other, "", "superseded"), `W/"1"`, 404, "not-found", "another patient"},
			{"unknown id is not created", "p1", "brand-new-id", withID("brand-new-id", "", "superseded"), `W/"1"`, 404, "not-found", "no such document"},
			{"subject changed", "p1", own, withID(own, ref(pat2), "superseded"), `W/"1"`, 403, "forbidden", "another patient"},
			{"subject made relative", "p1", own, withID(own, ref("Patient/pat-1"), "superseded"), `W/"1"`, 403, "forbidden", "relative"},
			{"creator's scopes not covered", "p1narrow", own, withID(own, "", "superseded"), `W/"1"`, 403, "forbidden", "creator's scopes"},
			{"body id differs", "p1", own, withID(other, "", "superseded"), `W/"1"`, 400, "invalid", "id"},
			{"body without id", "p1", own, docRef("", nil), `W/"1"`, 400, "invalid", "id"},
			{"no principal", "", own, withID(own, "", "superseded"), `W/"1"`, 401, "login", "no verified caller"},
			{"good update", "p1", own, withID(own, "", "superseded"), `W/"1"`, 200, "", ""},
			{"same version again is stale", "p1", own, withID(own, "", "current"), `W/"1"`, 412, "conflict", "version mismatch"},
			{"second update", "p1", own, withID(own, ref(pat1), "current"), `W/"2"`, 200, "", ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				docsBefore, auditBefore := e.countDocs(), e.countAudit()
				prevOther, _ := e.store.Read(t.Context(), TypeDocumentReference, other, pat2)
				var hdr []string
				if tc.ifMatch != "" {
					hdr = []string{"If-Match", tc.ifMatch}
				}
				r := e.do(tc.caller, "PUT", "/fhir/DocumentReference/"+tc.id, tc.body, hdr...)
				if r.Code != tc.status {
					t.Fatalf("status %d, want %d: %s", r.Code, tc.status, r.Body)
				}
				if e.countAudit() != auditBefore+1 {
					t.Fatal("want exactly one AuditEvent")
				}
				if e.countDocs() != docsBefore {
					t.Fatal("an update created a document")
				}
				nowOther, _ := e.store.Read(t.Context(), TypeDocumentReference, other, pat2)
				if !bytes.Equal(prevOther.Body, nowOther.Body) {
					t.Fatal("the other patient's document changed")
				}
				ev := e.lastAudit()
				if tc.status != 200 {
					if got := outcomeCode(t, r.Body); got != tc.code {
						t.Fatalf("code %q, want %q", got, tc.code)
					}
					if ev.Outcome != audit.OutcomeMinorFailure || !strings.Contains(ev.Reason, tc.reason) {
						t.Fatalf("audit reason %q, want %q", ev.Reason, tc.reason)
					}
					return
				}
				var m map[string]any
				json.Unmarshal(r.Body, &m)
				meta := m["meta"].(map[string]any)
				want := strings.Trim(strings.TrimPrefix(tc.ifMatch, "W/"), `"`)
				if meta["versionId"] == want || r.Header.Get("ETag") != `W/"`+meta["versionId"].(string)+`"` {
					t.Fatalf("version not bumped: %v %q", meta, r.Header.Get("ETag"))
				}
				if subjectOf(m) != pat1 {
					t.Fatalf("subject %q", subjectOf(m))
				}
				if ev.Outcome != audit.OutcomeSuccess || ev.Action != "U" {
					t.Fatalf("audit outcome %s reason %q action %s", ev.Outcome, ev.Reason, ev.Action)
				}
			})
		}
		if n, _ := e.store.HistoryCount(t.Context(), TypeDocumentReference, own); n != 2 {
			t.Fatalf("history keeps %d versions, want 2", n)
		}
		read := e.do("p1", "GET", "/fhir/DocumentReference/"+own, nil)
		if read.Header.Get("ETag") != `W/"3"` {
			t.Fatalf("etag after two updates %q", read.Header.Get("ETag"))
		}
	})
}

// TestRefusedInteractions: batch, _history, $everything, DELETE and PATCH
// are refused with an OperationOutcome and one AuditEvent; nothing leaks.
func TestRefusedInteractions(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, nil)
		id := e.create("p2", TypeDocumentReference, docRef("", nil))
		cases := []struct {
			method, path string
			body         []byte
			status       int
		}{
			{"POST", "/fhir", []byte(`{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"DocumentReference?patient=` + pat2 + `"}}]}`), 400},
			{"POST", "/fhir", []byte(`{"resourceType":"Bundle","type":"transaction"}`), 400},
			{"GET", "/fhir/DocumentReference/" + id + "/_history", nil, 400},
			{"GET", "/fhir/DocumentReference/" + id + "/_history/1", nil, 400},
			{"GET", "/fhir/DocumentReference/_history", nil, 400},
			{"GET", "/fhir/_history", nil, 400},
			{"GET", "/fhir/Patient/pat-2/$everything", nil, 400},
			{"GET", "/fhir/Patient/$everything", nil, 400},
			{"POST", "/fhir/Patient/pat-1/$everything", []byte(`{}`), 400},
			{"DELETE", "/fhir/DocumentReference/" + id, nil, 405},
			{"PATCH", "/fhir/DocumentReference/" + id, []byte(`[]`), 405},
		}
		for _, tc := range cases {
			for _, caller := range []string{"p1", ""} {
				t.Run(tc.method+" "+tc.path+" "+caller, func(t *testing.T) {
					before := e.countAudit()
					r := e.do(caller, tc.method, tc.path, tc.body)
					if r.Code != tc.status {
						t.Fatalf("status %d, want %d", r.Code, tc.status)
					}
					if outcomeCode(t, r.Body) != "not-supported" {
						t.Fatalf("%s", r.Body)
					}
					if bytes.Contains(r.Body, []byte("pat-2")) || bytes.Contains(r.Body, []byte(id)) {
						t.Fatalf("leak: %s", r.Body)
					}
					if e.countAudit() != before+1 {
						t.Fatal("want one AuditEvent")
					}
					if ev := e.lastAudit(); ev.Outcome != audit.OutcomeMinorFailure || ev.Reason == "" {
						t.Fatalf("audit outcome %s reason %q action %s", ev.Outcome, ev.Reason, ev.Action)
					}
				})
			}
		}
		if n, _ := e.store.Locate(t.Context(), TypeDocumentReference, id); !n {
			t.Fatal("DELETE removed the document")
		}
		if r := e.do("p2", "GET", "/fhir/DocumentReference/"+id, nil); r.Code != http.StatusOK {
			t.Fatalf("document gone: %d", r.Code)
		}
	})
}
