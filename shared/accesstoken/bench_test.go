package accesstoken

import (
	"context"
	"testing"

	"dtrsandbox/shared/jwks"
)

// BenchmarkPeekIssuer is the baseline: reading iss without any checks.
func BenchmarkPeekIssuer(b *testing.B) {
	es, _, _ := testKeys(b)
	raw, err := Sign(es, validClaims())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := PeekIssuer(raw, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func benchVerify(b *testing.B, key *jwks.SigningKey) {
	raw, err := Sign(key, validClaims())
	if err != nil {
		b.Fatal(err)
	}
	keys, o, ctx := issuerKeys(b), opts(), context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := Verify(ctx, raw, keys, o); err != nil {
			b.Fatal(err)
		}
	}
}

func benchSign(b *testing.B, key *jwks.SigningKey) {
	c := validClaims()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := Sign(key, c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyES256(b *testing.B) { es, _, _ := testKeys(b); benchVerify(b, es) }
func BenchmarkVerifyRS256(b *testing.B) { _, rs, _ := testKeys(b); benchVerify(b, rs) }
func BenchmarkSignES256(b *testing.B)   { es, _, _ := testKeys(b); benchSign(b, es) }
func BenchmarkSignRS256(b *testing.B)   { _, rs, _ := testKeys(b); benchSign(b, rs) }
