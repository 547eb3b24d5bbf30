package chart

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/gin-gonic/gin"

	"dtrsandbox/ehr/internal/launch"
	"dtrsandbox/ehr/internal/records"
	"dtrsandbox/shared/fhir"
	"dtrsandbox/shared/oautherr"
	"dtrsandbox/shared/smart"
)

// LaunchDTR is POST /patients/:id/launch with the form fields csrf and
// order ("DeviceRequest/dr-oxygen-1"): the clinician's click on "Launch
// DTR". It checks that the order is this patient's and needs documentation,
// creates an EHR launch (SMART App Launch 2.2 "EHR launch") for the DTR app
// with the signed-in practitioner, the patient, the order's encounter and
// fhirContext = [the Coverage, the order] (DTR 2.0 "Launching DTR"), and
// sends the browser to the app's launch URL (303).
func (h *Handler) LaunchDTR(c *gin.Context) {
	sess, user, ok := h.requireUser(c)
	if !ok {
		return
	}
	back := "/patients/" + c.Param("id")
	if !validPost(c, sess) {
		h.renderError(c, http.StatusForbidden, "Launch refused", "The form has expired. Reload the chart and click Launch DTR again.", back)
		return
	}
	pat, ok := h.loadPatient(c)
	if !ok {
		return
	}
	req, problem, err := h.launchRequest(c.Request.Context(), pat.ID, user.ID, c.PostForm("order"))
	if err != nil {
		h.failInternal(c, "prepare launch", err)
		return
	}
	if problem != "" {
		h.renderError(c, http.StatusBadRequest, "Cannot launch DTR", problem, back)
		return
	}
	created, err := h.launcher.Create(c.Request.Context(), *req)
	if err != nil {
		var oe *oautherr.Error
		if errors.As(err, &oe) && oe.Status < 500 {
			h.log.WarnContext(c.Request.Context(), "chart: launch refused", "error", err)
			h.renderError(c, http.StatusBadGateway, "Cannot launch DTR", "The launch was refused: "+oe.Description, back)
			return
		}
		h.failInternal(c, "create launch", err)
		return
	}
	if !httpURL(created.LaunchURL) {
		h.failInternal(c, "create launch", errors.New("launcher returned a launch_url that is not an absolute http(s) URL"))
		return
	}
	h.log.InfoContext(c.Request.Context(), "chart: DTR launched", "patient", pat.ID, "practitioner", user.ID, "order", c.PostForm("order"))
	c.Redirect(http.StatusSeeOther, created.LaunchURL)
}

// launchRequest builds the launch for order of patient, or explains (as a
// problem for the page) why that order cannot be launched.
func (h *Handler) launchRequest(ctx context.Context, patient, practitioner, order string) (*launch.Request, string, error) {
	_, typ, id, ok := fhir.ParseReference(order)
	if !ok || !slices.Contains(orderTypes, typ) {
		return nil, "Choose an order from the chart.", nil
	}
	rec, err := h.records.Read(ctx, typ, id)
	if errors.Is(err, records.ErrNotFound) || (err == nil && rec.PatientID != patient) {
		return nil, "That order is not on this patient's chart.", nil
	}
	if err != nil {
		return nil, "", err
	}
	ov, err := newOrderView(rec)
	if err != nil {
		return nil, "", err
	}
	if !ov.DocNeeded {
		return nil, "The payer does not need documentation for this order.", nil
	}
	_, covType, covID, ok := fhir.ParseReference(ov.CoverageRef)
	if !ok || covType != "Coverage" {
		return nil, "The order names no coverage to document against.", nil
	}
	cov, err := h.records.Read(ctx, "Coverage", covID)
	if errors.Is(err, records.ErrNotFound) || (err == nil && cov.PatientID != patient) {
		return nil, "The order's coverage is not this patient's.", nil
	}
	if err != nil {
		return nil, "", err
	}
	req := &launch.Request{
		ClientID:     h.clientID,
		Patient:      patient,
		Practitioner: practitioner,
		FHIRContext: []smart.ContextItem{
			{Reference: "Coverage/" + covID},
			{Reference: typ + "/" + id},
		},
	}
	if ov.EncounterID != "" {
		enc, err := h.records.Read(ctx, "Encounter", ov.EncounterID)
		switch {
		case err == nil && enc.PatientID == patient:
			req.Encounter = ov.EncounterID
		case err != nil && !errors.Is(err, records.ErrNotFound):
			return nil, "", err
		}
	}
	return req, "", nil
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}
