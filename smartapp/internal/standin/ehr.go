package standin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"dtrsandbox/shared/accesstoken"
	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/smart"
)

// EHROptions shape the stand-in EHR's tokens, so tests can make them wrong.
type EHROptions struct {
	ClientID          string // the app's client id ("dtr-app")
	AppJWKSURI        string // where the app's key is (checked on the token request)
	Patient           string // "pat-1"
	Practitioner      string // "prac-1"
	Encounter         string
	FHIRContext       []smart.ContextItem
	NeedPatientBanner bool
	TokenTTL          time.Duration // 1h

	AccessTokenAudience string // default: the FHIR base
	AccessTokenIssuer   string // default: the FHIR base
	AccessTokenClientID string // default: ClientID
	IDTokenAudience     string // default: ClientID
	IDTokenIssuer       string // default: the FHIR base
	IDTokenAlg          string // "RS256" (default) or "ES256" (wrong on purpose)
	IDTokenNonce        *string
	IDTokenName         string // the id_token's name claim; none by default, as the sandbox EHR sends none
	OmitIDToken         bool
	// IDTokenNonCanonical sets an unused low bit in the last character of
	// the id_token's signature: the same bytes to a lax base64url decoder.
	IDTokenNonCanonical bool
	TokenError          string // when set, the token endpoint answers this OAuth error
}

// EHR is the stand-in EHR: SMART discovery, authorize (no UI: it answers a
// code at once), token (private_key_jwt checked against the app's JWKS,
// PKCE S256 checked), JWKS, and FHIR read/search of the seeded resources
// plus QuestionnaireResponse create.
type EHR struct {
	Server *httptest.Server
	Opts   EHROptions

	atKey *jwks.SigningKey // ES256, access tokens
	idKey *jwks.SigningKey // RS256, id_tokens
	esKey *jwks.SigningKey // ES256 "id_token" key for the wrong-alg test

	mu        sync.Mutex
	codes     map[string]authzRequest
	tokens    map[string]bool
	resources map[string]json.RawMessage
	// Authorize is the last authorize query; TokenForm the last token form.
	Authorize url.Values
	TokenForm url.Values
	// QRs are the QuestionnaireResponses written back.
	QRs      []json.RawMessage
	verifier *clientauth.Verifier
	// failWriteBack answers the next QuestionnaireResponse creates with
	// this status, failWriteBackN times.
	failWriteBack, failWriteBackN int
}

// RevokeTokens makes every access token issued so far unknown (401).
func (e *EHR) RevokeTokens() {
	e.mu.Lock()
	e.tokens = map[string]bool{}
	e.mu.Unlock()
}

// FailWriteBack makes the next n QuestionnaireResponse creates answer status.
func (e *EHR) FailWriteBack(status, n int) {
	e.mu.Lock()
	e.failWriteBack, e.failWriteBackN = status, n
	e.mu.Unlock()
}

type authzRequest struct {
	q url.Values
}

// NewEHR starts a stand-in EHR serving the seeded resources.
func NewEHR(t testing.TB, opts EHROptions) *EHR {
	t.Helper()
	if opts.ClientID == "" {
		opts.ClientID = "dtr-app"
	}
	if opts.Patient == "" {
		opts.Patient = "pat-1"
	}
	if opts.Practitioner == "" {
		opts.Practitioner = "prac-1"
	}
	if opts.TokenTTL == 0 {
		opts.TokenTTL = time.Hour
	}
	e := &EHR{Opts: opts, codes: map[string]authzRequest{}, tokens: map[string]bool{}, resources: map[string]json.RawMessage{}}
	var err error
	if e.atKey, err = jwks.Generate(jwks.ES256); err != nil {
		t.Fatal(err)
	}
	if e.idKey, err = jwks.Generate(jwks.RS256); err != nil {
		t.Fatal(err)
	}
	if e.esKey, err = jwks.Generate(jwks.ES256); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Patient-pat-1", "Patient-pat-2", "Coverage-cov-1", "Coverage-cov-2", "DeviceRequest-dr-oxygen-1", "DeviceRequest-dr-cpap-2", "Encounter-enc-1", "Practitioner-prac-1"} {
		typ, id, _ := strings.Cut(name, "-")
		e.resources[typ+"/"+id] = SeedResource(t, name)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fhir/.well-known/smart-configuration", e.discovery)
	mux.HandleFunc("GET /authorize", e.authorize)
	mux.HandleFunc("POST /token", e.token)
	mux.HandleFunc("GET /jwks", e.jwks)
	mux.HandleFunc("GET /fhir/{type}/{id}", e.read)
	mux.HandleFunc("GET /fhir/{type}", e.search)
	mux.HandleFunc("POST /fhir/QuestionnaireResponse", e.createQR)
	e.Server = httptest.NewServer(mux)
	t.Cleanup(e.Server.Close)
	return e
}

