package trust

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"dtrsandbox/shared/smart"
)

// endpoints are the URLs the payer needs from one EHR.
type endpoints struct {
	JWKSURI       string
	Introspection string
	Token         string
}

// MaxDiscoveryBody bounds an EHR's smart-configuration answer.
const MaxDiscoveryBody = 64 << 10

// discoverer fills in the endpoint URLs an EHR entry leaves out from that
// EHR's SMART discovery document ({fhir_base}/.well-known/smart-configuration,
// SMART App Launch 2.2 "Conformance"), cached per EHR configuration for
// ttl; a failed fetch is remembered for backoff so a down EHR is not
// hammered.
type discoverer struct {
	client  *http.Client
	ttl     time.Duration
	backoff time.Duration
	now     func() time.Time

	mu      sync.Mutex
	entries map[string]*discoveryEntry // by EHR fingerprint
}

type discoveryEntry struct {
	mu      sync.Mutex
	doc     *smart.Configuration
	until   time.Time
	failed  time.Time
	lastErr error
}

// resolve returns e's endpoints, taking each one from the registry entry
// when given there and from discovery otherwise. need* say which ones the
// caller needs; discovery is fetched only when one of those is missing.
func (d *discoverer) resolve(ctx context.Context, e *EHR, needJWKS, needIntrospection, needToken bool) (endpoints, error) {
	ep := endpoints{JWKSURI: e.JWKSURI, Introspection: e.IntrospectionEndpoint, Token: e.TokenEndpoint}
	if (!needJWKS || ep.JWKSURI != "") && (!needIntrospection || ep.Introspection != "") && (!needToken || ep.Token != "") {
		return ep, nil
	}
	doc, err := d.document(ctx, e)
	if err != nil {
		return ep, err
	}
	if ep.JWKSURI == "" {
		ep.JWKSURI = doc.JWKSURI
	}
	if ep.Introspection == "" {
		ep.Introspection = doc.IntrospectionEndpoint
	}
	if ep.Token == "" {
		ep.Token = doc.TokenEndpoint
	}
	switch {
	case needJWKS && ep.JWKSURI == "":
		return ep, fmt.Errorf("trust: %s publishes no jwks_uri", e.Issuer)
	case needIntrospection && ep.Introspection == "":
		return ep, fmt.Errorf("trust: %s publishes no introspection_endpoint", e.Issuer)
	case needToken && ep.Token == "":
		return ep, fmt.Errorf("trust: %s publishes no token_endpoint", e.Issuer)
	}
	return ep, nil
}

func (d *discoverer) document(ctx context.Context, e *EHR) (*smart.Configuration, error) {
	d.mu.Lock()
	if d.entries == nil {
		d.entries = map[string]*discoveryEntry{}
	}
	ent, ok := d.entries[e.fingerprint]
	if !ok {
		if len(d.entries) > 1000 {
			clear(d.entries)
		}
		ent = &discoveryEntry{}
		d.entries[e.fingerprint] = ent
	}
	d.mu.Unlock()

	ent.mu.Lock() // one fetch per EHR at a time; others wait for its answer
	defer ent.mu.Unlock()
	now := d.now()
	if ent.doc != nil && now.Before(ent.until) {
		return ent.doc, nil
	}
	if ent.lastErr != nil && now.Sub(ent.failed) < d.backoff {
		if ent.doc != nil { // stale but usable while the EHR is unreachable
			return ent.doc, nil
		}
		return nil, ent.lastErr
	}
	doc, err := d.fetch(ctx, e)
	if err != nil {
		ent.lastErr, ent.failed = err, now
		if ent.doc != nil {
			return ent.doc, nil
		}
		return nil, err
	}
	ent.doc, ent.until, ent.lastErr = doc, now.Add(d.ttl), nil
	return doc, nil
}

func (d *discoverer) fetch(ctx context.Context, e *EHR) (*smart.Configuration, error) {
	uri := e.FHIRBase + "/.well-known/smart-configuration"
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, fmt.Errorf("trust: discovery of %s: %w", e.Issuer, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("trust: discovery of %s: %w", e.Issuer, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("trust: discovery of %s: status %d", e.Issuer, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxDiscoveryBody+1))
	if err != nil || len(body) > MaxDiscoveryBody {
		return nil, fmt.Errorf("trust: discovery of %s: body unreadable or over %d bytes", e.Issuer, MaxDiscoveryBody)
	}
	var doc smart.Configuration
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("trust: discovery of %s: %w", e.Issuer, err)
	}
	if doc.Issuer != "" && doc.Issuer != e.Issuer {
		return nil, fmt.Errorf("trust: discovery of %s names issuer %q", e.Issuer, doc.Issuer)
	}
	for _, u := range []struct{ name, v string }{
		{"jwks_uri", doc.JWKSURI}, {"introspection_endpoint", doc.IntrospectionEndpoint}, {"token_endpoint", doc.TokenEndpoint},
	} {
		if u.v != "" {
			if err := checkURL(u.name, u.v, false); err != nil {
				return nil, fmt.Errorf("trust: discovery of %s: %w", e.Issuer, err)
			}
		}
	}
	return &doc, nil
}
