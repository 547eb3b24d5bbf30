package server

import (
	"os"
	"path/filepath"
	"testing"

	"dtrsandbox/shared/config"
	"dtrsandbox/shared/jwks"
)

// TestSigningKeyUnderTheDataDirOrConfigured: the vendor signer's key is
// {SANDBOX_DATA_DIR}/smartapp/keys/signing-es384.pem unless
// SMARTAPP_SIGNING_KEY names another file; it is created on first start
// (readable by its owner only) and the same key is used on every later
// start.
func TestSigningKeyUnderTheDataDirOrConfigured(t *testing.T) {
	data := t.TempDir()
	st, err := LoadSettings(config.FromMap(map[string]string{"SANDBOX_DATA_DIR": data}))
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(data, "smartapp", "keys", "signing-es384.pem")
	if st.SigningKeyPath != want {
		t.Fatalf("signing key path %q, want %q", st.SigningKeyPath, want)
	}
	if _, err := os.Stat(want); !os.IsNotExist(err) {
		t.Fatalf("a key exists before the first start: %v", err)
	}
	first, err := jwks.LoadOrCreate(st.SigningKeyPath, jwks.ES384) // what main does
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(want)
	if err != nil {
		t.Fatalf("no key file after the first start: %v", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("key file mode %v: readable by others", fi.Mode().Perm())
	}
	again, err := jwks.LoadOrCreate(st.SigningKeyPath, jwks.ES384)
	if err != nil || again.KID != first.KID || first.Alg != jwks.ES384 {
		t.Fatalf("second start: kid %q, first %q (alg %s), err %v", again.KID, first.KID, first.Alg, err)
	}

	own := filepath.Join(t.TempDir(), "vendor.pem")
	st, err = LoadSettings(config.FromMap(map[string]string{"SANDBOX_DATA_DIR": data, "SMARTAPP_SIGNING_KEY": own}))
	if err != nil || st.SigningKeyPath != own {
		t.Fatalf("SMARTAPP_SIGNING_KEY: path %q, err %v", st.SigningKeyPath, err)
	}
}
