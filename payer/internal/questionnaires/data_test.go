package questionnaires

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"dtrsandbox/shared/testutil/fhirjson"
)

// The seeded questionnaires are checked against the FHIR R4 Questionnaire
// rules (https://hl7.org/fhir/R4/questionnaire.html#invs, que-1..que-13)
// and the Da Vinci DTR Standard Questionnaire profile, so that a broken seed
// file fails here and not in LHC-Forms in front of a clinician.

const (
	dataDir       = "data"
	canonicalBase = "http://sandbox.dtr.example/fhir/Questionnaire/"
	seedVersion   = "2026.1"
	dtrStdProfile = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/dtr-std-questionnaire"

	extUnit     = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"
	extMinValue = "http://hl7.org/fhir/StructureDefinition/minValue"
	extMaxValue = "http://hl7.org/fhir/StructureDefinition/maxValue"
)

// wantQuestionnaires are the ids (and so canonicals) the EHR's seeded orders
// name in their CRD coverage-information extension.
var wantQuestionnaires = []string{"cpap", "home-oxygen", "power-wheelchair"}

var (
	fileNameRE = regexp.MustCompile(`^Questionnaire-([A-Za-z0-9\-.]{1,64})\.json$`)
	nameRE     = regexp.MustCompile(`^[A-Z][A-Za-z0-9_]{0,254}$`) // que-0
)

// The structs below list every element R4 defines for Questionnaire, so that
// strict decoding turns a misspelt key ("enableWhens", "answerOptions")
// into a failure instead of a silently ignored rule.

type questionnaire struct {
	ResourceType      string          `json:"resourceType"`
	ID                string          `json:"id"`
	Meta              *meta           `json:"meta"`
	ImplicitRules     string          `json:"implicitRules"`
	Language          string          `json:"language"`
	Text              json.RawMessage `json:"text"`
	Contained         json.RawMessage `json:"contained"`
	Extension         []extension     `json:"extension"`
	ModifierExtension json.RawMessage `json:"modifierExtension"`
	URL               string          `json:"url"`
	Identifier        json.RawMessage `json:"identifier"`
	Version           string          `json:"version"`
	Name              string          `json:"name"`
	Title             string          `json:"title"`
	DerivedFrom       []string        `json:"derivedFrom"`
	Status            string          `json:"status"`
	Experimental      *bool           `json:"experimental"`
	SubjectType       []string        `json:"subjectType"`
	Date              string          `json:"date"`
	Publisher         string          `json:"publisher"`
	Contact           json.RawMessage `json:"contact"`
	Description       string          `json:"description"`
	UseContext        json.RawMessage `json:"useContext"`
	Jurisdiction      json.RawMessage `json:"jurisdiction"`
	Purpose           string          `json:"purpose"`
	Copyright         string          `json:"copyright"`
	ApprovalDate      string          `json:"approvalDate"`
	LastReviewedDate  string          `json:"lastReviewedDate"`
	EffectivePeriod   json.RawMessage `json:"effectivePeriod"`
	Code              json.RawMessage `json:"code"`
	Item              []item          `json:"item"`
}

type meta struct {
	ID          string          `json:"id"`
	Extension   json.RawMessage `json:"extension"`
	VersionID   string          `json:"versionId"`
	LastUpdated string          `json:"lastUpdated"`
	Source      string          `json:"source"`
	Profile     []string        `json:"profile"`
	Security    json.RawMessage `json:"security"`
	Tag         json.RawMessage `json:"tag"`
}

// extension keeps value[x] open: an extension's value type depends on its url.
type extension map[string]json.RawMessage

type item struct {
	ID                string          `json:"id"`
	Extension         []extension     `json:"extension"`
	ModifierExtension json.RawMessage `json:"modifierExtension"`
	LinkID            string          `json:"linkId"`
	Definition        string          `json:"definition"`
	Code              []coding        `json:"code"`
	Prefix            string          `json:"prefix"`
	Text              string          `json:"text"`
	Type              string          `json:"type"`
	EnableWhen        []enableWhen    `json:"enableWhen"`
	EnableBehavior    string          `json:"enableBehavior"`
	Required          *bool           `json:"required"`
	Repeats           *bool           `json:"repeats"`
	ReadOnly          *bool           `json:"readOnly"`
	MaxLength         *int            `json:"maxLength"`
	AnswerValueSet    string          `json:"answerValueSet"`
	AnswerOption      []answerOption  `json:"answerOption"`
	Initial           json.RawMessage `json:"initial"`
	Item              []item          `json:"item"`
}

