// AuditEvent of FHIR R4 (auditevent.html): the record the payer writes for
// every request, allowed or denied.

package fhir

import "encoding/json"

// AuditEvent records one security-relevant event (R4 auditevent.html).
// Outcome is "0" (success), "4" (minor failure), "8" (serious failure) or
// "12" (major failure).
type AuditEvent struct {
	ResourceType   string             `json:"resourceType,omitempty"`
	ID             string             `json:"id,omitempty"`
	Meta           *Meta              `json:"meta,omitempty"`
	Text           *Narrative         `json:"text,omitempty"`
	Contained      []json.RawMessage  `json:"contained,omitempty"`
	Extension      []Extension        `json:"extension,omitempty"`
	Type           *Coding            `json:"type,omitempty"`
	Subtype        []Coding           `json:"subtype,omitempty"`
	Action         string             `json:"action,omitempty"`
	Period         *Period            `json:"period,omitempty"`
	Recorded       string             `json:"recorded,omitempty"`
	Outcome        string             `json:"outcome,omitempty"`
	OutcomeDesc    string             `json:"outcomeDesc,omitempty"`
	PurposeOfEvent []CodeableConcept  `json:"purposeOfEvent,omitempty"`
	Agent          []AuditEventAgent  `json:"agent,omitempty"`
	Source         *AuditEventSource  `json:"source,omitempty"`
	Entity         []AuditEventEntity `json:"entity,omitempty"`
}

// AuditEventAgent is an actor in the event: the app, the user, the EHR
// (AuditEvent.agent). Requestor is required by R4, hence a pointer that keeps
// false.
type AuditEventAgent struct {
	Type         *CodeableConcept   `json:"type,omitempty"`
	Role         []CodeableConcept  `json:"role,omitempty"`
	Who          *Reference         `json:"who,omitempty"`
	AltID        string             `json:"altId,omitempty"`
	Name         string             `json:"name,omitempty"`
	Requestor    *bool              `json:"requestor,omitempty"`
	Policy       []string           `json:"policy,omitempty"`
	Network      *AuditEventNetwork `json:"network,omitempty"`
	PurposeOfUse []CodeableConcept  `json:"purposeOfUse,omitempty"`
}

// AuditEventNetwork is where the agent acted from (AuditEvent.agent.network);
// Type is "1" machine name, "2" IP address, "3" telephone, "4" email, "5" URI.
type AuditEventNetwork struct {
	Address string `json:"address,omitempty"`
	Type    string `json:"type,omitempty"`
}

// AuditEventSource is the system that detected and recorded the event
// (AuditEvent.source).
type AuditEventSource struct {
	Site     string     `json:"site,omitempty"`
	Observer *Reference `json:"observer,omitempty"`
	Type     []Coding   `json:"type,omitempty"`
}

// AuditEventEntity is data or an object the event touched (AuditEvent.entity).
// Query is base64 as it appears in the JSON.
type AuditEventEntity struct {
	What        *Reference               `json:"what,omitempty"`
	Type        *Coding                  `json:"type,omitempty"`
	Role        *Coding                  `json:"role,omitempty"`
	Lifecycle   *Coding                  `json:"lifecycle,omitempty"`
	Name        string                   `json:"name,omitempty"`
	Description string                   `json:"description,omitempty"`
	Query       string                   `json:"query,omitempty"`
	Detail      []AuditEventEntityDetail `json:"detail,omitempty"`
}

// AuditEventEntityDetail is a named extra value about an entity
// (AuditEvent.entity.detail).
type AuditEventEntityDetail struct {
	Type              string `json:"type,omitempty"`
	ValueString       string `json:"valueString,omitempty"`
	ValueBase64Binary string `json:"valueBase64Binary,omitempty"`
}
