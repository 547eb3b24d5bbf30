package httpserver

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// BodyLimit caps request bodies at n bytes. A handler that reads past the
// cap gets an *http.MaxBytesError; IsTooLarge recognises it so the handler
// can answer 413 in its own error format.
//
// Once the handlers have run, the request gets its own body back: net/http
// decides from the body whether to drain what the client is still sending
// (and whether to send 100 Continue); given the capped reader it would try
// to read up to 256 KiB of a refused upload before answering, holding the
// answer until the read timeout for a slow or stalled sender.
func BodyLimit(n int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		req := c.Request // the server's own request: handlers may swap c.Request
		orig := req.Body
		defer func() { req.Body = orig }()
		if req.ContentLength > n {
			c.Set(tooLargeKey, true)
		}
		req.Body = http.MaxBytesReader(c.Writer, req.Body, n)
		c.Next()
	}
}

const tooLargeKey = "httpserver.tooLarge"

// DeclaredTooLarge reports whether the request announced a body over the cap
// (Content-Length), so a handler can refuse before reading.
func DeclaredTooLarge(c *gin.Context) bool { return c.GetBool(tooLargeKey) }

// IsTooLarge reports whether err came from reading past the body cap.
func IsTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// HeaderLimit answers 431 Request Header Fields Too Large (RFC 6585 §5)
// to a request whose request line and header fields together exceed limit
// bytes, before any later handler acts; write renders the answer in the
// route's own format (an OperationOutcome, an OAuth error, an HTML page).
// The connection is closed after the answer.
//
// net/http enforces http.Server.MaxHeaderBytes only approximately: it lets
// the header reader take up to 4 KiB more than the cap (plus what its
// buffer holds), so a request with 32 to about 36 KiB of headers is served
// although MaxHeaderBytes is 32 KiB; only beyond that does net/http answer
// 431 itself, before any handler. Pass MaxHeaderBytes as limit to make the
// cap exact. The size is counted from the parsed request as it would be
// sent: "METHOD SP target SP proto CRLF", "Host: host CRLF" (net/http moves
// Host out of Header), and "name: value CRLF" per field.
func HeaderLimit(limit int, write func(c *gin.Context)) gin.HandlerFunc {
	return func(c *gin.Context) {
		if headerSize(c.Request) <= limit {
			c.Next()
			return
		}
		c.Header("Connection", "close")
		write(c)
		c.Abort()
	}
}

// headerSize is the approximate size in bytes of r's request line and
// header fields on the wire.
func headerSize(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4 + len(r.Host) + 8
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// AccessLog writes one JSON line per request: method, path (no query string:
// it may carry codes or tokens; a JWT pasted into the path is redacted),
// status, duration. Never headers or bodies.
func AccessLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		log.Info("request",
			"method", c.Request.Method,
			"path", ScrubPath(c.Request.URL.Path),
			"status", c.Writer.Status(),
			"duration_ms", float64(time.Since(start).Microseconds())/1000,
		)
	}
}

// Recover turns a panic into a logged error and an answer written by
// write (an OperationOutcome, an OAuth error or an HTML page, per route),
// never a stack trace to the client.
func Recover(log *slog.Logger, write func(c *gin.Context)) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("panic", "path", c.Request.URL.Path, "panic", v)
				if !c.Writer.Written() {
					write(c)
				}
				c.Abort()
			}
		}()
		c.Next()
	}
}

// Healthz answers 200 {"status":"ok"} once ready() is true, 503 before.
func Healthz(ready func() bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		if ready != nil && !ready() {
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "starting"})
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "ok"})
	}
}

// SecurityHeaders sets conservative browser headers on every answer.
func SecurityHeaders() gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		c.Next()
	}
}

// NewEngine is a gin engine in release mode with no default middleware.
func NewEngine() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	return e
}
