package questionnaires

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"dtrsandbox/payer/internal/documents/searchparam"
	"dtrsandbox/shared/fhir"
	"dtrsandbox/shared/httpserver"
	"dtrsandbox/shared/smart"

	"github.com/gin-gonic/gin"
)

// Da Vinci CRD coverage-information extension (CRD 2.0
// StructureDefinition-ext-coverage-information), whose "questionnaire"
// sub-extension names the questionnaire an order needs and "billingCode"
// the code coverage was decided for.
const extCoverageInformation = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"

// hcpcsSystems are the code system URIs HCPCS codes travel with.
var hcpcsSystems = map[string]bool{
	"https://bluebutton.cms.gov/resources/codesystem/hcpcs":    true,
	"http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets":  true,
	"https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": true,
	"urn:oid:2.16.840.1.113883.6.285":                          true,
}

// byCode maps an order's HCPCS code to the questionnaire id that documents
// it, for orders without a (resolvable) CRD questionnaire canonical.
var byCode = map[string]string{
	"E1390": "home-oxygen",
	"E0601": "cpap",
	"K0823": "power-wheelchair",
}

// orderTypes are the order resource types the DTR 2.0.1 input profile
// allows; the first three are mapped to questionnaires.
var orderTypes = map[string]bool{
	"DeviceRequest": true, "ServiceRequest": true, "MedicationRequest": true,
	"Appointment": true, "Encounter": true, "NutritionOrder": true,
	"VisionPrescription": true, "CommunicationRequest": true,
}

// packageInput is the decoded $questionnaire-package input (DTR 2.0.1
// StructureDefinition-dtr-qpackage-input-parameters).
type packageInput struct {
	coverages      []fhir.Coverage
	orders         []order
	questionnaires []string
	contexts       []string
	changedSince   *searchparam.Range
}

// order is an order resource with what the mapping needs.
type order struct {
	typ, id   string
	subject   *fhir.Reference
	extension []fhir.Extension
	codes     []*fhir.CodeableConcept
}

// Package handles POST {fhir}/Questionnaire/$questionnaire-package per
// Da Vinci DTR 2.0.1 (OperationDefinition-questionnaire-package): input
// Parameters with coverage (1..*, Coverage), order (0..*), questionnaire
// (0..*, canonical), context (0..*, string; not used by this payer),
// changedsince (0..1, dateTime) and referenced (0..*, ignored), at least
// one of order, questionnaire or context (dtr-1). Output Parameters with
// one PackageBundle (a collection Bundle whose first entry is the
// Questionnaire; these questionnaires need no Library or ValueSet) per
// questionnaire, and an operationOutcome for warnings.
//
// Orders map to questionnaires by the CRD coverage-information
// questionnaire canonical, else by HCPCS code. The coverage's beneficiary
// is not trusted to pick the patient: with an EHR token it must be the
// launch patient (403 otherwise), as must any order's subject.
func (h *Handler) Package(c *gin.Context) {
	r, ok := h.begin(c, "operation", "E", smart.PermRead)
	if !ok {
		return
	}
	r.ev.Query = ""
	in, f := h.readPackageInput(c)
	if f != nil {
		h.refuse(r, *f)
		return
	}
	if r.p.EHR != nil {
		if f := confine(in, r.p.Patient); f != nil {
			h.refuse(r, *f)
			return
		}
	}
	selected, warnings, f := h.selectQuestionnaires(in)
	if f != nil {
		h.refuse(r, *f)
		return
	}
	out := &fhir.Parameters{ResourceType: "Parameters"}
	for _, e := range selected {
		b := &fhir.Bundle{
			ResourceType: "Bundle", ID: newBundleID(), Type: "collection",
			Timestamp: h.now().UTC().Format("2006-01-02T15:04:05Z07:00"),
			Entry:     []fhir.BundleEntry{{FullURL: h.base + "/Questionnaire/" + e.q.ID, Resource: json.RawMessage(e.raw)}},
		}
		raw, err := json.Marshal(b)
		if err != nil {
			h.log.Error("questionnaires: encode bundle", "err", err)
			h.refuse(r, failure{status: 500, code: fhir.IssueException, hint: "the package could not be built", reason: "encode error"})
			return
		}
		out.Parameter = append(out.Parameter, fhir.ParametersParameter{Name: "PackageBundle", Resource: raw})
	}
	if len(warnings) > 0 {
		oo := &fhir.OperationOutcome{ResourceType: "OperationOutcome"}
		for _, w := range warnings {
			oo.Issue = append(oo.Issue, fhir.OperationOutcomeIssue{Severity: w.severity, Code: w.code, Diagnostics: w.text})
		}
		raw, _ := json.Marshal(oo)
		out.Parameter = append(out.Parameter, fhir.ParametersParameter{Name: "operationOutcome", Resource: raw})
	}
	var ids []string
	for _, e := range selected {
		ids = append(ids, e.q.ID)
	}
	r.ev.Query = "questionnaires=" + strings.Join(ids, ",")
	h.succeed(r, http.StatusOK, func() { fhir.WriteJSON(c.Writer, http.StatusOK, out) })
}

