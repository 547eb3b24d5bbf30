package fhirapi

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gin-gonic/gin"

	"dtrsandbox/ehr/internal/records"
	"dtrsandbox/shared/fhir"
)

// Search is GET [base]/:type?params and POST [base]/:type/_search with a
// form body (R4 http.html#search; parameters of the URL and of the body are
// combined). Unknown parameters answer 400 rather than being ignored. For a
// patient-level token the search is confined to its patient whatever the
// parameters say. The answer is a searchset Bundle with total, fullUrls and
// self/next/previous links.
func (h *Handler) Search(c *gin.Context) {
	typ := c.Param("type")
	acc, ok := h.begin(c, typ, interactionSearch)
	if !ok {
		return
	}
	values, ok := h.searchParams(c)
	if !ok {
		return
	}
	q, err := records.ParseQuery(typ, values, h.base)
	var qe *records.QueryError
	switch {
	case errors.As(err, &qe):
		fail(c, http.StatusBadRequest, fhir.IssueNotSupported, qe.Hint)
		return
	case err != nil:
		h.failInternal(c, "parse search", err)
		return
	}
	if acc.confined() {
		q.Patient = acc.token.Patient
	}
	page, err := h.store.Search(c.Request.Context(), q)
	if err != nil {
		h.failInternal(c, "search", err)
		return
	}
	fhir.WriteJSON(c.Writer, http.StatusOK, h.searchBundle(typ, values, q, page))
}

// searchParams collects the parameters of the URL and, for POST _search,
// of the application/x-www-form-urlencoded body; _format is checked by
// begin and dropped here.
func (h *Handler) searchParams(c *gin.Context) (url.Values, bool) {
	values := c.Request.URL.Query()
	if c.Request.Method == http.MethodPost {
		mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
		if err != nil || mt != "application/x-www-form-urlencoded" {
			fail(c, http.StatusUnsupportedMediaType, fhir.IssueNotSupported, "POST _search takes an application/x-www-form-urlencoded body")
			return nil, false
		}
		body, ok := h.readBody(c)
		if !ok {
			return nil, false
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			fail(c, http.StatusBadRequest, fhir.IssueStructure, "the form body is not valid application/x-www-form-urlencoded")
			return nil, false
		}
		for k, vs := range form {
			values[k] = append(values[k], vs...)
		}
	}
	if fs := values["_format"]; len(fs) > 0 {
		for _, f := range fs {
			if !jsonFormat(f, true) {
				fail(c, http.StatusNotAcceptable, fhir.IssueNotSupported, "only JSON is supported (_format=json or application/fhir+json)")
				return nil, false
			}
		}
		delete(values, "_format")
	}
	return values, true
}

// readBody reads the request body up to the cap: 413 beyond it.
func (h *Handler) readBody(c *gin.Context) ([]byte, bool) {
	if c.Request.ContentLength > h.maxBody {
		fail(c, http.StatusRequestEntityTooLarge, fhir.IssueTooCostly, "the body exceeds "+strconv.FormatInt(h.maxBody, 10)+" bytes")
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, h.maxBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		fail(c, http.StatusRequestEntityTooLarge, fhir.IssueTooCostly, "the body exceeds "+strconv.FormatInt(h.maxBody, 10)+" bytes")
		return nil, false
	case err != nil:
		fail(c, http.StatusBadRequest, fhir.IssueStructure, "the body could not be read")
		return nil, false
	}
	return body, true
}

// searchBundle builds the searchset (R4 bundle.html, http.html#search).
func (h *Handler) searchBundle(typ string, values url.Values, q *records.Query, page *records.Page) *fhir.Bundle {
	total := page.Total
	b := &fhir.Bundle{
		ResourceType: "Bundle",
		Type:         "searchset",
		Timestamp:    records.FormatInstant(h.now()),
		Total:        &total,
		Link:         []fhir.BundleLink{{Relation: "self", URL: h.pageURL(typ, values, q.Offset, q.Count)}},
	}
	if q.Count > 0 && q.Offset+q.Count < total {
		b.Link = append(b.Link, fhir.BundleLink{Relation: "next", URL: h.pageURL(typ, values, q.Offset+q.Count, q.Count)})
	}
	if q.Offset > 0 && q.Count > 0 {
		b.Link = append(b.Link, fhir.BundleLink{Relation: "previous", URL: h.pageURL(typ, values, max(0, q.Offset-q.Count), q.Count)})
	}
	b.Entry = make([]fhir.BundleEntry, 0, len(page.Records))
	for _, rec := range page.Records {
		b.Entry = append(b.Entry, fhir.BundleEntry{
			FullURL:  h.fullURL(rec.Type, rec.ID),
			Resource: rec.Body,
			Search:   &fhir.BundleEntrySearch{Mode: "match"},
		})
	}
	return b
}

// pageURL is the search as a GET URL at the given offset.
func (h *Handler) pageURL(typ string, values url.Values, offset, count int) string {
	v := url.Values{}
	for k, vs := range values {
		if k != "_offset" && k != "_count" {
			v[k] = vs
		}
	}
	v.Set("_count", strconv.Itoa(count))
	if offset > 0 {
		v.Set("_offset", strconv.Itoa(offset))
	}
	return h.base + "/" + typ + "?" + v.Encode()
}
