// Command sandbox runs the DTR sandbox (CONTRACT.md "Commands"):
//
//	go run ./scripts/sandbox up     build and start ehr, payer, smartapp; Ctrl-C stops them
//	go run ./scripts/sandbox demo   drive the provider and payer flow headlessly and check it
//
// Run it from the repository root (or anywhere below it): the root is the
// folder holding go.work.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"dtrsandbox/scripts/internal/demo"
	"dtrsandbox/scripts/internal/up"
	"dtrsandbox/shared/config"
	"dtrsandbox/shared/launcher"
	"dtrsandbox/shared/localtls"
)

const usage = `usage: sandbox <command> [flags]

commands:
  up     build and start the EHR, the payer and the SMART app over HTTPS; Ctrl-C stops them
  demo   run the provider and payer flow headlessly, with the security checks; exit 0 only if every step held

Run "sandbox <command> -h" for the flags of one command.
`

func main() {
	started := time.Now()
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "up":
		err = runUp(ctx, os.Args[2:], started, os.Stdout)
	case "demo":
		err = runDemo(ctx, os.Args[2:], os.Stdout)
	case "-h", "-help", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "sandbox: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// common are the settings both commands share.
type common struct {
	dataDir string
	tls     bool
	ports   string
}

func (c *common) register(fs *flag.FlagSet) {
	env := config.FromEnviron()
	fs.StringVar(&c.dataDir, "data", env.String("SANDBOX_DATA_DIR", filepath.Join(config.RepoRoot(), ".sandbox")),
		"data directory: TLS CA and certificates, keys, SQLite files (env SANDBOX_DATA_DIR)")
	fs.BoolVar(&c.tls, "tls", env.Bool("SANDBOX_TLS", true), "serve HTTPS (env SANDBOX_TLS=on|off)")
	fs.StringVar(&c.ports, "ports", env.String("SANDBOX_PORTS", ""),
		"ports other than 8441/8442/8443, e.g. ehr=9441,smartapp=9442,payer=9443 (env SANDBOX_PORTS); public URLs become https://localhost:<port>")
}

func parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(os.Stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %v", errUsage, fs.Args())
	}
	return nil
}

