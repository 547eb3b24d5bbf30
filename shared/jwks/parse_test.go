package jwks

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

func mustGenerate(t testing.TB, alg string) *SigningKey {
	t.Helper()
	k, err := Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// jwkMap renders a key's public JWK as a mutable map.
func jwkMap(t testing.TB, k *SigningKey) map[string]any {
	t.Helper()
	b, err := json.Marshal(k.PublicJWK())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func setJSON(t testing.TB, keys ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMarshalPublicAndHandler(t *testing.T) {
	es, rs := mustGenerate(t, "ES256"), mustGenerate(t, "RS256")
	s := Set{es, rs}
	body, err := s.MarshalPublic()
	if err != nil {
		t.Fatal(err)
	}
	for _, private := range []string{`"d"`, `"p"`, `"q"`, `"dp"`, `"dq"`, `"qi"`} {
		if strings.Contains(string(body), private) {
			t.Fatalf("private member %s published: %s", private, body)
		}
	}
	parsed, err := ParsePublicSet(body)
	if err != nil {
		t.Fatalf("our own set does not parse strictly: %v", err)
	}
	if len(parsed.Keys) != 2 || parsed.Keys[0].KeyID != es.KID || parsed.Keys[1].KeyID != rs.KID {
		t.Fatalf("keys %+v", parsed.Keys)
	}

	rec := httptest.NewRecorder()
	Handler(s).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" ||
		rec.Header().Get("Cache-Control") != "public, max-age=300" || rec.Body.String() != string(body) {
		t.Fatalf("handler answered %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	rec = httptest.NewRecorder()
	Handler(s).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/.well-known/jwks.json", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST answered %d", rec.Code)
	}
}

func TestParsePublicSetRefusals(t *testing.T) {
	es := mustGenerate(t, "ES256")
	rs := mustGenerate(t, "RS256")
	priv, err := json.Marshal(jose.JSONWebKey{Key: es.Private, KeyID: es.KID})
	if err != nil {
		t.Fatal(err)
	}
	with := func(k *SigningKey, mut func(m map[string]any)) map[string]any {
		m := jwkMap(t, k)
		mut(m)
		return m
	}
	many := make([]map[string]any, 0, 21)
	for i := range 21 {
		many = append(many, with(es, func(m map[string]any) { m["kid"] = fmt.Sprint("k", i) }))
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"private EC key", []byte(`{"keys":[` + string(priv) + `]}`)},
		{"private member in upper case", setJSON(t, with(es, func(m map[string]any) { m["D"] = "AAAA" }))},
		{"RSA prime without d", setJSON(t, with(rs, func(m map[string]any) { m["p"] = "AAAA" }))},
		{"symmetric key", []byte(`{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0c2VjcmV0c2VjcmV0"}]}`)},
		{"no kid", setJSON(t, with(es, func(m map[string]any) { delete(m, "kid") }))},
		{"empty kid", setJSON(t, with(es, func(m map[string]any) { m["kid"] = "" }))},
		{"duplicate kid", setJSON(t, jwkMap(t, es), with(rs, func(m map[string]any) { m["kid"] = es.KID }))},
		{"use enc", setJSON(t, with(es, func(m map[string]any) { m["use"] = "enc" }))},
		{"21 keys", setJSON(t, many...)},
		{"over 64 KiB", []byte(`{"keys":[],"pad":"` + strings.Repeat("x", 64<<10) + `"}`)},
		{"no keys member", []byte(`{"kids":[]}`)},
		{"keys not an array", []byte(`{"keys":{}}`)},
		{"case-variant keys member", []byte(`{"keys":[],"KEYS":[]}`)},
		{"trailing data", []byte(`{"keys":[]} {}`)},
		{"not JSON", []byte(`keys`)},
		{"EC point off the curve", setJSON(t, with(es, func(m map[string]any) { m["y"] = m["x"] }))},
		{"missing kty", setJSON(t, with(es, func(m map[string]any) { delete(m, "kty") }))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if set, err := ParsePublicSet(tt.data); err == nil {
				t.Fatalf("accepted: %+v", set)
			}
		})
	}
}

func TestParsePublicSetAccepts(t *testing.T) {
	es, rs := mustGenerate(t, "ES384"), mustGenerate(t, "RS384")
	noUse := jwkMap(t, rs)
	delete(noUse, "use")
	data := setJSON(t, jwkMap(t, es), noUse,
		map[string]any{"kty": "OKP", "crv": "X448", "kid": "x", "x": "AAAA"}) // unknown type: skipped
	set, err := ParsePublicSet(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 {
		t.Fatalf("%d keys", len(set.Keys))
	}
	if s, err := ParsePublicSet([]byte(`{"keys":[]}`)); err != nil || len(s.Keys) != 0 {
		t.Fatalf("empty set: %v", err)
	}
}

func TestFindKey(t *testing.T) {
	es256, es384, rs := mustGenerate(t, "ES256"), mustGenerate(t, "ES384"), mustGenerate(t, "RS256")
	noAlg := jwkMap(t, rs)
	delete(noAlg, "alg")
	noAlg["kid"] = "rsa-no-alg"
	set, err := ParsePublicSet(setJSON(t, jwkMap(t, es256), jwkMap(t, es384), jwkMap(t, rs), noAlg))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		kid, alg string
		want     error // nil: found
	}{
		{es256.KID, "ES256", nil},
		{es384.KID, "ES384", nil},
		{rs.KID, "RS256", nil},
		{"rsa-no-alg", "RS384", nil},
		{"rsa-no-alg", "PS256", nil},
		{es256.KID, "ES384", ErrKeyMismatch},    // key's own alg differs
		{rs.KID, "RS384", ErrKeyMismatch},       // key's own alg differs
		{"rsa-no-alg", "ES256", ErrKeyMismatch}, // wrong type
		{strings.ToUpper(es256.KID), "ES256", ErrKeyNotFound},
		{es256.KID + " ", "ES256", ErrKeyNotFound},
		{"", "ES256", ErrKeyNotFound},
		{es256.KID, "HS256", ErrUnsupportedAlg},
		{es256.KID, "none", ErrUnsupportedAlg},
	}
	for _, tt := range tests {
		t.Run(tt.kid+"/"+tt.alg, func(t *testing.T) {
			key, err := FindKey(set, tt.kid, tt.alg)
			if tt.want == nil {
				if err != nil || key == nil {
					t.Fatalf("not found: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}

	// The curve is checked even when the key names no alg.
	p256 := jwkMap(t, es256)
	delete(p256, "alg")
	set2, _ := ParsePublicSet(setJSON(t, p256))
	if _, err := FindKey(set2, es256.KID, "ES384"); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("P-256 key accepted for ES384: %v", err)
	}
}
