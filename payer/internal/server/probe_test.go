package server

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"dtrsandbox/payer/internal/authz"
	"dtrsandbox/payer/internal/documents/dbtest"
	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/fhir"
)

// The probes in this file attack the payer as it is served (httpserver.Serve,
// the whole route table, the real gate and stores) the way an outsider
// could: header and token sizes, malformed credentials, binary and hostile
// search input, body forms and sizes, console and admin credentials.

func TestMain(m *testing.M) { dbtest.Main(m) }

// fullScope is every scope the seeded dtr-app may ask for.
const fullScope = "system/Questionnaire.rs system/DocumentReference.cruds system/QuestionnaireResponse.cruds"

// drBody is a DocumentReference without subject (the payer stamps it).
const drBody = `{"resourceType":"DocumentReference","status":"current",` +
	`"type":{"coding":[{"system":"http://loinc.org","code":"74465-6"}]},"date":"2024-05-02T15:09:31.118Z",` +
	`"content":[{"attachment":{"contentType":"text/plain","data":"aGVsbG8="}}]}`

// probeWorld is a world on driver ("sqlite" or "postgres") whose rate limit
// the probes do not reach.
func probeWorld(t *testing.T, driver string, mut func(*Config)) *world {
	t.Helper()
	return newWorld(t, func(c *Config) {
		c.RateLimit = 1e6
		if driver == "postgres" {
			c.DatabaseURL = dbtest.URL(t)
		}
		if mut != nil {
			mut(c)
		}
	})
}

// forEachDriver runs fn on a payer on SQLite and on one on PostgreSQL.
func forEachDriver(t *testing.T, fn func(t *testing.T, w *world)) {
	for _, d := range dbtest.Drivers {
		t.Run(d, func(t *testing.T) { fn(t, probeWorld(t, d, nil)) })
	}
}

// tokens returns the headers of a dtr-app request for patient, with a
// fresh payer token (so its first use costs one signature check).
func (w *world) tokens(patient string) []string {
	return []string{"Authorization", "Bearer " + w.payerToken(fullScope), "X-EHR-Authorization", "Bearer " + w.ehrToken("dtr-app", patient)}
}

// crypto counts the signature checks so far: payer access tokens and EHR
// tokens.
func (w *world) crypto() (payer, ehr int64) {
	return w.srv.payerTokens.Verifications(), w.srv.ehrTokens.Stats().Verifications
}

func (w *world) rows(table string) int64 {
	w.t.Helper()
	var n int64
	if err := w.srv.DB().Table(table).Count(&n).Error; err != nil {
		w.t.Fatal(err)
	}
	return n
}

