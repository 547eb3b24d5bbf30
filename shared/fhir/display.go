// Display helpers: how a name or a concept reads on a page. The EHR chart,
// the payer's search index and the DTR app all render them the same way.

package fhir

import "strings"

// Label is the concept's text, else its first coding's display, else its
// first code; "" for nil.
func (cc *CodeableConcept) Label() string {
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

// DisplayName picks the official (else usual, else first) name and renders
// its text, else "given family", or with withTitles
// "prefix given family, suffix" ("Dr. Alice M. Carter, MD").
func DisplayName(names []HumanName, withTitles bool) string {
	if len(names) == 0 {
		return ""
	}
	pick := &names[0]
	for _, use := range []string{"official", "usual"} {
		if i := indexOfUse(names, use); i >= 0 {
			pick = &names[i]
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

func indexOfUse(names []HumanName, use string) int {
	for i, n := range names {
		if n.Use == use {
			return i
		}
	}
	return -1
}
