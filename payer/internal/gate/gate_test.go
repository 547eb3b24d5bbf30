package gate

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"dtrsandbox/payer/internal/trust"
	"dtrsandbox/shared/accesstoken"
	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/testutil/jwttest"
	"dtrsandbox/shared/testutil/testclock"
)

func TestGateAdmits(t *testing.T) {
	f := newFixture(t, trust.ModeJWKS)
	payer := f.payerToken("dtr-app", fullScope)
	ehr := f.ehrSrv.token(t, nil)

	rec := f.request("GET", "/fhir/DocumentReference/d1", payer, ehr)
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	p := f.seen.Load()
	if p == nil || p.ClientID != "dtr-app" || p.Patient != f.ehrSrv.issuer+"/Patient/pat-1" || p.PurposeOfUse != "COVERAGE" ||
		p.EHR == nil || p.EHR.FHIRUser != "Practitioner/prac-1" || !p.PayerScopes.Has("system/DocumentReference.cruds") {
		t.Fatalf("principal %+v", p)
	}
	if rec := f.request("GET", "/fhir/DocumentReference/d1", payer, ehr, HeaderPurposeOfUse, "TREAT"); rec.Code != 200 || f.seen.Load().PurposeOfUse != "TREAT" {
		t.Fatalf("purpose of use: %d %+v", rec.Code, f.seen.Load())
	}
	// Questionnaire: the EHR token is optional.
	if rec := f.request("GET", "/fhir/Questionnaire/q1", payer, ""); rec.Code != 200 || f.seen.Load().EHR != nil || f.seen.Load().Patient != "" {
		t.Fatalf("questionnaire without EHR token: %d %+v", rec.Code, f.seen.Load())
	}
	if rec := f.request("GET", "/fhir/Questionnaire/q1", payer, ehr); rec.Code != 200 || f.seen.Load().Patient == "" {
		t.Fatalf("questionnaire with EHR token: %d %+v", rec.Code, f.seen.Load())
	}
	// Lower-case scheme (RFC 7235: case-insensitive).
	req := f.request("GET", "/fhir/Questionnaire/q1", "", "", "Authorization", "bearer "+payer)
	if req.Code != 200 {
		t.Fatalf("lower-case bearer: %d", req.Code)
	}
	if n := len(f.audit.all()); n != 0 {
		t.Fatalf("the gate audited %d admitted requests (the handlers do)", n)
	}
}

