package server_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"dtrsandbox/ehr/internal/authz"
	"dtrsandbox/shared/localtls"
)

// dialTLS opens a raw TLS connection to the EHR, trusting the sandbox CA.
func (e *ehr) dialTLS(t *testing.T) *tls.Conn {
	t.Helper()
	pool, err := localtls.RootPool(localtls.CAPath(e.dataDir))
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(e.url)
	conn, err := tls.Dial("tcp", "127.0.0.1:"+u.Port(), &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestGracefulShutdown: stopping the EHR lets a request already in
// flight finish with its answer (and its writes) before the server exits.
func TestGracefulShutdown(t *testing.T) {
	e := startEHR(t)
	conn := e.dialTLS(t)
	br := bufio.NewReader(conn)
	body := url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.rs"}}.Encode()
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
		"Authorization: Basic %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
		authz.PathToken, strings.TrimPrefix(e.url, "https://"), basicAuth(authz.PayerClientID, payerSecret), len(body))
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	// The server says "100 Continue" when the handler starts reading the
	// body: from then on the request is in flight.
	cont, err := http.ReadResponse(br, nil)
	if err != nil || cont.StatusCode != http.StatusContinue {
		t.Fatalf("want 100 Continue, got %v %v", cont, err)
	}
	stopped := make(chan struct{})
	go func() { e.stop(); close(stopped) }()

	// Shutdown closes the listener first: wait until new connections are
	// refused, so the body certainly arrives during the shutdown.
	u, _ := url.Parse(e.url)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+u.Port())
		if err != nil {
			break
		}
		c.Close()
		select {
		case <-stopped:
			t.Fatal("the server stopped before the in-flight request finished")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if _, err := io.WriteString(conn, body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("in-flight request: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"access_token"`) {
		t.Fatalf("in-flight request: %d %s", resp.StatusCode, b)
	}
	<-stopped
}

func basicAuth(id, secret string) string {
	req, _ := http.NewRequest(http.MethodGet, "https://x/", nil)
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// TestReadHeaderTimeout: a client that opens a connection and never
// finishes its request headers (slowloris) is disconnected by the server
// (httpserver.ReadHeaderTimeout, 5 s); the test only waits for that.
func TestReadHeaderTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the server's 5 s header timeout")
	}
	e := startEHR(t)
	conn := e.dialTLS(t)
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	// A generous guard, so that a server that never times out fails the
	// test instead of hanging it.
	conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
	_, err := io.ReadAll(conn) // nil at a clean close, or a reset: both fine
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept the half-sent request open")
	}
}
