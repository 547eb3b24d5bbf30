// Package access carries who is calling the payer, as established by the
// gate (payer access token + EHR access token), to the FHIR handlers.
package access

import (
	"context"

	"dtrsandbox/shared/smart"
)

// Principal is the verified caller of one request.
type Principal struct {
	ClientID    string       // the app's client_id at the payer
	PayerScopes smart.Scopes // scopes of the payer access token
	// EHR is the verified EHR launch token's context; nil when the route
	// allows no EHR token and none was sent.
	EHR *smart.AccessContext
	// Patient is the only patient the request may touch: the EHR token's
	// patient as an absolute reference "{ehr fhir base}/Patient/{id}".
	Patient string
	// PurposeOfUse is a v3-ActReason code (e.g. "TREAT", "COVERAGE"), from the
	// request or the gate's default.
	PurposeOfUse string
}

type ctxKey struct{}

// With returns ctx carrying p.
func With(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// From returns the principal in ctx, or nil.
func From(ctx context.Context) *Principal {
	p, _ := ctx.Value(ctxKey{}).(*Principal)
	return p
}
