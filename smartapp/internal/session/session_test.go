package session_test

import (
	"testing"
	"time"

	"dtrsandbox/smartapp/internal/launch"
	"dtrsandbox/smartapp/internal/session"
	"dtrsandbox/smartapp/internal/standin"
)

func TestPendingSessionsLiveForPendingTTL(t *testing.T) {
	clock := standin.NewClock()
	st := session.NewStore(clock.Now)
	s, err := st.NewPending(&launch.Pending{State: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.ID()) < 43 || len(s.CSRF()) < 43 || s.ID() == s.CSRF() {
		t.Fatalf("ids %q %q", s.ID(), s.CSRF())
	}
	if st.Get(s.ID()) != s || s.Authenticated() || s.Expired(clock.Now()) {
		t.Fatal("fresh pending session not found")
	}
	if raw, att := s.EHRAccessToken(); raw != "" || att.Valid() {
		t.Fatal("a pending session offers an EHR token")
	}
	clock.Advance(launch.PendingTTL + time.Second)
	if st.Get(s.ID()) != nil {
		t.Fatal("pending session outlived its TTL")
	}
}

func TestPromoteNeedsAVerifiedLaunch(t *testing.T) {
	st := session.NewStore(nil)
	old, _ := st.NewPending(&launch.Pending{})
	if _, err := st.Promote(old, &launch.Result{AccessToken: "unverified", ExpiresAt: time.Now().Add(time.Hour)}); err == nil {
		t.Fatal("promoted a launch without an attestation")
	}
	if _, err := st.Promote(old, nil); err == nil {
		t.Fatal("promoted nothing")
	}
}

func TestCSRFAndGet(t *testing.T) {
	st := session.NewStore(nil)
	s, _ := st.NewPending(&launch.Pending{})
	for _, bad := range []string{"", s.CSRF() + "x", s.CSRF()[1:], s.ID()} {
		if s.CheckCSRF(bad) {
			t.Fatalf("accepted %q", bad)
		}
	}
	if !s.CheckCSRF(s.CSRF()) {
		t.Fatal("refused its own token")
	}
	if st.Get("") != nil || st.Get("unknown") != nil {
		t.Fatal("found a session for an unknown id")
	}
	st.Delete(s.ID())
	if st.Get(s.ID()) != nil || st.Len() != 0 {
		t.Fatal("deleted session still there")
	}
}

func TestPayerTokenCacheAndAnswers(t *testing.T) {
	clock := standin.NewClock()
	st := session.NewStore(clock.Now)
	s, _ := st.NewPending(&launch.Pending{})
	s.SetPayerToken("tok", clock.Now().Add(100*time.Second), nil)
	if tok, ok := s.PayerToken(clock.Now(), 30*time.Second); !ok || tok != "tok" {
		t.Fatal("fresh token not returned")
	}
	if _, ok := s.PayerToken(clock.Now().Add(71*time.Second), 30*time.Second); ok {
		t.Fatal("token returned within the margin of its expiry")
	}
	s.DropPayerToken()
	if _, ok := s.PayerToken(clock.Now(), 0); ok {
		t.Fatal("dropped token returned")
	}
	for i := range session.MaxPayerAnswers + 5 {
		s.RecordPayerAnswer(session.PayerAnswer{Status: i})
	}
	a := s.PayerAnswers()
	if len(a) != session.MaxPayerAnswers || a[len(a)-1].Status != session.MaxPayerAnswers+4 {
		t.Fatalf("%d answers, last %+v", len(a), a[len(a)-1])
	}
}
