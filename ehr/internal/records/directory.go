package records

import (
	"context"
	"strings"

	"dtrsandbox/ehr/internal/directory"
	"dtrsandbox/shared/fhir"
)

// The store is the EHR's directory of people (login, patient picker,
// launch validation).
var _ directory.Directory = (*Store)(nil)

// Practitioners lists the stored practitioners by id, with their
// qualification (or NPI) as detail.
func (s *Store) Practitioners(ctx context.Context) ([]directory.Person, error) {
	recs, err := s.List(ctx, "Practitioner")
	if err != nil {
		return nil, err
	}
	out := make([]directory.Person, 0, len(recs))
	for _, rec := range recs {
		var p fhir.Practitioner
		if err := fhir.Decode(rec.Body, &p); err != nil {
			return nil, invalid(err)
		}
		detail := ""
		for _, q := range p.Qualification {
			if t := q.Code.Label(); t != "" {
				detail = t
				break
			}
		}
		if detail == "" {
			if npi := IdentifierValue(p.Identifier, "http://hl7.org/fhir/sid/us-npi", ""); npi != "" {
				detail = "NPI " + npi
			}
		}
		out = append(out, directory.Person{ID: rec.ID, Name: fhir.DisplayName(p.Name, true), Detail: detail})
	}
	return out, nil
}

// Patients lists the stored patients by id, with birth date and MRN as
// detail.
func (s *Store) Patients(ctx context.Context) ([]directory.Person, error) {
	recs, err := s.List(ctx, "Patient")
	if err != nil {
		return nil, err
	}
	out := make([]directory.Person, 0, len(recs))
	for _, rec := range recs {
		var p fhir.Patient
		if err := fhir.Decode(rec.Body, &p); err != nil {
			return nil, invalid(err)
		}
		var parts []string
		if p.BirthDate != "" {
			parts = append(parts, "born "+p.BirthDate)
		}
		if mrn := MRN(p.Identifier); mrn != "" {
			parts = append(parts, "MRN "+mrn)
		}
		out = append(out, directory.Person{ID: rec.ID, Name: fhir.DisplayName(p.Name, false), Detail: strings.Join(parts, ", ")})
	}
	return out, nil
}
