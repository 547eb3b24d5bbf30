package config

import (
	"strings"
	"testing"
	"time"
)

func TestEnv(t *testing.T) {
	e := FromMap(map[string]string{
		"A": " value ", "B": "off", "C": "42", "D": "90s", "U": "https://x.example/fhir/",
		"BADB": "maybe", "BADI": "x", "BADD": "-1s", "BADU": "ftp://x",
	})
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"string trimmed", e.String("A", "d"), "value"},
		{"string default", e.String("MISSING", "d"), "d"},
		{"bool off", e.Bool("B", true), false},
		{"bool default", e.Bool("MISSING", true), true},
		{"int", e.Int("C", 1), 42},
		{"duration", e.Duration("D", time.Second), 90 * time.Second},
		{"url trailing slash", e.URL("U", "https://d"), "https://x.example/fhir"},
		{"bad bool keeps default", e.Bool("BADB", true), true},
		{"bad int keeps default", e.Int("BADI", 7), 7},
		{"bad duration keeps default", e.Duration("BADD", time.Minute), time.Minute},
		{"bad url keeps default", e.URL("BADU", "https://d/"), "https://d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
	err := e.Err()
	if err == nil {
		t.Fatal("want accumulated errors")
	}
	for _, key := range []string{"BADB", "BADI", "BADD", "BADU"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
}

func TestLoadCommon(t *testing.T) {
	e := FromMap(map[string]string{
		"SANDBOX_DATA_DIR":      "/tmp/sbx",
		"SANDBOX_TLS":           "off",
		"SANDBOX_INTERNAL_URLS": "https://localhost:8441=https://ehr:8441/, https://localhost:8443=https://payer:8443",
	})
	c := e.LoadCommon()
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/tmp/sbx" || c.TLS || c.Scheme() != "http" {
		t.Fatalf("got %+v", c)
	}
	if c.InternalURLs["https://localhost:8441"] != "https://ehr:8441" || len(c.InternalURLs) != 2 {
		t.Fatalf("rewrites %v", c.InternalURLs)
	}
	bad := FromMap(map[string]string{"SANDBOX_INTERNAL_URLS": "nonsense"})
	bad.LoadCommon()
	if bad.Err() == nil {
		t.Fatal("want error for malformed SANDBOX_INTERNAL_URLS")
	}
}
