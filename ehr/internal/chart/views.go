package chart

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"dtrsandbox/ehr/internal/records"
	"dtrsandbox/shared/fhir"
)

// coverageInformationURL is the Da Vinci CRD coverage-information extension
// (CRD STU 2.1, StructureDefinition-ext-coverage-information) that a CRD
// service returns on an order; doc-needed says documentation is required,
// questionnaire names the DTR questionnaire.
const coverageInformationURL = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"

// orderTypes are the request types the chart lists as orders.
var orderTypes = []string{"DeviceRequest", "ServiceRequest", "MedicationRequest"}

// personView is a patient as pages show them.
type personView struct {
	ID, Name, Gender, BirthDate, Age, MRN, Phone, Address string
}

type coverageView struct {
	ID, Payer, Plan, Group, MemberID, Period, Status, Type string
}

type encounterView struct {
	ID, Date, Type, Reason, Status, Class, Practitioner string
}

// orderView is one order row; DocNeeded drives the badge and the Launch
// DTR button.
type orderView struct {
	Ref, Kind, Description, Code, Authored, Requester, Status string
	DocNeeded                                                 bool
	DocNeededCode, Questionnaire, CoverageRef, EncounterID    string
	Covered, PANeeded, Reason                                 string
	DocReceived                                               bool
}

type responseView struct {
	ID, Questionnaire, QuestionnaireName, Status, Authored, Updated, Order string
	Answered                                                               int
}

// answerItem is one QuestionnaireResponse item for the response page.
type answerItem struct {
	LinkID, Text string
	Answers      []string
	Items        []answerItem
}

// query runs a search of typ with the given parameters.
func (h *Handler) query(ctx context.Context, typ string, params url.Values) ([]records.Record, error) {
	if params == nil {
		params = url.Values{}
	}
	params.Set("_count", strconv.Itoa(records.MaxCount))
	q, err := records.ParseQuery(typ, params, h.fhirBase)
	if err != nil {
		return nil, err
	}
	page, err := h.records.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	return page.Records, nil
}

func newPatientView(rec *records.Record, now time.Time) (personView, error) {
	var p fhir.Patient
	if err := fhir.Decode(rec.Body, &p); err != nil {
		return personView{}, err
	}
	v := personView{
		ID: rec.ID, Name: fhir.DisplayName(p.Name, false), Gender: titleCase(p.Gender),
		BirthDate: p.BirthDate, Age: age(p.BirthDate, now), MRN: records.MRN(p.Identifier),
	}
	for _, tp := range p.Telecom {
		if tp.System == "phone" && tp.Value != "" {
			v.Phone = tp.Value
			break
		}
	}
	if len(p.Address) > 0 {
		a := p.Address[0]
		parts := append([]string{}, a.Line...)
		cityState := strings.TrimSpace(strings.Join(nonEmpty(a.City, a.State), ", ") + " " + a.PostalCode)
		if cityState != "" {
			parts = append(parts, cityState)
		}
		v.Address = strings.Join(parts, ", ")
	}
	if v.Name == "" {
		v.Name = "Patient " + rec.ID
	}
	return v, nil
}

func newCoverageView(rec *records.Record) (coverageView, error) {
	var cv fhir.Coverage
	if err := fhir.Decode(rec.Body, &cv); err != nil {
		return coverageView{}, err
	}
	v := coverageView{ID: rec.ID, Status: titleCase(cv.Status), MemberID: cv.SubscriberID, Type: cv.Type.Label()}
	if len(cv.Payor) > 0 {
		v.Payer = referenceText(&cv.Payor[0])
	}
	for _, cl := range cv.Class {
		name := cl.Name
		if name == "" {
			name = cl.Value
		}
		switch {
		case hasCode(cl.Type, "plan"):
			v.Plan = name
		case hasCode(cl.Type, "group"):
			v.Group = name
		}
	}
	if v.MemberID == "" {
		v.MemberID = records.IdentifierValue(cv.Identifier, "", "MB")
	}
	v.Period = period(cv.Period)
	return v, nil
}

// coverageLine is the patient list's one-line coverage summary.
func (c coverageView) coverageLine() string {
	parts := nonEmpty(c.Payer, c.Plan)
	s := strings.Join(parts, " · ")
	if c.MemberID != "" {
		s += " (member " + c.MemberID + ")"
	}
	return s
}

