package accesstoken

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/smart"
)

const (
	issuer   = "https://ehr.example/fhir"
	audience = "https://ehr.example/fhir"
)

var testNow = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

var (
	keysOnce              sync.Once
	keyES, keyRS, keyEvil *jwks.SigningKey
)

// testKeys: the issuer's ES256 and RS256 keys and an attacker's ES256 key.
func testKeys(tb testing.TB) (es, rs, evil *jwks.SigningKey) {
	keysOnce.Do(func() {
		var err error
		if keyES, err = jwks.Generate("ES256"); err != nil {
			panic(err)
		}
		if keyRS, err = jwks.Generate("RS256"); err != nil {
			panic(err)
		}
		if keyEvil, err = jwks.Generate("ES256"); err != nil {
			panic(err)
		}
	})
	return keyES, keyRS, keyEvil
}

// issuerKeys is the KeyFunc of a resource server trusting the issuer's keys.
func issuerKeys(tb testing.TB) KeyFunc {
	es, rs, _ := testKeys(tb)
	b, err := jwks.Set{es, rs}.MarshalPublic()
	if err != nil {
		tb.Fatal(err)
	}
	set, err := jwks.ParsePublicSet(b)
	if err != nil {
		tb.Fatal(err)
	}
	return func(_ context.Context, kid, alg string) (crypto.PublicKey, error) {
		return jwks.FindKey(set, kid, alg)
	}
}

func opts() VerifyOptions {
	return VerifyOptions{Issuer: issuer, Audience: audience, Now: func() time.Time { return testNow }}
}

func validClaims() *Claims {
	ident := json.RawMessage(`{"system":"urn:oid:1.2.3","value":"ord-9"}`)
	return &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   "Practitioner/prac-1",
			Audience:  jwt.ClaimStrings{audience},
			ExpiresAt: jwt.NewNumericDate(testNow.Add(time.Hour)),
			IssuedAt:  jwt.NewNumericDate(testNow.Add(-time.Minute)),
			ID:        "tok-1",
		},
		ClientID:  "dtr-app",
		Scope:     "launch openid fhirUser patient/*.rs",
		Patient:   "pat-1",
		Encounter: "enc-1",
		FHIRUser:  "https://ehr.example/fhir/Practitioner/prac-1",
		FHIRContext: []smart.ContextItem{
			{Reference: "DeviceRequest/dr-oxygen-1"},
			{Reference: "Coverage/cov-1", Role: "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/coverage"},
			{Canonical: "http://example.org/Questionnaire/home-o2|1.0", Type: "Questionnaire"},
			{Identifier: &ident, Type: "ServiceRequest"},
		},
	}
}

