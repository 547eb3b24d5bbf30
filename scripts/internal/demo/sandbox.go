package demo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"dtrsandbox/shared/httpclient"
	"dtrsandbox/shared/launcher"
	"dtrsandbox/shared/localtls"
)

// ConfigFor is the demo configuration for a sandbox started by launcher:
// its URLs, its CA, and its data directory (admin token, app key).
func ConfigFor(sb *launcher.Sandbox) Config {
	c := sb.Config()
	cfg := Config{
		EHR:     sb.URL(launcher.EHR),
		App:     sb.URL(launcher.SmartApp),
		Payer:   sb.URL(launcher.Payer),
		DataDir: c.DataDir,
	}
	if c.TLS {
		cfg.CAFile = localtls.CAPath(c.DataDir)
	}
	cfg.AdminToken = AdminToken(c.DataDir)
	return cfg
}

// AdminToken is PAYER_ADMIN_TOKEN, else the token the payer generated
// into {dataDir}/payer/admin-token, else "".
func AdminToken(dataDir string) string {
	if t := strings.TrimSpace(os.Getenv("PAYER_ADMIN_TOKEN")); t != "" {
		return t
	}
	if dataDir == "" {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(dataDir, "payer", "admin-token"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Healthy reports whether GET {base}/healthz answers 200, trusting caFile
// (if it exists), with the public -> internal rewrites.
func Healthy(ctx context.Context, base, caFile string, rewrites map[string]string) bool {
	cfg := httpclient.Config{Timeout: 3 * time.Second, Rewrites: rewrites}
	if _, err := os.Stat(caFile); err == nil && caFile != "" {
		cfg.CAFile = caFile
	}
	c, err := httpclient.New(cfg)
	if err != nil {
		return false
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// StartOwn starts a sandbox of the demo's own: free ports, a new data
// directory under dir, service logs to logs. The caller stops it.
func StartOwn(ctx context.Context, root, dir string, tls bool, logs io.Writer) (*launcher.Sandbox, error) {
	ports, err := launcher.FreePorts(3)
	if err != nil {
		return nil, err
	}
	cfg := launcher.Config{
		Root:    root,
		DataDir: dir,
		TLS:     tls,
		Ports:   map[string]int{launcher.EHR: ports[0], launcher.SmartApp: ports[1], launcher.Payer: ports[2]},
		Output:  logs,
	}
	sb, err := launcher.Start(ctx, cfg, nil)
	if err != nil {
		return nil, fmt.Errorf("demo: start a sandbox: %w", err)
	}
	return sb, nil
}

// Median of ds (the mean of the middle two for an even count); 0 for none.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}
