// Package seed holds the EHR's fixed demo data: the FHIR R4 resources under
// data/ (one file per resource, named <Type>-<id>.json) that give the
// contract's fixed ids (pat-1..3, cov-1..3, prac-1..2, the DeviceRequests
// that need DTR documentation) to every demo and regression run.
package seed
