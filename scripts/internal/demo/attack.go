package demo

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"dtrsandbox/shared/accesstoken"
	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/fhir"
	"dtrsandbox/shared/jwks"
)

// attackerRedirect is the malicious app's redirect URI. It is never
// requested: the demo stops at it and takes the code from the URL.
const attackerRedirect = "https://attacker.invalid/callback"

// attacker is a third-party app that registered itself, legitimately, at
// both the EHR and the payer and was launched for another patient (pat-2).
// It holds valid tokens; the attacks check that they reach nothing of pat-1.
type attacker struct {
	key         *jwks.SigningKey
	ehrClientID string
	payerClient string
	ehrToken    *tokenResponse // for pat-2
	payerToken  *tokenResponse
}

// headers are the two tokens of a payer request (CONTRACT.md "Payer").
func headers(payerToken, ehrToken string) map[string]string {
	h := map[string]string{"Authorization": bearer(payerToken)}
	if ehrToken != "" {
		h["X-EHR-Authorization"] = bearer(ehrToken)
	}
	return h
}

// setupAttacker registers the malicious app at the EHR (private_key_jwt,
// its own key) and at the payer (with ehr_client_ids naming its own EHR
// client), has the EHR launch it for pat-2, and gets both tokens. It then
// checks the tokens work for pat-2, so a refusal later is the patient
// binding at work and not a broken token.
func (f *flow) setupAttacker() (string, error) {
	if err := f.discoverServers(); err != nil {
		return "", err
	}
	key, err := jwks.Generate(jwks.ES384)
	if err != nil {
		return "", err
	}
	a := &attacker{key: key}
	pub, err := json.Marshal(map[string]any{"keys": []any{key.PublicJWK()}})
	if err != nil {
		return "", err
	}
	scope := f.appScope
	if scope == "" {
		scope = "launch openid fhirUser patient/*.rs"
	}
	reg, err := register(f.ctx, f.api, f.ehr.RegistrationEndpoint, map[string]any{
		"client_name":                     "Demo attacker app (every request must be refused)",
		"redirect_uris":                   []string{attackerRedirect},
		"token_endpoint_auth_method":      "private_key_jwt",
		"token_endpoint_auth_signing_alg": jwks.ES384,
		"jwks":                            json.RawMessage(pub),
		"grant_types":                     []string{"authorization_code"},
		"response_types":                  []string{"code"},
		"scope":                           scope,
	})
	if err != nil {
		return "", fmt.Errorf("EHR registration: %w", err)
	}
	a.ehrClientID = reg.ClientID

	preg, err := register(f.ctx, f.api, f.payer.RegistrationEndpoint, map[string]any{
		"client_name":                     "Demo attacker app (every request must be refused)",
		"token_endpoint_auth_method":      "private_key_jwt",
		"token_endpoint_auth_signing_alg": jwks.ES384,
		"jwks":                            json.RawMessage(pub),
		"grant_types":                     []string{"client_credentials"},
		"ehr_client_ids":                  map[string]string{f.cfg.EHRFHIR(): a.ehrClientID},
	})
	if err != nil {
		return "", fmt.Errorf("payer registration: %w", err)
	}
	a.payerClient = preg.ClientID

	// Its own EHR launch, for pat-2, as the EHR would start it.
	launch, err := f.launch(a.ehrClientID, OtherPatient, OtherPractitioner, "", []string{OtherCoverage, OtherOrder}, "https://attacker.invalid/launch")
	if err != nil {
		return "", fmt.Errorf("EHR launch for %s: %w", OtherPatient, err)
	}
	ehrSigner := &clientauth.Signer{Key: key, ClientID: a.ehrClientID}
	if a.ehrToken, err = f.authorizeCode(a.ehrClientID, attackerRedirect, scope, launch, ehrSigner); err != nil {
		return "", err
	}
	if a.ehrToken.Patient != OtherPatient {
		return "", fmt.Errorf("the attacker's EHR token is for patient %q, want %s", a.ehrToken.Patient, OtherPatient)
	}

	payerSigner := &clientauth.Signer{Key: key, ClientID: a.payerClient}
	a.payerToken, err = assertionToken(f.ctx, f.api, f.payer.TokenEndpoint, payerSigner, url.Values{
		"grant_type": {"client_credentials"},
		"scope":      {strings.Join(f.payer.ScopesSupported, " ")},
	})
	if err != nil {
		return "", fmt.Errorf("payer token: %w", err)
	}
	f.atk = a
	consent := "no consent page"
	if f.consentShown {
		consent = "consent page approved"
	}

	// Control: with these tokens the attacker can search its own patient.
	res, err := do(f.ctx, f.api, http.MethodGet, f.cfg.PayerFHIR()+"/DocumentReference?patient="+url.QueryEscape(f.cfg.PatientURL(OtherPatient)),
		headers(a.payerToken.AccessToken, a.ehrToken.AccessToken), nil)
	if err != nil {
		return "", err
	}
	var b fhir.Bundle
	if err := res.expect("control search of its own patient "+OtherPatient, &b, http.StatusOK); err != nil {
		return "", err
	}
	return fmt.Sprintf("EHR client %s (%s; scope %q, patient %s), payer client %s; its own %s search answers 200 with %d document(s)",
		short(a.ehrClientID), consent, a.ehrToken.Scope, a.ehrToken.Patient, short(a.payerClient), OtherPatient, len(b.Entry)), nil
}

