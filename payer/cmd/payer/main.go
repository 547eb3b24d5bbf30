// Command payer runs the sandbox payer: a FHIR server storing Da Vinci DTR
// documentation, with its own SMART Backend Services authorization server
// and a gate that also requires the app's EHR launch token
// (docs/ARCHITECTURE.md, CONTRACT.md "Payer").
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"dtrsandbox/payer/internal/server"
	"dtrsandbox/shared/config"
	"dtrsandbox/shared/httpclient"
	"dtrsandbox/shared/httpserver"
	"dtrsandbox/shared/localtls"
	"dtrsandbox/shared/logging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, config.FromEnviron()); err != nil {
		fmt.Fprintln(os.Stderr, "payer:", err)
		os.Exit(1)
	}
}

// settings are the payer's environment (docs/ARCHITECTURE.md "Environment").
type settings struct {
	common config.Common
	addr   string
	server server.Config
}

func load(env *config.Env) settings {
	common := env.LoadCommon()
	scheme := common.Scheme()
	s := settings{common: common, addr: env.String("PAYER_ADDR", ":8443")}
	c := &s.server
	c.PublicURL = env.URL("PAYER_PUBLIC_URL", scheme+"://localhost:8443")
	c.DataDir = common.DataDir
	c.DatabaseURL = env.String("PAYER_DATABASE_URL", "")
	c.TrustedEHRsPath = env.String("PAYER_TRUSTED_EHRS", filepath.Join("payer", "trusted-ehrs.json"))
	if !filepath.IsAbs(c.TrustedEHRsPath) {
		c.TrustedEHRsPath = filepath.Join(config.RepoRoot(), c.TrustedEHRsPath)
	}
	switch reg := env.String("PAYER_REGISTRATION", "open"); reg {
	case "open":
		c.RegistrationOpen = true
	case "closed":
	default:
		env.Fail(fmt.Errorf("PAYER_REGISTRATION=%q: want open or closed", reg))
	}
	c.AdminToken = env.String("PAYER_ADMIN_TOKEN", "")
	if c.AdminToken != "" && len(c.AdminToken) < 32 {
		env.Fail(fmt.Errorf("PAYER_ADMIN_TOKEN: at least 32 characters"))
	}
	c.SmartAppURL = env.URL("PAYER_SMARTAPP_URL", scheme+"://localhost:8442")
	c.EHRIssuer = env.URL("PAYER_EHR_ISSUER", scheme+"://localhost:8441/fhir")
	c.IntrospectionCacheTTL = env.Duration("PAYER_INTROSPECTION_CACHE_TTL", server.DefaultIntrospectionCacheTTL)
	if rl := env.Int("PAYER_RATE_LIMIT", 20); rl > 0 {
		c.RateLimit = float64(rl)
	} else {
		env.Fail(fmt.Errorf("PAYER_RATE_LIMIT=%d: want a positive number of requests per second", rl))
	}
	c.AllowHTTP = !common.TLS
	return s
}

// run starts the payer and serves until ctx is done, then shuts down
// gracefully: in-flight requests (and their database writes) finish before
// the database is closed.
func run(ctx context.Context, env *config.Env) error {
	st := load(env)
	if err := env.Err(); err != nil {
		return err
	}
	log := logging.New(os.Stderr, "payer", st.common.LogLevel)

	tlsm, err := localtls.ForService(st.common.DataDir, "payer", st.common.TLS)
	if err != nil {
		return err
	}
	httpCfg := httpserver.Config{Addr: st.addr, TLS: tlsm.Server, Logger: log}
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
	defer func() {
		if err := srv.Close(); err != nil {
			log.Error("close", "err", err)
		}
	}()
	httpCfg.Handler = srv.Handler()
	httpCfg.Ready = func(addr net.Addr) {
		attrs := []any{"addr", addr.String(), "url", st.server.PublicURL, "fhir", st.server.PublicURL + "/fhir",
			"trusted_ehrs", st.server.TrustedEHRsPath, "registration_open", st.server.RegistrationOpen}
		if p := srv.AdminTokenPath(); p != "" {
			attrs = append(attrs, "admin_token_file", p)
		} else {
			attrs = append(attrs, "admin_token", "from PAYER_ADMIN_TOKEN")
		}
		log.Info("payer ready", attrs...)
	}
	return httpserver.Run(ctx, httpCfg)
}
