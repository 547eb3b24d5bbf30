package integration

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"dtrsandbox/shared/fhir"
)

// attack is one attempt on pat-1's documentation.
type attack struct {
	name string
	do   func(t *testing.T) *reply
	// status lists the acceptable answers.
	status []int
	// audit is the AuditEvent the attempt must leave, with the HTTP status
	// it answered (recorded on every event, system-level and registration
	// ones included). For a search, the payer may answer 200 with nothing
	// of pat-1 (a success event with the query) or refuse it with 400
	// ("bad search: ..."); search says so.
	audit  auditWant
	search string // the query parameter a search attack uses ("" = not a search)
	// own: a search answered 200 must still find mallory's own document
	// (confinement narrows the answer, it does not blank it).
	own bool
	// tokens is how many payer access tokens the attempt may issue.
	tokens int64
}

// tally is what the payer holds, seen from its database and from the two
// apps' own searches.
type tally struct {
	docs, clients, tokens int64
	pat1, pat2            int
}

func (c *cast) tally(t *testing.T) tally {
	t.Helper()
	w := c.w
	return tally{
		docs: w.rows(t, "documents"), clients: w.rows(t, "payer_clients"), tokens: w.rows(t, "payer_access_tokens"),
		pat1: c.a.count(t), pat2: c.m.count(t),
	}
}

