// Package directory is what the EHR's authorization server needs to know of
// its clinical records: who can log in (practitioners), which patients exist
// (patient picker, launch validation). The records store implements it.
package directory

import "context"

// Person is one practitioner or patient as pages show them.
type Person struct {
	ID     string // FHIR id, e.g. "prac-1"
	Name   string // display name
	Detail string // e.g. birth date and MRN, or specialty
}

// Directory lists people and checks that a resource exists.
type Directory interface {
	Practitioners(ctx context.Context) ([]Person, error)
	Patients(ctx context.Context) ([]Person, error)
	// Exists reports whether resourceType/id is in the EHR.
	Exists(ctx context.Context, resourceType, id string) (bool, error)
}
