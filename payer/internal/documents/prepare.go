package documents

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"dtrsandbox/payer/internal/documents/searchparam"
	"dtrsandbox/shared/fhir"
)

// Resource types this package stores.
const (
	TypeDocumentReference     = "DocumentReference"
	TypeQuestionnaireResponse = "QuestionnaireResponse"
)

// Code systems of the status elements (R4 valueset-document-reference-status,
// valueset-questionnaire-answers-status), used as the token system of the
// status search parameter.
const (
	systemDocumentReferenceStatus = "http://hl7.org/fhir/document-reference-status"
	systemQuestionnaireStatus     = "http://hl7.org/fhir/questionnaire-answers-status"
)

var (
	documentReferenceStatuses = map[string]bool{"current": true, "superseded": true, "entered-in-error": true}
	questionnaireStatuses     = map[string]bool{"in-progress": true, "completed": true, "amended": true, "entered-in-error": true, "stopped": true}
)

// Index limits: a value longer than maxIndexValue, or more than
// maxIndexParams indexed values, is refused rather than cut.
const (
	maxIndexValue  = 1024
	maxIndexParams = 256
)

// Param is one indexed search value of a document: a token (System, Value
// = code) or a reference / canonical (Value, System = canonical version).
type Param struct {
	Name   string
	System string
	Value  string
}

// Index is what the search compiler filters on, besides the patient.
type Index struct {
	Status string
	Title  string // for the console: type text/code or questionnaire canonical
	Date   *searchparam.Range
	Params []Param
}

// prepared is a create or update body that passed every check: the
// client's members (bytes kept), whether subject must be stamped, and the
// index.
type prepared struct {
	members    []member
	stamp      bool // subject absent: the server sets it
	id         string
	index      Index
	resourceTy string
}

// prepare decodes body strictly as resourceType, applies the subject rule
// against patient (the launch patient, absolute), validates the elements
// the payer relies on and extracts the index. Every refusal is a
// *requestError: 403 for anything naming another subject, 400 otherwise.
func prepare(resourceType string, body []byte, patient string) (*prepared, *requestError) {
	if patient == "" {
		return nil, forbidden("no launch patient")
	}
	if !utf8.Valid(body) {
		return nil, badRequest(fhir.IssueStructure, "the body is not valid UTF-8 (RFC 8259 section 8.1)")
	}
	var head struct {
		ResourceType string `json:"resourceType"`
	}
	if err := fhir.Decode(body, &head); err != nil {
		return nil, subjectDecodeError(err, "the body")
	}
	if head.ResourceType != resourceType {
		return nil, badRequest(fhir.IssueInvalid, "the body must be a "+resourceType+" (resourceType)")
	}
	ms, err := splitObject(body)
	if err != nil {
		return nil, badRequest(fhir.IssueStructure, "the body must be a JSON object")
	}
	p := &prepared{members: ms, resourceTy: resourceType}
	hasSubject := find(ms, "subject") >= 0

	var rerr *requestError
	switch resourceType {
	case TypeDocumentReference:
		var doc fhir.DocumentReference
		if err := fhir.Decode(body, &doc); err != nil {
			return nil, subjectDecodeError(err, "the body")
		}
		p.id = doc.ID
		if hasSubject {
			if prob := subjectProblem(doc.Subject, patient); prob != "" {
				return nil, forbidden(prob)
			}
		}
		if rerr := checkContained(doc.Contained, patient); rerr != nil {
			return nil, rerr
		}
		p.index, rerr = indexDocumentReference(&doc, patient)
	case TypeQuestionnaireResponse:
		var qr fhir.QuestionnaireResponse
		if err := fhir.Decode(body, &qr); err != nil {
			return nil, subjectDecodeError(err, "the body")
		}
		p.id = qr.ID
		if prob := responseProblem(&qr, hasSubject, patient); prob != "" {
			return nil, forbidden(prob)
		}
		if rerr := checkContained(qr.Contained, patient); rerr != nil {
			return nil, rerr
		}
		p.index, rerr = indexQuestionnaireResponse(&qr)
	default:
		return nil, badRequest(fhir.IssueNotSupported, "unsupported resource type")
	}
	if rerr != nil {
		return nil, rerr
	}
	p.stamp = !hasSubject
	return p, nil
}

