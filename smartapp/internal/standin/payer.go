package standin

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"dtrsandbox/shared/accesstoken"
	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/fhir"
	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/smart"
)

// Recorded is one FHIR request the stand-in payer received.
type Recorded struct {
	Method, Path, Query string
	Authorization       string // the payer token (raw)
	EHRAuthorization    string // the EHR token (raw)
	PurposeOfUse        string
	IfMatch             string
	Body                []byte
}

// Fault makes the next matching FHIR request fail.
type Fault struct {
	Status     int
	RetryAfter string
	Diag       string
	Path       string // prefix of the path below /fhir/ to match; "" matches all
	Times      int    // how many requests fail (1 if 0)
}

// Payer is the stand-in payer: Backend Services discovery and token
// endpoint (client assertion checked against the app's JWKS),
// $questionnaire-package answering a seeded questionnaire, and
// DocumentReference create/read/update (If-Match)/search in memory.
type Payer struct {
	Server        *httptest.Server
	ClientID      string
	AppJWKSURI    string
	Questionnaire json.RawMessage
	TokenTTL      time.Duration
	// Now is the clock the payer checks assertions and mints tokens with
	// (time.Now).
	Now func() time.Time
	// Patient is the absolute patient reference stamped on documents that
	// have no subject (the real payer takes it from the EHR token).
	Patient string

	key *jwks.SigningKey

	mu          sync.Mutex
	verifier    *clientauth.Verifier
	tokens      map[string]bool
	TokenCalls  int
	TokenForms  []map[string][]string
	Requests    []Recorded
	docs        map[string]json.RawMessage
	versions    map[string]int
	nextID      int
	faults      []Fault
	tokenFaults []Fault
}

// NewPayer starts a stand-in payer serving questionnaire q.
func NewPayer(t testing.TB, appJWKSURI string, q json.RawMessage) *Payer {
	t.Helper()
	p := &Payer{ClientID: "dtr-app", AppJWKSURI: appJWKSURI, Questionnaire: q, TokenTTL: 300 * time.Second,
		tokens: map[string]bool{}, docs: map[string]json.RawMessage{}, versions: map[string]int{}}
	var err error
	if p.key, err = jwks.Generate(jwks.ES256); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fhir/.well-known/smart-configuration", p.discovery)
	mux.HandleFunc("POST /auth/token", p.token)
	mux.HandleFunc("/fhir/", p.fhirAPI)
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Server.Close)
	return p
}

// FHIRBase is the payer's FHIR base.
func (p *Payer) FHIRBase() string { return p.Server.URL + "/fhir" }

// TokenURL is the token endpoint.
func (p *Payer) TokenURL() string { return p.Server.URL + "/auth/token" }

// Fail queues a fault for FHIR requests.
func (p *Payer) Fail(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f.Times == 0 {
		f.Times = 1
	}
	p.faults = append(p.faults, f)
}

// FailToken queues a fault for the token endpoint.
func (p *Payer) FailToken(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f.Times == 0 {
		f.Times = 1
	}
	p.tokenFaults = append(p.tokenFaults, f)
}

// RevokeTokens forgets every payer token issued (as after a payer restart).
func (p *Payer) RevokeTokens() {
	p.mu.Lock()
	p.tokens = map[string]bool{}
	p.mu.Unlock()
}

func (p *Payer) discovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, smart.Configuration{
		TokenEndpoint:                              p.TokenURL(),
		GrantTypesSupported:                        []string{"client_credentials"},
		TokenEndpointAuthMethodsSupported:          []string{"private_key_jwt"},
		TokenEndpointAuthSigningAlgValuesSupported: []string{"ES384", "RS384"},
		Capabilities:                               []string{"client-confidential-asymmetric"},
	})
}

func takeFault(list *[]Fault, path string) *Fault {
	for i := range *list {
		f := &(*list)[i]
		if strings.HasPrefix(path, f.Path) {
			out := *f
			f.Times--
			if f.Times <= 0 {
				*list = append((*list)[:i], (*list)[i+1:]...)
			}
			return &out
		}
	}
	return nil
}

