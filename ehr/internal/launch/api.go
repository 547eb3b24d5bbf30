package launch

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"dtrsandbox/shared/fhir"
	"dtrsandbox/shared/httpserver"
	"dtrsandbox/shared/oautherr"
)

// MaxBody is the largest POST /api/launch body accepted.
const MaxBody = 64 << 10

// Handler serves POST /api/launch: the EHR's "Launch" button as an API
// (CONTRACT.md). It takes no credential in the sandbox; a real EHR never
// exposes it.
func (s *Service) Handler(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		req, err := parseRequest(c)
		if err != nil {
			writeError(c, log, err)
			return
		}
		created, err := s.Create(c.Request.Context(), *req)
		if err != nil {
			writeError(c, log, err)
			return
		}
		c.Header("Cache-Control", "no-store")
		c.PureJSON(http.StatusCreated, created)
	}
}

// parseRequest reads a JSON Request: application/json, at most MaxBody
// bytes, no unknown members, nothing after the object.
func parseRequest(c *gin.Context) (*Request, error) {
	mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, oautherr.InvalidRequest("The body must be application/json.")
	}
	if httpserver.DeclaredTooLarge(c) {
		return nil, tooLarge()
	}
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, MaxBody+1))
	if err != nil {
		if httpserver.IsTooLarge(err) {
			return nil, tooLarge()
		}
		return nil, oautherr.InvalidRequest("The body could not be read.").WithCause(err)
	}
	if len(body) > MaxBody {
		return nil, tooLarge()
	}
	if !utf8.Valid(body) {
		// RFC 8259 §8.1; Go's decoder would silently turn the bad bytes
		// into U+FFFD.
		return nil, oautherr.InvalidRequest("The body is not UTF-8 JSON.")
	}
	// fhir.Decode refuses repeated and case-variant member names, which
	// Go's decoder would otherwise accept ("Patient" for "patient").
	var req Request
	if err := fhir.Decode(body, &req); err != nil {
		return nil, oautherr.InvalidRequest("The body is not a launch request: %s.", decodeProblem(err)).WithCause(err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, oautherr.InvalidRequest("The body is not a launch request: %s.", jsonProblem(err)).WithCause(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, oautherr.InvalidRequest("The body has data after the JSON object.")
	}
	return &req, nil
}

// tooLarge is the 413 answer to a body over MaxBody.
func tooLarge() *oautherr.Error {
	return oautherr.New(oautherr.CodeInvalidRequest, http.StatusRequestEntityTooLarge, "The body is larger than %d bytes.", MaxBody)
}

// decodeProblem is the reason of a strict-decoding refusal.
func decodeProblem(err error) string {
	var de *fhir.DecodeError
	if errors.As(err, &de) {
		return de.Reason
	}
	return "malformed JSON"
}

// jsonProblem is a short, safe description of a decoding error.
func jsonProblem(err error) string {
	var ute *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &ute):
		return "member " + ute.Field + " has the wrong type"
	case errors.As(err, &se):
		return "malformed JSON"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "empty or truncated JSON"
	}
	return "unknown member or malformed JSON"
}

func writeError(c *gin.Context, log *slog.Logger, err error) {
	e := oautherr.As(err)
	if e.Status >= 500 {
		log.Error("launch failed", "error", e.Error())
	} else {
		log.Info("launch refused", "error", e.Error())
	}
	oautherr.Write(c.Writer, e)
}
