package launch_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/smart"
	"dtrsandbox/smartapp/internal/discovery"
	"dtrsandbox/smartapp/internal/launch"
	"dtrsandbox/smartapp/internal/signer"
	"dtrsandbox/smartapp/internal/standin"
)

const redirectURI = "https://app.example/callback"

type fixture struct {
	ehr      *standin.EHR
	l        *launch.Launcher
	requests *atomic.Int64 // outbound requests made by the app
}

type countingTransport struct {
	n    *atomic.Int64
	next http.RoundTripper
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

func newFixture(t *testing.T, opts standin.EHROptions) *fixture {
	t.Helper()
	key, err := jwks.Generate(jwks.ES384)
	if err != nil {
		t.Fatal(err)
	}
	app := standin.ServeJWKS(t, key)
	opts.AppJWKSURI = app.URL + "/.well-known/jwks.json"
	if opts.FHIRContext == nil {
		opts.FHIRContext = []smart.ContextItem{{Reference: "Coverage/cov-1"}, {Reference: "DeviceRequest/dr-oxygen-1"}}
	}
	ehr := standin.NewEHR(t, opts)
	n := &atomic.Int64{}
	hc := &http.Client{Transport: countingTransport{n: n, next: http.DefaultTransport}}
	disc := discovery.New(discovery.Config{HTTP: hc})
	keys := jwks.NewRemote(hc, jwks.RemoteOptions{})
	ehrs := []signer.EHR{{Issuer: ehr.Issuer(), ClientID: "dtr-app"}}
	sg, err := signer.New(signer.Config{Key: key, EHRs: ehrs, PayerFHIRBase: "https://payer.example/fhir", PayerClientID: "dtr-app", Discovery: disc, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	l, err := launch.New(launch.Config{RedirectURI: redirectURI, EHRs: ehrs, Discovery: disc, Signer: sg, Keys: keys, HTTP: hc})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{ehr: ehr, l: l, requests: n}
}

// authorize begins a launch and lets the stand-in EHR answer the authorize
// request, returning the callback query it redirects to.
func (f *fixture) authorize(t *testing.T, launchID string) (*launch.Pending, url.Values) {
	t.Helper()
	p, authz, err := f.l.Begin(context.Background(), f.ehr.Issuer(), launchID)
	if err != nil {
		t.Fatal(err)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(authz)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), redirectURI) {
		t.Fatalf("authorize answered %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return p, loc.Query()
}

func TestBeginRefusesUnknownIssuerWithoutAnyRequest(t *testing.T) {
	f := newFixture(t, standin.EHROptions{})
	for _, iss := range []string{"https://evil.example/fhir", f.ehr.Issuer() + "/", strings.ToUpper(f.ehr.Issuer()), ""} {
		p, u, err := f.l.Begin(context.Background(), iss, "abc")
		var le *launch.Error
		if !errors.As(err, &le) || le.Status != http.StatusBadRequest || p != nil || u != "" {
			t.Fatalf("iss %q: pending %v url %q err %v", iss, p, u, err)
		}
	}
	if n := f.requests.Load(); n != 0 {
		t.Fatalf("%d outbound requests for unknown issuers", n)
	}
}

func TestBeginBuildsTheAuthorizeRequest(t *testing.T) {
	f := newFixture(t, standin.EHROptions{})
	p, authz, err := f.l.Begin(context.Background(), f.ehr.Issuer(), "launch-123")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(authz)
	q := u.Query()
	if !strings.HasPrefix(authz, f.ehr.Server.URL+"/authorize?") {
		t.Fatalf("authorize URL %q", authz)
	}
	sum := sha256.Sum256([]byte(p.Verifier))
	want := map[string]string{
		"response_type": "code", "client_id": "dtr-app", "redirect_uri": redirectURI, "aud": f.ehr.Issuer(),
		"launch": "launch-123", "state": p.State, "nonce": p.Nonce, "code_challenge_method": "S256",
		"code_challenge": base64.RawURLEncoding.EncodeToString(sum[:]), "scope": launch.ScopeEHRLaunch,
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	if len(p.State) < 22 || len(p.Verifier) < 43 { // >= 128 bits of state; RFC 7636 minimum verifier length
		t.Fatalf("state %d chars, verifier %d chars", len(p.State), len(p.Verifier))
	}
	if q.Get("code_verifier") != "" || strings.Contains(authz, p.Verifier) {
		t.Fatal("the PKCE verifier left the server")
	}
	p2, authz2, _ := f.l.Begin(context.Background(), f.ehr.Issuer(), "")
	q2 := mustQuery(t, authz2)
	if q2.Has("launch") || !strings.Contains(q2.Get("scope"), "launch/patient") || p2.State == p.State {
		t.Fatalf("standalone authorize query %v", q2)
	}
}

func mustQuery(t *testing.T, s string) url.Values {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

func TestCompleteVerifiesAndSendsPKCE(t *testing.T) {
	f := newFixture(t, standin.EHROptions{NeedPatientBanner: true, Encounter: "enc-1", IDTokenName: "Alice Carter"})
	p, cb := f.authorize(t, "launch-1")
	res, err := f.l.Complete(context.Background(), p, cb)
	if err != nil {
		t.Fatal(err)
	}
	form := f.ehr.LastTokenForm()
	if form.Get("code_verifier") != p.Verifier || form.Get("grant_type") != "authorization_code" || form.Get("redirect_uri") != redirectURI {
		t.Fatalf("token form %v", form)
	}
	if form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || form.Get("client_assertion") == "" {
		t.Fatal("no client assertion")
	}
	if !res.Attestation.Valid() || res.Patient != "pat-1" || res.Encounter != "enc-1" || !res.NeedPatientBanner ||
		res.FHIRUser != f.ehr.Issuer()+"/Practitioner/prac-1" || len(res.FHIRContext) != 2 || res.IDTokenView == nil ||
		res.UserName != "Alice Carter" {
		t.Fatalf("result %+v", res)
	}
	if strings.Contains(string(res.AccessTokenView.Payload), res.AccessToken) {
		t.Fatal("view holds the raw token")
	}
}

func TestCompleteRefusals(t *testing.T) {
	otherNonce := "not-the-nonce"
	tests := []struct {
		name   string
		opts   standin.EHROptions
		mutate func(p *launch.Pending, q url.Values) (*launch.Pending, url.Values)
		want   string // in the message shown to the user
	}{
		{name: "state mismatch", mutate: func(p *launch.Pending, q url.Values) (*launch.Pending, url.Values) {
			q.Set("state", "forged")
			return p, q
		}, want: "state mismatch"},
		{name: "no state", mutate: func(p *launch.Pending, q url.Values) (*launch.Pending, url.Values) {
			q.Del("state")
			return p, q
		}, want: "state mismatch"},
		{name: "no pending sign-in", mutate: func(p *launch.Pending, q url.Values) (*launch.Pending, url.Values) {
			return nil, q
		}, want: "not started here"},
		{name: "authorization server mix-up (RFC 9207 iss)", mutate: func(p *launch.Pending, q url.Values) (*launch.Pending, url.Values) {
			q.Set("iss", "https://other.example/fhir")
			return p, q
		}, want: "another authorization server"},
		{name: "error from the EHR", mutate: func(p *launch.Pending, q url.Values) (*launch.Pending, url.Values) {
			q.Del("code")
			q.Set("error", "access_denied")
			q.Set("error_description", "The user said no")
			return p, q
		}, want: "The user said no"},
		{name: "token endpoint refuses", opts: standin.EHROptions{TokenError: "invalid_grant"}, want: "invalid_grant"},
		{name: "id_token for another audience", opts: standin.EHROptions{IDTokenAudience: "other-app"}, want: "id_token"},
		{name: "id_token from another issuer", opts: standin.EHROptions{IDTokenIssuer: "https://evil.example/fhir"}, want: "id_token"},
		{name: "id_token signed ES256", opts: standin.EHROptions{IDTokenAlg: "ES256"}, want: "id_token"},
		{name: "id_token with another nonce", opts: standin.EHROptions{IDTokenNonce: &otherNonce}, want: "id_token"},
		{name: "id_token signature encoded non-canonically", opts: standin.EHROptions{IDTokenNonCanonical: true}, want: "id_token"},
		{name: "openid granted but no id_token", opts: standin.EHROptions{OmitIDToken: true}, want: "no id_token"},
		{name: "access token for another audience", opts: standin.EHROptions{AccessTokenAudience: "https://payer.example/fhir"}, want: "access token"},
		{name: "access token issued to another client", opts: standin.EHROptions{AccessTokenClientID: "other-app"}, want: "access token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.opts)
			p, q := f.authorize(t, "launch-1")
			if tt.mutate != nil {
				p, q = tt.mutate(p, q)
			}
			res, err := f.l.Complete(context.Background(), p, q)
			var le *launch.Error
			if !errors.As(err, &le) {
				t.Fatalf("completed: %+v (err %v)", res, err)
			}
			if !strings.Contains(le.Message, tt.want) {
				t.Fatalf("message %q lacks %q", le.Message, tt.want)
			}
		})
	}
}

func TestParseEHRs(t *testing.T) {
	ehrs, err := launch.ParseEHRs(" https://a.example/fhir/=dtr-app , http://localhost:8441/fhir=other ")
	if err != nil || len(ehrs) != 2 || ehrs[0].Issuer != "https://a.example/fhir" || ehrs[1].ClientID != "other" {
		t.Fatalf("%+v %v", ehrs, err)
	}
	for _, bad := range []string{"", "https://a.example/fhir", "ftp://a.example=x", "https://a.example/fhir=", "https://a.example=x,https://a.example=y", "=x"} {
		if _, err := launch.ParseEHRs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