func (p *Payer) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeOAuth(w, 400, "invalid_request", "bad form")
		return
	}
	p.mu.Lock()
	p.TokenCalls++
	p.TokenForms = append(p.TokenForms, r.PostForm)
	if p.verifier == nil {
		p.verifier = newVerifier(p.TokenURL(), p.ClientID, p.AppJWKSURI, p.Now)
	}
	v := p.verifier
	f := takeFault(&p.tokenFaults, "")
	p.mu.Unlock()
	if f != nil {
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		writeOAuth(w, f.Status, "invalid_client", f.Diag)
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		writeOAuth(w, 400, "unsupported_grant_type", "client_credentials only")
		return
	}
	if _, err := v.Verify(r.Context(), r.PostForm); err != nil {
		writeOAuth(w, 401, "invalid_client", err.Error())
		return
	}
	now := time.Now()
	if p.Now != nil {
		now = p.Now()
	}
	tok, err := accesstoken.Sign(p.key, &accesstoken.Claims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: p.Server.URL, Subject: p.ClientID, Audience: jwt.ClaimStrings{p.FHIRBase()},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(p.TokenTTL)), ID: randomString()},
		ClientID: p.ClientID, Scope: r.PostForm.Get("scope"),
	})
	if err != nil {
		writeOAuth(w, 500, "server_error", err.Error())
		return
	}
	p.mu.Lock()
	p.tokens[tok] = true
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(p.TokenTTL.Seconds()), "scope": r.PostForm.Get("scope")})
}

func (p *Payer) fhirAPI(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	path := strings.TrimPrefix(r.URL.Path, "/fhir/")
	rec := Recorded{Method: r.Method, Path: path, Query: r.URL.RawQuery,
		Authorization: bearer(r, "Authorization"), EHRAuthorization: bearer(r, "X-EHR-Authorization"),
		PurposeOfUse: r.Header.Get("X-Purpose-Of-Use"), IfMatch: r.Header.Get("If-Match"), Body: body}
	p.mu.Lock()
	p.Requests = append(p.Requests, rec)
	f := takeFault(&p.faults, path)
	known := p.tokens[rec.Authorization]
	p.mu.Unlock()
	if f != nil {
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		outcome(w, f.Status, "processing", f.Diag)
		return
	}
	if !known {
		outcome(w, http.StatusUnauthorized, "login", "payer access token missing or unknown")
		return
	}
	if rec.EHRAuthorization == "" && strings.HasPrefix(path, "DocumentReference") {
		outcome(w, http.StatusUnauthorized, "login", "X-EHR-Authorization is required")
		return
	}
	switch {
	case r.Method == http.MethodPost && path == "Questionnaire/$questionnaire-package":
		p.questionnairePackage(w, body)
	case r.Method == http.MethodPost && path == "DocumentReference":
		p.create(w, body)
	case r.Method == http.MethodGet && path == "DocumentReference":
		p.search(w, r)
	case strings.HasPrefix(path, "DocumentReference/") && r.Method == http.MethodGet:
		p.read(w, strings.TrimPrefix(path, "DocumentReference/"))
	case strings.HasPrefix(path, "DocumentReference/") && r.Method == http.MethodPut:
		p.update(w, strings.TrimPrefix(path, "DocumentReference/"), rec.IfMatch, body)
	default:
		outcome(w, http.StatusNotFound, "not-supported", "not in the stand-in")
	}
}

func (p *Payer) questionnairePackage(w http.ResponseWriter, body []byte) {
	var in fhir.Parameters
	if err := fhir.Decode(body, &in); err != nil || in.ResourceType != "Parameters" {
		outcome(w, 400, "invalid", "not Parameters")
		return
	}
	got := map[string]string{}
	for _, prm := range in.Parameter {
		rt, _ := fhir.ResourceType(prm.Resource)
		got[prm.Name] = rt
	}
	if got["coverage"] != "Coverage" || got["order"] == "" {
		outcome(w, 400, "required", "coverage and order are required")
		return
	}
	bundle, _ := json.Marshal(fhir.Bundle{ResourceType: "Bundle", Type: "collection", Entry: []fhir.BundleEntry{{Resource: p.Questionnaire}}})
	fhir.WriteJSON(w, http.StatusOK, fhir.Parameters{ResourceType: "Parameters", Parameter: []fhir.ParametersParameter{{Name: "PackageBundle", Resource: bundle}}})
}

