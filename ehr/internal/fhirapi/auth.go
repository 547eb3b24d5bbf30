package fhirapi

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"dtrsandbox/ehr/internal/records"
	"dtrsandbox/shared/fhir"
	"dtrsandbox/shared/oautherr"
	"dtrsandbox/shared/smart"
)

// TokenVerifier checks a bearer access token and returns what it grants.
// Errors are *oautherr.Error with code invalid_token for a token that is
// not valid (expired, revoked, wrong audience, bad signature); any other
// error is taken as the verifier failing, answered 500.
type TokenVerifier interface {
	VerifyAccessToken(ctx context.Context, raw string) (*smart.AccessContext, error)
}

// access is what one request may do, after authentication and the scope
// check.
type access struct {
	token *smart.AccessContext
	level smart.Level
	info  typeInfo
}

// confined reports whether answers must be limited to the token's patient:
// a patient-level grant on a Patient-compartment type (SMART 2.2,
// "Patient-specific scopes").
func (a access) confined() bool { return a.level == smart.LevelPatient && a.info.compartment }

// sees reports whether the caller may know that rec exists.
func (a access) sees(rec *records.Record) bool {
	return !a.confined() || rec.PatientID == a.token.Patient
}

// permFor maps an interaction to the SMART permission it needs (SMART 2.2
// "Scopes for requesting FHIR Resources": r read, s search, c create,
// u update; v1 .read = rs and .write = cud are expanded by smart.ParseScopes).
func permFor(i interaction) smart.Perm {
	switch i {
	case interactionRead:
		return smart.PermRead
	case interactionSearch:
		return smart.PermSearch
	case interactionCreate:
		return smart.PermCreate
	case interactionUpdate:
		return smart.PermUpdate
	}
	return 0
}

// begin runs the checks every interaction shares, in order: the bearer
// token (401), the response format (406), the resource type (404), the
// interaction on that type (405), the scopes (403). On failure it has
// written the answer and returns false.
func (h *Handler) begin(c *gin.Context, typ string, i interaction) (access, bool) {
	token, ok := h.authenticate(c)
	if !ok {
		return access{}, false
	}
	if !checkFormat(c) {
		return access{}, false
	}
	info, ok := served[typ]
	if !ok {
		fail(c, http.StatusNotFound, fhir.IssueNotSupported, "resource type "+quoteType(typ)+" is not served by this EHR")
		return access{}, false
	}
	if !info.supports(i) {
		c.Header("Allow", allowed(info))
		fail(c, http.StatusMethodNotAllowed, fhir.IssueNotSupported, "the "+string(i)+" interaction is not supported for "+typ)
		return access{}, false
	}
	level, granted := token.Scopes.Grant(typ, permFor(i))
	if !granted {
		h.forbid(c, "the token's scopes do not permit "+string(i)+" on "+typ)
		return access{}, false
	}
	if level == smart.LevelPatient && !fhir.ValidID(token.Patient) {
		h.forbid(c, "a patient-level scope needs a patient in the token's launch context")
		return access{}, false
	}
	return access{token: token, level: level, info: info}, true
}

// authenticate reads the bearer token (RFC 6750 §2.1: Authorization header
// only) and verifies it. Missing credentials answer 401 with a bare
// challenge (RFC 6750 §3.1: no error code); a bad token answers 401 with
// error="invalid_token".
func (h *Handler) authenticate(c *gin.Context) (*smart.AccessContext, bool) {
	raw, ok := bearerToken(c.GetHeader("Authorization"))
	if !ok {
		c.Header("WWW-Authenticate", oautherr.BearerChallenge(nil))
		fail(c, http.StatusUnauthorized, fhir.IssueLogin, "an access token is required (Authorization: Bearer)")
		return nil, false
	}
	token, err := h.verifier.VerifyAccessToken(c.Request.Context(), raw)
	if err != nil {
		var oe *oautherr.Error
		if !errors.As(err, &oe) || oe.Status >= 500 {
			h.failInternal(c, "token verification", err)
			return nil, false
		}
		h.log.InfoContext(c.Request.Context(), "fhir api: token refused", "path", c.Request.URL.Path, "error", err)
		h.unauthorized(c, oe.Description)
		return nil, false
	}
	if token == nil {
		h.failInternal(c, "token verification", errors.New("verifier returned no access context"))
		return nil, false
	}
	if !token.ExpiresAt.IsZero() && !h.now().Before(token.ExpiresAt) {
		h.unauthorized(c, "the access token has expired")
		return nil, false
	}
	return token, true
}

func (h *Handler) unauthorized(c *gin.Context, hint string) {
	if hint == "" {
		hint = "the access token is not valid"
	}
	c.Header("WWW-Authenticate", oautherr.BearerChallenge(oautherr.InvalidToken("%s", hint)))
	fail(c, http.StatusUnauthorized, fhir.IssueLogin, hint)
}

// forbid answers 403 with an RFC 6750 §3.1 insufficient_scope challenge.
func (h *Handler) forbid(c *gin.Context, hint string) {
	c.Header("WWW-Authenticate", oautherr.BearerChallenge(oautherr.New(oautherr.CodeInsufficientScope, http.StatusForbidden, "%s", hint)))
	fail(c, http.StatusForbidden, fhir.IssueForbidden, hint)
}

// bearerToken extracts the token of "Bearer <token>" (scheme
// case-insensitive, RFC 7235 §2.1; token68 syntax, RFC 6750 §2.1).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimLeft(token, " ")
	if token == "" {
		return "", false
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/=", c) >= 0) {
			return "", false
		}
	}
	return token, true
}

// checkFormat enforces JSON as the only format (R4 http.html#mime-type):
// _format and Accept may ask for JSON or anything; asking only for
// something else (XML, Turtle) answers 406.
func checkFormat(c *gin.Context) bool {
	if f, ok := c.GetQuery("_format"); ok && !jsonFormat(f, true) {
		fail(c, http.StatusNotAcceptable, fhir.IssueNotSupported, "only JSON is supported (_format=json or application/fhir+json)")
		return false
	}
	if accept := c.GetHeader("Accept"); accept != "" {
		for _, part := range strings.Split(accept, ",") {
			if jsonFormat(part, false) {
				return true
			}
		}
		fail(c, http.StatusNotAcceptable, fhir.IssueNotSupported, "only application/fhir+json is produced")
		return false
	}
	return true
}

// jsonFormat reports whether a _format value or Accept member asks for (or
// allows) FHIR JSON.
func jsonFormat(v string, formatParam bool) bool {
	v = strings.TrimSpace(v)
	if formatParam && v == "json" {
		return true
	}
	mt, _, err := mime.ParseMediaType(v)
	if err != nil {
		return false
	}
	switch mt {
	case "application/fhir+json", "application/json", "application/json+fhir":
		return true
	case "*/*", "application/*":
		return !formatParam
	}
	return false
}

func allowed(info typeInfo) string {
	if info.writable {
		return "GET, POST, PUT"
	}
	return "GET"
}

// quoteType shows a requested type name without echoing arbitrary input.
func quoteType(typ string) string {
	if len(typ) > 64 {
		typ = typ[:64]
	}
	for i := 0; i < len(typ); i++ {
		c := typ[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '$') {
			return "(invalid name)"
		}
	}
	return typ
}
