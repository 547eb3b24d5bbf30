package documents

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strings"

	"dtrsandbox/shared/fhir"
)

// requestError is a request refused for the caller's fault: Status and an
// OperationOutcome issue Code, Hint for the caller, Reason for the audit
// trail.
type requestError struct {
	Status int
	Code   string
	Hint   string
	Reason string
}

func (e *requestError) Error() string { return e.Reason }

func badRequest(code, hint string) *requestError {
	return &requestError{Status: http.StatusBadRequest, Code: code, Hint: hint, Reason: hint}
}

func forbidden(reason string) *requestError {
	return &requestError{
		Status: http.StatusForbidden, Code: fhir.IssueForbidden, Reason: reason,
		Hint: reason + "; a document may only be about the patient of the EHR launch: omit subject or set it to that patient's absolute reference",
	}
}

// subjectProblem says why a subject reference does not name exactly the
// launch patient, or "" when it does. Patient confinement (CONTRACT.md
// "Patient binding"): only {"reference": "<absolute launch patient>"}
// (optionally with type "Patient" and a display) is accepted; anything else
// that could be read as naming a patient is refused, because another
// reader could resolve it differently:
//   - a relative reference resolves against the payer, not the EHR, even
//     with the same id;
//   - contained ("#x"), conditional ("Patient?..."), URN and identifier
//     references name a patient the payer cannot check.
func subjectProblem(ref *fhir.Reference, patient string) string {
	switch {
	case ref == nil:
		return "subject is null"
	case ref.Identifier != nil:
		return "subject carries an identifier (logical reference)"
	case ref.Reference == "":
		return "subject has no literal reference"
	case ref.Type != "" && ref.Type != "Patient":
		return "subject type is not Patient"
	case ref.Reference == patient:
		return ""
	case strings.HasPrefix(ref.Reference, "#"):
		return "subject is a contained reference"
	case strings.HasPrefix(ref.Reference, "urn:"):
		return "subject is a URN reference"
	case strings.Contains(ref.Reference, "?"):
		return "subject is a conditional reference"
	}
	base, _, _, ok := fhir.ParseReference(ref.Reference)
	switch {
	case !ok:
		return "subject is not a valid literal reference to the launch patient"
	case base == "":
		return "subject is a relative reference (it would name a patient at the payer, not at the EHR)"
	}
	return "subject names another patient"
}

// namesPatient reports whether ref points at a Patient: by its type, by
// the resource type of its literal reference (relative, absolute or
// versioned), or as a conditional reference on Patient.
func namesPatient(ref *fhir.Reference) bool {
	if ref == nil {
		return false
	}
	if ref.Type == "Patient" {
		return true
	}
	if _, typ, _, ok := fhir.ParseReference(ref.Reference); ok {
		return typ == "Patient"
	}
	return strings.HasPrefix(ref.Reference, "Patient?") || strings.Contains(ref.Reference, "/Patient?")
}

// partyProblem applies the subject rule to another element that may name a
// patient (QuestionnaireResponse.source and .author, DocumentReference.author
// and .context.related): a reference to a Patient must be exactly the launch
// patient, written as subject must be, or a document about the launch
// patient could carry another patient's reference for a later reader to
// follow. References to practitioners, orders and the like are the
// client's. It says why element's reference is refused, or "".
func partyProblem(element string, ref *fhir.Reference, patient string) string {
	if !namesPatient(ref) {
		return ""
	}
	if p := subjectProblem(ref, patient); p != "" {
		return element + strings.TrimPrefix(p, "subject")
	}
	return ""
}

// responseProblem applies the subject rule to a QuestionnaireResponse,
// whether sent, attached or contained: its subject when the JSON has one
// (hasSubject; an absent subject is allowed), then its source and author
// (partyProblem). It says why the response is refused, or "".
func responseProblem(qr *fhir.QuestionnaireResponse, hasSubject bool, patient string) string {
	if hasSubject {
		if p := subjectProblem(qr.Subject, patient); p != "" {
			return p
		}
	}
	if p := partyProblem("source", qr.Source, patient); p != "" {
		return p
	}
	return partyProblem("author", qr.Author, patient)
}

