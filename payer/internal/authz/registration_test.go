package authz

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"dtrsandbox/shared/testutil/pgtest"
)

// regBody builds a registration request from a base and edits; a nil
// value deletes the member.
func regBody(t testing.TB, base map[string]any, edits map[string]any) string {
	t.Helper()
	m := map[string]any{}
	for k, v := range base {
		m[k] = v
	}
	for k, v := range edits {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func validRegistration(t testing.TB) map[string]any {
	k := mustKey(t, "ES384")
	return map[string]any{
		"client_name":                     "Test DTR app",
		"jwks":                            json.RawMessage(publicSetString(t, k)),
		"token_endpoint_auth_method":      "private_key_jwt",
		"token_endpoint_auth_signing_alg": "ES384",
		"grant_types":                     []string{"client_credentials"},
		"scope":                           "system/Questionnaire.rs system/DocumentReference.cruds",
		"ehr_client_ids":                  map[string]string{testEHR: "app-at-ehr"},
	}
}

func TestRegisterAccepts(t *testing.T) {
	e := newEnv(t)
	rsa := mustKey(t, "RS384")
	tests := []struct {
		name  string
		edits map[string]any
		check func(t *testing.T, resp map[string]any)
	}{
		{"inline jwks", nil, func(t *testing.T, r map[string]any) {
			if r["jwks"] == nil || r["jwks_uri"] != nil {
				t.Fatalf("keys in response: %v", r)
			}
		}},
		{"jwks_uri by reference", map[string]any{"jwks": nil, "jwks_uri": "https://app.example/.well-known/jwks.json",
			"ehr_client_ids": map[string]string{testEHR: "uri-app"}}, func(t *testing.T, r map[string]any) {
			if r["jwks_uri"] != "https://app.example/.well-known/jwks.json" {
				t.Fatalf("jwks_uri %v", r["jwks_uri"])
			}
		}},
		{"loopback http jwks_uri", map[string]any{"jwks": nil, "jwks_uri": "http://127.0.0.1:9999/jwks", "ehr_client_ids": nil}, nil},
		{"localhost https jwks_uri", map[string]any{"jwks": nil, "jwks_uri": "https://localhost:8442/.well-known/jwks.json", "ehr_client_ids": nil}, nil},
		{"IPv6 loopback jwks_uri", map[string]any{"jwks": nil, "jwks_uri": "http://[::1]:9999/jwks", "ehr_client_ids": nil}, nil},
		{"public address jwks_uri", map[string]any{"jwks": nil, "jwks_uri": "https://203.0.113.10/jwks", "ehr_client_ids": nil}, nil},
		{"compose service name jwks_uri", map[string]any{"jwks": nil, "jwks_uri": "https://smartapp:8442/.well-known/jwks.json", "ehr_client_ids": nil}, nil},
		{"defaults: no scope, no grant_types, no alg, no ehr ids", map[string]any{"scope": nil, "grant_types": nil,
			"token_endpoint_auth_signing_alg": nil, "ehr_client_ids": nil}, func(t *testing.T, r map[string]any) {
			if r["scope"] != strings.Join(SupportedScopes, " ") {
				t.Fatalf("default scope %v", r["scope"])
			}
			if gt, _ := r["grant_types"].([]any); len(gt) != 1 || gt[0] != "client_credentials" {
				t.Fatalf("grant_types %v", r["grant_types"])
			}
		}},
		{"RS384 key", map[string]any{"jwks": json.RawMessage(publicSetString(t, rsa)), "token_endpoint_auth_signing_alg": "RS384",
			"ehr_client_ids": map[string]string{otherEHR: "rsa-app"}}, nil},
		{"v1 scope covered", map[string]any{"scope": "system/DocumentReference.read", "ehr_client_ids": nil}, nil},
		{"unknown members ignored", map[string]any{"software_id": "x", "logo_uri": "https://x", "ehr_client_ids": nil}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.register(regBody(t, validRegistration(t), tt.edits))
			if rec.Code != http.StatusCreated {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if rec.Header().Get("Cache-Control") != "no-store" {
				t.Fatalf("Cache-Control %q", rec.Header().Get("Cache-Control"))
			}
			var resp map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatal(err)
			}
			id, _ := resp["client_id"].(string)
			if len(id) < 20 || resp["token_endpoint_auth_method"] != "private_key_jwt" || resp["client_id_issued_at"] == nil {
				t.Fatalf("response %v", resp)
			}
			stored, err := e.clients.Get(t.Context(), id)
			if err != nil {
				t.Fatalf("stored client: %v", err)
			}
			if stored.Scope != resp["scope"] {
				t.Fatalf("stored scope %q, answered %v", stored.Scope, resp["scope"])
			}
			if tt.check != nil {
				tt.check(t, resp)
			}
		})
	}
}

func TestRegisterRefusesBadMetadata(t *testing.T) {
	e := newEnv(t)
	ec := mustKey(t, "ES384")
	rs := mustKey(t, "RS384")
	privJWK, _ := json.Marshal(jose.JSONWebKey{Key: ec.Private, KeyID: ec.KID})
	tests := []struct {
		name  string
		body  string // raw body, or "" to use edits
		edits map[string]any
	}{
		{"not JSON", "{nope", nil},
		{"JSON array", `[]`, nil},
		{"JSON null", `null`, nil},
		{"trailing data", `{"token_endpoint_auth_method":"private_key_jwt"} {}`, nil},
		{"duplicate member", `{"token_endpoint_auth_method":"private_key_jwt","token_endpoint_auth_method":"none","jwks_uri":"https://a.example/j"}`, nil},
		{"case-variant members", `{"token_endpoint_auth_method":"private_key_jwt","Jwks_uri":"https://a.example/j","jwks_uri":"https://b.example/j"}`, nil},
		{"case-variant only", `{"token_endpoint_auth_method":"private_key_jwt","JWKS_URI":"https://a.example/j"}`, nil},
		{"auth method missing", "", map[string]any{"token_endpoint_auth_method": nil}},
		{"auth method client_secret_basic", "", map[string]any{"token_endpoint_auth_method": "client_secret_basic"}},
		{"auth method none", "", map[string]any{"token_endpoint_auth_method": "none"}},
		{"auth method not a string", "", map[string]any{"token_endpoint_auth_method": 7}},
		{"grant type authorization_code", "", map[string]any{"grant_types": []string{"authorization_code"}}},
		{"extra grant type", "", map[string]any{"grant_types": []string{"client_credentials", "refresh_token"}}},
		{"grant types not an array", "", map[string]any{"grant_types": "client_credentials"}},
		{"empty grant types", "", map[string]any{"grant_types": []string{}}},
		{"both jwks and jwks_uri", "", map[string]any{"jwks_uri": "https://app.example/jwks"}},
		{"neither jwks nor jwks_uri", "", map[string]any{"jwks": nil}},
		{"jwks_uri plain http", "", map[string]any{"jwks": nil, "jwks_uri": "http://app.example/jwks"}},
		{"jwks_uri relative", "", map[string]any{"jwks": nil, "jwks_uri": "/jwks"}},
		{"jwks_uri with fragment", "", map[string]any{"jwks": nil, "jwks_uri": "https://app.example/jwks#k"}},
		{"jwks_uri with user info", "", map[string]any{"jwks": nil, "jwks_uri": "https://u:p@app.example/jwks"}},
		{"jwks_uri ftp", "", map[string]any{"jwks": nil, "jwks_uri": "ftp://app.example/jwks"}},
		{"jwks_uri not a string", "", map[string]any{"jwks": nil, "jwks_uri": 1}},
		{"jwks_uri at the cloud metadata address", "", map[string]any{"jwks": nil, "jwks_uri": "https://169.254.169.254/latest/meta-data/jwks"}},
		{"jwks_uri at an IPv6 link-local address", "", map[string]any{"jwks": nil, "jwks_uri": "https://[fe80::1%25eth0]/jwks"}},
		{"jwks_uri at an IPv4-mapped metadata address", "", map[string]any{"jwks": nil, "jwks_uri": "https://[::ffff:169.254.169.254]/jwks"}},
		{"jwks_uri at a private address", "", map[string]any{"jwks": nil, "jwks_uri": "https://10.0.0.5/jwks"}},
		{"jwks_uri at a private 172.16 address", "", map[string]any{"jwks": nil, "jwks_uri": "https://172.20.1.1:8443/jwks"}},
		{"jwks_uri at a private 192.168 address", "", map[string]any{"jwks": nil, "jwks_uri": "https://192.168.1.1/jwks"}},
		{"jwks_uri at a unique local IPv6 address", "", map[string]any{"jwks": nil, "jwks_uri": "https://[fd00::1]/jwks"}},
		{"jwks_uri at the unspecified address", "", map[string]any{"jwks": nil, "jwks_uri": "https://0.0.0.0/jwks"}},
		{"jwks_uri at the IPv6 unspecified address", "", map[string]any{"jwks": nil, "jwks_uri": "https://[::]/jwks"}},
		{"jwks_uri at a 0/8 address", "", map[string]any{"jwks": nil, "jwks_uri": "https://0.1.2.3/jwks"}},
		{"jwks_uri at the shared address space", "", map[string]any{"jwks": nil, "jwks_uri": "https://100.64.0.1/jwks"}},
		{"jwks_uri at a multicast address", "", map[string]any{"jwks": nil, "jwks_uri": "https://224.0.0.1/jwks"}},
		{"jwks_uri at the broadcast address", "", map[string]any{"jwks": nil, "jwks_uri": "https://255.255.255.255/jwks"}},
		{"jwks_uri at a decimal address", "", map[string]any{"jwks": nil, "jwks_uri": "https://2852039166/jwks"}},
		{"jwks_uri at a hex address", "", map[string]any{"jwks": nil, "jwks_uri": "https://0xa9fea9fe/jwks"}},
		{"jwks_uri at a short-form address", "", map[string]any{"jwks": nil, "jwks_uri": "https://169.254.43518/jwks"}},
		{"jwks_uri at a metadata host name", "", map[string]any{"jwks": nil, "jwks_uri": "https://metadata.google.internal/computeMetadata/v1/"}},
		{"jwks_uri at a metadata host name with a trailing dot", "", map[string]any{"jwks": nil, "jwks_uri": "https://METADATA.google.internal./x"}},
		{"jwks_uri over http at the metadata address", "", map[string]any{"jwks": nil, "jwks_uri": "http://169.254.169.254/jwks"}},
		{"jwks_uri with another scheme", "", map[string]any{"jwks": nil, "jwks_uri": "file:///etc/passwd"}},
		{"jwks_uri gopher", "", map[string]any{"jwks": nil, "jwks_uri": "gopher://app.example/jwks"}},
		{"jwks with a private key", "", map[string]any{"jwks": json.RawMessage(`{"keys":[` + string(privJWK) + `]}`)}},
		{"jwks symmetric", "", map[string]any{"jwks": json.RawMessage(`{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0c2VjcmV0"}]}`)}},
		{"jwks empty", "", map[string]any{"jwks": json.RawMessage(`{"keys":[]}`)}},
		{"jwks not an object", "", map[string]any{"jwks": "keys"}},
		{"alg HS256", "", map[string]any{"token_endpoint_auth_signing_alg": "HS256"}},
		{"alg none", "", map[string]any{"token_endpoint_auth_signing_alg": "none"}},
		{"alg without a fitting key", "", map[string]any{"jwks": json.RawMessage(publicSetString(t, rs)), "token_endpoint_auth_signing_alg": "ES384"}},
		{"scope patient level", "", map[string]any{"scope": "patient/DocumentReference.rs"}},
		{"scope user level", "", map[string]any{"scope": "user/DocumentReference.rs"}},
		{"scope other resource", "", map[string]any{"scope": "system/Patient.rs"}},
		{"scope wildcard", "", map[string]any{"scope": "system/*.rs"}},
		{"scope openid", "", map[string]any{"scope": "openid"}},
		{"scope offline_access", "", map[string]any{"scope": "system/Questionnaire.rs offline_access"}},
		{"scope Questionnaire write", "", map[string]any{"scope": "system/Questionnaire.c"}},
		{"scope malformed", "", map[string]any{"scope": "system/DocumentReference"}},
		{"scope bad permission order", "", map[string]any{"scope": "system/DocumentReference.sr"}},
		{"scope empty", "", map[string]any{"scope": " "}},
		{"scope not a string", "", map[string]any{"scope": []string{"system/Questionnaire.rs"}}},
		{"ehr issuer not trusted", "", map[string]any{"ehr_client_ids": map[string]string{"https://evil.example/fhir": "x"}}},
		{"ehr ids not an object", "", map[string]any{"ehr_client_ids": []string{testEHR}}},
		{"ehr id empty", "", map[string]any{"ehr_client_ids": map[string]string{testEHR: ""}}},
		{"ehr id with a space", "", map[string]any{"ehr_client_ids": map[string]string{testEHR: "a b"}}},
		{"ehr id not a string", "", map[string]any{"ehr_client_ids": map[string]any{testEHR: 5}}},
		{"ehr id too long", "", map[string]any{"ehr_client_ids": map[string]string{testEHR: strings.Repeat("a", 256)}}},
		{"client_name not a string", "", map[string]any{"client_name": 12}},
		{"client_name with control characters", "", map[string]any{"client_name": "a\x07b"}},
		{"client_name too long", "", map[string]any{"client_name": strings.Repeat("n", 201)}},
		{"body too large", `{"client_name":"` + strings.Repeat("x", MaxRegistrationBody) + `"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.body
			if body == "" {
				body = regBody(t, validRegistration(t), tt.edits)
			}
			before := e.countClients()
			rec := e.register(body)
			code, desc := oauthError(t, rec)
			if rec.Code != http.StatusBadRequest || code != "invalid_client_metadata" || desc == "" {
				t.Fatalf("got %d %s %q, want 400 invalid_client_metadata", rec.Code, code, desc)
			}
			if rec.Header().Get("Cache-Control") != "no-store" {
				t.Fatal("error without Cache-Control: no-store")
			}
			if after := e.countClients(); after != before {
				t.Fatalf("a client was stored (%d -> %d)", before, after)
			}
		})
	}
}

func TestRegisterRequestShape(t *testing.T) {
	e := newEnv(t)
	req := httptest.NewRequest(http.MethodPost, RegistrationPath, strings.NewReader(regBody(t, validRegistration(t), nil)))
	req.Header.Set("Content-Type", "text/plain")
	rec := e.do(req)
	if code, _ := oauthError(t, rec); rec.Code != 400 || code != "invalid_request" {
		t.Fatalf("text/plain: %d %s", rec.Code, code)
	}
	if e.countClients() != 0 {
		t.Fatal("client stored")
	}
}

func TestRegisterTakenEHRClientID(t *testing.T) {
	e := newEnv(t)
	first := e.register(regBody(t, validRegistration(t), nil))
	if first.Code != http.StatusCreated {
		t.Fatalf("first: %d %s", first.Code, first.Body)
	}
	firstEv := <-e.audit.events
	var firstResp struct {
		ClientID string `json:"client_id"`
	}
	json.Unmarshal(first.Body.Bytes(), &firstResp)
	if firstEv.Interaction != "register" || firstEv.ClientID != firstResp.ClientID || firstEv.Status != 201 || firstEv.Outcome != "0" {
		t.Fatalf("audit of the registration %+v", firstEv)
	}
	// Same EHR client id at the same issuer, by another client: refused.
	rec := e.register(regBody(t, validRegistration(t), nil))
	code, desc := oauthError(t, rec)
	if rec.Code != 400 || code != "invalid_client_metadata" || !strings.Contains(desc, "already registered") {
		t.Fatalf("taken id: %d %s %q", rec.Code, code, desc)
	}
	// Its AuditEvent names no client (none was stored: a generated id
	// would name a client that does not exist), and its reason names the
	// conflict.
	ev := <-e.audit.events
	if ev.Interaction != "register" || ev.ClientID != "" || ev.Status != 400 || ev.Outcome != "4" ||
		!strings.Contains(ev.Reason, "app-at-ehr") || !strings.Contains(ev.Reason, testEHR) || !strings.Contains(ev.Reason, "already registered") {
		t.Fatalf("audit of a taken claim %+v", ev)
	}
	// One claim among several taken: nothing of the registration is stored.
	rec = e.register(regBody(t, validRegistration(t), map[string]any{
		"ehr_client_ids": map[string]string{otherEHR: "free-id", testEHR: "app-at-ehr"}}))
	if rec.Code != 400 {
		t.Fatalf("partly taken: %d", rec.Code)
	}
	var n int64
	e.db.Model(&ehrClientRow{}).Where("ehr_client_id = ?", "free-id").Count(&n)
	if n != 0 || e.countClients() != 1 {
		t.Fatalf("partial registration stored: claims %d clients %d", n, e.countClients())
	}
	// The same id at another issuer is a different claim.
	rec = e.register(regBody(t, validRegistration(t), map[string]any{"ehr_client_ids": map[string]string{otherEHR: "app-at-ehr"}}))
	if rec.Code != http.StatusCreated {
		t.Fatalf("same id at another issuer: %d %s", rec.Code, rec.Body)
	}
}

func TestRegisterConcurrentClaims(t *testing.T) {
	dbs := map[string]func(t *testing.T) string{
		"sqlite":   func(*testing.T) string { return "" },
		"postgres": func(t *testing.T) string { return pgtest.Start(t) },
	}
	for name, dsn := range dbs {
		t.Run(name, func(t *testing.T) {
			e := newEnvDB(t, openDB(t, dsn(t)))
			const n = 20
			bodies := make([]string, n)
			for i := range bodies {
				bodies[i] = regBody(t, validRegistration(t), map[string]any{"client_name": fmt.Sprint("racer ", i)})
			}
			codes := make([]int, n)
			errs := make([]string, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					rec := e.register(bodies[i])
					codes[i] = rec.Code
					if rec.Code != http.StatusCreated {
						errs[i], _ = oauthError(t, rec)
					}
				}()
			}
			close(start)
			wg.Wait()
			won := 0
			for i, c := range codes {
				switch {
				case c == http.StatusCreated:
					won++
				case c != http.StatusBadRequest || errs[i] != "invalid_client_metadata":
					t.Errorf("racer %d: %d %s", i, c, errs[i])
				}
			}
			if won != 1 || e.countClients() != 1 {
				t.Fatalf("%d registrations won, %d clients stored; want exactly 1", won, e.countClients())
			}
		})
	}
}

func TestRegistrationClosed(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RegistrationOpen = false })
	rec := e.register(regBody(t, validRegistration(t), nil))
	if code, _ := oauthError(t, rec); rec.Code != http.StatusForbidden || code != "access_denied" {
		t.Fatalf("closed registration: %d %s", rec.Code, code)
	}
	if e.countClients() != 0 {
		t.Fatal("client stored while closed")
	}
	rec = e.do(httptest.NewRequest(http.MethodGet, DiscoveryPath, nil))
	if strings.Contains(rec.Body.String(), "registration_endpoint") {
		t.Fatalf("closed registration advertised: %s", rec.Body)
	}
}

// TestRegisterJWKSURIWithAllowHTTP: with SANDBOX_TLS=off (AllowHTTPJWKSURI)
// plain http is accepted off loopback, but internal targets stay refused.
func TestRegisterJWKSURIWithAllowHTTP(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AllowHTTPJWKSURI = true })
	for uri, want := range map[string]int{
		"http://smartapp:8442/.well-known/jwks.json": http.StatusCreated,
		"http://169.254.169.254/jwks":                http.StatusBadRequest,
		"http://10.1.2.3/jwks":                       http.StatusBadRequest,
		"http://metadata/computeMetadata":            http.StatusBadRequest,
	} {
		t.Run(uri, func(t *testing.T) {
			rec := e.register(regBody(t, validRegistration(t), map[string]any{"jwks": nil, "jwks_uri": uri, "ehr_client_ids": nil}))
			if rec.Code != want {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
		})
	}
}
