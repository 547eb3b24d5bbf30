package server_test

import (
	"io"
	"net/http"
	"net/url"
	"testing"

	"golang.org/x/oauth2"

	"dtrsandbox/ehr/internal/authz"
)

// Benchmarks run against the real HTTPS server on SQLite (synchronous=FULL);
// each has its baseline in the same run, sharing every cost but the one
// measured.

// BenchmarkCodeExchange: authorization_code + PKCE + private_key_jwt,
// issuing access, refresh and ID tokens, against the same request with an
// unknown code (client authentication included in both).
func BenchmarkCodeExchange(b *testing.B) {
	e := startEHR(b)
	b.Run("exchange", func(b *testing.B) {
		forms := make([]url.Values, b.N)
		for i := range forms {
			code, verifier := e.ehrLaunchCode(dtrScope)
			forms[i] = e.appTokenForm(url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"code_verifier": {verifier}, "redirect_uri": {e.app.URL + "/callback"}})
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if resp, body := e.postForm(authz.PathToken, forms[i]); resp.StatusCode != http.StatusOK {
				b.Fatalf("%d %s", resp.StatusCode, body)
			}
		}
	})
	b.Run("baseline-unknown-code", func(b *testing.B) {
		forms := make([]url.Values, b.N)
		for i := range forms {
			forms[i] = e.appTokenForm(url.Values{"grant_type": {"authorization_code"}, "code": {"unknown.code"},
				"code_verifier": {oauth2.GenerateVerifier()}, "redirect_uri": {e.app.URL + "/callback"}})
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if resp, body := e.postForm(authz.PathToken, forms[i]); resp.StatusCode != http.StatusBadRequest {
				b.Fatalf("%d %s", resp.StatusCode, body)
			}
		}
	})
}

// BenchmarkClientAuthentication: a client_credentials token for the payer
// authenticated by private_key_jwt (ES384 verify + jti insert) against the
// same request by client_secret_basic. Assertions are signed beforehand.
func BenchmarkClientAuthentication(b *testing.B) {
	e := startEHR(b)
	b.Run("private_key_jwt", func(b *testing.B) {
		forms := make([]url.Values, b.N)
		for i := range forms {
			forms[i] = e.payerForm(url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.rs"}})
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if resp, body := e.postForm(authz.PathToken, forms[i]); resp.StatusCode != http.StatusOK {
				b.Fatalf("%d %s", resp.StatusCode, body)
			}
		}
	})
	b.Run("baseline-client_secret_basic", func(b *testing.B) {
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.rs"}}
		for i := 0; i < b.N; i++ {
			if resp, body := e.postForm(authz.PathToken, form, authz.PayerClientID, payerSecret); resp.StatusCode != http.StatusOK {
				b.Fatalf("%d %s", resp.StatusCode, body)
			}
		}
	})
}

// BenchmarkIntrospection: the payer (client_secret_basic) introspects an
// active access token (ES256 verify + grant lookup) against garbage.
func BenchmarkIntrospection(b *testing.B) {
	e := startEHR(b)
	code, verifier := e.ehrLaunchCode(dtrScope)
	g, status, body := e.exchange(code, verifier)
	if g == nil {
		b.Fatalf("exchange: %d %s", status, body)
	}
	run := func(b *testing.B, token, want string) {
		form := url.Values{"token": {token}}
		for i := 0; i < b.N; i++ {
			resp, body := e.postForm(authz.PathIntrospect, form, authz.PayerClientID, payerSecret)
			if resp.StatusCode != http.StatusOK || string(body[:len(want)]) != want {
				b.Fatalf("%d %s", resp.StatusCode, body)
			}
		}
	}
	b.Run("active-token", func(b *testing.B) { run(b, g.AccessToken, `{"active":true`) })
	b.Run("baseline-garbage", func(b *testing.B) { run(b, "garbage", `{"active":false}`) })
}

// BenchmarkFHIRRead: an authorized FHIR read of Patient/pat-1 with an
// access token the EHR issued (ES256 verify, grant lookup, scope and
// compartment checks, the read), against the same request without a token
// (TLS, routing and the 401 OperationOutcome only).
func BenchmarkFHIRRead(b *testing.B) {
	e := startEHR(b)
	code, verifier := e.ehrLaunchCode(dtrScope)
	g, status, body := e.exchange(code, verifier)
	if g == nil {
		b.Fatalf("exchange: %d %s", status, body)
	}
	run := func(b *testing.B, header string, want int) {
		req, err := http.NewRequest(http.MethodGet, e.fhir+"/Patient/pat-1", nil)
		if err != nil {
			b.Fatal(err)
		}
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		for b.Loop() {
			resp, err := e.client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	}
	b.Run("authorized-read", func(b *testing.B) { run(b, "Bearer "+g.AccessToken, http.StatusOK) })
	b.Run("baseline-no-token", func(b *testing.B) { run(b, "", http.StatusUnauthorized) })
}
