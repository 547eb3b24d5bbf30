package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"
)

// maxBody caps what the demo reads of any answer.
const maxBody = 4 << 20

// browser is one user agent: a cookie jar and redirects followed by hand,
// so each hop can be checked (and a hop to an app that does not exist, the
// attacker's redirect URI, is caught instead of requested).
type browser struct {
	client *http.Client
	jar    *cookiejar.Jar
}

func newBrowser(rt http.RoundTripper, timeout time.Duration) *browser {
	jar, _ := cookiejar.New(nil) // never fails without options
	return &browser{
		jar: jar,
		client: &http.Client{
			Transport:     rt,
			Jar:           jar,
			Timeout:       timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// page is where a navigation ended.
type page struct {
	URL     *url.URL // the last URL requested, or the one stopped at
	Status  int      // 0 when stopped before requesting URL
	Header  http.Header
	Body    []byte
	Chain   []*url.URL // every URL requested, in order
	Stopped bool       // stop(URL) was true: URL was not requested
}

// navigate sends req and follows redirects (at most 20) like a browser:
// 301/302/303 become GET, 307/308 keep the method and body. Before each
// hop, stop may end the navigation without requesting that URL.
func (b *browser) navigate(req *http.Request, stop func(*url.URL) bool) (*page, error) {
	p := &page{}
	var body []byte
	if req.GetBody != nil {
		rc, _ := req.GetBody()
		body, _ = io.ReadAll(rc)
	}
	for hop := 0; ; hop++ {
		if hop > 20 {
			return p, fmt.Errorf("more than 20 redirects; chain: %s", chain(p.Chain))
		}
		if stop != nil && stop(req.URL) {
			p.URL, p.Stopped = req.URL, true
			return p, nil
		}
		p.Chain = append(p.Chain, req.URL)
		resp, err := b.client.Do(req)
		if err != nil {
			return p, err
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		if err != nil {
			return p, err
		}
		p.URL, p.Status, p.Header, p.Body = req.URL, resp.StatusCode, resp.Header, data
		loc := resp.Header.Get("Location")
		if resp.StatusCode < 300 || resp.StatusCode > 399 || loc == "" {
			return p, nil
		}
		next, err := req.URL.Parse(loc)
		if err != nil {
			return p, fmt.Errorf("bad Location %q from %s: %w", loc, req.URL, err)
		}
		method, nbody := http.MethodGet, []byte(nil)
		if resp.StatusCode == http.StatusTemporaryRedirect || resp.StatusCode == http.StatusPermanentRedirect {
			method, nbody = req.Method, body
		}
		nreq, err := http.NewRequestWithContext(req.Context(), method, next.String(), bytes.NewReader(nbody))
		if err != nil {
			return p, err
		}
		if nbody != nil {
			nreq.Header.Set("Content-Type", req.Header.Get("Content-Type"))
		}
		req, body = nreq, nbody
	}
}

// chain renders a redirect chain compactly: "host/path -> host/path".
func chain(urls []*url.URL) string {
	parts := make([]string, len(urls))
	for i, u := range urls {
		parts[i] = u.Host + u.Path
	}
	return strings.Join(parts, " -> ")
}

// call is one JSON (or form) request with its answer.
type call struct {
	Status int
	Header http.Header
	Body   []byte
}

// do sends method url with the headers and body (a []byte, url.Values for a
// form, or any other value as JSON) and reads the answer.
func do(ctx context.Context, c *http.Client, method, u string, hdr map[string]string, body any) (*call, error) {
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case []byte:
		rd, ctype = bytes.NewReader(b), "application/json"
	case url.Values:
		rd, ctype = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd, ctype = bytes.NewReader(data), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json, application/fhir+json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	return &call{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// expect checks the status and decodes the body into out (if not nil).
func (c *call) expect(what string, out any, status ...int) error {
	ok := false
	for _, s := range status {
		if c.Status == s {
			ok = true
		}
	}
	if !ok {
		return fmt.Errorf("%s: HTTP %d, want %v: %s", what, c.Status, status, oneLine(string(clipBytes(c.Body, 300))))
	}
	if out != nil {
		if err := json.Unmarshal(c.Body, out); err != nil {
			return fmt.Errorf("%s: answer is not the expected JSON: %v: %s", what, err, oneLine(string(clipBytes(c.Body, 200))))
		}
	}
	return nil
}

func bearer(tok string) string { return "Bearer " + tok }
