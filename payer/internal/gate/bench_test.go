package gate

import (
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"dtrsandbox/payer/internal/trust"
	"dtrsandbox/shared/httpserver"
)

// BenchmarkGate measures the gate in front of a trivial handler, against
// the same handler without authentication, in one run:
//
//	baseline              no gate
//	payer-token-only      Questionnaire route, payer token (ES256 verify), no EHR token
//	jwks-cached           both tokens, the EHR token seen before (SHA-256 cache hit)
//	jwks-uncached         both tokens, a fresh EHR token every request (ES256 verify)
//	introspection-cached  both tokens, introspection answer cached
//	introspection-cold    both tokens, a fresh EHR token every request (RFC 7662 call to an httptest EHR over loopback)
func BenchmarkGate(b *testing.B) {
	gin.SetMode(gin.ReleaseMode)
	b.Run("baseline", func(b *testing.B) {
		e := httpserver.NewEngine()
		e.GET("/fhir/DocumentReference/:id", func(c *gin.Context) { c.String(200, "ok") })
		b.ReportAllocs()
		for b.Loop() {
			serve(b, e, "", "")
		}
	})
	b.Run("payer-token-only", func(b *testing.B) {
		f := newFixture(b, trust.ModeJWKS)
		payer := f.payerToken("dtr-app", fullScope)
		b.ReportAllocs()
		for b.Loop() {
			serveQ(b, f, payer)
		}
	})
	for _, mode := range []string{trust.ModeJWKS, trust.ModeIntrospection} {
		b.Run(mode+"-cached", func(b *testing.B) {
			f := newFixture(b, mode)
			payer, ehr := f.payerToken("dtr-app", fullScope), f.ehrSrv.token(b, nil)
			serve(b, f.engine, payer, ehr) // warm the caches
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				serve(b, f.engine, payer, ehr)
			}
		})
		name := mode + "-uncached"
		if mode == trust.ModeIntrospection {
			name = mode + "-cold"
		}
		b.Run(name, func(b *testing.B) {
			f := newFixture(b, mode)
			payer := f.payerToken("dtr-app", fullScope)
			serve(b, f.engine, payer, f.ehrSrv.token(b, nil)) // discovery and key set cached, as in steady state
			const pool = 4096
			tokens := make([]string, pool)
			for i := range tokens {
				tokens[i] = f.ehrSrv.token(b, nil)
			}
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				if i == pool {
					b.StopTimer()
					for j := range tokens { // never reuse a token: each one is cold
						tokens[j] = f.ehrSrv.token(b, nil)
					}
					i = 0
					b.StartTimer()
				}
				serve(b, f.engine, payer, tokens[i])
				i++
			}
		})
	}
}

func serve(b *testing.B, h *gin.Engine, payer, ehr string) {
	req := httptest.NewRequest("GET", "/fhir/DocumentReference/d1", nil)
	if payer != "" {
		req.Header.Set("Authorization", "Bearer "+payer)
	}
	if ehr != "" {
		req.Header.Set(HeaderEHRAuthorization, "Bearer "+ehr)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		b.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

func serveQ(b *testing.B, f *fixture, payer string) {
	req := httptest.NewRequest("GET", "/fhir/Questionnaire/q1", nil)
	req.Header.Set("Authorization", "Bearer "+payer)
	rec := httptest.NewRecorder()
	f.engine.ServeHTTP(rec, req)
	if rec.Code != 200 {
		b.Fatalf("%d %s", rec.Code, rec.Body)
	}
}