// create stores body as a DocumentReference and returns its id.
func (w *world) create(auth []string, body string) string {
	w.t.Helper()
	resp, b := w.do("POST", "/fhir/DocumentReference", body, append([]string{"Content-Type", "application/fhir+json"}, auth...)...)
	if resp.StatusCode != 201 {
		w.t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	var head struct{ ID string }
	json.Unmarshal([]byte(b), &head)
	return head.ID
}

// searchIDs decodes a searchset: total (-1 when absent) and the entries'
// subjects by id.
func searchIDs(t *testing.T, body string) (int, map[string]string) {
	t.Helper()
	var b fhir.Bundle
	if err := fhir.Decode([]byte(body), &b); err != nil || b.Type != "searchset" {
		t.Fatalf("not a searchset: %v %s", err, body)
	}
	total := -1
	if b.Total != nil {
		total = *b.Total
	}
	out := map[string]string{}
	for _, e := range b.Entry {
		var d fhir.DocumentReference
		if err := json.Unmarshal(e.Resource, &d); err != nil {
			t.Fatal(err)
		}
		subject := ""
		if d.Subject != nil {
			subject = d.Subject.Reference
		}
		out[d.ID] = subject
	}
	return total, out
}

// TestProbeHeaderCapsBeforeCrypto: oversized tokens and headers, repeated
// headers and malformed bearer values are refused before any signature
// check or EHR call; a lower-case scheme is fine.
func TestProbeHeaderCapsBeforeCrypto(t *testing.T) {
	w := probeWorld(t, "sqlite", nil)
	big := strings.Repeat("A", 9000)
	fresh := func() string { return "Bearer " + w.payerToken(fullScope) } // never verified yet
	ehr := func() string { return "Bearer " + w.ehrToken("dtr-app", "pat-1") }
	ehrRaw := w.ehrToken("dtr-app", "pat-1")
	cases := []struct {
		name   string
		hdr    []string
		status int
	}{
		{"oversized payer token", []string{"Authorization", "Bearer " + big, "X-EHR-Authorization", ehr()}, 401},
		{"oversized EHR token", []string{"Authorization", fresh(), "X-EHR-Authorization", "Bearer " + big}, 401},
		{"headers over the 32 KiB cap", []string{"Authorization", fresh(), "X-EHR-Authorization", ehr(), "X-Pad", strings.Repeat("p", 64<<10)}, 431},
		{"Authorization over the header cap", []string{"Authorization", "Bearer " + strings.Repeat("A", 64<<10), "X-EHR-Authorization", ehr()}, 431},
		{"Authorization twice", []string{"Authorization", fresh(), "Authorization", fresh(), "X-EHR-Authorization", ehr()}, 400},
		{"X-EHR-Authorization twice", []string{"Authorization", fresh(), "X-EHR-Authorization", ehr(), "X-EHR-Authorization", ehr()}, 400},
		{"two tokens in X-EHR-Authorization", []string{"Authorization", fresh(), "X-EHR-Authorization", "Bearer " + ehrRaw + " " + ehrRaw}, 401},
		{"two tokens in Authorization", []string{"Authorization", fresh() + " " + w.payerToken(fullScope), "X-EHR-Authorization", ehr()}, 401},
		{"comma-joined credentials", []string{"Authorization", fresh() + ", " + fresh(), "X-EHR-Authorization", ehr()}, 401},
		{"quoted token", []string{"Authorization", `Bearer "` + w.payerToken(fullScope) + `"`, "X-EHR-Authorization", ehr()}, 401},
		{"token with a non-ASCII byte", []string{"Authorization", fresh() + "\u00e9", "X-EHR-Authorization", ehr()}, 401},
	}
	p0, e0 := w.crypto()
	audits := w.rows("audit_events")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := w.do("GET", "/fhir/DocumentReference", "", tc.hdr...)
			if resp.StatusCode != tc.status {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if tc.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("401 without a Bearer challenge: %v", resp.Header)
			}
		})
	}
	if p, e := w.crypto(); p != p0 || e != e0 {
		t.Fatalf("%d payer and %d EHR signature checks for refused requests; want none", p-p0, e-e0)
	}
	// Every refusal the payer itself answered (not the 431s net/http
	// answers before any handler) left one AuditEvent.
	if got := w.rows("audit_events") - audits; got != int64(len(cases)-2) {
		t.Fatalf("%d AuditEvents for %d refusals by the gate", got, len(cases)-2)
	}
	// The scheme is case-insensitive (RFC 7235 §2.1): one check of each.
	resp, body := w.do("GET", "/fhir/DocumentReference", "", "authorization", "bearer "+w.payerToken(fullScope), "x-ehr-authorization", "BEARER "+w.ehrToken("dtr-app", "pat-1"))
	if resp.StatusCode != 200 {
		t.Fatalf("lower-case scheme: %d %s", resp.StatusCode, body)
	}
	if p, e := w.crypto(); p != p0+1 || e != e0+1 {
		t.Fatalf("%d payer and %d EHR signature checks for one admitted request; want 1 and 1", p-p0, e-e0)
	}
}

