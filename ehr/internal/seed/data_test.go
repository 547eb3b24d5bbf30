package seed

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"dtrsandbox/shared/testutil/fhirjson"
)

// The seed data is what every demo and regression run starts from, so it is
// checked as a whole: file names against content, references against the
// files present, and the orders' Da Vinci CRD coverage-information
// (http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information)
// against the payer's seeded questionnaires.

const (
	dataDir          = "data"
	payerDataDir     = "../../../payer/internal/questionnaires/data"
	coverageInfoURL  = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
	payerOrg         = "Organization/org-payer"
	questionnaireURL = "http://sandbox.dtr.example/fhir/Questionnaire/"
)

var (
	fileNameRE  = regexp.MustCompile(`^([A-Z][A-Za-z]+)-([A-Za-z0-9\-.]{1,64})\.json$`)
	idRE        = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
	relativeRef = regexp.MustCompile(`^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})$`)
)

// elements lists, per resource type the EHR serves (CONTRACT.md), the
// top-level elements FHIR R4 defines for it, so that a misspelt key fails.
var elements = func() map[string][]string {
	base := []string{"resourceType", "id", "meta", "implicitRules", "language", "text", "contained", "extension", "modifierExtension"}
	with := func(own ...string) []string { return append(slices.Clone(base), own...) }
	return map[string][]string{
		"Patient": with("identifier", "active", "name", "telecom", "gender", "birthDate", "deceasedBoolean", "deceasedDateTime",
			"address", "maritalStatus", "multipleBirthBoolean", "multipleBirthInteger", "photo", "contact", "communication",
			"generalPractitioner", "managingOrganization", "link"),
		"Practitioner": with("identifier", "active", "name", "telecom", "address", "gender", "birthDate", "photo",
			"qualification", "communication"),
		"Organization": with("identifier", "active", "type", "name", "alias", "telecom", "address", "partOf", "contact", "endpoint"),
		"Coverage": with("identifier", "status", "type", "policyHolder", "subscriber", "subscriberId", "beneficiary", "dependent",
			"relationship", "period", "payor", "class", "order", "network", "costToBeneficiary", "subrogation", "contract"),
		"Encounter": with("identifier", "status", "statusHistory", "class", "classHistory", "type", "serviceType", "priority",
			"subject", "episodeOfCare", "basedOn", "participant", "appointment", "period", "length", "reasonCode",
			"reasonReference", "diagnosis", "account", "hospitalization", "location", "serviceProvider", "partOf"),
		"ServiceRequest": with("identifier", "instantiatesCanonical", "instantiatesUri", "basedOn", "replaces", "requisition",
			"status", "intent", "category", "priority", "doNotPerform", "code", "orderDetail", "quantityQuantity",
			"quantityRatio", "quantityRange", "subject", "encounter", "occurrenceDateTime", "occurrencePeriod",
			"occurrenceTiming", "asNeededBoolean", "asNeededCodeableConcept", "authoredOn", "requester", "performerType",
			"performer", "locationCode", "locationReference", "reasonCode", "reasonReference", "insurance", "supportingInfo",
			"specimen", "bodySite", "note", "patientInstruction", "relevantHistory"),
		"DeviceRequest": with("identifier", "instantiatesCanonical", "instantiatesUri", "basedOn", "priorRequest",
			"groupIdentifier", "status", "intent", "priority", "codeReference", "codeCodeableConcept", "parameter", "subject",
			"encounter", "occurrenceDateTime", "occurrencePeriod", "occurrenceTiming", "authoredOn", "requester",
			"performerType", "performer", "reasonCode", "reasonReference", "insurance", "supportingInfo", "note",
			"relevantHistory"),
		"MedicationRequest": with("identifier", "status", "statusReason", "intent", "category", "priority", "doNotPerform",
			"reportedBoolean", "reportedReference", "medicationCodeableConcept", "medicationReference", "subject", "encounter",
			"supportingInformation", "authoredOn", "requester", "performer", "performerType", "recorder", "reasonCode",
			"reasonReference", "instantiatesCanonical", "instantiatesUri", "basedOn", "groupIdentifier",
			"courseOfTherapyType", "insurance", "note", "dosageInstruction", "dispenseRequest", "substitution",
			"priorPrescription", "detectedIssue", "eventHistory"),
	}
}()

