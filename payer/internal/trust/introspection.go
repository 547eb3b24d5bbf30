package trust

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/smart"
)

// MaxIntrospectionBody bounds an introspection answer.
const MaxIntrospectionBody = 64 << 10

// introspectionAnswer is an RFC 7662 §2.2 response with the SMART launch
// context members (SMART App Launch 2.2 "Token Introspection").
type introspectionAnswer struct {
	Active      *bool               `json:"active"`
	Scope       string              `json:"scope"`
	ClientID    string              `json:"client_id"`
	TokenType   string              `json:"token_type"`
	TokenUse    string              `json:"token_use"`
	ExpiresAt   *jwt.NumericDate    `json:"exp"`
	IssuedAt    *jwt.NumericDate    `json:"iat"`
	NotBefore   *jwt.NumericDate    `json:"nbf"`
	Subject     string              `json:"sub"`
	Audience    jwt.ClaimStrings    `json:"aud"`
	Issuer      string              `json:"iss"`
	ID          string              `json:"jti"`
	Patient     string              `json:"patient"`
	Encounter   string              `json:"encounter"`
	FHIRUser    string              `json:"fhirUser"`
	FHIRContext []smart.ContextItem `json:"fhirContext"`
}

// introspect asks ehr about raw (RFC 7662 §2.1), authenticating as the
// payer's client there, and turns an active answer into an access context
// cached until the token's exp or the introspection TTL, whichever comes
// first. pre holds the claims of a JWT token, already pre-checked; nil for
// an opaque token. Concurrent validations of one cold token share one call.
func (v *Validator) introspect(ctx context.Context, ehr *EHR, raw string, k tokenKey, pre *jwtClaims) (*smart.AccessContext, error) {
	return v.flight.do(k, func() (*smart.AccessContext, error) {
		ans, err := v.callIntrospection(ctx, ehr, raw)
		if err != nil {
			return nil, err
		}
		now := v.cfg.Now()
		ac, exp, f := v.fromAnswer(ehr, ans, pre, now)
		if f != nil {
			return nil, f
		}
		until := exp
		if ttl := now.Add(v.cfg.IntrospectionTTL); ttl.Before(until) {
			until = ttl
		}
		v.cache.put(k, ac, until, ehr.fingerprint, now)
		return ac, nil
	})
}

