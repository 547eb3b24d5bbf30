package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"dtrsandbox/ehr/internal/authz"
	"dtrsandbox/ehr/internal/launch"
	"dtrsandbox/shared/smart"
)

func readAll(resp *http.Response) []byte {
	b, _ := io.ReadAll(resp.Body)
	return b
}

// TestLaunchAPIRefusals: POST /api/launch refuses anything it cannot bind.
func TestLaunchAPIRefusals(t *testing.T) {
	e := startEHR(t)
	with := func(edit func(r *launch.Request)) launch.Request { r := dtrLaunch(); edit(&r); return r }
	cases := []struct {
		name string
		body any
	}{
		{"unknown client", with(func(r *launch.Request) { r.ClientID = "nobody" })},
		{"client that cannot be launched", with(func(r *launch.Request) { r.ClientID = authz.PayerClientID })},
		{"unknown patient", with(func(r *launch.Request) { r.Patient = "pat-999" })},
		{"no patient", with(func(r *launch.Request) { r.Patient = "" })},
		{"unknown practitioner", with(func(r *launch.Request) { r.Practitioner = "prac-999" })},
		{"patient id as practitioner", with(func(r *launch.Request) { r.Practitioner = "pat-1" })},
		{"unknown encounter", with(func(r *launch.Request) { r.Encounter = "enc-999" })},
		{"malformed id", with(func(r *launch.Request) { r.Patient = "../pat-1" })},
		{"fhirContext not a reference", with(func(r *launch.Request) { r.FHIRContext = []smart.ContextItem{{Reference: "http://x/y"}} })},
		{"fhirContext unknown resource", with(func(r *launch.Request) { r.FHIRContext = []smart.ContextItem{{Reference: "Coverage/cov-999"}} })},
		{"fhirContext patient", with(func(r *launch.Request) { r.FHIRContext = []smart.ContextItem{{Reference: "Patient/pat-1"}} })},
		{"launch_url on a foreign origin", with(func(r *launch.Request) { r.LaunchURL = "https://attacker.example/launch" })},
		{"launch_url over http", with(func(r *launch.Request) { r.LaunchURL = "http://app.example/launch" })},
		{"unknown member", map[string]any{"client_id": "dtr-app", "patient": "pat-1", "practitioner": "prac-1", "user": "admin"}},
		{"case-variant member", map[string]any{"client_id": "dtr-app", "Patient": "pat-1", "practitioner": "prac-1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := e.postJSON("/api/launch", c.body)
			if status != http.StatusBadRequest || oauthError(t, body) != "invalid_request" {
				t.Fatalf("got %d %s", status, body)
			}
		})
	}
	t.Run("not JSON", func(t *testing.T) {
		resp, err := e.client.Post(e.url+"/api/launch", "text/plain", strings.NewReader("client_id=dtr-app"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if body := readAll(resp); resp.StatusCode != 400 || oauthError(t, body) != "invalid_request" {
			t.Fatalf("got %d %s", resp.StatusCode, body)
		}
	})
	t.Run("launch_url on the app's origin", func(t *testing.T) {
		l := e.launch(with(func(r *launch.Request) { r.LaunchURL = e.app.URL + "/launch?tenant=a" }))
		u, _ := url.Parse(l.LaunchURL)
		if u.Query().Get("tenant") != "a" || u.Query().Get("launch") != l.Launch || u.Query().Get("iss") != e.fhir {
			t.Fatalf("launch_url %s", l.LaunchURL)
		}
	})
	t.Run("launch id is 256 bits and single use", func(t *testing.T) {
		l := e.launch(dtrLaunch())
		if len(l.Launch) != 43 {
			t.Fatalf("launch id %q", l.Launch)
		}
		ctx := e.ctx()
		if _, err := e.srv.Launches().Consume(ctx, l.Launch, authz.SmartAppClientID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.srv.Launches().Consume(ctx, l.Launch, authz.SmartAppClientID); err == nil {
			t.Fatal("consumed twice")
		}
	})
}

// TestPersistence: a restart on the same SQLite file keeps issued tokens,
// refresh tokens and unused launches.
func TestPersistence(t *testing.T) {
	e := startEHR(t)
	code, verifier := e.ehrLaunchCode(dtrScope)
	g, status, body := e.exchange(code, verifier)
	if g == nil {
		t.Fatalf("exchange: %d %s", status, body)
	}
	pending := e.launch(dtrLaunch())

	e = e.restart()

	if m := e.introspect(g.AccessToken); m["active"] != true || m["patient"] != "pat-1" {
		t.Fatalf("token after restart: %v", m)
	}
	verifier = oauth2.GenerateVerifier()
	b := e.browser()
	code = b.get(e.authorizeURL(authParams{scope: dtrScope, state: "after-restart", verifier: verifier, launch: pending.Launch})).codeFrom(t, e, "after-restart")
	if tr, status, body := e.exchange(code, verifier); tr == nil || tr.Encounter != "enc-1" {
		t.Fatalf("launch after restart: %d %s", status, body)
	}
	p := b.get(e.authorizeURL(authParams{scope: dtrScope, state: "after-restart-2", verifier: verifier, launch: pending.Launch}))
	if got := p.errorFrom(t, e.app.URL+"/callback"); got != "invalid_request" {
		t.Fatalf("second use: %s", got)
	}
	refreshed, status, body := e.token(e.appTokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {g.RefreshToken}}))
	if refreshed == nil {
		t.Fatalf("refresh after restart: %d %s", status, body)
	}
	var m map[string]any
	json.Unmarshal(body, &m)
	if m["patient"] != "pat-1" {
		t.Fatalf("refresh answer %v", m)
	}
}
