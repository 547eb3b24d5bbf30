package authz

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"dtrsandbox/ehr/internal/directory"
	"dtrsandbox/ehr/internal/oauthstore"
	"dtrsandbox/shared/oautherr"
	"dtrsandbox/shared/smart"
)

// step is what an authorization request waits for.
type step int

const (
	stepLogin step = iota + 1
	stepPatient
	stepConsent
	stepDone
)

// Form actions of the interaction pages.
const (
	actionLogin   = "login"
	actionPatient = "patient"
	actionApprove = "approve"
	actionDeny    = "deny"
)

// bindingCookie names the cookie that binds a pending interaction to the
// browser that started it; the __Host- prefix (Secure, Path=/, no Domain)
// is used when TLS is on.
func (s *Server) bindingCookie() string {
	if s.secureCookies {
		return "__Host-ehr_authz"
	}
	return "ehr_authz"
}

// pending is an interaction being worked on, with the raw id and CSRF token
// the current page carries.
type pending struct {
	*interaction
	id, csrf string
	client   *oauthstore.Client
	scopes   smart.Scopes
}

// nextStep decides what the request still needs: a user (standalone
// login), a patient (standalone with launch/patient), consent (once per
// user and client unless EHR-approved, or when prompt=consent).
func (s *Server) nextStep(ctx context.Context, p *pending) (step, error) {
	if p.subject == "" {
		return stepLogin, nil
	}
	if p.launch == nil && p.scopes.Has(smart.ScopeLaunchPatient) && p.patient == "" {
		return stepPatient, nil
	}
	if p.consented || (p.client.EHRApproved && !p.forceConsent) {
		return stepDone, nil
	}
	if !p.forceConsent {
		ok, err := s.consents.covers(ctx, userRef(p.subject), p.client.ID, p.scopes.Strings())
		if err != nil {
			return 0, err
		}
		if ok {
			return stepDone, nil
		}
	}
	return stepConsent, nil
}

// advance moves a request forward: issue the code when nothing is left to
// ask, otherwise show the next page.
func (s *Server) advance(c *gin.Context, ar *authorizeRequest, it *interaction) {
	p := &pending{interaction: it, client: ar.client, scopes: ar.scopes}
	s.advancePending(c, p, true, ar.prompt)
}

// advancePending is advance for a pending interaction. fresh is true on the
// first call, from the authorization endpoint (the interaction is not stored
// yet); the interaction pages pass false.
func (s *Server) advancePending(c *gin.Context, p *pending, fresh bool, prompt []string) {
	ctx := c.Request.Context()
	state := p.params.Get("state")
	redirectURI := p.params.Get("redirect_uri")
	st, err := s.nextStep(ctx, p)
	if err != nil {
		s.redirectError(c, redirectURI, state, oautherr.ServerError("The request could not be completed.").WithCause(err))
		return
	}
	if st == stepDone {
		if !fresh {
			if err := s.interactions.finish(ctx, p.interaction); err != nil {
				s.interactionGone(c, err)
				return
			}
		}
		s.issueCode(c, p)
		return
	}
	if slices.Contains(prompt, "none") {
		code := map[step]string{stepLogin: "login_required", stepPatient: "interaction_required", stepConsent: "consent_required"}[st]
		s.redirectError(c, redirectURI, state, oautherr.New(code, http.StatusBadRequest, "prompt=none, but the user must act first."))
		return
	}
	if fresh {
		if err := s.persist(c, p); err != nil {
			s.redirectError(c, redirectURI, state, oautherr.ServerError("The request could not be completed.").WithCause(err))
			return
		}
	}
	s.renderStep(c, p, st)
}

