package audit

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"dtrsandbox/payer/internal/access"
	"dtrsandbox/shared/fhir"

	"github.com/gin-gonic/gin"
)

// AdminPrincipal is the ClientID written in AuditEvents for requests made
// with the admin token (the audit search and the console).
const AdminPrincipal = "admin"

// adminTokenBytes is the admin token's entropy: 256 bits.
const adminTokenBytes = 32

// LoadOrCreateAdminToken returns the admin token stored at path, creating
// it (256 random bits, base64url, file mode 0600 in a 0700 directory) when
// the file does not exist. A file readable by others is tightened to 0600.
// A token shorter than 32 characters is refused: a hand-written weak token
// must be replaced, not used.
func LoadOrCreateAdminToken(path string) (string, error) {
	if path == "" {
		return "", errors.New("audit: no admin token path")
	}
	tok, err := readAdminToken(path)
	if err == nil {
		return tok, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("audit: admin token directory: %w", err)
	}
	var b [adminTokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("audit: admin token: %w", err)
	}
	tok = base64.RawURLEncoding.EncodeToString(b[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return readAdminToken(path) // another process created it first
	}
	if err != nil {
		return "", fmt.Errorf("audit: create admin token: %w", err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("audit: write admin token: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("audit: write admin token: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("audit: write admin token: %w", err)
	}
	return tok, nil
}

func readAdminToken(path string) (string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if info.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return "", fmt.Errorf("audit: admin token %s is readable by others and cannot be fixed: %w", path, err)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("audit: read admin token: %w", err)
	}
	tok := strings.TrimSpace(string(raw))
	if len(tok) < 32 {
		return "", fmt.Errorf("audit: admin token in %s is shorter than 32 characters; delete the file to generate a new one", path)
	}
	return tok, nil
}

// TokenEqual compares a presented token with the admin token in constant
// time (over SHA-256 digests, so the length does not leak either). An empty
// admin token matches nothing.
func TokenEqual(presented, admin string) bool {
	if admin == "" {
		return false
	}
	a := sha256.Sum256([]byte(presented))
	b := sha256.Sum256([]byte(admin))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// AdminOption configures AdminOnly.
type AdminOption func(*adminConfig)

type adminConfig struct {
	rec    Recorder
	logger *slog.Logger
}

// WithDenialAudit makes AdminOnly record each refused request as an
// AuditEvent (outcome 4, reason "admin token missing" or "admin token
// invalid") with rec. A failure to record is logged; the answer stays 401.
func WithDenialAudit(rec Recorder, logger *slog.Logger) AdminOption {
	return func(c *adminConfig) { c.rec, c.logger = rec, logger }
}

// AdminOnly lets a request through only with "Authorization: Bearer
// <token>" (RFC 6750 §2.1) carrying the admin token, compared in constant
// time. Otherwise it answers 401 with an OperationOutcome and
// WWW-Authenticate: Bearer (RFC 6750 §3; error="invalid_token" when a
// token was sent) and stops the chain. An empty token refuses everything.
// On success the request context carries an access.Principal with
// ClientID AdminPrincipal.
func AdminOnly(token string, opts ...AdminOption) gin.HandlerFunc {
	var cfg adminConfig
	for _, o := range opts {
		o(&cfg)
	}
	return func(c *gin.Context) {
		presented, found := bearer(c.GetHeader("Authorization"))
		if found && TokenEqual(presented, token) {
			c.Request = c.Request.WithContext(access.With(c.Request.Context(), &access.Principal{ClientID: AdminPrincipal}))
			c.Next()
			return
		}
		reason, challenge := "admin token missing", `Bearer realm="payer-admin"`
		if found {
			reason, challenge = "admin token invalid", `Bearer realm="payer-admin", error="invalid_token"`
		}
		if cfg.rec != nil {
			err := cfg.rec.Record(c.Request.Context(), nil, Event{
				Time: time.Now(), Action: "R", Interaction: "search-type", ResourceType: "AuditEvent",
				Outcome: OutcomeMinorFailure, Reason: reason, Status: http.StatusUnauthorized,
				SourceIP: c.RemoteIP(),
			})
			if err != nil && cfg.logger != nil {
				cfg.logger.Error("audit: record admin denial", "err", err)
			}
		}
		c.Header("WWW-Authenticate", challenge)
		fhir.WriteOutcome(c.Writer, http.StatusUnauthorized, fhir.IssueLogin, "this endpoint needs the admin token as a Bearer token")
		c.Abort()
	}
}

// bearer extracts the token of an RFC 6750 Authorization header (the
// scheme is case-insensitive, RFC 7235 §2.1).
func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