type enableWhen struct {
	ID                string          `json:"id"`
	Extension         json.RawMessage `json:"extension"`
	ModifierExtension json.RawMessage `json:"modifierExtension"`
	Question          string          `json:"question"`
	Operator          string          `json:"operator"`
	AnswerBoolean     *bool           `json:"answerBoolean"`
	AnswerDecimal     *float64        `json:"answerDecimal"`
	AnswerInteger     *int            `json:"answerInteger"`
	AnswerDate        *string         `json:"answerDate"`
	AnswerDateTime    *string         `json:"answerDateTime"`
	AnswerTime        *string         `json:"answerTime"`
	AnswerString      *string         `json:"answerString"`
	AnswerCoding      *coding         `json:"answerCoding"`
	AnswerQuantity    json.RawMessage `json:"answerQuantity"`
	AnswerReference   json.RawMessage `json:"answerReference"`
}

type answerOption struct {
	ID                string          `json:"id"`
	Extension         json.RawMessage `json:"extension"`
	ModifierExtension json.RawMessage `json:"modifierExtension"`
	ValueInteger      *int            `json:"valueInteger"`
	ValueDate         *string         `json:"valueDate"`
	ValueTime         *string         `json:"valueTime"`
	ValueString       *string         `json:"valueString"`
	ValueCoding       *coding         `json:"valueCoding"`
	ValueReference    json.RawMessage `json:"valueReference"`
	InitialSelected   *bool           `json:"initialSelected"`
}

type coding struct {
	ID           string          `json:"id"`
	Extension    json.RawMessage `json:"extension"`
	System       string          `json:"system"`
	Version      string          `json:"version"`
	Code         string          `json:"code"`
	Display      string          `json:"display"`
	UserSelected *bool           `json:"userSelected"`
}

func (c coding) key() string { return c.System + "|" + c.Code }

// answerType names the answer[x] an enableWhen carries, or "" when it
// carries none or more than one.
func (w enableWhen) answerType() string {
	var set []string
	for name, present := range map[string]bool{
		"boolean":   w.AnswerBoolean != nil,
		"decimal":   w.AnswerDecimal != nil,
		"integer":   w.AnswerInteger != nil,
		"date":      w.AnswerDate != nil,
		"dateTime":  w.AnswerDateTime != nil,
		"time":      w.AnswerTime != nil,
		"string":    w.AnswerString != nil,
		"Coding":    w.AnswerCoding != nil,
		"Quantity":  w.AnswerQuantity != nil,
		"Reference": w.AnswerReference != nil,
	} {
		if present {
			set = append(set, name)
		}
	}
	if len(set) != 1 {
		return ""
	}
	return set[0]
}

func (o answerOption) valueCount() int {
	n := 0
	for _, present := range []bool{o.ValueInteger != nil, o.ValueDate != nil, o.ValueTime != nil,
		o.ValueString != nil, o.ValueCoding != nil, o.ValueReference != nil} {
		if present {
			n++
		}
	}
	return n
}

// seedFile is one file of the data folder, decoded.
type seedFile struct {
	name   string // file name
	fileID string // the id the file name promises
	raw    []byte
	q      questionnaire
}

