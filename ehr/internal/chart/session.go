package chart

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// sessionCookie is the chart's cookie: a signed, stateless session.
const sessionCookie = "ehr_chart_session"

// session is what the cookie carries. A session without Practitioner is
// the anonymous one the login form is protected by (login CSRF).
type session struct {
	Practitioner string `json:"p,omitempty"`
	CSRF         string `json:"c"`
	Expires      int64  `json:"e"`
}

// signer signs and checks session cookies with HMAC-SHA256 under a key
// derived from the configured cookie key for this purpose only.
type signer struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

func newSigner(cookieKey []byte, ttl time.Duration, now func() time.Time) *signer {
	m := hmac.New(sha256.New, cookieKey)
	m.Write([]byte("dtrsandbox ehr chart session v1"))
	return &signer{key: m.Sum(nil), ttl: ttl, now: now}
}

func (s *signer) mac(payload string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// encode returns "base64url(json).base64url(hmac)".
func (s *signer) encode(sess session) (string, error) {
	raw, err := json.Marshal(sess)
	if err != nil {
		return "", err
	}
	payload := base64.RawURLEncoding.EncodeToString(raw)
	return payload + "." + base64.RawURLEncoding.EncodeToString(s.mac(payload)), nil
}

// decode checks the signature and expiry of a cookie value.
func (s *signer) decode(v string) (session, bool) {
	payload, sig, ok := strings.Cut(v, ".")
	if !ok {
		return session{}, false
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(payload)) {
		return session{}, false
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(payload)
	if err != nil {
		return session{}, false
	}
	var sess session
	if json.Unmarshal(raw, &sess) != nil || sess.CSRF == "" || s.now().Unix() >= sess.Expires {
		return session{}, false
	}
	return sess, true
}

// newSession starts a session for practitioner ("" for anonymous) with a
// fresh CSRF token.
func (s *signer) newSession(practitioner string) session {
	return session{Practitioner: practitioner, CSRF: rand.Text(), Expires: s.now().Add(s.ttl).Unix()}
}

// current returns the request's valid session, if any.
func (s *signer) current(c *gin.Context) (session, bool) {
	v, err := c.Cookie(sessionCookie)
	if err != nil {
		return session{}, false
	}
	return s.decode(v)
}

// save sets the cookie: HttpOnly, SameSite=Lax, Secure on TLS, Path=/.
func (s *signer) save(c *gin.Context, sess session) error {
	v, err := s.encode(sess)
	if err != nil {
		return err
	}
	http.SetCookie(c.Writer, &http.Cookie{
		Name: sessionCookie, Value: v, Path: "/",
		MaxAge: int(s.ttl.Seconds()), HttpOnly: true, Secure: c.Request.TLS != nil, SameSite: http.SameSiteLaxMode,
	})
	return nil
}

// clear removes the cookie.
func (s *signer) clear(c *gin.Context) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: c.Request.TLS != nil, SameSite: http.SameSiteLaxMode,
	})
}

// validPost checks a state-changing form POST: the form's csrf field equals
// the session's token (synchronizer token, constant-time), and an Origin
// header, when the browser sends one, is this server's origin.
func validPost(c *gin.Context, sess session) bool {
	if origin := c.GetHeader("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || u.Host != c.Request.Host {
			return false
		}
	}
	got := c.PostForm("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRF)) == 1
}