// attackTable: every attempt is refused with the expected status, leaves
// nothing stored, returns nothing of pat-1 (its canary answer, its
// document id, any document not mallory's), and is audited with its
// reason. Mallory attacks with valid keys, its own registrations and its
// own legitimate launch for pat-2; then alice misbehaves with her own
// tokens.
func attackTable(t *testing.T, c *cast) {
	w := c.w
	if c.aliceDoc == "" {
		t.Fatal("no pat-1 document from the happy path")
	}
	m := c.m.fresh(t)
	r := m.create(t, w.draft(t, "mallory-own-"+randomHex(t, 4)))
	c.malloryDoc, _ = createdID(t, w, r)

	mal, ali := c.mallory.payerID, c.alice.payerID
	pat1, pat2 := w.ehrFHIR+"/Patient/pat-1", w.ehrFHIR+"/Patient/pat-2"
	ehrKey := w.ehrSigningKey(t)

	// mallory reads pat-1's document with an EHR token it is not allowed to
	// use: the payer must refuse the token, never reach the document.
	readWithEHRToken := func(tok func(t *testing.T) string) func(t *testing.T) *reply {
		return func(t *testing.T) *reply {
			return w.payer(t, http.MethodGet, "/DocumentReference/"+c.aliceDoc, c.m.payerTok, tok(t), nil)
		}
	}
	mallorySearch := func(q url.Values) func(t *testing.T) *reply {
		return func(t *testing.T) *reply { return c.m.search(t, q) }
	}
	createAsMallory := func(doc func(t *testing.T) []byte) func(t *testing.T) *reply {
		return func(t *testing.T) *reply { return c.m.create(t, doc(t)) }
	}
	withSubject := func(subject any, extra map[string]any) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			qr := w.questionnaireResponse("in-progress", nil, answer{"f2f", "f2f.diagnosis", map[string]any{"valueString": "mallory"}})
			return w.documentReference(t, qr, subject, extra)
		}
	}
	// narrow is alice with a payer token of fewer scopes than the ones
	// that created pat-1's draft (same client, narrower client_credentials).
	narrow := func(scope string, method, path string, body []byte, hdr ...string) func(t *testing.T) *reply {
		return func(t *testing.T) *reply {
			tok, _ := c.alice.payerToken(t, scope)
			return w.payer(t, method, path, tok, c.a.ehr.Access, body, hdr...)
		}
	}
	asAlice := func(method, path string, body []byte, hdr ...string) func(t *testing.T) *reply {
		return func(t *testing.T) *reply { return c.a.fhir(t, method, path, body, hdr...) }
	}
	bundleOf := func(typ string) []byte {
		b, _ := json.Marshal(map[string]any{"resourceType": "Bundle", "type": typ, "entry": []any{map[string]any{
			"request": map[string]any{"method": "GET", "url": "DocumentReference/" + c.aliceDoc},
		}}})
		return b
	}

	attacks := []attack{
		// Mallory, reading and searching.
		{name: "read pat-1's document by id", do: func(t *testing.T) *reply { return c.m.read(t, c.aliceDoc) },
			status: []int{404}, audit: auditWant{agent: mal, outcome: "4", status: 404, reason: "document of another patient"}},
		{name: "search patient= pat-1", do: mallorySearch(url.Values{"patient": {pat1}}), search: "patient"},
		{name: "search subject= pat-1", do: mallorySearch(url.Values{"subject": {pat1}}), search: "subject"},
		{name: "search subject= relative Patient/pat-1", do: mallorySearch(url.Values{"subject": {"Patient/pat-1"}}), search: "subject"},
		{name: "search _id= pat-1's document", do: mallorySearch(url.Values{"_id": {c.aliceDoc}}), search: "_id"},
		{name: "search patient= list mixing pat-1 and pat-2", do: mallorySearch(url.Values{"patient": {pat1 + "," + pat2}}), search: "patient", own: true},
		{name: "search _id= list mixing both documents", do: mallorySearch(url.Values{"_id": {c.aliceDoc + "," + c.malloryDoc}}), search: "_id", own: true},
		{name: "search patient= and subject= repeated", do: mallorySearch(url.Values{"patient": {pat1, pat2}, "subject": {pat1}}), search: "patient"},
		{name: "search related= pat-1's order", do: mallorySearch(url.Values{"related": {w.ehrFHIR + "/DeviceRequest/dr-oxygen-1"}}), search: "related"},
		{name: "search subject:Patient=", do: mallorySearch(url.Values{"subject:Patient": {pat1}}), search: "subject:Patient"},
		{name: "search chain subject.name", do: mallorySearch(url.Values{"subject.name": {"Doe"}}), search: "subject.name"},
		{name: "search chain patient._id", do: mallorySearch(url.Values{"patient._id": {"pat-1"}}), search: "patient._id"},
		{name: "search _has", do: mallorySearch(url.Values{"_has:QuestionnaireResponse:subject:status": {"in-progress"}}), search: "_has"},
		{name: "search _include", do: mallorySearch(url.Values{"_include": {"DocumentReference:subject"}}), search: "_include"},
		{name: "search _revinclude", do: mallorySearch(url.Values{"_revinclude": {"DocumentReference:related"}}), search: "_revinclude"},
		{name: "POST _search patient= pat-1", do: func(t *testing.T) *reply {
			return c.m.fhir(t, http.MethodPost, "/DocumentReference/_search", []byte(url.Values{"patient": {pat1}, "_id": {c.aliceDoc}}.Encode()),
				"Content-Type", "application/x-www-form-urlencoded")
		}, search: "patient"},

		// Mallory, writing about pat-1.
		{name: "create subject absolute pat-1", do: createAsMallory(withSubject(map[string]any{"reference": pat1}, nil)),
			status: []int{403}, audit: auditWant{agent: mal, outcome: "4", status: 403, reason: "subject names another patient"}},
		{name: "create subject relative Patient/pat-1", do: createAsMallory(withSubject(map[string]any{"reference": "Patient/pat-1"}, nil)),
			status: []int{403}, audit: auditWant{agent: mal, outcome: "4", status: 403, reason: "relative reference"}},
		{name: "create subject contained #p", do: createAsMallory(withSubject(map[string]any{"reference": "#p"}, map[string]any{
			"contained": []any{map[string]any{"resourceType": "Patient", "id": "p",
				"identifier": []any{map[string]any{"system": w.ehrFHIR + "/Patient", "value": "pat-1"}}}},
		})), status: []int{403}, audit: auditWant{agent: mal, outcome: "4", status: 403, reason: "contained"}},
		{name: "create subject conditional Patient?identifier=", do: createAsMallory(withSubject(map[string]any{"reference": "Patient?identifier=" + url.QueryEscape(w.ehrFHIR+"/Patient|pat-1")}, nil)),
			status: []int{403}, audit: auditWant{agent: mal, outcome: "4", status: 403, reason: "conditional reference"}},
		{name: "create with the attached response's subject pat-1", do: createAsMallory(func(t *testing.T) []byte {
			qr := w.questionnaireResponse("in-progress", map[string]any{"reference": pat1}, answer{"f2f", "f2f.diagnosis", map[string]any{"valueString": "x"}})
			return w.documentReference(t, qr, nil, nil)
		}), status: []int{403}, audit: auditWant{agent: mal, outcome: "4", status: 403, reason: "attached QuestionnaireResponse"}},
		{name: "create with the attached response's source pat-1", do: createAsMallory(func(t *testing.T) []byte {
			qr := w.questionnaireResponse("in-progress", nil, answer{"f2f", "f2f.diagnosis", map[string]any{"valueString": "x"}})
			qr["source"] = map[string]any{"reference": pat1}
			return w.documentReference(t, qr, nil, nil)
		}), status: []int{403}, audit: auditWant{agent: mal, outcome: "4", status: 403, reason: "attached QuestionnaireResponse: source names another patient"}},
		{name: "create with author pat-1", do: createAsMallory(withSubject(nil, map[string]any{"author": []any{map[string]any{"reference": pat1}}})),
			status: []int{403}, audit: auditWant{agent: mal, outcome: "4", status: 403, reason: "author names another patient"}},
		{name: "update pat-1's document by id", do: func(t *testing.T) *reply {
			return c.m.fhir(t, http.MethodPut, "/DocumentReference/"+c.aliceDoc, withSubject(nil, map[string]any{"id": c.aliceDoc})(t), "If-Match", c.aliceETag)
		}, status: []int{404}, audit: auditWant{agent: mal, outcome: "4", status: 404, reason: "document of another patient"}},

		// Mallory, with tokens that are not its own or not access tokens.
		{name: "alice's EHR token with mallory's payer token", do: readWithEHRToken(func(*testing.T) string { return c.a.ehr.Access }),
			status: []int{403}, audit: auditWant{agent: mal, outcome: "4", status: 403, reason: "is not the registered ehr_client_id"}},
		{name: "alice's EHR token to create for pat-1", do: func(t *testing.T) *reply {
			return w.payer(t, http.MethodPost, "/DocumentReference", c.m.payerTok, c.a.ehr.Access, w.draft(t, "stolen"))
		}, status: []int{403}, audit: auditWant{agent: mal, outcome: "4", status: 403, reason: "is not the registered ehr_client_id"}},
		{name: "forged EHR token (own key, the EHR's iss, pat-1)", do: readWithEHRToken(func(t *testing.T) string {
			return w.forgedEHRToken(t, c.mallory.key, c.mallory.ehrID, "pat-1", time.Now().Add(10*time.Minute))
		}), status: []int{401}, audit: auditWant{agent: mal, outcome: "4", status: 401, reason: "EHR token: inactive"}},
		{name: "id_token as the EHR token", do: readWithEHRToken(func(*testing.T) string { return c.m.ehr.IDToken }),
			status: []int{401}, audit: auditWant{agent: mal, outcome: "4", status: 401, reason: "EHR token: wrong_type"}},
		{name: "refresh token as the EHR token", do: readWithEHRToken(func(*testing.T) string { return c.m.ehr.Refresh }),
			status: []int{401}, audit: auditWant{agent: mal, outcome: "4", status: 401, reason: "EHR token: inactive"}},
		{name: "client assertion as the EHR token", do: readWithEHRToken(func(t *testing.T) string {
			return c.mallory.assertion(t, c.mallory.ehrID, w.ehrSMART.TokenEndpoint)
		}), status: []int{401}, audit: auditWant{agent: mal, outcome: "4", status: 401, reason: "EHR token: untrusted_issuer"}},
		{name: "payer token as the EHR token", do: readWithEHRToken(func(*testing.T) string { return c.m.payerTok }),
			status: []int{401}, audit: auditWant{agent: mal, outcome: "4", status: 401, reason: "EHR token: untrusted_issuer"}},
		{name: "expired EHR token signed by the EHR", do: readWithEHRToken(func(t *testing.T) string {
			return w.forgedEHRToken(t, ehrKey, c.mallory.ehrID, "pat-2", time.Now().Add(-2*time.Minute))
		}), status: []int{401}, audit: auditWant{agent: mal, outcome: "4", status: 401, reason: "EHR token: expired"}},

		// Mallory at the payer's authorization server.
		{name: "register claiming alice's EHR client id", do: func(t *testing.T) *reply {
			return c.mallory.registerAtPayer(t, map[string]string{w.ehrFHIR: c.alice.ehrID})
		}, status: []int{400}, audit: auditWant{anonymous: true, outcome: "4", status: 400, reason: "invalid_client_metadata: The client id " + c.alice.ehrID}},
		{name: "replayed client assertion", do: func(t *testing.T) *reply {
			a := c.mallory.assertion(t, mal, w.paySMART.TokenEndpoint)
			if first := w.postForm(t, w.paySMART.TokenEndpoint, c.mallory.payerTokenForm(payerScope, a)); first.status != http.StatusOK {
				t.Fatalf("first use of the assertion: %s", first)
			}
			return w.postForm(t, w.paySMART.TokenEndpoint, c.mallory.payerTokenForm(payerScope, a))
		}, status: []int{400, 401}, tokens: 1, audit: auditWant{outcome: "4", reason: "invalid_client: The client_assertion jti has already been used"}},

		// Alice, misbehaving with her own registration.
		{name: "narrower payer scope: read", do: narrow("system/DocumentReference.rus", http.MethodGet, "/DocumentReference/"+c.aliceDoc, nil),
			status: []int{404}, tokens: 1, audit: auditWant{agent: ali, outcome: "4", status: 404, reason: "scopes do not cover the creator's scopes"}},
		{name: "narrower payer scope: update", do: narrow("system/DocumentReference.rus", http.MethodPut, "/DocumentReference/"+c.aliceDoc,
			withSubject(nil, map[string]any{"id": c.aliceDoc})(t), "If-Match", c.aliceETag),
			status: []int{403}, tokens: 1, audit: auditWant{agent: ali, outcome: "4", status: 403, reason: "scopes do not cover the creator's scopes"}},
		{name: "narrower payer scope: search", do: narrow("system/DocumentReference.rus", http.MethodGet, "/DocumentReference?_id="+c.aliceDoc, nil),
			status: []int{200}, tokens: 1, audit: auditWant{agent: ali, outcome: "0", status: 200}},
		{name: "batch Bundle", do: asAlice(http.MethodPost, "", bundleOf("batch")),
			status: []int{400}, audit: auditWant{agent: ali, outcome: "4", status: 400, reason: "batch/transaction not supported"}},
		{name: "transaction Bundle", do: asAlice(http.MethodPost, "", bundleOf("transaction")),
			status: []int{400}, audit: auditWant{agent: ali, outcome: "4", status: 400, reason: "batch/transaction not supported"}},
		{name: "_history of the type", do: asAlice(http.MethodGet, "/DocumentReference/_history", nil),
			status: []int{400}, audit: auditWant{agent: ali, outcome: "4", status: 400, reason: "history not supported"}},
		{name: "_history of the document", do: asAlice(http.MethodGet, "/DocumentReference/"+c.aliceDoc+"/_history", nil),
			status: []int{400}, audit: auditWant{agent: ali, outcome: "4", status: 400, reason: "history not supported"}},
		{name: "vread", do: asAlice(http.MethodGet, "/DocumentReference/"+c.aliceDoc+"/_history/1", nil),
			status: []int{400}, audit: auditWant{agent: ali, outcome: "4", status: 400, reason: "history not supported"}},
		{name: "_history of the system", do: asAlice(http.MethodGet, "/_history", nil),
			status: []int{400}, audit: auditWant{agent: ali, outcome: "4", status: 400, reason: "history not supported"}},
		{name: "Patient/$everything", do: asAlice(http.MethodGet, "/Patient/pat-1/$everything", nil),
			status: []int{400}, audit: auditWant{agent: ali, outcome: "4", status: 400, reason: "$everything not supported"}},
		{name: "delete", do: asAlice(http.MethodDelete, "/DocumentReference/"+c.aliceDoc, nil),
			status: []int{405}, audit: auditWant{agent: ali, outcome: "4", status: 405, reason: "delete not supported"}},
	}

	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			c.a.fresh(t)
			c.m.fresh(t)
			before := c.tally(t)
			since := time.Now()
			r := a.do(t)
			if !slices.Contains(a.status, r.status) && a.search == "" {
				t.Fatalf("answer %s, want status %v", r, a.status)
			}
			c.nothingOfPat1(t, r)
			if a.search != "" {
				c.checkSearchAttack(t, a, since, r)
			} else {
				hit := w.requireAudit(t, since, a.audit)
				if bytes.Contains(hit.raw, []byte(c.canary)) {
					t.Fatalf("the AuditEvent holds pat-1's answers: %s", hit.raw)
				}
			}
			after := c.tally(t)
			want := before
			want.tokens += a.tokens
			if after != want {
				t.Fatalf("the payer's holdings changed: before %+v, after %+v (allowed %d new payer tokens)", before, after, a.tokens)
			}
		})
	}

	t.Run("20 concurrent copies of one client assertion", func(t *testing.T) { concurrentAssertion(t, c, 20) })
	t.Run("no token in the audit trail", func(t *testing.T) { noTokensInAudit(t, c) })
}