// persist stores a new interaction, binding it to the browser by cookie.
func (s *Server) persist(c *gin.Context, p *pending) error {
	var err error
	if p.id, err = randomString(32); err != nil {
		return err
	}
	if p.csrf, err = randomString(32); err != nil {
		return err
	}
	binding, cerr := c.Cookie(s.bindingCookie())
	if cerr != nil || len(binding) != 43 {
		if binding, err = randomString(32); err != nil {
			return err
		}
	}
	p.idHash, p.csrfHash, p.bindingHash = hashSecret(p.id), hashSecret(p.csrf), hashSecret(binding)
	if err := s.interactions.create(c.Request.Context(), p.interaction); err != nil {
		return err
	}
	http.SetCookie(c.Writer, &http.Cookie{
		Name:     s.bindingCookie(),
		Value:    binding,
		Path:     "/",
		MaxAge:   int(InteractionTTL / time.Second),
		HttpOnly: true,
		Secure:   s.secureCookies,
		SameSite: http.SameSiteLaxMode,
	})
	return nil
}

// Interact serves POST /oauth/authorize/interact: the login, patient
// picker and consent forms. The form must carry the interaction id and its
// CSRF token, and the browser the binding cookie of the same interaction;
// each action is accepted only at its own step.
func (s *Server) Interact(c *gin.Context) {
	ctx := c.Request.Context()
	form, e := readPostForm(c)
	if e != nil {
		s.errorPage(c, e.Status, "The form could not be read", e)
		return
	}
	it, err := s.interactions.load(ctx, form.Get("tx"))
	if err != nil {
		s.interactionGone(c, err)
		return
	}
	binding, _ := c.Cookie(s.bindingCookie())
	if !sameHash(binding, it.bindingHash) || !sameHash(form.Get("csrf"), it.csrfHash) {
		s.errorPage(c, http.StatusForbidden, "This form cannot be accepted",
			oautherr.AccessDenied("The form does not belong to this browser's sign-in. Return to the app and start again."))
		return
	}
	client, err := s.store.Client(ctx, it.clientID)
	if err != nil {
		s.errorPage(c, http.StatusBadRequest, "The app is no longer registered", oautherr.InvalidRequest("The client is no longer registered.").WithCause(err))
		return
	}
	scopes, _ := smart.ParseScopes(it.params.Get("scope"))
	p := &pending{interaction: it, id: form.Get("tx"), csrf: form.Get("csrf"), client: client, scopes: scopes}
	state, redirectURI := it.params.Get("state"), it.params.Get("redirect_uri")

	current, err := s.nextStep(ctx, p)
	if err != nil {
		s.errorPage(c, http.StatusInternalServerError, "Something went wrong", oautherr.ServerError("The request could not be completed.").WithCause(err))
		return
	}
	switch action := form.Get("action"); {
	case action == actionDeny:
		if err := s.interactions.finish(ctx, it); err != nil {
			s.interactionGone(c, err)
			return
		}
		s.redirectError(c, redirectURI, state, oautherr.AccessDenied("The user denied the request."))
		return
	case action == actionLogin && current == stepLogin && it.launch == nil:
		e = s.applyLogin(ctx, p, form.Get("practitioner"))
	case action == actionPatient && current == stepPatient:
		e = s.applyPatient(ctx, p, form.Get("patient"))
	case action == actionApprove && current == stepConsent:
		e = s.applyConsent(ctx, p)
	default:
		s.errorPage(c, http.StatusConflict, "This step is already done",
			oautherr.InvalidRequest("The form does not match the current step of the sign-in (was it submitted twice?)."))
		return
	}
	if e != nil {
		if e.Status >= 500 || errors.Is(e, errInteractionGone) {
			s.interactionGone(c, e)
			return
		}
		// A bad choice: show the same page again with the message.
		s.renderStepWithError(c, p, current, e.Description)
		return
	}
	s.advancePending(c, p, false, nil)
}

func (s *Server) applyLogin(ctx context.Context, p *pending, practitioner string) *oautherr.Error {
	if e := s.mustExist(ctx, "Practitioner", practitioner); e != nil {
		return e
	}
	p.subject = practitioner
	p.authTime = s.now().UTC()
	return s.saveProgress(ctx, p)
}