// forge signs arbitrary header and claims with any jwt method and key.
func forge(tb testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims any) string {
	tb.Helper()
	tok := &jwt.Token{Method: method, Header: header, Claims: claimsOf(tb, claims)}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func claimsOf(tb testing.TB, v any) jwt.MapClaims {
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	var m jwt.MapClaims
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestSignVerifyGoldenRoundTrip(t *testing.T) {
	es, rs, _ := testKeys(t)
	for _, key := range []*jwks.SigningKey{es, rs} {
		t.Run(key.Alg, func(t *testing.T) {
			in := validClaims()
			raw, err := Sign(key, in)
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(raw, ".")
			hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
			if want := fmt.Sprintf(`{"alg":%q,"kid":%q,"typ":"at+jwt"}`, key.Alg, key.KID); string(hdr) != want {
				t.Errorf("header %s\nwant   %s", hdr, want)
			}
			payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
			const golden = `{"iss":"https://ehr.example/fhir","sub":"Practitioner/prac-1","aud":["https://ehr.example/fhir"],"exp":1740826800,"iat":1740823140,"jti":"tok-1","client_id":"dtr-app","scope":"launch openid fhirUser patient/*.rs","patient":"pat-1","encounter":"enc-1","fhirUser":"https://ehr.example/fhir/Practitioner/prac-1","fhirContext":[{"reference":"DeviceRequest/dr-oxygen-1"},{"reference":"Coverage/cov-1","role":"http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/coverage"},{"canonical":"http://example.org/Questionnaire/home-o2|1.0","type":"Questionnaire"},{"identifier":{"system":"urn:oid:1.2.3","value":"ord-9"},"type":"ServiceRequest"}]}`
			if string(payload) != golden {
				t.Errorf("payload %s\nwant    %s", payload, golden)
			}
			out, err := Verify(context.Background(), raw, issuerKeys(t), opts())
			if err != nil {
				t.Fatal(err)
			}
			// time.Time carries a location, so compare the JSON forms.
			gotJSON, _ := json.Marshal(out)
			if string(gotJSON) != golden {
				t.Fatalf("round trip changed the claims:\n got %s\nwant %s", gotJSON, golden)
			}
			if !out.ExpiresAt.Equal(in.ExpiresAt.Time) || !reflect.DeepEqual(out.FHIRContext[1], in.FHIRContext[1]) {
				t.Fatalf("round trip: %+v", out)
			}
		})
	}
}

func TestSignRequiresClaims(t *testing.T) {
	es, _, _ := testKeys(t)
	for name, mut := range map[string]func(c *Claims){
		"iss":       func(c *Claims) { c.Issuer = "" },
		"sub":       func(c *Claims) { c.Subject = "" },
		"aud":       func(c *Claims) { c.Audience = nil },
		"empty aud": func(c *Claims) { c.Audience = jwt.ClaimStrings{""} },
		"exp":       func(c *Claims) { c.ExpiresAt = nil },
		"iat":       func(c *Claims) { c.IssuedAt = nil },
		"jti":       func(c *Claims) { c.ID = "" },
		"client_id": func(c *Claims) { c.ClientID = "" },
		"exp<=iat":  func(c *Claims) { c.ExpiresAt = c.IssuedAt },
	} {
		c := validClaims()
		mut(c)
		if _, err := Sign(es, c); err == nil {
			t.Errorf("signed without %s", name)
		}
	}
	if _, err := Sign(nil, validClaims()); err == nil {
		t.Error("signed without a key")
	}
}

func TestVerifyReasons(t *testing.T) {
	es, rs, evil := testKeys(t)
	pubPEM := func() []byte {
		der, _ := x509.MarshalPKIXPublicKey(es.Private.Public())
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}()
	hdr := func(alg, kid, typ string) map[string]any {
		h := map[string]any{"alg": alg, "kid": kid}
		if typ != "" {
			h["typ"] = typ
		}
		return h
	}
	with := func(mut func(c *Claims)) *Claims { c := validClaims(); mut(c); return c }
	without := func(name string) map[string]any {
		m := claimsOf(t, validClaims())
		delete(m, name)
		return m
	}
	good := func() string { s, _ := Sign(es, validClaims()); return s }

	tests := []struct {
		name string
		raw  func(t *testing.T) string
		opts func(o *VerifyOptions)
		want Reason
	}{
		{"oversize", func(t *testing.T) string {
			return forge(t, jwt.SigningMethodES256, es.Private, hdr("ES256", es.KID, "at+jwt"),
				with(func(c *Claims) { c.Scope = strings.Repeat("patient/*.rs ", 700) }))
		}, nil, ReasonTooLarge},
		{"oversize for a smaller MaxSize", func(t *testing.T) string { return good() }, func(o *VerifyOptions) { o.MaxSize = 100 }, ReasonTooLarge},
		{"opaque refresh token", func(t *testing.T) string { return "rt_2p9Qk1sXbVv0m6Zr3c8UuA" }, nil, ReasonMalformed},
		{"empty", func(t *testing.T) string { return "" }, nil, ReasonMalformed},
		{"four parts", func(t *testing.T) string { return good() + ".AAAA" }, nil, ReasonMalformed},
		{"whitespace inside", func(t *testing.T) string { g := good(); return g[:20] + "\r\n" + g[20:] }, nil, ReasonMalformed},
		{"claims of the wrong type", func(t *testing.T) string {
			m := claimsOf(t, validClaims())
			m["scope"] = []string{"a", "b"}
			return forge(t, jwt.SigningMethodES256, es.Private, hdr("ES256", es.KID, "at+jwt"), m)
		}, nil, ReasonMalformed},
		{"crit header", func(t *testing.T) string {
			h := hdr("ES256", es.KID, "at+jwt")
			h["crit"] = []string{"exp"}
			return forge(t, jwt.SigningMethodES256, es.Private, h, validClaims())
		}, nil, ReasonMalformed},
		{"id_token shaped (typ JWT)", func(t *testing.T) string {
			return forge(t, jwt.SigningMethodRS256, rs.Private, hdr("RS256", rs.KID, "JWT"), with(func(c *Claims) { c.Audience = jwt.ClaimStrings{"dtr-app"} }))
		}, nil, ReasonWrongType},
		{"client assertion shaped (typ JWT, same key)", func(t *testing.T) string {
			return forge(t, jwt.SigningMethodES256, es.Private, hdr("ES256", es.KID, "JWT"), validClaims())
		}, nil, ReasonWrongType},
		{"no typ", func(t *testing.T) string {
			return forge(t, jwt.SigningMethodES256, es.Private, hdr("ES256", es.KID, ""), validClaims())
		}, nil, ReasonWrongType},
		{"alg none", func(t *testing.T) string {
			return forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, hdr("none", es.KID, "at+jwt"), validClaims()) + "AAAA"
		}, nil, ReasonAlgorithm},
		{"HS256 with the public key as secret", func(t *testing.T) string {
			return forge(t, jwt.SigningMethodHS256, pubPEM, hdr("HS256", es.KID, "at+jwt"), validClaims())
		}, nil, ReasonAlgorithm},
		{"alg not allowed (PS256)", func(t *testing.T) string {
			return forge(t, jwt.SigningMethodPS256, rs.Private, hdr("PS256", rs.KID, "at+jwt"), validClaims())
		}, nil, ReasonAlgorithm},
		{"RS256 not in a narrowed list", func(t *testing.T) string {
			s, _ := Sign(rs, validClaims())
			return s
		}, func(o *VerifyOptions) { o.Algorithms = []string{"ES256"} }, ReasonAlgorithm},
		{"missing exp", func(t *testing.T) string {
			return forge(t, jwt.SigningMethodES256, es.Private, hdr("ES256", es.KID, "at+jwt"), without("exp"))
		}, nil, ReasonMissingClaim},
		{"missing iat", func(t *testing.T) string {
			return forge(t, jwt.SigningMethodES256, es.Private, hdr("ES256", es.KID, "at+jwt"), without("iat"))
		}, nil, ReasonMissingClaim},
		{"missing sub", func(t *testing.T) string {
			return forge(t, jwt.SigningMethodES256, es.Private, hdr("ES256", es.KID, "at+jwt"), without("sub"))
		}, nil, ReasonMissingClaim},
		{"missing client_id", func(t *testing.T) string {
			return forge(t, jwt.SigningMethodES256, es.Private, hdr("ES256", es.KID, "at+jwt"), without("client_id"))
		}, nil, ReasonMissingClaim},
		{"missing jti", func(t *testing.T) string {
			return forge(t, jwt.SigningMethodES256, es.Private, hdr("ES256", es.KID, "at+jwt"), without("jti"))
		}, nil, ReasonMissingClaim},
		{"wrong iss", func(t *testing.T) string {
			s, _ := Sign(es, with(func(c *Claims) { c.Issuer = "https://other-ehr.example/fhir" }))
			return s
		}, nil, ReasonIssuer},
		{"wrong aud", func(t *testing.T) string {
			s, _ := Sign(es, with(func(c *Claims) { c.Audience = jwt.ClaimStrings{"https://payer.example/fhir"} }))
			return s
		}, nil, ReasonAudience},
		{"aud differs by a trailing slash", func(t *testing.T) string {
			s, _ := Sign(es, with(func(c *Claims) { c.Audience = jwt.ClaimStrings{audience + "/"} }))
			return s
		}, nil, ReasonAudience},
		{"expired", func(t *testing.T) string {
			s, _ := Sign(es, with(func(c *Claims) {
				c.IssuedAt = jwt.NewNumericDate(testNow.Add(-time.Hour))
				c.ExpiresAt = jwt.NewNumericDate(testNow.Add(-time.Second))
			}))
			return s
		}, nil, ReasonExpired},
		{"exp now, no leeway on exp", func(t *testing.T) string {
			s, _ := Sign(es, with(func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(testNow) }))
			return s
		}, nil, ReasonExpired},
		{"nbf in the future", func(t *testing.T) string {
			s, _ := Sign(es, with(func(c *Claims) { c.NotBefore = jwt.NewNumericDate(testNow.Add(time.Minute)) }))
			return s
		}, nil, ReasonNotYetValid},
		{"iat 1s in the future with leeway off", func(t *testing.T) string {
			s, _ := Sign(es, with(func(c *Claims) { c.IssuedAt = jwt.NewNumericDate(testNow.Add(time.Second)) }))
			return s
		}, func(o *VerifyOptions) { o.Leeway = -1 }, ReasonNotYetValid},
		{"iat in the future", func(t *testing.T) string {
			s, _ := Sign(es, with(func(c *Claims) { c.IssuedAt = jwt.NewNumericDate(testNow.Add(31 * time.Second)) }))
			return s
		}, nil, ReasonNotYetValid},
		{"no kid", func(t *testing.T) string {
			return forge(t, jwt.SigningMethodES256, es.Private, hdr("ES256", "", "at+jwt"), validClaims())
		}, nil, ReasonUnknownKey},
		{"unknown kid (attacker's own key)", func(t *testing.T) string {
			s, _ := Sign(evil, validClaims())
			return s
		}, nil, ReasonUnknownKey},
		{"kid of an RSA key with alg ES256", func(t *testing.T) string {
			return forge(t, jwt.SigningMethodES256, evil.Private, hdr("ES256", rs.KID, "at+jwt"), validClaims())
		}, nil, ReasonUnknownKey},
		{"forged with a second key under the issuer's kid", func(t *testing.T) string {
			return forge(t, jwt.SigningMethodES256, evil.Private, hdr("ES256", es.KID, "at+jwt"), validClaims())
		}, nil, ReasonSignature},
		{"payload swapped under a valid signature", func(t *testing.T) string {
			a := strings.Split(good(), ".")
			b, _ := Sign(es, with(func(c *Claims) { c.Patient = "pat-2" }))
			return a[0] + "." + strings.Split(b, ".")[1] + "." + a[2]
		}, nil, ReasonSignature},
		{"signature bits flipped", func(t *testing.T) string {
			g := []byte(good())
			i := len(g) - 10
			g[i] = map[bool]byte{true: 'B', false: 'A'}[g[i] == 'A']
			return string(g)
		}, nil, ReasonSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := opts()
			if tt.opts != nil {
				tt.opts(&o)
			}
			c, err := Verify(context.Background(), tt.raw(t), issuerKeys(t), o)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("not an *Error: %T %v", err, err)
			}
			if e.Reason != tt.want {
				t.Fatalf("reason %s, want %s (%v)", e.Reason, tt.want, err)
			}
			if e.Reason.String() == "" || strings.Contains(e.Reason.String(), "refused (") {
				t.Errorf("reason %s has no text", e.Reason)
			}
			if oe := e.OAuth(); oe.Code != "invalid_token" || oe.Status != 401 {
				t.Errorf("OAuth form %+v", oe)
			}
		})
	}
}