// checkSearchAttack: 200 with nothing of pat-1, or 400; audited either
// way with the query.
func (c *cast) checkSearchAttack(t *testing.T, a attack, since time.Time, r *reply) {
	t.Helper()
	want := auditWant{agent: c.mallory.payerID, status: r.status}
	switch r.status {
	case http.StatusOK:
		want.outcome = "0"
		if a.audit.agent != "" {
			want.agent = a.audit.agent
		}
	case http.StatusBadRequest:
		want.outcome, want.reason = "4", "bad search"
	default:
		t.Fatalf("search answered %s, want 200 without pat-1's data or 400", r)
	}
	if a.own && r.status == http.StatusOK {
		if _, docs := bundleDocs(t, r); !slices.ContainsFunc(docs, func(d fhir.DocumentReference) bool { return d.ID == c.malloryDoc }) {
			t.Fatalf("the search lost mallory's own document: %s", clip(r.body))
		}
	}
	hit := c.w.requireAudit(t, since, want)
	if q := auditQuery(t, hit); !strings.Contains(q, a.search) {
		t.Fatalf("the search's AuditEvent records query %q, want it to name %s", q, a.search)
	}
}

// auditQuery is the query an AuditEvent recorded, decoded.
func auditQuery(t *testing.T, h auditHit) string {
	t.Helper()
	for _, e := range h.ev.Entity {
		if e.Query == "" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(e.Query)
		if err != nil {
			t.Fatalf("AuditEvent entity.query is not base64: %v", err)
		}
		q, err := url.QueryUnescape(string(b))
		if err != nil {
			return string(b)
		}
		return q
	}
	return ""
}