// TestProbeBinaryIDsAndParams: NUL, invalid UTF-8, overlong encodings and
// bidi controls in ids, parameter names and values are 4xx (never 5xx),
// each audited once, on both databases.
func TestProbeBinaryIDsAndParams(t *testing.T) {
	forEachDriver(t, func(t *testing.T, w *world) {
		auth := w.tokens("pat-1")
		w.create(auth, drBody)
		paths := []struct {
			method, path string
			status       int
		}{
			{"GET", "/fhir/DocumentReference/%00", 404},
			{"GET", "/fhir/DocumentReference/%FF%FE", 404},
			{"GET", "/fhir/DocumentReference/%C0%AF", 404},
			{"GET", "/fhir/DocumentReference/%E2%80%AEabc", 404},
			{"GET", "/fhir/DocumentReference/caf%C3%A9", 404},
			{"GET", "/fhir/DocumentReference?_id=%00", 400},
			{"GET", "/fhir/DocumentReference?status=%FF", 400},
			{"GET", "/fhir/DocumentReference?patient=" + url.QueryEscape(w.ehrURL+"/Patient/pat-1") + "%00", 400},
			{"GET", "/fhir/DocumentReference?type=%00%7Cx", 400},
			{"GET", "/fhir/DocumentReference?date=2024%00", 400},
			{"GET", "/fhir/DocumentReference?%00=1", 400},
			{"GET", "/fhir/DocumentReference?st%C3%A4tus=current", 400},
			{"GET", "/fhir/DocumentReference?status=c%C3%BCrrent", 200},
			{"GET", "/fhir/QuestionnaireResponse?questionnaire=%00", 400},
			{"GET", "/fhir/Questionnaire?name=%00", 200},
			{"GET", "/fhir/Questionnaire/%00", 404},
			// Resource types and endpoints the payer does not serve.
			{"GET", "/fhir/Observation?patient=" + url.QueryEscape(w.ehrURL+"/Patient/pat-2"), 404},
			{"GET", "/fhir/Patient/pat-2", 404},
			{"GET", "/fhir/%00", 404},
			{"DELETE", "/fhir/metadata", 405},
			{"GET", "/oauth/%FF", 404},
		}
		for _, p := range paths {
			t.Run(p.method+" "+p.path, func(t *testing.T) {
				before := w.rows("audit_events")
				resp, body := w.do(p.method, p.path, "", auth...)
				if resp.StatusCode != p.status {
					t.Fatalf("%d %s", resp.StatusCode, body)
				}
				if got := w.rows("audit_events") - before; got != 1 {
					t.Fatalf("%d AuditEvents", got)
				}
			})
		}
		// A body with a NUL in an indexed code or raw invalid UTF-8.
		for name, body := range map[string]string{
			"NUL in an indexed code": strings.Replace(drBody, `"74465-6"`, `"74465\u0000-6"`, 1),
			"invalid UTF-8":          strings.Replace(drBody, `"current"`, "\"current\",\"description\":\"\xff\"", 1),
		} {
			t.Run("create with "+name, func(t *testing.T) {
				docs := w.rows("documents")
				resp, b := w.do("POST", "/fhir/DocumentReference", body, append([]string{"Content-Type", "application/fhir+json"}, auth...)...)
				if resp.StatusCode != 400 || w.rows("documents") != docs {
					t.Fatalf("%d %s", resp.StatusCode, b)
				}
			})
		}
	})
}

