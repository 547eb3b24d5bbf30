package server

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"dtrsandbox/payer/internal/audit"
	"dtrsandbox/payer/internal/authz"
	"dtrsandbox/payer/internal/gate"
	"dtrsandbox/shared/fhir"
	"dtrsandbox/shared/httpserver"
	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/oautherr"
	"dtrsandbox/shared/smart"
	"dtrsandbox/web"
)

// MaxBody caps every request body (FHIR resources with an attached
// QuestionnaireResponse included).
const MaxBody = 2 << 20

// routes is the payer's whole HTTP surface.
//
//	GET  /healthz                                   readiness
//	GET  /.well-known/jwks.json                     the payer's public keys
//	GET  /fhir/.well-known/smart-configuration      SMART Backend Services discovery
//	GET  /fhir/metadata                             CapabilityStatement (no authentication)
//	POST /oauth/register                            RFC 7591 registration (rate limited per address)
//	POST /oauth/token                               client_credentials token endpoint (rate limited per address)
//	     /fhir/Questionnaire (read, search, $questionnaire-package)   behind the gate, EHR token optional
//	     /fhir/DocumentReference, /fhir/QuestionnaireResponse         behind the gate, EHR token required
//	GET  /fhir/AuditEvent                           admin token only (rate limited per address)
//	GET  /console, /console/{login,documents,audit}, POST /console/{login,logout}   admin console
//	GET  /static/*                                  embedded static files
//
// Everything else is 404 (405 for a known path with another method) as an
// OperationOutcome, or as an OAuth error under /oauth; under /fhir and
// /oauth it is audited like every other request.
func routes(d *deps) http.Handler {
	e := httpserver.NewEngine()
	_ = e.SetTrustedProxies(nil) // ClientIP is the socket peer: X-Forwarded-For cannot pick a rate-limit bucket
	e.Use(
		httpserver.Recover(d.log, func(c *gin.Context) {
			fhir.WriteOutcome(c.Writer, http.StatusInternalServerError, fhir.IssueException, "internal error")
		}),
		httpserver.SecurityHeaders(),
		httpserver.AccessLog(d.log),
		httpserver.HeaderLimit(httpserver.MaxHeaderBytes, headerTooLarge),
		httpserver.BodyLimit(MaxBody),
	)
	e.NoRoute(d.audited(notFound, http.StatusNotFound, "no such resource type or endpoint"))
	e.NoMethod(d.audited(methodNotAllowed, http.StatusMethodNotAllowed, "method not allowed"))

	e.GET("/healthz", httpserver.Healthz(d.ready))
	e.HEAD("/healthz", httpserver.Healthz(d.ready))

	// The payer as an authorization server (SMART Backend Services).
	keys := gin.WrapH(jwks.Handler(d.keys.Set()))
	e.GET(authz.JWKSPath, keys)
	e.HEAD(authz.JWKSPath, keys)
	e.GET(authz.DiscoveryPath, d.authz.Discovery())
	e.HEAD(authz.DiscoveryPath, d.authz.Discovery())
	// Callers of these routes are not authenticated yet, and a client
	// assertion costs a signature check: a per-address rate limit comes
	// first (429 with Retry-After), in buckets of their own.
	g := d.gate
	oauthThrottled := func(c *gin.Context, hint string) {
		oautherr.Write(c.Writer, oautherr.New(oautherr.CodeSlowDown, http.StatusTooManyRequests, "%s", hint))
	}
	e.POST(authz.RegistrationPath, g.Throttle("registration", gate.Rule{Action: "C", Interaction: "register"}, oauthThrottled), d.authz.Register())
	e.POST(authz.TokenPath, g.Throttle("token", gate.Rule{Action: "E", Interaction: "token"}, oauthThrottled), d.authz.Token())

	f := e.Group(authz.FHIRPath)
	f.GET("/metadata", d.metadata)

	// Questionnaires: payer token; the EHR token is optional, and validated,
	// bound and audited when sent.
	q := "Questionnaire"
	f.GET("/"+q, g.Require(gate.Search(q, gate.EHROptional)), d.quest.Search)
	f.POST("/"+q+"/_search", g.Require(gate.Search(q, gate.EHROptional)), d.quest.Search)
	f.POST("/"+q+"/$questionnaire-package", g.Require(gate.Operation(q, smart.PermRead, gate.EHROptional)), d.quest.Package)
	f.GET("/"+q+"/:id", g.Require(gate.Read(q, gate.EHROptional)), d.quest.Read)

	// DTR documents: both tokens, confined to the launch patient.
	for _, t := range []string{"DocumentReference", "QuestionnaireResponse"} {
		f.POST("/"+t, g.Require(gate.Create(t)), d.docs.Create)
		f.GET("/"+t, g.Require(gate.Search(t, gate.EHRRequired)), d.docs.Search)
		f.POST("/"+t+"/_search", g.Require(gate.Search(t, gate.EHRRequired)), d.docs.Search)
		f.GET("/"+t+"/:id", g.Require(gate.Read(t, gate.EHRRequired)), d.docs.Read)
		f.PUT("/"+t+"/:id", g.Require(gate.Update(t)), d.docs.Update)
		f.DELETE("/"+t+"/:id", g.Require(gate.Authenticated(t, "D", "delete")), d.docs.Delete)
		f.PATCH("/"+t+"/:id", g.Require(gate.Authenticated(t, "U", "patch")), d.docs.MethodNotAllowed)
		f.GET("/"+t+"/_history", g.Require(gate.Authenticated(t, "R", "history")), d.docs.History)
		f.GET("/"+t+"/:id/_history", g.Require(gate.Authenticated(t, "R", "history")), d.docs.History)
		f.GET("/"+t+"/:id/_history/:vid", g.Require(gate.Authenticated(t, "R", "history")), d.docs.History)
	}
	f.GET("/_history", g.Require(gate.Authenticated("", "R", "history")), d.docs.History)
	f.POST("", g.Require(gate.Authenticated("", "E", "batch")), d.docs.Batch)
	for _, p := range []string{"/Patient/:id/$everything", "/Patient/$everything"} {
		f.GET(p, g.Require(gate.Authenticated("Patient", "E", "operation")), d.docs.Everything)
		f.POST(p, g.Require(gate.Authenticated("Patient", "E", "operation")), d.docs.Everything)
	}

	// The audit trail, for the admin.
	fhirThrottled := func(c *gin.Context, hint string) {
		fhir.WriteOutcome(c.Writer, http.StatusTooManyRequests, fhir.IssueThrottled, hint)
	}
	f.GET("/AuditEvent", g.Throttle("admin", gate.Rule{ResourceType: "AuditEvent", Action: "R", Interaction: "search-type"}, fhirThrottled),
		audit.AdminOnly(d.adminToken, audit.WithDenialAudit(d.auditStore, d.log)), d.auditH.Search)

	// The admin console (it authenticates itself with the admin token).
	pageThrottled := func(c *gin.Context, hint string) {
		c.Data(http.StatusTooManyRequests, "text/plain; charset=utf-8", []byte(hint))
	}
	e.GET("/console", d.console.Index)
	e.GET("/console/login", d.console.LoginForm)
	e.POST("/console/login", g.Throttle("admin", gate.Rule{Action: "E", Interaction: "login"}, pageThrottled), d.console.Login)
	e.POST("/console/logout", d.console.Logout)
	e.GET("/console/documents", d.console.Documents)
	e.GET("/console/audit", d.console.AuditTrail)

	e.StaticFS("/static", http.FS(web.Static()))
	return e
}

