package server

import (
	"mime"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"dtrsandbox/smartapp/internal/session"
)

// csp is the pages' Content-Security-Policy: scripts only from this origin
// (no inline script anywhere), inline styles allowed because the LHC-Forms
// web component injects <style> elements, no framing.
const csp = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"

func (s *Server) contentSecurityPolicy() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Header("Content-Security-Policy", csp)
		c.Next()
	}
}

func noStore(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Next()
}

const sessionKey = "smartapp.session"

// sessionExpired answers an API call of a session whose EHR access token
// has expired.
var sessionExpired = apiError{HTTP: http.StatusUnauthorized, Code: "session_expired", Source: "app",
	Message: "The EHR session has expired. Relaunch the app from the EHR to continue; answers not saved yet are kept in this browser tab."}

// currentSession is the session named by the request's cookie, or nil.
func (s *Server) currentSession(r *http.Request) *session.Session {
	ck, err := r.Cookie(s.cookie)
	if err != nil {
		return nil
	}
	return s.sessions.Get(ck.Value)
}

// setCookie hands the browser a session id: HttpOnly (no script reads it),
// SameSite=Lax (sent on the top-level redirect back from the EHR, not on
// cross-site subrequests), Secure under TLS, path /.
func (s *Server) setCookie(c *gin.Context, sess *session.Session) {
	maxAge := int(time.Until(sess.ExpiresAt()).Seconds()) + int(session.DefaultGrace.Seconds())
	if sess.Pending() != nil {
		maxAge = int(time.Until(sess.ExpiresAt()).Seconds())
	}
	http.SetCookie(c.Writer, &http.Cookie{
		Name: s.cookie, Value: sess.ID(), Path: "/", MaxAge: max(maxAge, 60),
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
}

func (s *Server) clearCookie(c *gin.Context) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name: s.cookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
}

// requireSession admits API requests of an authenticated session whose EHR
// token has not expired.
func (s *Server) requireSession(c *gin.Context) {
	sess := s.currentSession(c.Request)
	switch {
	case sess == nil || !sess.Authenticated():
		s.writeAPIError(c, apiError{HTTP: http.StatusUnauthorized, Code: "no_session", Source: "app",
			Message: "Not signed in: launch the app from the EHR."})
		c.Abort()
		return
	case sess.Expired(s.now()):
		s.writeAPIError(c, sessionExpired)
		c.Abort()
		return
	}
	c.Set(sessionKey, sess)
	c.Next()
}

func sessionOf(c *gin.Context) *session.Session {
	v, _ := c.Get(sessionKey)
	sess, _ := v.(*session.Session)
	return sess
}

// requireCSRF guards state-changing requests: the X-CSRF-Token header must
// carry the session's token (a cross-site page cannot read it), the body
// must be JSON (a cross-site form cannot send that without a CORS
// preflight, which the app never grants), and an Origin header, when sent,
// must be the app's own.
func (s *Server) requireCSRF(c *gin.Context) {
	sess := sessionOf(c)
	if o := c.GetHeader("Origin"); o != "" && o != s.origin {
		s.writeAPIError(c, apiError{HTTP: http.StatusForbidden, Code: "csrf", Source: "app", Message: "Cross-origin requests are not accepted."})
		c.Abort()
		return
	}
	if sess == nil || !sess.CheckCSRF(c.GetHeader("X-CSRF-Token")) {
		s.writeAPIError(c, apiError{HTTP: http.StatusForbidden, Code: "csrf", Source: "app", Message: "Missing or wrong X-CSRF-Token header; reload the page."})
		c.Abort()
		return
	}
	if c.Request.Method == http.MethodPost && c.Request.ContentLength != 0 {
		mt, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
		if mt != "application/json" && mt != "application/fhir+json" {
			s.writeAPIError(c, apiError{HTTP: http.StatusUnsupportedMediaType, Code: "bad_request", Source: "app", Message: "Send JSON (application/json or application/fhir+json)."})
			c.Abort()
			return
		}
	}
	c.Next()
}
