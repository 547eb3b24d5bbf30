package trust

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"dtrsandbox/shared/accesstoken"
	"dtrsandbox/shared/jwks"
)

// FuzzValidateEHRToken: whatever the input, Validate never panics, and it
// accepts a token only if the trusted EHR's key really signed it for that
// EHR (checked independently with golang-jwt). The seed corpus runs as an
// ordinary test.
func FuzzValidateEHRToken(f *testing.F) {
	clk := newClock()
	ehr := newFakeEHR(f, clk)
	v := newValidator(f, mustRegistry(f, ehr.entry(ModeJWKS)), clk)
	pub := ehr.key.Private.Public()
	stranger, _ := jwks.Generate("ES256")
	same := *stranger
	same.KID = ehr.key.KID

	good := ehr.token(nil)
	parts := strings.Split(good, ".")
	f.Add(good)
	f.Add(ehr.token(func(c *accesstoken.Claims) { c.Audience = jwt.ClaimStrings{"https://other.example"} }))
	f.Add(ehr.token(func(c *accesstoken.Claims) {
		c.IssuedAt, c.ExpiresAt = jwt.NewNumericDate(clk.Now().Add(-time.Hour)), jwt.NewNumericDate(clk.Now().Add(-time.Minute))
	}))
	f.Add(ehr.tokenWith(stranger, nil))
	f.Add(ehr.tokenWith(&same, nil))
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(parts[0] + "." + parts[1] + "." + parts[2] + "A")
	f.Add(parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-2])
	f.Add("eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0." + parts[1] + ".")
	f.Add("eyJhbGciOiJIUzI1NiIsInR5cCI6ImF0K2p3dCJ9." + parts[1] + "." + parts[2])
	f.Add(parts[0] + ". " + parts[1] + "." + parts[2])
	f.Add(parts[0] + "\n." + parts[1] + "." + parts[2])
	f.Add("a.b.c")
	f.Add("..")
	f.Add("")
	f.Add(strings.Repeat("A", 9000))
	f.Add("e30.e30.e30")
	f.Add("eyJ0eXAiOiJhdCtqd3QiLCJhbGciOiJFUzI1NiIsImtpZCI6W119.e30.AAAA")

	f.Fuzz(func(t *testing.T, raw string) {
		ac, err := v.Validate(t.Context(), raw)
		if err != nil {
			if AsFailure(err) == nil {
				t.Fatalf("refusal is not a *Failure: %v", err)
			}
			return
		}
		tok, perr := jwt.Parse(raw, func(*jwt.Token) (any, error) { return pub, nil },
			jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(ehr.issuer), jwt.WithAudience(ehr.issuer),
			jwt.WithTimeFunc(clk.Now), jwt.WithExpirationRequired())
		if perr != nil || !tok.Valid {
			t.Fatalf("accepted a token the trusted key did not sign for this EHR: %q (%v)", raw, perr)
		}
		if ac.Issuer != ehr.issuer {
			t.Fatalf("accepted context %+v", ac)
		}
	})
}
