// CapabilityStatement of FHIR R4 (capabilitystatement.html): enough for a
// server's /metadata answer, including rest.security with the SMART
// oauth-uris extension (extension-oauth-uris.html).

package fhir

import "encoding/json"

// OAuthURIsExtension is the URL of the extension on
// CapabilityStatement.rest.security that lists the OAuth endpoints; its
// nested extensions are "authorize", "token", "register", "manage"
// (and, by SMART practice, "introspect" and "revoke"), each a valueUri.
const OAuthURIsExtension = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"

// CapabilityStatement describes what a FHIR server supports
// (R4 capabilitystatement.html).
type CapabilityStatement struct {
	ResourceType        string                             `json:"resourceType,omitempty"`
	ID                  string                             `json:"id,omitempty"`
	Meta                *Meta                              `json:"meta,omitempty"`
	Text                *Narrative                         `json:"text,omitempty"`
	Contained           []json.RawMessage                  `json:"contained,omitempty"`
	Extension           []Extension                        `json:"extension,omitempty"`
	URL                 string                             `json:"url,omitempty"`
	Version             string                             `json:"version,omitempty"`
	Name                string                             `json:"name,omitempty"`
	Title               string                             `json:"title,omitempty"`
	Status              string                             `json:"status,omitempty"`
	Experimental        *bool                              `json:"experimental,omitempty"`
	Date                string                             `json:"date,omitempty"`
	Publisher           string                             `json:"publisher,omitempty"`
	Description         string                             `json:"description,omitempty"`
	Kind                string                             `json:"kind,omitempty"`
	Instantiates        []string                           `json:"instantiates,omitempty"`
	Software            *CapabilityStatementSoftware       `json:"software,omitempty"`
	Implementation      *CapabilityStatementImplementation `json:"implementation,omitempty"`
	FHIRVersion         string                             `json:"fhirVersion,omitempty"`
	Format              []string                           `json:"format,omitempty"`
	PatchFormat         []string                           `json:"patchFormat,omitempty"`
	ImplementationGuide []string                           `json:"implementationGuide,omitempty"`
	Rest                []CapabilityStatementRest          `json:"rest,omitempty"`
}

// CapabilityStatementSoftware names the server software
// (CapabilityStatement.software).
type CapabilityStatementSoftware struct {
	Name        string `json:"name,omitempty"`
	Version     string `json:"version,omitempty"`
	ReleaseDate string `json:"releaseDate,omitempty"`
}

// CapabilityStatementImplementation names this installation
// (CapabilityStatement.implementation).
type CapabilityStatementImplementation struct {
	Description string `json:"description,omitempty"`
	URL         string `json:"url,omitempty"`
}

// CapabilityStatementRest is the RESTful interface (CapabilityStatement.rest).
type CapabilityStatementRest struct {
	Mode          string                            `json:"mode,omitempty"`
	Documentation string                            `json:"documentation,omitempty"`
	Security      *CapabilityStatementRestSecurity  `json:"security,omitempty"`
	Resource      []CapabilityStatementRestResource `json:"resource,omitempty"`
	Interaction   []CapabilityStatementInteraction  `json:"interaction,omitempty"`
	SearchParam   []CapabilityStatementSearchParam  `json:"searchParam,omitempty"`
	Operation     []CapabilityStatementOperation    `json:"operation,omitempty"`
}

// CapabilityStatementRestSecurity describes how clients authenticate
// (CapabilityStatement.rest.security); the oauth-uris extension goes in
// Extension.
type CapabilityStatementRestSecurity struct {
	Extension   []Extension       `json:"extension,omitempty"`
	CORS        *bool             `json:"cors,omitempty"`
	Service     []CodeableConcept `json:"service,omitempty"`
	Description string            `json:"description,omitempty"`
}

// CapabilityStatementRestResource is one resource type the server serves
// (CapabilityStatement.rest.resource).
type CapabilityStatementRestResource struct {
	Type              string                           `json:"type,omitempty"`
	Profile           string                           `json:"profile,omitempty"`
	SupportedProfile  []string                         `json:"supportedProfile,omitempty"`
	Documentation     string                           `json:"documentation,omitempty"`
	Interaction       []CapabilityStatementInteraction `json:"interaction,omitempty"`
	Versioning        string                           `json:"versioning,omitempty"`
	ReadHistory       *bool                            `json:"readHistory,omitempty"`
	UpdateCreate      *bool                            `json:"updateCreate,omitempty"`
	ConditionalCreate *bool                            `json:"conditionalCreate,omitempty"`
	ConditionalRead   string                           `json:"conditionalRead,omitempty"`
	ConditionalUpdate *bool                            `json:"conditionalUpdate,omitempty"`
	ConditionalDelete string                           `json:"conditionalDelete,omitempty"`
	SearchInclude     []string                         `json:"searchInclude,omitempty"`
	SearchRevInclude  []string                         `json:"searchRevInclude,omitempty"`
	SearchParam       []CapabilityStatementSearchParam `json:"searchParam,omitempty"`
	Operation         []CapabilityStatementOperation   `json:"operation,omitempty"`
}

// CapabilityStatementInteraction is a supported interaction, such as read or
// search-type (CapabilityStatement.rest.resource.interaction and
// CapabilityStatement.rest.interaction).
type CapabilityStatementInteraction struct {
	Code          string `json:"code,omitempty"`
	Documentation string `json:"documentation,omitempty"`
}

// CapabilityStatementSearchParam is a supported search parameter
// (CapabilityStatement.rest.resource.searchParam).
type CapabilityStatementSearchParam struct {
	Name          string `json:"name,omitempty"`
	Definition    string `json:"definition,omitempty"`
	Type          string `json:"type,omitempty"`
	Documentation string `json:"documentation,omitempty"`
}

// CapabilityStatementOperation is a supported operation such as
// $questionnaire-package (CapabilityStatement.rest.resource.operation).
type CapabilityStatementOperation struct {
	Name          string `json:"name,omitempty"`
	Definition    string `json:"definition,omitempty"`
	Documentation string `json:"documentation,omitempty"`
}
