package trust

import (
	"crypto/sha256"
	"sync"
	"time"

	"dtrsandbox/shared/smart"
)

// tokenKey is the SHA-256 of a token: the cache never holds the token.
type tokenKey [32]byte

func keyOf(raw string) tokenKey { return sha256.Sum256([]byte(raw)) }

// tokenCache keeps verified EHR tokens (jwks mode) and active
// introspection answers, each until its own deadline: never past the
// token's exp, and for introspection never past the configured TTL. An
// entry counts only while its issuer is still listed with the same
// configuration.
type tokenCache struct {
	mu      sync.RWMutex
	entries map[tokenKey]cacheEntry
	max     int
}

type cacheEntry struct {
	ac          *smart.AccessContext
	until       time.Time
	fingerprint string
}

func newTokenCache(max int) *tokenCache {
	if max <= 0 {
		max = 10000
	}
	return &tokenCache{entries: make(map[tokenKey]cacheEntry), max: max}
}

// get returns the cached context for k if it is still good at now for an
// EHR whose configuration has fingerprint fp (checked by the caller via
// lookup).
func (c *tokenCache) get(k tokenKey, now time.Time, lookup func(issuer string) (*EHR, bool)) *smart.AccessContext {
	c.mu.RLock()
	e, ok := c.entries[k]
	c.mu.RUnlock()
	if !ok {
		return nil
	}
	if !now.Before(e.until) {
		c.mu.Lock()
		if cur, ok := c.entries[k]; ok && !now.Before(cur.until) {
			delete(c.entries, k)
		}
		c.mu.Unlock()
		return nil
	}
	ehr, ok := lookup(e.ac.Issuer)
	if !ok || ehr.fingerprint != e.fingerprint {
		return nil
	}
	cp := *e.ac
	return &cp
}

func (c *tokenCache) put(k tokenKey, ac *smart.AccessContext, until time.Time, fp string, now time.Time) {
	if !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for key, e := range c.entries {
			if !now.Before(e.until) {
				delete(c.entries, key)
			}
		}
		for key := range c.entries { // still full: drop arbitrary entries
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, key)
		}
	}
	c.entries[k] = cacheEntry{ac: ac, until: until, fingerprint: fp}
}

func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// flight lets concurrent validations of the same cold token share one
// introspection call.
type flight struct {
	mu    sync.Mutex
	calls map[tokenKey]*flightCall
}

type flightCall struct {
	done chan struct{}
	ac   *smart.AccessContext
	err  error
}

// do runs fn once for every concurrent caller with key k. fn should not
// depend on any one caller's cancellation.
func (f *flight) do(k tokenKey, fn func() (*smart.AccessContext, error)) (*smart.AccessContext, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[tokenKey]*flightCall{}
	}
	c, joined := f.calls[k]
	if !joined {
		c = &flightCall{done: make(chan struct{})}
		f.calls[k] = c
	}
	f.mu.Unlock()

	if !joined {
		func() {
			defer func() {
				f.mu.Lock()
				delete(f.calls, k)
				f.mu.Unlock()
				close(c.done)
			}()
			c.ac, c.err = fn()
		}()
	}
	<-c.done
	if c.ac != nil && c.err == nil {
		cp := *c.ac
		return &cp, nil
	}
	if c.err == nil { // fn panicked in the leader
		return nil, failure(ReasonEHRUnavailable, "", nil)
	}
	return nil, c.err
}
