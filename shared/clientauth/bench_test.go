package clientauth

import (
	"context"
	"net/url"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// assertions makes n distinct valid assertions (each jti is single-use).
func assertions(b *testing.B, f *fixture, rsa bool, n int) []url.Values {
	b.Helper()
	out := make([]url.Values, n)
	for i := range out {
		s := f.validSpec("app")
		if rsa {
			f.useRSA(s)
		}
		out[i] = form(s.sign(b))
	}
	return out
}

func benchVerify(b *testing.B, rsa bool) {
	f := newFixture(b)
	forms := assertions(b, f, rsa, b.N)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := f.v.Verify(ctx, forms[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseUnverified is the baseline: decoding the JWT with no checks.
func BenchmarkParseUnverified(b *testing.B) {
	f := newFixture(b)
	raw := assertions(b, f, false, 1)[0].Get(ParamAssertion)
	p := jwt.NewParser()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, _, err := p.ParseUnverified(raw, &jwt.RegisteredClaims{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyES384(b *testing.B) { benchVerify(b, false) }
func BenchmarkVerifyRS384(b *testing.B) { benchVerify(b, true) }
