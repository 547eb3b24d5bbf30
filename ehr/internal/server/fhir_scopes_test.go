package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"dtrsandbox/ehr/internal/authz"
	"dtrsandbox/shared/fhir"
)

// TestFHIRWithIssuedTokens: the FHIR API enforced with tokens the EHR
// really issued (the unit tests of fhirapi use a stand-in verifier): an
// EHR-launch token with SMART v2 patient scopes is confined to its
// patient, system tokens (v2 and v1) reach every patient but only with
// the permissions they carry, and an expired token is refused.
func TestFHIRWithIssuedTokens(t *testing.T) {
	e := startEHR(t)
	code, verifier := e.ehrLaunchCode(dtrScope)
	app, status, body := e.exchange(code, verifier)
	if app == nil {
		t.Fatalf("exchange: %d %s", status, body)
	}
	system := func(scope string) string {
		t.Helper()
		status, body := e.postJSON(authz.PathRegister, map[string]any{
			"token_endpoint_auth_method": "client_secret_basic", "grant_types": []string{"client_credentials"}, "scope": scope,
		})
		var reg struct {
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}
		if status != http.StatusCreated || json.Unmarshal(body, &reg) != nil {
			t.Fatalf("register: %d %s", status, body)
		}
		tr, status, body := e.token(url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}, reg.ClientID, reg.ClientSecret)
		if tr == nil {
			t.Fatalf("token: %d %s", status, body)
		}
		return tr.AccessToken
	}
	v2 := system("system/*.rs")
	v1 := system("system/*.read")
	patientOnly := system("system/Patient.rs")

	do := func(token, method, path, body string) (int, string) {
		t.Helper()
		var r io.Reader
		if body != "" {
			r = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, e.fhir+path, r)
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", fhir.ContentType)
		}
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	qr := func(patient string) string {
		return `{"resourceType":"QuestionnaireResponse","status":"completed","subject":{"reference":"Patient/` + patient + `"}}`
	}
	doc := `{"resourceType":"DocumentReference","status":"current","subject":{"reference":"Patient/pat-1"},"content":[{"attachment":{"contentType":"text/plain","data":"eA=="}}]}`
	countQR := func() int64 {
		var n int64
		e.srv.DB().Table("fhir_resources").Where("type = ?", "QuestionnaireResponse").Count(&n)
		return n
	}
	ids := func(bundle string) []string {
		var b struct {
			Entry []struct {
				Resource struct {
					ID string `json:"id"`
				} `json:"resource"`
			} `json:"entry"`
		}
		json.Unmarshal([]byte(bundle), &b)
		var out []string
		for _, en := range b.Entry {
			out = append(out, en.Resource.ID)
		}
		return out
	}
	for _, c := range []struct {
		name, token, method, path, body string
		status                          int
		ids                             string // for a search: the ids expected, comma-separated
	}{
		{"launch: own patient", app.AccessToken, "GET", "/Patient/pat-1", "", 200, ""},
		{"launch: other patient", app.AccessToken, "GET", "/Patient/pat-2", "", 404, ""},
		{"launch: other patient's coverage", app.AccessToken, "GET", "/Coverage/cov-2", "", 404, ""},
		{"launch: search patients", app.AccessToken, "GET", "/Patient", "", 200, "pat-1"},
		{"launch: search other patient's coverage", app.AccessToken, "GET", "/Coverage?patient=pat-2", "", 200, ""},
		{"launch: search by other ids", app.AccessToken, "GET", "/DeviceRequest?_id=dr-cpap-2,dr-wheelchair-3", "", 200, ""},
		{"launch: POST search", app.AccessToken, "POST", "/Coverage/_search?beneficiary=Patient/pat-3", "", 0, ""},
		{"launch: create for own patient", app.AccessToken, "POST", "/QuestionnaireResponse", qr("pat-1"), 201, ""},
		{"launch: create for another patient", app.AccessToken, "POST", "/QuestionnaireResponse", qr("pat-2"), 403, ""},
		{"launch: create without the scope", app.AccessToken, "POST", "/DocumentReference", doc, 403, ""},
		{"system v2: any patient", v2, "GET", "/Patient/pat-2", "", 200, ""},
		{"system v2: search all", v2, "GET", "/Patient", "", 200, "pat-1,pat-2,pat-3"},
		{"system v2: no write scope", v2, "POST", "/QuestionnaireResponse", qr("pat-2"), 403, ""},
		{"system v1: read", v1, "GET", "/Coverage/cov-3", "", 200, ""},
		{"system v1: search", v1, "GET", "/Coverage?patient=pat-2", "", 200, "cov-2"},
		{"system v1: no write scope", v1, "POST", "/QuestionnaireResponse", qr("pat-2"), 403, ""},
		{"system Patient only: Patient", patientOnly, "GET", "/Patient/pat-3", "", 200, ""},
		{"system Patient only: Coverage", patientOnly, "GET", "/Coverage/cov-3", "", 403, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.status == 0 {
				// POST _search needs a form body: done by hand.
				req, _ := http.NewRequest("POST", e.fhir+c.path, strings.NewReader(""))
				req.Header.Set("Authorization", "Bearer "+c.token)
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				resp, err := e.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || len(ids(string(b))) != 0 {
					t.Fatalf("got %d %s", resp.StatusCode, b)
				}
				return
			}
			before := countQR()
			status, body := do(c.token, c.method, c.path, c.body)
			if status != c.status {
				t.Fatalf("got %d %s", status, body)
			}
			if status >= 400 {
				var oo fhir.OperationOutcome
				if json.Unmarshal([]byte(body), &oo) != nil || oo.ResourceType != "OperationOutcome" {
					t.Fatalf("not an OperationOutcome: %s", body)
				}
				if c.method == "POST" && countQR() != before {
					t.Fatalf("a refused create stored a resource")
				}
			}
			if c.method == "GET" && !strings.Contains(c.path[1:], "/") {
				got := ids(body)
				slices.Sort(got)
				if strings.Join(got, ",") != c.ids {
					t.Fatalf("ids %v, want %q", got, c.ids)
				}
			}
		})
	}
	t.Run("other tokens as bearer", func(t *testing.T) {
		for name, tok := range map[string]string{
			"refresh token": app.RefreshToken, "id_token": app.IDToken, "client assertion": e.payerAssertion().sign(t),
		} {
			if status, body := do(tok, "GET", "/Patient/pat-1", ""); status != http.StatusUnauthorized || !strings.Contains(body, "OperationOutcome") {
				t.Errorf("%s: got %d %s", name, status, body)
			}
		}
	})
	t.Run("expired", func(t *testing.T) {
		e.clock.Advance(authz.DefaultAccessTokenTTL + time.Minute)
		defer e.clock.Reset()
		if status, body := do(app.AccessToken, "GET", "/Patient/pat-1", ""); status != http.StatusUnauthorized || !strings.Contains(body, "OperationOutcome") {
			t.Fatalf("got %d %s", status, body)
		}
	})
}
