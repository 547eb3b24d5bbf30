package jwks

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// RemoteOptions tune a Remote. Zero fields take the defaults noted.
type RemoteOptions struct {
	// DefaultTTL: how long a set is fresh when the answer has no max-age (5m).
	DefaultTTL time.Duration
	// MaxTTL bounds any max-age (1h), so a rotated-out key leaves in time.
	MaxTTL time.Duration
	// MinRefetch: a set is never fetched again sooner than this (1m). It is
	// both the floor of the cache lifetime (no-store, no-cache, max-age=0)
	// and the limit on refetches that an unknown kid may trigger.
	MinRefetch time.Duration
	// MaxBody: the largest JWK Set accepted (64 KiB).
	MaxBody int64
	// ErrorBackoff: after a failed fetch with no usable cached set, further
	// callers get the same error for this long instead of a new fetch (5s).
	ErrorBackoff time.Duration
	// FetchTimeout bounds one fetch (10s). A fetch is shared by every caller
	// waiting for it, so it does not run under any one caller's context.
	FetchTimeout time.Duration
	// MaxEntries bounds the number of cached URIs (1000).
	MaxEntries int
	// AllowHTTP permits plain-http URIs on non-loopback hosts. Only for a
	// sandbox run with SANDBOX_TLS=off across hosts; loopback http is always
	// allowed.
	AllowHTTP bool
	// Now is the clock (time.Now).
	Now func() time.Time
}

func (o *RemoteOptions) defaults() {
	if o.DefaultTTL <= 0 {
		o.DefaultTTL = 5 * time.Minute
	}
	if o.MaxTTL <= 0 {
		o.MaxTTL = time.Hour
	}
	if o.MinRefetch <= 0 {
		o.MinRefetch = time.Minute
	}
	if o.MaxBody <= 0 {
		o.MaxBody = MaxSetBytes
	}
	if o.ErrorBackoff <= 0 {
		o.ErrorBackoff = 5 * time.Second
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = 10 * time.Second
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 1000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.DefaultTTL < o.MinRefetch {
		o.DefaultTTL = o.MinRefetch
	}
	if o.MaxTTL < o.DefaultTTL {
		o.MaxTTL = o.DefaultTTL
	}
}

// Remote fetches JWK Sets by URI and caches them per URI. It is safe for
// concurrent use; callers waiting for the same URI share one fetch.
type Remote struct {
	client *http.Client
	opts   RemoteOptions

	mu      sync.Mutex
	entries map[string]*remoteEntry
}

type remoteEntry struct {
	set       *jose.JSONWebKeySet // last good set, nil if none yet
	freshTill time.Time           // set usable until then
	attempt   time.Time           // start of the last fetch attempt
	lastErr   error               // result of the last attempt, nil if it succeeded
	inflight  *fetchCall
}

type fetchCall struct {
	done chan struct{}
	set  *jose.JSONWebKeySet
	err  error
}

// NewRemote makes a cache that fetches with client (http.DefaultClient when
// nil). Redirects are followed at most 3 times and never to a URI the cache
// would not fetch directly.
func NewRemote(client *http.Client, opts RemoteOptions) *Remote {
	opts.defaults()
	if client == nil {
		client = http.DefaultClient
	}
	c := *client
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 3 {
			return errors.New("too many redirects")
		}
		return checkURI(req.URL, opts.AllowHTTP)
	}
	return &Remote{client: &c, opts: opts, entries: map[string]*remoteEntry{}}
}

// Key returns the key with kid for alg from the set at jwksURI (see FindKey).
// A kid missing from a cached set triggers one refetch, at most once per
// MinRefetch per URI, so a client that has just rotated its key is seen
// without letting junk kids hammer its server.
func (r *Remote) Key(ctx context.Context, jwksURI, kid, alg string) (crypto.PublicKey, error) {
	set, err := r.Set(ctx, jwksURI)
	if err != nil {
		return nil, err
	}
	key, err := FindKey(set, kid, alg)
	if err == nil || !errors.Is(err, ErrKeyNotFound) {
		return key, err
	}
	set, refetched, ferr := r.get(ctx, jwksURI, true)
	if ferr != nil {
		return nil, fmt.Errorf("%w (refetch failed: %v)", err, ferr)
	}
	if !refetched {
		return nil, err
	}
	return FindKey(set, kid, alg)
}

// Set returns the JWK Set at jwksURI, from the cache while it is fresh.
func (r *Remote) Set(ctx context.Context, jwksURI string) (*jose.JSONWebKeySet, error) {
	set, _, err := r.get(ctx, jwksURI, false)
	return set, err
}