// audited wraps the answer to a request no route serves. Under /fhir and
// /oauth it also writes the AuditEvent that every request gets (CONTRACT.md
// "Audit: every request, allowed or denied"): a probe for a resource type
// the payer does not serve (GET /fhir/Observation, /fhir/Patient/x) is a
// denied request like any other. The gate has not run, so the event names
// no verified caller, only the source address.
func (d *deps) audited(answer gin.HandlerFunc, status int, reason string) gin.HandlerFunc {
	return func(c *gin.Context) {
		p := c.Request.URL.Path
		if strings.HasPrefix(p, "/fhir/") || p == "/fhir" || strings.HasPrefix(p, "/oauth/") {
			ev := audit.Event{
				Action: actionOf(c.Request.Method), Interaction: strings.ToLower(clip(c.Request.Method)),
				Query: c.Request.URL.RawQuery, Outcome: audit.OutcomeMinorFailure, Reason: reason,
				Status: status, SourceIP: c.ClientIP(),
			}
			if err := d.auditStore.Record(c.Request.Context(), nil, ev); err != nil {
				d.log.Error("audit write failed for an unrouted request", "path", httpserver.ScrubPath(p), "err", err)
			}
		}
		answer(c)
	}
}

// actionOf is the AuditEvent.action of an HTTP method (FHIR
// audit-event-action: Create, Read, Update, Delete, Execute).
func actionOf(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead:
		return "R"
	case http.MethodPost:
		return "C"
	case http.MethodPut, http.MethodPatch:
		return "U"
	case http.MethodDelete:
		return "D"
	}
	return "E"
}

// notFound answers an unknown path: an OAuth error under /oauth, an
// OperationOutcome elsewhere.
func notFound(c *gin.Context) {
	if strings.HasPrefix(c.Request.URL.Path, "/oauth/") {
		oautherr.Write(c.Writer, oautherr.New(oautherr.CodeInvalidRequest, http.StatusNotFound, "No such endpoint."))
		return
	}
	fhir.WriteOutcome(c.Writer, http.StatusNotFound, fhir.IssueNotFound, "No such resource or endpoint: "+clip(c.Request.URL.Path))
}

// headerTooLarge answers a request over the header cap with 431
// (httpserver.HeaderLimit): an OAuth error under /oauth, an
// OperationOutcome elsewhere.
func headerTooLarge(c *gin.Context) {
	if strings.HasPrefix(c.Request.URL.Path, "/oauth/") {
		oautherr.Write(c.Writer, oautherr.New(oautherr.CodeInvalidRequest, http.StatusRequestHeaderFieldsTooLarge, "The request header fields are larger than %d bytes.", httpserver.MaxHeaderBytes))
		return
	}
	fhir.WriteOutcome(c.Writer, http.StatusRequestHeaderFieldsTooLarge, fhir.IssueTooLong, "The request header fields are too large.")
}

func methodNotAllowed(c *gin.Context) {
	if strings.HasPrefix(c.Request.URL.Path, "/oauth/") {
		oautherr.Write(c.Writer, oautherr.New(oautherr.CodeInvalidRequest, http.StatusMethodNotAllowed, "Method %s is not allowed here; use POST.", c.Request.Method))
		return
	}
	fhir.WriteOutcome(c.Writer, http.StatusMethodNotAllowed, fhir.IssueNotSupported, "Method "+c.Request.Method+" is not allowed on "+clip(c.Request.URL.Path))
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
