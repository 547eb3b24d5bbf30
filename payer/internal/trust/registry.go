// Package trust is the payer's trust in EHRs: the trusted-EHR registry
// (CONTRACT.md "Trusted EHRs", a JSON file re-read when it changes) and the
// validation of EHR access tokens presented in X-EHR-Authorization, either
// locally against the issuer's JWK Set (RFC 9068) or by RFC 7662
// introspection at the issuer.
package trust

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"

	"dtrsandbox/shared/fhir"
)

// Verification modes of a trusted EHR.
const (
	ModeJWKS          = "jwks"          // verify the JWT with keys from the issuer's jwks_uri
	ModeIntrospection = "introspection" // ask the issuer (RFC 7662)
)

// Client authentication methods at an EHR's introspection endpoint.
const (
	AuthClientSecretBasic = "client_secret_basic" // RFC 6749 §2.3.1
	AuthPrivateKeyJWT     = "private_key_jwt"     // RFC 7523 §2.2, signed with the payer's ES384 key
)

// MaxRegistryFile bounds the registry file.
const MaxRegistryFile = 1 << 20

// EHR is one entry of the registry file. Endpoint URLs left out are taken
// from the EHR's SMART discovery ({fhir_base}/.well-known/smart-configuration).
type EHR struct {
	Issuer                string `json:"issuer"`
	FHIRBase              string `json:"fhir_base,omitempty"` // default: the issuer
	Mode                  string `json:"mode"`
	JWKSURI               string `json:"jwks_uri,omitempty"`
	IntrospectionEndpoint string `json:"introspection_endpoint,omitempty"`
	// TokenEndpoint is the aud of the payer's client assertion at the
	// introspection endpoint (CONTRACT.md: "A client assertion at any EHR
	// endpoint ... has aud = the token endpoint URL").
	TokenEndpoint string `json:"token_endpoint,omitempty"`
	ClientID      string `json:"client_id,omitempty"`
	ClientAuth    string `json:"client_auth,omitempty"`
	ClientSecret  string `json:"client_secret,omitempty"`

	// fingerprint identifies this exact configuration: a cached answer
	// obtained under another configuration of the issuer is not reused.
	fingerprint string
}

// Redacted is e without its secret, for logs.
func (e EHR) Redacted() EHR {
	if e.ClientSecret != "" {
		e.ClientSecret = "(redacted)"
	}
	return e
}

// registryFile is the file's shape: {"ehrs": [...]}.
type registryFile struct {
	EHRs []EHR `json:"ehrs"`
}

// Snapshot is one parsed, valid registry.
type Snapshot struct {
	byIssuer map[string]*EHR
	hash     [32]byte
}

// Issuers lists the trusted issuers, sorted.
func (s *Snapshot) Issuers() []string {
	out := make([]string, 0, len(s.byIssuer))
	for iss := range s.byIssuer {
		out = append(out, iss)
	}
	sort.Strings(out)
	return out
}