var orderTypes = []string{"DeviceRequest", "ServiceRequest", "MedicationRequest"}

// resource is one seed file, decoded generically.
type resource struct {
	file string
	typ  string // from the file name
	id   string // from the file name
	raw  []byte
	body map[string]any
}

func (r resource) key() string { return r.typ + "/" + r.id }

func (r resource) str(name string) string { s, _ := r.body[name].(string); return s }

// refAt returns the reference string of the Reference element name.
func (r resource) refAt(name string) string { return referenceOf(r.body[name]) }

func referenceOf(v any) string {
	m, _ := v.(map[string]any)
	s, _ := m["reference"].(string)
	return s
}

// seed is the whole data folder, by "Type/id".
type seed map[string]resource

// decodeResource checks the JSON the way a strict FHIR parser would and
// decodes it, keeping numbers as json.Number.
func decodeResource(raw []byte) (map[string]any, error) {
	if err := fhirjson.CheckShape(raw); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var body map[string]any
	if err := dec.Decode(&body); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return body, nil
}

// loadSeed reads a folder of <Type>-<id>.json files.
func loadSeed(dir string) (seed, []error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, []error{err}
	}
	s := seed{}
	var errs []error
	for _, e := range entries {
		m := fileNameRE.FindStringSubmatch(e.Name())
		if !e.Type().IsRegular() || m == nil {
			errs = append(errs, fmt.Errorf("%s: the data folder holds only <Type>-<id>.json files", e.Name()))
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		body, err := decodeResource(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", e.Name(), err))
			continue
		}
		r := resource{file: e.Name(), typ: m[1], id: m[2], raw: raw, body: body}
		s[r.key()] = r
	}
	return s, errs
}

func mustLoadSeed(t *testing.T) seed {
	t.Helper()
	s, errs := loadSeed(dataDir)
	for _, err := range errs {
		t.Error(err)
	}
	if s == nil {
		t.FailNow()
	}
	return s
}

// checkIdentity: resourceType and id are what the file name says, the type
// is one the EHR serves, and every top-level element exists in R4.
func checkIdentity(r resource, _ seed) []error {
	var errs []error
	if got := r.str("resourceType"); got != r.typ {
		errs = append(errs, fmt.Errorf("resourceType %q does not match the file name %s", got, r.file))
	}
	if got := r.str("id"); got != r.id || !idRE.MatchString(got) {
		errs = append(errs, fmt.Errorf("id %q does not match the file name %s", got, r.file))
	}
	allowed, served := elements[r.typ]
	if !served {
		return append(errs, fmt.Errorf("type %s is not one the EHR serves", r.typ))
	}
	for name := range r.body {
		if !slices.Contains(allowed, name) {
			errs = append(errs, fmt.Errorf("%q is not an R4 %s element", name, r.typ))
		}
	}
	return errs
}

// checkReferences: every Reference.reference, wherever it sits, is relative
// and names a seeded resource.
func checkReferences(r resource, s seed) []error {
	var errs []error
	walkReferences(r.body, "", func(path, ref string) {
		switch {
		case !relativeRef.MatchString(ref):
			errs = append(errs, fmt.Errorf("%s: reference %q is not a relative Type/id reference", path, ref))
		default:
			if _, ok := s[ref]; !ok {
				errs = append(errs, fmt.Errorf("%s: reference %q has no seed file", path, ref))
			}
		}
	})
	return errs
}

func walkReferences(v any, path string, visit func(path, ref string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			if k == "reference" {
				if ref, ok := child.(string); ok {
					visit(path+".reference", ref)
				}
				continue
			}
			walkReferences(child, path+"."+k, visit)
		}
	case []any:
		for i, child := range v {
			walkReferences(child, fmt.Sprintf("%s[%d]", path, i), visit)
		}
	}
}

