// Package capability is the payer's CapabilityStatement (FHIR R4
// capabilitystatement.html), served at GET {fhir}/metadata without
// authentication, so a client can discover what the payer implements and
// how it authenticates (SMART Backend Services, plus the EHR token header).
package capability

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"dtrsandbox/shared/fhir"
)

// Config names the endpoints the statement points at.
type Config struct {
	FHIRBase         string // payer FHIR base
	TokenURL         string
	RegistrationURL  string
	SMARTConfigURL   string
	PackageOperation string // canonical of DTR's $questionnaire-package
	Now              func() time.Time
}

// DTR 2.0.1's OperationDefinition for $questionnaire-package.
const QuestionnairePackageDefinition = "http://hl7.org/fhir/us/davinci-dtr/OperationDefinition/questionnaire-package"

// Handler answers GET /fhir/metadata with a statement built once.
func Handler(cfg Config) (gin.HandlerFunc, error) {
	body, err := json.Marshal(Build(cfg))
	if err != nil {
		return nil, err
	}
	return func(c *gin.Context) { fhir.WriteResource(c.Writer, http.StatusOK, body) }, nil
}

// Build describes exactly what the payer's routes serve.
func Build(cfg Config) *fhir.CapabilityStatement {
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	no := false
	oauth := []fhir.Extension{
		{URL: "token", ValueURI: cfg.TokenURL},
		{URL: "register", ValueURI: cfg.RegistrationURL},
	}
	doc := func(t string) fhir.CapabilityStatementRestResource {
		return fhir.CapabilityStatementRestResource{
			Type: t,
			Documentation: "Both tokens required (Authorization and X-EHR-Authorization). Confined to the EHR token's patient; " +
				"readable and updatable only with at least the scopes that created the document.",
			Interaction: []fhir.CapabilityStatementInteraction{
				{Code: "read"}, {Code: "search-type"}, {Code: "create"}, {Code: "update"},
			},
			Versioning: "versioned-update", ReadHistory: &no, UpdateCreate: &no, ConditionalUpdate: &no,
			SearchParam: []fhir.CapabilityStatementSearchParam{
				{Name: "_id", Type: "token"}, {Name: "patient", Type: "reference"}, {Name: "subject", Type: "reference"},
				{Name: "status", Type: "token"},
			},
		}
	}
	docRef := doc("DocumentReference")
	docRef.SearchParam = append(docRef.SearchParam,
		fhir.CapabilityStatementSearchParam{Name: "type", Type: "token"},
		fhir.CapabilityStatementSearchParam{Name: "category", Type: "token"},
		fhir.CapabilityStatementSearchParam{Name: "date", Type: "date"},
		fhir.CapabilityStatementSearchParam{Name: "related", Type: "reference"})
	qr := doc("QuestionnaireResponse")
	qr.SearchParam = append(qr.SearchParam,
		fhir.CapabilityStatementSearchParam{Name: "questionnaire", Type: "reference"},
		fhir.CapabilityStatementSearchParam{Name: "authored", Type: "date"},
		fhir.CapabilityStatementSearchParam{Name: "based-on", Type: "reference"})

	return &fhir.CapabilityStatement{
		ResourceType: "CapabilityStatement",
		Status:       "active",
		Date:         now().UTC().Format("2006-01-02"),
		Publisher:    "DTR security sandbox",
		Kind:         "instance",
		Software:     &fhir.CapabilityStatementSoftware{Name: "dtr-sandbox payer"},
		Implementation: &fhir.CapabilityStatementImplementation{
			Description: "Payer FHIR server storing Da Vinci DTR documentation", URL: cfg.FHIRBase,
		},
		FHIRVersion: "4.0.1",
		Format:      []string{"application/fhir+json"},
		Rest: []fhir.CapabilityStatementRest{{
			Mode: "server",
			Security: &fhir.CapabilityStatementRestSecurity{
				Service: []fhir.CodeableConcept{{Coding: []fhir.Coding{{
					System: "http://terminology.hl7.org/CodeSystem/restful-security-service", Code: "SMART-on-FHIR",
				}}}},
				Description: "SMART Backend Services (client_credentials with a private_key_jwt client assertion; discovery at " +
					cfg.SMARTConfigURL + "), plus the EHR launch access token in X-EHR-Authorization, validated against the trusted-EHR registry.",
				Extension: []fhir.Extension{{URL: fhir.OAuthURIsExtension, Extension: oauth}},
			},
			Resource: []fhir.CapabilityStatementRestResource{
				{
					Type:          "Questionnaire",
					Documentation: "Payer token required; the EHR token is optional and validated when sent.",
					Interaction:   []fhir.CapabilityStatementInteraction{{Code: "read"}, {Code: "search-type"}},
					SearchParam: []fhir.CapabilityStatementSearchParam{
						{Name: "_id", Type: "token"}, {Name: "url", Type: "uri"}, {Name: "version", Type: "token"},
						{Name: "status", Type: "token"}, {Name: "name", Type: "string"}, {Name: "title", Type: "string"},
					},
					Operation: []fhir.CapabilityStatementOperation{{Name: "questionnaire-package", Definition: QuestionnairePackageDefinition}},
				},
				docRef,
				qr,
			},
		}},
	}
}