// Issuer is the FHIR base.
func (e *EHR) Issuer() string { return e.Server.URL + "/fhir" }

// TokenURL is the token endpoint.
func (e *EHR) TokenURL() string { return e.Server.URL + "/token" }

func (e *EHR) discovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, smart.Configuration{
		Issuer:                            e.Issuer(),
		JWKSURI:                           e.Server.URL + "/jwks",
		AuthorizationEndpoint:             e.Server.URL + "/authorize",
		TokenEndpoint:                     e.TokenURL(),
		GrantTypesSupported:               []string{"authorization_code"},
		TokenEndpointAuthMethodsSupported: []string{"private_key_jwt"},
		TokenEndpointAuthSigningAlgValuesSupported: []string{"ES384", "RS384"},
		CodeChallengeMethodsSupported:              []string{"S256"},
		Capabilities:                               []string{"launch-ehr", "launch-standalone", "client-confidential-asymmetric", "sso-openid-connect"},
	})
}

func (e *EHR) jwks(w http.ResponseWriter, r *http.Request) {
	jwks.Handler(jwks.Set{e.atKey, e.idKey, e.esKey}).ServeHTTP(w, r)
}

// authorize answers a code at once (the stand-in has no login screen).
func (e *EHR) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	e.mu.Lock()
	e.Authorize = q
	e.mu.Unlock()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || q.Get("client_id") != e.Opts.ClientID || q.Get("response_type") != "code" ||
		q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("aud") != e.Issuer() {
		http.Error(w, "bad authorize request", http.StatusBadRequest)
		return
	}
	code := randomString()
	e.mu.Lock()
	e.codes[code] = authzRequest{q: q}
	e.mu.Unlock()
	rq := redirect.Query()
	rq.Set("code", code)
	rq.Set("state", q.Get("state"))
	redirect.RawQuery = rq.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

type assertionClients struct{ c clientauth.Client }

func (a assertionClients) AssertionClient(_ context.Context, id string) (*clientauth.Client, error) {
	if id != a.c.ID {
		return nil, clientauth.ErrUnknownClient
	}
	c := a.c
	return &c, nil
}

func newVerifier(tokenURL, clientID, jwksURI string, now func() time.Time) *clientauth.Verifier {
	return clientauth.NewVerifier(clientauth.Config{
		Now:      now,
		TokenURL: tokenURL,
		Clients: assertionClients{clientauth.Client{ID: clientID, AuthMethod: clientauth.AuthMethodPrivateKeyJWT,
			SigningAlg: "ES384", JWKSURI: jwksURI}},
		Keys: jwks.NewRemote(nil, jwks.RemoteOptions{}),
		JTIs: clientauth.NewMemoryJTIStore(nil),
	})
}