// decodeQuestionnaire checks the JSON the way a strict FHIR parser would
// (no duplicate or case-variant keys, no null or empty values) and decodes
// it refusing unknown elements.
func decodeQuestionnaire(raw []byte) (questionnaire, error) {
	var q questionnaire
	if err := fhirjson.CheckShape(raw); err != nil {
		return q, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil {
		return q, fmt.Errorf("decode Questionnaire: %w", err)
	}
	return q, nil
}

// checkMetadata: the resource is the seeded DTR questionnaire its file name
// says, with the canonical the EHR's orders use.
func checkMetadata(f seedFile) []error {
	q := f.q
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if q.ResourceType != "Questionnaire" {
		fail("resourceType %q, want Questionnaire", q.ResourceType)
	}
	if q.ID != f.fileID {
		fail("id %q does not match the file name %q", q.ID, f.name)
	}
	if want := canonicalBase + q.ID; q.URL != want {
		fail("url %q, want %q", q.URL, want)
	}
	if q.Version != seedVersion {
		fail("version %q, want %q", q.Version, seedVersion)
	}
	if q.Status != "active" {
		fail("status %q, want active", q.Status)
	}
	if !nameRE.MatchString(q.Name) {
		fail("name %q is not usable as a computable name (que-0)", q.Name)
	}
	if strings.TrimSpace(q.Title) == "" {
		fail("title is missing")
	}
	if !slices.Equal(q.SubjectType, []string{"Patient"}) {
		fail("subjectType %v, want [Patient] (DTR Standard Questionnaire)", q.SubjectType)
	}
	if q.Meta == nil || !slices.Contains(q.Meta.Profile, dtrStdProfile) {
		fail("meta.profile does not claim %s", dtrStdProfile)
	}
	if len(q.Text) == 0 {
		fail("text (narrative) is missing; the DTR Standard Questionnaire requires it")
	}
	if len(q.Item) == 0 {
		fail("no items")
	}
	return errs
}

// checkRenderable: LHC-Forms must render the questionnaire without a CQL
// engine, so no library, no CQL expression and no population from one.
func checkRenderable(f seedFile) []error {
	var errs []error
	for _, banned := range []string{
		"http://hl7.org/fhir/StructureDefinition/cqf-library",
		"http://hl7.org/fhir/StructureDefinition/cqf-expression",
		"text/cql",
	} {
		if bytes.Contains(f.raw, []byte(banned)) {
			errs = append(errs, fmt.Errorf("uses %s, which needs a CQL engine to render", banned))
		}
	}
	return errs
}

var (
	itemTypes = []string{"group", "display", "boolean", "decimal", "integer", "date", "dateTime", "time",
		"string", "text", "url", "choice", "open-choice", "attachment", "reference", "quantity"}
	operators = []string{"exists", "=", "!=", ">", "<", ">=", "<="}
	// que-10: maxLength only on these types.
	maxLengthTypes = []string{"boolean", "decimal", "integer", "string", "text", "url", "open-choice"}
	orderedTypes   = []string{"decimal", "integer", "date", "dateTime", "time", "quantity"}
	// answerFor maps a question type to the enableWhen answer[x] that can match it.
	answerFor = map[string]string{
		"boolean": "boolean", "decimal": "decimal", "integer": "integer", "date": "date",
		"dateTime": "dateTime", "time": "time", "string": "string", "text": "string", "url": "string",
		"choice": "Coding", "open-choice": "Coding", "quantity": "Quantity", "reference": "Reference",
	}
)

// checkItems applies the R4 item rules: unique linkIds (que-2), groups with
// children and display items without (que-1), answer options only and
// always on choice items (que-4/que-5), no required or readOnly display items
// (que-6/que-9), maxLength on simple types only (que-10), enableBehavior with
// several conditions (que-12), and enableWhen conditions that point at an
// existing question and carry an answer that question can give.
func checkItems(f seedFile) []error {
	var errs []error
	fail := func(linkID, format string, a ...any) {
		errs = append(errs, fmt.Errorf("item %q: %s", linkID, fmt.Sprintf(format, a...)))
	}
	byLinkID := map[string]item{}
	var all []item
	var walk func(items []item)
	walk = func(items []item) {
		for _, it := range items {
			if it.LinkID == "" {
				errs = append(errs, fmt.Errorf("item with text %q has no linkId", it.Text))
			} else if _, dup := byLinkID[it.LinkID]; dup {
				fail(it.LinkID, "linkId is not unique (que-2)")
			} else {
				byLinkID[it.LinkID] = it
			}
			all = append(all, it)
			walk(it.Item)
		}
	}
	walk(f.q.Item)

	for _, it := range all {
		checkItem(it, fail)
		for i, w := range it.EnableWhen {
			checkEnableWhen(it, i, w, byLinkID, fail)
		}
	}
	return errs
}

func checkItem(it item, fail func(linkID, format string, a ...any)) {
	id := it.LinkID
	if !slices.Contains(itemTypes, it.Type) {
		fail(id, "type %q is not an R4 item type", it.Type)
	}
	if strings.TrimSpace(it.Text) == "" {
		fail(id, "no text to show")
	}
	switch it.Type {
	case "group":
		if len(it.Item) == 0 {
			fail(id, "group without items (que-1)")
		}
	case "display":
		if len(it.Item) > 0 {
			fail(id, "display item with children (que-1)")
		}
		if it.Required != nil || it.Repeats != nil {
			fail(id, "display item with required or repeats (que-6)")
		}
		if it.ReadOnly != nil {
			fail(id, "display item with readOnly (que-9)")
		}
		if len(it.Code) > 0 {
			fail(id, "display item with a code (que-3)")
		}
	}
	isChoice := it.Type == "choice" || it.Type == "open-choice"
	switch {
	case isChoice && len(it.AnswerOption) == 0:
		fail(id, "choice item without answerOption")
	case isChoice && it.AnswerValueSet != "":
		fail(id, "both answerOption and answerValueSet (que-4)")
	case !isChoice && (len(it.AnswerOption) > 0 || it.AnswerValueSet != ""):
		fail(id, "answerOption or answerValueSet on a %s item (que-5)", it.Type)
	}
	seen := map[string]bool{}
	for i, o := range it.AnswerOption {
		if o.valueCount() != 1 {
			fail(id, "answerOption[%d] must carry exactly one value[x]", i)
			continue
		}
		c := o.ValueCoding
		if c == nil {
			continue
		}
		if c.System == "" || c.Code == "" || c.Display == "" {
			fail(id, "answerOption[%d] coding needs system, code and display", i)
		}
		if seen[c.key()] {
			fail(id, "answerOption %s listed twice", c.key())
		}
		seen[c.key()] = true
	}
	if len(it.AnswerOption) > 0 && len(it.Initial) > 0 {
		fail(id, "initial together with answerOption (que-11)")
	}
	if it.MaxLength != nil {
		if !slices.Contains(maxLengthTypes, it.Type) {
			fail(id, "maxLength on a %s item (que-10)", it.Type)
		}
		if *it.MaxLength <= 0 {
			fail(id, "maxLength %d must be positive", *it.MaxLength)
		}
	}
	if len(it.EnableWhen) > 1 && it.EnableBehavior != "all" && it.EnableBehavior != "any" {
		fail(id, "%d enableWhen conditions need enableBehavior all or any (que-12)", len(it.EnableWhen))
	}
	if len(it.EnableWhen) == 0 && it.EnableBehavior != "" {
		fail(id, "enableBehavior without enableWhen")
	}
	checkItemExtensions(it, fail)
}

// checkItemExtensions: units and limits only where LHC-Forms applies them,
// with a value type that fits the item.
func checkItemExtensions(it item, fail func(linkID, format string, a ...any)) {
	limitKey := map[string]string{"decimal": "valueDecimal", "integer": "valueInteger"}[it.Type]
	for _, ext := range it.Extension {
		var url string
		if err := json.Unmarshal(ext["url"], &url); err != nil || url == "" {
			fail(it.LinkID, "extension without url")
			continue
		}
		switch url {
		case extUnit:
			if limitKey == "" {
				fail(it.LinkID, "unit on a %s item", it.Type)
			}
			var c coding
			if err := json.Unmarshal(ext["valueCoding"], &c); err != nil || c.System == "" || c.Code == "" {
				fail(it.LinkID, "unit extension needs a valueCoding with system and code")
			}
		case extMinValue, extMaxValue:
			if limitKey == "" {
				fail(it.LinkID, "%s on a %s item", url, it.Type)
			} else if _, ok := ext[limitKey]; !ok || len(ext) != 2 {
				fail(it.LinkID, "%s on a %s item needs exactly a %s", url, it.Type, limitKey)
			}
		}
	}
}

func checkEnableWhen(it item, i int, w enableWhen, byLinkID map[string]item, fail func(linkID, format string, a ...any)) {
	id := it.LinkID
	target, ok := byLinkID[w.Question]
	switch {
	case w.Question == "":
		fail(id, "enableWhen[%d] without question", i)
		return
	case w.Question == id:
		fail(id, "enableWhen[%d] depends on the item itself", i)
		return
	case !ok:
		fail(id, "enableWhen[%d] refers to unknown linkId %q", i, w.Question)
		return
	case target.Type == "group" || target.Type == "display":
		fail(id, "enableWhen[%d] refers to %s item %q, which has no answer", i, target.Type, w.Question)
		return
	}
	if !slices.Contains(operators, w.Operator) {
		fail(id, "enableWhen[%d] operator %q is not an R4 operator", i, w.Operator)
		return
	}
	got := w.answerType()
	if got == "" {
		fail(id, "enableWhen[%d] must carry exactly one answer[x]", i)
		return
	}
	if w.Operator == "exists" {
		if got != "boolean" {
			fail(id, "enableWhen[%d] exists needs answerBoolean (que-7)", i)
		}
		return
	}
	if want := answerFor[target.Type]; got != want {
		fail(id, "enableWhen[%d] answer%s cannot match %s item %q (want answer%s)", i, got, target.Type, w.Question, want)
		return
	}
	if strings.ContainsAny(w.Operator, "<>") && !slices.Contains(orderedTypes, target.Type) {
		fail(id, "enableWhen[%d] operator %s on unordered %s item %q", i, w.Operator, target.Type, w.Question)
	}
	if w.AnswerCoding != nil && target.Type == "choice" {
		found := slices.ContainsFunc(target.AnswerOption, func(o answerOption) bool {
			return o.ValueCoding != nil && o.ValueCoding.key() == w.AnswerCoding.key()
		})
		if !found {
			fail(id, "enableWhen[%d] answerCoding %s is not an option of %q", i, w.AnswerCoding.key(), w.Question)
		}
	}
}

var questionnaireChecks = []struct {
	name  string
	check func(seedFile) []error
}{
	{"metadata", checkMetadata},
	{"items", checkItems},
	{"renderable without CQL", checkRenderable},
}

// loadSeedFiles reads the data folder; every entry must be a
// Questionnaire-<id>.json file that decodes strictly.
func loadSeedFiles(t *testing.T) []seedFile {
	t.Helper()
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		t.Fatalf("read %s: %v", dataDir, err)
	}
	var files []seedFile
	for _, e := range entries {
		m := fileNameRE.FindStringSubmatch(e.Name())
		if !e.Type().IsRegular() || m == nil {
			t.Errorf("%s: the data folder holds only Questionnaire-<id>.json files", e.Name())
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dataDir, e.Name()))
		if err != nil {
			t.Errorf("%s: %v", e.Name(), err)
			continue
		}
		q, err := decodeQuestionnaire(raw)
		if err != nil {
			t.Errorf("%s: %v", e.Name(), err)
			continue
		}
		files = append(files, seedFile{name: e.Name(), fileID: m[1], raw: raw, q: q})
	}
	return files
}

