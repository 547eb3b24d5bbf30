// Package testworld wires the app's parts (signer, payer and EHR clients,
// form flow, sessions) to the stand-in EHR and payer, for the unit tests of
// those parts. Nothing here runs outside tests.
package testworld

import (
	"context"
	"net/http"
	"testing"
	"time"

	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/smart"
	"dtrsandbox/smartapp/internal/discovery"
	"dtrsandbox/smartapp/internal/dtr"
	"dtrsandbox/smartapp/internal/ehr"
	"dtrsandbox/smartapp/internal/jwtview"
	"dtrsandbox/smartapp/internal/launch"
	"dtrsandbox/smartapp/internal/payer"
	"dtrsandbox/smartapp/internal/session"
	"dtrsandbox/smartapp/internal/signer"
	"dtrsandbox/smartapp/internal/standin"
)

// World is the app's back end against stand-ins.
type World struct {
	Key      *jwks.SigningKey
	Clock    *standin.Clock
	EHR      *standin.EHR
	Payer    *standin.Payer
	Signer   *signer.Signer
	PayerAPI *payer.Client
	EHRAPI   *ehr.Client
	Flow     *dtr.Service
	Sessions *session.Store
}

// New builds a world whose EHR launches with the home-oxygen order.
func New(t testing.TB, opts standin.EHROptions) *World {
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
	w := &World{Key: key, Clock: standin.NewClock()}
	w.EHR = standin.NewEHR(t, opts)
	w.Payer = standin.NewPayer(t, opts.AppJWKSURI, standin.SeedQuestionnaire(t, "home-oxygen"))
	w.Payer.Now = w.Clock.Now
	w.Payer.Patient = w.EHR.Issuer() + "/Patient/" + w.EHR.Opts.Patient
	hc := &http.Client{Timeout: 10 * time.Second}
	disc := discovery.New(discovery.Config{HTTP: hc, Now: w.Clock.Now})
	w.Signer, err = signer.New(signer.Config{
		Key: key, EHRs: []signer.EHR{{Issuer: w.EHR.Issuer(), ClientID: "dtr-app"}},
		PayerFHIRBase: w.Payer.FHIRBase(), PayerClientID: "dtr-app",
		Discovery: disc, Keys: jwks.NewRemote(hc, jwks.RemoteOptions{}), Now: w.Clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	w.PayerAPI, err = payer.New(payer.Config{FHIRBase: w.Payer.FHIRBase(), HTTP: hc, Signer: w.Signer, Now: w.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	w.EHRAPI = ehr.New(hc, w.Clock.Now)
	w.Flow = &dtr.Service{Payer: w.PayerAPI, EHR: w.EHRAPI, Now: w.Clock.Now}
	w.Sessions = session.NewStore(w.Clock.Now)
	return w
}

// Session is an authenticated session as the callback makes it: an EHR
// token minted by the stand-in EHR and verified by the signer.
func (w *World) Session(t testing.TB, ttl time.Duration) *session.Session {
	t.Helper()
	raw, err := w.EHR.MintAccessToken(ttl)
	if err != nil {
		t.Fatal(err)
	}
	att, err := w.Signer.VerifyEHRAccessToken(context.Background(), w.EHR.Issuer(), raw)
	if err != nil {
		t.Fatal(err)
	}
	c := att.Claims()
	view, _ := jwtview.Decode(raw)
	res := &launch.Result{
		Issuer: w.EHR.Issuer(), ClientID: "dtr-app", AccessToken: raw, Attestation: att,
		ExpiresAt: att.ExpiresAt(), Scope: c.Scope, Patient: c.Patient, Encounter: c.Encounter,
		FHIRUser: c.FHIRUser, FHIRContext: c.FHIRContext, AccessTokenView: view,
	}
	s, err := w.Sessions.Promote(nil, res)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