// maxContainedDepth bounds how deep contained resources are followed.
const maxContainedDepth = 8

// checkContained keeps contained resources from carrying another patient:
// a contained Patient is refused (the document's patient is the launch
// patient, at the EHR), and a contained QuestionnaireResponse gets the
// subject rule of an attached one, as do the resources it contains in turn
// (R4 forbids nested contained resources, dom-2, but a lenient reader may
// still follow them).
func checkContained(contained []json.RawMessage, patient string) *requestError {
	return checkContainedAt(contained, patient, 0)
}

func checkContainedAt(contained []json.RawMessage, patient string, depth int) *requestError {
	if len(contained) > 0 && depth >= maxContainedDepth {
		return badRequest(fhir.IssueTooCostly, "contained resources are nested too deeply")
	}
	for _, raw := range contained {
		rt, err := fhir.ResourceType(raw)
		if err != nil {
			return badRequest(fhir.IssueStructure, "a contained resource is not acceptable FHIR JSON")
		}
		switch rt {
		case "Patient":
			return forbidden("a contained Patient resource names a patient")
		case TypeQuestionnaireResponse:
			var qr fhir.QuestionnaireResponse
			if err := fhir.Decode(raw, &qr); err != nil {
				return subjectDecodeError(err, "a contained QuestionnaireResponse")
			}
			ms, err := splitObject(raw)
			if err != nil {
				return badRequest(fhir.IssueStructure, "a contained resource is not a JSON object")
			}
			if prob := responseProblem(&qr, find(ms, "subject") >= 0, patient); prob != "" {
				return forbidden("contained QuestionnaireResponse: " + prob)
			}
			if rerr := checkContainedAt(qr.Contained, patient, depth+1); rerr != nil {
				return rerr
			}
		}
	}
	return nil
}

// render returns the stored JSON: the client's members with the
// server-owned elements set (id, meta.versionId, meta.lastUpdated, and
// subject when absent), other meta members kept.
func (p *prepared) render(id string, version int64, lastUpdated, patient string) ([]byte, error) {
	ms := append([]member(nil), p.members...)
	idJSON, _ := json.Marshal(id)
	ms = setMember(ms, "id", idJSON, "resourceType")
	var metaMembers []member
	if i := find(ms, "meta"); i >= 0 {
		var err error
		if metaMembers, err = splitObject(ms[i].raw); err != nil {
			return nil, err
		}
	}
	vJSON, _ := json.Marshal(strconv.FormatInt(version, 10))
	luJSON, _ := json.Marshal(lastUpdated)
	metaMembers = setMember(metaMembers, "versionId", vJSON, "")
	metaMembers = setMember(metaMembers, "lastUpdated", luJSON, "versionId")
	ms = setMember(ms, "meta", joinObject(metaMembers), "id")
	if p.stamp {
		ms = setMember(ms, "subject", stampedSubject(patient), "$end")
	}
	return joinObject(ms), nil
}

