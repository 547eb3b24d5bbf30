// Package payer is the app's client of the payer's FHIR server: a SMART
// Backend Services client (client_credentials with a client assertion from
// the vendor signer) that calls the payer with two tokens on every request,
// its own payer access token in Authorization and the user's EHR launch
// token in X-EHR-Authorization (CONTRACT.md, "Payer").
package payer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"dtrsandbox/shared/fhir"
	"dtrsandbox/smartapp/internal/discovery"
	"dtrsandbox/smartapp/internal/jwtview"
	"dtrsandbox/smartapp/internal/session"
	"dtrsandbox/smartapp/internal/signer"
)

// DefaultScope is what the app asks the payer for: the DTR resources at
// system level (the payer confines them to the EHR token's patient).
const DefaultScope = "system/Questionnaire.rs system/DocumentReference.cruds system/QuestionnaireResponse.cruds"

// Headers of a payer request.
const (
	HeaderEHRAuthorization = "X-EHR-Authorization"
	HeaderPurposeOfUse     = "X-Purpose-Of-Use"
)

// maxBody bounds a payer answer.
const maxBody = 8 << 20

// Assertions is what the client needs from the vendor signer.
type Assertions interface {
	AssertionForPayer(ctx context.Context, l signer.Launch) (signer.PayerAssertion, error)
}

// Config of a Client. FHIRBase, HTTP and Signer are required.
type Config struct {
	FHIRBase string
	HTTP     *http.Client
	Signer   Assertions
	// Scope requested at the token endpoint (DefaultScope).
	Scope string
	// PurposeOfUse is sent in X-Purpose-Of-Use ("COVERAGE"; v3-ActReason
	// COVERAGE: coverage authorization and documentation).
	PurposeOfUse string
	// RefreshMargin: a cached payer token is replaced this long before its
	// exp (30s).
	RefreshMargin time.Duration
	Now           func() time.Time
}

// Client calls the payer. It is safe for concurrent use; payer tokens are
// cached per session (each session's token is bound, through the signer, to
// that session's verified EHR launch).
type Client struct {
	cfg Config
}

// New returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.FHIRBase == "" || cfg.HTTP == nil || cfg.Signer == nil {
		return nil, errors.New("payer: FHIRBase, HTTP and Signer are required")
	}
	cfg.FHIRBase = strings.TrimRight(cfg.FHIRBase, "/")
	if cfg.Scope == "" {
		cfg.Scope = DefaultScope
	}
	if cfg.PurposeOfUse == "" {
		cfg.PurposeOfUse = "COVERAGE"
	}
	if cfg.RefreshMargin <= 0 {
		cfg.RefreshMargin = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{cfg: cfg}, nil
}

// FHIRBase is the payer's FHIR base URL.
func (c *Client) FHIRBase() string { return c.cfg.FHIRBase }

// tokenAnswer is the token endpoint's success answer (RFC 6749 §5.1).
type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

