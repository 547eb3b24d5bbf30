package accesstoken

import (
	"fmt"

	"dtrsandbox/shared/smart"
)

// AccessContext turns verified claims into the facts FHIR enforcement uses.
// Call it only on claims returned by Verify. A scope string that does not
// parse is an error: enforcement must not guess at what a token grants.
func (c *Claims) AccessContext() (*smart.AccessContext, error) {
	scopes, err := smart.ParseScopes(c.Scope)
	if err != nil {
		return nil, fmt.Errorf("accesstoken: scope claim: %w", err)
	}
	ac := &smart.AccessContext{
		Issuer:      c.Issuer,
		ClientID:    c.ClientID,
		Subject:     c.Subject,
		FHIRUser:    c.FHIRUser,
		Patient:     c.Patient,
		Encounter:   c.Encounter,
		Scopes:      scopes,
		FHIRContext: c.FHIRContext,
		TokenID:     c.ID,
	}
	if c.IssuedAt != nil {
		ac.IssuedAt = c.IssuedAt.Time
	}
	if c.ExpiresAt != nil {
		ac.ExpiresAt = c.ExpiresAt.Time
	}
	return ac, nil
}
