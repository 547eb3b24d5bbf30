package discovery_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"dtrsandbox/smartapp/internal/discovery"
	"dtrsandbox/smartapp/internal/standin"
)

func TestGetCachesAndValidates(t *testing.T) {
	var hits atomic.Int64
	body := `{"token_endpoint":"https://as.example/token","capabilities":["client-confidential-asymmetric"],"grant_types_supported":["client_credentials"]}`
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path != "/fhir/.well-known/smart-configuration" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	clock := standin.NewClock()
	c := discovery.New(discovery.Config{Now: clock.Now})
	ctx := context.Background()
	for range 3 {
		doc, err := c.Get(ctx, srv.URL+"/fhir/")
		if err != nil || doc.TokenEndpoint != "https://as.example/token" {
			t.Fatalf("%+v %v", doc, err)
		}
	}
	if hits.Load() != 1 {
		t.Fatalf("%d fetches, want 1", hits.Load())
	}
	clock.Advance(6 * time.Minute)
	body = `{"capabilities":["launch-ehr"]}`
	_, err := c.Get(ctx, srv.URL+"/fhir")
	var de *discovery.Error
	if !errors.As(err, &de) || hits.Load() != 2 {
		t.Fatalf("document without token_endpoint: %v (%d fetches)", err, hits.Load())
	}
	body = `{"token_endpoint":"/relative","capabilities":["x"],"grant_types_supported":["client_credentials"]}`
	clock.Advance(time.Minute)
	if _, err := c.Get(ctx, srv.URL+"/fhir"); err == nil {
		t.Fatal("relative token_endpoint accepted")
	}
	status = http.StatusServiceUnavailable
	clock.Advance(time.Minute)
	if _, err := c.Get(ctx, srv.URL+"/fhir"); !errors.As(err, &de) || de.Hint == "" {
		t.Fatalf("503: %v", err)
	}
	n := hits.Load()
	_, _ = c.Get(ctx, srv.URL+"/fhir") // failure remembered for a few seconds
	if hits.Load() != n {
		t.Fatal("a failing server is fetched again at once")
	}
}