// token returns the session's payer access token, from its cache or fresh
// from the payer's token endpoint (SMART Backend Services "Obtaining an
// access token"). fresh reports a new token.
func (c *Client) token(ctx context.Context, s *session.Session) (tok string, fresh bool, err error) {
	if tok, ok := s.PayerToken(c.cfg.Now(), c.cfg.RefreshMargin); ok {
		return tok, false, nil
	}
	pa, err := c.cfg.Signer.AssertionForPayer(ctx, s)
	if err != nil {
		var de *discovery.Error
		if errors.As(err, &de) {
			s.RecordPayerAnswer(session.PayerAnswer{At: c.cfg.Now(), Method: http.MethodGet, Path: "(discovery)", Outcome: de.Hint})
			return "", false, &Error{Op: "get a payer token", Message: "The payer could not be reached (" + de.Hint + "). Nothing was lost: try again in a moment.", Cause: err}
		}
		return "", false, err
	}
	form := pa.Form(url.Values{"grant_type": {"client_credentials"}, "scope": {c.cfg.Scope}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, pa.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", false, &Error{Op: "get a payer token", Message: "The payer's token endpoint is not a valid URL.", Cause: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	start := c.cfg.Now()
	resp, err := c.cfg.HTTP.Do(req)
	if err != nil {
		s.RecordPayerAnswer(session.PayerAnswer{At: start, Method: http.MethodPost, Path: "(token endpoint)", Outcome: "unreachable"})
		return "", false, unreachable("get a payer token", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", false, unreachable("get a payer token", err)
	}
	ans := session.PayerAnswer{At: start, Method: http.MethodPost, Path: "(token endpoint)", Status: resp.StatusCode, RetryHint: resp.Header.Get("Retry-After")}
	if resp.StatusCode != http.StatusOK {
		var oe struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(body, &oe)
		ans.Outcome = strings.TrimSpace(oe.Error + " " + oe.Description)
		s.RecordPayerAnswer(ans)
		e := &Error{Op: "get a payer token", Status: resp.StatusCode, OAuthError: oe.Error, RetryAfter: ans.RetryHint}
		e.Message = "The payer did not issue a token: " + statusText(resp.StatusCode, e.RetryAfter)
		if oe.Error != "" {
			e.Message += " [" + oe.Error + "]"
		}
		if oe.Description != "" {
			e.Message += ": " + clip(oe.Description, 300)
		}
		return "", false, e
	}
	s.RecordPayerAnswer(ans)
	var ta tokenAnswer
	if err := json.Unmarshal(body, &ta); err != nil || ta.AccessToken == "" || !strings.EqualFold(ta.TokenType, "Bearer") {
		return "", false, &Error{Op: "get a payer token", Status: resp.StatusCode, Message: "The payer's token answer has no bearer token.", Cause: err}
	}
	life := time.Duration(ta.ExpiresIn) * time.Second
	if life <= 0 || life > 5*time.Minute {
		life = 5 * time.Minute // the contract's ceiling; never trust a token longer
	}
	var view *jwtview.View
	if v, err := jwtview.Decode(ta.AccessToken); err == nil {
		view = &v
		if exp := jwtExp(v); !exp.IsZero() && exp.Before(start.Add(life)) {
			life = exp.Sub(start)
		}
	}
	s.SetPayerToken(ta.AccessToken, start.Add(life), view)
	return ta.AccessToken, true, nil
}

// jwtExp reads exp from a decoded payload (zero if absent).
func jwtExp(v jwtview.View) time.Time {
	var c struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(v.Payload, &c) != nil {
		return time.Time{}
	}
	n, err := c.Exp.Int64()
	if err != nil {
		return time.Time{}
	}
	return time.Unix(n, 0)
}

// Response is a successful payer answer.
type Response struct {
	Status   int
	Header   http.Header
	Body     []byte
	Location string
	// VersionID is from the ETag (W/"n") or, failing that, meta.versionId.
	VersionID string
}

// Request is one FHIR call.
type Request struct {
	Op      string // for messages: "load the questionnaire"
	Method  string
	Path    string // below the FHIR base: "DocumentReference/123"
	Query   url.Values
	Body    any // encoded as JSON when non-nil
	IfMatch string
}

// Do sends r with both tokens and the purpose of use. A 401 on a cached
// payer token drops it and retries once with a fresh one. Every answer is
// recorded in the session for the security panel.
func (c *Client) Do(ctx context.Context, s *session.Session, r Request) (*Response, error) {
	var body []byte
	if r.Body != nil {
		b, err := json.Marshal(r.Body)
		if err != nil {
			return nil, &Error{Op: r.Op, Message: "The app could not encode its request.", Cause: err}
		}
		body = b
	}
	for attempt := 0; ; attempt++ {
		tok, fresh, err := c.token(ctx, s)
		if err != nil {
			return nil, err
		}
		resp, err := c.send(ctx, s, r, body, tok)
		var pe *Error
		if errors.As(err, &pe) && pe.Status == http.StatusUnauthorized && !fresh && attempt == 0 {
			s.DropPayerToken()
			continue
		}
		return resp, err
	}
}

func (c *Client) send(ctx context.Context, s *session.Session, r Request, body []byte, payerToken string) (*Response, error) {
	ehrToken, _ := s.EHRAccessToken()
	u := c.cfg.FHIRBase + "/" + strings.TrimLeft(r.Path, "/")
	if len(r.Query) > 0 {
		u += "?" + r.Query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, u, rd)
	if err != nil {
		return nil, &Error{Op: r.Op, Message: "The app built an invalid payer URL.", Cause: err}
	}
	req.Header.Set("Authorization", "Bearer "+payerToken)
	req.Header.Set(HeaderEHRAuthorization, "Bearer "+ehrToken)
	req.Header.Set(HeaderPurposeOfUse, c.cfg.PurposeOfUse)
	req.Header.Set("Accept", fhir.ContentType)
	if body != nil {
		req.Header.Set("Content-Type", fhir.ContentType)
		req.Header.Set("Prefer", "return=representation")
	}
	if r.IfMatch != "" {
		req.Header.Set("If-Match", `W/"`+r.IfMatch+`"`)
	}
	start := c.cfg.Now()
	ans := session.PayerAnswer{At: start, Method: r.Method, Path: r.Path}
	resp, err := c.cfg.HTTP.Do(req)
	if err != nil {
		ans.Outcome = "unreachable"
		s.RecordPayerAnswer(ans)
		return nil, unreachable(r.Op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	ans.Status = resp.StatusCode
	ans.RetryHint = resp.Header.Get("Retry-After")
	if err != nil || len(data) > maxBody {
		s.RecordPayerAnswer(ans)
		return nil, &Error{Op: r.Op, Status: resp.StatusCode, Message: "The payer's answer could not be read.", Cause: err}
	}
	ans.Outcome = OutcomeText(data)
	s.RecordPayerAnswer(ans)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, statusError(r.Op, resp, data)
	}
	if len(data) > 0 {
		if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != fhir.ContentType && mt != "application/json" {
			return nil, &Error{Op: r.Op, Status: resp.StatusCode, Message: "The payer answered something other than FHIR JSON.", Cause: fmt.Errorf("content type %q", mt)}
		}
	}
	out := &Response{Status: resp.StatusCode, Header: resp.Header, Body: data, Location: resp.Header.Get("Location")}
	out.VersionID = versionFromETag(resp.Header.Get("ETag"))
	if out.VersionID == "" && len(data) > 0 {
		var m struct {
			Meta *fhir.Meta `json:"meta"`
		}
		if json.Unmarshal(data, &m) == nil && m.Meta != nil {
			out.VersionID = m.Meta.VersionID
		}
	}
	return out, nil
}

// versionFromETag reads n from W/"n" (R4 http.html#versioning).
func versionFromETag(etag string) string {
	etag = strings.TrimPrefix(strings.TrimSpace(etag), "W/")
	return strings.Trim(etag, `"`)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
