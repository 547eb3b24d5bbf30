package fhirapi

import (
	"encoding/json"
	"net/http"
	"sort"
	"time"

	"github.com/gin-gonic/gin"

	"dtrsandbox/ehr/internal/records"
	"dtrsandbox/shared/fhir"
)

// Metadata is GET [base]/metadata (R4 http.html#capabilities): the
// CapabilityStatement, without authentication, as SMART App Launch 2.2
// ("Conformance") lets clients discover the OAuth endpoints through the
// oauth-uris extension.
func (h *Handler) Metadata(c *gin.Context) {
	if !checkFormat(c) {
		return
	}
	fhir.WriteResource(c.Writer, http.StatusOK, h.capability)
}

// buildCapabilityStatement describes what the handler really implements:
// each served type with its interactions and search parameters, and
// rest.security with the SMART-on-FHIR service code and the oauth-uris
// extension.
func buildCapabilityStatement(cfg Config, base string, now time.Time) ([]byte, error) {
	var oauth []fhir.Extension
	for _, u := range []struct{ name, url string }{
		{"authorize", cfg.AuthorizeURL}, {"token", cfg.TokenURL}, {"revoke", cfg.RevokeURL},
		{"introspect", cfg.IntrospectURL}, {"register", cfg.RegisterURL},
	} {
		if u.url != "" {
			oauth = append(oauth, fhir.Extension{URL: u.name, ValueURI: u.url})
		}
	}
	description := "SMART App Launch 2.2: OAuth 2.0 bearer tokens with SMART v1 or v2 scopes; patient-level scopes are confined to the token's patient."
	if cfg.SMARTConfigURL != "" {
		description += " Discovery: " + cfg.SMARTConfigURL
	}
	security := &fhir.CapabilityStatementRestSecurity{
		Service: []fhir.CodeableConcept{{
			Coding: []fhir.Coding{{
				System: "http://terminology.hl7.org/CodeSystem/restful-security-service",
				Code:   "SMART-on-FHIR", Display: "SMART-on-FHIR",
			}},
			Text: "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)",
		}},
		Description: description,
	}
	if len(oauth) > 0 {
		security.Extension = []fhir.Extension{{URL: fhir.OAuthURIsExtension, Extension: oauth}}
	}

	types := make([]string, 0, len(served))
	for t := range served {
		types = append(types, t)
	}
	sort.Strings(types)
	var resources []fhir.CapabilityStatementRestResource
	notSupported := false
	for _, t := range types {
		info := served[t]
		r := fhir.CapabilityStatementRestResource{
			Type:         t,
			Interaction:  []fhir.CapabilityStatementInteraction{{Code: "read"}, {Code: "search-type"}},
			Versioning:   "versioned-update",
			ReadHistory:  &notSupported,
			UpdateCreate: &notSupported,
		}
		if info.writable {
			r.Interaction = append(r.Interaction,
				fhir.CapabilityStatementInteraction{Code: "create"},
				fhir.CapabilityStatementInteraction{Code: "update"})
			r.ConditionalUpdate = &notSupported
		}
		for _, name := range records.SearchParams(t) {
			r.SearchParam = append(r.SearchParam, fhir.CapabilityStatementSearchParam{Name: name, Type: records.SearchParamType(t, name)})
		}
		resources = append(resources, r)
	}
	cs := fhir.CapabilityStatement{
		ResourceType:   "CapabilityStatement",
		Status:         "active",
		Date:           now.UTC().Format(time.RFC3339),
		Publisher:      "DTR sandbox",
		Kind:           "instance",
		Software:       &fhir.CapabilityStatementSoftware{Name: "DTR sandbox mock EHR"},
		Implementation: &fhir.CapabilityStatementImplementation{Description: "DTR sandbox mock EHR", URL: base},
		FHIRVersion:    "4.0.1",
		Format:         []string{"json", fhir.ContentType},
		Rest: []fhir.CapabilityStatementRest{{
			Mode:     "server",
			Security: security,
			Resource: resources,
		}},
	}
	return json.Marshal(cs)
}