// TestGateRefusals: each refusal answers an OperationOutcome with the right
// status, and writes exactly one AuditEvent with a reason and no token.
func TestGateRefusals(t *testing.T) {
	f := newFixture(t, trust.ModeJWKS)
	payer := f.payerToken("dtr-app", fullScope)
	ehr := f.ehrSrv.token(t, nil)
	strangerKey, _ := jwks.Generate("ES256")
	foreignEHR := newEHRServer(t)
	now := time.Now()
	iss := f.ehrSrv.issuer
	byEHR := func(typ string, claims jwt.MapClaims) string { return jwttest.Sign(t, f.ehrSrv.key, typ, claims) }
	atClaims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": iss, "sub": "prac-1", "aud": iss, "client_id": "dtr-app-at-ehr", "patient": "pat-1",
			"scope": "launch patient/*.rs", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": "j-" + strconv.Itoa(int(jtiSeq.Add(1)))}
		if edit != nil {
			edit(c)
		}
		return c
	}

	tests := []struct {
		name      string
		method    string
		path      string
		payer     string
		ehr       string
		hdr       []string
		status    int
		issue     string
		reason    string // substring of the audited reason
		challenge string // substring of WWW-Authenticate, "" for none required
	}{
		{"no payer token", "GET", "/fhir/DocumentReference/d1", "", ehr, nil, 401, "login", "payer access token missing", `Bearer realm="fhir"`},
		{"basic instead of bearer", "GET", "/fhir/DocumentReference/d1", "", ehr, []string{"Authorization", "Basic YTpi"}, 401, "login", "payer access token missing", "Bearer"},
		{"empty bearer", "GET", "/fhir/DocumentReference/d1", "", ehr, []string{"Authorization", "Bearer "}, 401, "login", "empty", "invalid_token"},
		{"payer token signed by another key", "GET", "/fhir/DocumentReference/d1", payerTokenWith(t, strangerKey, "dtr-app", fullScope), ehr, nil, 401, "login", "payer token: unknown_key", `error="invalid_token"`},
		{"EHR token as the payer token", "GET", "/fhir/DocumentReference/d1", ehr, ehr, nil, 401, "login", "payer token: issuer", "invalid_token"},
		{"garbage payer token", "GET", "/fhir/DocumentReference/d1", "abc", ehr, nil, 401, "login", "payer token: malformed", "invalid_token"},
		{"EHR token missing on documents", "GET", "/fhir/DocumentReference/d1", payer, "", nil, 401, "login", "EHR access token missing", "Bearer"},
		{"EHR token missing on create", "POST", "/fhir/DocumentReference", payer, "", nil, 401, "login", "EHR access token missing", "Bearer"},
		{"payer token in the EHR header", "GET", "/fhir/DocumentReference/d1", payer, payer, nil, 401, "login", "EHR token: untrusted_issuer", "invalid_token"},
		{"EHR token from an untrusted EHR", "GET", "/fhir/DocumentReference/d1", payer, foreignEHR.token(t, nil), nil, 401, "login", "untrusted_issuer", "invalid_token"},
		{"EHR token for another audience", "GET", "/fhir/DocumentReference/d1", payer, f.ehrSrv.token(t, func(c *accesstoken.Claims) { c.Audience = jwt.ClaimStrings{payerURL} }), nil, 401, "login", "EHR token: audience", "invalid_token"},
		{"bad EHR token on an optional route", "GET", "/fhir/Questionnaire/q1", payer, "x.y.z", nil, 401, "login", "EHR token: malformed", "invalid_token"},
		{"EHR token issued to another app", "GET", "/fhir/DocumentReference/d1", f.payerToken("other", fullScope), ehr, nil, 403, "forbidden", "is not the registered ehr_client_id", ""},
		{"no ehr_client_id for that EHR", "GET", "/fhir/DocumentReference/d1", f.payerToken("unbound", fullScope), ehr, nil, 403, "forbidden", "registered no ehr_client_id", ""},
		{"EHR token without a patient", "GET", "/fhir/DocumentReference/d1", payer, f.ehrSrv.token(t, func(c *accesstoken.Claims) { c.Patient = "" }), nil, 401, "login", "no patient", "invalid_token"},
		{"EHR token patient not an id", "GET", "/fhir/DocumentReference/d1", payer, f.ehrSrv.token(t, func(c *accesstoken.Claims) { c.Patient = "Patient/pat-1" }), nil, 401, "login", "not a FHIR id", "invalid_token"},
		{"insufficient payer scope", "POST", "/fhir/DocumentReference", f.payerToken("dtr-app", "system/DocumentReference.rs"), ehr, nil, 403, "forbidden", "insufficient scope", "insufficient_scope"},
		{"scope for another resource", "GET", "/fhir/Questionnaire/q1", f.payerToken("dtr-app", "system/DocumentReference.cruds"), "", nil, 403, "forbidden", "system/Questionnaire.r", "insufficient_scope"},
		{"unknown purpose of use", "GET", "/fhir/DocumentReference/d1", payer, ehr, []string{HeaderPurposeOfUse, "MARKETING"}, 400, "code-invalid", "purpose of use", ""},
		{"purpose of use twice", "GET", "/fhir/DocumentReference/d1", payer, ehr, []string{HeaderPurposeOfUse, "TREAT", HeaderPurposeOfUse, "TREAT"}, 400, "code-invalid", "purpose of use", ""},
		{"Authorization twice", "GET", "/fhir/DocumentReference/d1", payer, ehr, []string{"Authorization", "Bearer " + payer}, 400, "invalid", "repeated", ""},
		{"EHR token with the EHR's iss signed by another key", "GET", "/fhir/DocumentReference/d1", payer, jwttest.Sign(t, strangerKey, "at+jwt", atClaims(nil)), nil, 401, "login", "EHR token: unknown_key", "invalid_token"},
		{"id_token as the EHR token", "GET", "/fhir/DocumentReference/d1", payer, byEHR("JWT", jwt.MapClaims{"iss": iss, "sub": "prac-1", "aud": "dtr-app-at-ehr",
			"exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "nonce": "n", "fhirUser": "Practitioner/prac-1"}), nil, 401, "login", "EHR token: wrong_type", "invalid_token"},
		{"refresh token JWT as the EHR token", "GET", "/fhir/DocumentReference/d1", payer, byEHR("JWT", atClaims(func(c jwt.MapClaims) { c["token_use"] = "refresh_token" })), nil, 401, "login", "EHR token: wrong_type", "invalid_token"},
		{"client assertion as the EHR token", "GET", "/fhir/DocumentReference/d1", payer, byEHR("JWT", jwt.MapClaims{"iss": iss, "sub": iss, "aud": iss + "/token",
			"exp": now.Add(time.Minute).Unix(), "jti": "a"}), nil, 401, "login", "EHR token: wrong_type", "invalid_token"},
		{"expired EHR token", "GET", "/fhir/DocumentReference/d1", payer, byEHR("at+jwt", atClaims(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = now.Add(-time.Hour).Unix(), now.Add(-time.Second).Unix()
		})), nil, 401, "expired", "EHR token: expired", "invalid_token"},
		{"EHR token not yet valid", "GET", "/fhir/DocumentReference/d1", payer, byEHR("at+jwt", atClaims(func(c jwt.MapClaims) { c["nbf"] = now.Add(5 * time.Minute).Unix() })), nil, 401, "login", "EHR token: not_yet_valid", "invalid_token"},
		{"EHR token without exp", "GET", "/fhir/DocumentReference/d1", payer, byEHR("at+jwt", atClaims(func(c jwt.MapClaims) { delete(c, "exp") })), nil, 401, "login", "EHR token: missing_claim", "invalid_token"},
		{"two tokens in the EHR header", "GET", "/fhir/DocumentReference/d1", payer, ehr + " " + ehr, nil, 401, "login", "X-EHR-Authorization bearer token malformed", "invalid_token"},
		{"comma list in Authorization", "GET", "/fhir/DocumentReference/d1", payer + ", Bearer " + payer, ehr, nil, 401, "login", "Authorization bearer token malformed", "invalid_token"},
		{"NUL in the payer token", "GET", "/fhir/DocumentReference/d1", payer[:20] + "\x00" + payer[20:], ehr, nil, 401, "login", "malformed", "invalid_token"},
		{"non-ASCII in the EHR token", "GET", "/fhir/DocumentReference/d1", payer, ehr[:20] + "é" + ehr[20:], nil, 401, "login", "malformed", "invalid_token"},
		{"NUL and invalid UTF-8 in the id", "GET", "/fhir/DocumentReference/%00%FF", "", "", nil, 401, "login", "payer access token missing", "Bearer"},
		{"oversized payer token", "GET", "/fhir/DocumentReference/d1", strings.Repeat("A", 9000), ehr, nil, 401, "too-long", "larger than 8 KiB", "invalid_token"},
		{"oversized EHR token", "GET", "/fhir/DocumentReference/d1", payer, strings.Repeat("A", 9000), nil, 401, "too-long", "larger than 8 KiB", "invalid_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.audit.all())
			rec := f.request(tt.method, tt.path, tt.payer, tt.ehr, tt.hdr...)
			issue, _ := outcome(t, rec)
			if rec.Code != tt.status || issue != tt.issue {
				t.Fatalf("got %d %s (%s), want %d %s", rec.Code, issue, rec.Body, tt.status, tt.issue)
			}
			if f.seen.Load() != nil {
				t.Fatal("the handler ran")
			}
			if ch := rec.Header().Get("WWW-Authenticate"); tt.challenge != "" && !strings.Contains(ch, tt.challenge) {
				t.Fatalf("WWW-Authenticate %q, want %q", ch, tt.challenge)
			}
			if rec.Code == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Fatal("401 without WWW-Authenticate: Bearer")
			}
			evs := f.audit.all()[before:]
			if len(evs) != 1 {
				t.Fatalf("%d audit events, want 1", len(evs))
			}
			ev := evs[0]
			if !strings.Contains(ev.Reason, tt.reason) || ev.Status != tt.status || ev.Outcome != "4" || ev.ResourceType == "" {
				t.Fatalf("audit event %+v, want reason containing %q", ev, tt.reason)
			}
			if ev.ResourceID != "" && ev.ResourceID != "d1" && ev.ResourceID != "q1" {
				t.Fatalf("audited resource id %q is not the route's id", ev.ResourceID)
			}
			if strings.ContainsAny(ev.Reason, "\x00\xff") || !utf8.ValidString(ev.Reason) {
				t.Fatalf("audit reason %q is not clean text", ev.Reason)
			}
			for _, field := range []string{ev.Reason, ev.ClientID, ev.FHIRUser, ev.EHRIssuer, ev.Patient, ev.Query} {
				if strings.Contains(field, "eyJ") || (len(tt.payer) > 20 && strings.Contains(field, tt.payer[len(tt.payer)-20:])) {
					t.Fatalf("audit event carries a token: %+v", ev)
				}
			}
		})
	}
	// The audit names the caller as far as it was verified.
	rec := f.request("GET", "/fhir/DocumentReference/d1", f.payerToken("other", fullScope), ehr)
	ev := f.audit.all()[len(f.audit.all())-1]
	if rec.Code != 403 || ev.ClientID != "other" || ev.EHRIssuer != f.ehrSrv.issuer || ev.FHIRUser != "Practitioner/prac-1" || ev.ResourceID != "d1" {
		t.Fatalf("audit of a binding refusal: %+v", ev)
	}
}