func TestSeededQuestionnaires(t *testing.T) {
	for _, f := range loadSeedFiles(t) {
		t.Run(f.name, func(t *testing.T) {
			for _, c := range questionnaireChecks {
				t.Run(c.name, func(t *testing.T) {
					for _, err := range c.check(f) {
						t.Error(err)
					}
				})
			}
		})
	}
}

func TestSeededQuestionnaireSet(t *testing.T) {
	files := loadSeedFiles(t)
	byID := map[string]seedFile{}
	for _, f := range files {
		byID[f.q.ID] = f
	}
	for _, id := range wantQuestionnaires {
		t.Run(id, func(t *testing.T) {
			f, ok := byID[id]
			if !ok {
				t.Fatalf("questionnaire %q is not seeded", id)
			}
			if n := countURL(files, canonicalBase+id); n != 1 {
				t.Errorf("%d questionnaires carry url %s, want exactly 1", n, canonicalBase+id)
			}
			if f.q.Version != seedVersion {
				t.Errorf("version %q, want %q", f.q.Version, seedVersion)
			}
		})
	}
	if len(files) != len(wantQuestionnaires) {
		t.Errorf("%d questionnaires seeded, want %d (%v)", len(files), len(wantQuestionnaires), wantQuestionnaires)
	}
	t.Run("answer codes mean one thing", func(t *testing.T) {
		display := map[string]string{}
		for _, f := range files {
			var walk func([]item)
			walk = func(items []item) {
				for _, it := range items {
					for _, o := range it.AnswerOption {
						if c := o.ValueCoding; c != nil {
							if prev, ok := display[c.key()]; ok && prev != c.Display {
								t.Errorf("%s item %q: code %s shown as %q here and %q elsewhere", f.name, it.LinkID, c.key(), c.Display, prev)
							}
							display[c.key()] = c.Display
						}
					}
					walk(it.Item)
				}
			}
			walk(f.q.Item)
		}
	})
}