func newBundleID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func readAll(c *gin.Context, limit int64) ([]byte, error) {
	if httpserver.DeclaredTooLarge(c) || c.Request.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	return io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
}

func bad(code, hint string) *failure {
	return &failure{status: http.StatusBadRequest, code: code, hint: hint, reason: hint}
}

// readPackageInput reads and validates the input Parameters.
func (h *Handler) readPackageInput(c *gin.Context) (*packageInput, *failure) {
	if ce := strings.TrimSpace(c.GetHeader("Content-Encoding")); ce != "" && !strings.EqualFold(ce, "identity") {
		return nil, &failure{status: http.StatusUnsupportedMediaType, code: fhir.IssueNotSupported,
			hint: "Content-Encoding is not supported; send the body uncompressed", reason: "unsupported content encoding"}
	}
	mt, mparams, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if cs, ok := mparams["charset"]; err == nil && ok && !strings.EqualFold(cs, "utf-8") {
		return nil, &failure{status: http.StatusUnsupportedMediaType, code: fhir.IssueNotSupported,
			hint: "the body must be UTF-8 (charset=utf-8)", reason: "unsupported charset"}
	}
	if err != nil || (mt != fhir.ContentType && mt != "application/json") {
		return nil, &failure{status: http.StatusUnsupportedMediaType, code: fhir.IssueNotSupported,
			hint: "the body must be a Parameters resource as application/fhir+json", reason: "unsupported media type"}
	}
	body, err := readAll(c, h.maxBody)
	if err != nil {
		if httpserver.IsTooLarge(err) {
			return nil, &failure{status: http.StatusRequestEntityTooLarge, code: fhir.IssueTooLong, hint: "the body is larger than the server accepts", reason: "body too large"}
		}
		return nil, bad(fhir.IssueStructure, "the body could not be read")
	}
	var params fhir.Parameters
	if err := fhir.Decode(body, &params); err != nil {
		return nil, bad(fhir.IssueStructure, "the body is not acceptable FHIR JSON: "+err.Error())
	}
	if params.ResourceType != "Parameters" {
		return nil, bad(fhir.IssueInvalid, "the body must be a Parameters resource")
	}
	in := &packageInput{}
	for i, p := range params.Parameter {
		where := fmt.Sprintf("parameter[%d] (%s)", i, clip(p.Name))
		switch p.Name {
		case "coverage":
			var cov fhir.Coverage
			if f := decodeResource(p.Resource, "Coverage", &cov, where); f != nil {
				return nil, f
			}
			if cov.Beneficiary == nil {
				return nil, bad(fhir.IssueRequired, where+": Coverage.beneficiary is required")
			}
			in.coverages = append(in.coverages, cov)
		case "order":
			o, f := decodeOrder(p.Resource, where)
			if f != nil {
				return nil, f
			}
			in.orders = append(in.orders, o)
		case "questionnaire":
			if p.ValueCanonical == "" || len(p.Resource) > 0 {
				return nil, bad(fhir.IssueValue, where+": questionnaire needs a valueCanonical")
			}
			in.questionnaires = append(in.questionnaires, p.ValueCanonical)
		case "context":
			if p.ValueString == "" {
				return nil, bad(fhir.IssueValue, where+": context needs a valueString")
			}
			in.contexts = append(in.contexts, p.ValueString)
		case "changedsince":
			if in.changedSince != nil {
				return nil, bad(fhir.IssueInvalid, "changedsince given more than once")
			}
			rg, err := searchparam.ParseStored(p.ValueDateTime)
			if p.ValueDateTime == "" || err != nil {
				return nil, bad(fhir.IssueValue, where+": changedsince needs a valueDateTime")
			}
			in.changedSince = &rg
		case "referenced":
			if len(p.Resource) == 0 {
				return nil, bad(fhir.IssueValue, where+": referenced needs a resource")
			}
			if _, err := fhir.ResourceType(p.Resource); err != nil {
				return nil, bad(fhir.IssueStructure, where+": "+err.Error())
			}
		default:
			return nil, bad(fhir.IssueNotSupported, where+": unknown input parameter")
		}
	}
	if len(in.coverages) == 0 {
		return nil, bad(fhir.IssueRequired, "a coverage parameter (Coverage) is required")
	}
	if len(in.orders) == 0 && len(in.questionnaires) == 0 && len(in.contexts) == 0 {
		return nil, bad(fhir.IssueRequired, "at least one of order, questionnaire or context is required (dtr-1)")
	}
	return in, nil
}

