package authz

import (
	"log/slog"

	"github.com/gin-gonic/gin"

	"dtrsandbox/payer/internal/audit"
	"dtrsandbox/shared/oautherr"
)

// outcomeFor maps an HTTP status to an AuditEvent outcome: the caller's
// fault is a minor failure, the server's a serious one.
func outcomeFor(status int) string {
	switch {
	case status < 400:
		return audit.OutcomeSuccess
	case status < 500:
		return audit.OutcomeMinorFailure
	default:
		return audit.OutcomeSeriousFail
	}
}

// record writes ev (never a token) when an audit recorder is configured.
// A failure to audit a refusal is logged; a failure to audit a success is
// logged too, since the token or client already exists.
func (s *Server) record(c *gin.Context, ev audit.Event) {
	if s.cfg.Audit == nil {
		return
	}
	ev.Time = s.cfg.Now().UTC()
	ev.SourceIP = c.ClientIP()
	if err := s.cfg.Audit.Record(c.Request.Context(), nil, ev); err != nil {
		s.cfg.Logger.Error("audit write failed", "interaction", ev.Interaction, "err", err)
	}
}

// logError logs an OAuth error with its cause: server errors at error
// level, refusals at info.
func (s *Server) logError(c *gin.Context, msg string, e *oautherr.Error) {
	level := slog.LevelInfo
	if e.Status >= 500 {
		level = slog.LevelError
	}
	attrs := []any{"path", c.Request.URL.Path, "status", e.Status, "error", e.Code, "hint", e.Description}
	if e.Cause != nil {
		attrs = append(attrs, "cause", e.Cause.Error())
	}
	s.cfg.Logger.Log(c.Request.Context(), level, msg, attrs...)
}
