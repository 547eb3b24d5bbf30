package demo

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"dtrsandbox/shared/fhir"
)

// Structure definitions of the item extensions the filler honours
// (FHIR R4 extensions used by SDC forms).
const (
	extHidden   = "http://hl7.org/fhir/StructureDefinition/questionnaire-hidden"
	extMinValue = "http://hl7.org/fhir/StructureDefinition/minValue"
	extMaxValue = "http://hl7.org/fhir/StructureDefinition/maxValue"
	extRegex    = "http://hl7.org/fhir/StructureDefinition/regex"
)

// filler answers a Questionnaire the way a careful clinician would: every
// enabled, visible, writable item gets a value its type, answer options,
// min/max, maxLength and regex accept; enableWhen is evaluated against the
// answers given so far (R4 questionnaire.html#Questionnaire.item.enableWhen).
type filler struct {
	marker  string // written into free-text items, so the answers are recognisable
	today   string
	answers map[string][]fhir.QuestionnaireResponseItemAnswer
}

// fill returns a QuestionnaireResponse for q with status in-progress, and
// the number of answered questions.
func fill(q *fhir.Questionnaire, marker string, now time.Time) (*fhir.QuestionnaireResponse, int) {
	f := &filler{marker: marker, today: now.Format("2006-01-02"), answers: map[string][]fhir.QuestionnaireResponseItemAnswer{}}
	qr := &fhir.QuestionnaireResponse{
		ResourceType:  "QuestionnaireResponse",
		Questionnaire: canonical(q),
		Status:        "in-progress",
		Authored:      now.UTC().Format(time.RFC3339),
		Item:          f.items(q.Item),
	}
	return qr, len(f.answers)
}

// canonical is the Questionnaire's url|version (R4 QuestionnaireResponse.questionnaire).
func canonical(q *fhir.Questionnaire) string {
	if q.URL == "" {
		return "Questionnaire/" + q.ID
	}
	if q.Version != "" {
		return q.URL + "|" + q.Version
	}
	return q.URL
}

func (f *filler) items(items []fhir.QuestionnaireItem) []fhir.QuestionnaireResponseItem {
	var out []fhir.QuestionnaireResponseItem
	for i := range items {
		it := &items[i]
		if !f.enabled(it) || boolExt(it.Extension, extHidden) {
			continue
		}
		switch it.Type {
		case "display":
			continue
		case "group":
			children := f.items(it.Item)
			if len(children) > 0 {
				out = append(out, fhir.QuestionnaireResponseItem{LinkID: it.LinkID, Text: it.Text, Item: children})
			}
			continue
		}
		if it.ReadOnly != nil && *it.ReadOnly {
			continue
		}
		ans, ok := f.answer(it)
		if !ok {
			continue
		}
		f.answers[it.LinkID] = []fhir.QuestionnaireResponseItemAnswer{ans}
		ri := fhir.QuestionnaireResponseItem{LinkID: it.LinkID, Text: it.Text, Answer: []fhir.QuestionnaireResponseItemAnswer{ans}}
		if len(it.Item) > 0 { // questions nested under a question
			ri.Answer[0].Item = f.items(it.Item)
		}
		out = append(out, ri)
	}
	return out
}

// answer picks a value for one question.
func (f *filler) answer(it *fhir.QuestionnaireItem) (fhir.QuestionnaireResponseItemAnswer, bool) {
	var a fhir.QuestionnaireResponseItemAnswer
	switch it.Type {
	case "boolean":
		a.ValueBoolean = ptr(true)
	case "decimal":
		v := pickNumber(it, 0.3, false)
		a.ValueDecimal = fhir.DecimalOf(v)
	case "integer":
		v := int(pickNumber(it, 0.3, true))
		a.ValueInteger = &v
	case "date":
		a.ValueDate = f.today
	case "dateTime":
		a.ValueDateTime = f.today + "T09:00:00Z"
	case "time":
		a.ValueTime = "09:00:00"
	case "string":
		a.ValueString = f.pickString(it)
	case "text":
		a.ValueString = f.marker
	case "url":
		a.ValueURI = "https://example.org/demo"
	case "choice", "open-choice":
		opt, ok := pickOption(it)
		if !ok {
			if it.Type == "open-choice" {
				a.ValueString = f.marker
				return a, true
			}
			return a, false // answerValueSet only: nothing the demo can expand
		}
		a.ValueCoding, a.ValueString, a.ValueInteger, a.ValueDate = opt.ValueCoding, opt.ValueString, opt.ValueInteger, opt.ValueDate
	default: // attachment, reference, quantity: not in the sandbox's forms
		return a, false
	}
	return a, true
}

