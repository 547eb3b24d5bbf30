package httpserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"dtrsandbox/shared/logging"
	"github.com/gin-gonic/gin"
)

// TestHeaderLimit: through a real Serve listener (net/http's own, inexact
// MaxHeaderBytes check included), a request whose request line and header
// fields are at the cap is served, one byte over is refused with 431 by the
// route's write func, and far over is refused by net/http before the router.
func TestHeaderLimit(t *testing.T) {
	e := NewEngine()
	e.Use(HeaderLimit(MaxHeaderBytes, func(c *gin.Context) {
		c.String(http.StatusRequestHeaderFieldsTooLarge, "refused by write")
	}))
	e.GET("/", func(c *gin.Context) { c.String(http.StatusOK, "served") })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, Config{Handler: e, Logger: logging.Discard()}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})

	// head is counted as 16 + 9 bytes: "GET / HTTP/1.1\r\n" and "Host: x\r\n".
	const head = "GET / HTTP/1.1\r\nHost: x\r\n"
	// padTo is one field that brings the counted size to exactly n bytes.
	padTo := func(n int) string {
		return "X-Pad: " + strings.Repeat("p", n-len(head)-len("X-Pad: \r\n")) + "\r\n"
	}
	// fields is count fields of size bytes each (name, ": ", value, CRLF).
	fields := func(count, size int) string {
		var b strings.Builder
		for i := range count {
			name := fmt.Sprintf("X-Pad-%03d", i)
			b.WriteString(name + ": " + strings.Repeat("p", size-len(name)-4) + "\r\n")
		}
		return b.String()
	}
	tests := []struct {
		name   string
		header string
		status int
		body   string // "" = not the handler's nor write's answer
	}{
		{"small", "", http.StatusOK, "served"},
		{"at the cap", padTo(MaxHeaderBytes), http.StatusOK, "served"},
		{"one byte over", padTo(MaxHeaderBytes + 1), http.StatusRequestHeaderFieldsTooLarge, "refused by write"},
		{"in net/http's slack", padTo(MaxHeaderBytes + 3<<10), http.StatusRequestHeaderFieldsTooLarge, "refused by write"},
		{"many small fields over", fields(35, 1000), http.StatusRequestHeaderFieldsTooLarge, "refused by write"},
		{"far over: net/http's own 431", padTo(64 << 10), http.StatusRequestHeaderFieldsTooLarge, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, closed := rawRequest(t, ln.Addr().String(), head+tt.header+"\r\n")
			if status != tt.status {
				t.Fatalf("status %d, want %d (%q)", status, tt.status, body)
			}
			switch {
			case tt.body != "" && body != tt.body:
				t.Fatalf("body %q, want %q", body, tt.body)
			case tt.body == "" && (body == "served" || body == "refused by write"):
				t.Fatalf("body %q: the router saw the request", body)
			}
			if status == http.StatusRequestHeaderFieldsTooLarge && !closed {
				t.Fatal("431 without Connection: close")
			}
		})
	}
}

// rawRequest writes req as is on a new connection and reads one answer.
func rawRequest(t *testing.T, addr, req string) (status int, body string, closed bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Close
}
