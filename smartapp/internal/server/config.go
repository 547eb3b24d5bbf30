package server

import (
	"path/filepath"

	"dtrsandbox/shared/config"
	"dtrsandbox/smartapp/internal/launch"
	"dtrsandbox/smartapp/internal/signer"
)

// Settings are the app's environment (ARCHITECTURE.md, "Environment").
type Settings struct {
	Common config.Common
	// Addr is the listen address (SMARTAPP_ADDR, ":8442").
	Addr string
	// PublicURL is what browsers and the other services see
	// (SMARTAPP_PUBLIC_URL, "https://localhost:8442").
	PublicURL string
	// EHRs are the issuers the app accepts launches from, with its client id
	// at each (SMARTAPP_EHRS, "https://localhost:8441/fhir=dtr-app").
	EHRs []signer.EHR
	// PayerURL is the payer's FHIR base (SMARTAPP_PAYER_URL,
	// "https://localhost:8443/fhir").
	PayerURL string
	// PayerClientID is the app's client id at the payer
	// (SMARTAPP_PAYER_CLIENT_ID, "dtr-app").
	PayerClientID string
	// SigningKeyPath is the ES384 private key (SMARTAPP_SIGNING_KEY,
	// "{data}/smartapp/keys/signing-es384.pem"), created on first start.
	SigningKeyPath string
}

// LoadSettings reads the SANDBOX_* and SMARTAPP_* variables and reports
// every problem at once.
func LoadSettings(env *config.Env) (Settings, error) {
	c := env.LoadCommon()
	scheme := c.Scheme()
	s := Settings{
		Common:         c,
		Addr:           env.String("SMARTAPP_ADDR", ":8442"),
		PublicURL:      env.URL("SMARTAPP_PUBLIC_URL", scheme+"://localhost:8442"),
		PayerURL:       env.URL("SMARTAPP_PAYER_URL", scheme+"://localhost:8443/fhir"),
		PayerClientID:  env.String("SMARTAPP_PAYER_CLIENT_ID", "dtr-app"),
		SigningKeyPath: env.String("SMARTAPP_SIGNING_KEY", filepath.Join(c.DataDir, "smartapp", "keys", "signing-es384.pem")),
	}
	ehrs, err := launch.ParseEHRs(env.String("SMARTAPP_EHRS", scheme+"://localhost:8441/fhir=dtr-app"))
	if err != nil {
		env.Fail(err)
	}
	s.EHRs = ehrs
	return s, env.Err()
}