// pickNumber is a value at fraction frac between minValue and maxValue
// (defaults 0 and 100).
func pickNumber(it *fhir.QuestionnaireItem, frac float64, integer bool) float64 {
	lo, hi := 0.0, 100.0
	if v, ok := numberExt(it.Extension, extMinValue); ok {
		lo = v
	}
	if v, ok := numberExt(it.Extension, extMaxValue); ok {
		hi = v
	}
	if hi < lo {
		hi = lo
	}
	v := lo + (hi-lo)*frac
	if integer {
		return math.Ceil(v)
	}
	return math.Round(v*10) / 10
}

// pickString is the first candidate that fits maxLength and the regex.
func (f *filler) pickString(it *fhir.QuestionnaireItem) string {
	candidates := []string{f.marker, "Dr. Demo Clinician", "J44.9 Chronic obstructive pulmonary disease", "1234567893", "Demo Sleep Lab"}
	var re *regexp.Regexp
	for _, e := range it.Extension {
		if e.URL == extRegex && e.ValueString != "" {
			re, _ = regexp.Compile(e.ValueString) // an FHIRPath regex Go cannot compile: no constraint
		}
	}
	for _, c := range candidates {
		if it.MaxLength != nil && len(c) > *it.MaxLength {
			continue
		}
		if re != nil && !re.MatchString(c) {
			continue
		}
		return c
	}
	return candidates[len(candidates)-1]
}

// pickOption is the option marked initialSelected, else the first.
func pickOption(it *fhir.QuestionnaireItem) (fhir.QuestionnaireItemAnswerOption, bool) {
	if len(it.AnswerOption) == 0 {
		return fhir.QuestionnaireItemAnswerOption{}, false
	}
	for _, o := range it.AnswerOption {
		if o.InitialSelected != nil && *o.InitialSelected {
			return o, true
		}
	}
	return it.AnswerOption[0], true
}

// enabled evaluates enableWhen with enableBehavior (default "all").
func (f *filler) enabled(it *fhir.QuestionnaireItem) bool {
	if len(it.EnableWhen) == 0 {
		return true
	}
	anyOf := it.EnableBehavior == "any"
	for _, ew := range it.EnableWhen {
		ok := f.condition(ew)
		if anyOf && ok {
			return true
		}
		if !anyOf && !ok {
			return false
		}
	}
	return !anyOf
}

func (f *filler) condition(ew fhir.QuestionnaireItemEnableWhen) bool {
	answers := f.answers[ew.Question]
	if ew.Operator == "exists" {
		want := ew.AnswerBoolean != nil && *ew.AnswerBoolean
		return (len(answers) > 0) == want
	}
	for _, a := range answers {
		if compareAnswer(a, ew) {
			return true
		}
	}
	// R4: "!=" is true when no answer equals the value, including none at all.
	return ew.Operator == "!=" && len(answers) == 0
}

// compareAnswer applies ew.Operator between one answer and ew's value.
func compareAnswer(a fhir.QuestionnaireResponseItemAnswer, ew fhir.QuestionnaireItemEnableWhen) bool {
	var cmp int
	var ok bool
	switch {
	case ew.AnswerBoolean != nil && a.ValueBoolean != nil:
		cmp, ok = boolCmp(*a.ValueBoolean, *ew.AnswerBoolean), true
	case ew.AnswerCoding != nil && a.ValueCoding != nil:
		same := a.ValueCoding.Code == ew.AnswerCoding.Code &&
			(ew.AnswerCoding.System == "" || a.ValueCoding.System == ew.AnswerCoding.System)
		cmp, ok = 1, true
		if same {
			cmp = 0
		}
	case ew.AnswerDecimal != nil || ew.AnswerInteger != nil:
		x, okx := answerNumber(a)
		y := 0.0
		if ew.AnswerDecimal != nil {
			y, _ = ew.AnswerDecimal.Float64()
		} else {
			y = float64(*ew.AnswerInteger)
		}
		if okx {
			cmp, ok = floatCmp(x, y), true
		}
	case ew.AnswerString != "" && a.ValueString != "":
		cmp, ok = strings.Compare(a.ValueString, ew.AnswerString), true
	case ew.AnswerDate != "" && a.ValueDate != "":
		cmp, ok = strings.Compare(a.ValueDate, ew.AnswerDate), true
	}
	if !ok {
		return false
	}
	switch ew.Operator {
	case "=":
		return cmp == 0
	case "!=":
		return cmp != 0
	case ">":
		return cmp > 0
	case "<":
		return cmp < 0
	case ">=":
		return cmp >= 0
	case "<=":
		return cmp <= 0
	}
	return false
}

