// Package launch holds the EHR launch contexts behind the "Launch DTR"
// button (SMART App Launch 2.2 §"EHR launch"): POST /api/launch creates one,
// the authorization endpoint consumes it once.
package launch

import "dtrsandbox/shared/smart"

// Request is the body of POST /api/launch (CONTRACT.md, "launch button").
type Request struct {
	ClientID     string              `json:"client_id"`
	Patient      string              `json:"patient"`      // Patient id, e.g. "pat-1"
	Practitioner string              `json:"practitioner"` // Practitioner id, e.g. "prac-1"
	Encounter    string              `json:"encounter,omitempty"`
	FHIRContext  []smart.ContextItem `json:"fhirContext,omitempty"`
	LaunchURL    string              `json:"launch_url,omitempty"`
}

// Created is the 201 answer: the opaque launch id and the URL that opens the
// app ("<launch url>?iss=<fhir base>&launch=<launch>").
type Created struct {
	Launch    string `json:"launch"`
	LaunchURL string `json:"launch_url"`
}
