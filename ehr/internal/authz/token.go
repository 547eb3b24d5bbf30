package authz

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"dtrsandbox/shared/oautherr"
)

// Token serves POST /oauth/token (RFC 6749 §3.2): authorization_code
// (with PKCE), refresh_token and client_credentials, the client
// authenticated by clientAuthenticator. The answer is the RFC 6749 §5.1
// response with token_type "Bearer" and the SMART launch context (SMART
// App Launch 2.2 "Launch context arrives with your access_token"):
// patient, encounter, fhirContext, need_patient_banner. Every refusal is an
// RFC 6749 §5.2 JSON error; nothing is stored for a refused request.
func (s *Server) Token(c *gin.Context) {
	ctx := c.Request.Context()
	form, e := readPostForm(c)
	if e != nil {
		s.writeOAuth(c, "token refused", e)
		return
	}
	switch gt := form.Get("grant_type"); gt {
	case "":
		s.writeOAuth(c, "token refused", oautherr.InvalidRequest("grant_type is required."))
		return
	case "authorization_code", "refresh_token", "client_credentials":
	default:
		s.writeOAuth(c, "token refused", oautherr.UnsupportedGrantType("grant_type %s is not supported; use authorization_code, refresh_token or client_credentials.", clip(gt)))
		return
	}
	ar, err := s.provider.NewAccessRequest(ctx, c.Request, &Session{})
	if err != nil {
		s.writeOAuth(c, "token refused", fromFosite(err))
		return
	}
	resp, err := s.provider.NewAccessResponse(ctx, ar)
	if err != nil {
		s.writeOAuth(c, "token refused", fromFosite(err))
		return
	}
	body := resp.ToMap()
	body["token_type"] = "Bearer"
	if sess, ok := ar.GetSession().(*Session); ok {
		addLaunchContext(body, &sess.SMART)
	}
	s.log.Info("token issued", "client_id", ar.GetClient().GetID(), "grant_type", form.Get("grant_type"),
		"scope", ar.GetGrantedScopes(), "refresh_token", body["refresh_token"] != nil, "id_token", body["id_token"] != nil)
	writeJSON(c, http.StatusOK, body)
}

// addLaunchContext adds the SMART context parameters to a token response.
func addLaunchContext(body map[string]interface{}, lc *LaunchContext) {
	if lc.Mode != ModeEHR && lc.Mode != ModeStandalone {
		return
	}
	if lc.Patient != "" {
		body["patient"] = lc.Patient
	}
	if lc.Encounter != "" {
		body["encounter"] = lc.Encounter
	}
	if len(lc.FHIRContext) > 0 {
		body["fhirContext"] = lc.FHIRContext
	}
	body["need_patient_banner"] = lc.NeedPatientBanner
}

// writeJSON answers with a JSON body that no cache may keep (RFC 6749 §5.1).
func writeJSON(c *gin.Context, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		oautherr.Write(c.Writer, oautherr.ServerError("The answer could not be encoded.").WithCause(err))
		return
	}
	h := c.Writer.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	c.Data(status, "application/json; charset=utf-8", b)
}

// writeOAuth logs and writes an RFC 6749 §5.2 error.
func (s *Server) writeOAuth(c *gin.Context, msg string, e *oautherr.Error) {
	logOAuthError(s.log, msg, e, "path", c.Request.URL.Path)
	oautherr.Write(c.Writer, e)
}