// nothingOfPat1 checks that an answer carries no pat-1 data: not its
// canary answer, and, for a Bundle, no entry but pat-2's (mallory's own;
// alice's misbehaving searches must come back empty, since pat-1's only
// document was created with scopes her narrowed token lacks).
func (c *cast) nothingOfPat1(t *testing.T, r *reply) {
	t.Helper()
	if bytes.Contains(r.body, []byte(c.canary)) {
		t.Fatalf("the answer holds pat-1's answers: %s", clip(r.body))
	}
	var head struct {
		ResourceType string `json:"resourceType"`
	}
	_ = json.Unmarshal(r.body, &head)
	switch head.ResourceType {
	case "", "OperationOutcome":
	case "Bundle":
		var b fhir.Bundle
		r.decode(t, &b)
		for _, e := range b.Entry {
			var d fhir.DocumentReference
			if err := json.Unmarshal(e.Resource, &d); err != nil {
				t.Fatal(err)
			}
			if d.ID == c.aliceDoc || d.Subject == nil || d.Subject.Reference != c.w.ehrFHIR+"/Patient/pat-2" {
				t.Fatalf("the answer holds pat-1's document %s", e.Resource)
			}
		}
	default: // any other resource is something handed out

		t.Fatalf("the answer is a %s: %s", head.ResourceType, clip(r.body))
	}
}

