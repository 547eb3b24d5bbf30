package audit

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"dtrsandbox/payer/internal/access"
	"dtrsandbox/payer/internal/documents/dbtest"
	"dtrsandbox/shared/fhir"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func forEachDB(t *testing.T, fn func(t *testing.T, db *gorm.DB)) { dbtest.ForEachDB(t, fn) }

const (
	base   = "https://payer.test/fhir"
	ehr    = "https://ehr.test/fhir"
	pat1   = ehr + "/Patient/pat-1"
	pat2   = ehr + "/Patient/pat-2"
	prac1  = ehr + "/Practitioner/prac-1"
	tokenA = "0123456789abcdef0123456789abcdef-admin"
)

func event(patient, client, outcome string, at time.Time) Event {
	ev := Event{Time: at, Action: "R", Interaction: "read", ResourceType: "DocumentReference", ResourceID: "d1",
		Outcome: outcome, Status: 200, ClientID: client, FHIRUser: prac1, EHRIssuer: ehr, Patient: patient,
		PurposeOfUse: "TREAT", SourceIP: "127.0.0.1", Query: "status=current&access_token=leaked-secret"}
	if outcome != OutcomeSuccess {
		ev.Reason, ev.Status = "document of another patient", 404
	}
	return ev
}

// TestAuditEventShape: the stored AuditEvent is valid FHIR R4 JSON with
// the type, subtype, action, outcome and reason, purpose of use, the app
// and user agents, the payer as observer, the patient and resource
// entities, and no token.
func TestAuditEventShape(t *testing.T) {
	db := dbtest.Open(t, "sqlite")
	s, err := NewStore(db, StoreConfig{Source: base})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 5, 2, 15, 11, 2, 551e6, time.UTC)
	if err := s.Record(t.Context(), nil, event(pat1, "dtr-app", OutcomeMinorFailure, at)); err != nil {
		t.Fatal(err)
	}
	entries, total, err := s.Search(t.Context(), Filter{})
	if err != nil || total != 1 {
		t.Fatal(total, err)
	}
	raw := entries[0].Body
	if bytes.Contains(raw, []byte("leaked-secret")) {
		t.Fatal("token in the AuditEvent")
	}
	var ae fhir.AuditEvent
	if err := fhir.Decode(raw, &ae); err != nil {
		t.Fatal(err)
	}
	if ae.ResourceType != "AuditEvent" || ae.ID != entries[0].ID || ae.Type.Code != "rest" || len(ae.Subtype) != 1 || ae.Subtype[0].Code != "read" {
		t.Fatalf("type %+v %+v", ae.Type, ae.Subtype)
	}
	if ae.Action != "R" || ae.Outcome != "4" || ae.OutcomeDesc != "document of another patient" || ae.Recorded != "2024-05-02T15:11:02.551Z" {
		t.Fatalf("%+v", ae)
	}
	if len(ae.PurposeOfEvent) != 1 || ae.PurposeOfEvent[0].Coding[0].Code != "TREAT" || ae.PurposeOfEvent[0].Coding[0].System != systemActReason {
		t.Fatal("purposeOfEvent")
	}
	if len(ae.Agent) != 2 {
		t.Fatalf("%d agents", len(ae.Agent))
	}
	app, user := ae.Agent[0], ae.Agent[1]
	if app.Who.Identifier.Value != "dtr-app" || app.Who.Identifier.System != base+"/client_id" || *app.Requestor {
		t.Fatalf("app agent %+v", app)
	}
	if user.Who.Reference != prac1 || user.Who.Identifier.System != ehr || !*user.Requestor {
		t.Fatalf("user agent %+v", user.Who)
	}
	if ae.Source == nil || ae.Source.Observer.Identifier.Value != base {
		t.Fatal("observer")
	}
	if ae.Entity[0].What.Reference != pat1 || ae.Entity[1].What.Reference != "DocumentReference/d1" {
		t.Fatalf("entities %+v", ae.Entity)
	}
	q, _ := base64.StdEncoding.DecodeString(ae.Entity[2].Query)
	if !strings.Contains(string(q), "status=current") || strings.Contains(string(q), "leaked") {
		t.Fatalf("query %q", q)
	}
}

