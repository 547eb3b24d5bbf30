package authz

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite"

	"dtrsandbox/shared/oautherr"
)

// Revoke serves POST /oauth/revoke (RFC 7009). The client authenticates as
// at the token endpoint; fosite finds the token (refresh or access, the
// hint deciding which is tried first) and revokes every token of its grant,
// so a revoked access token is inactive at once and a revoked refresh token
// takes its family with it. An unknown token, or one of another client,
// answers 200 as RFC 7009 §2.2 requires.
func (s *Server) Revoke(c *gin.Context) {
	form, e := readPostForm(c)
	if e != nil {
		s.writeOAuth(c, "revocation refused", e)
		return
	}
	if form.Get("token") == "" {
		s.writeOAuth(c, "revocation refused", oautherr.InvalidRequest("token is required."))
		return
	}
	err := s.provider.NewRevocationRequest(c.Request.Context(), c.Request)
	switch {
	case err == nil:
		s.log.Info("token revoked")
	case errors.Is(err, fosite.ErrUnauthorizedClient):
		s.log.Info("revocation: token of another client ignored")
	default:
		s.writeOAuth(c, "revocation refused", fromFosite(err))
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
	c.Status(http.StatusOK)
}