func TestGateEHRUnavailable(t *testing.T) {
	f := newFixture(t, trust.ModeIntrospection)
	payer := f.payerToken("dtr-app", fullScope)
	ehr := f.ehrSrv.token(t, nil)
	if rec := f.request("GET", "/fhir/DocumentReference/d1", payer, ehr); rec.Code != 200 {
		t.Fatalf("introspection mode: %d %s", rec.Code, rec.Body)
	}
	f.ehrSrv.down.Store(true)
	rec := f.request("GET", "/fhir/DocumentReference/d1", payer, f.ehrSrv.token(t, nil))
	if issue, _ := outcome(t, rec); rec.Code != 503 || issue != "transient" || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("EHR down: %d %s %v", rec.Code, issue, rec.Header())
	}
	ev := f.audit.all()[len(f.audit.all())-1]
	if ev.Outcome != "8" || !strings.Contains(ev.Reason, "ehr_unavailable") {
		t.Fatalf("audit %+v", ev)
	}
	// Revoked at the EHR: inactive.
	f.ehrSrv.down.Store(false)
	revoked := f.ehrSrv.token(t, nil)
	f.ehrSrv.mu.Lock()
	delete(f.ehrSrv.active, revoked)
	f.ehrSrv.mu.Unlock()
	rec = f.request("GET", "/fhir/DocumentReference/d1", payer, revoked)
	if rec.Code != 401 || !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`) || f.seen.Load() != nil {
		t.Fatalf("revoked: %d %v", rec.Code, rec.Header())
	}
	if ev := f.audit.all()[len(f.audit.all())-1]; ev.Status != 401 || ev.Outcome != "4" || ev.Reason != "EHR token: inactive (issuer "+f.ehrSrv.issuer+")" {
		t.Fatalf("audit of a revoked token %+v", ev)
	}
	// Active without a patient.
	noPatient := f.ehrSrv.token(t, func(c *accesstoken.Claims) { c.Patient = "" })
	rec = f.request("GET", "/fhir/DocumentReference/d1", payer, noPatient)
	if rec.Code != 401 || !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`) || f.seen.Load() != nil {
		t.Fatalf("no patient: %d %v", rec.Code, rec.Header())
	}
	if ev := f.audit.all()[len(f.audit.all())-1]; ev.Status != 401 || ev.Reason != "EHR token has no patient" || ev.FHIRUser != "Practitioner/prac-1" {
		t.Fatalf("audit %+v", ev)
	}
}

