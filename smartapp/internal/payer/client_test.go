package payer_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"dtrsandbox/shared/fhir"
	"dtrsandbox/smartapp/internal/payer"
	"dtrsandbox/smartapp/internal/signer"
	"dtrsandbox/smartapp/internal/standin"
	"dtrsandbox/smartapp/internal/testworld"
)

var (
	coverage = json.RawMessage(`{"resourceType":"Coverage","id":"cov-1"}`)
	order    = json.RawMessage(`{"resourceType":"DeviceRequest","id":"dr-oxygen-1"}`)
)

func TestTokenIsCachedUntil30sBeforeExpiry(t *testing.T) {
	w := testworld.New(t, standin.EHROptions{})
	s := w.Session(t, time.Hour)
	ctx := context.Background()
	call := func() {
		t.Helper()
		if _, err := w.PayerAPI.SearchDocumentReferences(ctx, s, "search", nil); err != nil {
			t.Fatal(err)
		}
	}
	call()
	call()
	if n := w.Payer.TokenRequests(); n != 1 {
		t.Fatalf("%d token requests for two calls, want 1", n)
	}
	w.Clock.Advance(269 * time.Second) // 300 s token: still 31 s left
	call()
	if n := w.Payer.TokenRequests(); n != 1 {
		t.Fatalf("token replaced with 31 s left (%d requests)", n)
	}
	w.Clock.Advance(2 * time.Second) // 29 s left: replace
	call()
	if n := w.Payer.TokenRequests(); n != 2 {
		t.Fatalf("%d token requests, want a fresh token 29 s before expiry", n)
	}
	// Tokens are per session: another session gets its own.
	other := w.Session(t, time.Hour)
	if _, err := w.PayerAPI.SearchDocumentReferences(ctx, other, "search", nil); err != nil {
		t.Fatal(err)
	}
	if n := w.Payer.TokenRequests(); n != 3 {
		t.Fatalf("%d token requests, want one for the second session", n)
	}
	form := w.Payer.TokenForms[0]
	if form["grant_type"][0] != "client_credentials" || form["scope"][0] != payer.DefaultScope {
		t.Fatalf("token form %v", form)
	}
}

func TestBothTokensOnEveryCall(t *testing.T) {
	w := testworld.New(t, standin.EHROptions{})
	s := w.Session(t, time.Hour)
	ctx := context.Background()
	if _, err := w.PayerAPI.QuestionnairePackage(ctx, s, coverage, order); err != nil {
		t.Fatal(err)
	}
	doc := &fhir.DocumentReference{ResourceType: "DocumentReference", Status: "current"}
	st, err := w.PayerAPI.CreateDocumentReference(ctx, s, "create", doc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.PayerAPI.UpdateDocumentReference(ctx, s, "update", st.ID, st.VersionID, doc); err != nil {
		t.Fatal(err)
	}
	if _, err := w.PayerAPI.ReadDocumentReference(ctx, s, "read", st.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.PayerAPI.SearchDocumentReferences(ctx, s, "search", nil); err != nil {
		t.Fatal(err)
	}
	ehrToken, _ := s.EHRAccessToken()
	payerToken, ok := s.PayerToken(w.Clock.Now(), 0)
	if !ok {
		t.Fatal("no payer token cached")
	}
	recs := w.Payer.Recorded()
	if len(recs) != 5 {
		t.Fatalf("%d requests recorded", len(recs))
	}
	for _, r := range recs {
		if r.Authorization != payerToken || r.EHRAuthorization != ehrToken || r.PurposeOfUse != "COVERAGE" {
			t.Errorf("%s %s: Authorization ok=%v X-EHR-Authorization ok=%v purpose %q", r.Method, r.Path,
				r.Authorization == payerToken, r.EHRAuthorization == ehrToken, r.PurposeOfUse)
		}
	}
	if recs[2].IfMatch != `W/"1"` {
		t.Fatalf("update If-Match %q", recs[2].IfMatch)
	}
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name       string
		fault      *standin.Fault
		token      *standin.Fault
		unreach    bool
		status     int
		msg        []string
		hasOutcome bool
	}{
		{name: "401", fault: &standin.Fault{Status: 401, Diag: "EHR token inactive"}, status: 401, msg: []string{"credentials", "EHR token inactive"}, hasOutcome: true},
		{name: "403", fault: &standin.Fault{Status: 403, Diag: "subject is not the patient"}, status: 403, msg: []string{"refused", "subject is not the patient"}, hasOutcome: true},
		{name: "429", fault: &standin.Fault{Status: 429, RetryAfter: "7", Diag: "slow down"}, status: 429, msg: []string{"rate limiting", "7 seconds"}, hasOutcome: true},
		{name: "503", fault: &standin.Fault{Status: 503, Diag: "maintenance"}, status: 503, msg: []string{"temporarily unavailable", "maintenance"}, hasOutcome: true},
		{name: "token endpoint 401", token: &standin.Fault{Status: 401, Diag: "unknown key"}, status: 401, msg: []string{"did not issue a token", "unknown key"}},
		{name: "unreachable", unreach: true, status: 0, msg: []string{"could not be reached"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := testworld.New(t, standin.EHROptions{})
			s := w.Session(t, time.Hour)
			if tt.fault != nil {
				f := *tt.fault
				f.Times = 2 // a retry would fail too
				w.Payer.Fail(f)
			}
			if tt.token != nil {
				w.Payer.FailToken(*tt.token)
			}
			if tt.unreach {
				w.Payer.Server.Close()
			}
			_, err := w.PayerAPI.QuestionnairePackage(context.Background(), s, coverage, order)
			var pe *payer.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err %v", err)
			}
			if pe.Status != tt.status {
				t.Fatalf("status %d, want %d", pe.Status, tt.status)
			}
			for _, m := range tt.msg {
				if !strings.Contains(pe.Message, m) {
					t.Errorf("message %q lacks %q", pe.Message, m)
				}
			}
			if tt.hasOutcome != (pe.Outcome != nil) {
				t.Errorf("outcome %s", pe.Outcome)
			}
			if tt.name == "429" && pe.RetryAfter != "7" {
				t.Errorf("Retry-After %q", pe.RetryAfter)
			}
			if tt.name != "unreachable" && len(s.PayerAnswers()) == 0 {
				t.Error("answer not recorded for the security panel")
			}
		})
	}
}

