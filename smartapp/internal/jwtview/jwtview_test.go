package jwtview

import (
	"encoding/base64"
	"testing"
)

func TestDecode(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	raw := enc([]byte(`{"alg":"ES256","typ":"at+jwt"}`)) + "." + enc([]byte(`{"sub":"prac-1"}`)) + ".c2ln"
	v, err := Decode(raw)
	if err != nil || string(v.Header) != `{"alg":"ES256","typ":"at+jwt"}` || string(v.Payload) != `{"sub":"prac-1"}` {
		t.Fatalf("%s %s %v", v.Header, v.Payload, err)
	}
	for _, bad := range []string{"", "a.b", "opaque", enc([]byte(`[1]`)) + "." + enc([]byte(`{}`)) + ".x", "!!.e30.x"} {
		if _, err := Decode(bad); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}
