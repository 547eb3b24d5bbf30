package jwks

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// RFC 7638 §3.1: the example RSA key and its SHA-256 thumbprint.
func TestThumbprintRFC7638Vector(t *testing.T) {
	const n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	nb, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil {
		t.Fatal(err)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: 65537}
	got, err := Thumbprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Fatalf("thumbprint %s, want %s", got, want)
	}
	// The JWK form (with kid/alg/use members) must not change the thumbprint.
	sets, err := ParsePublicSet([]byte(`{"keys":[{"kty":"RSA","n":"` + n + `","e":"AQAB","alg":"RS256","kid":"2011-04-29"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	got2, err := Thumbprint(sets.Keys[0].Key)
	if err != nil || got2 != got {
		t.Fatalf("thumbprint via JWK %s, %v", got2, err)
	}
}

func TestGenerate(t *testing.T) {
	tests := []struct {
		alg   string
		check func(t *testing.T, k *SigningKey)
	}{
		{"RS256", wantRSA(2048)},
		{"RS384", wantRSA(2048)},
		{"ES256", wantCurve(elliptic.P256())},
		{"ES384", wantCurve(elliptic.P384())},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			k, err := Generate(tt.alg)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, k)
			if k.Alg != tt.alg || k.Method() == nil || k.Method().Alg() != tt.alg {
				t.Fatalf("alg %q method %v", k.Alg, k.Method())
			}
			tp, _ := Thumbprint(k.Private.Public())
			if k.KID != tp || len(k.KID) != 43 {
				t.Fatalf("kid %q, thumbprint %q", k.KID, tp)
			}
			jwk := k.PublicJWK()
			if jwk.Use != "sig" || jwk.Algorithm != tt.alg || jwk.KeyID != k.KID || !jwk.IsPublic() {
				t.Fatalf("public JWK %+v", jwk)
			}
		})
	}
	if _, err := Generate("HS256"); err == nil {
		t.Fatal("HS256 generated")
	}
	if _, err := Generate("none"); err == nil {
		t.Fatal("none generated")
	}
}

func wantRSA(bits int) func(*testing.T, *SigningKey) {
	return func(t *testing.T, k *SigningKey) {
		r, ok := k.Private.(*rsa.PrivateKey)
		if !ok || r.N.BitLen() != bits {
			t.Fatalf("want RSA-%d, got %T", bits, k.Private)
		}
	}
}

func wantCurve(c elliptic.Curve) func(*testing.T, *SigningKey) {
	return func(t *testing.T, k *SigningKey) {
		e, ok := k.Private.(*ecdsa.PrivateKey)
		if !ok || e.Curve != c {
			t.Fatalf("want %s, got %T", c.Params().Name, k.Private)
		}
	}
}

func TestLoadOrCreateRoundTripAndPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys", "nested")
	path := filepath.Join(dir, "signing.pem")

	k1, err := LoadOrCreate(path, "ES384")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("key dir mode %v, want 0700", di.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if b, _ := pem.Decode(data); b == nil || b.Type != "PRIVATE KEY" {
		t.Fatalf("not a PKCS#8 PEM file:\n%s", data)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}

	k2, err := LoadOrCreate(path, "ES384")
	if err != nil {
		t.Fatal(err)
	}
	if k1.KID != k2.KID {
		t.Fatalf("reload changed kid: %s != %s", k1.KID, k2.KID)
	}
	if !k1.Private.(*ecdsa.PrivateKey).Equal(k2.Private) {
		t.Fatal("reload gave a different key")
	}

	for _, wrong := range []string{"ES256", "RS256", "RS384"} {
		if _, err := LoadOrCreate(path, wrong); err == nil {
			t.Errorf("existing ES384 key accepted for %s", wrong)
		}
	}
	if k3, _ := LoadOrCreate(path, "ES384"); k3 == nil || k3.KID != k1.KID {
		t.Fatal("refusal replaced the key")
	}
}

func TestLoadOrCreateRSA(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rsa.pem")
	k1, err := LoadOrCreate(path, "RS384")
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreate(path, "RS256") // same key type fits either RSA alg
	if err != nil {
		t.Fatal(err)
	}
	if k1.KID != k2.KID || k2.Alg != "RS256" {
		t.Fatalf("kid %s/%s alg %s", k1.KID, k2.KID, k2.Alg)
	}
	if _, err := LoadOrCreate(path, "ES256"); err == nil {
		t.Fatal("RSA key accepted for ES256")
	}
}

func TestLoadOrCreateRefusesGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(path, "ES256"); err == nil {
		t.Fatal("garbage accepted")
	}
	if b, _ := os.ReadFile(path); string(b) != "not a key" {
		t.Fatal("garbage overwritten")
	}
}

func TestLoadOrCreateConcurrentAgree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.pem")
	const n = 8
	kids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := LoadOrCreate(path, "ES256")
			if err != nil {
				t.Error(err)
				return
			}
			kids[i] = k.KID
		}()
	}
	wg.Wait()
	onDisk, err := LoadOrCreate(path, "ES256")
	if err != nil {
		t.Fatal(err)
	}
	for i, kid := range kids {
		if kid != onDisk.KID {
			t.Errorf("caller %d uses %s, disk has %s", i, kid, onDisk.KID)
		}
	}
}
