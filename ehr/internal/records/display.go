package records

import (
	"dtrsandbox/shared/fhir"
)

// Display helpers shared by the directory and the chart: how a person,
// identifier or concept reads on a page.

// MRN returns the value of the medical record number identifier (type code
// MR, http://terminology.hl7.org/CodeSystem/v2-0203).
func MRN(ids []fhir.Identifier) string {
	return IdentifierValue(ids, "", "MR")
}

// IdentifierValue returns the first identifier value with the given system
// (when system is not "") and v2-0203 type code (when typeCode is not "").
func IdentifierValue(ids []fhir.Identifier, system, typeCode string) string {
	for _, id := range ids {
		if system != "" && id.System != system {
			continue
		}
		if typeCode != "" && !hasCoding(id.Type, "http://terminology.hl7.org/CodeSystem/v2-0203", typeCode) {
			continue
		}
		if id.Value != "" {
			return id.Value
		}
	}
	return ""
}

func hasCoding(cc *fhir.CodeableConcept, system, code string) bool {
	if cc == nil {
		return false
	}
	for _, c := range cc.Coding {
		if c.System == system && c.Code == code {
			return true
		}
	}
	return false
}