func (e *EHR) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeOAuth(w, 400, "invalid_request", "bad form")
		return
	}
	e.mu.Lock()
	e.TokenForm = r.PostForm
	if e.verifier == nil {
		e.verifier = newVerifier(e.TokenURL(), e.Opts.ClientID, e.Opts.AppJWKSURI, nil)
	}
	v := e.verifier
	e.mu.Unlock()
	if e.Opts.TokenError != "" {
		writeOAuth(w, 400, e.Opts.TokenError, "refused by the test")
		return
	}
	if _, err := v.Verify(r.Context(), r.PostForm); err != nil {
		writeOAuth(w, 401, "invalid_client", err.Error())
		return
	}
	e.mu.Lock()
	req, ok := e.codes[r.PostForm.Get("code")]
	delete(e.codes, r.PostForm.Get("code"))
	e.mu.Unlock()
	if !ok || r.PostForm.Get("grant_type") != "authorization_code" || r.PostForm.Get("redirect_uri") != req.q.Get("redirect_uri") {
		writeOAuth(w, 400, "invalid_grant", "unknown code")
		return
	}
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if base64.RawURLEncoding.EncodeToString(sum[:]) != req.q.Get("code_challenge") {
		writeOAuth(w, 400, "invalid_grant", "PKCE verifier does not match")
		return
	}
	at, err := e.MintAccessToken(e.Opts.TokenTTL)
	if err != nil {
		writeOAuth(w, 500, "server_error", err.Error())
		return
	}
	resp := map[string]any{
		"access_token": at, "token_type": "Bearer", "expires_in": int(e.Opts.TokenTTL.Seconds()),
		"scope": req.q.Get("scope"), "patient": e.Opts.Patient, "need_patient_banner": e.Opts.NeedPatientBanner,
	}
	if e.Opts.Encounter != "" {
		resp["encounter"] = e.Opts.Encounter
	}
	if len(e.Opts.FHIRContext) > 0 {
		resp["fhirContext"] = e.Opts.FHIRContext
	}
	if !e.Opts.OmitIDToken {
		nonce := req.q.Get("nonce")
		if e.Opts.IDTokenNonce != nil {
			nonce = *e.Opts.IDTokenNonce
		}
		idt, err := e.mintIDToken(nonce)
		if err != nil {
			writeOAuth(w, 500, "server_error", err.Error())
			return
		}
		resp["id_token"] = idt
	}
	writeJSON(w, http.StatusOK, resp)
}

// MintAccessToken issues an access token for the configured launch.
func (e *EHR) MintAccessToken(ttl time.Duration) (string, error) {
	now := time.Now()
	aud, iss, cid := e.Opts.AccessTokenAudience, e.Opts.AccessTokenIssuer, e.Opts.AccessTokenClientID
	if aud == "" {
		aud = e.Issuer()
	}
	if iss == "" {
		iss = e.Issuer()
	}
	if cid == "" {
		cid = e.Opts.ClientID
	}
	c := &accesstoken.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: iss, Subject: e.Opts.Practitioner, Audience: jwt.ClaimStrings{aud},
			IssuedAt: jwt.NewNumericDate(now.Add(-time.Minute)), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)), ID: randomString(),
		},
		ClientID: cid, Scope: "launch openid fhirUser patient/*.rs patient/QuestionnaireResponse.cu",
		Patient: e.Opts.Patient, Encounter: e.Opts.Encounter, FHIRUser: e.Issuer() + "/Practitioner/" + e.Opts.Practitioner,
		FHIRContext: e.Opts.FHIRContext,
	}
	if ttl <= 0 { // an already expired token: iat must still precede exp
		c.IssuedAt = jwt.NewNumericDate(now.Add(ttl - time.Minute))
	}
	tok, err := accesstoken.Sign(e.atKey, c)
	if err != nil {
		return "", err
	}
	e.mu.Lock()
	e.tokens[tok] = true
	e.mu.Unlock()
	return tok, nil
}

