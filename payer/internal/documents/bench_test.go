package documents

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// benchCreate measures saves through the handler: decode, confinement,
// render, insert with index and the AuditEvent in one transaction.
func benchCreate(b *testing.B, driver string) {
	db := openDB(b, driver)
	e := newEnv(b, db, nil)
	body := docRef("", questionnaireResponse(""))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if r := e.do("p1", "POST", "/fhir/DocumentReference", body); r.Code != http.StatusCreated {
			b.Fatalf("%d %s", r.Code, r.Body)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "saves/s")
}

func BenchmarkCreateSQLite(b *testing.B)   { benchCreate(b, "sqlite") }
func BenchmarkCreatePostgres(b *testing.B) { benchCreate(b, "postgres") }

// BenchmarkSearch compares an authorized DocumentReference search through
// the handler (principal, compile, creator-scope filter, AuditEvent write,
// Bundle encoding) with the same compiled query run on the store alone
// (baseline), on SQLite with 200 documents per patient.
func BenchmarkSearch(b *testing.B) {
	db := openDB(b, "sqlite")
	e := newEnv(b, db, nil)
	body := docRef("", questionnaireResponse(""))
	for range 200 {
		e.create("p1", TypeDocumentReference, body)
		e.create("p2", TypeDocumentReference, body)
	}
	const query = "status=current&type=http://loinc.org|74465-6&_count=20"
	params, _ := url.ParseQuery(query)
	p := e.callers["p1"]

	b.Run("store-baseline", func(b *testing.B) {
		r := &request{p: p}
		b.ReportAllocs()
		for b.Loop() {
			q, err := Compile(TypeDocumentReference, params, p.Patient)
			if err != nil {
				b.Fatal(err)
			}
			res, err := e.store.Search(context.Background(), q, r.covers)
			if err != nil || len(res.Docs) != 20 || res.Total != 200 {
				b.Fatalf("%v %v", res, err)
			}
		}
	})
	b.Run("handler", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			req := httptest.NewRequest("GET", "/fhir/DocumentReference?"+query, nil)
			req.Header.Set("X-Test-Caller", "p1")
			w := httptest.NewRecorder()
			e.engine.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatalf("%d %s", w.Code, w.Body)
			}
		}
	})
}