// checkOrder: an order's subject, encounter, requester and insurance tell
// one consistent story: the encounter and the coverage belong to the
// order's patient, and the coverage is with the seeded payer.
func checkOrder(r resource, s seed) []error {
	if !slices.Contains(orderTypes, r.typ) {
		return nil
	}
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	patient := r.refAt("subject")
	if !strings.HasPrefix(patient, "Patient/") {
		fail("subject %q is not a Patient", patient)
	}
	if r.str("intent") != "order" {
		fail("intent %q, want order", r.str("intent"))
	}
	if st := r.str("status"); st != "draft" && st != "active" {
		fail("status %q, want draft or active", st)
	}
	if r.str("authoredOn") == "" {
		fail("authoredOn is missing")
	}
	if req := r.refAt("requester"); !strings.HasPrefix(req, "Practitioner/") {
		fail("requester %q is not a Practitioner", req)
	}
	if enc, ok := s[r.refAt("encounter")]; !ok || enc.typ != "Encounter" {
		fail("encounter %q is not a seeded Encounter", r.refAt("encounter"))
	} else if enc.refAt("subject") != patient {
		fail("encounter %s is for %s, not %s", enc.key(), enc.refAt("subject"), patient)
	}
	insurance, _ := r.body["insurance"].([]any)
	if len(insurance) != 1 {
		fail("%d insurance entries, want the patient's one Coverage", len(insurance))
		return errs
	}
	cov, ok := s[referenceOf(insurance[0])]
	if !ok || cov.typ != "Coverage" {
		fail("insurance %q is not a seeded Coverage", referenceOf(insurance[0]))
		return errs
	}
	if cov.refAt("beneficiary") != patient {
		fail("insurance %s covers %s, not %s", cov.key(), cov.refAt("beneficiary"), patient)
	}
	if cov.str("status") != "active" {
		fail("insurance %s is %q, not active", cov.key(), cov.str("status"))
	}
	if payors, _ := cov.body["payor"].([]any); len(payors) != 1 || referenceOf(payors[0]) != payerOrg {
		fail("insurance %s is not with %s", cov.key(), payerOrg)
	}
	return errs
}

// coverageInfo is one CRD coverage-information extension: its sub-extensions
// by url.
type coverageInfo map[string][]map[string]any

func (c coverageInfo) code(url string) string {
	if len(c[url]) == 0 {
		return ""
	}
	s, _ := c[url][0]["valueCode"].(string)
	return s
}

// coverageInfoSubExtensions are the sub-extension urls CRD STU 2.1 defines.
var coverageInfoSubExtensions = map[string]string{
	"coverage": "valueReference", "covered": "valueCode", "pa-needed": "valueCode", "doc-needed": "valueCode",
	"doc-purpose": "valueCode", "info-needed": "valueCode", "billingCode": "valueCoding",
	"reason": "valueCodeableConcept", "detail": "extension", "dependency": "valueReference",
	"questionnaire": "valueCanonical", "response": "valueReference", "date": "valueDate",
	"coverage-assertion-id": "valueString", "satisfied-pa-id": "valueString", "contact": "valueContactPoint",
}

func coverageInfos(r resource) ([]coverageInfo, []error) {
	exts, _ := r.body["extension"].([]any)
	var infos []coverageInfo
	var errs []error
	for _, e := range exts {
		ext, _ := e.(map[string]any)
		if ext["url"] != coverageInfoURL {
			continue
		}
		info := coverageInfo{}
		subs, _ := ext["extension"].([]any)
		for _, se := range subs {
			sub, _ := se.(map[string]any)
			url, _ := sub["url"].(string)
			valueKey, known := coverageInfoSubExtensions[url]
			switch {
			case !known:
				errs = append(errs, fmt.Errorf("coverage-information: unknown sub-extension %q", url))
				continue
			case len(sub) != 2 || sub[valueKey] == nil:
				errs = append(errs, fmt.Errorf("coverage-information %s: want exactly a %s", url, valueKey))
				continue
			}
			info[url] = append(info[url], sub)
		}
		infos = append(infos, info)
	}
	return infos, errs
}