func TestRelativeFHIRUser(t *testing.T) {
	ev := event(pat1, "dtr-app", OutcomeSuccess, time.Now())
	ev.FHIRUser = "Practitioner/prac-1"
	ae := buildAuditEvent("x", ev, base)
	if got := ae.Agent[1].Who.Reference; got != prac1 {
		t.Fatalf("user reference %q, want %q", got, prac1)
	}
}

func TestRecordValidation(t *testing.T) {
	db := dbtest.Open(t, "sqlite")
	s, _ := NewStore(db, StoreConfig{Source: base})
	bad := []Event{
		{Action: "R"},                               // no outcome
		{Action: "X", Outcome: OutcomeSuccess},      // bad action
		{Action: "R", Outcome: "3"},                 // bad outcome
		{Action: "R", Outcome: OutcomeMinorFailure}, // failure without reason
		{Action: "R", Outcome: OutcomeSuccess, Patient: strings.Repeat("x", 5000)},
	}
	for i, ev := range bad {
		if err := s.Record(t.Context(), nil, ev); err == nil {
			t.Errorf("event %d accepted", i)
		}
	}
}

// TestRecordInTransaction: an event recorded with a transaction commits
// and rolls back with it.
func TestRecordInTransaction(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *gorm.DB) {
		s, err := NewStore(db, StoreConfig{Source: base})
		if err != nil {
			t.Fatal(err)
		}
		boom := errors.New("change failed")
		err = db.Transaction(func(tx *gorm.DB) error {
			if err := s.Record(t.Context(), tx, event(pat1, "dtr-app", OutcomeSuccess, time.Now())); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		if _, total, _ := s.Search(t.Context(), Filter{}); total != 0 {
			t.Fatal("event survived the rollback")
		}
		err = db.Transaction(func(tx *gorm.DB) error {
			return s.Record(t.Context(), tx, event(pat1, "dtr-app", OutcomeSuccess, time.Now()))
		})
		if _, total, _ := s.Search(t.Context(), Filter{}); err != nil || total != 1 {
			t.Fatal("event not committed")
		}
	})
}

// adminEnv serves GET /fhir/AuditEvent behind AdminOnly.
func adminEnv(t *testing.T, db *gorm.DB) (*Store, *gin.Engine) {
	s, err := NewStore(db, StoreConfig{Source: base})
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHandler(HandlerConfig{Store: s, Base: base})
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/fhir/AuditEvent", AdminOnly(tokenA, WithDenialAudit(s, nil)), h.Search)
	return s, r
}

