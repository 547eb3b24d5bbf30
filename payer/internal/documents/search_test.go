package documents

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"dtrsandbox/payer/internal/audit"

	"gorm.io/gorm"
)

// searchFixture stores documents for two patients and one pat-1 document
// created with scopes the ordinary pat-1 caller lacks.
type searchFixture struct {
	e                      *env
	d1, d2, d3, e1, q1, q2 string
}

func newSearchFixture(t *testing.T, db *gorm.DB) *searchFixture {
	e := newEnv(t, db, nil)
	e.callers["p1wide"] = principal(t, pat1, payerScopesFull+" system/Observation.r", ehrScopesFull)
	f := &searchFixture{e: e}
	f.d1 = e.create("p1", TypeDocumentReference, docRef("", questionnaireResponse("")))
	d2 := docRef("", nil)
	d2 = []byte(strings.NewReplacer(`"current"`, `"superseded"`, `74465-6`, `11506-3`, `"draft"`, `"final"`,
		`2024-05-02T15:09:31.118Z`, `2024-06-10T10:00:00Z`, `/DeviceRequest/dr-oxygen-1`, `/Coverage/cov-1`).Replace(string(d2)))
	f.d2 = e.create("p1", TypeDocumentReference, d2)
	d3 := []byte(strings.Replace(string(docRef("", nil)), `"date":"2024-05-02T15:09:31.118Z",`, ``, 1))
	f.d3 = e.create("p1wide", TypeDocumentReference, d3)
	f.e1 = e.create("p2", TypeDocumentReference, docRef("", nil))
	f.q1 = e.create("p1", TypeQuestionnaireResponse, questionnaireResponse(""))
	q2 := []byte(strings.NewReplacer(`home-oxygen`, `cpap`, `"in-progress"`, `"completed"`,
		`2024-05-02T10:09:00-05:00`, `2024-07-01T08:00:00Z`, `"basedOn":[{"reference":"`+ehrBase+`/DeviceRequest/dr-oxygen-1"}],`, ``).
		Replace(string(questionnaireResponse(""))))
	f.q2 = e.create("p1", TypeQuestionnaireResponse, q2)
	return f
}

