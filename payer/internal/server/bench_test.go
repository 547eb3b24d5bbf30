package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"dtrsandbox/payer/internal/access"
	"dtrsandbox/payer/internal/audit"
	"dtrsandbox/payer/internal/documents"
	"dtrsandbox/payer/internal/documents/dbtest"
	"dtrsandbox/shared/httpserver"
	"dtrsandbox/shared/smart"
)

// benchQuery is the DocumentReference search every case runs: one page of
// 20 of the patient's 200 documents, filtered on two indexed parameters.
const benchQuery = "/fhir/DocumentReference?status=current&type=http://loinc.org|74465-6&_count=20"

// BenchmarkAuthorizedSearch measures an authorized DocumentReference search
// through the whole payer (routes, rate limiter, gate, documents handler,
// AuditEvent write, Bundle), served in-process, against the same documents
// handler on the same database with the principal injected and no
// authentication at all (baseline), in one run:
//
//	baseline                 documents handler only, principal injected
//	jwks/cached              both tokens seen before: two SHA-256 cache hits
//	jwks/cold                a new EHR token every request: ES256 verification
//	introspection/cached     introspection answer reused (within its TTL)
//	introspection/cold       a new EHR token every request: one RFC 7662 call
//	                         to an httptest EHR over loopback
//
// The payer token is cached in every case (apps reuse it for its 300 s).
func BenchmarkAuthorizedSearch(b *testing.B) {
	for _, mode := range []string{"jwks", "introspection"} {
		w := newWorldMode(b, mode, func(c *Config) { c.RateLimit = 1e9 })
		payer := w.payerToken(fullScope)
		ehr := w.ehrToken("dtr-app", "pat-1")
		h := w.srv.Handler()
		doc := func(method, path, body string, hdr ...string) *httptest.ResponseRecorder {
			req := httptest.NewRequest(method, path, strings.NewReader(body))
			for i := 0; i+1 < len(hdr); i += 2 {
				req.Header.Set(hdr[i], hdr[i+1])
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec
		}
		auth := func(ehr string) []string {
			return []string{"Authorization", "Bearer " + payer, "X-EHR-Authorization", "Bearer " + ehr}
		}
		search := func(b *testing.B, ehr string) {
			if rec := doc("GET", benchQuery, "", auth(ehr)...); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"total":200`) {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
		}
		for range 200 {
			if rec := doc("POST", "/fhir/DocumentReference", drBody, append(auth(ehr), "Content-Type", "application/fhir+json")...); rec.Code != 201 {
				b.Fatalf("seed: %d %s", rec.Code, rec.Body)
			}
		}

		if mode == "jwks" {
			b.Run("baseline", func(b *testing.B) {
				e := unauthenticatedDocuments(b, w)
				b.ReportAllocs()
				for b.Loop() {
					req := httptest.NewRequest("GET", benchQuery, nil)
					rec := httptest.NewRecorder()
					e.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"total":200`) {
						b.Fatalf("%d %s", rec.Code, rec.Body)
					}
				}
			})
		}
		b.Run(mode+"/cached", func(b *testing.B) {
			search(b, ehr) // warm
			b.ReportAllocs()
			for b.Loop() {
				search(b, ehr)
			}
		})
		b.Run(mode+"/cold", func(b *testing.B) {
			const pool = 1024
			tokens := make([]string, pool)
			fill := func() {
				for i := range tokens {
					tokens[i] = w.ehrToken("dtr-app", "pat-1")
				}
			}
			fill()
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				if i == pool { // never reuse a token: each one is cold
					b.StopTimer()
					fill()
					i = 0
					b.StartTimer()
				}
				search(b, tokens[i])
				i++
			}
		})
	}
}

// unauthenticatedDocuments serves the documents handler on w's database
// with the principal the gate would have built for dtr-app at pat-1, and
// no gate.
func unauthenticatedDocuments(b *testing.B, w *world) *gin.Engine {
	db := w.srv.DB()
	fhirBase := w.url + "/fhir"
	store, err := documents.NewStore(db)
	if err != nil {
		b.Fatal(err)
	}
	as, err := audit.NewStore(db, audit.StoreConfig{Source: fhirBase})
	if err != nil {
		b.Fatal(err)
	}
	h, err := documents.NewHandler(documents.Config{Store: store, Audit: as, Base: fhirBase})
	if err != nil {
		b.Fatal(err)
	}
	payerScopes, err1 := smart.ParseScopes(fullScope)
	ehrScopes, err2 := smart.ParseScopes(ehrScope)
	if err1 != nil || err2 != nil {
		b.Fatal(err1, err2)
	}
	p := &access.Principal{
		ClientID: SeedClientID, PayerScopes: payerScopes, PurposeOfUse: "COVERAGE",
		EHR:     &smart.AccessContext{Issuer: w.ehrURL, ClientID: "dtr-app", Subject: "prac-1", FHIRUser: "Practitioner/prac-1", Patient: "pat-1", Scopes: ehrScopes},
		Patient: w.ehrURL + "/Patient/pat-1",
	}
	e := httpserver.NewEngine()
	e.GET("/fhir/DocumentReference", func(c *gin.Context) {
		c.Request = c.Request.WithContext(access.With(c.Request.Context(), p))
	}, h.Search)
	return e
}

// BenchmarkAuthorizedSave measures creates through the whole payer (both
// tokens cached, jwks mode): saves per second on SQLite and PostgreSQL.
func BenchmarkAuthorizedSave(b *testing.B) {
	for _, driver := range []string{"sqlite", "postgres"} {
		b.Run(driver, func(b *testing.B) {
			w := newWorld(b, func(c *Config) {
				c.RateLimit = 1e9
				if driver == "postgres" {
					c.DatabaseURL = dbtest.URL(b)
				}
			})
			hdr := []string{"Authorization", "Bearer " + w.payerToken(fullScope), "X-EHR-Authorization", "Bearer " + w.ehrToken("dtr-app", "pat-1"),
				"Content-Type", "application/fhir+json"}
			h := w.srv.Handler()
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("POST", "/fhir/DocumentReference", strings.NewReader(drBody))
				for i := 0; i+1 < len(hdr); i += 2 {
					req.Header.Set(hdr[i], hdr[i+1])
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusCreated {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "saves/s")
		})
	}
}
