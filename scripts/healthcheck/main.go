// Command healthcheck is the docker-compose healthcheck of every service:
// it GETs {url}/healthz, trusting the sandbox CA, and exits 0 on 200, 1
// otherwise. It lives beside the services in the image so their mains need
// no extra flag.
//
//	healthcheck [-ca /data/tls/ca.pem] [-timeout 3s] https://localhost:8441
//
// The CA defaults to $SANDBOX_DATA_DIR/tls/ca.pem (or /data/tls/ca.pem).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"dtrsandbox/shared/httpclient"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := os.Getenv("SANDBOX_DATA_DIR")
	if dataDir == "" {
		dataDir = "/data"
	}
	ca := fs.String("ca", filepath.Join(dataDir, "tls", "ca.pem"), "CA certificate to trust for https (ignored for http)")
	timeout := fs.Duration("timeout", 3*time.Second, "whole-request timeout")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: healthcheck [-ca FILE] [-timeout D] BASE_URL")
		return 2
	}
	base := strings.TrimRight(fs.Arg(0), "/")
	cfg := httpclient.Config{Timeout: *timeout}
	if strings.HasPrefix(base, "https://") {
		cfg.CAFile = *ca
	}
	client, err := httpclient.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	if err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 2
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "healthcheck:", err)
		return 1
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "healthcheck: %s/healthz answered %d\n", base, resp.StatusCode)
		return 1
	}
	return 0
}