func TestSearchConfinement(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *gorm.DB) {
		f := newSearchFixture(t, db)
		e := f.e
		dr := url.QueryEscape(ehrBase + "/DeviceRequest/dr-oxygen-1")
		p1, p2 := url.QueryEscape(pat1), url.QueryEscape(pat2)
		cases := []struct {
			name, caller, typ, query string
			want                     []string // ids; order matters when ordered
			ordered                  bool
			total                    int // -1: no total
		}{
			{name: "no parameters", query: "", want: []string{f.d1, f.d2}, total: 2},
			{name: "own patient", query: "patient=" + p1, want: []string{f.d1, f.d2}, total: 2},
			{name: "own subject", query: "subject=" + p1, want: []string{f.d1, f.d2}, total: 2},
			{name: "other patient", query: "patient=" + p2, total: 0},
			{name: "other subject", query: "subject=" + p2, total: 0},
			{name: "relative own id", query: "patient=Patient/pat-1", total: 0},
			{name: "bare id", query: "patient=pat-2", total: 0},
			{name: "OR with other patient", query: "patient=" + p1 + "," + p2, want: []string{f.d1, f.d2}, total: 2},
			{name: "AND with other patient", query: "patient=" + p1 + "&patient=" + p2, total: 0},
			{name: "status", query: "status=current", want: []string{f.d1}, total: 1},
			{name: "status with system", query: "status=" + url.QueryEscape("http://hl7.org/fhir/document-reference-status|superseded"), want: []string{f.d2}, total: 1},
			{name: "status OR", query: "status=current,superseded", want: []string{f.d1, f.d2}, total: 2},
			{name: "status AND", query: "status=current&status=superseded", total: 0},
			{name: "type system|code", query: "type=" + url.QueryEscape("http://loinc.org|74465-6"), want: []string{f.d1}, total: 1},
			{name: "type code", query: "type=74465-6", want: []string{f.d1}, total: 1},
			{name: "type no system", query: "type=" + url.QueryEscape("|74465-6"), total: 0},
			{name: "type system|", query: "type=" + url.QueryEscape("http://loinc.org|"), want: []string{f.d1, f.d2}, total: 2},
			{name: "category", query: "category=draft", want: []string{f.d1}, total: 1},
			{name: "date day", query: "date=2024-05-02", want: []string{f.d1}, total: 1},
			{name: "date ge", query: "date=ge2024-06-01", want: []string{f.d2}, total: 1},
			{name: "date le", query: "date=le2024-05-31", want: []string{f.d1}, total: 1},
			{name: "date gt month", query: "date=gt2024-05", want: []string{f.d2}, total: 1},
			{name: "date lt month", query: "date=lt2024-06", want: []string{f.d1}, total: 1},
			{name: "date range", query: "date=ge2024-05-01&date=le2024-05-31", want: []string{f.d1}, total: 1},
			{name: "date year", query: "date=2024", want: []string{f.d1, f.d2}, total: 2},
			{name: "date with zone", query: "date=" + url.QueryEscape("ge2024-05-02T17:09:31+02:00"), want: []string{f.d1, f.d2}, total: 2},
			{name: "related", query: "related=" + dr, want: []string{f.d1}, total: 1},
			{name: "_id own", query: "_id=" + f.d1, want: []string{f.d1}, total: 1},
			{name: "_id other patient's", query: "_id=" + f.e1, total: 0},
			{name: "_id hidden by creator scope", query: "_id=" + f.d3, total: 0},
			{name: "_count", query: "_count=1&_sort=date", want: []string{f.d1}, ordered: true, total: 2},
			{name: "_count over max", query: "_count=1000", want: []string{f.d1, f.d2}, total: 2},
			{name: "_summary=count", query: "_summary=count", total: 2},
			{name: "_total=none", query: "_total=none", want: []string{f.d1, f.d2}, total: -1},
			{name: "_sort date", query: "_sort=date", want: []string{f.d1, f.d2}, ordered: true, total: 2},
			{name: "_sort -date", query: "_sort=-date", want: []string{f.d2, f.d1}, ordered: true, total: 2},
			{name: "_sort _lastUpdated", query: "_sort=_lastUpdated", want: []string{f.d1, f.d2}, ordered: true, total: 2},
			{name: "wider caller sees its document", caller: "p1wide", want: []string{f.d1, f.d2, f.d3}, total: 3},
			{name: "other patient's caller", caller: "p2", want: []string{f.e1}, total: 1},
			{name: "other patient's caller asks for pat-1", caller: "p2", query: "patient=" + p1, total: 0},

			{name: "QR all", typ: TypeQuestionnaireResponse, want: []string{f.q1, f.q2}, total: 2},
			{name: "QR questionnaire", typ: TypeQuestionnaireResponse, query: "questionnaire=" + url.QueryEscape("http://sandbox.dtr.example/fhir/Questionnaire/home-oxygen"), want: []string{f.q1}, total: 1},
			{name: "QR questionnaire|version", typ: TypeQuestionnaireResponse, query: "questionnaire=" + url.QueryEscape("http://sandbox.dtr.example/fhir/Questionnaire/cpap|2026.1"), want: []string{f.q2}, total: 1},
			{name: "QR questionnaire wrong version", typ: TypeQuestionnaireResponse, query: "questionnaire=" + url.QueryEscape("http://sandbox.dtr.example/fhir/Questionnaire/cpap|1.0"), total: 0},
			{name: "QR authored", typ: TypeQuestionnaireResponse, query: "authored=ge2024-06", want: []string{f.q2}, total: 1},
			{name: "QR based-on", typ: TypeQuestionnaireResponse, query: "based-on=" + dr, want: []string{f.q1}, total: 1},
			{name: "QR status", typ: TypeQuestionnaireResponse, query: "status=completed", want: []string{f.q2}, total: 1},
			{name: "QR sort -authored", typ: TypeQuestionnaireResponse, query: "_sort=-authored", want: []string{f.q2, f.q1}, ordered: true, total: 2},
			{name: "QR other patient", typ: TypeQuestionnaireResponse, query: "subject=" + p2, total: 0},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				caller, typ := tc.caller, tc.typ
				if caller == "" {
					caller = "p1"
				}
				if typ == "" {
					typ = TypeDocumentReference
				}
				patient := e.callers[caller].Patient
				before := e.countAudit()
				path := "/fhir/" + typ
				if tc.query != "" {
					path += "?" + tc.query
				}
				r := e.do(caller, "GET", path, nil)
				if r.Code != 200 {
					t.Fatalf("status %d: %s", r.Code, r.Body)
				}
				b, res := bundleOf(t, r.Body)
				if b.Type != "searchset" || len(b.Link) == 0 || b.Link[0].Relation != "self" || !strings.HasPrefix(b.Link[0].URL, testBase+"/"+typ) {
					t.Fatalf("bundle head %+v", b)
				}
				switch {
				case tc.total < 0 && b.Total != nil:
					t.Fatal("total present with _total=none")
				case tc.total >= 0 && (b.Total == nil || *b.Total != tc.total):
					t.Fatalf("total %v, want %d", b.Total, tc.total)
				}
				var got []string
				for i, m := range res {
					if subjectOf(m) != patient {
						t.Fatalf("entry about %q", subjectOf(m))
					}
					id := m["id"].(string)
					if b.Entry[i].FullURL != testBase+"/"+typ+"/"+id {
						t.Fatalf("fullUrl %q", b.Entry[i].FullURL)
					}
					got = append(got, id)
				}
				want := append([]string(nil), tc.want...)
				if !tc.ordered {
					slices.Sort(got)
					slices.Sort(want)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("ids %v, want %v", got, want)
				}
				if e.countAudit() != before+1 {
					t.Fatal("want one AuditEvent")
				}
				if ev := e.lastAudit(); ev.Outcome != audit.OutcomeSuccess || ev.Interaction != "search-type" {
					t.Fatalf("audit outcome %s interaction %q", ev.Outcome, ev.Interaction)
				}
			})
		}

		t.Run("next link", func(t *testing.T) {
			r := e.do("p1", "GET", "/fhir/DocumentReference?_count=1&_sort=date", nil)
			b, _ := bundleOf(t, r.Body)
			if len(b.Link) != 2 || b.Link[1].Relation != "next" {
				t.Fatalf("links %+v", b.Link)
			}
			u, _ := url.Parse(b.Link[1].URL)
			r = e.do("p1", "GET", "/fhir/DocumentReference?"+u.RawQuery, nil)
			b, res := bundleOf(t, r.Body)
			if len(res) != 1 || res[0]["id"] != f.d2 || len(b.Link) != 1 {
				t.Fatalf("second page %s", r.Body)
			}
		})
	})
}

