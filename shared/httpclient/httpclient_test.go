package httpclient

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRewrite(t *testing.T) {
	var gotPath string
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath = r.URL.RequestURI()
		io.WriteString(w, "internal")
	}))
	defer internal.Close()
	c, err := New(Config{Rewrites: map[string]string{"http://public.invalid:8441": internal.URL}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, url, path string }{
		{"path", "http://public.invalid:8441/fhir/metadata?x=1", "/fhir/metadata?x=1"},
		{"root", "http://public.invalid:8441", "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := c.Get(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if gotPath != tt.path {
				t.Fatalf("path %q, want %q", gotPath, tt.path)
			}
		})
	}
	t.Run("prefix of another host is not rewritten", func(t *testing.T) {
		if _, err := c.Get("http://public.invalid:84410/x"); err == nil {
			t.Fatal("want a DNS error: the URL must not have been rewritten")
		}
	})
}

func TestNoCrossOriginRedirect(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("followed a cross-origin redirect")
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL, http.StatusFound)
	}))
	defer srv.Close()
	c, _ := New(Config{})
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d", resp.StatusCode)
	}
}
