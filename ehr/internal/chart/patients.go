package chart

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"dtrsandbox/ehr/internal/records"
	"dtrsandbox/shared/fhir"
)

type patientRow struct {
	personView
	Coverage string
}

type patientsPage struct {
	page
	Patients []patientRow
}

// Patients is GET /: the patient list with birth date, MRN and coverage.
func (h *Handler) Patients(c *gin.Context) {
	sess, user, ok := h.requireUser(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	pats, err := h.query(ctx, "Patient", nil)
	if err != nil {
		h.failInternal(c, "list patients", err)
		return
	}
	covs, err := h.query(ctx, "Coverage", url.Values{"status": {"active"}})
	if err != nil {
		h.failInternal(c, "list coverage", err)
		return
	}
	coverageOf := map[string]string{}
	for i := range covs {
		cv, err := newCoverageView(&covs[i])
		if err != nil {
			h.failInternal(c, "decode coverage", err)
			return
		}
		if _, seen := coverageOf[covs[i].PatientID]; !seen {
			coverageOf[covs[i].PatientID] = cv.coverageLine()
		}
	}
	data := patientsPage{page: page{Title: "Patients · Riverbend EHR", User: user, CSRF: sess.CSRF}}
	for i := range pats {
		pv, err := newPatientView(&pats[i], h.now())
		if err != nil {
			h.failInternal(c, "decode patient", err)
			return
		}
		data.Patients = append(data.Patients, patientRow{personView: pv, Coverage: coverageOf[pats[i].ID]})
	}
	slices.SortFunc(data.Patients, func(a, b patientRow) int { return strings.Compare(a.ID, b.ID) })
	h.render(c, http.StatusOK, "chart-patients.html", data)
}

type chartPage struct {
	page
	Patient    personView
	Coverages  []coverageView
	Encounters []encounterView
	Orders     []orderView
	Responses  []responseView
	DocNeeded  int
}

// loadPatient reads the patient named in the URL, answering 404 (or 400
// for an id that is not a FHIR id) when there is none.
func (h *Handler) loadPatient(c *gin.Context) (*records.Record, bool) {
	id := c.Param("id")
	if !fhir.ValidID(id) {
		h.renderError(c, http.StatusBadRequest, "No such patient", "That is not a patient id.", "/")
		return nil, false
	}
	rec, err := h.records.Read(c.Request.Context(), "Patient", id)
	switch {
	case errors.Is(err, records.ErrNotFound):
		h.renderError(c, http.StatusNotFound, "No such patient", "There is no patient "+id+" in this EHR.", "/")
		return nil, false
	case err != nil:
		h.failInternal(c, "read patient", err)
		return nil, false
	}
	return rec, true
}

// Chart is GET /patients/:id: demographics, coverage, encounters, orders
// (with the documentation badge and the Launch DTR button) and the
// documentation received back from the DTR app.
func (h *Handler) Chart(c *gin.Context) {
	sess, user, ok := h.requireUser(c)
	if !ok {
		return
	}
	rec, ok := h.loadPatient(c)
	if !ok {
		return
	}
	data, err := h.chartData(c, rec)
	if err != nil {
		h.failInternal(c, "load chart", err)
		return
	}
	data.page = page{Title: data.Patient.Name + " · Riverbend EHR", User: user, CSRF: sess.CSRF}
	h.render(c, http.StatusOK, "chart-patient.html", data)
}

func (h *Handler) chartData(c *gin.Context, rec *records.Record) (*chartPage, error) {
	ctx := c.Request.Context()
	pv, err := newPatientView(rec, h.now())
	if err != nil {
		return nil, err
	}
	data := &chartPage{Patient: pv}
	byPatient := url.Values{"patient": {rec.ID}}

	covs, err := h.query(ctx, "Coverage", byPatient)
	if err != nil {
		return nil, err
	}
	for i := range covs {
		v, err := newCoverageView(&covs[i])
		if err != nil {
			return nil, err
		}
		data.Coverages = append(data.Coverages, v)
	}
	encs, err := h.query(ctx, "Encounter", byPatient)
	if err != nil {
		return nil, err
	}
	for i := range encs {
		v, err := newEncounterView(&encs[i])
		if err != nil {
			return nil, err
		}
		data.Encounters = append(data.Encounters, v)
	}
	for _, typ := range orderTypes {
		recs, err := h.query(ctx, typ, byPatient)
		if err != nil {
			return nil, err
		}
		for i := range recs {
			v, err := newOrderView(&recs[i])
			if err != nil {
				return nil, err
			}
			data.Orders = append(data.Orders, v)
		}
	}
	qrs, err := h.query(ctx, "QuestionnaireResponse", byPatient)
	if err != nil {
		return nil, err
	}
	for i := range qrs {
		v, _, err := newResponseView(&qrs[i])
		if err != nil {
			return nil, err
		}
		for j := range data.Orders {
			o := &data.Orders[j]
			if o.DocNeeded && sameQuestionnaire(o.Questionnaire, v.Questionnaire) {
				v.Order = o.Ref
				if v.Status == "Completed" || v.Status == "Amended" {
					o.DocReceived = true
				}
			}
		}
		data.Responses = append(data.Responses, v)
	}
	sortOrders(data.Orders)
	for _, o := range data.Orders {
		if o.DocNeeded && !o.DocReceived {
			data.DocNeeded++
		}
	}
	return data, nil
}

type responsePage struct {
	page
	Patient  personView
	Response responseView
	Items    []answerItem
}

// Response is GET /patients/:id/responses/:rid: one QuestionnaireResponse
// of that patient, its answers as a tree.
func (h *Handler) Response(c *gin.Context) {
	sess, user, ok := h.requireUser(c)
	if !ok {
		return
	}
	pat, ok := h.loadPatient(c)
	if !ok {
		return
	}
	rid := c.Param("rid")
	back := "/patients/" + pat.ID
	if !fhir.ValidID(rid) {
		h.renderError(c, http.StatusBadRequest, "No such response", "That is not a response id.", back)
		return
	}
	rec, err := h.records.Read(c.Request.Context(), "QuestionnaireResponse", rid)
	switch {
	case errors.Is(err, records.ErrNotFound) || (err == nil && rec.PatientID != pat.ID):
		h.renderError(c, http.StatusNotFound, "No such response", "This patient has no questionnaire response "+rid+".", back)
		return
	case err != nil:
		h.failInternal(c, "read response", err)
		return
	}
	pv, err := newPatientView(pat, h.now())
	if err != nil {
		h.failInternal(c, "decode patient", err)
		return
	}
	rv, items, err := newResponseView(rec)
	if err != nil {
		h.failInternal(c, "decode response", err)
		return
	}
	h.render(c, http.StatusOK, "chart-response.html", responsePage{
		page:    page{Title: "Documentation · " + pv.Name, User: user, CSRF: sess.CSRF},
		Patient: pv, Response: rv, Items: items,
	})
}
