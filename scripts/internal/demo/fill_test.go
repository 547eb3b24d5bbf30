package demo

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"dtrsandbox/shared/fhir"
)

// The payer's home-oxygen questionnaire, as the app receives it.
func homeOxygen(t *testing.T) *fhir.Questionnaire {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "payer", "internal", "questionnaires", "data", "Questionnaire-home-oxygen.json"))
	if err != nil {
		t.Fatal(err)
	}
	var q fhir.Questionnaire
	if err := fhir.Decode(data, &q); err != nil {
		t.Fatal(err)
	}
	return &q
}

func TestFillHomeOxygen(t *testing.T) {
	q := homeOxygen(t)
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	qr, n := fill(q, "marker-xyz", now)
	got := answerSet(qr.Item)
	if n != len(got) {
		t.Errorf("fill counted %d answers, the response has %d", n, len(got))
	}
	if qr.Status != "in-progress" || qr.Questionnaire != q.URL+"|"+q.Version {
		t.Errorf("status %q, questionnaire %q", qr.Status, qr.Questionnaire)
	}
	tests := []struct {
		linkID string
		want   string // "" = must not be answered
	}{
		{"instructions", ""}, // display
		{"order.equipment", "coding:http://sandbox.dtr.example/fhir/CodeSystem/dtr-answer|o2-stationary-concentrator"},
		{"order.flow-rate", "decimal:4.7"},     // 0.25 + 14.75*0.3 = 4.675 -> 4.7
		{"order.length-of-need", "integer:31"}, // ceil(1 + 98*0.3)
		{"f2f.date", "date:2026-03-04"},
		{"f2f.alternatives", "boolean:true"},
		{"f2f.alternatives-detail", "string:marker-xyz"}, // enabled by alternatives = true
		{"testing.method", "coding:http://sandbox.dtr.example/fhir/CodeSystem/dtr-answer|o2-method-abg"},
		{"testing.pao2", "decimal:59"},   // enabled: method = ABG
		{"testing.spo2", ""},             // disabled: method is not oximetry
		{"testing.exercise-with-o2", ""}, // disabled: condition is rest
		{"testing.group2.findings", "coding:http://sandbox.dtr.example/fhir/CodeSystem/dtr-answer|o2-finding-edema"}, // pao2 59 >= 56
		{"attestation.npi", "string:1234567893"}, // the only candidate matching ^[0-9]{10}$
		{"attestation.statement", "boolean:true"},
	}
	for _, tt := range tests {
		t.Run(tt.linkID, func(t *testing.T) {
			a := strings.Join(got[tt.linkID], ",")
			if a != tt.want {
				t.Errorf("answer %q, want %q", a, tt.want)
			}
		})
	}
	// Every required, enabled question is answered: walk the questionnaire
	// with the filler's own answers.
	var walk func(items []fhir.QuestionnaireItem)
	f := &filler{answers: map[string][]fhir.QuestionnaireResponseItemAnswer{}}
	var collect func([]fhir.QuestionnaireResponseItem)
	collect = func(items []fhir.QuestionnaireResponseItem) {
		for _, it := range items {
			f.answers[it.LinkID] = it.Answer
			collect(it.Item)
		}
	}
	collect(qr.Item)
	walk = func(items []fhir.QuestionnaireItem) {
		for i := range items {
			it := &items[i]
			if !f.enabled(it) {
				continue
			}
			if it.Required != nil && *it.Required && it.Type != "group" && it.Type != "display" && len(f.answers[it.LinkID]) == 0 {
				t.Errorf("required, enabled %s is not answered", it.LinkID)
			}
			walk(it.Item)
		}
	}
	walk(q.Item)
	npi := regexp.MustCompile(`^[0-9]{10}$`)
	if v := f.answers["attestation.npi"]; len(v) != 1 || !npi.MatchString(v[0].ValueString) {
		t.Errorf("attestation.npi %v does not match its regex", v)
	}
}

