package server

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"dtrsandbox/smartapp/internal/launch"
	"dtrsandbox/smartapp/internal/signer"
)

func (s *Server) render(c *gin.Context, name string, data any) {
	c.Header("Cache-Control", "no-store")
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Status(http.StatusOK)
	if err := s.tmpl.ExecuteTemplate(c.Writer, name, data); err != nil {
		s.log.Error("render", "template", name, "err", err)
	}
}

// home lists the EHRs the app knows, each with a standalone-launch button.
func (s *Server) home(c *gin.Context) {
	s.render(c, "home.html", struct {
		Title string
		EHRs  []signer.EHR
		JWKS  string
	}{"DTR SMART app", s.launcher.EHRs(), s.cfg.PublicURL + jwksPath})
}

// ehrLaunch handles GET /launch?iss=&launch= (SMART App Launch 2.2 "EHR
// launch"): parse, validate against the configured EHRs, begin, redirect.
func (s *Server) ehrLaunch(c *gin.Context) {
	iss, launchID := c.Query("iss"), c.Query("launch")
	switch {
	case iss == "":
		s.errorPage(c, http.StatusBadRequest, "Launch incomplete", "The EHR launch did not say which EHR it came from (no iss parameter).", "", "/")
		return
	case launchID == "":
		s.errorPage(c, http.StatusBadRequest, "Launch incomplete",
			"The EHR launch has no launch parameter.", "To sign in without an EHR launch, use a standalone launch from the home page.", "/")
		return
	}
	s.beginLaunch(c, iss, launchID)
}

// standaloneLaunch handles GET /standalone?iss= (SMART App Launch 2.2
// "Standalone launch").
func (s *Server) standaloneLaunch(c *gin.Context) {
	iss := c.Query("iss")
	if iss == "" {
		s.errorPage(c, http.StatusBadRequest, "Choose an EHR", "A standalone launch needs the EHR to sign in at.", "", "/")
		return
	}
	s.beginLaunch(c, iss, "")
}

// beginLaunch creates the pre-authorization session and redirects to the
// EHR's authorization endpoint. A previous session of this browser ends:
// one browser, one launch.
func (s *Server) beginLaunch(c *gin.Context, iss, launchID string) {
	if !s.launcher.Known(iss) {
		// Checked before any network call: never contact, let alone redirect
		// to, an authorization server the app is not registered with.
		s.errorPage(c, http.StatusBadRequest, "Unknown EHR",
			"This app is not registered with the EHR at "+clip(iss, 200)+", so it will not sign in there.",
			"Known EHRs: "+strings.Join(s.issuers(), ", "), "/")
		return
	}
	p, authorizeURL, err := s.launcher.Begin(c.Request.Context(), iss, launchID)
	if err != nil {
		s.launchFailed(c, err)
		return
	}
	if old := s.currentSession(c.Request); old != nil {
		s.sessions.Delete(old.ID())
	}
	sess, err := s.sessions.NewPending(p)
	if err != nil {
		s.errorPage(c, http.StatusServiceUnavailable, "Busy", "The app has too many sign-ins in progress; try again in a minute.", "", "/")
		return
	}
	s.setCookie(c, sess)
	c.Redirect(http.StatusFound, authorizeURL)
}

// callback handles GET /callback: the pending session from the cookie,
// the launch completed and verified, a new authenticated session.
func (s *Server) callback(c *gin.Context) {
	pending := s.currentSession(c.Request)
	var p *launch.Pending
	if pending != nil {
		p = pending.Pending()
	}
	res, err := s.launcher.Complete(c.Request.Context(), p, c.Request.URL.Query())
	if err != nil {
		if pending != nil && p != nil {
			s.sessions.Delete(pending.ID()) // state is single-use
			s.clearCookie(c)
		}
		s.launchFailed(c, err)
		return
	}
	sess, err := s.sessions.Promote(pending, res)
	if err != nil {
		s.log.Error("promote session", "err", err)
		s.errorPage(c, http.StatusServiceUnavailable, "Busy", "The app could not open a session; try again in a minute.", "", "/")
		return
	}
	s.log.Info("launch complete", "iss", res.Issuer, "patient", res.Patient, "standalone", res.Standalone)
	s.setCookie(c, sess)
	c.Redirect(http.StatusSeeOther, "/app")
}

func (s *Server) launchFailed(c *gin.Context, err error) {
	var le *launch.Error
	if errors.As(err, &le) {
		if le.Cause != nil {
			s.log.Warn("launch refused", "title", le.Title, "err", le.Cause)
		}
		s.errorPage(c, le.Status, le.Title, le.Message, "", "/")
		return
	}
	s.log.Error("launch failed", "err", err)
	s.errorPage(c, http.StatusInternalServerError, "Launch failed", "The app could not complete the launch.", "", "/")
}

// appPage serves the form page to an authenticated session; everything
// on it is loaded by app.js from the JSON API.
func (s *Server) appPage(c *gin.Context) {
	sess := s.currentSession(c.Request)
	switch {
	case sess == nil || !sess.Authenticated():
		s.errorPage(c, http.StatusUnauthorized, "Not signed in",
			"Open this app from the EHR (Launch DTR on an order), or start a standalone launch from the home page.", "", "/")
		return
	case sess.Expired(s.now()):
		s.errorPage(c, http.StatusUnauthorized, "EHR session expired",
			"The EHR access token of this session has expired, so the app can no longer read the chart or call the payer.",
			"Relaunch the app from the EHR. Answers you saved as a draft will be offered again; answers typed but not saved are kept in this browser tab.", "/")
		return
	}
	s.render(c, "app.html", struct{ Title string }{"DTR documentation"})
}

// logout ends the session, expired or not, on a request carrying its CSRF
// token.
func (s *Server) logout(c *gin.Context) {
	sess := s.currentSession(c.Request)
	if sess == nil {
		s.clearCookie(c)
		c.JSON(http.StatusOK, gin.H{"status": "signed out"})
		return
	}
	c.Set(sessionKey, sess)
	s.requireCSRF(c)
	if c.IsAborted() {
		return
	}
	s.sessions.Delete(sess.ID())
	s.clearCookie(c)
	c.JSON(http.StatusOK, gin.H{"status": "signed out"})
}

func (s *Server) issuers() []string {
	var out []string
	for _, e := range s.launcher.EHRs() {
		out = append(out, e.Issuer)
	}
	return out
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