// checkCoverageInformation applies the CRD STU 2.1 rules for the extension
// (cardinalities and invariants crd-ci-q1..q6) and ties it to the order: its
// coverage is the order's insurance.
func checkCoverageInformation(r resource, _ seed) []error {
	infos, errs := coverageInfos(r)
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	insurance, _ := r.body["insurance"].([]any)
	for _, info := range infos {
		for _, url := range []string{"coverage", "covered", "date", "coverage-assertion-id"} {
			if len(info[url]) != 1 {
				fail("coverage-information: %d %s, want 1", len(info[url]), url)
			}
		}
		for _, url := range []string{"pa-needed", "doc-needed", "satisfied-pa-id"} {
			if len(info[url]) > 1 {
				fail("coverage-information: %d %s, want at most 1", len(info[url]), url)
			}
		}
		if len(info["coverage"]) == 1 {
			cov := referenceOf(info["coverage"][0]["valueReference"])
			if !slices.ContainsFunc(insurance, func(v any) bool { return referenceOf(v) == cov }) {
				fail("coverage-information coverage %q is not one of the order's insurance", cov)
			}
		}
		covered, pa, doc := info.code("covered"), info.code("pa-needed"), info.code("doc-needed")
		if !slices.Contains([]string{"covered", "not-covered", "conditional"}, covered) {
			fail("coverage-information covered %q", covered)
		}
		if len(info["questionnaire"]) > 0 && doc == "" {
			fail("coverage-information: questionnaire without doc-needed (crd-ci-q1)")
		}
		if covered == "not-covered" && pa != "" {
			fail("coverage-information: pa-needed on a not-covered order (crd-ci-q2)")
		}
		conditional := covered == "conditional" || pa == "conditional" || doc == "conditional"
		if conditional != (len(info["info-needed"]) > 0) {
			fail("coverage-information: info-needed must be present exactly when something is conditional (crd-ci-q3)")
		}
		if (pa == "satisfied") != (len(info["satisfied-pa-id"]) > 0) {
			fail("coverage-information: satisfied-pa-id must be present exactly when pa-needed is satisfied (crd-ci-q5)")
		}
		for _, in := range info["info-needed"] {
			if in["valueCode"] == "OTH" && len(info["reason"]) == 0 {
				fail("coverage-information: info-needed OTH without a reason (crd-ci-q6)")
			}
		}
	}
	return errs
}

var resourceChecks = []struct {
	name  string
	check func(resource, seed) []error
}{
	{"identity", checkIdentity},
	{"references resolve", checkReferences},
	{"order context", checkOrder},
	{"coverage-information", checkCoverageInformation},
}

func TestSeedResources(t *testing.T) {
	s := mustLoadSeed(t)
	for _, key := range slices.Sorted(maps.Keys(s)) {
		r := s[key]
		t.Run(r.file, func(t *testing.T) {
			for _, c := range resourceChecks {
				t.Run(c.name, func(t *testing.T) {
					for _, err := range c.check(r, s) {
						t.Error(err)
					}
				})
			}
		})
	}
}

// TestSeedFixedIDs: the ids CONTRACT.md promises, and the links between them
// the demo relies on.
func TestSeedFixedIDs(t *testing.T) {
	s := mustLoadSeed(t)
	for _, key := range []string{"Organization/org-ehr", payerOrg, "Practitioner/prac-1", "Practitioner/prac-2"} {
		t.Run(key, func(t *testing.T) {
			if _, ok := s[key]; !ok {
				t.Fatalf("%s is not seeded", key)
			}
		})
	}
	tests := []struct {
		patient, coverage, encounter string
	}{
		{"Patient/pat-1", "Coverage/cov-1", "Encounter/enc-1"},
		{"Patient/pat-2", "Coverage/cov-2", "Encounter/enc-2"},
		{"Patient/pat-3", "Coverage/cov-3", "Encounter/enc-3"},
	}
	for _, tc := range tests {
		t.Run(tc.patient, func(t *testing.T) {
			pat, ok := s[tc.patient]
			if !ok {
				t.Fatalf("%s is not seeded", tc.patient)
			}
			if !hasMRN(pat) {
				t.Errorf("%s has no MRN identifier", tc.patient)
			}
			for _, name := range []string{"birthDate", "gender"} {
				if pat.str(name) == "" {
					t.Errorf("%s has no %s", tc.patient, name)
				}
			}
			if gp, _ := pat.body["generalPractitioner"].([]any); len(gp) == 0 {
				t.Errorf("%s has no generalPractitioner", tc.patient)
			}
			if cov, ok := s[tc.coverage]; !ok || cov.refAt("beneficiary") != tc.patient {
				t.Errorf("%s is missing or not the coverage of %s", tc.coverage, tc.patient)
			}
			if enc, ok := s[tc.encounter]; !ok || enc.refAt("subject") != tc.patient {
				t.Errorf("%s is missing or not an encounter of %s", tc.encounter, tc.patient)
			}
			for _, typ := range []string{"ServiceRequest", "MedicationRequest"} {
				if n := countOrders(s, typ, tc.patient, false); n == 0 {
					t.Errorf("%s has no %s without documentation needs", tc.patient, typ)
				}
			}
		})
	}
}

