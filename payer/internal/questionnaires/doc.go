// Package questionnaires holds the payer's seeded Da Vinci DTR
// questionnaires: the FHIR R4 Questionnaire resources under data/ (one file
// per resource, named Questionnaire-<id>.json) whose canonical URLs the
// EHR's seeded orders name in their CRD coverage-information extension.
package questionnaires
