package documents

import (
	"net/http"
	"strings"

	"dtrsandbox/shared/fhir"

	"github.com/gin-gonic/gin"
)

// The payer serves a deliberately small FHIR surface. These handlers give
// the interactions it refuses an explicit route, an OperationOutcome and an
// AuditEvent, so that no such request falls through to anything else and
// none returns data:
//
//   - batch and transaction Bundles (POST {fhir}) could carry reads and
//     writes past the per-route checks;
//   - _history (any level) would return versions the current checks were
//     not applied to;
//   - Patient/$everything would reach beyond DTR documents;
//   - delete is not part of the DTR workflow (entered-in-error is).

// Batch refuses POST {fhir} (R4 http.html#transaction): 400 not-supported.
func (h *Handler) Batch(c *gin.Context) {
	h.refuseInteraction(c, "batch", "E", http.StatusBadRequest,
		"batch and transaction Bundles are not supported; send each request on its own", "batch/transaction not supported")
}

// History refuses every _history interaction (R4 http.html#history and
// #vread): 400 not-supported.
func (h *Handler) History(c *gin.Context) {
	h.refuseInteraction(c, "history", "R", http.StatusBadRequest,
		"_history is not supported", "history not supported")
}

// Everything refuses $everything (R4 patient-operation-everything): 400
// not-supported.
func (h *Handler) Everything(c *gin.Context) {
	h.refuseInteraction(c, "operation", "E", http.StatusBadRequest,
		"$everything is not supported", "$everything not supported")
}

// Delete refuses DELETE (R4 http.html#delete): 405 with Allow; set status
// entered-in-error with an update instead.
func (h *Handler) Delete(c *gin.Context) {
	c.Header("Allow", allowFor(c))
	h.refuseInteraction(c, "delete", "D", http.StatusMethodNotAllowed,
		"delete is not supported; update the status to entered-in-error instead", "delete not supported")
}

// MethodNotAllowed refuses any other method on a document route (PATCH,
// ...): 405 with Allow.
func (h *Handler) MethodNotAllowed(c *gin.Context) {
	c.Header("Allow", allowFor(c))
	h.refuseInteraction(c, strings.ToLower(c.Request.Method), "E", http.StatusMethodNotAllowed,
		c.Request.Method+" is not supported here", "method not allowed")
}

// allowFor is the Allow header of a document route.
func allowFor(c *gin.Context) string {
	if c.Param("id") != "" {
		return "GET, PUT"
	}
	return "GET, POST"
}

// refuseInteraction records and answers an unsupported interaction. It does
// not read the body and does not need a principal: the answer carries no
// data. The AuditEvent names the caller when the gate has identified one.
func (h *Handler) refuseInteraction(c *gin.Context, interaction, action string, status int, hint, reason string) {
	r := h.newRequest(c, interaction, action)
	r.ev.Query = c.Request.URL.RawQuery
	if r.typ == "" {
		r.ev.ResourceType = typeSegment(c.FullPath())
	}
	h.refuse(r, &requestError{Status: status, Code: fhir.IssueNotSupported, Hint: hint, Reason: reason})
}

// typeSegment returns the first literal segment of a route pattern that
// looks like a resource type name ("Patient" in /fhir/Patient/:id/$everything).
func typeSegment(pattern string) string {
	for _, seg := range strings.Split(pattern, "/") {
		if len(seg) > 1 && seg[0] >= 'A' && seg[0] <= 'Z' && !strings.ContainsAny(seg, ":*$") {
			return seg
		}
	}
	return ""
}