// TestProbeSearchInjection: SQL metacharacters in every search parameter
// are bound as values: the answer is 200 with only the caller's documents,
// or 400; nothing of pat-2 comes back; the tables are intact. Result
// parameters (_count, _sort, _offset, _total, _summary, _format) accept
// only their grammar.
func TestProbeSearchInjection(t *testing.T) {
	forEachDriver(t, func(t *testing.T, w *world) {
		pat1, pat2 := w.ehrURL+"/Patient/pat-1", w.ehrURL+"/Patient/pat-2"
		auth1 := w.tokens("pat-1")
		own := w.create(auth1, drBody)
		other := w.create(w.tokens("pat-2"), drBody)
		payloads := []string{
			`' OR '1'='1`, `x'); DROP TABLE documents;--`, `1 OR 1=1`, `" OR ""="`, `%' --`, `*/ UNION SELECT body FROM documents --`,
			`current) OR (1=1`, `' OR patient LIKE '%`, `\' OR 1=1 --`, `$1`, `?`, `;`, other, pat2, `' || (SELECT body FROM documents LIMIT 1) || '`,
		}
		params := []string{"_id", "patient", "subject", "status", "type", "category", "date", "related", "_sort", "_count", "_offset",
			"_total", "_summary", "_format", "_elements", "_has:DocumentReference:subject:status", "subject.name", "_include"}
		for _, name := range params {
			for _, v := range payloads {
				q := url.Values{name: {v}}.Encode()
				resp, body := w.do("GET", "/fhir/DocumentReference?"+q, "", auth1...)
				switch resp.StatusCode {
				case 200:
					_, got := searchIDs(t, body)
					for id, subject := range got {
						if id != own || subject != pat1 {
							t.Fatalf("%s: entry %s about %s", q, id, subject)
						}
					}
				case 400:
				default:
					t.Fatalf("%s: %d %s", q, resp.StatusCode, body)
				}
			}
		}
		// Combined, and through POST _search.
		form := url.Values{"_id": {own + "' OR '1'='1"}, "status": {"current'--"}, "patient": {pat1 + "' OR 1=1 --"}}.Encode()
		resp, body := w.do("POST", "/fhir/DocumentReference/_search", form, append([]string{"Content-Type", "application/x-www-form-urlencoded"}, auth1...)...)
		if total, got := searchIDs(t, body); resp.StatusCode != 200 || total != 0 || len(got) != 0 {
			t.Fatalf("POST _search with metacharacters: %d %s", resp.StatusCode, body)
		}
		if w.rows("documents") != 2 || w.rows("document_params") == 0 {
			t.Fatal("the document tables changed")
		}

		// Result parameters.
		results := []struct {
			query   string
			status  int
			total   int // -1 none
			entries int
		}{
			{"_count=0", 200, 1, 0},
			{"_count=-1", 400, 0, 0},
			{"_count=99999999999999999999", 400, 0, 0},
			{"_count=1000000", 200, 1, 1},
			{"_count=1.5", 400, 0, 0},
			{"_count=0x10", 400, 0, 0},
			{"_count=1&_count=2", 400, 0, 0},
			{"_offset=-1", 400, 0, 0},
			{"_offset=99999999", 400, 0, 0},
			{"_sort=date;DROP TABLE documents", 400, 0, 0},
			{"_sort=date%20DESC", 400, 0, 0},
			{"_sort=(select 1)", 400, 0, 0},
			{"_sort=-date,date", 400, 0, 0},
			{"_sort=-date,_lastUpdated", 200, 1, 1},
			{"_summary=count&patient=" + url.QueryEscape(pat2), 200, 0, 0},
			{"_total=accurate&_id=" + other, 200, 0, 0},
			{"status=current&status=current", 200, 1, 1},
			{"patient=" + url.QueryEscape(pat1) + "&patient=" + url.QueryEscape(pat2), 200, 0, 0},
			{"_format=xml", 400, 0, 0},
			{"_format=application/fhir%2Bxml", 400, 0, 0},
			{"_format=json", 200, 1, 1},
		}
		for _, r := range results {
			t.Run(r.query, func(t *testing.T) {
				resp, body := w.do("GET", "/fhir/DocumentReference?"+r.query, "", auth1...)
				if resp.StatusCode != r.status {
					t.Fatalf("%d %s", resp.StatusCode, body)
				}
				if r.status != 200 {
					return
				}
				total, got := searchIDs(t, body)
				if total != r.total || len(got) != r.entries {
					t.Fatalf("total %d, %d entries; want %d, %d: %s", total, len(got), r.total, r.entries, body)
				}
			})
		}
	})
}

