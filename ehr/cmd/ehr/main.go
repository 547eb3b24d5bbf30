// Command ehr runs the mock EHR: SMART App Launch 2.2 authorization server,
// FHIR R4 API and clinician UI (CONTRACT.md, "EHR").
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"dtrsandbox/ehr/internal/server"
	"dtrsandbox/shared/config"
	"dtrsandbox/shared/httpclient"
	"dtrsandbox/shared/httpserver"
	"dtrsandbox/shared/localtls"
	"dtrsandbox/shared/logging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "ehr:", err)
		os.Exit(1)
	}
}

// settings is the EHR's environment.
type settings struct {
	common config.Common
	addr   string
	server server.Config
}

func load(env *config.Env) (settings, error) {
	common := env.LoadCommon()
	public := env.URL("EHR_PUBLIC_URL", common.Scheme()+"://localhost:8441")
	st := settings{
		common: common,
		addr:   env.String("EHR_ADDR", ":8441"),
		server: server.Config{
			PublicURL:         public,
			DataDir:           common.DataDir,
			DatabaseURL:       env.String("EHR_DATABASE_URL", ""),
			SmartAppURL:       env.URL("EHR_SMARTAPP_URL", common.Scheme()+"://localhost:8442"),
			PayerJWKSURI:      env.URL("EHR_PAYER_JWKS_URI", common.Scheme()+"://localhost:8443/.well-known/jwks.json"),
			PayerClientSecret: env.String("EHR_PAYER_CLIENT_SECRET", ""),
			AccessTokenTTL:    env.Duration("EHR_ACCESS_TOKEN_TTL", 15*time.Minute),
			TLS:               common.TLS,
		},
	}
	if st.server.AccessTokenTTL < time.Minute || st.server.AccessTokenTTL > time.Hour {
		env.Fail(errors.New("EHR_ACCESS_TOKEN_TTL must be between 1m and 1h"))
	}
	return st, env.Err()
}

func run(ctx context.Context) error {
	st, err := load(config.FromEnviron())
	if err != nil {
		return err
	}
	log := logging.New(os.Stderr, "ehr", st.common.LogLevel)
	slog.SetDefault(log)

	tlsm, err := localtls.ForService(st.common.DataDir, "ehr", st.common.TLS)
	if err != nil {
		return err
	}
	client, err := httpclient.New(httpclient.Config{CAFile: tlsm.CAFile, Rewrites: st.common.InternalURLs})
	if err != nil {
		return err
	}
	st.server.HTTPClient = client
	st.server.Logger = log

	srv, err := server.New(ctx, st.server)
	if err != nil {
		return err
	}
	defer srv.Close()
	go srv.Maintain(ctx, 15*time.Minute)

	hc := httpserver.Config{Addr: st.addr, Handler: srv.Handler(), TLS: tlsm.Server, Logger: log}
	log.Info("ehr ready", "public_url", st.server.PublicURL, "fhir_base", st.server.PublicURL+"/fhir")
	return httpserver.Run(ctx, hc)
}