// callIntrospection POSTs token=raw with token_type_hint=access_token and
// the payer's client authentication (client_secret_basic, or a
// private_key_jwt assertion whose aud is the EHR's token endpoint). Any
// failure to get a well-formed 200 answer is ReasonEHRUnavailable: the
// gate fails closed with 503.
func (v *Validator) callIntrospection(ctx context.Context, ehr *EHR, raw string) (*introspectionAnswer, error) {
	unavailable := func(err error) error { return failure(ReasonEHRUnavailable, ehr.Issuer, err) }
	ep, err := v.disc.resolve(ctx, ehr, false, true, ehr.ClientAuth == AuthPrivateKeyJWT)
	if err != nil {
		return nil, unavailable(err)
	}
	form := url.Values{"token": {raw}, "token_type_hint": {"access_token"}}
	if ehr.ClientAuth == AuthPrivateKeyJWT {
		if v.cfg.AssertionKey == nil {
			return nil, unavailable(errors.New("trust: no payer assertion key configured for private_key_jwt"))
		}
		signer := &clientauth.Signer{Key: v.cfg.AssertionKey, ClientID: ehr.ClientID, Now: v.cfg.Now, Lifetime: time.Minute}
		if form, err = signer.Form(ep.Token, form); err != nil {
			return nil, unavailable(err)
		}
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.cfg.IntrospectionTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, ep.Introspection, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, unavailable(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if ehr.ClientAuth == AuthClientSecretBasic {
		// RFC 6749 §2.3.1: both parts form-encoded before Basic encoding.
		req.SetBasicAuth(url.QueryEscape(ehr.ClientID), url.QueryEscape(ehr.ClientSecret))
	}
	v.introspections.Add(1)
	resp, err := v.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, unavailable(fmt.Errorf("introspection at %s: %w", ep.Introspection, err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxIntrospectionBody+1))
	switch {
	case err != nil:
		return nil, unavailable(fmt.Errorf("introspection at %s: %w", ep.Introspection, err))
	case resp.StatusCode != http.StatusOK:
		return nil, unavailable(fmt.Errorf("introspection at %s: status %d", ep.Introspection, resp.StatusCode))
	case len(body) > MaxIntrospectionBody:
		return nil, unavailable(fmt.Errorf("introspection at %s: answer over %d bytes", ep.Introspection, MaxIntrospectionBody))
	}
	var ans introspectionAnswer
	if err := json.Unmarshal(body, &ans); err != nil || ans.Active == nil {
		return nil, unavailable(fmt.Errorf("introspection at %s: not an RFC 7662 answer", ep.Introspection))
	}
	return &ans, nil
}

// fromAnswer checks an introspection answer: active; an access token, not
// a refresh token; issued by that EHR (iss, when given, must be it); for
// its FHIR base (aud, when given); a client_id; an exp in the future
// (from the answer, else from the JWT).
func (v *Validator) fromAnswer(ehr *EHR, a *introspectionAnswer, pre *jwtClaims, now time.Time) (*smart.AccessContext, time.Time, *Failure) {
	fail := func(r Reason, format string, args ...any) (*smart.AccessContext, time.Time, *Failure) {
		return nil, time.Time{}, failure(r, ehr.Issuer, fmt.Errorf(format, args...))
	}
	if !*a.Active {
		return fail(ReasonInactive, "introspection answered active: false")
	}
	if a.TokenUse != "" && a.TokenUse != "access_token" {
		return fail(ReasonWrongType, "token_use %q", clip(a.TokenUse))
	}
	switch strings.ToLower(a.TokenType) {
	case "", "bearer", "access_token":
	default:
		return fail(ReasonWrongType, "token_type %q", clip(a.TokenType))
	}
	if a.Issuer != "" && a.Issuer != ehr.Issuer {
		return fail(ReasonIssuer, "introspection iss %q", clip(a.Issuer))
	}
	if len(a.Audience) > 0 && !slices.Contains(a.Audience, ehr.FHIRBase) {
		return fail(ReasonAudience, "introspection aud %q", clip(strings.Join(a.Audience, " ")))
	}
	if a.ClientID == "" {
		return fail(ReasonMissingClaim, "introspection answer has no client_id")
	}
	exp := a.ExpiresAt
	if exp == nil && pre != nil {
		exp = pre.ExpiresAt
	}
	switch {
	case exp == nil:
		return fail(ReasonMissingClaim, "no exp in the introspection answer or the token")
	case !now.Before(exp.Time):
		return fail(ReasonExpired, "expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if a.NotBefore != nil && a.NotBefore.After(now.Add(v.cfg.Leeway)) {
		return fail(ReasonNotYetValid, "nbf in the future")
	}
	scopes, err := smart.ParseScopes(a.Scope)
	if err != nil {
		return fail(ReasonMalformed, "scope: %v", err)
	}
	ac := &smart.AccessContext{
		Issuer: ehr.Issuer, ClientID: a.ClientID, Subject: a.Subject, FHIRUser: a.FHIRUser,
		Patient: a.Patient, Encounter: a.Encounter, Scopes: scopes, FHIRContext: a.FHIRContext,
		ExpiresAt: exp.Time, TokenID: a.ID,
	}
	if a.IssuedAt != nil {
		ac.IssuedAt = a.IssuedAt.Time
	}
	if pre != nil {
		if ac.TokenID == "" {
			ac.TokenID = pre.ID
		}
		if ac.IssuedAt.IsZero() && pre.IssuedAt != nil {
			ac.IssuedAt = pre.IssuedAt.Time
		}
	}
	return ac, exp.Time, nil
}

func clip(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return s
}
