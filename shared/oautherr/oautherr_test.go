package oautherr

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		status    int
		code      string
		challenge string
	}{
		{"invalid_request", InvalidRequest("missing %s", "grant_type"), 400, "invalid_request", ""},
		{"invalid_client basic challenge", InvalidClient("unknown client"), 401, "invalid_client", "Basic"},
		{"invalid_token bearer challenge", InvalidToken("expired"), 401, "invalid_token", "Bearer"},
		{"cause hidden", InvalidGrant("code reused").WithCause(errors.New("row 42 secret detail")), 400, "invalid_grant", ""},
		{"plain error becomes server_error", errors.New("db down: password=x"), 500, "server_error", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Write(rec, tt.err)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d", rec.Code, tt.status)
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q", got)
			}
			var b Body
			if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
				t.Fatal(err)
			}
			if b.Error != tt.code {
				t.Errorf("error %q, want %q", b.Error, tt.code)
			}
			if strings.Contains(rec.Body.String(), "secret") || strings.Contains(rec.Body.String(), "password") {
				t.Errorf("cause leaked: %s", rec.Body.String())
			}
			ch := rec.Header().Get("WWW-Authenticate")
			if tt.challenge == "" && ch != "" {
				t.Errorf("unexpected challenge %q", ch)
			}
			if tt.challenge != "" && !strings.HasPrefix(ch, tt.challenge) {
				t.Errorf("challenge %q, want prefix %q", ch, tt.challenge)
			}
		})
	}
}

func TestBearerChallengeSanitizes(t *testing.T) {
	got := BearerChallenge(InvalidToken(`bad "quote" \ here`))
	if strings.Count(got, `"`) != 6 { // realm, error, error_description: 3 pairs
		t.Fatalf("unbalanced quotes in %s", got)
	}
	if strings.Contains(got, `\`) {
		t.Fatalf("backslash kept in %s", got)
	}
}

func TestAsKeepsStatus(t *testing.T) {
	e := As(InvalidScope("too much"))
	if e.Status != http.StatusBadRequest || e.Code != CodeInvalidScope {
		t.Fatalf("got %+v", e)
	}
}
