package audit

import (
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"

	"dtrsandbox/shared/fhir"
	"dtrsandbox/shared/httpserver"
)

// Code systems of the FHIR R4 AuditEvent bindings (auditevent.html).
const (
	systemAuditEventType = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	systemInteraction    = "http://hl7.org/fhir/restful-interaction"
	systemDICOM          = "http://dicom.nema.org/resources/ontology/DCM"
	systemActReason      = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
	systemParticipation  = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
	systemSourceType     = "http://terminology.hl7.org/CodeSystem/security-source-type"
	systemEntityType     = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	systemObjectRole     = "http://terminology.hl7.org/CodeSystem/object-role"
	systemLifecycle      = "http://terminology.hl7.org/CodeSystem/dicom-audit-lifecycle"
	systemURI            = "urn:ietf:rfc:3986"
)

// restfulInteractions are the codes of http://hl7.org/fhir/restful-interaction
// (R4 valueset-type-restful-interaction).
var restfulInteractions = map[string]bool{
	"read": true, "vread": true, "update": true, "patch": true, "delete": true,
	"history": true, "history-instance": true, "history-type": true, "history-system": true,
	"create": true, "search": true, "search-type": true, "search-system": true,
	"capabilities": true, "transaction": true, "batch": true, "operation": true,
}

// actReasonDisplay names the purpose-of-use codes the sandbox uses
// (v3-ActReason); others are written without a display.
var actReasonDisplay = map[string]string{
	"TREAT":    "treatment",
	"COVERAGE": "coverage under policy or program",
	"HPAYMT":   "healthcare payment",
	"PMTDEBIT": "payment for debit",
	"HOPERAT":  "healthcare operations",
	"OPERAT":   "operations",
	"PATRQT":   "patient requested",
	"SYSDEV":   "system development",
	"ETREAT":   "emergency treatment",
}

// eventType returns AuditEvent.type and subtype for an interaction
// (R4 auditevent.html: type is from the extensible Audit Event ID value
// set, the DICOM event ids plus audit-event-type "rest"). FHIR REST
// interactions are type "rest" with the restful-interaction subtype;
// the gate's token requests and console sign-ins are DICOM User
// Authentication / Login (sign-outs / Logout) and client registrations DICOM Security Alert / User Security Attributes
// Changed.
func eventType(interaction string) (*fhir.Coding, []fhir.Coding) {
	switch interaction {
	case "token", "login":
		return &fhir.Coding{System: systemDICOM, Code: "110114", Display: "User Authentication"},
			[]fhir.Coding{{System: systemDICOM, Code: "110122", Display: "Login"}}
	case "logout":
		return &fhir.Coding{System: systemDICOM, Code: "110114", Display: "User Authentication"},
			[]fhir.Coding{{System: systemDICOM, Code: "110123", Display: "Logout"}}
	case "register":
		return &fhir.Coding{System: systemDICOM, Code: "110113", Display: "Security Alert"},
			[]fhir.Coding{{System: systemDICOM, Code: "110137", Display: "User Security Attributes Changed"}}
	}
	typ := &fhir.Coding{System: systemAuditEventType, Code: "rest", Display: "RESTful Operation"}
	if restfulInteractions[interaction] {
		return typ, []fhir.Coding{{System: systemInteraction, Code: interaction, Display: interaction}}
	}
	return typ, nil
}

