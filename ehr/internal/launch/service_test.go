package launch_test

import (
	"context"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ory/fosite"

	"dtrsandbox/ehr/internal/directory"
	"dtrsandbox/ehr/internal/launch"
	"dtrsandbox/ehr/internal/oauthstore"
	"dtrsandbox/shared/database"
	"dtrsandbox/shared/oautherr"
	"dtrsandbox/shared/smart"
)

// people is a fixed directory.Directory.
type people map[string]bool // "Type/id"

func (p people) Practitioners(context.Context) ([]directory.Person, error) { return nil, nil }
func (p people) Patients(context.Context) ([]directory.Person, error)      { return nil, nil }
func (p people) Exists(_ context.Context, typ, id string) (bool, error)    { return p[typ+"/"+id], nil }

type fixture struct {
	svc *launch.Service
	now atomic.Pointer[time.Time]
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := database.Open(ctx, database.Config{SQLitePath: filepath.Join(t.TempDir(), "l.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { database.Close(db) })
	store, err := oauthstore.New(db, oauthstore.Options{NewSession: func() fosite.Session { return &fosite.DefaultSession{} }})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"app", "other"} {
		if err := store.CreateClient(ctx, &oauthstore.Client{
			DefaultOpenIDConnectClient: &fosite.DefaultOpenIDConnectClient{
				DefaultClient: &fosite.DefaultClient{ID: id, RedirectURIs: []string{"https://" + id + ".example/cb"},
					GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"}, Scopes: []string{"launch"}},
				TokenEndpointAuthMethod: oauthstore.AuthNone,
			},
			LaunchURL: "https://" + id + ".example/launch",
		}); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{}
	now := time.Now()
	f.now.Store(&now)
	f.svc, err = launch.NewService(launch.Config{
		DB: db, Clients: store, FHIRBase: "https://ehr.example/fhir", Now: func() time.Time { return *f.now.Load() },
		Directory: people{"Patient/pat-1": true, "Practitioner/prac-1": true, "Encounter/enc-1": true, "Coverage/cov-1": true},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func request() launch.Request {
	return launch.Request{ClientID: "app", Patient: "pat-1", Practitioner: "prac-1", Encounter: "enc-1",
		FHIRContext: []smart.ContextItem{{Reference: "Coverage/cov-1"}}}
}

func TestCreateAndConsume(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c, err := f.svc.Create(ctx, request())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(c.LaunchURL)
	if u.Host != "app.example" || u.Query().Get("launch") != c.Launch || u.Query().Get("iss") != "https://ehr.example/fhir" {
		t.Fatalf("launch url %s", c.LaunchURL)
	}
	// Another client cannot use it, and its attempt does not spend it.
	if _, err := f.svc.Consume(ctx, c.Launch, "other"); oautherr.As(err).Code != oautherr.CodeInvalidRequest {
		t.Fatalf("foreign: %v", err)
	}
	lc, err := f.svc.Consume(ctx, c.Launch, "app")
	if err != nil {
		t.Fatal(err)
	}
	if lc.Patient != "pat-1" || lc.Practitioner != "prac-1" || lc.Encounter != "enc-1" || lc.FHIRContext[0].Reference != "Coverage/cov-1" {
		t.Fatalf("context %+v", lc)
	}
	if _, err := f.svc.Consume(ctx, c.Launch, "app"); err == nil || oautherr.As(err).Code != oautherr.CodeInvalidRequest {
		t.Fatalf("reuse: %v", err)
	}
}

func TestConsumeExpired(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c, err := f.svc.Create(ctx, request())
	if err != nil {
		t.Fatal(err)
	}
	later := f.now.Load().Add(launch.DefaultTTL)
	f.now.Store(&later)
	if _, err := f.svc.Consume(ctx, c.Launch, "app"); err == nil {
		t.Fatal("expired launch consumed")
	}
}

func TestConsumeConcurrently(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c, err := f.svc.Create(ctx, request())
	if err != nil {
		t.Fatal(err)
	}
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.svc.Consume(ctx, c.Launch, "app"); err == nil {
				ok.Add(1)
			} else if oautherr.As(err).Code != oautherr.CodeInvalidRequest {
				t.Errorf("consume: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("%d consumed the launch", ok.Load())
	}
}
