package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"dtrsandbox/shared/localtls"
)

func TestHealthcheck(t *testing.T) {
	dir := t.TempDir()
	p, err := localtls.Ensure(dir, "ehr", localtls.DefaultHosts())
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := localtls.ServerConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	status := http.StatusOK
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	srv.TLS = tlsCfg
	srv.StartTLS()
	defer srv.Close()
	url := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)

	otherCA := t.TempDir()
	if _, err := localtls.Ensure(otherCA, "x", localtls.DefaultHosts()); err != nil {
		t.Fatal(err)
	}
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer plain.Close()

	tests := []struct {
		name   string
		args   []string
		status int
		want   int
	}{
		{"healthy over TLS", []string{"-ca", p.CA, url}, 200, 0},
		{"trailing slash", []string{"-ca", p.CA, url + "/"}, 200, 0},
		{"unhealthy", []string{"-ca", p.CA, url}, 503, 1},
		{"untrusted CA", []string{"-ca", localtls.CAPath(otherCA), url}, 200, 1},
		{"missing CA file", []string{"-ca", dir + "/nope.pem", url}, 200, 1},
		{"plain HTTP ignores the CA", []string{"-ca", dir + "/nope.pem", plain.URL}, 200, 0},
		{"nothing listening", []string{"-ca", p.CA, "https://localhost:1"}, 200, 1},
		{"no URL", []string{"-ca", p.CA}, 200, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status = tt.status
			var stderr bytes.Buffer
			if got := run(tt.args, &stderr); got != tt.want {
				t.Errorf("exit %d, want %d; stderr: %s", got, tt.want, stderr.String())
			}
		})
	}
}

func TestDefaultCAFromDataDir(t *testing.T) {
	dir := t.TempDir()
	p, err := localtls.Ensure(dir, "payer", localtls.DefaultHosts())
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, _ := localtls.ServerConfig(p)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = tlsCfg
	srv.StartTLS()
	defer srv.Close()
	t.Setenv("SANDBOX_DATA_DIR", dir)
	var stderr bytes.Buffer
	if got := run([]string{strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)}, &stderr); got != 0 {
		t.Errorf("exit %d with the CA under $SANDBOX_DATA_DIR/tls: %s", got, stderr.String())
	}
}