// buildAuditEvent turns ev into a FHIR R4 AuditEvent (auditevent.html).
// source is the payer's FHIR base, used for the observer and for the
// identifier system of client ids.
func buildAuditEvent(id string, ev Event, source string) *fhir.AuditEvent {
	recorded := ev.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	typ, subtype := eventType(ev.Interaction)
	ae := &fhir.AuditEvent{
		ResourceType: "AuditEvent",
		ID:           id,
		Meta:         &fhir.Meta{VersionID: "1", LastUpdated: recorded},
		Type:         typ,
		Subtype:      subtype,
		Action:       ev.Action,
		Recorded:     recorded,
		Outcome:      ev.Outcome,
		OutcomeDesc:  ev.Reason,
	}
	var purpose []fhir.CodeableConcept
	if ev.PurposeOfUse != "" {
		purpose = []fhir.CodeableConcept{{Coding: []fhir.Coding{{
			System: systemActReason, Code: ev.PurposeOfUse, Display: actReasonDisplay[ev.PurposeOfUse],
		}}}}
		ae.PurposeOfEvent = purpose
	}

	// The app: who is its client_id at the payer (an identifier; clients
	// are not FHIR resources). It is the requestor only when no user acts
	// through it.
	clientSystem := "urn:dtrsandbox:payer:client_id"
	if source != "" {
		clientSystem = strings.TrimSuffix(source, "/") + "/client_id"
	}
	app := fhir.AuditEventAgent{
		Type: &fhir.CodeableConcept{Coding: []fhir.Coding{{System: systemDICOM, Code: "110150", Display: "Application"}}},
		Who: &fhir.Reference{Identifier: &fhir.Identifier{
			System: clientSystem, Value: ev.ClientID,
		}},
		AltID:     ev.ClientID,
		Requestor: boolPtr(ev.FHIRUser == ""),
	}
	if ev.ClientID == "" {
		app.Who = &fhir.Reference{Display: "unauthenticated client"}
		app.AltID = ""
	}
	if ev.SourceIP != "" {
		app.Network = &fhir.AuditEventNetwork{Address: ev.SourceIP, Type: "2"}
	}
	ae.Agent = append(ae.Agent, app)

	// The user from the EHR token: who is the fhirUser reference, with the
	// EHR issuer as the identifier system (the fhirUser is a resource at
	// that EHR) and in policy (the authorization that let the user act).
	if ev.FHIRUser != "" {
		who := &fhir.Reference{Identifier: &fhir.Identifier{System: ev.EHRIssuer, Value: ev.FHIRUser}}
		if base, _, _, ok := fhir.ParseReference(ev.FHIRUser); ok {
			who.Reference = ev.FHIRUser
			if base == "" && ev.EHRIssuer != "" {
				// A relative fhirUser is relative to the EHR (its issuer is
				// its FHIR base), not to the payer that stores this event.
				who.Reference = strings.TrimSuffix(ev.EHRIssuer, "/") + "/" + ev.FHIRUser
			}
		}
		user := fhir.AuditEventAgent{
			Type: &fhir.CodeableConcept{Coding: []fhir.Coding{{
				System: systemParticipation, Code: "IRCP", Display: "information recipient",
			}}},
			Who:          who,
			Requestor:    boolPtr(true),
			PurposeOfUse: purpose,
		}
		if ev.EHRIssuer != "" {
			user.Policy = []string{ev.EHRIssuer}
		}
		ae.Agent = append(ae.Agent, user)
	}

	observer := &fhir.Reference{Display: "Sandbox payer FHIR server"}
	if source != "" {
		observer.Identifier = &fhir.Identifier{System: systemURI, Value: source}
	}
	ae.Source = &fhir.AuditEventSource{
		Site:     "payer",
		Observer: observer,
		Type:     []fhir.Coding{{System: systemSourceType, Code: "4", Display: "Application Server"}},
	}

	if ev.Patient != "" {
		ae.Entity = append(ae.Entity, fhir.AuditEventEntity{
			What: &fhir.Reference{Reference: ev.Patient},
			Type: &fhir.Coding{System: systemEntityType, Code: "1", Display: "Person"},
			Role: &fhir.Coding{System: systemObjectRole, Code: "1", Display: "Patient"},
		})
	}
	status := []fhir.AuditEventEntityDetail(nil)
	if ev.Status != 0 {
		status = []fhir.AuditEventEntityDetail{{Type: "http-status", ValueString: strconv.Itoa(ev.Status)}}
	}
	if ev.ResourceType != "" {
		ent := fhir.AuditEventEntity{
			Type: &fhir.Coding{System: systemEntityType, Code: "2", Display: "System Object"},
			Role: &fhir.Coding{System: systemObjectRole, Code: "4", Display: "Domain Resource"},
			Name: ev.ResourceType,
		}
		if ev.ResourceID != "" && fhir.ValidID(ev.ResourceID) {
			ent.What = &fhir.Reference{Reference: ev.ResourceType + "/" + ev.ResourceID}
		}
		if lc := lifecycle(ev.Action); lc != nil {
			ent.Lifecycle = lc
		}
		if ev.EHRIssuer != "" {
			ent.Detail = append(ent.Detail, fhir.AuditEventEntityDetail{Type: "ehr-issuer", ValueString: ev.EHRIssuer})
		}
		ent.Detail = append(ent.Detail, status...)
		ae.Entity = append(ae.Entity, ent)
	} else if ent := systemEntity(ev, clientSystem); ent != nil {
		// Requests about no resource type (token, registration, console
		// sign-in, batch, system _history) still record what they touched
		// and the HTTP status answered.
		ent.Detail = append(ent.Detail, status...)
		ae.Entity = append(ae.Entity, *ent)
	}
	if q := ScrubQuery(ev.Query); q != "" {
		// R4 sev-1: an entity has a name or a query, not both.
		ae.Entity = append(ae.Entity, fhir.AuditEventEntity{
			Type:  &fhir.Coding{System: systemEntityType, Code: "2", Display: "System Object"},
			Role:  &fhir.Coding{System: systemObjectRole, Code: "24", Display: "Query"},
			Query: base64.StdEncoding.EncodeToString([]byte(q)),
		})
	}
	return ae
}

