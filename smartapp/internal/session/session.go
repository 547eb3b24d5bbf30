// Package session keeps the app's server-side sessions. The browser holds
// only a random session id in an HttpOnly cookie; every token (the EHR access
// token, the payer access token) and every PKCE secret stays here.
//
// A session starts as a pre-authorization session holding a launch.Pending
// (state, PKCE verifier, nonce) and, after a verified callback, is replaced
// by an authenticated session with a new id (no session fixation) that
// expires with the EHR access token.
package session

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"dtrsandbox/smartapp/internal/jwtview"
	"dtrsandbox/smartapp/internal/launch"
	"dtrsandbox/smartapp/internal/signer"
)

// Defaults of a Store.
const (
	// DefaultGrace keeps an expired authenticated session this long, so the
	// user is told "your EHR session expired" rather than "no session".
	DefaultGrace = time.Hour
	// DefaultMax bounds the number of sessions held.
	DefaultMax = 10000
	// MaxPayerAnswers is how many payer answers a session remembers for the
	// security panel.
	MaxPayerAnswers = 12
)

// ErrFull is returned when the store holds Max sessions that are all live.
var ErrFull = errors.New("session: too many sessions")

// Store holds sessions in memory. It is safe for concurrent use.
type Store struct {
	now   func() time.Time
	grace time.Duration
	max   int

	mu        sync.Mutex
	m         map[string]*Session
	lastSweep time.Time
}

// NewStore returns an empty store. now may be nil (time.Now).
func NewStore(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{now: now, grace: DefaultGrace, max: DefaultMax, m: map[string]*Session{}}
}

// Session is one browser's state.
type Session struct {
	id      string
	csrf    string
	expires time.Time // pending: end of PendingTTL; authenticated: EHR token exp

	// Exactly one of pending and result is set; neither changes after
	// creation.
	pending *launch.Pending
	result  *launch.Result

	// flow serialises the form flow's writes (draft, submit) of one session,
	// so a double click cannot create two drafts.
	flow sync.Mutex

	mu         sync.Mutex
	payerToken payerToken
	answers    []PayerAnswer
	work       Workspace
}

type payerToken struct {
	raw     string
	expires time.Time
	view    *jwtview.View
}

// PayerAnswer is one answer from the payer, as shown in the security panel:
// never a token, never a body other than an OperationOutcome's text.
type PayerAnswer struct {
	At        time.Time `json:"at"`
	Method    string    `json:"method"`
	Path      string    `json:"path"` // path below the payer base, no query string
	Status    int       `json:"status"`
	Outcome   string    `json:"outcome,omitempty"` // OperationOutcome diagnostics or OAuth error
	RetryHint string    `json:"retry_after,omitempty"`
}

// Workspace is what the form flow caches for the session: the launch
// context resources read from the EHR and the questionnaire and draft found
// at the payer.
type Workspace struct {
	OrderRef      string          // relative at the EHR, "DeviceRequest/dr-oxygen-1"
	CoverageRef   string          // relative at the EHR, "Coverage/cov-1"
	Patient       json.RawMessage // the EHR's Patient
	UserName      string          // the fhirUser's name, read from the EHR
	UserLooked    bool            // UserName was looked up (found or not)
	Order         json.RawMessage
	Coverage      json.RawMessage
	Questionnaire json.RawMessage
	Draft         *DraftRef // the current draft DocumentReference at the payer
	// Submitted records the steps of a submission already done, so that a
	// retried submit of the same answers does not repeat them.
	Submitted *Submission
}

// Submission is the progress of one submit.
type Submission struct {
	Digest           [32]byte // SHA-256 of the completed QuestionnaireResponse sent
	Final            *DraftRef
	SupersededDraft  string // id of the draft marked superseded, "" if none yet
	DraftToSupersede *DraftRef
	EHRResponseID    string
}

// DraftRef names a payer DocumentReference version.
type DraftRef struct {
	ID        string
	VersionID string
}

// NewPending makes a pre-authorization session holding p; it lives for
// launch.PendingTTL.
func (s *Store) NewPending(p *launch.Pending) (*Session, error) {
	return s.insert(&Session{expires: s.now().Add(launch.PendingTTL), pending: p})
}

// Promote ends the pre-authorization session old (if any) and makes an
// authenticated session, under a new id, for the verified launch res. It
// expires with the EHR access token.
func (s *Store) Promote(old *Session, res *launch.Result) (*Session, error) {
	if res == nil || !res.Attestation.Valid() {
		return nil, errors.New("session: a session needs a verified launch")
	}
	if old != nil {
		s.Delete(old.id)
	}
	return s.insert(&Session{expires: res.ExpiresAt, result: res})
}

func (s *Store) insert(sess *Session) (*Session, error) {
	sess.id = randomID()
	sess.csrf = randomID()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.m) >= s.max || now.Sub(s.lastSweep) > time.Minute {
		s.sweepLocked(now)
	}
	if len(s.m) >= s.max {
		return nil, ErrFull
	}
	s.m[sess.id] = sess
	return sess, nil
}

