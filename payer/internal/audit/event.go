// Package audit records one FHIR AuditEvent per payer request, allowed or
// denied (CONTRACT.md "Audit"), in the same transaction as the change it
// records, and serves them to the admin.
package audit

import (
	"context"
	"time"

	"gorm.io/gorm"

	"dtrsandbox/payer/internal/access"
)

// Outcome codes of FHIR R4 AuditEvent.outcome.
const (
	OutcomeSuccess      = "0"
	OutcomeMinorFailure = "4" // e.g. a request refused for the caller's fault
	OutcomeSeriousFail  = "8"
	OutcomeMajorFailure = "12"
)

// Event is what one request did. Never a token.
type Event struct {
	Time         time.Time
	Action       string // FHIR AuditEvent.action: C R U D E
	Interaction  string // FHIR restful interaction: read, search-type, create, update, operation, token, register
	ResourceType string
	ResourceID   string
	Query        string // search parameters as received (no tokens)
	Outcome      string // one of the Outcome* codes
	Reason       string // why it was denied; empty when allowed
	Status       int    // HTTP status answered
	ClientID     string // the app (payer client_id)
	FHIRUser     string // the user from the EHR token
	EHRIssuer    string
	Patient      string // absolute patient reference
	PurposeOfUse string
	SourceIP     string
}

// SetCaller fills ev's caller fields from the gate's principal: client,
// patient and purpose of use, and the user and issuer of its EHR token. A
// nil principal (or one without an EHR token) leaves them as they are.
func (ev *Event) SetCaller(p *access.Principal) {
	if p == nil {
		return
	}
	ev.ClientID, ev.Patient, ev.PurposeOfUse = p.ClientID, p.Patient, p.PurposeOfUse
	if p.EHR != nil {
		ev.FHIRUser, ev.EHRIssuer = p.EHR.FHIRUser, p.EHR.Issuer
	}
}

// Recorder writes events. tx is the transaction of the change being
// recorded (nil for a read-only request): the event commits with it or not
// at all, and an error means the request must fail.
type Recorder interface {
	Record(ctx context.Context, tx *gorm.DB, ev Event) error
}