// systemEntity is the entity of an event about no resource type: the
// client registration (a Security User Entity, named by its client id when
// one was registered), the token or sign-in (a Security Resource), or the
// FHIR server itself for system-level interactions. nil when the event has
// neither an interaction nor a status to record.
func systemEntity(ev Event, clientSystem string) *fhir.AuditEventEntity {
	if ev.Interaction == "" && ev.Status == 0 {
		return nil
	}
	ent := &fhir.AuditEventEntity{
		Type: &fhir.Coding{System: systemEntityType, Code: "2", Display: "System Object"},
		Name: ev.Interaction,
	}
	switch ev.Interaction {
	case "register":
		ent.Role = &fhir.Coding{System: systemObjectRole, Code: "11", Display: "Security User Entity"}
		ent.Name = "client registration"
		if ev.ClientID != "" {
			ent.What = &fhir.Reference{Identifier: &fhir.Identifier{System: clientSystem, Value: ev.ClientID}}
		}
	case "token", "login", "logout":
		ent.Role = &fhir.Coding{System: systemObjectRole, Code: "13", Display: "Security Resource"}
	default:
		ent.Role = &fhir.Coding{System: systemObjectRole, Code: "4", Display: "Domain Resource"}
		ent.Name = "system"
	}
	if lc := lifecycle(ev.Action); lc != nil {
		ent.Lifecycle = lc
	}
	return ent
}

// lifecycle maps the action to a DICOM audit lifecycle event, where one fits.
func lifecycle(action string) *fhir.Coding {
	switch action {
	case "C":
		return &fhir.Coding{System: systemLifecycle, Code: "1", Display: "Origination / Creation"}
	case "R":
		return &fhir.Coding{System: systemLifecycle, Code: "6", Display: "Access / Use"}
	case "U":
		return &fhir.Coding{System: systemLifecycle, Code: "3", Display: "Amendment"}
	case "D":
		return &fhir.Coding{System: systemLifecycle, Code: "14", Display: "Logical deletion"}
	}
	return nil
}

// secretParams are query parameter names whose values must never reach the
// audit trail (OAuth credentials and codes).
var secretParams = map[string]bool{
	"access_token": true, "token": true, "refresh_token": true, "id_token": true,
	"client_secret": true, "client_assertion": true, "code": true, "code_verifier": true,
	"assertion": true, "password": true, "launch": true, "authorization": true,
	"x-ehr-authorization": true, "admin_token": true, "subject_token": true, "actor_token": true,
}

// ScrubQuery returns q (a URL query string) with the values of credential
// parameters, and any value shaped like a JWT, replaced by "redacted", so
// that a client that puts a token in a URL does not get it into the audit
// trail. A query that does not parse is kept only as a marker.
func ScrubQuery(q string) string {
	if q == "" {
		return ""
	}
	vals, err := url.ParseQuery(q)
	if err != nil {
		return "(unparsable query)"
	}
	scrubbed := false
	for k := range vals {
		secret := secretParams[strings.ToLower(k)]
		for i, v := range vals[k] {
			if secret || httpserver.LooksLikeJWT(v) {
				vals[k][i] = "redacted"
				scrubbed = true
			}
		}
	}
	if !scrubbed {
		return q
	}
	return vals.Encode()
}

func boolPtr(b bool) *bool { return &b }
