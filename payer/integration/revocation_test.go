package integration

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"dtrsandbox/shared/testutil/jwttest"
)

// revocationIntrospection: in introspection mode (the launcher's registry,
// PAYER_INTROSPECTION_CACHE_TTL=1s), an EHR token revoked at the EHR is
// refused by the payer once the cached introspection answer is older than
// the TTL, and the refusal is audited.
func revocationIntrospection(t *testing.T, c *cast) {
	w, a := c.w, c.a.fresh(t)
	tok := c.alice.launch(t, launchPat1)
	read := func() *reply {
		return w.payer(t, http.MethodGet, "/DocumentReference/"+c.aliceDoc, a.payerTok, tok.Access, nil)
	}
	if r := read(); r.status != http.StatusOK {
		t.Fatalf("read before revocation: %s", r)
	}

	c.alice.revoke(t, tok.Access)
	if r := w.send(t, http.MethodGet, w.ehrFHIR+"/Patient/pat-1", nil, []string{"Authorization", "Bearer " + tok.Access}); r.status != http.StatusUnauthorized {
		t.Fatalf("the EHR itself still accepts the revoked token: %s", r)
	}

	time.Sleep(1500 * time.Millisecond) // past the 1s introspection cache
	since := time.Now()
	r := read()
	if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("read with a revoked EHR token after the cache TTL: %s (WWW-Authenticate %q)", r, r.header.Get("WWW-Authenticate"))
	}
	if bytes.Contains(r.body, []byte(c.canary)) {
		t.Fatalf("the refusal holds pat-1's answers: %s", r.body)
	}
	w.requireAudit(t, since, auditWant{agent: c.alice.payerID, outcome: "4", status: 401, reason: "EHR token: inactive"})
}

// revocationJWKS: in jwks mode the payer verifies EHR tokens with the EHR's
// keys and never asks the EHR, so a token revoked at the EHR is still
// accepted until its exp. That is the known trade-off of jwks mode (choose
// introspection mode where revocation must reach the payer at once, or
// keep EHR tokens short-lived); this asserts both halves of it: accepted
// after revocation, refused (and audited as expired) after exp. The
// registry is switched by rewriting its file, without a restart, and back
// to introspection at the end.
func revocationJWKS(t *testing.T, c *cast, early *ehrSession) {
	w, a := c.w, c.a.fresh(t)

	w.switchMode(t, "jwks", a.payerTok)
	defer w.switchMode(t, "introspection", a.payerTok)

	// A token no EHR issued is refused by its signature, without the EHR.
	since := time.Now()
	forged := w.forgedEHRToken(t, c.mallory.key, c.mallory.ehrID, "pat-1", time.Now().Add(10*time.Minute))
	if r := w.payer(t, http.MethodGet, "/DocumentReference/"+c.aliceDoc, c.m.fresh(t).payerTok, forged, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("forged EHR token in jwks mode: %s", r)
	}
	w.requireAudit(t, since, auditWant{agent: c.mallory.payerID, outcome: "4", status: 401, reason: "EHR token: unknown_key"})

	// The token to revoke: the one launched when the run began (its exp
	// is near, which keeps the wait short) if enough of its minute is left
	// for the steps below on a loaded machine, else a new one. Chosen after
	// the mode switch, whose duration depends on the machine.
	tok := early
	if time.Until(tok.Expires) < 20*time.Second {
		tok = c.alice.launch(t, launchPat1)
	}
	exp := time.Unix(int64(jwttest.Claims(t, tok.Access)["exp"].(float64)), 0)

	read := func() *reply {
		return w.payer(t, http.MethodGet, "/DocumentReference/"+c.aliceDoc, a.payerTok, tok.Access, nil)
	}
	if r := read(); r.status != http.StatusOK {
		t.Fatalf("read in jwks mode: %s", r)
	}
	c.alice.revoke(t, tok.Access)
	if r := w.send(t, http.MethodGet, w.ehrFHIR+"/Patient/pat-1", nil, []string{"Authorization", "Bearer " + tok.Access}); r.status != http.StatusUnauthorized {
		t.Fatalf("the EHR itself still accepts the revoked token: %s", r)
	}
	time.Sleep(1500 * time.Millisecond)
	if time.Until(exp) < time.Second {
		t.Fatalf("the token expired before the trade-off could be observed (exp %s)", exp.Format(time.RFC3339))
	}
	// The trade-off: revoked at the EHR, still accepted by the payer.
	if r := read(); r.status != http.StatusOK {
		t.Fatalf("jwks mode: a revoked but unexpired EHR token is refused (%s); "+
			"jwks mode cannot see revocation, so either the mode or this expectation changed", r)
	}

	// Until exp, and not a second later.
	time.Sleep(time.Until(exp) + 1500*time.Millisecond)
	since = time.Now()
	r := read()
	if r.status != http.StatusUnauthorized {
		t.Fatalf("jwks mode: the revoked token after its exp: %s", r)
	}
	w.requireAudit(t, since, auditWant{agent: c.alice.payerID, outcome: "4", status: 401, reason: "EHR token: expired"})

	// The same expired token in introspection mode is refused without
	// asking the EHR (expired before introspection).
	w.switchMode(t, "introspection", a.fresh(t).payerTok)
	since = time.Now()
	if r := read(); r.status != http.StatusUnauthorized {
		t.Fatalf("introspection mode: an expired EHR token: %s", r)
	}
	w.requireAudit(t, since, auditWant{agent: c.alice.payerID, outcome: "4", status: 401, reason: "EHR token: expired"})
}
