package fhirapi

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"dtrsandbox/ehr/internal/records"
	"dtrsandbox/shared/fhir"
)

// Read is GET [base]/:type/:id (R4 http.html#read). A resource outside the
// caller's patient compartment answers 404 exactly as a missing one does,
// so a patient-level token cannot learn which ids exist.
func (h *Handler) Read(c *gin.Context) {
	typ, id := c.Param("type"), c.Param("id")
	acc, ok := h.begin(c, typ, interactionRead)
	if !ok {
		return
	}
	if !checkID(c, id) {
		return
	}
	rec, err := h.store.Read(c.Request.Context(), typ, id)
	switch {
	case errors.Is(err, records.ErrNotFound):
		notFound(c, typ, id)
		return
	case err != nil:
		h.failInternal(c, "read", err)
		return
	}
	if !acc.sees(rec) {
		notFound(c, typ, id)
		return
	}
	writeRecord(c, http.StatusOK, rec)
}

// checkID answers 400 to a URL id that is not a FHIR id (R4
// datatypes.html#id) and reports whether it is one.
func checkID(c *gin.Context, id string) bool {
	if !fhir.ValidID(id) {
		fail(c, http.StatusBadRequest, fhir.IssueValue, "the id is not a FHIR id (1-64 of A-Z a-z 0-9 - .)")
		return false
	}
	return true
}

func notFound(c *gin.Context, typ, id string) {
	fail(c, http.StatusNotFound, fhir.IssueNotFound, typ+"/"+id+" is not known")
}