func get(r *gin.Engine, path, auth string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

func TestAdminSearch(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *gorm.DB) {
		s, r := adminEnv(t, db)
		day := func(d int) time.Time { return time.Date(2024, 5, d, 12, 0, 0, 0, time.UTC) }
		seed := []Event{
			event(pat1, "dtr-app", OutcomeSuccess, day(1)),
			event(pat1, "dtr-app", OutcomeMinorFailure, day(2)),
			event(pat2, "other-app", OutcomeSuccess, day(3)),
			event(pat2, "dtr-app", OutcomeMinorFailure, day(4)),
		}
		seed[2].FHIRUser = ehr + "/Practitioner/prac-2"
		for _, ev := range seed {
			if err := s.Record(t.Context(), nil, ev); err != nil {
				t.Fatal(err)
			}
		}
		cases := []struct {
			query string
			want  int
		}{
			{"", 4},
			{"patient=" + url.QueryEscape(pat1), 2},
			{"patient=" + url.QueryEscape(pat1) + "," + url.QueryEscape(pat2), 4},
			{"agent=other-app", 1},
			{"agent=" + url.QueryEscape(ehr+"/Practitioner/prac-2"), 1},
			{"agent=dtr-app&patient=" + url.QueryEscape(pat2), 1},
			{"outcome=4", 2},
			{"outcome=0,4", 4},
			{"date=ge2024-05-02&date=le2024-05-03", 2},
			{"date=2024-05-04", 1},
			{"date=lt2024-05-02", 1},
			{"_count=1", 4},
		}
		for _, tc := range cases {
			t.Run(tc.query, func(t *testing.T) {
				w := get(r, "/fhir/AuditEvent?"+tc.query, "Bearer "+tokenA)
				if w.Code != 200 {
					t.Fatalf("%d %s", w.Code, w.Body)
				}
				var b fhir.Bundle
				if err := fhir.Decode(w.Body.Bytes(), &b); err != nil || b.Type != "searchset" || b.Total == nil {
					t.Fatalf("%s", w.Body)
				}
				// Each admin search adds its own AuditEvent (client "admin",
				// no patient); count only the seeded ones.
				n := 0
				for _, e := range b.Entry {
					var ae fhir.AuditEvent
					if err := fhir.Decode(e.Resource, &ae); err != nil {
						t.Fatal(err)
					}
					if !strings.HasPrefix(e.FullURL, base+"/AuditEvent/") {
						t.Fatalf("fullUrl %q", e.FullURL)
					}
					if ae.Agent[0].AltID != AdminPrincipal {
						n++
					}
				}
				if tc.query == "_count=1" {
					if len(b.Entry) != 1 || *b.Total < 5 || len(b.Link) != 2 || b.Link[1].Relation != "next" {
						t.Fatalf("page: %d entries, total %d, links %+v", len(b.Entry), *b.Total, b.Link)
					}
					return
				}
				if n != tc.want || *b.Total < tc.want {
					t.Fatalf("%d matching events (total %d), want %d", n, *b.Total, tc.want)
				}
			})
		}
		for _, q := range []string{"outcome=9", "date=ne2024", "date=x", "agent:missing=true", "patient.name=x", "entity=x", "_count=x"} {
			t.Run("refused "+q, func(t *testing.T) {
				w := get(r, "/fhir/AuditEvent?"+q, "Bearer "+tokenA)
				if w.Code != 400 {
					t.Fatalf("%d %s", w.Code, w.Body)
				}
			})
		}
	})
}

func TestAdminOnly(t *testing.T) {
	db := dbtest.Open(t, "sqlite")
	s, r := adminEnv(t, db)
	cases := []struct {
		name, auth string
		status     int
		challenge  string
	}{
		{"no header", "", 401, `Bearer realm="payer-admin"`},
		{"wrong token", "Bearer nope", 401, `error="invalid_token"`},
		{"prefix of the token", "Bearer " + tokenA[:10], 401, `error="invalid_token"`},
		{"basic", "Basic " + tokenA, 401, `Bearer realm="payer-admin"`},
		{"right token", "Bearer " + tokenA, 200, ""},
		{"scheme case-insensitive", "bearer " + tokenA, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, before, _ := s.Search(t.Context(), Filter{})
			w := get(r, "/fhir/AuditEvent", tc.auth)
			if w.Code != tc.status {
				t.Fatalf("%d", w.Code)
			}
			if _, after, _ := s.Search(t.Context(), Filter{}); after != before+1 {
				t.Fatal("want one AuditEvent per request")
			}
			if tc.status == 401 {
				if !strings.Contains(w.Header().Get("WWW-Authenticate"), tc.challenge) {
					t.Fatalf("challenge %q", w.Header().Get("WWW-Authenticate"))
				}
				var oo fhir.OperationOutcome
				if err := fhir.Decode(w.Body.Bytes(), &oo); err != nil || oo.ResourceType != "OperationOutcome" {
					t.Fatal("401 without OperationOutcome")
				}
			}
		})
	}
	t.Run("empty admin token refuses everything", func(t *testing.T) {
		gin.SetMode(gin.ReleaseMode)
		r := gin.New()
		r.GET("/x", AdminOnly(""), func(c *gin.Context) { c.Status(200) })
		if w := get(r, "/x", "Bearer "); w.Code != 401 {
			t.Fatal(w.Code)
		}
	})
	t.Run("handler without AdminOnly refuses", func(t *testing.T) {
		h, _ := NewHandler(HandlerConfig{Store: s, Base: base})
		r := gin.New()
		r.GET("/fhir/AuditEvent", h.Search)
		if w := get(r, "/fhir/AuditEvent", "Bearer "+tokenA); w.Code != 401 {
			t.Fatal(w.Code)
		}
		r2 := gin.New()
		r2.GET("/fhir/AuditEvent", func(c *gin.Context) {
			c.Request = c.Request.WithContext(access.With(c.Request.Context(), &access.Principal{ClientID: "dtr-app"}))
		}, h.Search)
		if w := get(r2, "/fhir/AuditEvent", ""); w.Code != 401 {
			t.Fatal("an app principal reached the audit trail")
		}
	})
}