// TestProbeIfMatch: the If-Match forms at the HTTP surface.
func TestProbeIfMatch(t *testing.T) {
	w := probeWorld(t, "sqlite", nil)
	auth := w.tokens("pat-1")
	id := w.create(auth, drBody)
	body := strings.Replace(drBody, `"status":"current"`, `"id":"`+id+`","status":"superseded"`, 1)
	put := func(ifMatch ...string) int {
		hdr := append([]string{"Content-Type", "application/fhir+json"}, auth...)
		for _, v := range ifMatch {
			hdr = append(hdr, "If-Match", v)
		}
		resp, _ := w.do("PUT", "/fhir/DocumentReference/"+id, body, hdr...)
		return resp.StatusCode
	}
	for _, tc := range []struct {
		ifMatch []string
		status  int
	}{
		{nil, 428}, {[]string{"*"}, 400}, {[]string{"garbage"}, 400}, {[]string{`W/"01"`}, 400},
		{[]string{`W/"1", W/"2"`}, 400}, {[]string{`W/"2"`}, 412}, {[]string{`W/"1"`, `W/"1"`}, 400},
		{[]string{`W/"1"`}, 200}, {[]string{`"2"`}, 200}, {[]string{`W/"2"`}, 412},
	} {
		if got := put(tc.ifMatch...); got != tc.status {
			t.Fatalf("If-Match %q: %d, want %d", tc.ifMatch, got, tc.status)
		}
	}
}

// TestProbeBodies: media types, content codings and sizes. A body the
// payer will not take is refused before it is read or stored; 10 MiB is
// 413 whether announced or streamed, and an unauthenticated one is refused
// by the gate without being read.
func TestProbeBodies(t *testing.T) {
	w := probeWorld(t, "sqlite", nil)
	auth := w.tokens("pat-1")
	docs := func() int64 { return w.rows("documents") }
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(drBody))
	zw.Close()
	cases := []struct {
		name, path, body string
		hdr              []string
		status           int
	}{
		{"text/plain", "/fhir/DocumentReference", drBody, []string{"Content-Type", "text/plain"}, 415},
		{"application/xml", "/fhir/DocumentReference", drBody, []string{"Content-Type", "application/xml"}, 415},
		{"application/fhir+xml", "/fhir/DocumentReference", drBody, []string{"Content-Type", "application/fhir+xml"}, 415},
		{"no Content-Type", "/fhir/DocumentReference", drBody, nil, 415},
		{"form", "/fhir/DocumentReference", drBody, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415},
		{"UTF-16 charset", "/fhir/DocumentReference", drBody, []string{"Content-Type", "application/fhir+json; charset=utf-16"}, 415},
		{"gzip", "/fhir/DocumentReference", gz.String(), []string{"Content-Type", "application/fhir+json", "Content-Encoding", "gzip"}, 415},
		{"deflate", "/fhir/DocumentReference", drBody, []string{"Content-Type", "application/fhir+json", "Content-Encoding", "deflate"}, 415},
		{"gzip to $questionnaire-package", "/fhir/Questionnaire/$questionnaire-package", gz.String(), []string{"Content-Type", "application/fhir+json", "Content-Encoding", "gzip"}, 415},
		{"application/json", "/fhir/DocumentReference", drBody, []string{"Content-Type", "application/json"}, 201},
		{"identity coding", "/fhir/DocumentReference", drBody, []string{"Content-Type", "application/fhir+json; charset=utf-8", "Content-Encoding", "identity"}, 201},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := docs()
			resp, body := w.do("POST", tc.path, tc.body, append(tc.hdr, auth...)...)
			if resp.StatusCode != tc.status {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if tc.status != 201 && docs() != before {
				t.Fatal("stored")
			}
		})
	}

	// 10 MiB. Announced by Content-Length but never sent: the answer must
	// come at once, without the payer asking for the body (no "100
	// Continue") or waiting for it. Streamed in chunks: 413 once the cap
	// is passed.
	before, audits := docs(), w.rows("audit_events")
	auth = w.tokens("pat-1")
	for _, tc := range []struct {
		name, line string
		hdr        []string
		tokens     bool // send dtr-app's two tokens
		chunked    bool
		status     string
	}{
		{"unauthenticated", "POST /fhir/DocumentReference", []string{"Content-Type: application/fhir+json"}, false, false, "401"},
		{"create", "POST /fhir/DocumentReference", []string{"Content-Type: application/fhir+json"}, true, false, "413"},
		{"update", "PUT /fhir/DocumentReference/x", []string{"Content-Type: application/fhir+json", `If-Match: W/"1"`}, true, false, "413"},
		{"POST _search", "POST /fhir/DocumentReference/_search", []string{"Content-Type: application/x-www-form-urlencoded"}, true, false, "413"},
		{"$questionnaire-package", "POST /fhir/Questionnaire/$questionnaire-package", []string{"Content-Type: application/fhir+json"}, true, false, "413"},
		{"token endpoint", "POST /oauth/token", []string{"Content-Type: application/x-www-form-urlencoded"}, false, false, "400"},
		{"registration", "POST /oauth/register", []string{"Content-Type: application/json"}, false, false, "400"},
		{"console sign-in", "POST /console/login", []string{"Content-Type: application/x-www-form-urlencoded"}, false, false, "413"},
		{"streamed create", "POST /fhir/DocumentReference", []string{"Content-Type: application/fhir+json"}, true, true, "413"},
		{"streamed, unauthenticated", "POST /fhir/DocumentReference", []string{"Content-Type: application/fhir+json"}, false, true, "401"},
	} {
		for _, expect := range []bool{false, true} {
			t.Run(fmt.Sprintf("10 MiB %s expect=%v", tc.name, expect), func(t *testing.T) {
				hdr := append([]string(nil), tc.hdr...)
				if tc.tokens {
					hdr = append(hdr, "Authorization: "+auth[1], "X-EHR-Authorization: "+auth[3])
				}
				if expect {
					hdr = append(hdr, "Expect: 100-continue")
				}
				status, sawContinue := rawUpload(t, w, tc.line, hdr, 10<<20, tc.chunked)
				if status != tc.status {
					t.Fatalf("status %s, want %s", status, tc.status)
				}
				if sawContinue && !tc.chunked {
					t.Fatal("the payer asked for a body it refuses on its announced size (100 Continue)")
				}
			})
		}
	}
	if docs() != before {
		t.Fatal("a 10 MiB request stored a document")
	}
	if w.rows("audit_events") < audits+14 {
		t.Fatal("the refused 10 MiB requests were not audited")
	}
}