// subjectDecodeError maps a strict-decoding error that concerns the
// subject (a case-variant or duplicate "subject" key, or a malformed value
// under it) to 403: such a body tries to name a subject in a way some
// reader would accept. Other decoding errors are 400.
func subjectDecodeError(err error, what string) *requestError {
	var de *fhir.DecodeError
	if errors.As(err, &de) {
		if (de.Path == "$" && strings.EqualFold(de.Key, "subject")) || de.Path == "$.subject" || strings.HasPrefix(de.Path, "$.subject.") || strings.HasPrefix(de.Path, "$.subject[") {
			return forbidden(what + " subject is spelled or structured ambiguously (" + de.Reason + ")")
		}
		return badRequest(fhir.IssueStructure, what+" is not acceptable FHIR JSON: "+de.Error())
	}
	return badRequest(fhir.IssueStructure, what+" is not acceptable FHIR JSON")
}

// checkEmbeddedResponse applies the subject rule to the QuestionnaireResponse
// a DocumentReference attachment carries: it may omit subject, it must not
// name anyone but the launch patient. It is not rewritten (the attachment
// is the client's bytes, and may be signed or hashed).
func checkEmbeddedResponse(att *fhir.Attachment, patient string) *requestError {
	if att == nil {
		return nil
	}
	if att.Data != "" && att.ContentType == "" {
		return badRequest(fhir.IssueInvariant, "content.attachment with data needs a contentType (att-1)")
	}
	if att.ContentType == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(att.ContentType)
	if err != nil {
		return badRequest(fhir.IssueValue, "content.attachment.contentType is not a media type")
	}
	fhirJSON := mt == "application/fhir+json" || mt == "application/json+fhir"
	if !fhirJSON && mt != "application/json" {
		return nil // not JSON: stored as is
	}
	if att.Data == "" {
		return nil // by url only
	}
	data, err := base64.StdEncoding.DecodeString(att.Data)
	if err != nil {
		return badRequest(fhir.IssueValue, "content.attachment.data is not base64")
	}
	if !fhirJSON {
		// Plain JSON is stored as is, unless a FHIR reader would take it
		// for a resource: then it is held to the same rule.
		if err := fhir.CheckKeys(data); err != nil {
			return badRequest(fhir.IssueStructure, "content.attachment.data is not valid JSON without duplicate or case-variant keys")
		}
		ms, err := splitObject(data)
		if err != nil {
			return nil
		}
		isResource := false
		for _, m := range ms {
			if strings.EqualFold(m.key, "resourceType") {
				isResource = true
			}
		}
		if !isResource {
			return nil
		}
	}
	var qr fhir.QuestionnaireResponse
	if err := fhir.Decode(data, &qr); err != nil {
		return subjectDecodeError(err, "the QuestionnaireResponse in content.attachment")
	}
	if qr.ResourceType != "QuestionnaireResponse" {
		return badRequest(fhir.IssueInvalid, "a FHIR JSON attachment must hold a QuestionnaireResponse")
	}
	ms, err := splitObject(data)
	if err != nil {
		return badRequest(fhir.IssueStructure, "the attached QuestionnaireResponse is not a JSON object")
	}
	if p := responseProblem(&qr, find(ms, "subject") >= 0, patient); p != "" {
		return forbidden("attached QuestionnaireResponse: " + p)
	}
	if rerr := checkContained(qr.Contained, patient); rerr != nil {
		rerr.Reason = "attached QuestionnaireResponse: " + rerr.Reason
		return rerr
	}
	return nil
}

// stampedSubject is the JSON of the subject a create without one gets.
func stampedSubject(patient string) json.RawMessage {
	b, _ := json.Marshal(fhir.Reference{Reference: patient})
	return b
}