func newEncounterView(rec *records.Record) (encounterView, error) {
	var e fhir.Encounter
	if err := fhir.Decode(rec.Body, &e); err != nil {
		return encounterView{}, err
	}
	v := encounterView{ID: rec.ID, Status: titleCase(e.Status)}
	if e.Period != nil {
		v.Date = displayDate(e.Period.Start)
	}
	if len(e.Type) > 0 {
		v.Type = e.Type[0].Label()
	}
	if e.Class != nil {
		v.Class = e.Class.Display
		if v.Class == "" {
			v.Class = e.Class.Code
		}
	}
	var reasons []string
	for i := range e.ReasonCode {
		reasons = append(reasons, e.ReasonCode[i].Label())
	}
	v.Reason = strings.Join(reasons, "; ")
	for _, p := range e.Participant {
		if p.Individual != nil {
			v.Practitioner = referenceText(p.Individual)
			break
		}
	}
	return v, nil
}

// orderElements are the elements the chart reads from the three order
// types (their names coincide where they matter).
type orderElements struct {
	ResourceType              string                `json:"resourceType"`
	Extension                 []fhir.Extension      `json:"extension"`
	Status                    string                `json:"status"`
	Code                      *fhir.CodeableConcept `json:"code"`
	CodeCodeableConcept       *fhir.CodeableConcept `json:"codeCodeableConcept"`
	MedicationCodeableConcept *fhir.CodeableConcept `json:"medicationCodeableConcept"`
	Encounter                 *fhir.Reference       `json:"encounter"`
	AuthoredOn                string                `json:"authoredOn"`
	Requester                 *fhir.Reference       `json:"requester"`
	Insurance                 []fhir.Reference      `json:"insurance"`
}

func newOrderView(rec *records.Record) (orderView, error) {
	var o orderElements
	if err := fhir.Decode(rec.Body, &o); err != nil {
		return orderView{}, err
	}
	concept := o.CodeCodeableConcept
	kind := "Device"
	switch rec.Type {
	case "ServiceRequest":
		concept, kind = o.Code, "Service"
	case "MedicationRequest":
		concept, kind = o.MedicationCodeableConcept, "Medication"
	}
	v := orderView{
		Ref: rec.Type + "/" + rec.ID, Kind: kind, Description: concept.Label(),
		Authored: displayDate(o.AuthoredOn), Requester: referenceText(o.Requester), Status: titleCase(o.Status),
	}
	if concept != nil {
		for _, c := range concept.Coding {
			if c.Code != "" {
				v.Code = c.Code
				break
			}
		}
	}
	if _, t, id, ok := fhir.ParseReference(refString(o.Encounter)); ok && t == "Encounter" {
		v.EncounterID = id
	}
	if len(o.Insurance) > 0 {
		v.CoverageRef = o.Insurance[0].Reference
	}
	for _, ext := range o.Extension {
		if ext.URL != coverageInformationURL {
			continue
		}
		for _, sub := range ext.Extension {
			switch sub.URL {
			case "doc-needed":
				v.DocNeeded, v.DocNeededCode = sub.ValueCode != "", sub.ValueCode
			case "questionnaire":
				v.Questionnaire = sub.ValueCanonical
			case "coverage":
				if ref := refString(sub.ValueReference); ref != "" {
					v.CoverageRef = ref
				}
			case "covered":
				v.Covered = sub.ValueCode
			case "pa-needed":
				v.PANeeded = sub.ValueCode
			case "reason":
				v.Reason = sub.ValueCodeableConcept.Label()
			}
		}
	}
	return v, nil
}

func newResponseView(rec *records.Record) (responseView, []answerItem, error) {
	var qr fhir.QuestionnaireResponse
	if err := fhir.Decode(rec.Body, &qr); err != nil {
		return responseView{}, nil, err
	}
	v := responseView{
		ID: rec.ID, Questionnaire: qr.Questionnaire, QuestionnaireName: questionnaireName(qr.Questionnaire),
		Status: titleCase(qr.Status), Authored: displayDateTime(qr.Authored), Updated: displayDateTime(records.FormatInstant(rec.LastUpdated)),
	}
	items := answerItems(qr.Item)
	v.Answered = countAnswers(items)
	return v, items, nil
}

func answerItems(items []fhir.QuestionnaireResponseItem) []answerItem {
	out := make([]answerItem, 0, len(items))
	for _, it := range items {
		a := answerItem{LinkID: it.LinkID, Text: it.Text, Items: answerItems(it.Item)}
		if a.Text == "" {
			a.Text = it.LinkID
		}
		for _, ans := range it.Answer {
			a.Answers = append(a.Answers, answerText(ans))
			a.Items = append(a.Items, answerItems(ans.Item)...)
		}
		out = append(out, a)
	}
	return out
}

func countAnswers(items []answerItem) int {
	n := 0
	for _, it := range items {
		n += len(it.Answers) + countAnswers(it.Items)
	}
	return n
}

