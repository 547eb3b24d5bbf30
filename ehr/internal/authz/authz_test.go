package authz

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ory/fosite"

	"dtrsandbox/ehr/internal/launch"
	"dtrsandbox/shared/oautherr"
	"dtrsandbox/shared/smart"
)

func TestValidAppURL(t *testing.T) {
	for raw, want := range map[string]bool{
		"https://app.example/cb":          true,
		"https://app.example:8442/cb?x=1": true,
		"http://127.0.0.1:9000/cb":        true,
		"http://[::1]:9000/cb":            true,
		"http://localhost/cb":             true,
		"http://app.example/cb":           false,
		"https://app.example/cb#frag":     false,
		"https://user@app.example/cb":     false,
		"/cb":                             false,
		"javascript:alert(1)":             false,
		"custom.scheme:/cb":               false,
		"https:opaque":                    false,
		"https://app.example/c b":         false,
		"https://app.example/cb\u2028":    false,
		"https://app.example/caf\u00e9":   false,
		"https://app.example/cb\x7f":      false,
		"https://app.example/cb\x00":      false,
		"https://app.example/%63b":        true,
		"https://app.example\\@evil/cb":   false,
		"":                                false,
	} {
		if got := validAppURL(raw); got != want {
			t.Errorf("validAppURL(%q) = %v, want %v", raw, got, want)
		}
	}
}

func TestGrantedScopes(t *testing.T) {
	scopes := func(s string) smart.Scopes {
		sc, err := smart.ParseScopes(s)
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	all := "openid fhirUser launch launch/patient launch/encounter offline_access patient/*.rs user/*.rs system/*.rs custom"
	cases := []struct {
		name string
		p    *pending
		want string
	}{
		{"EHR launch with encounter", &pending{interaction: &interaction{patient: "pat-1", launch: &launch.Context{Encounter: "enc-1"}}, scopes: scopes(all)},
			"openid fhirUser launch launch/patient launch/encounter offline_access patient/*.rs user/*.rs custom"},
		{"EHR launch without encounter", &pending{interaction: &interaction{patient: "pat-1", launch: &launch.Context{}}, scopes: scopes(all)},
			"openid fhirUser launch launch/patient offline_access patient/*.rs user/*.rs custom"},
		{"standalone without patient", &pending{interaction: &interaction{}, scopes: scopes(all)},
			"openid fhirUser offline_access user/*.rs custom"},
		{"standalone with patient", &pending{interaction: &interaction{patient: "pat-2"}, scopes: scopes(all)},
			"openid fhirUser launch/patient offline_access patient/*.rs user/*.rs custom"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := grantedScopes(c.p); !slices.Equal(got, scopes(c.want).Strings()) {
				t.Fatalf("granted %v, want %s", got, c.want)
			}
		})
	}
}

func TestFromFosite(t *testing.T) {
	cases := []struct {
		in     error
		code   string
		status int
	}{
		{fosite.ErrInvalidGrant.WithHint("used"), "invalid_grant", 400},
		{fosite.ErrInvalidClient, "invalid_client", 401},
		{fosite.ErrJTIKnown, "invalid_request", 400},
		{fosite.ErrInvalidState, "invalid_request", 400},
		{fosite.ErrServerError.WithDebug("db password is hunter2"), "server_error", 500},
		{errors.New("boom"), "server_error", 500},
		{oautherr.InvalidScope("nope"), "invalid_scope", 400},
	}
	for _, c := range cases {
		e := fromFosite(c.in)
		if e.Code != c.code || e.Status != c.status {
			t.Errorf("%v -> %s %d, want %s %d", c.in, e.Code, e.Status, c.code, c.status)
		}
		if e.Code == "server_error" && e.Description != "The server could not complete the request." {
			t.Errorf("server error leaks %q", e.Description)
		}
	}
	// Round trip from shared code keeps the code and the hint.
	back := fromFosite(toFosite(oautherr.InvalidClient("bad assertion")))
	if back.Code != "invalid_client" || back.Status != 401 || !strings.Contains(back.Description, "bad assertion") {
		t.Fatalf("round trip %+v", back)
	}
}

func TestLoadOrCreateKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	a, err := LoadOrCreateKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a.AccessToken.KID != b.AccessToken.KID || a.IDToken.KID != b.IDToken.KID || string(a.HMAC) != string(b.HMAC) || len(a.HMAC) < 32 {
		t.Fatal("keys changed across loads")
	}
	if a.AccessToken.Alg != "ES256" || a.IDToken.Alg != "RS256" {
		t.Fatalf("algs %s %s", a.AccessToken.Alg, a.IDToken.Alg)
	}
	st, err := os.Stat(filepath.Join(dir, "hmac-secret"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret file mode %v %v", st.Mode(), err)
	}
	if err := os.WriteFile(filepath.Join(dir, "short"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateSecret(filepath.Join(dir, "short")); err == nil {
		t.Fatal("short secret accepted")
	}
}

func TestDescribeScope(t *testing.T) {
	for sc, want := range map[string]string{
		"patient/*.rs":                    "Read and search all records of the selected patient",
		"user/QuestionnaireResponse.cu":   "Create and update QuestionnaireResponse records that you can see",
		"patient/Observation.read":        "Read and search Observation records of the selected patient",
		"launch/patient":                  "Know which patient is selected",
		"patient/Observation.rs?code=x|1": "Read and search Observation records of the selected patient (only those matching code=x|1)",
	} {
		if got := describeScope(sc); got != want {
			t.Errorf("describeScope(%q) = %q, want %q", sc, got, want)
		}
	}
}