func hasMRN(r resource) bool {
	ids, _ := r.body["identifier"].([]any)
	for _, v := range ids {
		id, _ := v.(map[string]any)
		typ, _ := id["type"].(map[string]any)
		codings, _ := typ["coding"].([]any)
		for _, c := range codings {
			if c, _ := c.(map[string]any); c["code"] == "MR" && id["value"] != nil {
				return true
			}
		}
	}
	return false
}

func countOrders(s seed, typ, patient string, needsDocs bool) int {
	n := 0
	for _, r := range s {
		if r.typ == typ && r.refAt("subject") == patient && (len(questionnaires(r)) > 0) == needsDocs {
			n++
		}
	}
	return n
}

// questionnaires lists the questionnaire canonicals of an order's
// coverage-information.
func questionnaires(r resource) []string {
	infos, _ := coverageInfos(r)
	var out []string
	for _, info := range infos {
		for _, q := range info["questionnaire"] {
			s, _ := q["valueCanonical"].(string)
			out = append(out, s)
		}
	}
	return out
}

// payerQuestionnaire is what the EHR side needs from a payer seed file.
type payerQuestionnaire struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	URL          string `json:"url"`
	Version      string `json:"version"`
}

func loadPayerQuestionnaires(dir string) ([]payerQuestionnaire, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var qs []payerQuestionnaire
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		var q payerQuestionnaire
		if err := json.Unmarshal(raw, &q); err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		if q.ResourceType == "Questionnaire" {
			qs = append(qs, q)
		}
	}
	return qs, nil
}

// resolveCanonical finds the one payer questionnaire a canonical
// ("url" or "url|version") names.
func resolveCanonical(canonical string, qs []payerQuestionnaire) (payerQuestionnaire, error) {
	url, version, versioned := strings.Cut(canonical, "|")
	var found []payerQuestionnaire
	for _, q := range qs {
		if q.URL == url && (!versioned || q.Version == version) {
			found = append(found, q)
		}
	}
	if len(found) != 1 {
		return payerQuestionnaire{}, fmt.Errorf("canonical %q matches %d payer questionnaires, want exactly 1", canonical, len(found))
	}
	return found[0], nil
}

