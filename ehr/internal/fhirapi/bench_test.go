package fhirapi

import (
	"context"
	"net/http/httptest"
	"testing"
)

// BenchmarkRead compares an authorized FHIR read of Patient/pat-1 through
// the whole handler (gin routing, bearer parsing, in-test verifier, scope
// grant, compartment check, response writing) with the same read from the
// store alone, in one run.
func BenchmarkRead(b *testing.B) {
	a := newAPI(b)
	ctx := context.Background()

	b.Run("baseline_store_read", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rec, err := a.store.Read(ctx, "Patient", "pat-1")
			if err != nil || rec.ID != "pat-1" {
				b.Fatal(err)
			}
		}
	})
	b.Run("authorized_api_read", func(b *testing.B) {
		b.ReportAllocs()
		r := httptest.NewRequest("GET", "/fhir/Patient/pat-1", nil)
		r.Header.Set("Authorization", "Bearer p1-rs")
		for b.Loop() {
			w := httptest.NewRecorder()
			a.engine.ServeHTTP(w, r)
			if w.Code != 200 {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
}