func TestSearchRefusals(t *testing.T) {
	cases := []struct{ query, code string }{
		{"status:not=current", "not-supported"},
		{"subject:missing=true", "not-supported"},
		{"type:text=oxygen", "not-supported"},
		{"patient:Patient=pat-2", "not-supported"},
		{"subject:identifier=" + url.QueryEscape("http://mrn|1"), "not-supported"},
		{"subject.name=Smith", "not-supported"},
		{"patient.identifier=123", "not-supported"},
		{"_has:Observation:subject:code=x", "not-supported"},
		{"_include=DocumentReference:subject", "not-supported"},
		{"_revinclude=Provenance:target", "not-supported"},
		{"_elements=id", "not-supported"},
		{"_contained=true", "not-supported"},
		{"_query=everything", "not-supported"},
		{"_filter=" + url.QueryEscape("subject eq x"), "not-supported"},
		{"_lastUpdated=ge2024", "not-supported"},
		{"_type=Patient", "not-supported"},
		{"unknown=1", "not-supported"},
		{"author=x", "not-supported"},
		{"_sort=status", "not-supported"},
		{"_summary=true", "not-supported"},
		{"_format=xml", "not-supported"},
		{"date=ne2024", "not-supported"},
		{"date=ap2024", "not-supported"},
		{"date=yesterday", "value"},
		{"date=2024-02-30", "value"},
		{"_count=abc", "value"},
		{"_count=-1", "value"},
		{"_count=1&_count=2", "invalid"},
		{"status=", "invalid"},
		{"_total=maybe", "value"},
		{"type=" + url.QueryEscape("a|b|c"), "value"},
		{"status=a%zz", "invalid"},
		{"questionnaire=x", "not-supported"}, // a QuestionnaireResponse parameter on DocumentReference
	}
	forEachDB(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, nil)
		e.create("p2", TypeDocumentReference, docRef("", nil))
		for _, tc := range cases {
			t.Run(tc.query, func(t *testing.T) {
				before := e.countAudit()
				r := e.do("p1", "GET", "/fhir/DocumentReference?"+tc.query, nil)
				if r.Code != 400 {
					t.Fatalf("status %d: %s", r.Code, r.Body)
				}
				if got := outcomeCode(t, r.Body); got != tc.code {
					t.Fatalf("code %q, want %q: %s", got, tc.code, r.Body)
				}
				if strings.Contains(string(r.Body), "pat-2") {
					t.Fatal("leak")
				}
				if e.countAudit() != before+1 {
					t.Fatal("want one AuditEvent")
				}
				if ev := e.lastAudit(); ev.Outcome != audit.OutcomeMinorFailure || !strings.HasPrefix(ev.Reason, "bad search") {
					t.Fatalf("audit outcome %s reason %q", ev.Outcome, ev.Reason)
				}
			})
		}
	})
}

