package authz

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"dtrsandbox/shared/oautherr"
	"dtrsandbox/shared/smart"
)

// introspection is the RFC 7662 §2.2 answer with the SMART App Launch 2.2
// additions (Token Introspection: patient, encounter, fhirUser,
// fhirContext). An inactive token is exactly {"active":false}.
type introspection struct {
	Active      bool                `json:"active"`
	Scope       string              `json:"scope,omitempty"`
	ClientID    string              `json:"client_id,omitempty"`
	TokenType   string              `json:"token_type,omitempty"`
	Exp         int64               `json:"exp,omitempty"`
	Iat         int64               `json:"iat,omitempty"`
	Iss         string              `json:"iss,omitempty"`
	Sub         string              `json:"sub,omitempty"`
	Aud         string              `json:"aud,omitempty"`
	JTI         string              `json:"jti,omitempty"`
	Patient     string              `json:"patient,omitempty"`
	Encounter   string              `json:"encounter,omitempty"`
	FHIRUser    string              `json:"fhirUser,omitempty"`
	FHIRContext []smart.ContextItem `json:"fhirContext,omitempty"`
}

// Introspect serves POST /oauth/introspect (RFC 7662). The caller must
// authenticate as a confidential client (private_key_jwt or
// client_secret_basic): otherwise 401 invalid_client. Only access tokens
// can be active: a refresh token, an ID token, a revoked, expired or
// malformed token all answer {"active":false}. A client allowed to
// introspect (the seeded payer) learns about any access token; any other
// confidential client only about its own (RFC 7662 §4, token scanning).
//
// fosite's introspection is not used: its CoreValidator tries a refresh
// token when the access token check fails, and would report it active.
func (s *Server) Introspect(c *gin.Context) {
	ctx := c.Request.Context()
	form, e := readPostForm(c)
	if e != nil {
		s.writeOAuth(c, "introspection refused", e)
		return
	}
	caller, e := s.auth.Authenticate(ctx, c.Request, form)
	if e != nil {
		s.writeOAuth(c, "introspection refused", e)
		return
	}
	if caller.IsPublic() {
		s.writeOAuth(c, "introspection refused", oautherr.InvalidClient("Introspection needs client authentication (private_key_jwt or client_secret_basic)."))
		return
	}
	raw := form.Get("token")
	if raw == "" {
		s.writeOAuth(c, "introspection refused", oautherr.InvalidRequest("token is required."))
		return
	}
	t, e := s.tokens.check(ctx, raw)
	switch {
	case e != nil && e.Code == oautherr.CodeInvalidToken:
		s.log.Info("introspection: inactive", "caller", caller.ID, "reason", e.Error())
		writeJSON(c, http.StatusOK, introspection{Active: false})
		return
	case e != nil:
		s.writeOAuth(c, "introspection failed", e)
		return
	case !caller.MayIntrospect && t.claims.ClientID != caller.ID:
		s.log.Info("introspection: token of another client", "caller", caller.ID)
		writeJSON(c, http.StatusOK, introspection{Active: false})
		return
	}
	cl := t.claims
	aud := ""
	if len(cl.Audience) > 0 {
		aud = cl.Audience[0]
	}
	writeJSON(c, http.StatusOK, introspection{
		Active:      true,
		Scope:       cl.Scope,
		ClientID:    cl.ClientID,
		TokenType:   "Bearer",
		Exp:         cl.ExpiresAt.Unix(),
		Iat:         cl.IssuedAt.Unix(),
		Iss:         cl.Issuer,
		Sub:         cl.Subject,
		Aud:         aud,
		JTI:         cl.ID,
		Patient:     cl.Patient,
		Encounter:   cl.Encounter,
		FHIRUser:    cl.FHIRUser,
		FHIRContext: cl.FHIRContext,
	})
}
