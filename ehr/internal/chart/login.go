package chart

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"dtrsandbox/ehr/internal/directory"
)

type loginChoice struct {
	directory.Person
	Checked bool
}

type loginPage struct {
	page
	Practitioners []loginChoice
}

// LoginPage is GET /login: the mock login, a choice of clinician. It
// starts an anonymous session whose CSRF token protects the form.
func (h *Handler) LoginPage(c *gin.Context) {
	sess, ok := h.sessions.current(c)
	if ok && sess.Practitioner != "" {
		c.Redirect(http.StatusSeeOther, "/")
		return
	}
	if !ok {
		sess = h.sessions.newSession("")
		if err := h.sessions.save(c, sess); err != nil {
			h.failInternal(c, "session", err)
			return
		}
	}
	h.renderLogin(c, http.StatusOK, sess)
}

func (h *Handler) renderLogin(c *gin.Context, status int, sess session) {
	pracs, err := h.records.Practitioners(c.Request.Context())
	if err != nil {
		h.failInternal(c, "list practitioners", err)
		return
	}
	data := loginPage{page: page{Title: "Sign in · Riverbend EHR", CSRF: sess.CSRF}}
	for i, p := range pracs {
		data.Practitioners = append(data.Practitioners, loginChoice{Person: p, Checked: i == 0})
	}
	h.render(c, status, "chart-login.html", data)
}

// Login is POST /login: checks the CSRF token of the anonymous session and
// that the chosen practitioner exists, then replaces the session by a new
// one (new CSRF token: no session fixation) and goes to the patient list.
func (h *Handler) Login(c *gin.Context) {
	sess, ok := h.sessions.current(c)
	if !ok || !validPost(c, sess) {
		h.renderError(c, http.StatusForbidden, "Sign-in expired", "The sign-in form has expired. Open the sign-in page again.", "/login")
		return
	}
	user, err := h.practitioner(c.Request.Context(), c.PostForm("practitioner"))
	if err != nil {
		h.failInternal(c, "load practitioner", err)
		return
	}
	if user == nil {
		h.renderError(c, http.StatusBadRequest, "Choose a clinician", "Choose one of the listed clinicians to sign in.", "/login")
		return
	}
	if err := h.sessions.save(c, h.sessions.newSession(user.ID)); err != nil {
		h.failInternal(c, "session", err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/")
}

// Logout is POST /logout (CSRF-checked): clears the session.
func (h *Handler) Logout(c *gin.Context) {
	sess, ok := h.sessions.current(c)
	if ok && !validPost(c, sess) {
		h.renderError(c, http.StatusForbidden, "Sign-out refused", "The sign-out form has expired. Reload the page and try again.", "/")
		return
	}
	h.sessions.clear(c)
	c.Redirect(http.StatusSeeOther, "/login")
}
