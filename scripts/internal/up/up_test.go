package up

import (
	"strings"
	"testing"
	"time"

	"dtrsandbox/shared/launcher"
)

func TestParsePorts(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]int
		wantErr string
	}{
		{"", map[string]int{}, ""},
		{"ehr=9441,smartapp=9442,payer=9443", map[string]int{"ehr": 9441, "smartapp": 9442, "payer": 9443}, ""},
		{" payer = 18443 ", map[string]int{"payer": 18443}, ""},
		{"ehr=9441,", nil, "not service=port"},
		{"db=5432", nil, "not service=port"},
		{"ehr", nil, "not service=port"},
		{"ehr=x", nil, "not a port number"},
		{"ehr=0", nil, "not a port number"},
		{"ehr=70000", nil, "not a port number"},
		{"ehr=1,ehr=2", nil, "given twice"},
		{"ehr=9000,payer=9000", nil, "both on 9000"},
		{"ehr=8442", nil, "ehr and smartapp both on 8442"}, // smartapp keeps its default
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePorts(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %d, want %d", k, got[k], v)
				}
			}
		})
	}
}

func TestBanner(t *testing.T) {
	base := Info{
		Config:         launcher.Config{DataDir: "/d", TLS: true, Ports: map[string]int{launcher.EHR: 9441}},
		Timing:         Timing{Build: 1500 * time.Millisecond, Start: 2 * time.Second, Healthy: 3600 * time.Millisecond},
		AdminTokenPath: "/d/payer/admin-token",
	}
	tests := []struct {
		name    string
		mod     func(*Info)
		want    []string
		notWant []string
	}{
		{"TLS with a token file", func(i *Info) { i.AdminToken = "tok-123" }, []string{
			"https://localhost:9441", "https://localhost:9441/fhir", "https://localhost:8442", "https://localhost:8443/fhir",
			"healthy 3.6s after start", "/d/tls/ca.pem", "curl --cacert /d/tls/ca.pem https://localhost:9441/healthz",
			"Firefox", "Chrome", "update-ca-certificates", "security add-trusted-cert",
			"tok-123", "/d/payer/admin-token", "Open https://localhost:9441/", "Launch DTR", "Ctrl-C",
		}, nil},
		{"token from the environment", func(i *Info) { i.AdminEnv = true }, []string{"PAYER_ADMIN_TOKEN"}, []string{"tok-"}},
		{"token not readable", nil, []string{"cat /d/payer/admin-token"}, nil},
		{"plain HTTP", func(i *Info) { i.Config.TLS = false }, []string{"http://localhost:9441", "SANDBOX_TLS=off"}, []string{"ca.pem", "https://"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base
			if tt.mod != nil {
				tt.mod(&in)
			}
			var b strings.Builder
			Banner(&b, in)
			out := b.String()
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("banner lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out, w) {
					t.Errorf("banner has %q:\n%s", w, out)
				}
			}
		})
	}
}
