// Command smartapp runs the SMART DTR app and its vendor signer
// (CONTRACT.md, "SMART app"): configuration from SMARTAPP_* and SANDBOX_*
// variables, the ES384 signing key on disk, TLS from the sandbox CA.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"dtrsandbox/shared/config"
	"dtrsandbox/shared/httpclient"
	"dtrsandbox/shared/httpserver"
	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/localtls"
	"dtrsandbox/shared/logging"
	"dtrsandbox/smartapp/internal/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "smartapp:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	st, err := server.LoadSettings(config.FromEnviron())
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	log := logging.New(os.Stderr, "smartapp", st.Common.LogLevel)

	key, err := jwks.LoadOrCreate(st.SigningKeyPath, jwks.ES384)
	if err != nil {
		return err
	}
	tlsm, err := localtls.ForService(st.Common.DataDir, "smartapp", st.Common.TLS)
	if err != nil {
		return err
	}
	hc, err := httpclient.New(httpclient.Config{CAFile: tlsm.CAFile, Rewrites: st.Common.InternalURLs})
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, server.Config{
		PublicURL:     st.PublicURL,
		EHRs:          st.EHRs,
		PayerURL:      st.PayerURL,
		PayerClientID: st.PayerClientID,
		SigningKey:    key,
		HTTP:          hc,
		SecureCookies: st.Common.TLS,
		AllowHTTPKeys: !st.Common.TLS,
		Logger:        log,
	})
	if err != nil {
		return err
	}
	log.Info("smartapp configured", "public_url", st.PublicURL, "payer", st.PayerURL, "ehrs", len(st.EHRs), "kid", key.KID)
	return httpserver.Run(ctx, httpserver.Config{Addr: st.Addr, Handler: srv.Handler(), TLS: tlsm.Server, Logger: log})
}