func TestLoadOrCreateAdminToken(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "payer", "admin-token")
	tok, err := LoadOrCreateAdminToken(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) != 32 {
		t.Fatalf("token %q is not 256 random bits", tok)
	}
	info, _ := os.Stat(path)
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", info.Mode().Perm())
	}
	again, err := LoadOrCreateAdminToken(path)
	if err != nil || again != tok {
		t.Fatal("token not reused")
	}
	os.Chmod(path, 0o644)
	if _, err := LoadOrCreateAdminToken(path); err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Fatal("loose mode not fixed")
	}
	weak := filepath.Join(dir, "weak")
	os.WriteFile(weak, []byte("admin\n"), 0o600)
	if _, err := LoadOrCreateAdminToken(weak); err == nil {
		t.Fatal("weak token accepted")
	}
	other, _ := LoadOrCreateAdminToken(filepath.Join(dir, "other"))
	if other == tok {
		t.Fatal("tokens repeat")
	}
}

func TestScrubQuery(t *testing.T) {
	got := ScrubQuery("a=1&access_token=xyz&client_assertion=abc&Code=q")
	for _, secret := range []string{"xyz", "abc", "=q"} {
		if strings.Contains(got, secret) {
			t.Fatalf("%q keeps %q", got, secret)
		}
	}
	if ScrubQuery("status=current") != "status=current" {
		t.Fatal("clean query changed")
	}
}

// TestStatusOnEveryEvent: events about no resource type (registration,
// token, console sign-in, batch, system _history) carry the HTTP status
// answered, like resource events do; a registration names the client it
// registered only when one was stored; no entity has both a name and a
// query (R4 sev-1).
func TestStatusOnEveryEvent(t *testing.T) {
	cases := []struct {
		name string
		ev   Event
		role string // object-role code of the system entity
		what string // identifier value of the entity, "" for none
	}{
		{"registration stored", Event{Action: "C", Interaction: "register", Outcome: OutcomeSuccess, Status: 201, ClientID: "c-1"}, "11", "c-1"},
		{"registration refused", Event{Action: "C", Interaction: "register", Outcome: OutcomeMinorFailure, Status: 400,
			Reason: "invalid_client_metadata: The client id x at y is already registered by another client"}, "11", ""},
		{"token", Event{Action: "E", Interaction: "token", Outcome: OutcomeMinorFailure, Status: 401, Reason: "invalid_client: replay", ClientID: "c-1"}, "13", ""},
		{"console sign-in", Event{Action: "E", Interaction: "login", Outcome: OutcomeSuccess, Status: 303, ClientID: AdminPrincipal}, "13", ""},
		{"batch", Event{Action: "E", Interaction: "batch", Outcome: OutcomeMinorFailure, Status: 400, Reason: "batch/transaction not supported",
			ClientID: "c-1", Query: "_format=json"}, "4", ""},
		{"system _history", Event{Action: "R", Interaction: "history", Outcome: OutcomeMinorFailure, Status: 400, Reason: "history not supported"}, "4", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := json.Marshal(buildAuditEvent("x", tc.ev, base))
			if err != nil {
				t.Fatal(err)
			}
			var ae fhir.AuditEvent
			if err := fhir.Decode(raw, &ae); err != nil {
				t.Fatal(err)
			}
			status, role, what := "", "", ""
			for _, e := range ae.Entity {
				if e.Name != "" && e.Query != "" {
					t.Fatalf("entity with a name and a query (sev-1): %+v", e)
				}
				for _, d := range e.Detail {
					if d.Type == "http-status" {
						status, role = d.ValueString, e.Role.Code
						if e.What != nil && e.What.Identifier != nil {
							what = e.What.Identifier.Value
						}
					}
				}
			}
			if status != strconv.Itoa(tc.ev.Status) || role != tc.role || what != tc.what {
				t.Fatalf("status %q role %q what %q; want %d %s %q\n%s", status, role, what, tc.ev.Status, tc.role, tc.what, raw)
			}
		})
	}
	// A resource event's query entity carries no name either.
	ae := buildAuditEvent("x", event(pat1, "dtr-app", OutcomeSuccess, time.Now()), base)
	for _, e := range ae.Entity {
		if e.Name != "" && e.Query != "" {
			t.Fatalf("entity with a name and a query (sev-1): %+v", e)
		}
	}
}

