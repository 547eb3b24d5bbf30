// Tests of the OperationOutcome constructor and the FHIR response writers.

package fhir

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWriteOutcome(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		code         string
		diagnostics  string
		wantSeverity string
		wantCode     string
		wantDiag     string
	}{
		{"not found", http.StatusNotFound, IssueNotFound, "DocumentReference/x is not known", "error", "not-found", "DocumentReference/x is not known"},
		{"forbidden", http.StatusForbidden, IssueForbidden, "subject outside the launch", "error", "forbidden", "subject outside the launch"},
		{"bad body", http.StatusBadRequest, IssueStructure, `fhir: duplicate key "subject" at $`, "error", "structure", `fhir: duplicate key "subject" at $`},
		{"server fault", http.StatusServiceUnavailable, IssueTransient, "try again", "error", "transient", "try again"},
		{"success note", http.StatusOK, IssueInformational, "all good", "information", "informational", "all good"},
		{"unknown code is replaced", http.StatusBadRequest, "bogus", "x", "error", "processing", `(invalid issue code "bogus") x`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteOutcome(rec, tt.status, tt.code, tt.diagnostics)
			res := rec.Result()
			if res.StatusCode != tt.status {
				t.Errorf("status = %d, want %d", res.StatusCode, tt.status)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/fhir+json; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			if res.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("X-Content-Type-Options missing")
			}
			var oo OperationOutcome
			if err := Decode(rec.Body.Bytes(), &oo); err != nil {
				t.Fatalf("body %s: %v", rec.Body, err)
			}
			if oo.ResourceType != "OperationOutcome" || len(oo.Issue) != 1 {
				t.Fatalf("body = %s", rec.Body)
			}
			is := oo.Issue[0]
			if is.Severity != tt.wantSeverity || is.Code != tt.wantCode || is.Diagnostics != tt.wantDiag {
				t.Errorf("issue = %+v, want %s/%s/%q", is, tt.wantSeverity, tt.wantCode, tt.wantDiag)
			}
		})
	}
}

func TestNewOutcome(t *testing.T) {
	oo := NewOutcome(SeverityWarning, IssueBusinessRule, "draft is older than the questionnaire")
	got, _ := json.Marshal(oo)
	want := `{"resourceType":"OperationOutcome","issue":[{"severity":"warning","code":"business-rule","diagnostics":"draft is older than the questionnaire"}]}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	oo = NewOutcome("severe", IssueInvalid, "x")
	if oo.Issue[0].Severity != SeverityError || !strings.Contains(oo.Issue[0].Diagnostics, `invalid severity "severe"`) {
		t.Errorf("bad severity not replaced: %+v", oo.Issue[0])
	}
}

func TestIssueTypes(t *testing.T) {
	// The whole R4 IssueType value set (http://hl7.org/fhir/issue-type).
	all := []string{"invalid", "structure", "required", "value", "invariant", "security", "login",
		"unknown", "expired", "forbidden", "suppressed", "processing", "not-supported", "duplicate",
		"multiple-matches", "not-found", "deleted", "too-long", "code-invalid", "extension",
		"too-costly", "business-rule", "conflict", "transient", "lock-error", "no-store",
		"exception", "timeout", "incomplete", "throttled", "informational"}
	for _, c := range all {
		if !ValidIssueType(c) {
			t.Errorf("ValidIssueType(%q) = false", c)
		}
	}
	for _, c := range []string{"", "Invalid", "not_found", "error", "fatal"} {
		if ValidIssueType(c) {
			t.Errorf("ValidIssueType(%q) = true", c)
		}
	}
	for _, s := range []string{"fatal", "error", "warning", "information"} {
		if !ValidSeverity(s) {
			t.Errorf("ValidSeverity(%q) = false", s)
		}
	}
	if ValidSeverity("info") {
		t.Error(`ValidSeverity("info") = true`)
	}
}

func TestWriteResource(t *testing.T) {
	body := []byte(`{"resourceType":"Patient","id":"pat-1"}`)
	rec := httptest.NewRecorder()
	WriteResource(rec, http.StatusCreated, body)
	if rec.Code != http.StatusCreated || rec.Body.String() != string(body) {
		t.Errorf("got %d %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/fhir+json; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	if cl := rec.Header().Get("Content-Length"); cl != "39" {
		t.Errorf("Content-Length = %q", cl)
	}
}

func TestWriteJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteJSON(rec, http.StatusOK, &Patient{ResourceType: "Patient", ID: "pat-1"})
	if rec.Code != http.StatusOK || rec.Body.String() != `{"resourceType":"Patient","id":"pat-1"}` {
		t.Errorf("got %d %s", rec.Code, rec.Body)
	}
	if !strings.HasPrefix(rec.Header().Get("Content-Type"), ContentType) {
		t.Errorf("Content-Type = %q", rec.Header().Get("Content-Type"))
	}

	// A value that cannot be encoded is a server bug: 500 with an OperationOutcome.
	bad := Decimal("not a number")
	rec = httptest.NewRecorder()
	WriteJSON(rec, http.StatusOK, &Quantity{Value: &bad})
	var oo OperationOutcome
	if err := Decode(rec.Body.Bytes(), &oo); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusInternalServerError || oo.Issue[0].Code != IssueException {
		t.Errorf("got %d %s", rec.Code, rec.Body)
	}
	if strings.Contains(rec.Body.String(), "not a number") {
		t.Errorf("internal detail leaked: %s", rec.Body)
	}
}
