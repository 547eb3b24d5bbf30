package gate

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"dtrsandbox/payer/internal/trust"
	"dtrsandbox/shared/accesstoken"
	"dtrsandbox/shared/jwks"
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
	if rec := f.request("GET", "/fhir/DocumentReference/d1", payer, revoked); rec.Code != 401 {
		t.Fatalf("revoked: %d", rec.Code)
	}
	// Active without a patient.
	noPatient := f.ehrSrv.token(t, func(c *accesstoken.Claims) { c.Patient = "" })
	if rec := f.request("GET", "/fhir/DocumentReference/d1", payer, noPatient); rec.Code != 401 {
		t.Fatalf("no patient: %d", rec.Code)
	}
	if ev := f.audit.all()[len(f.audit.all())-1]; !strings.Contains(ev.Reason, "no patient") {
		t.Fatalf("audit %+v", ev)
	}
}

// TestGateRateLimitBeforeCrypto: beyond the burst the gate answers 429 with
// Retry-After without verifying either token.
func TestGateRateLimitBeforeCrypto(t *testing.T) {
	f := newFixture(t, trust.ModeJWKS, func(c *Config) { c.RateLimit = 1 }) // burst 2
	payer := f.payerToken("dtr-app", fullScope)
	ehr := f.ehrSrv.token(t, nil)
	codes := map[int]int{}
	var last *http.Response
	for range 10 {
		rec := f.request("GET", "/fhir/DocumentReference/d1", payer, ehr)
		codes[rec.Code]++
		if rec.Code == 429 {
			last = rec.Result()
			if issue, _ := outcome(t, rec); issue != "throttled" {
				t.Fatalf("issue %s", issue)
			}
		}
	}
	if codes[200] != 2 || codes[429] != 8 {
		t.Fatalf("codes %v, want 2x200 and 8x429", codes)
	}
	if ra, err := strconv.Atoi(last.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", last.Header.Get("Retry-After"))
	}
	if p, e := f.payer.n.Load(), f.ehr.n.Load(); p != 2 || e != 2 {
		t.Fatalf("%d payer and %d EHR verifications; want 2 each (none for throttled requests)", p, e)
	}
	// Forged tokens claiming the same client share its bucket and cost no
	// verification either.
	forged := payerTokenWith(t, mustKey(t), "dtr-app", fullScope)
	for range 5 {
		if rec := f.request("GET", "/fhir/DocumentReference/d1", forged, ehr); rec.Code != 429 {
			t.Fatalf("forged token: %d", rec.Code)
		}
	}
	if p := f.payer.n.Load(); p != 2 {
		t.Fatalf("%d payer verifications after a throttled flood", p)
	}
	// Another client has its own bucket.
	if rec := f.request("GET", "/fhir/Questionnaire/q1", f.payerToken("other", fullScope), ""); rec.Code != 200 {
		t.Fatalf("other client: %d", rec.Code)
	}
	// Without a token the bucket is the remote address.
	for range 2 {
		f.request("GET", "/fhir/Questionnaire/q1", "", "")
	}
	rec := f.request("GET", "/fhir/Questionnaire/q1", "", "")
	if rec.Code != 429 {
		t.Fatalf("anonymous flood: %d", rec.Code)
	}
	// X-Forwarded-For does not pick another bucket.
	if rec := f.request("GET", "/fhir/Questionnaire/q1", "", "", "X-Forwarded-For", "203.0.113.9"); rec.Code != 429 {
		t.Fatalf("X-Forwarded-For escaped the limit: %d", rec.Code)
	}
	throttled := 0
	for _, ev := range f.audit.all() {
		if ev.Status == 429 {
			throttled++
			if !strings.Contains(ev.Reason, "rate limit") || ev.ClientID != "" {
				t.Fatalf("throttle audit %+v", ev)
			}
		}
	}
	if throttled != 15 {
		t.Fatalf("%d throttled requests audited, want 15", throttled)
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
