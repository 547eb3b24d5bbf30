// Package fhirapi is the EHR's FHIR R4 JSON API (R4 http.html): read and
// search of the clinical resources, create and update of the
// documentation a DTR app writes back (QuestionnaireResponse,
// DocumentReference), and the CapabilityStatement at /metadata. Every
// interaction except /metadata needs a bearer token whose SMART v1 or v2
// scopes permit it (SMART App Launch 2.2, "Scopes and Launch Context");
// patient-level scopes confine every answer to the token's patient.
package fhirapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"dtrsandbox/ehr/internal/records"
	"dtrsandbox/shared/fhir"
)

// DefaultMaxBodyBytes caps request bodies (1 MiB): a QuestionnaireResponse
// or DocumentReference with an embedded one is a few kilobytes.
const DefaultMaxBodyBytes = 1 << 20

// Store is what the API needs of the record store (*records.Store).
type Store interface {
	Read(ctx context.Context, typ, id string) (*records.Record, error)
	Search(ctx context.Context, q *records.Query) (*records.Page, error)
	Create(ctx context.Context, typ string, body []byte) (*records.Record, error)
	Update(ctx context.Context, typ, id string, body []byte, check func(current *records.Record) error) (*records.Record, error)
	Exists(ctx context.Context, typ, id string) (bool, error)
}

var _ Store = (*records.Store)(nil)

// Config wires the handler.
type Config struct {
	// Base is the FHIR base URL as clients see it, e.g.
	// "https://localhost:8441/fhir" (no trailing slash needed).
	Base     string
	Store    Store
	Verifier TokenVerifier
	// SMARTConfigURL is {Base}/.well-known/smart-configuration, named in
	// the CapabilityStatement's security description.
	SMARTConfigURL string
	// OAuth endpoints for the oauth-uris extension of the CapabilityStatement.
	AuthorizeURL, TokenURL, RevokeURL, IntrospectURL, RegisterURL string
	Logger                                                        *slog.Logger
	// MaxBodyBytes caps request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// Handler serves the FHIR API. Its methods are gin handlers; the routes it
// expects (gin path syntax, under the EHR's FHIR base path):
//
//	GET  /fhir/metadata           Metadata (no token)
//	GET  /fhir/:type/:id          Read
//	GET  /fhir/:type              Search
//	POST /fhir/:type/_search      Search (form body, R4 http.html#search)
//	POST /fhir/:type              Create
//	PUT  /fhir/:type/:id          Update
type Handler struct {
	base       string
	store      Store
	verifier   TokenVerifier
	log        *slog.Logger
	maxBody    int64
	capability []byte
	now        func() time.Time
}

// New checks cfg and builds the handler (and its CapabilityStatement).
func New(cfg Config) (*Handler, error) {
	switch {
	case cfg.Base == "":
		return nil, errors.New("fhirapi: Config.Base is required")
	case cfg.Store == nil:
		return nil, errors.New("fhirapi: Config.Store is required")
	case cfg.Verifier == nil:
		return nil, errors.New("fhirapi: Config.Verifier is required")
	}
	h := &Handler{
		base:     strings.TrimSuffix(cfg.Base, "/"),
		store:    cfg.Store,
		verifier: cfg.Verifier,
		log:      cfg.Logger,
		maxBody:  cfg.MaxBodyBytes,
		now:      time.Now,
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	capability, err := buildCapabilityStatement(cfg, h.base, h.now())
	if err != nil {
		return nil, err
	}
	h.capability = capability
	return h, nil
}

// interaction is one FHIR RESTful interaction and the SMART permission it
// needs.
type interaction string

const (
	interactionRead   interaction = "read"
	interactionSearch interaction = "search-type"
	interactionCreate interaction = "create"
	interactionUpdate interaction = "update"
)

// typeInfo says what the API does with a resource type.
type typeInfo struct {
	writable    bool // create and update besides read and search
	compartment bool // in the Patient compartment: patient-level tokens see only their patient's
}

// served lists the resource types of CONTRACT.md ("FHIR R4 JSON API").
// Practitioner and Organization are not in the Patient compartment: a
// patient-level scope on them reaches them all.
var served = map[string]typeInfo{
	"Patient":               {compartment: true},
	"Practitioner":          {},
	"Organization":          {},
	"Coverage":              {compartment: true},
	"Encounter":             {compartment: true},
	"ServiceRequest":        {compartment: true},
	"DeviceRequest":         {compartment: true},
	"MedicationRequest":     {compartment: true},
	"QuestionnaireResponse": {writable: true, compartment: true},
	"DocumentReference":     {writable: true, compartment: true},
}

func (t typeInfo) supports(i interaction) bool {
	switch i {
	case interactionRead, interactionSearch:
		return true
	case interactionCreate, interactionUpdate:
		return t.writable
	}
	return false
}

// fail answers an OperationOutcome and stops the gin chain.
func fail(c *gin.Context, status int, code, diagnostics string) {
	fhir.WriteOutcome(c.Writer, status, code, diagnostics)
	c.Abort()
}

// failInternal logs cause and answers 500 without detail.
func (h *Handler) failInternal(c *gin.Context, what string, cause error) {
	h.log.ErrorContext(c.Request.Context(), "fhir api: "+what, "path", c.Request.URL.Path, "error", cause)
	fail(c, http.StatusInternalServerError, fhir.IssueException, "the server could not complete the request")
}

// fullURL is the absolute URL of a stored resource.
func (h *Handler) fullURL(typ, id string) string { return h.base + "/" + typ + "/" + id }

// writeRecord answers a stored resource with its version headers
// (R4 http.html#read: ETag, Last-Modified).
func writeRecord(c *gin.Context, status int, rec *records.Record) {
	setVersionHeaders(c, rec)
	fhir.WriteResource(c.Writer, status, rec.Body)
}

func setVersionHeaders(c *gin.Context, rec *records.Record) {
	c.Header("ETag", rec.ETag())
	c.Header("Last-Modified", rec.LastUpdated.UTC().Format(http.TimeFormat))
}
