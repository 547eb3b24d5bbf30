// Package dtr is the app's form flow (Da Vinci DTR 2.0.1 "DTR App"): it
// resolves the launch context (patient, order, coverage) from the EHR,
// fetches the questionnaire package from the payer, saves drafts and the
// final answers as DocumentReferences at the payer, resumes a draft on
// relaunch, and writes the completed QuestionnaireResponse back to the EHR.
package dtr

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"dtrsandbox/shared/fhir"
	"dtrsandbox/shared/smart"
	"dtrsandbox/smartapp/internal/ehr"
	"dtrsandbox/smartapp/internal/payer"
	"dtrsandbox/smartapp/internal/session"
)

// OrderTypes are the request resources DTR documents (DTR 2.0.1 "order"
// input of $questionnaire-package) that this app can show.
var OrderTypes = []string{"DeviceRequest", "ServiceRequest", "MedicationRequest"}

// CRD coverage-information extension (Da Vinci CRD 2.0.1), whose
// "questionnaire" part names the questionnaire the payer wants for an order.
const (
	extCoverageInformation = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
)

// Service runs the form flow. Payer and EHR are required.
type Service struct {
	Payer *payer.Client
	EHR   *ehr.Client
	Now   func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Problem is a form-flow failure that is not the payer's or the EHR's
// fault: a bad request from the page or a launch without the needed context.
type Problem struct {
	Status  int
	Message string
	Cause   error
}

func (p *Problem) Error() string {
	if p.Cause != nil {
		return "dtr: " + p.Message + ": " + p.Cause.Error()
	}
	return "dtr: " + p.Message
}

func (p *Problem) Unwrap() error { return p.Cause }

// PatientView is the patient banner.
type PatientView struct {
	ID        string `json:"id"`
	Reference string `json:"reference"`
	Name      string `json:"name"`
	BirthDate string `json:"birthDate,omitempty"`
	Gender    string `json:"gender,omitempty"`
}

// OrderView summarises an order.
type OrderView struct {
	Reference         string   `json:"reference"`         // relative at the EHR
	AbsoluteReference string   `json:"absoluteReference"` // {iss}/Type/id
	Type              string   `json:"resourceType"`
	Summary           string   `json:"summary"`
	Codes             []string `json:"codes,omitempty"` // "code display"
	Status            string   `json:"status,omitempty"`
	AuthoredOn        string   `json:"authoredOn,omitempty"`
	Requester         string   `json:"requester,omitempty"`
	Reasons           []string `json:"reasons,omitempty"`
	Notes             []string `json:"notes,omitempty"`
	Questionnaire     string   `json:"questionnaire,omitempty"` // canonical named by CRD
}

// CoverageView summarises the coverage.
type CoverageView struct {
	Reference string `json:"reference"`
	Payor     string `json:"payor,omitempty"`
	MemberID  string `json:"memberId,omitempty"`
	Plan      string `json:"plan,omitempty"`
	Period    string `json:"period,omitempty"`
}

// UserView is the signed-in user.
type UserView struct {
	Reference string `json:"reference,omitempty"`
	Name      string `json:"name,omitempty"`
}

// ContextView is GET /api/context.
type ContextView struct {
	Issuer            string        `json:"issuer"`
	Patient           PatientView   `json:"patient"`
	User              UserView      `json:"user"`
	Order             *OrderView    `json:"order"`
	Coverage          *CoverageView `json:"coverage"`
	NeedPatientBanner bool          `json:"need_patient_banner"`
	Standalone        bool          `json:"standalone"`
	ExpiresAt         time.Time     `json:"expires_at"`
}

// Context resolves (once per session) and describes the launch context.
// An EHR launch names the order and coverage in fhirContext; a standalone
// launch has only a patient until the user picks an order (SelectOrder).
func (s *Service) Context(ctx context.Context, sess *session.Session) (*ContextView, error) {
	l := sess.Launch()
	if l == nil {
		return nil, &Problem{Status: http.StatusUnauthorized, Message: "Not signed in: launch the app from the EHR."}
	}
	if err := s.resolve(ctx, sess); err != nil {
		return nil, err
	}
	w := sess.Workspace()
	v := &ContextView{
		Issuer:            l.Issuer,
		User:              UserView{Reference: l.FHIRUser, Name: l.UserName},
		NeedPatientBanner: l.NeedPatientBanner,
		Standalone:        l.Standalone,
		ExpiresAt:         l.ExpiresAt,
	}
	if v.User.Name == "" {
		v.User.Name = w.UserName
	}
	v.Patient = patientView(w.Patient, l.Patient)
	if w.Order != nil {
		o := orderView(l.Issuer, w.Order)
		v.Order = &o
	}
	if w.Coverage != nil {
		c := coverageView(w.CoverageRef, w.Coverage)
		v.Coverage = &c
	}
	return v, nil
}

// resolve reads the patient, the order and the coverage from the EHR once.
func (s *Service) resolve(ctx context.Context, sess *session.Session) error {
	l := sess.Launch()
	w := sess.Workspace()
	if w.Patient == nil {
		p, err := s.EHR.Read(ctx, sess, "read the patient", "Patient/"+l.Patient)
		if err != nil {
			return err
		}
		sess.UpdateWorkspace(func(w *session.Workspace) { w.Patient = p })
	}
	if !w.UserLooked && l.UserName == "" {
		name := s.userName(ctx, sess)
		sess.UpdateWorkspace(func(w *session.Workspace) { w.UserName, w.UserLooked = name, true })
	}
	if w.OrderRef == "" {
		orderRef, coverageRef := fromContext(l.FHIRContext)
		if orderRef == "" {
			return nil // standalone without an order yet: the page offers a choice
		}
		if err := s.useOrder(ctx, sess, orderRef, coverageRef); err != nil {
			return err
		}
	}
	return nil
}

// userTypes are the resource types a fhirUser names that carry a name
// (SMART App Launch 2.2 "Scopes for requesting identity data").
var userTypes = []string{"Practitioner", "Patient", "RelatedPerson", "Person"}

// userName is the display name of the signed-in user, read from the EHR
// (the fhirUser resource) when the id_token carries no name; "" when the
// user is not a resource of this EHR or cannot be read. Best effort: the
// page then shows the fhirUser reference.
func (s *Service) userName(ctx context.Context, sess *session.Session) string {
	l := sess.Launch()
	typ, id, ok := relativeRef(relative(l.Issuer, l.FHIRUser))
	if !ok || !slices.Contains(userTypes, typ) {
		return ""
	}
	raw, err := s.EHR.Read(ctx, sess, "read the signed-in user", typ+"/"+id)
	if err != nil {
		return ""
	}
	var u struct {
		Name []fhir.HumanName `json:"name"`
	}
	if json.Unmarshal(raw, &u) != nil {
		return ""
	}
	return fhir.DisplayName(u.Name, true)
}

// fromContext picks the order and the coverage out of fhirContext.
func fromContext(items []smart.ContextItem) (order, coverage string) {
	for _, it := range items {
		typ, id, ok := relativeRef(it.Reference)
		if !ok {
			continue
		}
		switch {
		case typ == "Coverage" && coverage == "":
			coverage = typ + "/" + id
		case slices.Contains(OrderTypes, typ) && order == "":
			order = typ + "/" + id
		}
	}
	return order, coverage
}

// useOrder reads orderRef and its coverage and makes them the session's.
func (s *Service) useOrder(ctx context.Context, sess *session.Session, orderRef, coverageRef string) error {
	l := sess.Launch()
	order, err := s.EHR.Read(ctx, sess, "read the order", orderRef)
	if err != nil {
		return err
	}
	var of orderFields
	if err := json.Unmarshal(order, &of); err != nil {
		return &Problem{Status: http.StatusBadGateway, Message: "The EHR's order could not be read.", Cause: err}
	}
	if of.Subject == nil || !samePatient(l.Issuer, of.Subject.Reference, l.Patient) {
		return &Problem{Status: http.StatusForbidden, Message: "The order is not for the patient in context."}
	}
	if coverageRef == "" {
		for _, ins := range of.Insurance {
			if typ, id, ok := relativeRef(ins.Reference); ok && typ == "Coverage" {
				coverageRef = typ + "/" + id
				break
			}
		}
	}
	if coverageRef == "" {
		return &Problem{Status: http.StatusUnprocessableEntity, Message: "Neither the launch context nor the order names the patient's coverage."}
	}
	coverage, err := s.EHR.Read(ctx, sess, "read the coverage", coverageRef)
	if err != nil {
		return err
	}
	sess.UpdateWorkspace(func(w *session.Workspace) {
		w.OrderRef, w.CoverageRef = orderRef, coverageRef
		w.Order, w.Coverage = order, coverage
		w.Questionnaire, w.Draft, w.Submitted = nil, nil, nil
	})
	return nil
}

// Orders lists the patient's orders that DTR can document (standalone
// launch: the user picks one).
func (s *Service) Orders(ctx context.Context, sess *session.Session) ([]OrderView, error) {
	l := sess.Launch()
	if l == nil {
		return nil, &Problem{Status: http.StatusUnauthorized, Message: "Not signed in: launch the app from the EHR."}
	}
	var out []OrderView
	for _, typ := range OrderTypes {
		found, err := s.EHR.Search(ctx, sess, "list the patient's orders", typ, url.Values{"patient": {l.Patient}})
		if err != nil {
			var ee *ehr.Error
			if errors.As(err, &ee) && (ee.Status == http.StatusForbidden || ee.Status == http.StatusNotFound) {
				continue // a type the EHR does not let us search
			}
			return nil, err
		}
		for _, raw := range found {
			o := orderView(l.Issuer, raw)
			if o.Status == "active" || o.Status == "draft" || o.Status == "on-hold" || o.Status == "" {
				out = append(out, o)
			}
		}
	}
	return out, nil
}

// SelectOrder makes ref the order to document. Only a standalone launch
// whose fhirContext names no order may choose; an EHR launch is bound to
// the order it was launched for.
func (s *Service) SelectOrder(ctx context.Context, sess *session.Session, ref string) error {
	l := sess.Launch()
	if l == nil {
		return &Problem{Status: http.StatusUnauthorized, Message: "Not signed in: launch the app from the EHR."}
	}
	if o, _ := fromContext(l.FHIRContext); o != "" {
		return &Problem{Status: http.StatusConflict, Message: "This launch is bound to the order it was launched for."}
	}
	typ, id, ok := relativeRef(ref)
	if !ok || !slices.Contains(OrderTypes, typ) {
		return &Problem{Status: http.StatusBadRequest, Message: "The order must be a DeviceRequest, ServiceRequest or MedicationRequest reference of the form Type/id."}
	}
	return s.useOrder(ctx, sess, typ+"/"+id, "")
}

// relativeRef reads ref as a relative reference to a resource of the EHR,
// Type/id (a version is dropped); ok is false for anything else, an
// absolute URL included.
func relativeRef(ref string) (typ, id string, ok bool) {
	base, typ, id, ok := fhir.ParseReference(ref)
	if !ok || base != "" {
		return "", "", false
	}
	return typ, id, true
}

// samePatient reports whether ref names the patient id, relative or
// absolute on the EHR's base.
func samePatient(iss, ref, id string) bool {
	return ref == "Patient/"+id || ref == strings.TrimRight(iss, "/")+"/Patient/"+id
}