// answerText renders one answer value[x] (R4 QuestionnaireResponse.item.answer.value[x]).
func answerText(a fhir.QuestionnaireResponseItemAnswer) string {
	switch {
	case a.ValueBoolean != nil:
		if *a.ValueBoolean {
			return "Yes"
		}
		return "No"
	case a.ValueDecimal != nil:
		return string(*a.ValueDecimal)
	case a.ValueInteger != nil:
		return strconv.Itoa(*a.ValueInteger)
	case a.ValueDate != "":
		return a.ValueDate
	case a.ValueDateTime != "":
		return displayDateTime(a.ValueDateTime)
	case a.ValueTime != "":
		return a.ValueTime
	case a.ValueString != "":
		return a.ValueString
	case a.ValueURI != "":
		return a.ValueURI
	case a.ValueCoding != nil:
		if a.ValueCoding.Display != "" {
			return a.ValueCoding.Display
		}
		return a.ValueCoding.Code
	case a.ValueQuantity != nil:
		q := a.ValueQuantity
		s := ""
		if q.Value != nil {
			s = string(*q.Value)
		}
		if q.Unit != "" {
			s += " " + q.Unit
		} else if q.Code != "" {
			s += " " + q.Code
		}
		return strings.TrimSpace(s)
	case a.ValueReference != nil:
		return referenceText(a.ValueReference)
	case a.ValueAttachment != nil:
		if a.ValueAttachment.Title != "" {
			return a.ValueAttachment.Title
		}
		return "(attachment)"
	}
	return "(no value)"
}

// questionnaireName is the last path segment of a canonical, without
// version: ".../Questionnaire/home-oxygen|2026.1" -> "home-oxygen".
func questionnaireName(canonical string) string {
	u, _, _ := strings.Cut(canonical, "|")
	if i := strings.LastIndex(u, "/"); i >= 0 {
		return u[i+1:]
	}
	return u
}

// sameQuestionnaire compares canonicals without their versions.
func sameQuestionnaire(a, b string) bool {
	ua, _, _ := strings.Cut(a, "|")
	ub, _, _ := strings.Cut(b, "|")
	return ua != "" && ua == ub
}

func referenceText(r *fhir.Reference) string {
	if r == nil {
		return ""
	}
	if r.Display != "" {
		return r.Display
	}
	return r.Reference
}

func refString(r *fhir.Reference) string {
	if r == nil {
		return ""
	}
	return r.Reference
}

func hasCode(cc *fhir.CodeableConcept, code string) bool {
	if cc == nil {
		return false
	}
	for _, c := range cc.Coding {
		if c.Code == code {
			return true
		}
	}
	return false
}

func period(p *fhir.Period) string {
	if p == nil {
		return ""
	}
	switch {
	case p.Start != "" && p.End != "":
		return displayDate(p.Start) + " – " + displayDate(p.End)
	case p.Start != "":
		return "from " + displayDate(p.Start)
	case p.End != "":
		return "until " + displayDate(p.End)
	}
	return ""
}

// displayDate renders a FHIR date or dateTime as "Feb 16, 2026"; anything
// unparsable is shown as written.
func displayDate(s string) string {
	for _, layout := range []string{time.RFC3339, "2006-01-02", "2006-01", "2006"} {
		if t, err := time.Parse(layout, s); err == nil {
			switch layout {
			case "2006-01":
				return t.Format("Jan 2006")
			case "2006":
				return t.Format("2006")
			}
			return t.Format("Jan 2, 2006")
		}
	}
	return s
}

// displayDateTime renders a dateTime with its time of day as written (in
// its own zone): "Feb 16, 2026 09:35".
func displayDateTime(s string) string {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.Format("Jan 2, 2006 15:04 MST")
	}
	return displayDate(s)
}

// age in whole years at now, "" when the birth date is not a full date.
func age(birthDate string, now time.Time) string {
	b, err := time.Parse("2006-01-02", birthDate)
	if err != nil {
		return ""
	}
	years := now.Year() - b.Year()
	if now.Month() < b.Month() || (now.Month() == b.Month() && now.Day() < b.Day()) {
		years--
	}
	return fmt.Sprintf("%d y", years)
}

func titleCase(s string) string {
	if s == "" {
		return ""
	}
	s = strings.ReplaceAll(s, "-", " ")
	return strings.ToUpper(s[:1]) + s[1:]
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// sortOrders puts orders needing documentation first, then by reference.
func sortOrders(orders []orderView) {
	sort.SliceStable(orders, func(i, j int) bool {
		if orders[i].DocNeeded != orders[j].DocNeeded {
			return orders[i].DocNeeded
		}
		return orders[i].Ref < orders[j].Ref
	})
}
