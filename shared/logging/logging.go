// Package logging builds the JSON slog logger every service writes with.
package logging

import (
	"io"
	"log/slog"
	"strings"
)

// New returns a JSON logger that tags every record with the service name.
func New(w io.Writer, service, level string) *slog.Logger {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "warn":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		lv = slog.LevelInfo
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lv})
	return slog.New(h).With("service", service)
}

// Discard is a logger that writes nothing (for benchmarks).
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