// TestGateRateLimitBeforeCrypto: beyond the burst the gate answers 429 with
// Retry-After without verifying either token. The bucket is the verified
// client's only for a payer token the verifier has already verified (a
// hash lookup in its cache); anything else is throttled per remote address.
// So forged tokens naming dtr-app, however many, never drain dtr-app's
// bucket, and a flood of them from one address is throttled by that
// address's bucket, with no verification for any throttled request. The
// clock is frozen: no token comes back unless the test advances it.
func TestGateRateLimitBeforeCrypto(t *testing.T) {
	clk := testclock.New(time.Now())
	f := newFixture(t, trust.ModeJWKS, func(c *Config) { c.RateLimit, c.Now = 1, clk.Now }) // burst 2
	const app, attacker, anonymous = "192.0.2.10:1000", "203.0.113.66:4444", "198.51.100.7:5555"
	payer := f.payerToken("dtr-app", fullScope)
	ehr := f.ehrSrv.token(t, nil)
	sigChecks := func() int64 { return f.payer.v.Verifications() }

	// dtr-app's first request (token not yet verified) takes from its
	// address's bucket; from then on the token is known and dtr-app has its
	// own bucket of 2.
	codes := map[int]int{}
	var last *http.Response
	for range 10 {
		rec := f.requestFrom(app, "GET", "/fhir/DocumentReference/d1", payer, ehr)
		codes[rec.Code]++
		if rec.Code == 429 {
			last = rec.Result()
			if issue, _ := outcome(t, rec); issue != "throttled" {
				t.Fatalf("issue %s", issue)
			}
		}
	}
	if codes[200] != 3 || codes[429] != 7 {
		t.Fatalf("codes %v, want 3x200 (1 from the address bucket, 2 from dtr-app's) and 7x429", codes)
	}
	if ra, err := strconv.Atoi(last.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", last.Header.Get("Retry-After"))
	}
	if p, e, s := f.payer.n.Load(), f.ehr.n.Load(), sigChecks(); p != 3 || e != 3 || s != 1 {
		t.Fatalf("%d payer verifications (%d signature checks), %d EHR validations; want 3 (1), 3: none for throttled requests", p, s, e)
	}
	for _, ev := range f.audit.all() {
		if ev.Status != 429 || ev.ClientID != "dtr-app" || ev.Reason != "rate limit exceeded for client dtr-app" {
			t.Fatalf("throttle of a verified client audited as %+v", ev)
		}
	}

	// A second ten seconds later dtr-app has its full bucket again.
	clk.Advance(10 * time.Second)
	// The attacker floods from one address with forged tokens naming
	// dtr-app (signed with its own key): two get past the limiter and fail
	// verification, the rest are throttled by the attacker's address,
	// unverified.
	forged := payerTokenWith(t, mustKey(t), "dtr-app", fullScope)
	flood := map[int]int{}
	for i := range 20 {
		tok := forged
		if i%2 == 1 {
			tok = payerTokenWith(t, mustKey(t), "dtr-app", fullScope) // distinct forgeries: no cache to hide behind
		}
		flood[f.requestFrom(attacker, "GET", "/fhir/DocumentReference/d1", tok, ehr).Code]++
	}
	if flood[401] != 2 || flood[429] != 18 {
		t.Fatalf("forged flood codes %v, want 2x401 and 18x429", flood)
	}
	if s := sigChecks(); s != 3 {
		t.Fatalf("%d signature checks after the flood, want 3 (none for the 18 throttled forgeries)", s)
	}
	if e := f.ehr.n.Load(); e != 3 {
		t.Fatalf("%d EHR validations after the flood", e)
	}
	// dtr-app's bucket was not touched by tokens merely naming it.
	for i := range 2 {
		if rec := f.requestFrom(app, "GET", "/fhir/DocumentReference/d1", payer, ehr); rec.Code != 200 {
			t.Fatalf("dtr-app request %d after the forged flood: %d %s", i, rec.Code, rec.Body)
		}
	}
	if rec := f.requestFrom(app, "GET", "/fhir/DocumentReference/d1", payer, ehr); rec.Code != 429 {
		t.Fatalf("dtr-app beyond its own burst: %d", rec.Code)
	}
	// The same forged flood from dtr-app's own address does not touch its
	// client bucket either (it drains the address bucket only).
	clk.Advance(10 * time.Second)
	for range 5 {
		f.requestFrom(app, "GET", "/fhir/DocumentReference/d1", forged, ehr)
	}
	for i := range 2 {
		if rec := f.requestFrom(app, "GET", "/fhir/DocumentReference/d1", payer, ehr); rec.Code != 200 {
			t.Fatalf("dtr-app request %d after forgeries from its own address: %d", i, rec.Code)
		}
	}

	// Another verified client has its own bucket.
	other := f.payerToken("other", fullScope)
	clk.Advance(10 * time.Second)
	for i := range 3 {
		if rec := f.requestFrom(app, "GET", "/fhir/Questionnaire/q1", other, ""); rec.Code != 200 {
			t.Fatalf("other client request %d: %d", i, rec.Code)
		}
	}

	// Without a token the bucket is the remote address; X-Forwarded-For
	// does not pick another one.
	for range 2 {
		f.requestFrom(anonymous, "GET", "/fhir/Questionnaire/q1", "", "")
	}
	if rec := f.requestFrom(anonymous, "GET", "/fhir/Questionnaire/q1", "", ""); rec.Code != 429 {
		t.Fatalf("anonymous flood: %d", rec.Code)
	}
	if rec := f.requestFrom(anonymous, "GET", "/fhir/Questionnaire/q1", "", "", "X-Forwarded-For", "203.0.113.9"); rec.Code != 429 {
		t.Fatalf("X-Forwarded-For escaped the limit: %d", rec.Code)
	}
	clk.Advance(time.Second) // one token back after Retry-After
	if rec := f.requestFrom(anonymous, "GET", "/fhir/Questionnaire/q1", "", ""); rec.Code != 401 {
		t.Fatalf("after a second: %d, want the request through the limiter (401: no token)", rec.Code)
	}

	byReason := map[string]int{}
	for _, ev := range f.audit.all() {
		if ev.Status == 429 {
			byReason[ev.Reason+" / client="+ev.ClientID]++
		}
	}
	want := map[string]int{
		"rate limit exceeded for client dtr-app / client=dtr-app":                 8,
		"rate limit exceeded for unverified requests from 203.0.113.66 / client=": 18,
		"rate limit exceeded for unverified requests from 192.0.2.10 / client=":   3,
		"rate limit exceeded for unverified requests from 198.51.100.7 / client=": 2,
	}
	if len(byReason) != len(want) {
		t.Fatalf("throttle audit %v, want %v", byReason, want)
	}
	for k, n := range want {
		if byReason[k] != n {
			t.Fatalf("throttle audit %v, want %v", byReason, want)
		}
	}
}

