package ehr_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"dtrsandbox/shared/fhir"
	"dtrsandbox/smartapp/internal/ehr"
	"dtrsandbox/smartapp/internal/standin"
	"dtrsandbox/smartapp/internal/testworld"
)

func TestReadSearchAndWriteBack(t *testing.T) {
	w := testworld.New(t, standin.EHROptions{})
	s := w.Session(t, time.Hour)
	ctx := context.Background()
	p, err := w.EHRAPI.Read(ctx, s, "read", "Patient/pat-1")
	if err != nil || len(p) == 0 {
		t.Fatal(err)
	}
	for _, bad := range []string{"Patient", "https://evil.example/fhir/Patient/pat-1", "Patient/../x", "#x"} {
		if _, err := w.EHRAPI.Read(ctx, s, "read", bad); err == nil {
			t.Errorf("read %q", bad)
		}
	}
	if _, err := w.EHRAPI.Read(ctx, s, "read", "Patient/nobody"); !isStatus(err, http.StatusNotFound) {
		t.Fatalf("missing patient: %v", err)
	}
	found, err := w.EHRAPI.Search(ctx, s, "search", "DeviceRequest", url.Values{"patient": {"pat-1"}})
	if err != nil || len(found) != 1 {
		t.Fatalf("%d found, %v", len(found), err)
	}
	id, err := w.EHRAPI.CreateQuestionnaireResponse(ctx, s, &fhir.QuestionnaireResponse{ResourceType: "QuestionnaireResponse", Status: "completed"})
	if err != nil || id == "" {
		t.Fatalf("%q %v", id, err)
	}
}

func TestExpiredOrRefusedTokenMeansRelaunch(t *testing.T) {
	w := testworld.New(t, standin.EHROptions{})
	s := w.Session(t, time.Minute)
	w.Clock.Advance(2 * time.Minute)
	_, err := w.EHRAPI.Read(context.Background(), s, "read", "Patient/pat-1")
	if !errors.Is(err, ehr.ErrSessionExpired) {
		t.Fatalf("expired session: %v", err)
	}
	// A token the EHR no longer accepts (revoked) is reported the same way.
	w2 := testworld.New(t, standin.EHROptions{})
	s2 := w2.Session(t, time.Hour)
	w2.EHR.RevokeTokens()
	_, err = w2.EHRAPI.Read(context.Background(), s2, "read", "Patient/pat-1")
	if !errors.Is(err, ehr.ErrSessionExpired) || !isStatus(err, http.StatusUnauthorized) {
		t.Fatalf("revoked token: %v", err)
	}
}

func isStatus(err error, status int) bool {
	var e *ehr.Error
	return errors.As(err, &e) && e.Status == status
}
