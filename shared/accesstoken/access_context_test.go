package accesstoken

import (
	"testing"
	"time"

	"dtrsandbox/shared/smart"
	"github.com/golang-jwt/jwt/v5"
)

func TestAccessContext(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: "https://ehr/fhir", Subject: "prac-1", ID: "j1",
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)),
		},
		ClientID: "dtr-app", Scope: "launch openid patient/*.rs", Patient: "pat-1", Encounter: "enc-1",
		FHIRUser:    "https://ehr/fhir/Practitioner/prac-1",
		FHIRContext: []smart.ContextItem{{Reference: "Coverage/cov-1"}},
	}
	ac, err := c.AccessContext()
	if err != nil {
		t.Fatal(err)
	}
	if ac.Patient != "pat-1" || ac.ClientID != "dtr-app" || ac.TokenID != "j1" || !ac.ExpiresAt.Equal(now.Add(time.Minute)) {
		t.Fatalf("got %+v", ac)
	}
	if _, ok := ac.Scopes.Grant("Observation", smart.PermRead); !ok {
		t.Fatal("patient/*.rs should grant read")
	}
	c.Scope = "patient/Observation.rr"
	if _, err := c.AccessContext(); err == nil {
		t.Fatal("malformed scope must be an error")
	}
}