// TestGateOversizeBeforeCrypto: oversized tokens are refused unread.
func TestGateOversizeBeforeCrypto(t *testing.T) {
	f := newFixture(t, trust.ModeJWKS)
	big := strings.Repeat("A", 8<<10+1)
	f.request("GET", "/fhir/DocumentReference/d1", big, f.ehrSrv.token(t, nil))
	f.request("GET", "/fhir/DocumentReference/d1", f.payerToken("dtr-app", fullScope), big)
	if p, e := f.payer.n.Load(), f.ehr.n.Load(); p != 0 || e != 0 {
		t.Fatalf("%d payer and %d EHR verifications of oversized tokens", p, e)
	}
}

func TestGateAuthenticatedRouteNeedsNoScope(t *testing.T) {
	f := newFixture(t, trust.ModeJWKS)
	if rec := f.request("DELETE", "/fhir/DocumentReference/d1", f.payerToken("dtr-app", "system/Questionnaire.rs"), ""); rec.Code != 200 {
		t.Fatalf("authenticated-only route: %d %s", rec.Code, rec.Body)
	}
	if rec := f.request("DELETE", "/fhir/DocumentReference/d1", "", ""); rec.Code != 401 {
		t.Fatalf("without a token: %d", rec.Code)
	}
}

func mustKey(t testing.TB) *jwks.SigningKey {
	k, err := jwks.Generate("ES256")
	if err != nil {
		t.Fatal(err)
	}
	return k
}
