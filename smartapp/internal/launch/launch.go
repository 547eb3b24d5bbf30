// Package launch implements the app side of SMART App Launch 2.2: the EHR
// launch ("Launch App: EHR Launch", GET /launch?iss=&launch=) and the
// standalone launch, with discovery, PKCE S256 (RFC 7636), state bound to a
// server-side pre-authorization session, the authorization-code exchange
// authenticated with private_key_jwt (RFC 7523, signed by the vendor
// signer), and verification of the id_token (OpenID Connect Core §3.1.3.7)
// and of the access token (RFC 9068, by the signer) before anything from the
// token response is believed.
package launch

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/smart"
	"dtrsandbox/smartapp/internal/jwtview"
	"dtrsandbox/smartapp/internal/signer"
)

// Scopes the app asks for (SMART App Launch 2.2 "Scopes and Launch
// Context"): the EHR launch context, OpenID Connect identity with fhirUser,
// read and search of the patient's record, and create/update of the
// patient's QuestionnaireResponses (the completed DTR answers written back).
const (
	ScopeEHRLaunch        = "launch openid fhirUser patient/*.rs patient/QuestionnaireResponse.cu"
	ScopeStandaloneLaunch = "launch/patient openid fhirUser patient/*.rs patient/QuestionnaireResponse.cu"
)

// PendingTTL is how long a user has between the redirect to the EHR and the
// callback.
const PendingTTL = 10 * time.Minute

// Discovery returns a FHIR server's SMART discovery document.
type Discovery interface {
	Get(ctx context.Context, base string) (*smart.Configuration, error)
}

// Signer is what the launch needs from the vendor signer.
type Signer interface {
	AssertionForEHR(ctx context.Context, issuer, tokenURL string) (string, error)
	VerifyEHRAccessToken(ctx context.Context, issuer, raw string) (signer.Attestation, error)
}

// Config of a Launcher. Every field but Now and Logger is required.
type Config struct {
	// RedirectURI is the app's callback, {SMARTAPP_PUBLIC_URL}/callback,
	// exactly as registered at the EHR.
	RedirectURI string
	EHRs        []signer.EHR
	Discovery   Discovery
	Signer      Signer
	// Keys fetches the EHR's JWK Set for the id_token.
	Keys signer.KeySource
	HTTP *http.Client
	Now  func() time.Time
	Log  *slog.Logger
}

// Launcher runs launches. It keeps no state: what must survive the round
// trip through the EHR is the Pending the caller stores server-side.
type Launcher struct {
	cfg  Config
	ehrs map[string]signer.EHR
}