func countURL(files []seedFile, url string) int {
	n := 0
	for _, f := range files {
		if f.q.URL == url {
			n++
		}
	}
	return n
}

// TestChecksRejectBrokenQuestionnaires shows that each check can fail: every
// case breaks one rule in an otherwise valid questionnaire.
func TestChecksRejectBrokenQuestionnaires(t *testing.T) {
	const validItems = `[
	  {"linkId": "g", "text": "Group", "type": "group", "item": [
	    {"linkId": "g.method", "text": "Method", "type": "choice", "answerOption": [
	      {"valueCoding": {"system": "http://example.org/cs", "code": "a", "display": "A"}},
	      {"valueCoding": {"system": "http://example.org/cs", "code": "b", "display": "B"}}]},
	    {"linkId": "g.value", "text": "Value", "type": "decimal",
	     "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/minValue", "valueDecimal": 1.5}],
	     "enableWhen": [{"question": "g.method", "operator": "=",
	       "answerCoding": {"system": "http://example.org/cs", "code": "a"}}]},
	    {"linkId": "g.note", "text": "Note", "type": "text", "maxLength": 10,
	     "enableWhen": [{"question": "g.value", "operator": ">=", "answerDecimal": 2}]}]}]`
	wrap := func(items string) string {
		return `{"resourceType": "Questionnaire", "id": "t",
		  "meta": {"profile": ["` + dtrStdProfile + `"]},
		  "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">t</div>"},
		  "url": "` + canonicalBase + `t", "version": "` + seedVersion + `", "name": "T", "title": "T",
		  "status": "active", "subjectType": ["Patient"], "item": ` + items + `}`
	}
	tests := []struct {
		name    string
		json    string
		wantErr string // "" means the input is valid
	}{
		{"valid", wrap(validItems), ""},
		{"duplicate linkId", wrap(strings.Replace(validItems, `"g.note"`, `"g.value"`, 1)), "not unique"},
		{"enableWhen to unknown linkId", wrap(strings.Replace(validItems, `"question": "g.value"`, `"question": "g.nope"`, 1)), "unknown linkId"},
		{"enableWhen answer of the wrong type", wrap(strings.Replace(validItems, `"answerDecimal": 2`, `"answerString": "2"`, 1)), "cannot match decimal"},
		{"enableWhen coding not an option", wrap(strings.Replace(validItems, `"code": "a"}}]}`, `"code": "z"}}]}`, 1)), "not an option"},
		{"choice without options", wrap(`[{"linkId": "c", "text": "C", "type": "choice"}]`), "without answerOption"},
		{"options on a string item", wrap(`[{"linkId": "s", "text": "S", "type": "string", "answerOption": [{"valueString": "x"}]}]`), "que-5"},
		{"maxLength on a date", wrap(`[{"linkId": "d", "text": "D", "type": "date", "maxLength": 10}]`), "que-10"},
		{"group without items", wrap(`[{"linkId": "g", "text": "G", "type": "group"}]`), "que-1"},
		{"two conditions without enableBehavior", wrap(strings.Replace(validItems,
			`"operator": ">=", "answerDecimal": 2}]`,
			`"operator": ">=", "answerDecimal": 2}, {"question": "g.method", "operator": "exists", "answerBoolean": true}]`, 1)), "que-12"},
		{"minValue of the wrong type", wrap(strings.Replace(validItems, `"valueDecimal": 1.5`, `"valueInteger": 1`, 1)), "needs exactly a valueDecimal"},
		{"wrong canonical", strings.Replace(wrap(validItems), canonicalBase+"t", "http://elsewhere.example/Questionnaire/t", 1), "url"},
		{"CQL library", strings.Replace(wrap(validItems), `"status": "active"`,
			`"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/cqf-library", "valueCanonical": "http://x/Library/l"}], "status": "active"`, 1), "CQL"},
		{"misspelt element", wrap(strings.Replace(validItems, `"enableWhen": [{"question": "g.value"`, `"enableWhens": [{"question": "g.value"`, 1)), "unknown field"},
		{"duplicate key", strings.Replace(wrap(validItems), `"name": "T"`, `"name": "T", "Name": "U"`, 1), "repeats"},
		{"null value", strings.Replace(wrap(validItems), `"title": "T"`, `"title": null`, 1), "null"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := []byte(tc.json)
			q, err := decodeQuestionnaire(raw)
			var errs []error
			if err != nil {
				errs = append(errs, err)
			} else {
				f := seedFile{name: "Questionnaire-t.json", fileID: "t", raw: raw, q: q}
				for _, c := range questionnaireChecks {
					errs = append(errs, c.check(f)...)
				}
			}
			if tc.wantErr == "" {
				for _, err := range errs {
					t.Errorf("valid questionnaire rejected: %v", err)
				}
				return
			}
			if !slices.ContainsFunc(errs, func(err error) bool { return strings.Contains(err.Error(), tc.wantErr) }) {
				t.Errorf("no error mentioning %q; got %v", tc.wantErr, errs)
			}
		})
	}
}
