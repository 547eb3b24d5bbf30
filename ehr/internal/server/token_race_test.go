package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"dtrsandbox/ehr/internal/authz"
)

// race posts the forms to the token endpoint at the same moment and
// returns the access tokens of the successes and the error codes of the
// refusals.
func (e *ehr) race(t *testing.T, forms []url.Values) (issued []string, refused map[string]int) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	refused = map[string]int{}
	start := make(chan struct{})
	for _, f := range forms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, body := e.postForm(authz.PathToken, f)
			mu.Lock()
			defer mu.Unlock()
			if resp.StatusCode == http.StatusOK {
				var tr tokenResponse
				if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
					t.Errorf("200 without a token: %s", body)
				}
				issued = append(issued, tr.AccessToken)
				return
			}
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("got %d %s", resp.StatusCode, body)
			}
			refused[oauthError(t, body)]++
		}()
	}
	close(start)
	wg.Wait()
	return issued, refused
}

// TestConcurrentCodeExchange: copies of one authorization code sent at the
// same moment buy at most one token, and whatever they bought is revoked
// (RFC 6749 §4.1.2: a code used twice revokes what it issued), however the
// requests interleave. Many small rounds, because the interleaving that
// used to leak (the second exchange failing on the PKCE binding the first
// had just deleted, before the first had spent the code) is a narrow one.
func TestConcurrentCodeExchange(t *testing.T) {
	e := startEHR(t)
	e.raceCodes(t, []int{2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 10, 10})
}

// raceCodes runs one round per entry of rounds, sending that many copies
// of a fresh code at once.
func (e *ehr) raceCodes(t *testing.T, rounds []int) {
	t.Helper()
	for _, copies := range rounds {
		code, verifier := e.ehrLaunchCode(dtrScope)
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
			"redirect_uri": {e.app.URL + "/callback"}}
		forms := make([]url.Values, copies)
		for i := range forms {
			forms[i] = e.appTokenForm(form) // a fresh assertion (jti) for each copy
		}
		issued, refused := e.race(t, forms)
		if len(issued) > 1 || len(issued)+refused["invalid_grant"] != copies {
			t.Fatalf("%d copies: %d issued, refused %v", copies, len(issued), refused)
		}
		for _, at := range issued {
			e.assertInactive(at)
		}
	}
}

// TestConcurrentRefresh: copies of one refresh token sent at the same
// moment rotate it at most once, and the reuse revokes the whole family,
// including what the winning copy was given.
func TestConcurrentRefresh(t *testing.T) {
	e := startEHR(t)
	for _, copies := range []int{2, 2, 2, 5, 10} {
		code, verifier := e.ehrLaunchCode(dtrScope)
		g, status, body := e.exchange(code, verifier)
		if g == nil {
			t.Fatalf("exchange: %d %s", status, body)
		}
		forms := make([]url.Values, copies)
		for i := range forms {
			forms[i] = e.appTokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {g.RefreshToken}})
		}
		issued, refused := e.race(t, forms)
		if len(issued) > 1 || len(issued)+refused["invalid_grant"] != copies {
			t.Fatalf("%d copies: %d issued, refused %v", copies, len(issued), refused)
		}
		for _, at := range append(issued, g.AccessToken) {
			e.assertInactive(at)
		}
	}
}