// rawUpload sends one request over a raw connection: the request line, the
// headers and a body of size bytes (announced by Content-Length and not
// sent, or sent in 64 KiB chunks). It returns the status code of the final
// answer and whether a "100 Continue" came first. The answer must come
// within 20 s (the server's read timeout is 30 s: a payer waiting for the
// body it announced would miss it).
func rawUpload(t *testing.T, w *world, line string, hdr []string, size int, chunked bool) (status string, sawContinue bool) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(w.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var head strings.Builder
	head.WriteString(line + " HTTP/1.1\r\nHost: payer.test\r\n")
	for _, h := range hdr {
		head.WriteString(h + "\r\n")
	}
	if chunked {
		head.WriteString("Transfer-Encoding: chunked\r\n\r\n")
	} else {
		head.WriteString("Content-Length: " + strconv.Itoa(size) + "\r\n\r\n")
	}
	if _, err := io.WriteString(conn, head.String()); err != nil {
		t.Fatal(err)
	}
	if chunked {
		go func() { // the payer may stop reading and close: write errors are expected
			chunk := bytes.Repeat([]byte(" "), 64<<10)
			for sent := 0; sent < size; sent += len(chunk) {
				if _, err := fmt.Fprintf(conn, "%x\r\n%s\r\n", len(chunk), chunk); err != nil {
					return
				}
			}
			io.WriteString(conn, "0\r\n\r\n")
		}()
	}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(conn)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusContinue {
			sawContinue = true
			continue
		}
		return strconv.Itoa(resp.StatusCode), sawContinue
	}
}