// authorizeCode runs the authorization code grant (EHR launch, PKCE S256)
// for a client that authenticates with signer (private_key_jwt):
// authorize (approving a consent page if one is shown), catch the redirect
// to redirectURI without requesting it, exchange the code.
func (f *flow) authorizeCode(clientID, redirectURI, scope, launch string, signer *clientauth.Signer) (*tokenResponse, error) {
	pk := newPKCE()
	state := randomString(16)
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {clientID},
		"redirect_uri":          {redirectURI},
		"scope":                 {scope},
		"state":                 {state},
		"aud":                   {f.cfg.EHRFHIR()},
		"launch":                {launch},
		"code_challenge":        {pk.Challenge},
		"code_challenge_method": {"S256"},
	}
	b := newBrowser(f.transport, f.cfg.Timeout)
	req, err := http.NewRequestWithContext(f.ctx, http.MethodGet, f.ehr.AuthorizationEndpoint+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	target, err := url.Parse(redirectURI)
	if err != nil {
		return nil, err
	}
	atRedirect := func(u *url.URL) bool {
		return u.Scheme == target.Scheme && u.Host == target.Host && u.Path == target.Path
	}
	p, err := b.navigate(req, atRedirect)
	if err != nil {
		return nil, fmt.Errorf("authorize: %w", err)
	}
	f.consentShown = false
	if !p.Stopped {
		// A consent page for a client the EHR has not approved: approve it,
		// as a clinician talked into it would.
		if p, err = approveConsent(f.ctx, b, p, atRedirect); err != nil {
			return nil, err
		}
		f.consentShown = true
	}
	if !p.Stopped {
		return nil, fmt.Errorf("authorize did not redirect to %s (ended at %s, HTTP %d): %s", redirectURI, p.URL, p.Status, oneLine(string(clipBytes(p.Body, 200))))
	}
	cb := p.URL.Query()
	if e := cb.Get("error"); e != "" {
		return nil, fmt.Errorf("authorize answered error=%s: %s", e, cb.Get("error_description"))
	}
	if cb.Get("state") != state {
		return nil, errors.New("authorize redirect carries another state")
	}
	tr, err := assertionToken(f.ctx, f.api, f.ehr.TokenEndpoint, signer, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {cb.Get("code")},
		"redirect_uri":  {redirectURI},
		"code_verifier": {pk.Verifier},
	})
	if err != nil {
		return nil, fmt.Errorf("code exchange: %w", err)
	}
	return tr, nil
}

// attackReadByID: the attacker reads pat-1's DocumentReference by its id.
// The payer must answer 404, exactly as for a missing id.
func (f *flow) attackReadByID() (string, error) {
	a := f.atk
	u := f.cfg.PayerFHIR() + "/DocumentReference/" + f.docID
	res, err := do(f.ctx, f.api, http.MethodGet, u, headers(a.payerToken.AccessToken, a.ehrToken.AccessToken), nil)
	if err != nil {
		return "", err
	}
	if res.Status != http.StatusNotFound {
		return "", fmt.Errorf("GET DocumentReference/%s with pat-2 tokens: HTTP %d, want 404: %s", f.docID, res.Status, oneLine(string(clipBytes(res.Body, 200))))
	}
	// The same answer as an id that does not exist.
	miss, err := do(f.ctx, f.api, http.MethodGet, f.cfg.PayerFHIR()+"/DocumentReference/"+missingID(),
		headers(a.payerToken.AccessToken, a.ehrToken.AccessToken), nil)
	if err != nil {
		return "", err
	}
	if miss.Status != res.Status {
		return "", fmt.Errorf("pat-1's document answers %d but a missing id answers %d: the difference leaks that it exists", res.Status, miss.Status)
	}
	return fmt.Sprintf("GET DocumentReference/%s with its pat-2 tokens -> 404, same as a missing id", f.docID), nil
}

