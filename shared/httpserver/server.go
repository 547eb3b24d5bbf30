// Package httpserver runs a service's HTTP(S) listener with the timeouts
// and limits every service needs, and shuts it down gracefully: on context
// cancellation it stops accepting, lets in-flight requests (and their
// database writes) finish within ShutdownTimeout, then returns.
package httpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Config of one listener.
type Config struct {
	Addr            string // listen address, e.g. ":8441"
	Handler         http.Handler
	TLS             *tls.Config // nil: plain HTTP (SANDBOX_TLS=off)
	Logger          *slog.Logger
	ShutdownTimeout time.Duration // default 15s
	// Ready, if set, is called with the bound address once listening.
	Ready func(net.Addr)
}

// Limits applied to every server.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 60 * time.Second
	IdleTimeout       = 120 * time.Second
	MaxHeaderBytes    = 32 << 10 // 32 KiB: tokens are far smaller
)

// Run listens on cfg.Addr and serves until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	return Serve(ctx, ln, cfg)
}

// Serve is Run on an existing listener.
func Serve(ctx context.Context, ln net.Listener, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	srv := &http.Server{
		Handler:           cfg.Handler,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if cfg.TLS != nil {
		srv.TLSConfig = cfg.TLS
		ln = tls.NewListener(ln, cfg.TLS)
	}
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr())
	}
	log.Info("listening", "addr", ln.Addr().String(), "tls", cfg.TLS != nil)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	timeout := cfg.ShutdownTimeout
	if timeout == 0 {
		timeout = 15 * time.Second
	}
	log.Info("shutting down", "grace", timeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	<-errc
	return nil
}
