// Package httpclient builds the outbound HTTP client of every service: it
// trusts the sandbox CA (and the system roots), has timeouts, and can send a
// request for a public URL to an internal address instead (docker-compose,
// where "https://localhost:8441" from a browser is "https://ehr:8441" from
// another container) without changing what tokens and issuers say.
package httpclient

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"strings"
	"time"

	"dtrsandbox/shared/localtls"
)

// Config of an outbound client.
type Config struct {
	CAFile   string            // sandbox CA to trust; empty: system roots only
	Rewrites map[string]string // public base URL → internal base URL
	Timeout  time.Duration     // whole-request timeout, default 10s
}

// New returns a client per cfg.
func New(cfg Config) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pool, err := localtls.RootPool(cfg.CAFile)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	tr.MaxIdleConnsPerHost = 32
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	var rt http.RoundTripper = tr
	if len(cfg.Rewrites) > 0 {
		rt = &rewriter{next: tr, rewrites: cfg.Rewrites}
	}
	return &http.Client{
		Transport: rt,
		Timeout:   timeout,
		// Never follow a redirect to another origin with our credentials.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 || req.URL.Host != via[0].URL.Host {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}, nil
}

type rewriter struct {
	next     http.RoundTripper
	rewrites map[string]string
}

// RoundTrip sends a request whose URL starts with a public base to the
// matching internal base. The TLS server name becomes the internal host,
// which the sandbox leaf certificates carry as a SAN.
func (r *rewriter) RoundTrip(req *http.Request) (*http.Response, error) {
	u := req.URL.String()
	for pub, internal := range r.rewrites {
		if u == pub || strings.HasPrefix(u, pub+"/") || strings.HasPrefix(u, pub+"?") {
			nu, err := url.Parse(internal + strings.TrimPrefix(u, pub))
			if err != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.URL = nu
			req.Host = ""
			break
		}
	}
	return r.next.RoundTrip(req)
}
