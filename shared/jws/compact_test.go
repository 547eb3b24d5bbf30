package jws

import (
	"encoding/base64"
	"testing"
)

func TestDecode(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	h, p, s := enc([]byte(`{"alg":"ES256"}`)), enc([]byte(`{"iss":"x"}`)), enc([]byte{1, 2, 3, 4})
	c, err := Decode(h + "." + p + "." + s)
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Header) != `{"alg":"ES256"}` || string(c.Payload) != `{"iss":"x"}` || len(c.Signature) != 4 || c.SigningInput != h+"."+p {
		t.Fatalf("%+v", c)
	}

	// enc([]byte{1,2,3,4}) is "AQIDBA": its last character carries 4
	// unused bits, so "AQIDBB" decodes to the same bytes when lax.
	for name, raw := range map[string]string{
		"empty":                 "",
		"two parts":             h + "." + p,
		"four parts":            h + "." + p + "." + s + "." + s,
		"empty signature":       h + "." + p + ".",
		"empty header":          "." + p + "." + s,
		"padding":               h + "." + p + "." + s + "==",
		"line break":            h + "." + p + "\n." + s,
		"standard alphabet":     h + "." + p + ".+/" + s,
		"non-canonical":         h + "." + p + ".AQIDBB",
		"header not base64url":  "A." + p + "." + s,
		"payload not base64url": h + ".A." + s,
	} {
		t.Run(name, func(t *testing.T) {
			if c, err := Decode(raw); err == nil {
				t.Fatalf("accepted: %+v", c)
			}
		})
	}
}

func TestUnmarshalObject(t *testing.T) {
	var v map[string]any
	for _, ok := range []string{`{}`, " \n{\"a\":1}"} {
		if err := UnmarshalObject([]byte(ok), &v); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{``, `[]`, `"x"`, `null`, `1`, `{`} {
		if err := UnmarshalObject([]byte(bad), &v); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