// TestPostSearch: POST _search takes a form body; its parameters and the
// query string's combine as AND; a body naming another patient finds
// nothing.
func TestPostSearch(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *gorm.DB) {
		f := newSearchFixture(t, db)
		e := f.e
		post := func(query, form, ctype string) resp {
			return e.do("p1", "POST", "/fhir/DocumentReference/_search"+query, []byte(form), "Content-Type", ctype)
		}
		const formType = "application/x-www-form-urlencoded"
		cases := []struct {
			name, query, form string
			want              []string
		}{
			{"form only", "", "status=current", []string{f.d1}},
			{"form other patient", "", "patient=" + url.QueryEscape(pat2), nil},
			{"form subject other patient", "", "subject=" + url.QueryEscape(pat2) + "&status=current", nil},
			{"query and form AND", "?status=current", "status=superseded", nil},
			{"query and form agree", "?status=current", "type=74465-6", []string{f.d1}},
			{"empty form", "", "", []string{f.d1, f.d2}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := post(tc.query, tc.form, formType)
				if r.Code != 200 {
					t.Fatalf("%d %s", r.Code, r.Body)
				}
				_, res := bundleOf(t, r.Body)
				var got []string
				for _, m := range res {
					got = append(got, m["id"].(string))
				}
				slices.Sort(got)
				want := append([]string(nil), tc.want...)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("ids %v, want %v", got, want)
				}
			})
		}
		t.Run("wrong media type", func(t *testing.T) {
			if r := post("", "status=current", "application/json"); r.Code != 415 {
				t.Fatalf("%d", r.Code)
			}
		})
		t.Run("modifier in the form", func(t *testing.T) {
			if r := post("", "subject:missing=true", formType); r.Code != 400 || outcomeCode(t, r.Body) != "not-supported" {
				t.Fatalf("%d %s", r.Code, r.Body)
			}
		})
	})
}
