// Package ehr is the app's client of the launching EHR's FHIR API (FHIR R4
// RESTful API, http.html), called with the user's EHR access token: reads of
// the launch context (Patient, Coverage, the order), searches of the
// patient's orders, and the write-back of the completed
// QuestionnaireResponse.
package ehr

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
	"dtrsandbox/smartapp/internal/session"
)

const maxBody = 8 << 20

// ErrSessionExpired: the EHR token is past its exp; the user must relaunch.
var ErrSessionExpired = errors.New("ehr: the EHR access token has expired")

// Error is a failed EHR request. Message is written for the user.
type Error struct {
	Op      string
	Status  int // the EHR's status, 0 when unreachable
	Message string
	Outcome json.RawMessage
	Cause   error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("ehr: %s: %s", e.Op, e.Message)
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Cause }

// Client calls the EHR of a session (its issuer is the FHIR base).
type Client struct {
	HTTP *http.Client
	Now  func() time.Time
}

// New returns a client using hc.
func New(hc *http.Client, now func() time.Time) *Client {
	if now == nil {
		now = time.Now
	}
	return &Client{HTTP: hc, Now: now}
}

// Read returns the resource named by ref ("Type/id", relative to the EHR's
// FHIR base), raw.
func (c *Client) Read(ctx context.Context, s *session.Session, op, ref string) (json.RawMessage, error) {
	_, typ, id, ok := fhir.ParseReference(ref)
	if !ok || strings.Contains(ref, "://") {
		return nil, &Error{Op: op, Message: "The reference " + clip(ref) + " is not of the form Type/id."}
	}
	body, _, err := c.do(ctx, s, op, http.MethodGet, typ+"/"+id, nil, nil)
	if err != nil {
		return nil, err
	}
	if rt, err := fhir.ResourceType(body); err != nil || rt != typ {
		return nil, &Error{Op: op, Message: "The EHR answered something other than the " + typ + " asked for.", Cause: err}
	}
	return body, nil
}

// Search runs GET [base]/typ?params and returns the matching resources, raw.
func (c *Client) Search(ctx context.Context, s *session.Session, op, typ string, params url.Values) ([]json.RawMessage, error) {
	body, _, err := c.do(ctx, s, op, http.MethodGet, typ, params, nil)
	if err != nil {
		return nil, err
	}
	var b fhir.Bundle
	if err := fhir.Decode(body, &b); err != nil || b.ResourceType != "Bundle" {
		return nil, &Error{Op: op, Message: "The EHR's search answer is not a FHIR Bundle.", Cause: err}
	}
	var out []json.RawMessage
	for _, e := range b.Entry {
		if e.Search != nil && e.Search.Mode != "" && e.Search.Mode != "match" {
			continue
		}
		if rt, err := fhir.ResourceType(e.Resource); err == nil && rt == typ {
			out = append(out, e.Resource)
		}
	}
	return out, nil
}

// CreateQuestionnaireResponse writes qr back to the EHR (POST, R4
// http.html#create) and returns the id the EHR gave it.
func (c *Client) CreateQuestionnaireResponse(ctx context.Context, s *session.Session, qr *fhir.QuestionnaireResponse) (string, error) {
	const op = "write the completed answers back to the EHR"
	body, hdr, err := c.do(ctx, s, op, http.MethodPost, "QuestionnaireResponse", nil, qr)
	if err != nil {
		return "", err
	}
	var out fhir.QuestionnaireResponse
	if len(body) > 0 && fhir.Decode(body, &out) == nil && out.ID != "" {
		return out.ID, nil
	}
	loc := strings.Split(hdr.Get("Location"), "/_history/")[0]
	if _, typ, id, ok := fhir.ParseReference(loc); ok && typ == "QuestionnaireResponse" {
		return id, nil
	}
	return "", &Error{Op: op, Message: "The EHR did not say which id it gave the QuestionnaireResponse."}
}

func (c *Client) do(ctx context.Context, s *session.Session, op, method, path string, query url.Values, in any) ([]byte, http.Header, error) {
	l := s.Launch()
	if l == nil {
		return nil, nil, &Error{Op: op, Message: "There is no EHR launch in this session.", Cause: ErrSessionExpired}
	}
	if s.Expired(c.Now()) {
		return nil, nil, &Error{Op: op, Status: http.StatusUnauthorized, Message: "The EHR session has expired; relaunch the app from the EHR.", Cause: ErrSessionExpired}
	}
	u := strings.TrimRight(l.Issuer, "/") + "/" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, nil, &Error{Op: op, Message: "The app could not encode its request.", Cause: err}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, nil, &Error{Op: op, Message: "The app built an invalid EHR URL.", Cause: err}
	}
	req.Header.Set("Authorization", "Bearer "+l.AccessToken)
	req.Header.Set("Accept", fhir.ContentType)
	if in != nil {
		req.Header.Set("Content-Type", fhir.ContentType)
		req.Header.Set("Prefer", "return=representation")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, nil, &Error{Op: op, Message: "The EHR could not be reached; try again in a moment.", Cause: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		return nil, nil, &Error{Op: op, Status: resp.StatusCode, Message: "The EHR's answer could not be read.", Cause: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, nil, statusError(op, resp.StatusCode, body)
	}
	if len(body) > 0 {
		if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != fhir.ContentType && mt != "application/json" {
			return nil, nil, &Error{Op: op, Status: resp.StatusCode, Message: "The EHR answered something other than FHIR JSON."}
		}
	}
	return body, resp.Header, nil
}

func statusError(op string, status int, body []byte) *Error {
	e := &Error{Op: op, Status: status}
	var oo fhir.OperationOutcome
	diag := ""
	if json.Unmarshal(body, &oo) == nil && oo.ResourceType == "OperationOutcome" {
		e.Outcome = body
		for _, is := range oo.Issue {
			if is.Diagnostics != "" {
				diag = ": " + clip(is.Diagnostics)
				break
			}
		}
	}
	switch status {
	case http.StatusUnauthorized:
		e.Message = "The EHR no longer accepts the app's token (401); relaunch the app from the EHR" + diag
		e.Cause = ErrSessionExpired
	case http.StatusForbidden:
		e.Message = "The EHR refused this request (403)" + diag
	case http.StatusNotFound:
		e.Message = "The EHR has no such resource (404)" + diag
	default:
		e.Message = fmt.Sprintf("The EHR answered HTTP %d%s", status, diag)
	}
	return e
}

func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
