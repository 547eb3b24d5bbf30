package server

import (
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"dtrsandbox/ehr/internal/authz"
	"dtrsandbox/ehr/internal/chart"
	"dtrsandbox/ehr/internal/fhirapi"
	"dtrsandbox/ehr/internal/launch"
	"dtrsandbox/shared/fhir"
	"dtrsandbox/shared/httpserver"
	"dtrsandbox/shared/oautherr"
	"dtrsandbox/web"
)

// Body caps.
const (
	oauthBodyLimit = authz.MaxFormBytes          // OAuth forms and JSON: 64 KiB
	fhirBodyLimit  = fhirapi.DefaultMaxBodyBytes // FHIR resources: 1 MiB
	pageBodyLimit  = 16 << 10                    // chart forms
)

type handlers struct {
	authz     *authz.Server
	launches  *launch.Service
	fhir      *fhirapi.Handler
	chart     *chart.Handler
	templates *template.Template
}

// routes is every route of the EHR.
func routes(s *Server, h handlers, log *slog.Logger) http.Handler {
	e := httpserver.NewEngine()
	e.Use(httpserver.AccessLog(log), httpserver.SecurityHeaders(), httpserver.HeaderLimit(httpserver.MaxHeaderBytes, headerTooLarge))

	// Health.
	e.GET("/healthz", httpserver.Healthz(s.ready.Load))

	// SMART / OpenID Connect discovery and keys (issuer = FHIR base).
	wellKnown := e.Group(authz.PathFHIR+"/.well-known", recoverJSON(log))
	wellKnown.GET("/smart-configuration", h.authz.SMARTConfiguration)
	wellKnown.GET("/openid-configuration", h.authz.OpenIDConfiguration)
	wellKnown.GET("/jwks.json", gin.WrapH(h.authz.JWKS()))

	// OAuth 2.0 endpoints: RFC 6749 §5.2 JSON errors, 64 KiB bodies.
	oauth := e.Group("/oauth", recoverJSON(log), httpserver.BodyLimit(oauthBodyLimit))
	oauth.POST("/token", h.authz.Token)
	oauth.POST("/introspect", h.authz.Introspect)
	oauth.POST("/revoke", h.authz.Revoke)
	oauth.POST("/register", h.authz.Register)

	// Authorization endpoint and its pages: HTML errors.
	pages := e.Group("/oauth/authorize", recoverHTML(log, h.templates), httpserver.BodyLimit(oauthBodyLimit))
	pages.GET("", h.authz.Authorize)
	pages.POST("", h.authz.Authorize)
	pages.POST("/interact", h.authz.Interact)

	// The EHR's "Launch" button as an API (sandbox only; CONTRACT.md).
	api := e.Group("/api", recoverJSON(log), httpserver.BodyLimit(launch.MaxBody))
	api.POST("/launch", h.launches.Handler(log))

	// FHIR R4 API: OperationOutcome errors, 1 MiB bodies.
	fh := e.Group(authz.PathFHIR, recoverFHIR(log), httpserver.BodyLimit(fhirBodyLimit))
	fh.GET("/metadata", h.fhir.Metadata)
	fh.GET("/:type", h.fhir.Search)
	fh.POST("/:type/_search", h.fhir.Search)
	fh.GET("/:type/:id", h.fhir.Read)
	fh.POST("/:type", h.fhir.Create)
	fh.PUT("/:type/:id", h.fhir.Update)

	// Clinician UI.
	ui := e.Group("", recoverHTML(log, h.templates), httpserver.BodyLimit(pageBodyLimit))
	ui.GET("/", h.chart.Patients)
	ui.GET("/login", h.chart.LoginPage)
	ui.POST("/login", h.chart.Login)
	ui.POST("/logout", h.chart.Logout)
	ui.GET("/patients/:id", h.chart.Chart)
	ui.POST("/patients/:id/launch", h.chart.LaunchDTR)
	ui.GET("/patients/:id/responses/:rid", h.chart.Response)

	e.StaticFS("/static", noListing{http.FS(web.Static())})

	e.NoRoute(func(c *gin.Context) {
		if underFHIR(c.Request.URL.Path) {
			fhir.WriteOutcome(c.Writer, http.StatusNotFound, fhir.IssueNotSupported, "this FHIR server has no such endpoint")
			return
		}
		oautherr.Write(c.Writer, oautherr.New("not_found", http.StatusNotFound, "No such endpoint."))
	})
	e.NoMethod(func(c *gin.Context) {
		if underFHIR(c.Request.URL.Path) {
			fhir.WriteOutcome(c.Writer, http.StatusMethodNotAllowed, fhir.IssueNotSupported, "this FHIR server does not support that method at this URL")
			return
		}
		oautherr.Write(c.Writer, oautherr.New(oautherr.CodeInvalidRequest, http.StatusMethodNotAllowed, "Method not allowed."))
	})
	return e
}

// headerTooLarge answers 431 (httpserver.HeaderLimit): an OperationOutcome
// in the FHIR API and an RFC 6749 error elsewhere.
func headerTooLarge(c *gin.Context) {
	if underFHIR(c.Request.URL.Path) {
		fhir.WriteOutcome(c.Writer, http.StatusRequestHeaderFieldsTooLarge, fhir.IssueTooLong, "the request header fields are too large")
		return
	}
	oautherr.Write(c.Writer, oautherr.New(oautherr.CodeInvalidRequest, http.StatusRequestHeaderFieldsTooLarge, "The request header fields are larger than %d bytes.", httpserver.MaxHeaderBytes))
}

// underFHIR reports whether path is in the FHIR API (whose errors are
// OperationOutcomes, CONTRACT.md) rather than its discovery documents.
func underFHIR(path string) bool {
	if path == authz.PathFHIR {
		return true
	}
	rest, ok := strings.CutPrefix(path, authz.PathFHIR+"/")
	return ok && !strings.HasPrefix(rest, ".well-known/")
}

// recoverJSON answers a panic with an RFC 6749 server_error.
func recoverJSON(log *slog.Logger) gin.HandlerFunc {
	return httpserver.Recover(log, func(c *gin.Context) {
		oautherr.Write(c.Writer, oautherr.ServerError("The server could not complete the request."))
	})
}

// recoverFHIR answers a panic with an OperationOutcome.
func recoverFHIR(log *slog.Logger) gin.HandlerFunc {
	return httpserver.Recover(log, func(c *gin.Context) {
		fhir.WriteOutcome(c.Writer, http.StatusInternalServerError, fhir.IssueException, "The server could not complete the request.")
	})
}

// recoverHTML answers a panic with the shared error page.
func recoverHTML(log *slog.Logger, t *template.Template) gin.HandlerFunc {
	return httpserver.Recover(log, func(c *gin.Context) {
		c.Header("Content-Type", "text/html; charset=utf-8")
		c.Status(http.StatusInternalServerError)
		if err := t.ExecuteTemplate(c.Writer, "error.html", map[string]string{
			"Title": "Something went wrong", "Message": "The EHR could not complete the request.",
		}); err != nil {
			log.Error("error page failed", "error", err)
		}
	})
}

// noListing serves files only: a directory is "not found" rather than an
// index page.
type noListing struct{ fs http.FileSystem }

func (n noListing) Open(name string) (http.File, error) {
	f, err := n.fs.Open(name)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || st.IsDir() {
		f.Close()
		return nil, fs.ErrNotExist
	}
	return f, nil
}