func runUp(ctx context.Context, args []string, started time.Time, out io.Writer) error {
	fs := flag.NewFlagSet("sandbox up", flag.ContinueOnError)
	var c common
	c.register(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: sandbox up [-data DIR] [-tls=false] [-ports ehr=N,smartapp=N,payer=N]

Builds the three services, starts them as separate processes (logs prefixed
[ehr], [payer], [smartapp]), waits until each answers /healthz, prints the
URLs, the CA to trust, the payer admin token and where to click first.
Ctrl-C (SIGINT) or SIGTERM stops all three cleanly and exits 0.

Defaults: https://localhost:8441 (EHR), :8442 (SMART app), :8443 (payer),
data in <repo>/.sandbox. With other ports the payer's trusted-EHR registry is
written into the data directory for them.

flags:
`)
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	ports, err := up.ParsePorts(c.ports)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	dataDir, err := filepath.Abs(c.dataDir)
	if err != nil {
		return err
	}
	return up.Run(ctx, up.Options{
		Root:    config.RepoRoot(),
		DataDir: dataDir,
		TLS:     c.tls,
		Ports:   ports,
		Out:     out,
		Logs:    out,
		Started: started,
	})
}

func runDemo(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("sandbox demo", flag.ContinueOnError)
	var c common
	c.register(fs)
	ehrURL := fs.String("ehr", "", "EHR base URL (default https://localhost:<ehr port>)")
	appURL := fs.String("app", "", "SMART app base URL (default https://localhost:<smartapp port>)")
	payerURL := fs.String("payer", "", "payer base URL (default https://localhost:<payer port>)")
	caFile := fs.String("ca", "", "CA to trust (default <data>/tls/ca.pem)")
	own := fs.Bool("own", false, "always start a sandbox of its own (free ports, temporary data directory)")
	runs := fs.Int("runs", 1, "repeat the whole flow N times and print the median launch-to-submitted time")
	keep := fs.Bool("keep", false, "with a sandbox of its own: keep its temporary data directory and logs")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: sandbox demo [-own] [-runs N] [-data DIR] [-ports ...] [-ehr URL -app URL -payer URL]

Drives the provider and payer flow headlessly (no browser) and checks each
step: EHR launch, app authorization, questionnaire, draft, relaunch, draft
resumed, submit, the document and audit trail at the payer, the write-back
at the EHR; then a malicious app registered at both servers tries to reach
pat-1's documents four ways, each of which must be refused.

Against the running sandbox (default URLs; -data must be its data
directory, for the CA, the payer admin token and the app key the stolen-token
check uses; SANDBOX_INTERNAL_URLS as for the services, when run inside the
compose network). If nothing answers at the EHR's /healthz, or with -own, it
starts a sandbox of its own on free ports in a temporary data directory and
stops it at the end. Exit 0 only if every step of every run held.

flags:
`)
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if *runs < 1 {
		return fmt.Errorf("%w: -runs must be at least 1", errUsage)
	}
	ports, err := up.ParsePorts(c.ports)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	dataDir, err := filepath.Abs(c.dataDir)
	if err != nil {
		return err
	}
	lc := launcher.Config{DataDir: dataDir, TLS: c.tls, Ports: ports}
	cfg := demo.Config{
		EHR:     orDefault(*ehrURL, lc.BaseURL(launcher.EHR)),
		App:     orDefault(*appURL, lc.BaseURL(launcher.SmartApp)),
		Payer:   orDefault(*payerURL, lc.BaseURL(launcher.Payer)),
		CAFile:  *caFile,
		DataDir: dataDir,
	}
	if cfg.CAFile == "" && c.tls {
		cfg.CAFile = localtls.CAPath(dataDir)
	}
	env := config.FromEnviron()
	cfg.InternalURLs = env.LoadCommon().InternalURLs // inside docker-compose: public URL -> service name
	if err := env.Err(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if !*own && !demo.Healthy(ctx, cfg.EHR, cfg.CAFile, cfg.InternalURLs) {
		fmt.Fprintf(out, "demo: nothing answers %s/healthz; starting a sandbox of its own\n", cfg.EHR)
		*own = true
	}
	if *own {
		tmp, err := os.MkdirTemp("", "dtr-demo-")
		if err != nil {
			return err
		}
		logPath := filepath.Join(tmp, "services.log")
		logs, err := os.Create(logPath)
		if err != nil {
			return err
		}
		defer logs.Close()
		fmt.Fprintf(out, "demo: building and starting ehr, payer, smartapp (data %s, logs %s)\n", filepath.Join(tmp, "data"), logPath)
		t := time.Now()
		sb, err := demo.StartOwn(ctx, config.RepoRoot(), filepath.Join(tmp, "data"), c.tls, logs)
		if err != nil {
			return fmt.Errorf("%w (service logs: %s)", err, logPath)
		}
		fmt.Fprintf(out, "demo: sandbox healthy after %s (build included)\n\n", time.Since(t).Round(time.Millisecond))
		failed := false
		defer func() {
			if err := sb.Stop(); err != nil {
				fmt.Fprintln(out, "demo: stopping the sandbox:", err)
			}
			if *keep || failed {
				fmt.Fprintf(out, "demo: kept %s (service logs in services.log)\n", tmp)
				return
			}
			os.RemoveAll(tmp)
		}()
		cfg = demo.ConfigFor(sb)
		err = demoRuns(ctx, cfg, *runs, out)
		failed = err != nil
		return err
	}
	cfg.AdminToken = demo.AdminToken(dataDir)
	return demoRuns(ctx, cfg, *runs, out)
}

// demoRuns runs the flow n times, printing every step, and for n > 1 the
// median launch-to-submitted time.
func demoRuns(ctx context.Context, cfg demo.Config, n int, out io.Writer) error {
	fmt.Fprintf(out, "DTR sandbox demo: EHR %s, app %s, payer %s\n", cfg.EHR, cfg.App, cfg.Payer)
	var times []time.Duration
	var failures []error
	for i := 1; i <= n; i++ {
		if n > 1 {
			fmt.Fprintf(out, "\n--- run %d of %d ---\n", i, n)
		} else {
			fmt.Fprintln(out)
		}
		rep, err := demo.Run(ctx, cfg, out)
		demo.Summary(out, rep)
		if err != nil {
			failures = append(failures, fmt.Errorf("run %d: %w", i, err))
		}
		if rep.LaunchToSubmitted > 0 {
			times = append(times, rep.LaunchToSubmitted)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if n > 1 {
		fmt.Fprintf(out, "\n%d runs, %d failed; median launch-to-submitted %d ms over %d run(s)", n, len(failures), demo.Median(times).Milliseconds(), len(times))
		if len(times) > 0 {
			lo, hi := times[0], times[0]
			for _, t := range times {
				lo, hi = min(lo, t), max(hi, t)
			}
			fmt.Fprintf(out, " (min %d, max %d)", lo.Milliseconds(), hi.Milliseconds())
		}
		fmt.Fprintln(out)
	}
	if len(failures) > 0 {
		return errors.Join(failures...)
	}
	return nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
