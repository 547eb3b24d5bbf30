// Package config reads service configuration from environment variables,
// each with a documented default, and collects every problem so a service
// reports all of them at once instead of failing on the first.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Lookup is os.LookupEnv's shape; tests pass a map-backed one.
type Lookup func(key string) (string, bool)

// Env reads variables through a Lookup and accumulates errors.
type Env struct {
	lookup Lookup
	errs   []error
}

// FromEnviron reads the process environment.
func FromEnviron() *Env { return New(os.LookupEnv) }

// New reads through lookup.
func New(lookup Lookup) *Env { return &Env{lookup: lookup} }

// FromMap is a Lookup over a map (for tests).
func FromMap(m map[string]string) *Env {
	return New(func(k string) (string, bool) { v, ok := m[k]; return v, ok })
}

// String returns the variable or def when unset or empty.
func (e *Env) String(key, def string) string {
	if v, ok := e.lookup(key); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return def
}

// Bool accepts on/off, true/false, 1/0, yes/no.
func (e *Env) Bool(key string, def bool) bool {
	v := strings.ToLower(e.String(key, ""))
	switch v {
	case "":
		return def
	case "1", "true", "on", "yes":
		return true
	case "0", "false", "off", "no":
		return false
	}
	e.errs = append(e.errs, fmt.Errorf("%s=%q: want on or off", key, v))
	return def
}

// Int parses a decimal integer.
func (e *Env) Int(key string, def int) int {
	v := e.String(key, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: want an integer", key, v))
		return def
	}
	return n
}

// Duration parses a Go duration ("90s", "5m").
func (e *Env) Duration(key string, def time.Duration) time.Duration {
	v := e.String(key, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: want a duration such as 30s", key, v))
		return def
	}
	return d
}

// URL parses an absolute http(s) URL and strips a trailing slash.
func (e *Env) URL(key, def string) string {
	v := strings.TrimRight(e.String(key, def), "/")
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: want an absolute http(s) URL", key, v))
		return strings.TrimRight(def, "/")
	}
	return v
}

// Fail records a problem found by the caller.
func (e *Env) Fail(err error) { e.errs = append(e.errs, err) }

// Err is every problem found so far, joined; nil when none.
func (e *Env) Err() error { return errors.Join(e.errs...) }

// Common is the configuration every service shares.
type Common struct {
	DataDir string // SANDBOX_DATA_DIR, default <repo root>/.sandbox
	TLS     bool   // SANDBOX_TLS, default on
	// InternalURLs maps a public base URL to the address a server-side
	// caller should use instead (SANDBOX_INTERNAL_URLS, "public=internal,...").
	// Empty outside docker-compose.
	InternalURLs map[string]string
	LogLevel     string // SANDBOX_LOG_LEVEL: debug, info (default), warn, error
}

// LoadCommon reads the SANDBOX_* variables.
func (e *Env) LoadCommon() Common {
	c := Common{
		DataDir:  e.String("SANDBOX_DATA_DIR", ""),
		TLS:      e.Bool("SANDBOX_TLS", true),
		LogLevel: e.String("SANDBOX_LOG_LEVEL", "info"),
	}
	if c.DataDir == "" {
		c.DataDir = filepath.Join(RepoRoot(), ".sandbox")
	}
	if abs, err := filepath.Abs(c.DataDir); err == nil {
		c.DataDir = abs
	}
	c.InternalURLs = map[string]string{}
	if raw := e.String("SANDBOX_INTERNAL_URLS", ""); raw != "" {
		for _, pair := range strings.Split(raw, ",") {
			pub, internal, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if !ok || pub == "" || internal == "" {
				e.errs = append(e.errs, fmt.Errorf("SANDBOX_INTERNAL_URLS: %q is not public=internal", pair))
				continue
			}
			c.InternalURLs[strings.TrimRight(pub, "/")] = strings.TrimRight(internal, "/")
		}
	}
	return c
}

// Scheme is "https" with TLS on, else "http".
func (c Common) Scheme() string {
	if c.TLS {
		return "https"
	}
	return "http"
}

// RepoRoot walks up from the working directory to the folder holding
// go.work; it falls back to the working directory (e.g. in a container).
func RepoRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return wd
		}
		dir = parent
	}
}
