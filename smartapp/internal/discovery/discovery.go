// Package discovery fetches and caches SMART App Launch 2.2 discovery
// documents ("Conformance", {fhir base}/.well-known/smart-configuration) of
// the EHRs the app launches from and of the payer it calls as a SMART Backend
// Services client.
package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"dtrsandbox/shared/smart"
)

// WellKnownPath is appended to a FHIR base (SMART App Launch 2.2
// "Conformance", "Metadata").
const WellKnownPath = "/.well-known/smart-configuration"

// maxDocument bounds a discovery document.
const maxDocument = 256 << 10

// Config of a Cache.
type Config struct {
	HTTP *http.Client
	// TTL: how long a fetched document is reused (5 minutes).
	TTL time.Duration
	// FailureTTL: how long a failed fetch is remembered, so a dead server is
	// not hammered by every page load (5 seconds).
	FailureTTL time.Duration
	Now        func() time.Time
}

// Cache fetches discovery documents by FHIR base and keeps them for TTL.
// It is safe for concurrent use.
type Cache struct {
	cfg Config

	mu      sync.Mutex
	entries map[string]entry
}

type entry struct {
	doc     *smart.Configuration
	err     error
	expires time.Time
}

// New returns a cache.
func New(cfg Config) *Cache {
	if cfg.HTTP == nil {
		cfg.HTTP = http.DefaultClient
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 5 * time.Minute
	}
	if cfg.FailureTTL <= 0 {
		cfg.FailureTTL = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Cache{cfg: cfg, entries: map[string]entry{}}
}

// Error is a failed discovery: Hint is safe to show a user, Cause is for the log.
type Error struct {
	Base  string
	Hint  string
	Cause error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("discovery %s: %s: %v", e.Base, e.Hint, e.Cause)
	}
	return fmt.Sprintf("discovery %s: %s", e.Base, e.Hint)
}

func (e *Error) Unwrap() error { return e.Cause }

// Get returns the discovery document of the FHIR server at base, from the
// cache while it is fresh. The document must name a token_endpoint that is
// an absolute http(s) URL.
func (c *Cache) Get(ctx context.Context, base string) (*smart.Configuration, error) {
	base = strings.TrimRight(base, "/")
	now := c.cfg.Now()
	c.mu.Lock()
	if e, ok := c.entries[base]; ok && now.Before(e.expires) {
		c.mu.Unlock()
		return e.doc, e.err
	}
	c.mu.Unlock()

	doc, err := c.fetch(ctx, base)
	ttl := c.cfg.TTL
	if err != nil {
		ttl = c.cfg.FailureTTL
		if ctx.Err() != nil { // our caller gave up: do not poison the cache
			return nil, err
		}
	}
	c.mu.Lock()
	c.entries[base] = entry{doc: doc, err: err, expires: now.Add(ttl)}
	c.mu.Unlock()
	return doc, err
}

// Forget drops the cached document of base (after an endpoint failed in a
// way that suggests the document is stale).
func (c *Cache) Forget(base string) {
	c.mu.Lock()
	delete(c.entries, strings.TrimRight(base, "/"))
	c.mu.Unlock()
}

func (c *Cache) fetch(ctx context.Context, base string) (*smart.Configuration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+WellKnownPath, nil)
	if err != nil {
		return nil, &Error{Base: base, Hint: "the server address is not a valid URL", Cause: err}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.cfg.HTTP.Do(req)
	if err != nil {
		return nil, &Error{Base: base, Hint: "the server could not be reached", Cause: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		return nil, &Error{Base: base, Hint: "the discovery document could not be read", Cause: err}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &Error{Base: base, Hint: fmt.Sprintf("the discovery document answered HTTP %d", resp.StatusCode)}
	}
	if len(body) > maxDocument {
		return nil, &Error{Base: base, Hint: "the discovery document is too large"}
	}
	var doc smart.Configuration
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, &Error{Base: base, Hint: "the discovery document is not valid JSON", Cause: err}
	}
	if doc.TokenEndpoint == "" {
		return nil, &Error{Base: base, Hint: "the discovery document has no token_endpoint"}
	}
	// Of the document rules, only the absolute-URL ones matter to a
	// client: a server that omits a member the app does not use still works.
	if err := doc.Validate(); err != nil {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				var ce *smart.ConfigError
				if errors.As(e, &ce) && strings.Contains(ce.Problem, "absolute") {
					return nil, &Error{Base: base, Hint: "the discovery document has an invalid " + ce.Field, Cause: e}
				}
			}
		}
	}
	return &doc, nil
}
