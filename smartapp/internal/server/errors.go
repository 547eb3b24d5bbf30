package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"dtrsandbox/smartapp/internal/dtr"
	"dtrsandbox/smartapp/internal/ehr"
	"dtrsandbox/smartapp/internal/payer"
	"dtrsandbox/smartapp/internal/signer"
)

// apiError is the JSON error answer of the API.
type apiError struct {
	HTTP       int             `json:"-"`
	Message    string          `json:"error"`
	Code       string          `json:"code"`
	Status     int             `json:"status"`
	Source     string          `json:"source"`
	Outcome    json.RawMessage `json:"outcome,omitempty"`
	Done       *dtr.Submitted  `json:"done,omitempty"`
	RetryAfter string          `json:"retry_after,omitempty"`
}

func (s *Server) writeAPIError(c *gin.Context, e apiError) {
	if e.Status == 0 && e.Source == "app" {
		e.Status = e.HTTP
	}
	if e.RetryAfter != "" {
		c.Header("Retry-After", e.RetryAfter)
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(e.HTTP, e)
}

// classify maps an error of the flow to its API answer: the caller's
// problems keep their 4xx, an expired EHR session is 401 session_expired,
// the payer's 429 stays 429 (with Retry-After) and 412 becomes 409, and any
// other upstream failure is 502 with the upstream status and
// OperationOutcome. Anything unexpected is 500 with no detail.
func classify(err error) apiError {
	var (
		pe  *payer.Error
		ee  *ehr.Error
		pr  *dtr.Problem
		ref *signer.Refusal
		se  *dtr.SubmitError
	)
	switch {
	case errors.As(err, &se):
		e := classify(se.Err)
		e.Code, e.Done = "submit_incomplete", &se.Done
		if se.Done.DocumentID != "" {
			e.Message = "The final documentation is stored at the payer (" + se.Done.DocumentID + "), but the submission is incomplete: " + e.Message + " Submit again to finish."
		}
		return e
	case errors.As(err, &ref):
		if errors.Is(err, signer.ErrExpired) {
			return sessionExpired
		}
		return apiError{HTTP: http.StatusForbidden, Code: "not_verified", Source: "app", Message: "The app will not call the payer for this session: " + ref.Hint + "."}
	case errors.As(err, &ee):
		if errors.Is(err, ehr.ErrSessionExpired) {
			return apiError{HTTP: http.StatusUnauthorized, Code: "session_expired", Source: "ehr", Status: ee.Status, Outcome: ee.Outcome, Message: ee.Message + "."}
		}
		code := "ehr_error"
		if ee.Status == 0 {
			code = "ehr_unreachable"
		}
		return apiError{HTTP: http.StatusBadGateway, Code: code, Source: "ehr", Status: ee.Status, Outcome: ee.Outcome, Message: ee.Message + "."}
	case errors.As(err, &pe):
		e := apiError{HTTP: http.StatusBadGateway, Code: "payer_error", Source: "payer", Status: pe.Status, Outcome: pe.Outcome, Message: pe.Message}
		switch {
		case pe.Status == 0:
			e.Code = "payer_unreachable"
		case pe.Status == http.StatusTooManyRequests:
			e.HTTP, e.Code, e.RetryAfter = http.StatusTooManyRequests, "payer_rate_limited", pe.RetryAfter
		case pe.Status == http.StatusPreconditionFailed:
			e.HTTP, e.Code = http.StatusConflict, "draft_conflict"
		}
		return e
	case errors.As(err, &pr):
		code := "bad_request"
		switch pr.Status {
		case http.StatusUnauthorized:
			code = "no_session"
		case http.StatusConflict:
			code = "conflict"
		case http.StatusForbidden:
			code = "forbidden"
		}
		if pr.Status >= 500 {
			return apiError{HTTP: http.StatusBadGateway, Code: "ehr_error", Source: "ehr", Message: pr.Message}
		}
		return apiError{HTTP: pr.Status, Code: code, Source: "app", Message: pr.Message}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return apiError{HTTP: http.StatusGatewayTimeout, Code: "timeout", Source: "app", Message: "The request took too long; try again."}
	}
	return apiError{HTTP: http.StatusInternalServerError, Code: "internal", Source: "app", Message: "The app failed to complete the request."}
}

// fail logs err with its cause and answers it.
func (s *Server) fail(c *gin.Context, err error) {
	e := classify(err)
	if e.HTTP >= 500 {
		s.log.Error("request failed", "path", c.Request.URL.Path, "code", e.Code, "err", err)
	} else {
		s.log.Info("request refused", "path", c.Request.URL.Path, "code", e.Code, "err", err)
	}
	s.writeAPIError(c, e)
}

// errorPage renders the shared error page.
func (s *Server) errorPage(c *gin.Context, status int, title, message, detail, back string) {
	c.Header("Cache-Control", "no-store")
	c.Status(status)
	c.Header("Content-Type", "text/html; charset=utf-8")
	if err := s.tmpl.ExecuteTemplate(c.Writer, "error.html", map[string]string{
		"Title": title, "Message": message, "Detail": detail, "Back": back,
	}); err != nil {
		s.log.Error("render error page", "err", err)
	}
}

func (s *Server) writePanic(c *gin.Context) {
	if isAPI(c) {
		s.writeAPIError(c, apiError{HTTP: http.StatusInternalServerError, Code: "internal", Source: "app", Message: "The app failed to complete the request."})
		return
	}
	s.errorPage(c, http.StatusInternalServerError, "Something went wrong", "The app failed to complete the request.", "", "/")
}

func isAPI(c *gin.Context) bool {
	p := c.Request.URL.Path
	return len(p) >= 5 && p[:5] == "/api/"
}

func (s *Server) notFound(c *gin.Context) {
	if isAPI(c) {
		s.writeAPIError(c, apiError{HTTP: http.StatusNotFound, Code: "not_found", Source: "app", Message: "No such endpoint."})
		return
	}
	s.errorPage(c, http.StatusNotFound, "Not found", "There is no page here.", "", "/")
}

// headerTooLarge answers a request over the header cap with 431
// (httpserver.HeaderLimit): the JSON error under /api/, the error page
// elsewhere.
func (s *Server) headerTooLarge(c *gin.Context) {
	if isAPI(c) {
		s.writeAPIError(c, apiError{HTTP: http.StatusRequestHeaderFieldsTooLarge, Code: "bad_request", Source: "app", Message: "The request headers are too large."})
		return
	}
	s.errorPage(c, http.StatusRequestHeaderFieldsTooLarge, "Request too large", "The request headers are too large (too many or too big cookies?).", "", "/")
}

func (s *Server) methodNotAllowed(c *gin.Context) {
	if isAPI(c) {
		s.writeAPIError(c, apiError{HTTP: http.StatusMethodNotAllowed, Code: "bad_request", Source: "app", Message: "Method not allowed."})
		return
	}
	s.errorPage(c, http.StatusMethodNotAllowed, "Not allowed", "This address does not accept that method.", "", "/")
}