func (e *EHR) mintIDToken(nonce string) (string, error) {
	now := time.Now()
	aud, iss := e.Opts.IDTokenAudience, e.Opts.IDTokenIssuer
	if aud == "" {
		aud = e.Opts.ClientID
	}
	if iss == "" {
		iss = e.Issuer()
	}
	claims := jwt.MapClaims{
		"iss": iss, "sub": e.Opts.Practitioner, "aud": aud, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"fhirUser": e.Issuer() + "/Practitioner/" + e.Opts.Practitioner,
	}
	if e.Opts.IDTokenName != "" {
		claims["name"] = e.Opts.IDTokenName
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	key := e.idKey
	if e.Opts.IDTokenAlg == "ES256" {
		key = e.esKey
	}
	tok := jwt.NewWithClaims(key.Method(), claims)
	tok.Header["kid"] = key.KID
	raw, err := tok.SignedString(key.Private)
	if err != nil || !e.Opts.IDTokenNonCanonical {
		return raw, err
	}
	// RS256: 256 signature bytes end in a 2-character group whose last
	// character carries 4 unused bits; bit 0 is one of them.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, raw[len(raw)-1])
	return raw[:len(raw)-1] + string(alphabet[last|1]), nil
}

// authorized checks the bearer token is one this EHR issued.
func (e *EHR) authorized(w http.ResponseWriter, r *http.Request) bool {
	e.mu.Lock()
	ok := e.tokens[bearer(r, "Authorization")]
	e.mu.Unlock()
	if !ok {
		outcome(w, http.StatusUnauthorized, "login", "unknown access token")
	}
	return ok
}

func (e *EHR) read(w http.ResponseWriter, r *http.Request) {
	if !e.authorized(w, r) {
		return
	}
	e.mu.Lock()
	body, ok := e.resources[r.PathValue("type")+"/"+r.PathValue("id")]
	e.mu.Unlock()
	if !ok {
		outcome(w, http.StatusNotFound, "not-found", "no such resource")
		return
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	_, _ = w.Write(body)
}

func (e *EHR) search(w http.ResponseWriter, r *http.Request) {
	if !e.authorized(w, r) {
		return
	}
	typ, patient := r.PathValue("type"), r.URL.Query().Get("patient")
	var entries []map[string]any
	e.mu.Lock()
	for key, body := range e.resources {
		if !strings.HasPrefix(key, typ+"/") {
			continue
		}
		var h struct {
			Subject struct{ Reference string } `json:"subject"`
		}
		_ = json.Unmarshal(body, &h)
		if patient != "" && h.Subject.Reference != "Patient/"+patient {
			continue
		}
		entries = append(entries, map[string]any{"resource": body, "search": map[string]string{"mode": "match"}})
	}
	e.mu.Unlock()
	w.Header().Set("Content-Type", "application/fhir+json")
	_ = json.NewEncoder(w).Encode(map[string]any{"resourceType": "Bundle", "type": "searchset", "entry": entries})
}

func (e *EHR) createQR(w http.ResponseWriter, r *http.Request) {
	if !e.authorized(w, r) {
		return
	}
	var qr map[string]any
	if err := json.NewDecoder(r.Body).Decode(&qr); err != nil || qr["resourceType"] != "QuestionnaireResponse" {
		outcome(w, 400, "invalid", "not a QuestionnaireResponse")
		return
	}
	e.mu.Lock()
	if e.failWriteBackN > 0 {
		e.failWriteBackN--
		status := e.failWriteBack
		e.mu.Unlock()
		outcome(w, status, "transient", "write-back refused by the test")
		return
	}
	id := fmt.Sprintf("qr-%d", len(e.QRs)+1)
	qr["id"] = id
	b, _ := json.Marshal(qr)
	e.QRs = append(e.QRs, b)
	e.mu.Unlock()
	w.Header().Set("Location", e.Issuer()+"/QuestionnaireResponse/"+id+"/_history/1")
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(b)
}

// WrittenBack returns the QuestionnaireResponses written back so far.
func (e *EHR) WrittenBack() []json.RawMessage {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]json.RawMessage(nil), e.QRs...)
}

// LastAuthorize returns the last authorize query.
func (e *EHR) LastAuthorize() url.Values {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.Authorize
}

// LastTokenForm returns the last token request form.
func (e *EHR) LastTokenForm() url.Values {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.TokenForm
}

func randomString() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
