package server

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"dtrsandbox/shared/httpserver"
	"dtrsandbox/web"
)

// maxAPIBody bounds a JSON request body (a QuestionnaireResponse).
const maxAPIBody = 2 << 20

// jwksPath serves the app's public key set; {PublicURL}{jwksPath} is its
// jwks_uri at the EHR and at the payer.
const jwksPath = "/.well-known/jwks.json"

// routes is the app's whole HTTP surface.
//
// Pages (HTML, Content-Security-Policy without inline scripts):
//
//	GET  /                     home: the known EHRs, each with a standalone-launch button
//	GET  /launch?iss=&launch=  EHR launch (SMART App Launch 2.2): iss must be a configured
//	                           EHR; redirects to its authorization endpoint with PKCE S256,
//	                           state, nonce, aud=iss and launch
//	GET  /standalone?iss=      standalone launch at a configured EHR (adds launch/patient)
//	GET  /callback?code=&state= finishes the launch: state check, code exchange with
//	                           private_key_jwt, id_token and access token verification;
//	                           303 to /app with a new session cookie
//	GET  /app                  the form page (LHC-Forms), Save draft / Submit, the
//	                           documents at the payer and the security panel
//	POST /logout               ends the session (X-CSRF-Token; also an expired one)
//	GET  /.well-known/jwks.json the app's public key (ES384), its jwks_uri at EHR and payer
//	GET  /healthz              200 {"status":"ok"}
//	GET  /static/...           CSS, the app's JS, vendored LHC-Forms
//
// JSON API, same origin, authenticated by the session cookie (HttpOnly,
// SameSite=Lax, Secure under TLS). POSTs also need the header
// X-CSRF-Token: <csrf_token from GET /api/context> and a JSON Content-Type.
// No token ever appears in an answer. A headless client (the sandbox demo)
// drives the whole flow with a cookie jar: POST {ehr}/api/launch, GET the
// launch_url it answers (follow redirects through the EHR's authorize
// endpoint to /callback and /app), then:
//
//	GET  /api/context        {"issuer","patient":{id,reference,name,birthDate,gender},
//	                          "user":{reference,name},"order":{reference,absoluteReference,
//	                          resourceType,summary,...}|null,"coverage":{...}|null,
//	                          "need_patient_banner","standalone","expires_at","csrf_token"}
//	GET  /api/orders         standalone launch without an order: the patient's orders
//	POST /api/order          {"reference":"DeviceRequest/x"}: pick the order (standalone only)
//	GET  /api/questionnaire  {"questionnaire":<Questionnaire from $questionnaire-package>,
//	                          "draft":{"id","versionId","date","questionnaireResponse"}|null}
//	POST /api/draft          body: QuestionnaireResponse; saves it (status in-progress) as
//	                          the order's draft DocumentReference at the payer (created,
//	                          or updated with If-Match) -> {"id","versionId","created","savedAt"}
//	POST /api/submit         body: QuestionnaireResponse; final DocumentReference at the
//	                          payer replacing the draft, draft superseded, completed
//	                          QuestionnaireResponse written back to the EHR ->
//	                          {"documentId","documentVersionId","supersededDraftId",
//	                          "ehrQuestionnaireResponseId"}
//	GET  /api/documents      [{"id","versionId","status","docStatus","date","description",
//	                          "replaces","answersStatus"}] for this order at the payer
//	GET  /api/security       decoded (header, payload) EHR access token, id_token and payer
//	                          token, the signer's key id, and the last payer answers
//
// Errors of the JSON API: {"error": "<readable>", "code": "<machine code>",
// "status": <upstream HTTP status, 0 if unreachable>, "source": "payer"|"ehr"|"app",
// "outcome": <the upstream OperationOutcome, if any>}, with 400/401/403/404/409/413/429/431
// for the caller's or the session's state and 502 for an upstream failure. Codes:
// no_session, session_expired (relaunch from the EHR), csrf, bad_request,
// payer_error, payer_unreachable, payer_rate_limited, draft_conflict, ehr_error,
// ehr_unreachable, submit_incomplete (with "done": the steps that held), internal.
func (s *Server) routes() http.Handler {
	e := httpserver.NewEngine()
	e.Use(
		httpserver.Recover(s.log, s.writePanic),
		httpserver.AccessLog(s.log),
		httpserver.SecurityHeaders(),
		s.contentSecurityPolicy(),
		httpserver.HeaderLimit(httpserver.MaxHeaderBytes, s.headerTooLarge),
	)
	e.NoRoute(s.notFound)
	e.NoMethod(s.methodNotAllowed)

	e.GET("/healthz", httpserver.Healthz(nil))
	e.GET(jwksPath, gin.WrapH(s.signer.JWKSHandler()))
	e.StaticFS("/static", http.FS(web.Static()))

	e.GET("/", s.home)
	e.GET("/launch", s.ehrLaunch)
	e.GET("/standalone", s.standaloneLaunch)
	e.GET("/callback", s.callback)
	e.GET("/app", s.appPage)
	e.POST("/logout", s.logout)

	api := e.Group("/api", httpserver.BodyLimit(maxAPIBody), noStore, s.requireSession)
	api.GET("/context", s.apiContext)
	api.GET("/orders", s.apiOrders)
	api.POST("/order", s.requireCSRF, s.apiSelectOrder)
	api.GET("/questionnaire", s.apiQuestionnaire)
	api.POST("/draft", s.requireCSRF, s.apiDraft)
	api.POST("/submit", s.requireCSRF, s.apiSubmit)
	api.GET("/documents", s.apiDocuments)
	api.GET("/security", s.apiSecurity)
	return e
}
