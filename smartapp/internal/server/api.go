package server

import (
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"dtrsandbox/shared/httpserver"
	"dtrsandbox/smartapp/internal/dtr"
	"dtrsandbox/smartapp/internal/jwtview"
	"dtrsandbox/smartapp/internal/session"
)

// apiContext answers GET /api/context: the launch context and the CSRF
// token the page sends back on POSTs.
func (s *Server) apiContext(c *gin.Context) {
	sess := sessionOf(c)
	v, err := s.flow.Context(c.Request.Context(), sess)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, struct {
		*dtr.ContextView
		CSRF string `json:"csrf_token"`
	}{v, sess.CSRF()})
}

// apiOrders answers GET /api/orders: the patient's orders, for a
// standalone launch to pick one.
func (s *Server) apiOrders(c *gin.Context) {
	orders, err := s.flow.Orders(c.Request.Context(), sessionOf(c))
	if err != nil {
		s.fail(c, err)
		return
	}
	if orders == nil {
		orders = []dtr.OrderView{}
	}
	c.JSON(http.StatusOK, orders)
}

// apiSelectOrder answers POST /api/order {"reference": "Type/id"}.
func (s *Server) apiSelectOrder(c *gin.Context) {
	var in struct {
		Reference string `json:"reference"`
	}
	body, ok := s.readBody(c)
	if !ok {
		return
	}
	if err := json.Unmarshal(body, &in); err != nil || in.Reference == "" {
		s.writeAPIError(c, apiError{HTTP: http.StatusBadRequest, Code: "bad_request", Source: "app", Message: `Send {"reference": "DeviceRequest/<id>"}.`})
		return
	}
	if err := s.flow.SelectOrder(c.Request.Context(), sessionOf(c), in.Reference); err != nil {
		s.fail(c, err)
		return
	}
	s.apiContext(c)
}

// apiQuestionnaire answers GET /api/questionnaire.
func (s *Server) apiQuestionnaire(c *gin.Context) {
	v, err := s.flow.Form(c.Request.Context(), sessionOf(c))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

// apiDraft answers POST /api/draft.
func (s *Server) apiDraft(c *gin.Context) {
	body, ok := s.readBody(c)
	if !ok {
		return
	}
	v, err := s.flow.SaveDraft(c.Request.Context(), sessionOf(c), body)
	if err != nil {
		s.fail(c, err)
		return
	}
	status := http.StatusOK
	if v.Created {
		status = http.StatusCreated
	}
	c.JSON(status, v)
}

// apiSubmit answers POST /api/submit.
func (s *Server) apiSubmit(c *gin.Context) {
	body, ok := s.readBody(c)
	if !ok {
		return
	}
	v, err := s.flow.Submit(c.Request.Context(), sessionOf(c), body)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

// apiDocuments answers GET /api/documents.
func (s *Server) apiDocuments(c *gin.Context) {
	v, err := s.flow.Documents(c.Request.Context(), sessionOf(c))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

// securityView is GET /api/security: what the presenter shows about the
// tokens, decoded, never raw.
type securityView struct {
	EHR struct {
		Issuer      string        `json:"issuer"`
		ClientID    string        `json:"client_id"`
		Verified    string        `json:"verified"`
		ExpiresAt   time.Time     `json:"expires_at"`
		Scope       string        `json:"scope"`
		AccessToken jwtview.View  `json:"access_token"`
		IDToken     *jwtview.View `json:"id_token"`
	} `json:"ehr"`
	Payer struct {
		FHIRBase    string        `json:"fhir_base"`
		AccessToken *jwtview.View `json:"access_token"`
	} `json:"payer"`
	Signer struct {
		KeyID   string `json:"kid"`
		Alg     string `json:"alg"`
		JWKSURI string `json:"jwks_uri"`
	} `json:"signer"`
	PayerAnswers []session.PayerAnswer `json:"payer_answers"`
}

func (s *Server) apiSecurity(c *gin.Context) {
	sess := sessionOf(c)
	l := sess.Launch()
	var v securityView
	v.EHR.Issuer, v.EHR.ClientID, v.EHR.ExpiresAt, v.EHR.Scope = l.Issuer, l.ClientID, l.ExpiresAt, l.Scope
	v.EHR.Verified = "by the signer at launch: signature (EHR jwks_uri), typ at+jwt, iss, aud = " + l.Issuer + ", client_id, exp; id_token: RS256, iss, aud, exp, nonce"
	v.EHR.AccessToken, v.EHR.IDToken = l.AccessTokenView, l.IDTokenView
	v.Payer.FHIRBase = s.payer.FHIRBase()
	v.Payer.AccessToken = sess.PayerTokenView()
	v.Signer.KeyID, v.Signer.Alg = s.signer.KeyID(), s.cfg.SigningKey.Alg
	v.Signer.JWKSURI = s.cfg.PublicURL + jwksPath
	v.PayerAnswers = sess.PayerAnswers()
	if v.PayerAnswers == nil {
		v.PayerAnswers = []session.PayerAnswer{}
	}
	c.JSON(http.StatusOK, v)
}

// readBody reads a capped request body, answering 413 past the cap.
func (s *Server) readBody(c *gin.Context) ([]byte, bool) {
	if httpserver.DeclaredTooLarge(c) {
		s.writeAPIError(c, apiError{HTTP: http.StatusRequestEntityTooLarge, Code: "bad_request", Source: "app", Message: "The request body is too large."})
		return nil, false
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		if httpserver.IsTooLarge(err) {
			s.writeAPIError(c, apiError{HTTP: http.StatusRequestEntityTooLarge, Code: "bad_request", Source: "app", Message: "The request body is too large."})
		} else {
			s.writeAPIError(c, apiError{HTTP: http.StatusBadRequest, Code: "bad_request", Source: "app", Message: "The request body could not be read."})
		}
		return nil, false
	}
	return body, true
}