func TestVerifyAccepts(t *testing.T) {
	es, rs, _ := testKeys(t)
	tests := []struct {
		name string
		raw  func(t *testing.T) string
	}{
		{"ES256", func(t *testing.T) string { s, _ := Sign(es, validClaims()); return s }},
		{"RS256", func(t *testing.T) string { s, _ := Sign(rs, validClaims()); return s }},
		{"typ application/at+jwt", func(t *testing.T) string {
			return forge(t, jwt.SigningMethodES256, es.Private, map[string]any{"alg": "ES256", "kid": es.KID, "typ": "application/at+jwt"}, validClaims())
		}},
		{"typ in upper case", func(t *testing.T) string {
			return forge(t, jwt.SigningMethodES256, es.Private, map[string]any{"alg": "ES256", "kid": es.KID, "typ": "AT+JWT"}, validClaims())
		}},
		{"aud string", func(t *testing.T) string {
			m := claimsOf(t, validClaims())
			m["aud"] = audience
			return forge(t, jwt.SigningMethodES256, es.Private, map[string]any{"alg": "ES256", "kid": es.KID, "typ": "at+jwt"}, m)
		}},
		{"aud among several", func(t *testing.T) string {
			c := validClaims()
			c.Audience = jwt.ClaimStrings{"https://payer.example/fhir", audience}
			s, _ := Sign(es, c)
			return s
		}},
		{"iat and nbf within leeway", func(t *testing.T) string {
			c := validClaims()
			c.IssuedAt = jwt.NewNumericDate(testNow.Add(29 * time.Second))
			c.NotBefore = jwt.NewNumericDate(testNow.Add(29 * time.Second))
			s, _ := Sign(es, c)
			return s
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Verify(context.Background(), tt.raw(t), issuerKeys(t), opts())
			if err != nil {
				t.Fatal(err)
			}
			if c.Patient != "pat-1" || c.ClientID != "dtr-app" {
				t.Fatalf("claims %+v", c)
			}
		})
	}
}