// TestProbeConsoleAndAdmin: the console's cookie and CSRF defences and the
// admin token at the HTTP surface; the admin token opens nothing but the
// audit trail and the console.
func TestProbeConsoleAndAdmin(t *testing.T) {
	w := probeWorld(t, "sqlite", nil)
	admin := w.adminToken()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// post submits form to path with the cookie (if any) and the header
	// name/value pairs hdr, without following a redirect.
	post := func(path string, form url.Values, cookie *http.Cookie, hdr ...string) *http.Response {
		req, _ := http.NewRequest("POST", w.url+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if cookie != nil {
			req.AddCookie(cookie)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	login := func(token string, hdr ...string) *http.Response {
		return post("/console/login", url.Values{"token": {token}}, nil, hdr...)
	}
	// Cross-site sign-ins are refused even with the right token.
	for _, h := range [][]string{{"Origin", "https://evil.example"}, {"Origin", "null"}, {"Sec-Fetch-Site", "cross-site"}, {"Sec-Fetch-Site", "same-site"}} {
		if resp := login(admin, h...); resp.StatusCode != 403 || len(resp.Cookies()) != 0 {
			t.Fatalf("sign-in with %v: %d %v", h, resp.StatusCode, resp.Cookies())
		}
	}
	// Near misses of the admin token.
	for _, guess := range []string{"", admin[:len(admin)-1], admin + "x", strings.ToUpper(admin), " " + admin[1:]} {
		if resp := login(guess, "Origin", w.url); resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
			t.Fatalf("sign-in with a near miss: %d", resp.StatusCode)
		}
	}
	resp := login(admin, "Origin", w.url)
	if resp.StatusCode != 303 {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	set := resp.Header.Get("Set-Cookie")
	for _, attr := range []string{"__Host-payer-console=", "Path=/", "HttpOnly", "Secure", "SameSite=Strict"} {
		if !strings.Contains(set, attr) {
			t.Fatalf("Set-Cookie %q lacks %s", set, attr)
		}
	}
	if strings.Contains(set, "Domain=") || strings.Contains(set, admin) {
		t.Fatalf("Set-Cookie %q", set)
	}
	cookie := resp.Cookies()[0]
	page := func(path string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", w.url+path, nil)
		req.AddCookie(cookie)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	r, body := page("/console/audit")
	if r.StatusCode != 200 || r.Header.Get("Cache-Control") != "no-store" || !strings.Contains(r.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("console page: %d %v", r.StatusCode, r.Header)
	}
	if strings.Contains(body, admin) {
		t.Fatal("the admin token is on a console page")
	}
	// Sign-out needs the page's CSRF token and the console's origin.
	logout := func(csrf string, hdr ...string) int {
		return post("/console/logout", url.Values{"csrf": {csrf}}, cookie, hdr...).StatusCode
	}
	i := strings.Index(body, `name="csrf" value="`)
	if i < 0 {
		t.Fatal("no CSRF token on the page")
	}
	csrf := body[i+len(`name="csrf" value="`):]
	csrf = csrf[:strings.IndexByte(csrf, '"')]
	if got := logout(""); got != 403 {
		t.Fatalf("sign-out without CSRF: %d", got)
	}
	if got := logout(csrf, "Origin", "https://evil.example"); got != 403 {
		t.Fatalf("cross-site sign-out: %d", got)
	}
	if r, _ := page("/console/documents"); r.StatusCode != 200 {
		t.Fatalf("the refused sign-outs ended the session: %d", r.StatusCode)
	}
	if got := logout(csrf, "Origin", w.url); got != 303 {
		t.Fatalf("sign-out: %d", got)
	}
	if r, _ := page("/console/documents"); r.StatusCode != 303 {
		t.Fatalf("session alive after sign-out: %d", r.StatusCode)
	}

	// The admin token at the FHIR API: the audit trail only, and only as a
	// Bearer header.
	for _, tc := range []struct {
		path   string
		hdr    []string
		status int
	}{
		{"/fhir/AuditEvent", []string{"Authorization", "Bearer " + admin}, 200},
		{"/fhir/AuditEvent", []string{"Authorization", "bearer " + admin}, 200},
		{"/fhir/AuditEvent", []string{"Authorization", "Bearer " + admin[:len(admin)-1]}, 401},
		{"/fhir/AuditEvent", []string{"Authorization", "Bearer " + admin + "A"}, 401},
		{"/fhir/AuditEvent", []string{"Authorization", "Basic " + admin}, 401},
		{"/fhir/AuditEvent?access_token=" + admin, nil, 401},
		{"/fhir/AuditEvent", []string{"Authorization", "Bearer " + w.payerToken(fullScope)}, 401},
		{"/fhir/DocumentReference", []string{"Authorization", "Bearer " + admin, "X-EHR-Authorization", "Bearer " + w.ehrToken("dtr-app", "pat-1")}, 401},
		{"/fhir/Questionnaire", []string{"Authorization", "Bearer " + admin}, 401},
	} {
		if resp, body := w.do("GET", tc.path, "", tc.hdr...); resp.StatusCode != tc.status {
			t.Fatalf("%s %v: %d %s", tc.path, tc.hdr, resp.StatusCode, body)
		}
	}
	// And the AuditEvents of all this carry no admin token.
	if _, body := w.do("GET", "/fhir/AuditEvent?_count=200", "", "Authorization", "Bearer "+admin); strings.Contains(body, admin) || strings.Contains(body, strconv.Quote(admin)[1:20]) {
		t.Fatal("the admin token is in the audit trail")
	}
}

// TestThrottleOutsideTheGate: the token and registration endpoints, the
// audit search and the console sign-in are rate limited per address before
// anything is checked (a rate so low that no request gets through: no
// clock involved), answer 429 with Retry-After in their own format, and
// audit the refusal; the FHIR routes' buckets are separate.
func TestThrottleOutsideTheGate(t *testing.T) {
	w := probeWorld(t, "sqlite", func(c *Config) { c.RateLimit = 0.01 }) // burst 0.02: never a whole token
	signer := &clientauth.Signer{Key: w.appKey, ClientID: SeedClientID}
	good, _ := signer.Form(w.url+authz.TokenPath, url.Values{"grant_type": {"client_credentials"}, "scope": {fullScope}})
	cases := []struct {
		name, method, path, body string
		hdr                      []string
		format                   string // a substring of the body
		reason                   string
	}{
		{"token", "POST", authz.TokenPath, good.Encode(), []string{"Content-Type", "application/x-www-form-urlencoded"}, `"error":"slow_down"`, "rate limit exceeded for token requests from 127.0.0.1"},
		{"registration", "POST", authz.RegistrationPath, `{}`, []string{"Content-Type", "application/json"}, `"error":"slow_down"`, "rate limit exceeded for registration requests from 127.0.0.1"},
		{"audit search", "GET", "/fhir/AuditEvent", "", []string{"Authorization", "Bearer " + w.adminToken()}, `"code":"throttled"`, "rate limit exceeded for admin requests from 127.0.0.1"},
		{"console sign-in", "POST", "/console/login", url.Values{"token": {w.adminToken()}}.Encode(), []string{"Content-Type", "application/x-www-form-urlencoded"}, "Too many requests", "rate limit exceeded for admin requests from 127.0.0.1"},
		{"FHIR route", "GET", "/fhir/Questionnaire", "", nil, `"code":"throttled"`, "rate limit exceeded for unverified requests from 127.0.0.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := w.rows("audit_events")
			resp, body := w.do(tc.method, tc.path, tc.body, tc.hdr...)
			if resp.StatusCode != 429 || !strings.Contains(body, tc.format) {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
				t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
			}
			var rows []struct {
				Reason string
				Status int
			}
			w.srv.DB().Table("audit_events").Order("recorded_us DESC").Limit(1).Find(&rows)
			if w.rows("audit_events") != before+1 || len(rows) != 1 || rows[0].Status != 429 || rows[0].Reason != tc.reason {
				t.Fatalf("audit %+v", rows)
			}
		})
	}
	if n := w.rows("payer_access_tokens") + w.rows("payer_clients"); n != 1 { // the seeded dtr-app only
		t.Fatalf("%d tokens and clients after throttled requests", n)
	}
	if resp, _ := w.do("GET", "/healthz", ""); resp.StatusCode != 200 {
		t.Fatal("health check throttled")
	}
}