// TestSeedDocumentationOrders: exactly the contract's three orders need DTR
// documentation, each names the payer questionnaire for its device, and no
// other order names one (so the chart shows the difference).
func TestSeedDocumentationOrders(t *testing.T) {
	s := mustLoadSeed(t)
	payer, err := loadPayerQuestionnaires(payerDataDir)
	if err != nil {
		t.Fatalf("payer questionnaires: %v", err)
	}
	tests := []struct {
		order, patient, hcpcs, questionnaire string
	}{
		{"DeviceRequest/dr-oxygen-1", "Patient/pat-1", "E1390", questionnaireURL + "home-oxygen"},
		{"DeviceRequest/dr-cpap-2", "Patient/pat-2", "E0601", questionnaireURL + "cpap"},
		{"DeviceRequest/dr-wheelchair-3", "Patient/pat-3", "K0823", questionnaireURL + "power-wheelchair"},
	}
	for _, tc := range tests {
		t.Run(tc.order, func(t *testing.T) {
			r, ok := s[tc.order]
			if !ok {
				t.Fatalf("%s is not seeded", tc.order)
			}
			if got := r.refAt("subject"); got != tc.patient {
				t.Errorf("subject %q, want %q", got, tc.patient)
			}
			if got := deviceCode(r); got != tc.hcpcs {
				t.Errorf("HCPCS code %q, want %q", got, tc.hcpcs)
			}
			infos, errs := coverageInfos(r)
			for _, err := range errs {
				t.Error(err)
			}
			if len(infos) != 1 {
				t.Fatalf("%d coverage-information extensions, want 1", len(infos))
			}
			if got := infos[0].code("doc-needed"); got != "clinical" {
				t.Errorf("doc-needed %q, want clinical", got)
			}
			if got := infos[0].code("covered"); got != "conditional" {
				t.Errorf("covered %q, want conditional", got)
			}
			if got := questionnaires(r); !slices.Equal(got, []string{tc.questionnaire}) {
				t.Errorf("questionnaire %v, want [%s]", got, tc.questionnaire)
			}
		})
	}
	documented := map[string]bool{}
	for _, tc := range tests {
		documented[tc.order] = true
	}
	for _, key := range slices.Sorted(maps.Keys(s)) {
		r := s[key]
		canonicals := questionnaires(r)
		if len(canonicals) == 0 {
			continue
		}
		t.Run(r.file+" names a payer questionnaire", func(t *testing.T) {
			if !documented[key] {
				t.Errorf("%s names a questionnaire but is not one of the orders that need documentation", key)
			}
			for _, c := range canonicals {
				if _, err := resolveCanonical(c, payer); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func deviceCode(r resource) string {
	cc, _ := r.body["codeCodeableConcept"].(map[string]any)
	codings, _ := cc["coding"].([]any)
	for _, c := range codings {
		if c, _ := c.(map[string]any); c["system"] == "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets" {
			code, _ := c["code"].(string)
			return code
		}
	}
	return ""
}

// TestSeedChecksRejectBrokenInput shows that each check can fail: every case
// breaks one rule in an otherwise valid pair of resources.
func TestSeedChecksRejectBrokenInput(t *testing.T) {
	const (
		patient  = `{"resourceType": "Patient", "id": "p"}`
		coverage = `{"resourceType": "Coverage", "id": "c", "status": "active",
		  "beneficiary": {"reference": "Patient/p"}, "payor": [{"reference": "Organization/org-payer"}]}`
		payor     = `{"resourceType": "Organization", "id": "org-payer", "name": "Sandbox Health Plan"}`
		encounter = `{"resourceType": "Encounter", "id": "e", "subject": {"reference": "Patient/p"}}`
		prac      = `{"resourceType": "Practitioner", "id": "d"}`
		order     = `{"resourceType": "DeviceRequest", "id": "o",
		  "extension": [{"url": "` + coverageInfoURL + `", "extension": [
		    {"url": "coverage", "valueReference": {"reference": "Coverage/c"}},
		    {"url": "covered", "valueCode": "conditional"},
		    {"url": "doc-needed", "valueCode": "clinical"},
		    {"url": "info-needed", "valueCode": "OTH"},
		    {"url": "reason", "valueCodeableConcept": {"text": "documentation"}},
		    {"url": "questionnaire", "valueCanonical": "` + questionnaireURL + `q"},
		    {"url": "date", "valueDate": "2026-02-16"},
		    {"url": "coverage-assertion-id", "valueString": "a1"}]}],
		  "status": "draft", "intent": "order", "subject": {"reference": "Patient/p"},
		  "encounter": {"reference": "Encounter/e"}, "authoredOn": "2026-02-16",
		  "requester": {"reference": "Practitioner/d"}, "insurance": [{"reference": "Coverage/c"}]}`
	)
	payerQs := []payerQuestionnaire{{ResourceType: "Questionnaire", ID: "q", URL: questionnaireURL + "q", Version: "2026.1"}}
	tests := []struct {
		name    string
		file    string // file name of the order under test
		order   string
		wantErr string // "" means valid
	}{
		{"valid", "DeviceRequest-o.json", order, ""},
		{"file name mismatch", "DeviceRequest-x.json", order, "does not match the file name"},
		{"type the EHR does not serve", "Condition-o.json", strings.Replace(order, `"DeviceRequest"`, `"Condition"`, 1), "not one the EHR serves"},
		{"misspelt element", "DeviceRequest-o.json", strings.Replace(order, `"authoredOn"`, `"authoredon"`, 1), "not an R4 DeviceRequest element"},
		{"dangling reference", "DeviceRequest-o.json", strings.Replace(order, `"Practitioner/d"`, `"Practitioner/zz"`, 1), "has no seed file"},
		{"absolute reference", "DeviceRequest-o.json", strings.Replace(order, `"Practitioner/d"`, `"https://ehr.example/fhir/Practitioner/d"`, 1), "not a relative"},
		{"coverage of another patient", "DeviceRequest-o.json", strings.Replace(order, `"subject": {"reference": "Patient/p"}`, `"subject": {"reference": "Patient/p2"}`, 1), "covers Patient/p"},
		{"extension coverage not the insurance", "DeviceRequest-o.json", strings.Replace(order, `"valueReference": {"reference": "Coverage/c"}`, `"valueReference": {"reference": "Coverage/c2"}`, 1), "not one of the order's insurance"},
		{"conditional without info-needed", "DeviceRequest-o.json", strings.Replace(order, `{"url": "info-needed", "valueCode": "OTH"},`, "", 1), "crd-ci-q3"},
		{"questionnaire without doc-needed", "DeviceRequest-o.json", strings.Replace(order, `{"url": "doc-needed", "valueCode": "clinical"},`, "", 1), "crd-ci-q1"},
		{"misspelt sub-extension", "DeviceRequest-o.json", strings.Replace(order, `"doc-needed"`, `"doc_needed"`, 1), "unknown sub-extension"},
		{"unknown questionnaire", "DeviceRequest-o.json", strings.Replace(order, questionnaireURL+"q", questionnaireURL+"nope", 1), "matches 0"},
		{"wrong questionnaire version", "DeviceRequest-o.json", strings.Replace(order, questionnaireURL+"q", questionnaireURL+"q|2025.9", 1), "matches 0"},
		{"duplicate key", "DeviceRequest-o.json", strings.Replace(order, `"intent": "order"`, `"intent": "order", "Intent": "plan"`, 1), "repeats"},
		{"empty string", "DeviceRequest-o.json", strings.Replace(order, `"authoredOn": "2026-02-16"`, `"authoredOn": ""`, 1), "empty string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var errs []error
			s := seed{}
			files := map[string]string{
				"Patient-p.json": patient, "Coverage-c.json": coverage, "Organization-org-payer.json": payor,
				"Encounter-e.json": encounter, "Practitioner-d.json": prac, tc.file: tc.order,
			}
			for name, js := range files {
				body, err := decodeResource([]byte(js))
				if err != nil {
					errs = append(errs, err)
					continue
				}
				m := fileNameRE.FindStringSubmatch(name)
				r := resource{file: name, typ: m[1], id: m[2], raw: []byte(js), body: body}
				s[r.key()] = r
			}
			m := fileNameRE.FindStringSubmatch(tc.file)
			if r, ok := s[m[1]+"/"+m[2]]; ok {
				for _, c := range resourceChecks {
					errs = append(errs, c.check(r, s)...)
				}
				for _, canonical := range questionnaires(r) {
					if _, err := resolveCanonical(canonical, payerQs); err != nil {
						errs = append(errs, err)
					}
				}
			}
			if tc.wantErr == "" {
				for _, err := range errs {
					t.Errorf("valid input rejected: %v", err)
				}
				return
			}
			if !slices.ContainsFunc(errs, func(err error) bool { return strings.Contains(err.Error(), tc.wantErr) }) {
				t.Errorf("no error mentioning %q; got %v", tc.wantErr, errs)
			}
		})
	}
}