func (s *Server) applyPatient(ctx context.Context, p *pending, patient string) *oautherr.Error {
	if e := s.mustExist(ctx, "Patient", patient); e != nil {
		return e
	}
	p.patient = patient
	return s.saveProgress(ctx, p)
}

func (s *Server) applyConsent(ctx context.Context, p *pending) *oautherr.Error {
	if err := s.consents.record(ctx, userRef(p.subject), p.client.ID, p.scopes.Strings()); err != nil {
		return oautherr.ServerError("The consent could not be recorded.").WithCause(err)
	}
	p.consented = true
	return s.saveProgress(ctx, p)
}

func (s *Server) saveProgress(ctx context.Context, p *pending) *oautherr.Error {
	if err := s.interactions.update(ctx, p.interaction); err != nil {
		if errors.Is(err, errInteractionGone) {
			return oautherr.InvalidRequest("This sign-in has expired or was already completed.").WithCause(err)
		}
		return oautherr.ServerError("The sign-in could not be saved.").WithCause(err)
	}
	return nil
}

func (s *Server) mustExist(ctx context.Context, resourceType, id string) *oautherr.Error {
	if id == "" {
		return oautherr.InvalidRequest("Choose one.")
	}
	ok, err := s.dir.Exists(ctx, resourceType, id)
	switch {
	case err != nil:
		return oautherr.ServerError("The EHR records could not be read.").WithCause(err)
	case !ok:
		return oautherr.InvalidRequest("That choice is not in this EHR.")
	}
	return nil
}

func (s *Server) interactionGone(c *gin.Context, err error) {
	s.errorPage(c, http.StatusBadRequest, "This sign-in has ended",
		oautherr.InvalidRequest("This sign-in has expired or was already completed. Return to the app and start again.").WithCause(err))
}

// issueCode lets fosite re-validate the stored request and issue the code
// with the grant decided here, then redirects to the client.
func (s *Server) issueCode(c *gin.Context, p *pending) {
	ctx := c.Request.Context()
	state, redirectURI := p.params.Get("state"), p.params.Get("redirect_uri")
	synthetic, err := http.NewRequestWithContext(ctx, http.MethodGet, s.urls.Authorize+"?"+p.params.Encode(), nil)
	if err != nil {
		s.redirectError(c, redirectURI, state, oautherr.ServerError("The request could not be completed.").WithCause(err))
		return
	}
	far, err := s.provider.NewAuthorizeRequest(ctx, synthetic)
	if err != nil {
		s.redirectError(c, redirectURI, state, fromFosite(err))
		return
	}
	granted := grantedScopes(p)
	for _, sc := range granted {
		far.GrantScope(sc)
	}
	resp, err := s.provider.NewAuthorizeResponse(ctx, far, s.grantSession(p, granted))
	if err != nil {
		s.redirectError(c, redirectURI, state, fromFosite(err))
		return
	}
	s.log.Info("authorization code issued", "client_id", p.client.ID, "subject", userRef(p.subject),
		"patient", p.patient, "mode", modeOf(p), "scope", granted)
	s.provider.WriteAuthorizeResponse(ctx, c.Writer, far, resp)
}

// grantedScopes decides the grant: each requested scope is granted when the
// EHR can honour it in this launch. Context scopes need their context (a
// launch, a patient, an encounter); patient/ scopes need a patient;
// system/ scopes belong to client_credentials only.
func grantedScopes(p *pending) []string {
	var out []string
	for _, sc := range p.scopes.Strings() {
		ok := true
		switch {
		case sc == smart.ScopeLaunch:
			ok = p.launch != nil
		case sc == smart.ScopeLaunchPatient:
			ok = p.patient != ""
		case sc == smart.ScopeLaunchEncounter:
			ok = p.launch != nil && p.launch.Encounter != ""
		case smart.IsClinical(sc):
			parsed, err := smart.ParseScope(sc)
			ok = err == nil && (parsed.Level == smart.LevelUser || parsed.Level == smart.LevelPatient && p.patient != "")
		}
		if ok {
			out = append(out, sc)
		}
	}
	return out
}