// TestRecordCleansText: caller-supplied text with a NUL or invalid UTF-8
// (an id from a path, a query, a claim) is recorded, not refused: on
// PostgreSQL such text would fail the insert and lose the event.
func TestRecordCleansText(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *gorm.DB) {
		s, err := NewStore(db, StoreConfig{Source: base})
		if err != nil {
			t.Fatal(err)
		}
		ev := event(pat1, "app\x00x", OutcomeMinorFailure, time.Now())
		ev.ResourceID, ev.Reason, ev.Query, ev.FHIRUser = "d\x00\xff", "bad \xff\xfe reason \x00", "status=%00&x=\xff", "Practitioner/\x00"
		if err := s.Record(t.Context(), nil, ev); err != nil {
			t.Fatalf("event with NUL and invalid UTF-8 refused: %v", err)
		}
		entries, _, err := s.Search(t.Context(), Filter{Agent: []string{"app\uFFFDx"}})
		if err != nil || len(entries) != 1 {
			t.Fatalf("%d entries, %v", len(entries), err)
		}
		e := entries[0]
		for _, f := range []string{e.ResourceID, e.Reason, e.ClientID, e.FHIRUser, string(e.Body)} {
			if !utf8.ValidString(f) || strings.ContainsRune(f, 0) {
				t.Fatalf("stored text %q", f)
			}
		}
		var ae fhir.AuditEvent
		if err := fhir.Decode(e.Body, &ae); err != nil {
			t.Fatal(err)
		}
	})
}

// TestAdminSearchRefusesBinaryValues: a NUL or invalid UTF-8 in a search
// value is a 400, not a database error.
func TestAdminSearchRefusesBinaryValues(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *gorm.DB) {
		_, r := adminEnv(t, db)
		for _, q := range []string{"patient=%00", "agent=%FF", "patient=a%00b,c"} {
			if w := get(r, "/fhir/AuditEvent?"+q, "Bearer "+tokenA); w.Code != 400 {
				t.Fatalf("%s: %d %s", q, w.Code, w.Body)
			}
		}
	})
}

func TestScrubQueryJWTValues(t *testing.T) {
	jwt := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
	jwe := "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d"
	got := ScrubQuery("_id=" + jwt + "&status=current&x-ehr-authorization=abc&note=" + jwe)
	for _, secret := range []string{"c2lnbmF0dXJl", "abc", ".b.c.d"} {
		if strings.Contains(got, secret) {
			t.Fatalf("%q keeps %q", got, secret)
		}
	}
	if !strings.Contains(got, "status=current") {
		t.Fatalf("%q lost an ordinary parameter", got)
	}
	if ScrubQuery("_id=eyJ-not-a-token") != "_id=eyJ-not-a-token" {
		t.Fatal("a value that is not a JWT was scrubbed")
	}
}
