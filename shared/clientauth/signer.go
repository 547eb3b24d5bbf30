package clientauth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"dtrsandbox/shared/jwks"
)

// Assertion lifetimes: SMART Backend Services allows exp at most five minutes
// ahead; the default leaves a minute for clock skew and transit.
const (
	DefaultAssertionLifetime = 4 * time.Minute
	MaxAssertionLifetime     = 5 * time.Minute
)

// Signer makes client assertions (RFC 7523 §3, SMART Backend Services
// "Protocol details") for ClientID with Key.
type Signer struct {
	Key      *jwks.SigningKey
	ClientID string
	// Lifetime of each assertion (DefaultAssertionLifetime); more than
	// MaxAssertionLifetime is an error.
	Lifetime time.Duration
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Assertion returns a fresh signed assertion for the token endpoint tokenURL:
// header alg, kid, typ JWT; claims iss = sub = ClientID, aud = tokenURL (a
// string), iat, exp, and a 128-bit random jti.
func (s *Signer) Assertion(tokenURL string) (string, error) {
	switch {
	case s.Key == nil || s.Key.Private == nil:
		return "", errors.New("clientauth: signer has no key")
	case s.Key.Method() == nil:
		return "", fmt.Errorf("clientauth: signer key alg %q is not a JWS algorithm", s.Key.Alg)
	case s.ClientID == "":
		return "", errors.New("clientauth: signer has no client id")
	case tokenURL == "":
		return "", errors.New("clientauth: empty token URL")
	}
	life := s.Lifetime
	if life <= 0 {
		life = DefaultAssertionLifetime
	}
	if life > MaxAssertionLifetime {
		return "", fmt.Errorf("clientauth: assertion lifetime %s exceeds %s", life, MaxAssertionLifetime)
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	jti, err := randomID()
	if err != nil {
		return "", err
	}
	t := now()
	tok := jwt.NewWithClaims(s.Key.Method(), jwt.MapClaims{
		"iss": s.ClientID,
		"sub": s.ClientID,
		"aud": tokenURL,
		"iat": t.Unix(),
		"exp": t.Add(life).Unix(),
		"jti": jti,
	})
	tok.Header["kid"] = s.Key.KID
	tok.Header["typ"] = "JWT"
	signed, err := tok.SignedString(s.Key.Private)
	if err != nil {
		return "", fmt.Errorf("clientauth: sign assertion: %w", err)
	}
	return signed, nil
}

// Form returns a copy of extra with client_assertion_type and a fresh
// client_assertion for tokenURL added (RFC 7521 §4.2).
func (s *Signer) Form(tokenURL string, extra url.Values) (url.Values, error) {
	a, err := s.Assertion(tokenURL)
	if err != nil {
		return nil, err
	}
	form := url.Values{}
	for k, v := range extra {
		form[k] = append([]string(nil), v...)
	}
	form.Set(ParamAssertionType, AssertionType)
	form.Set(ParamAssertion, a)
	return form, nil
}

// randomID is 128 random bits, base64url.
func randomID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("clientauth: random jti: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