// indexDocumentReference validates a DocumentReference and extracts its
// search values.
func indexDocumentReference(doc *fhir.DocumentReference, patient string) (Index, *requestError) {
	var ix Index
	if !documentReferenceStatuses[doc.Status] {
		return ix, badRequest(fhir.IssueValue, "status must be current, superseded or entered-in-error")
	}
	ix.Status = doc.Status
	if len(doc.Content) == 0 {
		return ix, badRequest(fhir.IssueRequired, "content is required (DocumentReference.content 1..*)")
	}
	for _, ct := range doc.Content {
		if ct.Attachment == nil {
			return ix, badRequest(fhir.IssueRequired, "content.attachment is required")
		}
		if rerr := checkEmbeddedResponse(ct.Attachment, patient); rerr != nil {
			return ix, rerr
		}
	}
	if doc.Context != nil && doc.Context.SourcePatientInfo != nil {
		if prob := subjectProblem(doc.Context.SourcePatientInfo, patient); prob != "" {
			return ix, forbidden("context.sourcePatientInfo: " + strings.TrimPrefix(prob, "subject "))
		}
	}
	for i := range doc.Author {
		if prob := partyProblem("author", &doc.Author[i], patient); prob != "" {
			return ix, forbidden(prob)
		}
	}
	if doc.Context != nil {
		for i := range doc.Context.Related {
			if prob := partyProblem("context.related", &doc.Context.Related[i], patient); prob != "" {
				return ix, forbidden(prob)
			}
		}
	}
	if doc.Date != "" {
		r, err := searchparam.ParseStored(doc.Date)
		if err != nil {
			return ix, badRequest(fhir.IssueValue, "date is not a FHIR instant")
		}
		ix.Date = &r
	}
	b := indexBuilder{}
	b.token("status", systemDocumentReferenceStatus, doc.Status)
	if doc.Type != nil {
		for _, c := range doc.Type.Coding {
			b.token("type", c.System, c.Code)
		}
		ix.Title = doc.Type.Label()
	}
	for i := range doc.Category {
		for _, c := range doc.Category[i].Coding {
			b.token("category", c.System, c.Code)
		}
	}
	if doc.Context != nil {
		for _, r := range doc.Context.Related {
			b.ref("related", r.Reference)
		}
	}
	ix.Params = b.params
	return ix, b.err
}

// indexQuestionnaireResponse validates a QuestionnaireResponse and extracts
// its search values.
func indexQuestionnaireResponse(qr *fhir.QuestionnaireResponse) (Index, *requestError) {
	var ix Index
	if !questionnaireStatuses[qr.Status] {
		return ix, badRequest(fhir.IssueValue, "status must be in-progress, completed, amended, entered-in-error or stopped")
	}
	ix.Status = qr.Status
	if qr.Authored != "" {
		r, err := searchparam.ParseStored(qr.Authored)
		if err != nil {
			return ix, badRequest(fhir.IssueValue, "authored is not a FHIR dateTime")
		}
		ix.Date = &r
	}
	b := indexBuilder{}
	b.token("status", systemQuestionnaireStatus, qr.Status)
	if qr.Questionnaire != "" {
		url, version, _ := strings.Cut(qr.Questionnaire, "|")
		b.add(Param{Name: "questionnaire", System: version, Value: url})
		ix.Title = qr.Questionnaire
	}
	for _, r := range qr.BasedOn {
		b.ref("based-on", r.Reference)
	}
	ix.Params = b.params
	return ix, b.err
}

// indexBuilder collects distinct index values and the first limit broken.
type indexBuilder struct {
	params []Param
	seen   map[Param]bool
	err    *requestError
}

func (b *indexBuilder) add(p Param) {
	if b.err != nil || p.Value == "" {
		return
	}
	if len(p.Value) > maxIndexValue || len(p.System) > maxIndexValue {
		b.err = badRequest(fhir.IssueTooLong, p.Name+" value longer than "+strconv.Itoa(maxIndexValue)+" characters")
		return
	}
	if strings.IndexByte(p.Value, 0) >= 0 || strings.IndexByte(p.System, 0) >= 0 {
		// A FHIR code, uri or reference never holds a NUL (R4
		// datatypes.html: strings "SHALL NOT contain" control characters
		// other than tab, CR and LF; codes and uris have no whitespace at all).
		b.err = badRequest(fhir.IssueValue, p.Name+" value contains a NUL character")
		return
	}
	if b.seen == nil {
		b.seen = map[Param]bool{}
	}
	if b.seen[p] {
		return
	}
	if len(b.params) == maxIndexParams {
		b.err = badRequest(fhir.IssueTooCostly, "too many codes and references to index")
		return
	}
	b.seen[p] = true
	b.params = append(b.params, p)
}

func (b *indexBuilder) token(name, system, code string) {
	b.add(Param{Name: name, System: system, Value: code})
}

func (b *indexBuilder) ref(name, reference string) {
	b.add(Param{Name: name, Value: reference})
}
