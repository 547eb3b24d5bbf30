package authz

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/testutil/jwttest"
	"dtrsandbox/shared/testutil/pgtest"
)

const appScope = "system/Questionnaire.rs system/DocumentReference.cruds"

func TestTokenIssues(t *testing.T) {
	e := newEnv(t)
	key := mustKey(t, "ES384")
	e.addClient("app", key, appScope, nil)
	a := assertion(t, key.Private, "ES384", map[string]any{"kid": key.KID}, goodClaims("app"))
	rec := e.token(tokenForm(a, "system/DocumentReference.rs system/Questionnaire.r"))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Pragma") != "no-cache" {
		t.Fatalf("cache headers %v", rec.Header())
	}
	var resp map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if resp["token_type"] != "Bearer" || resp["expires_in"] != float64(300) ||
		resp["scope"] != "system/DocumentReference.rs system/Questionnaire.r" {
		t.Fatalf("response %v", resp)
	}
	if _, has := resp["refresh_token"]; has {
		t.Fatal("refresh token issued")
	}
	raw, _ := resp["access_token"].(string)

	h := jwttest.Header(t, raw)
	if h["typ"] != "at+jwt" || h["alg"] != "ES256" || h["kid"] != e.srv.cfg.Keys.AccessToken.KID {
		t.Fatalf("header %v", h)
	}
	c := jwttest.Claims(t, raw)
	if c["iss"] != testPublicURL || c["aud"] != testPublicURL+"/fhir" && !audHas(c["aud"], testPublicURL+"/fhir") ||
		c["client_id"] != "app" || c["sub"] != "app" || c["jti"] == nil ||
		c["exp"].(float64)-c["iat"].(float64) > 300 {
		t.Fatalf("claims %v", c)
	}
	pt, err := e.srv.AccessTokens().Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("own verifier refuses the token: %v", err)
	}
	if pt.ClientID != "app" || pt.Scopes.String() != "system/DocumentReference.rs system/Questionnaire.r" ||
		time.Until(pt.ExpiresAt) > 300*time.Second || time.Until(pt.ExpiresAt) < 290*time.Second {
		t.Fatalf("verified token %+v", pt)
	}
	if n := e.countTokens(); n != 1 {
		t.Fatalf("%d tokens recorded", n)
	}
	ev := <-e.audit.events
	if ev.Interaction != "token" || ev.Outcome != "0" || ev.ClientID != "app" {
		t.Fatalf("audit %+v", ev)
	}
}

func audHas(v any, want string) bool {
	list, _ := v.([]any)
	for _, x := range list {
		if x == want {
			return true
		}
	}
	return false
}