func (p *Payer) store(id string, version int, doc *fhir.DocumentReference) json.RawMessage {
	doc.ID = id
	doc.Meta = &fhir.Meta{VersionID: strconv.Itoa(version), LastUpdated: time.Now().UTC().Format(time.RFC3339Nano)}
	b, _ := json.Marshal(doc)
	p.docs[id], p.versions[id] = b, version
	return b
}

func (p *Payer) create(w http.ResponseWriter, body []byte) {
	var doc fhir.DocumentReference
	if err := fhir.Decode(body, &doc); err != nil || doc.ResourceType != "DocumentReference" {
		outcome(w, 400, "invalid", "not a DocumentReference")
		return
	}
	if p.Patient != "" {
		if doc.Subject == nil {
			doc.Subject = &fhir.Reference{Reference: p.Patient}
		} else if doc.Subject.Reference != p.Patient {
			outcome(w, http.StatusForbidden, "forbidden", "subject is not the EHR token's patient")
			return
		}
	}
	p.mu.Lock()
	p.nextID++
	id := fmt.Sprintf("doc-%d", p.nextID)
	b := p.store(id, 1, &doc)
	p.mu.Unlock()
	w.Header().Set("Location", p.FHIRBase()+"/DocumentReference/"+id+"/_history/1")
	w.Header().Set("ETag", `W/"1"`)
	fhir.WriteResource(w, http.StatusCreated, b)
}

func (p *Payer) read(w http.ResponseWriter, id string) {
	p.mu.Lock()
	b, ok := p.docs[id]
	v := p.versions[id]
	p.mu.Unlock()
	if !ok {
		outcome(w, 404, "not-found", "no such document")
		return
	}
	w.Header().Set("ETag", fmt.Sprintf(`W/"%d"`, v))
	fhir.WriteResource(w, http.StatusOK, b)
}

func (p *Payer) update(w http.ResponseWriter, id, ifMatch string, body []byte) {
	var doc fhir.DocumentReference
	if err := fhir.Decode(body, &doc); err != nil || doc.ResourceType != "DocumentReference" || doc.ID != id {
		outcome(w, 400, "invalid", "not a DocumentReference with this id")
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	cur, ok := p.versions[id]
	switch {
	case !ok:
		outcome(w, 404, "not-found", "no such document")
		return
	case ifMatch == "":
		outcome(w, http.StatusPreconditionRequired, "business-rule", "If-Match is required")
		return
	case ifMatch != fmt.Sprintf(`W/"%d"`, cur):
		outcome(w, http.StatusPreconditionFailed, "conflict", "version mismatch")
		return
	}
	b := p.store(id, cur+1, &doc)
	w.Header().Set("ETag", fmt.Sprintf(`W/"%d"`, cur+1))
	fhir.WriteResource(w, http.StatusOK, b)
}

func (p *Payer) search(w http.ResponseWriter, r *http.Request) {
	related, status := r.URL.Query().Get("related"), r.URL.Query().Get("status")
	p.mu.Lock()
	var entries []fhir.BundleEntry
	for id := 1; id <= p.nextID; id++ {
		b, ok := p.docs[fmt.Sprintf("doc-%d", id)]
		if !ok {
			continue
		}
		var d fhir.DocumentReference
		_ = json.Unmarshal(b, &d)
		if status != "" && d.Status != status {
			continue
		}
		if related != "" {
			match := false
			if d.Context != nil {
				for _, rr := range d.Context.Related {
					match = match || rr.Reference == related
				}
			}
			if !match {
				continue
			}
		}
		entries = append(entries, fhir.BundleEntry{Resource: b, Search: &fhir.BundleEntrySearch{Mode: "match"}})
	}
	p.mu.Unlock()
	n := len(entries)
	fhir.WriteJSON(w, http.StatusOK, fhir.Bundle{ResourceType: "Bundle", Type: "searchset", Total: &n, Entry: entries})
}

// Docs returns the stored documents by id.
func (p *Payer) Docs() map[string]fhir.DocumentReference {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]fhir.DocumentReference{}
	for id, b := range p.docs {
		var d fhir.DocumentReference
		_ = json.Unmarshal(b, &d)
		out[id] = d
	}
	return out
}

// Recorded returns the FHIR requests received so far.
func (p *Payer) Recorded() []Recorded {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Recorded(nil), p.Requests...)
}

// TokenRequests is the number of token requests received.
func (p *Payer) TokenRequests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.TokenCalls
}