// attackSearch: the attacker searches for pat-1's documents by patient and
// by subject, by GET and by POST _search. No pat-1 document may come back.
func (f *flow) attackSearch() (string, error) {
	a := f.atk
	h := headers(a.payerToken.AccessToken, a.ehrToken.AccessToken)
	target := f.cfg.PatientURL(Patient)
	type probe struct {
		name, method, url string
		form              url.Values
	}
	probes := []probe{
		{"?patient=", http.MethodGet, f.cfg.PayerFHIR() + "/DocumentReference?patient=" + url.QueryEscape(target), nil},
		{"?subject=", http.MethodGet, f.cfg.PayerFHIR() + "/DocumentReference?subject=" + url.QueryEscape(target), nil},
		{"POST _search subject=", http.MethodPost, f.cfg.PayerFHIR() + "/DocumentReference/_search", url.Values{"subject": {target}}},
	}
	var results []string
	for _, p := range probes {
		var body any
		if p.form != nil {
			body = p.form
		}
		res, err := do(f.ctx, f.api, p.method, p.url, h, body)
		if err != nil {
			return "", err
		}
		switch {
		case res.Status >= 500:
			return "", fmt.Errorf("%s: HTTP %d (a refusal must be a 4xx or an empty result)", p.name, res.Status)
		case res.Status >= 400:
			results = append(results, fmt.Sprintf("%s -> %d", p.name, res.Status))
			continue
		}
		var b fhir.Bundle
		if err := res.expect(p.name, &b, http.StatusOK); err != nil {
			return "", err
		}
		for _, e := range b.Entry {
			var d fhir.DocumentReference
			if json.Unmarshal(e.Resource, &d) != nil {
				continue
			}
			if d.ID == f.docID || (d.Subject != nil && strings.HasSuffix(d.Subject.Reference, "Patient/"+Patient)) {
				return "", fmt.Errorf("%s returned pat-1's DocumentReference/%s to the pat-2 app", p.name, d.ID)
			}
		}
		results = append(results, fmt.Sprintf("%s -> 200, %d entries, none of pat-1", p.name, len(b.Entry)))
	}
	return strings.Join(results, "; "), nil
}

// attackForgedToken: the attacker signs its own "EHR token" for pat-1
// (iss and aud the EHR, the EHR's own kid in the header) and sends it with
// its valid payer token. The payer must answer 401.
func (f *flow) attackForgedToken() (string, error) {
	a := f.atk
	forger := *a.key
	if kid := f.ehrKID(); kid != "" {
		forger.KID = kid // pretend to be the EHR's current key
	}
	now := time.Now()
	tok, err := accesstoken.Sign(&forger, &accesstoken.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    f.cfg.EHRFHIR(),
			Subject:   "Practitioner/" + Practitioner,
			Audience:  jwt.ClaimStrings{f.cfg.EHRFHIR()},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)),
			ID:        randomString(12),
		},
		ClientID: a.ehrClientID,
		Scope:    a.ehrToken.Scope,
		Patient:  Patient,
		FHIRUser: f.cfg.EHRFHIR() + "/Practitioner/" + Practitioner,
	})
	if err != nil {
		return "", err
	}
	f.forgedToken = tok
	u := f.cfg.PayerFHIR() + "/DocumentReference?patient=" + url.QueryEscape(f.cfg.PatientURL(Patient))
	res, err := do(f.ctx, f.api, http.MethodGet, u, headers(a.payerToken.AccessToken, tok), nil)
	if err != nil {
		return "", err
	}
	if res.Status != http.StatusUnauthorized {
		return "", fmt.Errorf("forged EHR token for pat-1: HTTP %d, want 401: %s", res.Status, oneLine(string(clipBytes(res.Body, 200))))
	}
	if !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
		return "", fmt.Errorf("401 without WWW-Authenticate: Bearer (got %q)", res.Header.Get("WWW-Authenticate"))
	}
	return fmt.Sprintf("EHR token for pat-1 signed with its own key (kid %s, iss %s) -> 401", short(forger.KID), f.cfg.EHRFHIR()), nil
}

// attackStolenToken: the attacker presents the legitimate app's EHR token
// for pat-1 with its own payer token. The payer must answer 403: an EHR
// token is accepted only from the app that registered its client id.
func (f *flow) attackStolenToken() (string, error) {
	a := f.atk
	u := f.cfg.PayerFHIR() + "/DocumentReference?patient=" + url.QueryEscape(f.cfg.PatientURL(Patient))
	res, err := do(f.ctx, f.api, http.MethodGet, u, headers(a.payerToken.AccessToken, f.legitEHRToken), nil)
	if err != nil {
		return "", err
	}
	if res.Status != http.StatusForbidden {
		return "", fmt.Errorf("dtr-app's EHR token with the attacker's payer token: HTTP %d, want 403: %s", res.Status, oneLine(string(clipBytes(res.Body, 200))))
	}
	// The same EHR token with dtr-app's own payer client would be fine; the
	// refusal is about who presents it.
	return fmt.Sprintf("dtr-app's EHR token for pat-1 (%s) with the attacker's payer token -> 403", f.legitTokenSource), nil
}

// ehrKID is the kid of the EHR's first published key, or "".
func (f *flow) ehrKID() string {
	if f.ehr.JWKSURI == "" {
		return ""
	}
	res, err := do(f.ctx, f.api, http.MethodGet, f.ehr.JWKSURI, nil, nil)
	if err != nil || res.Status != http.StatusOK {
		return ""
	}
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if json.Unmarshal(res.Body, &set) != nil || len(set.Keys) == 0 {
		return ""
	}
	return set.Keys[0].KID
}

// short abbreviates an opaque id for the report.
func short(s string) string {
	if len(s) > 12 {
		return s[:8] + "…"
	}
	return s
}

// missingID is a valid FHIR id (R4 datatypes.html#id) that names nothing.
func missingID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "no-such-" + hex.EncodeToString(b)
}