// decodeResource decodes a parameter's resource strictly as typ.
func decodeResource(raw json.RawMessage, typ string, v any, where string) *failure {
	if len(raw) == 0 {
		return bad(fhir.IssueRequired, where+": needs a resource")
	}
	rt, err := fhir.ResourceType(raw)
	if err != nil {
		return bad(fhir.IssueStructure, where+": "+err.Error())
	}
	if rt != typ {
		return bad(fhir.IssueInvalid, where+": must be a "+typ)
	}
	if err := fhir.Decode(raw, v); err != nil {
		return bad(fhir.IssueStructure, where+": "+err.Error())
	}
	return nil
}

// decodeOrder decodes an order resource of an allowed type.
func decodeOrder(raw json.RawMessage, where string) (order, *failure) {
	if len(raw) == 0 {
		return order{}, bad(fhir.IssueRequired, where+": needs a resource")
	}
	rt, err := fhir.ResourceType(raw)
	if err != nil {
		return order{}, bad(fhir.IssueStructure, where+": "+err.Error())
	}
	if !orderTypes[rt] {
		return order{}, bad(fhir.IssueInvalid, where+": "+rt+" is not an order type")
	}
	o := order{typ: rt}
	switch rt {
	case "DeviceRequest":
		var v fhir.DeviceRequest
		if err := fhir.Decode(raw, &v); err != nil {
			return o, bad(fhir.IssueStructure, where+": "+err.Error())
		}
		o.id, o.subject, o.extension, o.codes = v.ID, v.Subject, v.Extension, []*fhir.CodeableConcept{v.CodeCodeableConcept}
	case "ServiceRequest":
		var v fhir.ServiceRequest
		if err := fhir.Decode(raw, &v); err != nil {
			return o, bad(fhir.IssueStructure, where+": "+err.Error())
		}
		o.id, o.subject, o.extension, o.codes = v.ID, v.Subject, v.Extension, []*fhir.CodeableConcept{v.Code}
	case "MedicationRequest":
		var v fhir.MedicationRequest
		if err := fhir.Decode(raw, &v); err != nil {
			return o, bad(fhir.IssueStructure, where+": "+err.Error())
		}
		o.id, o.subject, o.extension, o.codes = v.ID, v.Subject, v.Extension, []*fhir.CodeableConcept{v.MedicationCodeableConcept}
	default:
		var v struct {
			ID        string           `json:"id"`
			Subject   *fhir.Reference  `json:"subject"`
			Patient   *fhir.Reference  `json:"patient"`
			Extension []fhir.Extension `json:"extension"`
		}
		if err := fhir.Decode(raw, &v); err != nil {
			return o, bad(fhir.IssueStructure, where+": "+err.Error())
		}
		o.id, o.subject, o.extension = v.ID, v.Subject, v.Extension
		if o.subject == nil {
			o.subject = v.Patient
		}
	}
	return o, nil
}

// confine checks that the input is about the launch patient: every
// coverage's beneficiary and every order's subject. References inside
// these EHR resources are relative to the EHR, so "Patient/{id}" counts
// as "{ehr base}/Patient/{id}"; anything else (another patient, another
// base, contained, conditional, identifier-only) is refused.
func confine(in *packageInput, patient string) *failure {
	forbid := func(reason string) *failure {
		return &failure{status: http.StatusForbidden, code: fhir.IssueForbidden,
			hint: reason + "; the request may only be about the patient of the EHR launch", reason: reason}
	}
	for i := range in.coverages {
		if !isPatient(in.coverages[i].Beneficiary, patient) {
			return forbid("coverage beneficiary is not the launch patient")
		}
	}
	for _, o := range in.orders {
		if o.subject != nil && !isPatient(o.subject, patient) {
			return forbid(o.typ + " subject is not the launch patient")
		}
	}
	return nil
}