// TestTokenRefusals drives every class of client-assertion attack and bad
// token request through the real endpoint; none may yield a token.
func TestTokenRefusals(t *testing.T) {
	e := newEnv(t)
	key := mustKey(t, "ES384")
	other := mustKey(t, "ES384")
	rsa := mustKey(t, "RS384")
	e.addClient("app", key, appScope, nil)
	e.addClient("peer", other, appScope, nil)

	sign := func(hdr map[string]any, mut func(c jwt.MapClaims)) string {
		c := goodClaims("app")
		if mut != nil {
			mut(c)
		}
		h := map[string]any{"kid": key.KID}
		for k, v := range hdr {
			h[k] = v
		}
		return assertion(t, key.Private, "ES384", h, c)
	}
	good := func() url.Values { return tokenForm(sign(nil, nil), "system/Questionnaire.rs") }
	with := func(mut func(f url.Values)) url.Values { f := good(); mut(f); return f }

	hs256 := assertion(t, []byte(publicSetString(t, key)), "HS256", map[string]any{"kid": key.KID}, goodClaims("app"))
	none := assertion(t, jwt.UnsafeAllowNoneSignatureType, "none", map[string]any{"kid": key.KID}, goodClaims("app"))
	noneSigned := none + "AAAA" // a non-empty signature part does not make alg none acceptable
	es256Key := mustKey(t, "ES256")
	es256 := assertion(t, es256Key.Private, "ES256", map[string]any{"kid": key.KID}, goodClaims("app"))
	rs384 := assertion(t, rsa.Private, "RS384", map[string]any{"kid": key.KID}, goodClaims("app"))
	byOther := assertion(t, other.Private, "ES384", map[string]any{"kid": other.KID}, goodClaims("app"))
	var embedded map[string]any
	b, _ := json.Marshal(other.PublicJWK())
	json.Unmarshal(b, &embedded)

	tests := []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"alg none", tokenForm(none, "system/Questionnaire.rs"), 401, "invalid_client"},
		{"alg none with a signature", tokenForm(noneSigned, "system/Questionnaire.rs"), 401, "invalid_client"},
		{"HS256 keyed with the public JWKS", tokenForm(hs256, "system/Questionnaire.rs"), 401, "invalid_client"},
		{"ES256 while ES384 is registered", tokenForm(es256, "system/Questionnaire.rs"), 401, "invalid_client"},
		{"RS384 signature under the EC kid", tokenForm(rs384, "system/Questionnaire.rs"), 401, "invalid_client"},
		{"signed by another client's key", tokenForm(byOther, "system/Questionnaire.rs"), 401, "invalid_client"},
		{"unknown kid", tokenForm(sign(map[string]any{"kid": "no-such-kid"}, nil), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"no kid", tokenForm(sign(map[string]any{"kid": nil}, nil), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"foreign jku", tokenForm(sign(map[string]any{"jku": "https://attacker.example/jwks.json"}, nil), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"embedded jwk", tokenForm(sign(map[string]any{"jwk": embedded}, nil), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"x5u", tokenForm(sign(map[string]any{"x5u": "https://attacker.example/cert"}, nil), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"typ not JWT", tokenForm(sign(map[string]any{"typ": "at+jwt"}, nil), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"exp missing", tokenForm(sign(nil, func(c jwt.MapClaims) { delete(c, "exp") }), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"exp past", tokenForm(sign(nil, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Second).Unix() }), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"exp over 5 minutes", tokenForm(sign(nil, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(5*time.Minute + 10*time.Second).Unix() }), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"exp not a number", tokenForm(sign(nil, func(c jwt.MapClaims) { c["exp"] = "soon" }), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"iss differs from sub", tokenForm(sign(nil, func(c jwt.MapClaims) { c["sub"] = "peer" }), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"iss is another client", tokenForm(sign(nil, func(c jwt.MapClaims) { c["iss"], c["sub"] = "peer", "peer" }), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"unknown client", tokenForm(sign(nil, func(c jwt.MapClaims) { c["iss"], c["sub"] = "ghost", "ghost" }), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"aud is the FHIR base", tokenForm(sign(nil, func(c jwt.MapClaims) { c["aud"] = testPublicURL + "/fhir" }), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"aud with a trailing slash", tokenForm(sign(nil, func(c jwt.MapClaims) { c["aud"] = testPublicURL + TokenPath + "/" }), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"aud list with another audience", tokenForm(sign(nil, func(c jwt.MapClaims) { c["aud"] = []string{testPublicURL + TokenPath, "https://x"} }), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"aud missing", tokenForm(sign(nil, func(c jwt.MapClaims) { delete(c, "aud") }), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"jti missing", tokenForm(sign(nil, func(c jwt.MapClaims) { delete(c, "jti") }), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"nbf in the future", tokenForm(sign(nil, func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(2 * time.Minute).Unix() }), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"tampered claims", tokenForm(tamper(t, sign(nil, nil)), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"x5c header", tokenForm(sign(map[string]any{"x5c": []string{"MIIB"}}, nil), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"crit header", tokenForm(sign(map[string]any{"crit": []string{"exp"}}, nil), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"empty kid", tokenForm(sign(map[string]any{"kid": ""}, nil), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"typ not a string", tokenForm(sign(map[string]any{"typ": 1}, nil), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"iat in the future", tokenForm(sign(nil, func(c jwt.MapClaims) { c["iat"] = time.Now().Add(2 * time.Minute).Unix() }), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"exp now", tokenForm(sign(nil, func(c jwt.MapClaims) { c["exp"] = time.Now().Unix() }), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"aud empty list", tokenForm(sign(nil, func(c jwt.MapClaims) { c["aud"] = []string{} }), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"jti empty", tokenForm(sign(nil, func(c jwt.MapClaims) { c["jti"] = "" }), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"jti of 257 characters", tokenForm(sign(nil, func(c jwt.MapClaims) { c["jti"] = strings.Repeat("j", 257) }), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"assertion over 8 KiB", tokenForm(sign(nil, func(c jwt.MapClaims) { c["pad"] = strings.Repeat("x", 8<<10) }), "system/Questionnaire.rs"), 400, "invalid_request"},
		{"two parts", tokenForm(func() string { a := sign(nil, nil); return a[:strings.LastIndex(a, ".")] }(), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"five parts (JWE)", tokenForm(sign(nil, nil)+".a.b", "system/Questionnaire.rs"), 401, "invalid_client"},
		{"padded base64", tokenForm(sign(nil, nil)+"==", "system/Questionnaire.rs"), 401, "invalid_client"},
		{"newline inside", tokenForm(func() string { a := sign(nil, nil); return a[:10] + "\n" + a[10:] }(), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"RS384 registered key used with PS384", tokenForm(assertion(t, rsa.Private, "PS384", map[string]any{"kid": rsa.KID}, goodClaims("app")), "system/Questionnaire.rs"), 401, "invalid_client"},
		{"client_id parameter differs", with(func(f url.Values) { f.Set("client_id", "peer") }), 401, "invalid_client"},
		{"wrong assertion type", with(func(f url.Values) {
			f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
		}), 400, "invalid_request"},
		{"assertion type in another case", with(func(f url.Values) {
			f.Set("client_assertion_type", strings.ToUpper(f.Get("client_assertion_type")))
		}), 400, "invalid_request"},
		{"no assertion", with(func(f url.Values) { f.Del("client_assertion"); f.Del("client_assertion_type") }), 400, "invalid_request"},
		{"client secret instead", with(func(f url.Values) {
			f.Del("client_assertion")
			f.Del("client_assertion_type")
			f.Set("client_secret", "s")
		}), 401, "invalid_client"},
		{"scope beyond registration", with(func(f url.Values) { f.Set("scope", "system/QuestionnaireResponse.rs") }), 400, "invalid_scope"},
		{"scope widening permissions", with(func(f url.Values) { f.Set("scope", "system/Questionnaire.cruds") }), 400, "invalid_scope"},
		{"scope at patient level", with(func(f url.Values) { f.Set("scope", "patient/DocumentReference.rs") }), 400, "invalid_scope"},
		{"scope openid", with(func(f url.Values) { f.Set("scope", "openid") }), 400, "invalid_scope"},
		{"scope missing", with(func(f url.Values) { f.Del("scope") }), 400, "invalid_scope"},
		{"grant authorization_code", with(func(f url.Values) { f.Set("grant_type", "authorization_code"); f.Set("code", "x") }), 400, "unsupported_grant_type"},
		{"grant refresh_token", with(func(f url.Values) { f.Set("grant_type", "refresh_token"); f.Set("refresh_token", "x") }), 400, "unsupported_grant_type"},
		{"grant password", with(func(f url.Values) { f.Set("grant_type", "password") }), 400, "unsupported_grant_type"},
		{"grant jwt-bearer", with(func(f url.Values) { f.Set("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer") }), 400, "unsupported_grant_type"},
		{"grant list", with(func(f url.Values) { f.Set("grant_type", "client_credentials refresh_token") }), 400, "unsupported_grant_type"},
		{"grant missing", with(func(f url.Values) { f.Del("grant_type") }), 400, "invalid_request"},
		{"audience parameter for another server", with(func(f url.Values) { f.Set("audience", "https://elsewhere.example/fhir") }), 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.token(tt.form)
			code, _ := oauthError(t, rec)
			if rec.Code != tt.status || code != tt.code {
				t.Fatalf("got %d %s (%s), want %d %s", rec.Code, code, rec.Body, tt.status, tt.code)
			}
			if strings.Contains(rec.Body.String(), "access_token") {
				t.Fatal("token in an error answer")
			}
			if rec.Header().Get("Cache-Control") != "no-store" {
				t.Fatal("no Cache-Control: no-store")
			}
			if rec.Code == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic") {
				t.Fatalf("401 without a challenge: %v", rec.Header())
			}
			if n := e.countTokens(); n != 0 {
				t.Fatalf("%d tokens issued", n)
			}
		})
	}
}

func tamper(t testing.TB, a string) string {
	parts := strings.Split(a, ".")
	c := jwttest.Claims(t, a)
	c["exp"] = time.Now().Add(4*time.Minute).Unix() + 1
	b, _ := json.Marshal(c)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func TestTokenRequestShape(t *testing.T) {
	e := newEnv(t)
	key := mustKey(t, "ES384")
	e.addClient("app", key, appScope, nil)
	good := func() url.Values {
		return tokenForm(assertion(t, key.Private, "ES384", map[string]any{"kid": key.KID}, goodClaims("app")), "system/Questionnaire.rs")
	}
	tests := []struct {
		name string
		req  func() *http.Request
		code string
	}{
		{"JSON body", func() *http.Request {
			b, _ := json.Marshal(good())
			r := httptest.NewRequest(http.MethodPost, TokenPath, strings.NewReader(string(b)))
			r.Header.Set("Content-Type", "application/json")
			return r
		}, "invalid_request"},
		{"parameters in the query string", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, TokenPath+"?"+good().Encode(), strings.NewReader("grant_type=client_credentials"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, "invalid_request"},
		{"repeated parameter", func() *http.Request {
			f := good()
			f.Add("scope", "system/DocumentReference.r")
			r := httptest.NewRequest(http.MethodPost, TokenPath, strings.NewReader(f.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, "invalid_request"},
		{"oversized body", func() *http.Request {
			f := good()
			f.Set("pad", strings.Repeat("x", MaxTokenRequestBody))
			r := httptest.NewRequest(http.MethodPost, TokenPath, strings.NewReader(f.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, "invalid_request"},
		{"basic authentication", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, TokenPath, strings.NewReader(good().Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.SetBasicAuth("app", "secret")
			return r
		}, "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.do(tt.req())
			if code, _ := oauthError(t, rec); code != tt.code {
				t.Fatalf("got %d %s, want %s", rec.Code, code, tt.code)
			}
			if e.countTokens() != 0 {
				t.Fatal("token issued")
			}
		})
	}
}

func TestTokenJTISingleUse(t *testing.T) {
	e := newEnv(t)
	key := mustKey(t, "ES384")
	e.addClient("app", key, appScope, nil)
	form := tokenForm(assertion(t, key.Private, "ES384", map[string]any{"kid": key.KID}, goodClaims("app")), "system/Questionnaire.rs")
	if rec := e.token(form); rec.Code != 200 {
		t.Fatalf("first use: %d %s", rec.Code, rec.Body)
	}
	rec := e.token(form)
	if code, desc := oauthError(t, rec); rec.Code != 401 || code != "invalid_client" || !strings.Contains(desc, "already been used") {
		t.Fatalf("replay: %d %s %q", rec.Code, code, desc)
	}
	if n := e.countTokens(); n != 1 {
		t.Fatalf("%d tokens after a replay", n)
	}
}

// TestTokenConcurrentReplay: 20 concurrent copies of one assertion yield
// exactly one token, on SQLite and on PostgreSQL with two replicas sharing
// the database.
func TestTokenConcurrentReplay(t *testing.T) {
	for _, name := range []string{"sqlite", "postgres-two-replicas"} {
		t.Run(name, func(t *testing.T) {
			var replicas []*env
			if name == "sqlite" {
				replicas = []*env{newEnv(t)}
			} else {
				dsn := pgtest.Start(t)
				replicas = []*env{newEnvDB(t, openDB(t, dsn)), newEnvDB(t, openDB(t, dsn))}
			}
			key := mustKey(t, "ES384")
			replicas[0].addClient("app", key, appScope, nil)
			form := tokenForm(assertion(t, key.Private, "ES384", map[string]any{"kid": key.KID}, goodClaims("app")), "system/Questionnaire.rs")
			const n = 20
			codes := make([]int, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					codes[i] = replicas[i%len(replicas)].token(form).Code
				}()
			}
			close(start)
			wg.Wait()
			ok := 0
			for i, c := range codes {
				switch c {
				case 200:
					ok++
				case 401:
				default:
					t.Errorf("copy %d answered %d", i, c)
				}
			}
			if tokens := replicas[0].countTokens(); ok != 1 || tokens != 1 {
				t.Fatalf("%d successes, %d tokens; want exactly one", ok, tokens)
			}
		})
	}
}

// TestTokenWithJWKSURI authenticates a client registered by jwks_uri, and
// shows that a jku naming its registered jwks_uri is fine while the keys
// always come from the registration.
func TestTokenWithJWKSURI(t *testing.T) {
	key := mustKey(t, "ES384")
	set, _ := jwks.Set{key}.MarshalPublic()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(set) }))
	defer srv.Close()
	e := newEnv(t)
	rec := e.register(regBody(t, validRegistration(t), map[string]any{"jwks": nil, "jwks_uri": srv.URL + "/jwks", "ehr_client_ids": nil}))
	if rec.Code != 201 {
		t.Fatalf("register: %d %s", rec.Code, rec.Body)
	}
	var reg map[string]any
	json.Unmarshal(rec.Body.Bytes(), &reg)
	id := reg["client_id"].(string)
	a := assertion(t, key.Private, "ES384", map[string]any{"kid": key.KID, "jku": srv.URL + "/jwks"}, goodClaims(id))
	if rec := e.token(tokenForm(a, "system/Questionnaire.rs")); rec.Code != 200 {
		t.Fatalf("token: %d %s", rec.Code, rec.Body)
	}
}

func TestDiscovery(t *testing.T) {
	e := newEnv(t)
	rec := e.do(httptest.NewRequest(http.MethodGet, DiscoveryPath, nil))
	if rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	var d map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"token_endpoint":                        testPublicURL + "/oauth/token",
		"registration_endpoint":                 testPublicURL + "/oauth/register",
		"jwks_uri":                              testPublicURL + "/.well-known/jwks.json",
		"grant_types_supported":                 []any{"client_credentials"},
		"token_endpoint_auth_methods_supported": []any{"private_key_jwt"},
		"capabilities":                          []any{"client-confidential-asymmetric"},
	}
	for k, v := range want {
		got, _ := json.Marshal(d[k])
		exp, _ := json.Marshal(v)
		if string(got) != string(exp) {
			t.Errorf("%s = %s, want %s", k, got, exp)
		}
	}
	algs, _ := json.Marshal(d["token_endpoint_auth_signing_alg_values_supported"])
	scopes, _ := json.Marshal(d["scopes_supported"])
	if !strings.Contains(string(algs), `"RS384"`) || !strings.Contains(string(algs), `"ES384"`) ||
		!strings.Contains(string(scopes), "system/DocumentReference.cruds") {
		t.Errorf("algs %s scopes %s", algs, scopes)
	}
	if _, has := d["issuer"]; has {
		t.Error("issuer published without sso-openid-connect")
	}
}