// get returns the set for uri. With force, it refetches even a fresh set
// unless the last attempt is younger than MinRefetch. refetched reports
// whether the set returned comes from a fetch made for this call (or one it
// joined).
func (r *Remote) get(ctx context.Context, uri string, force bool) (set *jose.JSONWebKeySet, refetched bool, err error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, false, fmt.Errorf("jwks: bad jwks_uri: %w", err)
	}
	if err := checkURI(u, r.opts.AllowHTTP); err != nil {
		return nil, false, err
	}
	now := r.opts.Now()

	r.mu.Lock()
	e := r.entries[uri]
	if e == nil {
		r.evictLocked(now)
		e = &remoteEntry{}
		r.entries[uri] = e
	}
	fresh := e.set != nil && now.Before(e.freshTill)
	switch {
	case e.inflight != nil:
		// join the fetch already running
	case fresh && !force:
		set := e.set
		r.mu.Unlock()
		return set, false, nil
	case fresh && force && now.Sub(e.attempt) < r.opts.MinRefetch:
		set := e.set
		r.mu.Unlock()
		return set, false, nil
	case !fresh && e.lastErr != nil && now.Sub(e.attempt) < r.opts.ErrorBackoff:
		err := e.lastErr
		r.mu.Unlock()
		return nil, false, err
	default:
		e.attempt = now
		e.inflight = &fetchCall{done: make(chan struct{})}
		go r.fetch(uri, e, e.inflight)
	}
	call := e.inflight
	r.mu.Unlock()

	select {
	case <-call.done:
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	if call.err == nil {
		return call.set, true, nil
	}
	// A failed fetch does not spoil a set that is still fresh.
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.set != nil && r.opts.Now().Before(e.freshTill) {
		return e.set, false, nil
	}
	return nil, false, call.err
}

// fetch runs one GET for every caller waiting on call and stores the result.
func (r *Remote) fetch(uri string, e *remoteEntry, call *fetchCall) {
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.FetchTimeout)
	defer cancel()
	set, ttl, err := r.download(ctx, uri)

	r.mu.Lock()
	if err == nil {
		e.set = set
		e.freshTill = r.opts.Now().Add(ttl)
		e.lastErr = nil
	} else {
		e.lastErr = err
	}
	e.inflight = nil
	call.set, call.err = set, err
	r.mu.Unlock()
	close(call.done)
}

func (r *Remote) download(ctx context.Context, uri string) (*jose.JSONWebKeySet, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("jwks: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("jwks: fetch %s: %w", uri, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		return nil, 0, fmt.Errorf("jwks: fetch %s: status %d", uri, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, r.opts.MaxBody+1))
	if err != nil {
		return nil, 0, fmt.Errorf("jwks: read %s: %w", uri, err)
	}
	if int64(len(body)) > r.opts.MaxBody {
		return nil, 0, fmt.Errorf("jwks: %s: body larger than %d bytes", uri, r.opts.MaxBody)
	}
	set, err := ParsePublicSet(body)
	if err != nil {
		return nil, 0, fmt.Errorf("jwks: %s: %w", uri, err)
	}
	return set, r.ttl(resp.Header), nil
}

// ttl derives the cache lifetime from Cache-Control (RFC 9111 §5.2.2) minus
// Age (§5.1): max-age bounded to [MinRefetch, MaxTTL]; no-store or no-cache
// give MinRefetch; no directive gives DefaultTTL.
func (r *Remote) ttl(h http.Header) time.Duration {
	ttl := r.opts.DefaultTTL
	for _, line := range h.Values("Cache-Control") {
		for _, d := range strings.Split(line, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return r.opts.MinRefetch
			case "max-age":
				n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64)
				if err != nil || n < 0 {
					continue
				}
				if n > int64(r.opts.MaxTTL/time.Second) {
					n = int64(r.opts.MaxTTL / time.Second)
				}
				ttl = time.Duration(n) * time.Second
				if age, err := strconv.ParseInt(h.Get("Age"), 10, 64); err == nil && age > 0 {
					ttl -= time.Duration(age) * time.Second
				}
			}
		}
	}
	if ttl < r.opts.MinRefetch {
		ttl = r.opts.MinRefetch
	}
	if ttl > r.opts.MaxTTL {
		ttl = r.opts.MaxTTL
	}
	return ttl
}

// evictLocked makes room for one more entry: stale idle entries go first,
// then, if still full, any idle one.
func (r *Remote) evictLocked(now time.Time) {
	if len(r.entries) < r.opts.MaxEntries {
		return
	}
	for uri, e := range r.entries {
		if e.inflight == nil && !now.Before(e.freshTill) {
			delete(r.entries, uri)
		}
	}
	for uri, e := range r.entries {
		if len(r.entries) < r.opts.MaxEntries {
			return
		}
		if e.inflight == nil {
			delete(r.entries, uri)
		}
	}
}

// checkURI allows https, and http only to a loopback host (or anywhere with
// allowHTTP). No user info: credentials do not belong in a jwks_uri.
func checkURI(u *url.URL, allowHTTP bool) error {
	if u.User != nil {
		return errors.New("jwks: jwks_uri must not carry user info")
	}
	if u.Host == "" {
		return errors.New("jwks: jwks_uri has no host")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if allowHTTP || IsLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("jwks: jwks_uri %q must use https", u.Redacted())
	default:
		return fmt.Errorf("jwks: jwks_uri scheme %q not allowed", u.Scheme)
	}
}

// IsLoopback reports whether host is "localhost" or a loopback IP address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
