package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"time"
)

// sessionCookie is the console session cookie. The __Host- prefix (RFC
// 6265bis §4.1.3.2) makes browsers require Secure, Path=/ and no Domain,
// so no other host or path can set or shadow it.
const sessionCookie = "__Host-payer-console"

// sessions issues and checks stateless session tokens:
// base64url(expiry || nonce) "." base64url(HMAC-SHA256(key, expiry || nonce)),
// with the key derived from the admin token (a new admin token ends every
// session). Signed-out sessions are remembered until they expire.
type sessions struct {
	key []byte
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	revoked map[string]time.Time // nonce -> expiry
}

func newSessions(adminToken string, ttl time.Duration, now func() time.Time) *sessions {
	m := hmac.New(sha256.New, []byte(adminToken))
	m.Write([]byte("dtr-sandbox payer console session v1"))
	return &sessions{key: m.Sum(nil), ttl: ttl, now: now, revoked: map[string]time.Time{}}
}

type session struct {
	nonce   []byte
	expires time.Time
}

func (s *sessions) sign(payload []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write(payload)
	return m.Sum(nil)
}

// issue returns a new session token.
func (s *sessions) issue() (string, error) {
	payload := make([]byte, 8+16)
	binary.BigEndian.PutUint64(payload, uint64(s.now().Add(s.ttl).Unix()))
	if _, err := rand.Read(payload[8:]); err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(payload) + "." + enc.EncodeToString(s.sign(payload)), nil
}

var errBadSession = errors.New("console: no valid session")

// check verifies a session token: signature (constant time), expiry, not
// signed out.
func (s *sessions) check(tok string) (*session, error) {
	p, sig, ok := strings.Cut(tok, ".")
	if !ok || len(tok) > 200 {
		return nil, errBadSession
	}
	enc := base64.RawURLEncoding.Strict() // one encoding per token: unused trailing bits must be zero
	payload, err1 := enc.DecodeString(p)
	mac, err2 := enc.DecodeString(sig)
	if err1 != nil || err2 != nil || len(payload) != 24 || !hmac.Equal(mac, s.sign(payload)) {
		return nil, errBadSession
	}
	exp := time.Unix(int64(binary.BigEndian.Uint64(payload)), 0)
	if !s.now().Before(exp) {
		return nil, errBadSession
	}
	s.mu.Lock()
	_, gone := s.revoked[string(payload[8:])]
	s.mu.Unlock()
	if gone {
		return nil, errBadSession
	}
	return &session{nonce: payload[8:], expires: exp}, nil
}

// revoke signs a session out.
func (s *sessions) revoke(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for n, exp := range s.revoked {
		if !now.Before(exp) {
			delete(s.revoked, n)
		}
	}
	s.revoked[string(ss.nonce)] = ss.expires
}

// csrf is the anti-forgery token of a session's forms.
func (s *sessions) csrf(ss *session) string {
	return base64.RawURLEncoding.EncodeToString(s.sign(append([]byte("csrf:"), ss.nonce...)))
}

// checkCSRF compares a form's token with the session's in constant time.
func (s *sessions) checkCSRF(ss *session, tok string) bool {
	return hmac.Equal([]byte(tok), []byte(s.csrf(ss)))
}

// limiter refuses sign-in attempts from an address after too many failures
// from it in a window. It is kept per address, not globally, so that
// wrong tokens from one place cannot lock the administrator out from
// another; guessing stays hopeless either way, since the admin token has
// at least 32 characters. At most maxAddrs addresses are tracked: when that
// many have failed within one window, addresses not yet tracked are
// refused too until the window passes (a flood from that many addresses
// gets the old global behaviour, not unbounded memory).
type limiter struct {
	mu       sync.Mutex
	max      int
	window   time.Duration
	maxAddrs int
	failures map[string][]time.Time
}

func newLimiter(max int, window time.Duration, maxAddrs int) *limiter {
	return &limiter{max: max, window: window, maxAddrs: maxAddrs, failures: map[string][]time.Time{}}
}

// blocked reports whether addr may not try now.
func (l *limiter) blocked(addr string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.recent(addr, now))
	if n == 0 && l.full(now) {
		return true
	}
	return n >= l.max
}

// fail counts a failed attempt from addr.
func (l *limiter) fail(addr string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.failures[addr]; !ok && l.full(now) {
		return // blocked answers for it until the window passes
	}
	l.failures[addr] = append(l.recent(addr, now), now)
}

// full reports whether no further address can be tracked, after dropping
// the failures that left the window.
func (l *limiter) full(now time.Time) bool {
	if len(l.failures) < l.maxAddrs {
		return false
	}
	l.prune(now)
	return len(l.failures) >= l.maxAddrs
}

// recent drops addr's failures older than the window and returns the rest.
func (l *limiter) recent(addr string, now time.Time) []time.Time {
	keep := l.failures[addr][:0]
	for _, t := range l.failures[addr] {
		if now.Sub(t) < l.window {
			keep = append(keep, t)
		}
	}
	if len(keep) == 0 {
		delete(l.failures, addr)
		return nil
	}
	l.failures[addr] = keep
	return keep
}

func (l *limiter) prune(now time.Time) {
	for addr := range l.failures {
		l.recent(addr, now)
	}
}