func TestRejectedCachedTokenIsReplacedOnce(t *testing.T) {
	w := testworld.New(t, standin.EHROptions{})
	s := w.Session(t, time.Hour)
	ctx := context.Background()
	if _, err := w.PayerAPI.SearchDocumentReferences(ctx, s, "search", nil); err != nil {
		t.Fatal(err)
	}
	w.Payer.RevokeTokens() // the payer restarted
	if _, err := w.PayerAPI.SearchDocumentReferences(ctx, s, "search", nil); err != nil {
		t.Fatalf("not retried with a fresh token: %v", err)
	}
	if n := w.Payer.TokenRequests(); n != 2 {
		t.Fatalf("%d token requests", n)
	}
}

func TestNoPayerTokenForAnExpiredSession(t *testing.T) {
	w := testworld.New(t, standin.EHROptions{})
	s := w.Session(t, time.Minute)
	w.Clock.Advance(2 * time.Minute)
	_, err := w.PayerAPI.QuestionnairePackage(context.Background(), s, coverage, order)
	if !errors.Is(err, signer.ErrExpired) {
		t.Fatalf("err %v", err)
	}
	if n := w.Payer.TokenRequests(); n != 0 || len(w.Payer.Recorded()) != 0 {
		t.Fatalf("payer contacted: %d token requests, %d FHIR requests", n, len(w.Payer.Recorded()))
	}
}

func TestQuestionnairePackageAnswers(t *testing.T) {
	w := testworld.New(t, standin.EHROptions{})
	s := w.Session(t, time.Hour)
	pkg, err := w.PayerAPI.QuestionnairePackage(context.Background(), s, coverage, order)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkg.Questionnaires) != 1 || !strings.Contains(string(pkg.Questionnaires[0]), `"home-oxygen"`) {
		t.Fatalf("package %d questionnaires", len(pkg.Questionnaires))
	}
	var in fhir.Parameters
	if err := json.Unmarshal(w.Payer.Recorded()[0].Body, &in); err != nil || len(in.Parameter) != 2 ||
		in.Parameter[0].Name != "coverage" || in.Parameter[1].Name != "order" {
		t.Fatalf("input %+v %v", in, err)
	}
}