// New returns a Launcher.
func New(cfg Config) (*Launcher, error) {
	if cfg.RedirectURI == "" || len(cfg.EHRs) == 0 || cfg.Discovery == nil || cfg.Signer == nil || cfg.Keys == nil || cfg.HTTP == nil {
		return nil, errors.New("launch: RedirectURI, EHRs, Discovery, Signer, Keys and HTTP are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	l := &Launcher{cfg: cfg, ehrs: map[string]signer.EHR{}}
	for _, e := range cfg.EHRs {
		l.ehrs[e.Issuer] = e
	}
	return l, nil
}

// EHRs lists the EHRs the app accepts launches from.
func (l *Launcher) EHRs() []signer.EHR { return slices.Clone(l.cfg.EHRs) }

// Known reports whether iss is a configured EHR issuer.
func (l *Launcher) Known(iss string) bool { _, ok := l.ehrs[iss]; return ok }

// Error is a launch that cannot go on. Title and Message are shown to the
// user; Cause goes to the log only.
type Error struct {
	Status  int
	Title   string
	Message string
	Cause   error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("launch: %s: %s: %v", e.Title, e.Message, e.Cause)
	}
	return fmt.Sprintf("launch: %s: %s", e.Title, e.Message)
}

func (e *Error) Unwrap() error { return e.Cause }

func refuse(status int, title, msg string, cause error) *Error {
	return &Error{Status: status, Title: title, Message: msg, Cause: cause}
}

// Pending is what the app remembers between the redirect to the EHR and the
// callback, server-side only: never in a cookie or URL beyond state.
type Pending struct {
	Issuer      string
	ClientID    string
	State       string // 256 random bits
	Nonce       string // OpenID Connect nonce, 256 random bits
	Verifier    string // PKCE code_verifier
	Launch      string // EHR launch id; empty for a standalone launch
	Scope       string
	RedirectURI string
	CreatedAt   time.Time
}

// Standalone reports whether this is a standalone launch.
func (p *Pending) Standalone() bool { return p.Launch == "" }

// Begin starts a launch at the EHR iss: EHR launch when launchID is set,
// standalone otherwise. It answers the Pending to store and the URL of the
// EHR's authorization endpoint to redirect the browser to (SMART App Launch
// 2.2 "Obtain authorization code"): response_type=code, client_id,
// redirect_uri, launch, scope, state, aud = iss, code_challenge (S256),
// nonce. An iss that is not configured is refused before any request is
// made, so the app never redirects to an authorization server it does not
// know.
func (l *Launcher) Begin(ctx context.Context, iss, launchID string) (*Pending, string, error) {
	ehr, ok := l.ehrs[iss]
	if !ok {
		return nil, "", refuse(http.StatusBadRequest, "Unknown EHR",
			"This app is not registered with the EHR at "+clipText(iss, 200)+", so it will not sign in there.", nil)
	}
	doc, err := l.cfg.Discovery.Get(ctx, iss)
	if err != nil {
		return nil, "", refuse(http.StatusBadGateway, "EHR unavailable",
			"The EHR's SMART configuration could not be read. Try again in a moment.", err)
	}
	if doc.Issuer != "" && doc.Issuer != iss {
		return nil, "", refuse(http.StatusBadGateway, "EHR misconfigured",
			"The EHR's SMART configuration names another issuer.", fmt.Errorf("issuer %q, want %q", doc.Issuer, iss))
	}
	if doc.AuthorizationEndpoint == "" {
		return nil, "", refuse(http.StatusBadGateway, "EHR misconfigured", "The EHR's SMART configuration has no authorization endpoint.", nil)
	}
	if len(doc.CodeChallengeMethodsSupported) > 0 && !slices.Contains(doc.CodeChallengeMethodsSupported, "S256") {
		return nil, "", refuse(http.StatusBadGateway, "EHR misconfigured", "The EHR does not support PKCE with S256, which this app requires.", nil)
	}
	authz, err := url.Parse(doc.AuthorizationEndpoint)
	if err != nil || (authz.Scheme != "https" && authz.Scheme != "http") {
		return nil, "", refuse(http.StatusBadGateway, "EHR misconfigured", "The EHR's authorization endpoint is not a valid URL.", err)
	}
	p := &Pending{
		Issuer:      iss,
		ClientID:    ehr.ClientID,
		State:       randomToken(32),
		Nonce:       randomToken(32),
		Verifier:    newVerifier(),
		Launch:      launchID,
		Scope:       ScopeStandaloneLaunch,
		RedirectURI: l.cfg.RedirectURI,
		CreatedAt:   l.cfg.Now(),
	}
	if launchID != "" {
		p.Scope = ScopeEHRLaunch
	}
	q := authz.Query()
	q.Set("response_type", "code")
	q.Set("client_id", p.ClientID)
	q.Set("redirect_uri", p.RedirectURI)
	q.Set("scope", p.Scope)
	q.Set("state", p.State)
	q.Set("aud", iss)
	q.Set("nonce", p.Nonce)
	q.Set("code_challenge", challengeS256(p.Verifier))
	q.Set("code_challenge_method", "S256")
	if launchID != "" {
		q.Set("launch", launchID)
	}
	authz.RawQuery = q.Encode()
	return p, authz.String(), nil
}

// Result is a completed, verified launch.
type Result struct {
	Issuer   string
	ClientID string
	// AccessToken is the EHR access token, for server-side use only.
	AccessToken string
	// Attestation is the signer's proof it verified AccessToken.
	Attestation signer.Attestation
	ExpiresAt   time.Time
	Scope       string
	Patient     string
	Encounter   string
	FHIRUser    string
	UserName    string
	FHIRContext []smart.ContextItem
	// NeedPatientBanner is the token response's need_patient_banner.
	NeedPatientBanner bool
	Standalone        bool
	// AccessTokenView and IDTokenView are the decoded (never raw) header and
	// payload of each token, for the presenter's security panel.
	AccessTokenView jwtview.View
	IDTokenView     *jwtview.View
}

// tokenResponse is the EHR's answer to the code exchange (RFC 6749 §5.1,
// SMART App Launch 2.2 "Response").
type tokenResponse struct {
	AccessToken       string              `json:"access_token"`
	TokenType         string              `json:"token_type"`
	ExpiresIn         *int64              `json:"expires_in"`
	Scope             string              `json:"scope"`
	IDToken           string              `json:"id_token"`
	RefreshToken      string              `json:"refresh_token"`
	Patient           string              `json:"patient"`
	Encounter         string              `json:"encounter"`
	FHIRContext       []smart.ContextItem `json:"fhirContext"`
	NeedPatientBanner *bool               `json:"need_patient_banner"`
}

// oauthError is an RFC 6749 §5.2 error body.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// Complete finishes the launch p with the callback query q: state check
// (RFC 6749 §10.12), the authorization server's error (§4.1.2.1), the
// issuer of RFC 9207 when present, the code exchange with private_key_jwt
// and the PKCE verifier, then verification of both tokens.
func (l *Launcher) Complete(ctx context.Context, p *Pending, q url.Values) (*Result, error) {
	if err := l.checkCallback(p, q); err != nil {
		return nil, err
	}
	doc, err := l.cfg.Discovery.Get(ctx, p.Issuer)
	if err != nil {
		return nil, refuse(http.StatusBadGateway, "EHR unavailable", "The EHR's SMART configuration could not be read.", err)
	}
	tr, err := l.exchange(ctx, p, doc.TokenEndpoint, q.Get("code"))
	if err != nil {
		return nil, err
	}
	return l.verify(ctx, p, doc, tr)
}

// checkCallback validates the redirect back from the EHR.
func (l *Launcher) checkCallback(p *Pending, q url.Values) error {
	if p == nil {
		return refuse(http.StatusBadRequest, "Sign-in not recognised",
			"This sign-in was not started here, or it took too long. Launch the app again.", nil)
	}
	state := q.Get("state")
	if state == "" || subtle.ConstantTimeCompare([]byte(state), []byte(p.State)) != 1 {
		return refuse(http.StatusBadRequest, "Sign-in not recognised",
			"The answer from the EHR does not belong to this browser's sign-in (state mismatch). Launch the app again.", nil)
	}
	if l.cfg.Now().Sub(p.CreatedAt) > PendingTTL {
		return refuse(http.StatusBadRequest, "Sign-in expired", "The sign-in took too long. Launch the app again.", nil)
	}
	if iss := q.Get("iss"); iss != "" && iss != p.Issuer { // RFC 9207 §2.4
		return refuse(http.StatusBadRequest, "Sign-in not recognised",
			"The answer names another authorization server than the one the sign-in went to.", fmt.Errorf("iss %q", iss))
	}
	if e := q.Get("error"); e != "" {
		msg := "The EHR did not authorize the app (" + clipText(e, 64) + ")"
		if d := q.Get("error_description"); d != "" {
			msg += ": " + clipText(d, 300)
		}
		return refuse(http.StatusForbidden, "Authorization not granted", msg+".", nil)
	}
	if q.Get("code") == "" {
		return refuse(http.StatusBadRequest, "Sign-in incomplete", "The EHR answered without an authorization code.", nil)
	}
	return nil
}

// exchange trades the code for tokens at tokenURL (RFC 6749 §4.1.3, RFC
// 7636 §4.5), authenticating with a client assertion (RFC 7523 §2.2).
func (l *Launcher) exchange(ctx context.Context, p *Pending, tokenURL, code string) (*tokenResponse, error) {
	assertion, err := l.cfg.Signer.AssertionForEHR(ctx, p.Issuer, tokenURL)
	if err != nil {
		return nil, refuse(http.StatusBadGateway, "Sign-in failed", "The app could not sign its credentials for the EHR.", err)
	}
	form := url.Values{
		"grant_type":                  {"authorization_code"},
		"code":                        {code},
		"redirect_uri":                {p.RedirectURI},
		"code_verifier":               {p.Verifier},
		"client_id":                   {p.ClientID},
		clientauth.ParamAssertionType: {clientauth.AssertionType},
		clientauth.ParamAssertion:     {assertion},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, refuse(http.StatusBadGateway, "EHR misconfigured", "The EHR's token endpoint is not a valid URL.", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := l.cfg.HTTP.Do(req)
	if err != nil {
		return nil, refuse(http.StatusBadGateway, "EHR unavailable", "The EHR's token endpoint could not be reached.", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<10))
	if err != nil {
		return nil, refuse(http.StatusBadGateway, "EHR unavailable", "The EHR's token answer could not be read.", err)
	}
	if resp.StatusCode != http.StatusOK {
		var oe oauthError
		_ = json.Unmarshal(body, &oe)
		msg := fmt.Sprintf("The EHR refused to issue tokens (HTTP %d", resp.StatusCode)
		if oe.Error != "" {
			msg += ", " + clipText(oe.Error, 64)
		}
		msg += ")"
		if oe.Description != "" {
			msg += ": " + clipText(oe.Description, 300)
		}
		return nil, refuse(http.StatusBadGateway, "Sign-in failed", msg+".", nil)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return nil, refuse(http.StatusBadGateway, "Sign-in failed", "The EHR's token answer is not JSON.", fmt.Errorf("content type %q", mt))
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, refuse(http.StatusBadGateway, "Sign-in failed", "The EHR's token answer is not valid JSON.", err)
	}
	if tr.AccessToken == "" || !strings.EqualFold(tr.TokenType, "Bearer") {
		return nil, refuse(http.StatusBadGateway, "Sign-in failed", "The EHR's token answer has no bearer access token.", nil)
	}
	return &tr, nil
}

// verify checks both tokens and the launch context they carry.
func (l *Launcher) verify(ctx context.Context, p *Pending, doc *smart.Configuration, tr *tokenResponse) (*Result, error) {
	att, err := l.cfg.Signer.VerifyEHRAccessToken(ctx, p.Issuer, tr.AccessToken)
	if err != nil {
		return nil, refuse(http.StatusBadGateway, "Sign-in failed", "The EHR's access token did not verify.", err)
	}
	claims := att.Claims()
	res := &Result{
		Issuer:            p.Issuer,
		ClientID:          p.ClientID,
		AccessToken:       tr.AccessToken,
		Attestation:       att,
		ExpiresAt:         att.ExpiresAt(),
		Scope:             tr.Scope,
		Patient:           first(tr.Patient, claims.Patient),
		Encounter:         first(tr.Encounter, claims.Encounter),
		FHIRUser:          claims.FHIRUser,
		FHIRContext:       tr.FHIRContext,
		NeedPatientBanner: tr.NeedPatientBanner != nil && *tr.NeedPatientBanner,
		Standalone:        p.Standalone(),
	}
	if res.Scope == "" {
		res.Scope = claims.Scope
	}
	if len(res.FHIRContext) == 0 {
		res.FHIRContext = claims.FHIRContext
	}
	if tr.Patient != "" && claims.Patient != "" && tr.Patient != claims.Patient {
		return nil, refuse(http.StatusBadGateway, "Sign-in failed", "The token answer and the access token name different patients.", nil)
	}
	if res.Patient == "" {
		return nil, refuse(http.StatusBadGateway, "No patient selected", "The EHR granted no patient context, and this app works on one patient's order.", nil)
	}
	if v, err := jwtview.Decode(tr.AccessToken); err == nil {
		res.AccessTokenView = v
	}
	if granted(res.Scope, "openid") && tr.IDToken == "" {
		return nil, refuse(http.StatusBadGateway, "Sign-in failed", "The EHR granted openid but sent no id_token.", nil)
	}
	if tr.IDToken != "" {
		if doc.JWKSURI == "" {
			return nil, refuse(http.StatusBadGateway, "Sign-in failed", "The EHR publishes no jwks_uri to verify its id_token with.", nil)
		}
		idc, err := verifyIDToken(ctx, tr.IDToken, idTokenCheck{
			Keys: l.cfg.Keys, JWKSURI: doc.JWKSURI, Issuer: p.Issuer, ClientID: p.ClientID, Nonce: p.Nonce, Now: l.cfg.Now,
		})
		if err != nil {
			return nil, refuse(http.StatusBadGateway, "Sign-in failed", "The EHR's id_token did not verify.", err)
		}
		if idc.FHIRUser != "" {
			res.FHIRUser = idc.FHIRUser
		}
		res.UserName = idc.Name
		if v, err := jwtview.Decode(tr.IDToken); err == nil {
			res.IDTokenView = &v
		}
	}
	valid := res.FHIRContext[:0:0]
	for _, item := range res.FHIRContext {
		if err := item.Validate(); err != nil {
			l.cfg.Log.Warn("ignoring invalid fhirContext item", "err", err)
			continue
		}
		valid = append(valid, item)
	}
	res.FHIRContext = valid
	return res, nil
}

// granted reports whether the space-separated scope list holds s.
func granted(scopes, s string) bool { return slices.Contains(strings.Fields(scopes), s) }

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// clipText shortens untrusted text shown to the user.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
