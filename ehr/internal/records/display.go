package records

import (
	"strings"

	"dtrsandbox/shared/fhir"
)

// Display helpers shared by the directory and the chart: how a person,
// identifier or concept reads on a page.

// PersonName picks the official (else usual, else first) name and renders
// it as text, or "prefix given family, suffix" when withTitles is set
// ("Dr. Benjamin J. Ortiz, DO"), else "given family".
func PersonName(names []fhir.HumanName, withTitles bool) string {
	if len(names) == 0 {
		return ""
	}
	pick := names[0]
	for _, use := range []string{"official", "usual"} {
		if i := indexOfUse(names, use); i >= 0 {
			pick = names[i]
			break
		}
	}
	if pick.Text != "" {
		return pick.Text
	}
	var parts []string
	if withTitles {
		parts = append(parts, pick.Prefix...)
	}
	parts = append(parts, pick.Given...)
	if pick.Family != "" {
		parts = append(parts, pick.Family)
	}
	s := strings.Join(parts, " ")
	if withTitles && len(pick.Suffix) > 0 {
		s += ", " + strings.Join(pick.Suffix, ", ")
	}
	return s
}

func indexOfUse(names []fhir.HumanName, use string) int {
	for i, n := range names {
		if n.Use == use {
			return i
		}
	}
	return -1
}

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

// CodeableConceptText is the concept's text, else its first coding's
// display, else its first code.
func CodeableConceptText(cc *fhir.CodeableConcept) string {
	if cc == nil {
		return ""
	}
	if cc.Text != "" {
		return cc.Text
	}
	for _, c := range cc.Coding {
		if c.Display != "" {
			return c.Display
		}
	}
	for _, c := range cc.Coding {
		if c.Code != "" {
			return c.Code
		}
	}
	return ""
}