func answerNumber(a fhir.QuestionnaireResponseItemAnswer) (float64, bool) {
	switch {
	case a.ValueDecimal != nil:
		v, err := a.ValueDecimal.Float64()
		return v, err == nil
	case a.ValueInteger != nil:
		return float64(*a.ValueInteger), true
	}
	return 0, false
}

func boolCmp(a, b bool) int {
	if a == b {
		return 0
	}
	return 1
}

func floatCmp(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func boolExt(exts []fhir.Extension, url string) bool {
	for _, e := range exts {
		if e.URL == url && e.ValueBoolean != nil {
			return *e.ValueBoolean
		}
	}
	return false
}

func numberExt(exts []fhir.Extension, url string) (float64, bool) {
	for _, e := range exts {
		if e.URL != url {
			continue
		}
		switch {
		case e.ValueDecimal != nil:
			v, err := e.ValueDecimal.Float64()
			return v, err == nil
		case e.ValueInteger != nil:
			return float64(*e.ValueInteger), true
		}
	}
	return 0, false
}

func ptr[T any](v T) *T { return &v }

// answerSet flattens a QuestionnaireResponse into linkId → normalised
// answers ("coding:system|code", "decimal:65", ...), so two responses can
// be compared whatever their formatting.
func answerSet(items []fhir.QuestionnaireResponseItem) map[string][]string {
	out := map[string][]string{}
	var walk func([]fhir.QuestionnaireResponseItem)
	walk = func(items []fhir.QuestionnaireResponseItem) {
		for _, it := range items {
			for _, a := range it.Answer {
				out[it.LinkID] = append(out[it.LinkID], normAnswer(a))
				walk(a.Item)
			}
			walk(it.Item)
		}
	}
	walk(items)
	for k := range out {
		sort.Strings(out[k])
	}
	return out
}

func normAnswer(a fhir.QuestionnaireResponseItemAnswer) string {
	switch {
	case a.ValueBoolean != nil:
		return "boolean:" + strconv.FormatBool(*a.ValueBoolean)
	case a.ValueDecimal != nil:
		if v, err := a.ValueDecimal.Float64(); err == nil {
			return "decimal:" + strconv.FormatFloat(v, 'g', -1, 64)
		}
		return "decimal:" + string(*a.ValueDecimal)
	case a.ValueInteger != nil:
		return "integer:" + strconv.Itoa(*a.ValueInteger)
	case a.ValueCoding != nil:
		return "coding:" + a.ValueCoding.System + "|" + a.ValueCoding.Code
	case a.ValueDate != "":
		return "date:" + a.ValueDate
	case a.ValueDateTime != "":
		return "dateTime:" + a.ValueDateTime
	case a.ValueTime != "":
		return "time:" + a.ValueTime
	case a.ValueString != "":
		return "string:" + a.ValueString
	case a.ValueURI != "":
		return "uri:" + a.ValueURI
	}
	return "other"
}

// sameAnswers reports the first difference between the answers of want
// and got (every answer in want must be in got, and no extra question
// answered in got).
func sameAnswers(want, got []fhir.QuestionnaireResponseItem) error {
	w, g := answerSet(want), answerSet(got)
	keys := make([]string, 0, len(w))
	for k := range w {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.Join(w[k], ",") != strings.Join(g[k], ",") {
			return fmt.Errorf("answer to %s: saved %v, got back %v", k, w[k], g[k])
		}
	}
	for k := range g {
		if _, ok := w[k]; !ok {
			return fmt.Errorf("got back an answer to %s that was never given: %v", k, g[k])
		}
	}
	return nil
}
