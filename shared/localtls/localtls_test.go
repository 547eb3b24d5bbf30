package localtls

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
)

func TestEnsureServesTrustedTLS(t *testing.T) {
	dir := t.TempDir()
	p, err := Ensure(dir, "ehr", DefaultHosts())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ServerConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	srv.TLS = cfg
	srv.StartTLS()
	defer srv.Close()

	pool, err := RootPool(p.CA)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for _, host := range []string{"localhost", "127.0.0.1"} {
		t.Run(host, func(t *testing.T) {
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
			resp, err := c.Get("https://" + net.JoinHostPort(host, port) + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		})
	}
	t.Run("untrusted without CA", func(t *testing.T) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}}
		if _, err := c.Get(srv.URL); err == nil {
			t.Fatal("want certificate error without the sandbox CA")
		}
	})
}

func TestEnsureIsStableAndConcurrent(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, svc := range []string{"ehr", "payer", "smartapp"} {
		wg.Add(1)
		go func(svc string) {
			defer wg.Done()
			_, err := Ensure(dir, svc, DefaultHosts())
			errs <- err
		}(svc)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ca1, _ := os.ReadFile(CAPath(dir))
	p, err := Ensure(dir, "ehr", DefaultHosts())
	if err != nil {
		t.Fatal(err)
	}
	ca2, _ := os.ReadFile(p.CA)
	if string(ca1) != string(ca2) {
		t.Fatal("CA regenerated on second start")
	}
	if fi, _ := os.Stat(p.Key); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", fi.Mode().Perm())
	}
}

func TestForService(t *testing.T) {
	off, err := ForService(t.TempDir(), "ehr", false)
	if err != nil || off.Server != nil || off.CAFile != "" {
		t.Fatalf("TLS off: %+v %v", off, err)
	}
	dir := t.TempDir()
	on, err := ForService(dir, "ehr", true)
	if err != nil {
		t.Fatal(err)
	}
	if on.Server == nil || len(on.Server.Certificates) != 1 || on.CAFile != CAPath(dir) {
		t.Fatalf("TLS on: %+v", on)
	}
}
