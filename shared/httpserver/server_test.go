package httpserver

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"dtrsandbox/shared/logging"
	"github.com/gin-gonic/gin"
)

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	var finished atomic.Bool
	started := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		finished.Store(true)
		io.WriteString(w, "done")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, Config{Handler: h, Logger: logging.Discard()}) }()

	respc := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			respc <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		respc <- string(b)
	}()
	<-started
	cancel()
	if got := <-respc; got != "done" {
		t.Fatalf("in-flight request got %q", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Fatal("handler did not finish")
	}
}

func TestMiddleware(t *testing.T) {
	e := NewEngine()
	e.Use(Recover(logging.Discard(), func(c *gin.Context) { c.String(500, "sorry") }), BodyLimit(10))
	e.GET("/panic", func(c *gin.Context) { panic("boom") })
	e.POST("/read", func(c *gin.Context) {
		if DeclaredTooLarge(c) {
			c.String(413, "declared")
			return
		}
		if _, err := io.ReadAll(c.Request.Body); IsTooLarge(err) {
			c.String(413, "read")
			return
		}
		c.String(200, "ok")
	})
	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"panic becomes page", "GET", "/panic", "", 500, "sorry"},
		{"small body", "POST", "/read", "short", 200, "ok"},
		{"declared too large", "POST", "/read", strings.Repeat("x", 11), 413, "declared"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body)))
			if rec.Code != tt.status || rec.Body.String() != tt.want {
				t.Fatalf("got %d %q", rec.Code, rec.Body.String())
			}
		})
	}
	t.Run("chunked too large", func(t *testing.T) {
		req := httptest.NewRequest("POST", "/read", io.NopCloser(strings.NewReader(strings.Repeat("x", 50))))
		req.ContentLength = -1
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != 413 || rec.Body.String() != "read" {
			t.Fatalf("got %d %q", rec.Code, rec.Body.String())
		}
	})
}
