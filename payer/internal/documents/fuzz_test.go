package documents

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"net/url"
	"strings"
	"testing"

	"dtrsandbox/shared/fhir"
)

// FuzzStampSubject: whatever DocumentReference body arrives, either it is
// refused (400/403) or the stored JSON is strict FHIR JSON whose subject is
// exactly the launch patient, for a strict and for a lenient reader, and
// whose attached QuestionnaireResponse names no other subject.
func FuzzStampSubject(f *testing.F) {
	seeds := [][]byte{
		docRef("", nil),
		docRef("", questionnaireResponse("")),
		docRef(ref(pat1), questionnaireResponse(ref(pat1))),
		docRef(ref(pat2), nil),
		docRef(ref("Patient/pat-1"), nil),
		docRef(ref("#p"), nil),
		docRef(`{"identifier":{"value":"1"}}`, nil),
		docRef(`null`, nil),
		docRef("", questionnaireResponse(ref(pat2))),
		[]byte(strings.Replace(string(docRef("", nil)), `"status"`, `"Subject":`+ref(pat2)+`,"status"`, 1)),
		[]byte(strings.Replace(string(docRef(ref(pat1), nil)), `"status"`, `"subject":`+ref(pat2)+`,"status"`, 1)),
		[]byte(`{"resourceType":"DocumentReference","status":"current","content":[{"attachment":{"contentType":"application/json","data":"` +
			base64.StdEncoding.EncodeToString(questionnaireResponse(ref(pat2))) + `"}}]}`),
		[]byte(`{"resourceType":"DocumentReference","status":"current","sub\u006aect":` + ref(pat2) + `,"content":[{"attachment":{"url":"x"}}]}`),
		[]byte(`{"resourceType":"DocumentReference","meta":{"versionId":"5","x":1},"id":"a","status":"current","content":[{"attachment":{}}]}`),
		[]byte(`{}`), []byte(`[]`), []byte(`null`),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, rerr := prepare(TypeDocumentReference, body, pat1)
		if rerr != nil {
			if rerr.Status != 400 && rerr.Status != 403 {
				t.Fatalf("refusal status %d", rerr.Status)
			}
			return
		}
		out, err := p.render("server-id", 1, "2024-01-01T00:00:00.000000Z", pat1)
		if err != nil {
			t.Fatalf("render: %v", err)
		}
		var doc fhir.DocumentReference
		if err := fhir.Decode(out, &doc); err != nil {
			t.Fatalf("stored JSON is not strict FHIR JSON: %v\n%s", err, out)
		}
		if doc.Subject == nil || doc.Subject.Reference != pat1 || doc.Subject.Identifier != nil {
			t.Fatalf("stored subject %+v", doc.Subject)
		}
		if doc.ID != "server-id" || doc.Meta == nil || doc.Meta.VersionID != "1" {
			t.Fatalf("server-owned elements not set: id %q meta %+v", doc.ID, doc.Meta)
		}
		// A lenient reader (case-insensitive, last key wins) reads the same.
		var loose struct {
			Subject *struct{ Reference string }
		}
		if err := json.Unmarshal(out, &loose); err != nil || loose.Subject == nil || loose.Subject.Reference != pat1 {
			t.Fatalf("lenient reader sees subject %+v (%v)", loose.Subject, err)
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal(out, &top); err != nil {
			t.Fatal(err)
		}
		n := 0
		for k := range top {
			if strings.EqualFold(k, "subject") {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d subject keys", n)
		}
		for _, c := range doc.Content {
			att := c.Attachment
			if att == nil || att.Data == "" {
				continue
			}
			mt, _, _ := mime.ParseMediaType(att.ContentType)
			if mt != "application/fhir+json" && mt != "application/json+fhir" && mt != "application/json" {
				continue
			}
			data, err := base64.StdEncoding.DecodeString(att.Data)
			if err != nil {
				t.Fatalf("accepted attachment is not base64")
			}
			var qr struct {
				ResourceType string
				Subject      *struct{ Reference string }
			}
			if json.Unmarshal(data, &qr) == nil && qr.Subject != nil && qr.ResourceType != "" && qr.Subject.Reference != pat1 {
				t.Fatalf("attached resource names subject %q", qr.Subject.Reference)
			}
		}
	})
}

// compileSeeds are search queries for FuzzCompile's corpus.
var compileSeeds = []string{
	"", "patient=" + url.QueryEscape(pat2), "subject=" + url.QueryEscape(pat2) + "&status=current",
	"patient=" + url.QueryEscape(pat1) + "," + url.QueryEscape(pat2), "_id=x,y", "status=current,superseded",
	"type=http://loinc.org|74465-6", "type=|x", "type=sys|", "date=ge2024-01-01&date=le2024-12-31", "date=2024,2023",
	"related=" + url.QueryEscape(ehrBase+"/DeviceRequest/dr-oxygen-1"), "_count=1&_sort=-date", "_summary=count",
	"_total=none", "_offset=1", "questionnaire=http://q|1", "authored=gt2024", "based-on=x",
	"status=a\\,b", "patient=x' OR '1'='1", "status=current');DROP TABLE documents;--", "_sort=date,-_lastUpdated",
	"subject:missing=true", "_has:X:y:z=1", "a.b=c",
	"status=%00", "_id=%FF%FE", "patient=" + url.QueryEscape(pat1) + "%00", "type=%C0%80|x", "_sort=date%00",
}

// FuzzCompile: every compiled query starts with the patient filter for the
// launch patient, binds every value as an argument, and when run against
// SQLite returns only documents of the launch patient and the route's type.
func FuzzCompile(f *testing.F) {
	for i, s := range compileSeeds {
		f.Add(i%2 == 0, s)
	}
	db := openDB(f, "sqlite")
	e := newEnv(f, db, nil)
	for _, caller := range []string{"p1", "p2"} {
		e.create(caller, TypeDocumentReference, docRef("", questionnaireResponse("")))
		e.create(caller, TypeQuestionnaireResponse, questionnaireResponse(""))
	}
	allowAll := func(Creator) bool { return true }
	f.Fuzz(func(t *testing.T, docRefType bool, query string) {
		params, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		typ := TypeQuestionnaireResponse
		if docRefType {
			typ = TypeDocumentReference
		}
		q, err := Compile(typ, params, pat1)
		if err != nil {
			var se *SearchError
			if !errors.As(err, &se) {
				t.Fatalf("error that is not a SearchError: %v", err)
			}
			return
		}
		c0 := q.Conditions[0]
		if c0.SQL != PatientFilterSQL || len(c0.Args) != 2 || c0.Args[0] != typ || c0.Args[1] != pat1 {
			t.Fatalf("first condition %+v", c0)
		}
		where, args := q.Where()
		if !strings.HasPrefix(where, PatientFilterSQL) || args[0] != typ || args[1] != pat1 {
			t.Fatalf("where %q args %v", where, args)
		}
		if strings.Count(where, "?") != len(args) {
			t.Fatalf("%d placeholders, %d args", strings.Count(where, "?"), len(args))
		}
		for _, c := range q.Conditions {
			if strings.ContainsAny(c.SQL, "'\";\\") || strings.Contains(c.SQL, "--") {
				t.Fatalf("a value reached the SQL text: %q", c.SQL)
			}
			for _, a := range c.Args {
				if s, ok := a.(string); ok && !textValue(s) {
					t.Fatalf("a bound value is not UTF-8 text without NUL (PostgreSQL would refuse it): %q", s)
				}
			}
		}
		if strings.ContainsAny(q.OrderBy(), "'\";?") {
			t.Fatalf("order by %q", q.OrderBy())
		}
		res, err := e.store.Search(context.Background(), q, allowAll)
		if err != nil {
			t.Fatalf("compiled query failed: %v\n%s", err, where)
		}
		for _, d := range res.Docs {
			if d.Patient != pat1 || d.ResourceType != typ {
				t.Fatalf("result about %s (%s)", d.Patient, d.ResourceType)
			}
			var m map[string]any
			json.Unmarshal(d.Body, &m)
			if subjectOf(m) != pat1 {
				t.Fatalf("result body about %q", subjectOf(m))
			}
		}
		if res.Total > 2 {
			t.Fatalf("total %d exceeds the patient's documents", res.Total)
		}
	})
}

// TestCompileStructure pins the compiled SQL of a few queries.
func TestCompileStructure(t *testing.T) {
	q, err := Compile(TypeDocumentReference, url.Values{"status": {"current,superseded"}, "patient": {pat2}, "_count": {"500"}}, pat1)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Conditions) != 3 || q.Count != MaxCount {
		t.Fatalf("%+v", q)
	}
	if q.Conditions[1].SQL != "documents.patient IN (?)" || q.Conditions[1].Args[0] != pat2 {
		t.Fatalf("patient condition %+v", q.Conditions[1])
	}
	if !strings.HasPrefix(q.Conditions[2].SQL, "EXISTS (SELECT 1 FROM document_params") || len(q.Conditions[2].Args) != 3 {
		t.Fatalf("status condition %+v", q.Conditions[2])
	}
	if _, err := Compile(TypeDocumentReference, nil, ""); err == nil {
		t.Fatal("compiled without a patient")
	}
	if _, err := Compile("Patient", nil, pat1); err == nil {
		t.Fatal("compiled for Patient")
	}
}