func TestEnableWhen(t *testing.T) {
	dec := func(s string) *fhir.Decimal { d := fhir.Decimal(s); return &d }
	coding := &fhir.Coding{System: "s", Code: "a"}
	answers := map[string][]fhir.QuestionnaireResponseItemAnswer{
		"b":   {{ValueBoolean: ptr(true)}},
		"n":   {{ValueDecimal: dec("60")}},
		"i":   {{ValueInteger: ptr(3)}},
		"c":   {{ValueCoding: &fhir.Coding{System: "s", Code: "a", Display: "A"}}},
		"str": {{ValueString: "x"}},
	}
	tests := []struct {
		name     string
		behavior string
		when     []fhir.QuestionnaireItemEnableWhen
		want     bool
	}{
		{"no condition", "", nil, true},
		{"boolean =", "", []fhir.QuestionnaireItemEnableWhen{{Question: "b", Operator: "=", AnswerBoolean: ptr(true)}}, true},
		{"boolean = false", "", []fhir.QuestionnaireItemEnableWhen{{Question: "b", Operator: "=", AnswerBoolean: ptr(false)}}, false},
		{"exists true", "", []fhir.QuestionnaireItemEnableWhen{{Question: "b", Operator: "exists", AnswerBoolean: ptr(true)}}, true},
		{"exists false on unanswered", "", []fhir.QuestionnaireItemEnableWhen{{Question: "zz", Operator: "exists", AnswerBoolean: ptr(false)}}, true},
		{"decimal >=", "", []fhir.QuestionnaireItemEnableWhen{{Question: "n", Operator: ">=", AnswerDecimal: dec("56.0")}}, true},
		{"decimal <", "", []fhir.QuestionnaireItemEnableWhen{{Question: "n", Operator: "<", AnswerDecimal: dec("56")}}, false},
		{"integer vs integer >", "", []fhir.QuestionnaireItemEnableWhen{{Question: "i", Operator: ">", AnswerInteger: ptr(2)}}, true},
		{"coding = ignores display", "", []fhir.QuestionnaireItemEnableWhen{{Question: "c", Operator: "=", AnswerCoding: coding}}, true},
		{"coding != other", "", []fhir.QuestionnaireItemEnableWhen{{Question: "c", Operator: "!=", AnswerCoding: &fhir.Coding{System: "s", Code: "b"}}}, true},
		{"coding other system", "", []fhir.QuestionnaireItemEnableWhen{{Question: "c", Operator: "=", AnswerCoding: &fhir.Coding{System: "t", Code: "a"}}}, false},
		{"!= on unanswered", "", []fhir.QuestionnaireItemEnableWhen{{Question: "zz", Operator: "!=", AnswerString: "x"}}, true},
		{"= on unanswered", "", []fhir.QuestionnaireItemEnableWhen{{Question: "zz", Operator: "=", AnswerString: "x"}}, false},
		{"string =", "", []fhir.QuestionnaireItemEnableWhen{{Question: "str", Operator: "=", AnswerString: "x"}}, true},
		{"all: one false", "all", []fhir.QuestionnaireItemEnableWhen{
			{Question: "b", Operator: "=", AnswerBoolean: ptr(true)}, {Question: "n", Operator: "<", AnswerDecimal: dec("1")}}, false},
		{"any: one true", "any", []fhir.QuestionnaireItemEnableWhen{
			{Question: "n", Operator: "<", AnswerDecimal: dec("1")}, {Question: "b", Operator: "=", AnswerBoolean: ptr(true)}}, true},
		{"any: none true", "any", []fhir.QuestionnaireItemEnableWhen{
			{Question: "n", Operator: "<", AnswerDecimal: dec("1")}, {Question: "b", Operator: "=", AnswerBoolean: ptr(false)}}, false},
		{"type mismatch never matches", "", []fhir.QuestionnaireItemEnableWhen{{Question: "b", Operator: "=", AnswerString: "true"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &filler{answers: answers}
			it := &fhir.QuestionnaireItem{LinkID: "q", EnableWhen: tt.when, EnableBehavior: tt.behavior}
			if got := f.enabled(it); got != tt.want {
				t.Errorf("enabled = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSameAnswers(t *testing.T) {
	dec := func(s string) *fhir.Decimal { d := fhir.Decimal(s); return &d }
	item := func(id string, a fhir.QuestionnaireResponseItemAnswer) fhir.QuestionnaireResponseItem {
		return fhir.QuestionnaireResponseItem{LinkID: id, Answer: []fhir.QuestionnaireResponseItemAnswer{a}}
	}
	saved := []fhir.QuestionnaireResponseItem{
		{LinkID: "g", Item: []fhir.QuestionnaireResponseItem{
			item("n", fhir.QuestionnaireResponseItemAnswer{ValueDecimal: dec("65.0")}),
			item("c", fhir.QuestionnaireResponseItemAnswer{ValueCoding: &fhir.Coding{System: "s", Code: "a", Display: "A"}}),
		}},
		item("t", fhir.QuestionnaireResponseItemAnswer{ValueString: "marker"}),
	}
	tests := []struct {
		name string
		got  []fhir.QuestionnaireResponseItem
		err  string
	}{
		{"same, other formatting and grouping", []fhir.QuestionnaireResponseItem{
			item("t", fhir.QuestionnaireResponseItemAnswer{ValueString: "marker"}),
			item("n", fhir.QuestionnaireResponseItemAnswer{ValueDecimal: dec("65")}),
			item("c", fhir.QuestionnaireResponseItemAnswer{ValueCoding: &fhir.Coding{System: "s", Code: "a"}}),
		}, ""},
		{"lost answer", []fhir.QuestionnaireResponseItem{
			item("n", fhir.QuestionnaireResponseItemAnswer{ValueDecimal: dec("65")}),
			item("c", fhir.QuestionnaireResponseItemAnswer{ValueCoding: &fhir.Coding{System: "s", Code: "a"}}),
		}, "answer to t"},
		{"changed answer", []fhir.QuestionnaireResponseItem{
			item("t", fhir.QuestionnaireResponseItemAnswer{ValueString: "other"}),
			item("n", fhir.QuestionnaireResponseItemAnswer{ValueDecimal: dec("65")}),
			item("c", fhir.QuestionnaireResponseItemAnswer{ValueCoding: &fhir.Coding{System: "s", Code: "a"}}),
		}, "answer to t"},
		{"extra answer", append(append([]fhir.QuestionnaireResponseItem{}, saved...),
			item("x", fhir.QuestionnaireResponseItemAnswer{ValueBoolean: ptr(true)})), "never given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sameAnswers(saved, tt.got)
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("unexpected difference: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("err = %v, want %q", err, tt.err)
			}
		})
	}
}

func TestParseFormsAndApprove(t *testing.T) {
	page := []byte(`<html><body>
<form method="get" action="/search"><input name="q" value="x"><button name="go" value="search">Search</button></form>
<form method="post" action="/oauth/authorize/interact">
  <input type="hidden" name="csrf" value="c-1">
  <input type="hidden" name="request" value="r-9">
  <input type="checkbox" name="remember" value="yes" checked>
  <input type="checkbox" name="unticked" value="no">
  <button type="submit" name="decision" value="deny">Don't allow</button>
  <button type="submit" name="decision" value="allow">Allow</button>
</form></body></html>`)
	forms, err := parseForms(page)
	if err != nil {
		t.Fatal(err)
	}
	if len(forms) != 2 {
		t.Fatalf("%d forms", len(forms))
	}
	f := forms[1]
	if f.Method != "POST" || f.Action != "/oauth/authorize/interact" {
		t.Errorf("form %s %s", f.Method, f.Action)
	}
	if f.Fields.Get("csrf") != "c-1" || f.Fields.Get("request") != "r-9" || f.Fields.Get("remember") != "yes" || f.Fields.Has("unticked") {
		t.Errorf("fields %v", f.Fields)
	}
	b, ok := approving(f.Buttons)
	if !ok || b.Value != "allow" {
		t.Errorf("approving = %+v, %v; want the allow button, not \"Don't allow\"", b, ok)
	}
	if _, ok := approving([]htmlButton{{Name: "d", Value: "deny", Label: "Deny"}}); ok {
		t.Error("a deny-only form was approved")
	}
}

func TestMedian(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	tests := []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{ms(5), 5 * time.Millisecond},
		{ms(9, 1, 5), 5 * time.Millisecond},
		{ms(4, 1, 3, 2), 2500 * time.Microsecond},
	}
	for _, tt := range tests {
		if got := Median(tt.in); got != tt.want {
			t.Errorf("Median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestReport(t *testing.T) {
	ok := Step{N: 1, Name: "EHR launch", OK: true, Duration: 12 * time.Millisecond, Detail: "launch x"}
	bad := Step{N: 2, Name: "app authorization", OK: false, Duration: 3 * time.Millisecond, Detail: "HTTP 500"}
	if got := ok.Line(); got != "PASS  1. EHR launch (12 ms) launch x" {
		t.Errorf("line %q", got)
	}
	if got := bad.Line(); got != "FAIL  2. app authorization (3 ms) HTTP 500" {
		t.Errorf("line %q", got)
	}
	if (Report{}).OK() {
		t.Error("an empty report is OK")
	}
	r := Report{Steps: []Step{ok, bad}}
	if r.OK() || len(r.Failed()) != 1 {
		t.Errorf("OK %v, failed %v", r.OK(), r.Failed())
	}
	var b strings.Builder
	Summary(&b, r)
	if !strings.Contains(b.String(), "1/2 steps held") || !strings.Contains(b.String(), "RESULT: FAIL") {
		t.Errorf("summary:\n%s", b.String())
	}
	if e := (FailedError{Steps: r.Failed()}).Error(); !strings.Contains(e, "2. app authorization") {
		t.Errorf("error %q", e)
	}
}