// grantSession builds the session stored with the code (and every token
// issued from it).
func (s *Server) grantSession(p *pending, granted []string) *Session {
	now := s.now().UTC()
	sub := userRef(p.subject)
	fhirUser := s.urls.FHIRBase + "/" + sub
	claims := &jwt.IDTokenClaims{
		Subject:     sub,
		Issuer:      s.urls.FHIRBase,
		AuthTime:    p.authTime.Truncate(time.Second),
		RequestedAt: p.createdAt.Truncate(time.Second),
		Extra:       map[string]interface{}{},
	}
	if slices.Contains(granted, smart.ScopeFHIRUser) {
		claims.Extra["fhirUser"] = fhirUser
	}
	sess := &Session{
		DefaultSession: openid.DefaultSession{
			Claims:   claims,
			Headers:  &jwt.Headers{Extra: map[string]interface{}{"kid": s.keys.IDToken.KID}},
			Subject:  sub,
			Username: p.subject,
		},
		SMART: LaunchContext{
			Mode:              modeOf(p),
			Patient:           p.patient,
			FHIRUser:          fhirUser,
			NeedPatientBanner: p.launch == nil,
		},
		GrantedAt: now,
		Offline:   slices.Contains(granted, smart.ScopeOfflineAccess),
	}
	if p.launch != nil {
		sess.SMART.Encounter = p.launch.Encounter
		sess.SMART.FHIRContext = p.launch.FHIRContext
	}
	return sess
}

func modeOf(p *pending) string {
	if p.launch != nil {
		return ModeEHR
	}
	return ModeStandalone
}

// userRef is the subject of a practitioner's tokens: "Practitioner/<id>".
func userRef(practitionerID string) string { return "Practitioner/" + practitionerID }

// --- pages ------------------------------------------------------------------

// scopeLine is one scope on the consent page.
type scopeLine struct {
	Scope, Description string
}

// pageData is what the authz-*.html templates see.
type pageData struct {
	Title         string
	Action        string
	TX, CSRF      string
	ClientName    string
	ClientID      string
	Error         string
	Practitioners []directory.Person
	Patients      []directory.Person
	Scopes        []scopeLine
	User          string
	Patient       string
	EHRLaunch     bool
}

func (s *Server) renderStep(c *gin.Context, p *pending, st step) { s.renderStepWithError(c, p, st, "") }

func (s *Server) renderStepWithError(c *gin.Context, p *pending, st step, message string) {
	ctx := c.Request.Context()
	d := pageData{
		Action:     s.urls.InteractPath,
		TX:         p.id,
		CSRF:       p.csrf,
		ClientName: p.client.Name,
		ClientID:   p.client.ID,
		Error:      message,
		EHRLaunch:  p.launch != nil,
	}
	if d.ClientName == "" {
		d.ClientName = p.client.ID
	}
	var name string
	var err error
	switch st {
	case stepLogin:
		d.Title, name = "Sign in to the EHR", "authz-login.html"
		d.Practitioners, err = s.dir.Practitioners(ctx)
	case stepPatient:
		d.Title, name = "Choose a patient", "authz-patient.html"
		d.Patients, err = s.dir.Patients(ctx)
		d.User = s.displayName(ctx, s.dir.Practitioners, p.subject)
	case stepConsent:
		d.Title, name = "Allow access?", "authz-consent.html"
		d.User = s.displayName(ctx, s.dir.Practitioners, p.subject)
		if p.patient != "" {
			d.Patient = s.displayName(ctx, s.dir.Patients, p.patient)
		}
		for _, sc := range p.scopes.Strings() {
			d.Scopes = append(d.Scopes, scopeLine{Scope: sc, Description: describeScope(sc)})
		}
	}
	if err != nil {
		s.errorPage(c, http.StatusInternalServerError, "Something went wrong", oautherr.ServerError("The EHR records could not be read.").WithCause(err))
		return
	}
	status := http.StatusOK
	if message != "" {
		status = http.StatusBadRequest
	}
	s.renderPage(c, status, name, d, p.params.Get("redirect_uri"))
}