func TestVerifyConfiguration(t *testing.T) {
	es, _, _ := testKeys(t)
	raw, _ := Sign(es, validClaims())
	for name, o := range map[string]VerifyOptions{
		"no issuer":   {Audience: audience},
		"no audience": {Issuer: issuer},
	} {
		_, err := Verify(context.Background(), raw, issuerKeys(t), o)
		var e *Error
		if !errors.As(err, &e) || e.Reason != ReasonConfiguration || e.OAuth().Code != "server_error" {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Verify(context.Background(), raw, nil, opts()); err == nil {
		t.Error("nil KeyFunc accepted")
	}
}

func TestPeekIssuer(t *testing.T) {
	es, _, evil := testKeys(t)
	raw, _ := Sign(evil, validClaims()) // unverified: any signer
	if iss, err := PeekIssuer(raw, 0); err != nil || iss != issuer {
		t.Fatalf("iss %q, %v", iss, err)
	}
	tests := []struct {
		name string
		raw  string
		max  int
		want Reason
	}{
		{"oversize", raw, len(raw) - 1, ReasonTooLarge},
		{"over the default", strings.Repeat("a", DefaultMaxSize+1), 0, ReasonTooLarge},
		{"not a JWT", "opaque-token", 0, ReasonMalformed},
		{"no iss", forge(t, jwt.SigningMethodES256, es.Private, map[string]any{"alg": "ES256", "typ": "at+jwt"}, map[string]any{"sub": "x"}), 0, ReasonIssuer},
		{"iss not a string", forge(t, jwt.SigningMethodES256, es.Private, map[string]any{"alg": "ES256"}, map[string]any{"iss": 7}), 0, ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := PeekIssuer(tt.raw, tt.max)
			var e *Error
			if !errors.As(err, &e) || e.Reason != tt.want {
				t.Fatalf("err %v, want %s", err, tt.want)
			}
		})
	}
}