// Parse reads a registry file strictly: one JSON object, no repeated or
// case-variant member names, no unknown members, every entry valid, no
// issuer twice. An empty list is valid and trusts no EHR.
func Parse(data []byte) (*Snapshot, error) {
	if len(data) > MaxRegistryFile {
		return nil, fmt.Errorf("trust: registry larger than %d bytes", MaxRegistryFile)
	}
	if err := fhir.CheckKeys(data); err != nil {
		return nil, fmt.Errorf("trust: registry is not well-formed JSON: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f registryFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("trust: registry: %w", err)
	}
	if f.EHRs == nil {
		return nil, errors.New(`trust: registry has no "ehrs" array`)
	}
	s := &Snapshot{byIssuer: make(map[string]*EHR, len(f.EHRs)), hash: sha256.Sum256(data)}
	for i := range f.EHRs {
		e := f.EHRs[i]
		if err := e.normalize(); err != nil {
			return nil, fmt.Errorf("trust: ehrs[%d]: %w", i, err)
		}
		if _, dup := s.byIssuer[e.Issuer]; dup {
			return nil, fmt.Errorf("trust: ehrs[%d]: issuer %s listed twice", i, e.Issuer)
		}
		s.byIssuer[e.Issuer] = &e
	}
	return s, nil
}

// normalize checks one entry, fills fhir_base, and computes its fingerprint.
func (e *EHR) normalize() error {
	if err := checkURL("issuer", e.Issuer, true); err != nil {
		return err
	}
	if e.FHIRBase == "" {
		e.FHIRBase = e.Issuer
	}
	for _, u := range []struct{ name, v string }{
		{"fhir_base", e.FHIRBase}, {"jwks_uri", e.JWKSURI},
		{"introspection_endpoint", e.IntrospectionEndpoint}, {"token_endpoint", e.TokenEndpoint},
	} {
		if u.v != "" {
			if err := checkURL(u.name, u.v, false); err != nil {
				return err
			}
		}
	}
	switch e.Mode {
	case ModeJWKS:
	case ModeIntrospection:
		if e.ClientID == "" {
			return errors.New("introspection mode needs client_id (the payer's client at that EHR)")
		}
		switch e.ClientAuth {
		case AuthClientSecretBasic:
			if e.ClientSecret == "" {
				return errors.New("client_secret_basic needs client_secret")
			}
		case AuthPrivateKeyJWT:
			if e.ClientSecret != "" {
				return errors.New("private_key_jwt takes no client_secret")
			}
		default:
			return fmt.Errorf("client_auth %q: want %s or %s", e.ClientAuth, AuthClientSecretBasic, AuthPrivateKeyJWT)
		}
	default:
		return fmt.Errorf("mode %q: want %s or %s", e.Mode, ModeJWKS, ModeIntrospection)
	}
	b, _ := json.Marshal(e)
	sum := sha256.Sum256(b)
	e.fingerprint = hex.EncodeToString(sum[:])
	return nil
}

// checkURL accepts an absolute http(s) URL with a host, no user info, no
// fragment; an issuer also takes no query (it is compared as a string).
func checkURL(name, v string, issuer bool) error {
	u, err := url.Parse(v)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return fmt.Errorf("%s %q: want an absolute http(s) URL", name, v)
	case u.User != nil:
		return fmt.Errorf("%s must not carry user info", name)
	case u.Fragment != "" || strings.Contains(v, "#"):
		return fmt.Errorf("%s must not have a fragment", name)
	case issuer && u.RawQuery != "":
		return fmt.Errorf("%s must not have a query", name)
	}
	return nil
}

// Registry holds the current snapshot; readers never block.
type Registry struct {
	cur atomic.Pointer[Snapshot]
}

// NewRegistry starts with s.
func NewRegistry(s *Snapshot) *Registry {
	r := &Registry{}
	r.cur.Store(s)
	return r
}

// Snapshot is the registry now.
func (r *Registry) Snapshot() *Snapshot { return r.cur.Load() }

// Replace swaps in s.
func (r *Registry) Replace(s *Snapshot) { r.cur.Store(s) }

// Lookup returns the trusted EHR with issuer, exactly.
func (r *Registry) Lookup(issuer string) (*EHR, bool) {
	e, ok := r.cur.Load().byIssuer[issuer]
	return e, ok
}

// Trusted reports whether issuer is listed.
func (r *Registry) Trusted(issuer string) bool {
	_, ok := r.Lookup(issuer)
	return ok
}

// FHIRBase is the FHIR base of the trusted EHR issuer.
func (r *Registry) FHIRBase(issuer string) (string, bool) {
	e, ok := r.Lookup(issuer)
	if !ok {
		return "", false
	}
	return e.FHIRBase, true
}

// introspectionEHRs lists the EHRs in introspection mode.
func (r *Registry) introspectionEHRs() []*EHR {
	var out []*EHR
	for _, e := range r.cur.Load().byIssuer {
		if e.Mode == ModeIntrospection {
			out = append(out, e)
		}
	}
	return out
}