// isPatient reports whether ref names patient (absolute), directly or
// relative to the EHR base patient lives at.
func isPatient(ref *fhir.Reference, patient string) bool {
	if ref == nil || ref.Identifier != nil || ref.Reference == "" || (ref.Type != "" && ref.Type != "Patient") {
		return false
	}
	if ref.Reference == patient {
		return true
	}
	base, typ, id, ok := fhir.ParseReference(ref.Reference)
	if !ok || base != "" || typ != "Patient" {
		return false
	}
	i := strings.LastIndex(patient, "/Patient/")
	return i > 0 && patient[:i]+"/Patient/"+id == patient
}

type warning struct{ severity, code, text string }

// selectQuestionnaires maps the input to questionnaires, each once, in
// input order.
func (h *Handler) selectQuestionnaires(in *packageInput) ([]*entry, []warning, *failure) {
	var (
		out      []*entry
		seen     = map[*entry]bool{}
		warnings []warning
	)
	add := func(e *entry) {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	for _, canon := range in.questionnaires {
		e := h.catalog.resolve(canon)
		if e == nil {
			return nil, nil, &failure{status: http.StatusBadRequest, code: fhir.IssueNotFound,
				hint: "questionnaire " + clip(canon) + " is not known to this payer", reason: "unknown questionnaire canonical"}
		}
		add(e)
	}
	for _, o := range in.orders {
		name := o.typ
		if o.id != "" {
			name += "/" + o.id
		}
		found := false
		for _, canon := range crdQuestionnaires(o.extension) {
			if e := h.catalog.resolve(canon); e != nil {
				add(e)
				found = true
			} else {
				warnings = append(warnings, warning{fhir.SeverityWarning, fhir.IssueNotFound,
					name + ": coverage-information names questionnaire " + clip(canon) + ", which this payer does not have; matched by code instead"})
			}
		}
		if found {
			continue
		}
		for _, code := range orderCodes(o) {
			if id, ok := byCode[code]; ok {
				add(h.catalog.byID[id])
				found = true
			}
		}
		if !found {
			warnings = append(warnings, warning{fhir.SeverityInformation, fhir.IssueInformational,
				name + ": no documentation is required by this payer for this order"})
		}
	}
	if len(in.contexts) > 0 {
		warnings = append(warnings, warning{fhir.SeverityWarning, fhir.IssueNotSupported,
			"context ids are not used by this payer; send the orders or questionnaire canonicals"})
	}
	if in.changedSince != nil {
		var kept []*entry
		for _, e := range out {
			// Questionnaire.date is when it last changed; without a date
			// it is always returned.
			if e.date == nil || e.date.Hi > in.changedSince.Lo {
				kept = append(kept, e)
			}
		}
		if len(kept) < len(out) {
			warnings = append(warnings, warning{fhir.SeverityInformation, fhir.IssueInformational,
				"questionnaires unchanged since changedsince were left out"})
		}
		return kept, warnings, nil
	}
	if len(out) == 0 {
		return nil, nil, &failure{status: http.StatusBadRequest, code: fhir.IssueNotFound,
			hint: "no questionnaire of this payer applies to the given orders", reason: "no questionnaire applies"}
	}
	return out, warnings, nil
}

// crdQuestionnaires returns the questionnaire canonicals of an order's
// coverage-information extensions.
func crdQuestionnaires(exts []fhir.Extension) []string {
	var out []string
	for _, ext := range exts {
		if ext.URL != extCoverageInformation {
			continue
		}
		for _, sub := range ext.Extension {
			if sub.URL == "questionnaire" && sub.ValueCanonical != "" {
				out = append(out, sub.ValueCanonical)
			}
		}
	}
	return out
}

// orderCodes returns the HCPCS codes of an order: its code and the
// coverage-information billingCode.
func orderCodes(o order) []string {
	var out []string
	addCoding := func(c fhir.Coding) {
		if hcpcsSystems[c.System] && c.Code != "" {
			out = append(out, c.Code)
		}
	}
	for _, cc := range o.codes {
		if cc == nil {
			continue
		}
		for _, c := range cc.Coding {
			addCoding(c)
		}
	}
	for _, ext := range o.extension {
		if ext.URL != extCoverageInformation {
			continue
		}
		for _, sub := range ext.Extension {
			if sub.URL == "billingCode" && sub.ValueCoding != nil {
				addCoding(*sub.ValueCoding)
			}
		}
	}
	return out
}