func (s *Server) displayName(ctx context.Context, list func(context.Context) ([]directory.Person, error), id string) string {
	people, err := list(ctx)
	if err == nil {
		for _, person := range people {
			if person.ID == id {
				return person.Name
			}
		}
	}
	return id
}

// renderPage writes a page with headers that keep it out of frames and
// caches and let its forms post only here (and, after the redirect that
// follows a form, to the client's redirect URI).
func (s *Server) renderPage(c *gin.Context, status int, name string, data any, redirectURI string) {
	var buf bytes.Buffer
	if err := s.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.Error("template failed", "template", name, "error", err)
		c.Header("Content-Type", "text/plain; charset=utf-8")
		c.String(http.StatusInternalServerError, "The page could not be shown.")
		return
	}
	formAction := "'self'"
	if u, err := url.Parse(redirectURI); err == nil && u.Scheme != "" && u.Host != "" {
		formAction += " " + u.Scheme + "://" + u.Host
	}
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// errorPage shows a readable error (never a stack trace); the cause goes to
// the log only.
func (s *Server) errorPage(c *gin.Context, status int, title string, e *oautherr.Error) {
	logOAuthError(s.log, "authorization page error", e)
	msg := e.Description
	if e.Status >= 500 {
		msg = "The EHR could not complete the request. Try again later."
	}
	s.renderPage(c, status, "error.html", map[string]string{
		"Title":   title,
		"Message": msg,
		"Detail":  "Error code: " + e.Code,
	}, "")
}

// describeScope explains a scope on the consent page.
func describeScope(sc string) string {
	switch sc {
	case smart.ScopeOpenID:
		return "Confirm who you are"
	case smart.ScopeFHIRUser:
		return "Know which practitioner you are"
	case smart.ScopeProfile:
		return "Read your profile"
	case smart.ScopeLaunch:
		return "Use the context the EHR launched it in"
	case smart.ScopeLaunchPatient:
		return "Know which patient is selected"
	case smart.ScopeLaunchEncounter:
		return "Know which encounter is selected"
	case smart.ScopeOfflineAccess:
		return "Keep access when you are not using the app"
	case smart.ScopeOnlineAccess:
		return "Keep access while you are using the app"
	}
	sc2, err := smart.ParseScope(sc)
	if err != nil {
		return sc
	}
	whose := map[smart.Level]string{
		smart.LevelPatient: "of the selected patient",
		smart.LevelUser:    "that you can see",
		smart.LevelSystem:  "of every patient",
	}[sc2.Level]
	what := sc2.Resource + " records"
	if sc2.Resource == "*" {
		what = "all records"
	}
	var verbs []string
	for _, v := range []struct {
		p    smart.Perm
		verb string
	}{{smart.PermRead, "read"}, {smart.PermSearch, "search"}, {smart.PermCreate, "create"}, {smart.PermUpdate, "update"}, {smart.PermDelete, "delete"}} {
		if sc2.Perms.Has(v.p) {
			verbs = append(verbs, v.verb)
		}
	}
	out := ""
	for i, v := range verbs {
		switch {
		case i == 0:
			out = v
		case i == len(verbs)-1:
			out += " and " + v
		default:
			out += ", " + v
		}
	}
	line := capitalize(out) + " " + what + " " + whose
	if sc2.Query != "" {
		line += " (only those matching " + sc2.Query + ")"
	}
	return line
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