// concurrentAssertion: n concurrent token requests with one assertion get
// exactly one token; the others are invalid_client and audited.
func concurrentAssertion(t *testing.T, c *cast, n int) {
	w := c.w
	before := c.tally(t)
	since := time.Now()
	a := c.mallory.assertion(t, c.mallory.payerID, w.paySMART.TokenEndpoint)
	form := c.mallory.payerTokenForm(payerScope, a)
	replies := make([]*reply, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			replies[i], errs[i] = w.trySend(http.MethodPost, w.paySMART.TokenEndpoint, []byte(form.Encode()),
				[]string{"Content-Type", "application/x-www-form-urlencoded"})
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, r := range replies {
		switch {
		case errs[i] != nil:
			t.Errorf("request %d: %v", i, errs[i])
		case r.status == http.StatusOK:
			ok++
		case (r.status == http.StatusBadRequest || r.status == http.StatusUnauthorized) && r.oauthError() == "invalid_client":
		default:
			t.Errorf("request %d: %s", i, r)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent requests with one assertion got a token, want exactly 1", ok, n)
	}
	replayed := 0
	for _, h := range w.audit(t, since, url.Values{"outcome": {"4"}}) {
		if strings.Contains(h.ev.OutcomeDesc, "jti has already been used") {
			replayed++
		}
	}
	if replayed != n-1 {
		t.Fatalf("%d AuditEvents for the replays, want %d", replayed, n-1)
	}
	after := c.tally(t)
	before.tokens++
	if after != before {
		t.Fatalf("holdings %+v, want %+v", after, before)
	}
}

// noTokensInAudit: the whole audit trail of the run holds none of the
// tokens the apps used (CONTRACT.md: "never a token").
func noTokensInAudit(t *testing.T, c *cast) {
	var all bytes.Buffer
	for _, h := range c.w.audit(t, time.Now().Add(-time.Hour), nil) {
		all.Write(h.raw)
	}
	if all.Len() == 0 {
		t.Fatal("empty audit trail")
	}
	for name, tok := range map[string]string{
		"alice's EHR access token": c.a.ehr.Access, "alice's payer token": c.a.payerTok,
		"mallory's EHR access token": c.m.ehr.Access, "mallory's refresh token": c.m.ehr.Refresh,
		"mallory's id_token": c.m.ehr.IDToken, "mallory's payer token": c.m.payerTok, "the admin token": c.w.admin,
	} {
		// A token's signature is the part no other value shares.
		sig := tok[strings.LastIndex(tok, ".")+1:]
		if len(sig) >= 16 && bytes.Contains(all.Bytes(), []byte(sig)) {
			t.Errorf("the audit trail holds %s", name)
		}
	}
}