// Get returns the session with id, or nil. A pre-authorization session past
// its TTL is gone; an authenticated one is kept for a grace period after the
// EHR token expired, so that callers can tell the user (see Expired).
func (s *Store) Get(id string) *Session {
	if id == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.m[id]
	if sess == nil {
		return nil
	}
	if !s.now().Before(sess.deadline(s.grace)) {
		delete(s.m, id)
		return nil
	}
	return sess
}

// Delete removes the session with id.
func (s *Store) Delete(id string) {
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

// Len is the number of sessions held.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

func (s *Store) sweepLocked(now time.Time) {
	for id, sess := range s.m {
		if !now.Before(sess.deadline(s.grace)) {
			delete(s.m, id)
		}
	}
	s.lastSweep = now
}

func (sess *Session) deadline(grace time.Duration) time.Time {
	if sess.pending != nil {
		return sess.expires
	}
	return sess.expires.Add(grace)
}

// ID is the cookie value.
func (sess *Session) ID() string { return sess.id }

// CheckCSRF compares a request's CSRF token with the session's in constant time.
func (sess *Session) CheckCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(sess.csrf)) == 1
}

// CSRF is the token the page sends back in X-CSRF-Token.
func (sess *Session) CSRF() string { return sess.csrf }

// Pending is the pre-authorization state, nil for an authenticated session.
func (sess *Session) Pending() *launch.Pending { return sess.pending }

// Launch is the verified launch, nil before the callback.
func (sess *Session) Launch() *launch.Result { return sess.result }

// Authenticated reports whether the session went through a verified callback.
func (sess *Session) Authenticated() bool { return sess.result != nil }

// Expired reports whether the EHR access token of an authenticated session
// has expired at now (a pre-authorization session is never "expired": it is
// gone).
func (sess *Session) Expired(now time.Time) bool {
	return sess.result != nil && !now.Before(sess.expires)
}

// ExpiresAt is when the session (the EHR token) expires.
func (sess *Session) ExpiresAt() time.Time { return sess.expires }

// EHRAccessToken implements signer.Launch: the raw EHR token and the
// signer's attestation for it; empty before the callback.
func (sess *Session) EHRAccessToken() (string, signer.Attestation) {
	if sess.result == nil {
		return "", signer.Attestation{}
	}
	return sess.result.AccessToken, sess.result.Attestation
}

// LockFlow takes the session's form-flow lock; call the returned func to
// release it.
func (sess *Session) LockFlow() func() {
	sess.flow.Lock()
	return sess.flow.Unlock
}

// PayerToken returns the cached payer access token if it stays valid for
// at least margin after now.
func (sess *Session) PayerToken(now time.Time, margin time.Duration) (string, bool) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.payerToken.raw == "" || !now.Add(margin).Before(sess.payerToken.expires) {
		return "", false
	}
	return sess.payerToken.raw, true
}

// SetPayerToken caches a payer access token until expires, with its decoded
// view for the security panel (nil for an opaque token).
func (sess *Session) SetPayerToken(raw string, expires time.Time, view *jwtview.View) {
	sess.mu.Lock()
	sess.payerToken = payerToken{raw: raw, expires: expires, view: view}
	sess.mu.Unlock()
}

// DropPayerToken forgets the cached payer token (after the payer refused it).
func (sess *Session) DropPayerToken() {
	sess.mu.Lock()
	sess.payerToken.raw = ""
	sess.mu.Unlock()
}

// PayerTokenView is the decoded last payer token, if any.
func (sess *Session) PayerTokenView() *jwtview.View {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.payerToken.view
}

// RecordPayerAnswer remembers a payer answer (the last MaxPayerAnswers).
func (sess *Session) RecordPayerAnswer(a PayerAnswer) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	sess.answers = append(sess.answers, a)
	if n := len(sess.answers); n > MaxPayerAnswers {
		sess.answers = append([]PayerAnswer(nil), sess.answers[n-MaxPayerAnswers:]...)
	}
}

// PayerAnswers returns the remembered payer answers, newest last.
func (sess *Session) PayerAnswers() []PayerAnswer {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return append([]PayerAnswer(nil), sess.answers...)
}

// Workspace returns a copy of the form flow's cache.
func (sess *Session) Workspace() Workspace {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	w := sess.work
	if w.Draft != nil {
		d := *w.Draft
		w.Draft = &d
	}
	if w.Submitted != nil {
		sub := *w.Submitted
		w.Submitted = &sub
	}
	return w
}

// UpdateWorkspace changes the form flow's cache under the session lock.
func (sess *Session) UpdateWorkspace(f func(w *Workspace)) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	f(&sess.work)
}

// randomID is 256 random bits, base64url.
func randomID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
