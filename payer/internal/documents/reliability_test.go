package documents

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"dtrsandbox/payer/internal/audit"

	"gorm.io/gorm"
)

// TestConcurrentWriters: 50 goroutines create through the handler at once;
// every acknowledged write is stored, about its caller's patient, with
// exactly one successful AuditEvent.
func TestConcurrentWriters(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, nil)
		const writers = 50
		type result struct {
			caller, id string
			code       int
			body       []byte
		}
		results := make([]result, writers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				caller := []string{"p1", "p2"}[i%2]
				typ := []string{TypeDocumentReference, TypeQuestionnaireResponse}[(i/2)%2]
				body := docRef("", questionnaireResponse(""))
				if typ == TypeQuestionnaireResponse {
					body = questionnaireResponse("")
				}
				r := e.do(caller, "POST", "/fhir/"+typ, body)
				var head struct{ ID string }
				json.Unmarshal(r.Body, &head)
				results[i] = result{caller: caller, id: head.ID, code: r.Code, body: r.Body}
			}()
		}
		close(start)
		wg.Wait()
		for i, r := range results {
			if r.code != http.StatusCreated {
				t.Fatalf("writer %d: %d %s", i, r.code, r.body)
			}
			typ := []string{TypeDocumentReference, TypeQuestionnaireResponse}[(i/2)%2]
			doc, err := e.store.Read(context.Background(), typ, r.id, e.callers[r.caller].Patient)
			if err != nil || !bytes.Equal(doc.Body, r.body) {
				t.Fatalf("writer %d: acknowledged write not stored as answered: %v", i, err)
			}
			var n int64
			if err := db.Table("audit_events").Where("resource_id = ? AND outcome = ? AND action = ?", r.id, audit.OutcomeSuccess, "C").Count(&n).Error; err != nil || n != 1 {
				t.Fatalf("writer %d: %d AuditEvents (%v)", i, n, err)
			}
		}
		if got := e.countDocs(); got != writers {
			t.Fatalf("%d documents, want %d", got, writers)
		}
		if got := e.countAudit(); got != writers {
			t.Fatalf("%d AuditEvents, want %d", got, writers)
		}
	})
}

// TestConcurrentUpdates: updates racing on one version: exactly one wins,
// the others get 412, each is audited once, history has one version.
func TestConcurrentUpdates(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, nil)
		id := e.create("p1", TypeDocumentReference, docRef("", nil))
		body := []byte(strings.Replace(string(docRef("", nil)), `"status":"current"`, `"id":"`+id+`","status":"superseded"`, 1))
		const n = 20
		codes := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i] = e.do("p1", "PUT", "/fhir/DocumentReference/"+id, body, "If-Match", `W/"1"`).Code
			}()
		}
		wg.Wait()
		won := 0
		for _, c := range codes {
			switch c {
			case 200:
				won++
			case 412:
			default:
				t.Fatalf("status %d", c)
			}
		}
		if won != 1 {
			t.Fatalf("%d updates won, want 1", won)
		}
		if h, _ := e.store.HistoryCount(t.Context(), TypeDocumentReference, id); h != 1 {
			t.Fatalf("history %d", h)
		}
		if got := e.countAudit(); got != n+1 {
			t.Fatalf("%d AuditEvents, want %d", got, n+1)
		}
	})
}

// flakyRecorder fails on demand, optionally after writing in the
// transaction (so the rollback must undo the audit row too).
type flakyRecorder struct {
	inner      audit.Recorder
	failInTx   bool
	failOutTx  bool
	writeFirst bool
}

var errAuditDown = errors.New("audit store unavailable")

func (f *flakyRecorder) Record(ctx context.Context, tx *gorm.DB, ev audit.Event) error {
	if (tx != nil && f.failInTx) || (tx == nil && f.failOutTx) {
		if f.writeFirst && tx != nil {
			if err := f.inner.Record(ctx, tx, ev); err != nil {
				return err
			}
		}
		return errAuditDown
	}
	return f.inner.Record(ctx, tx, ev)
}

// TestAuditFailure: when the AuditEvent cannot be written, a write rolls
// back and a read returns no data; the answer is a 500 OperationOutcome
// without patient data.
func TestAuditFailure(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *gorm.DB) {
		good := newEnv(t, db, nil)
		existing := good.create("p1", TypeDocumentReference, docRef("", nil))
		before, _ := good.store.Read(t.Context(), TypeDocumentReference, existing, pat1)
		update := []byte(strings.Replace(string(docRef("", nil)), `"status":"current"`, `"id":"`+existing+`","status":"superseded"`, 1))

		modes := []struct {
			name string
			rec  func(inner audit.Recorder) *flakyRecorder
			// events a failed write leaves: the best-effort failure record
			// when the store outside the transaction still works.
			writeEvents int64
		}{
			{"always fails", func(in audit.Recorder) *flakyRecorder {
				return &flakyRecorder{inner: in, failInTx: true, failOutTx: true}
			}, 0},
			{"fails in the transaction after writing", func(in audit.Recorder) *flakyRecorder {
				return &flakyRecorder{inner: in, failInTx: true, writeFirst: true}
			}, 1},
		}
		for _, m := range modes {
			t.Run(m.name, func(t *testing.T) {
				e := newEnv(t, db, m.rec(good.audit))
				check := func(t *testing.T, r resp) {
					t.Helper()
					if r.Code != http.StatusInternalServerError || outcomeCode(t, r.Body) != "exception" {
						t.Fatalf("%d %s", r.Code, r.Body)
					}
					if bytes.Contains(r.Body, []byte("pat-1")) || bytes.Contains(r.Body, []byte(existing)) || bytes.Contains(r.Body, []byte("74465-6")) {
						t.Fatalf("500 carries data: %s", r.Body)
					}
				}
				t.Run("create", func(t *testing.T) {
					docs, events := e.countDocs(), e.countAudit()
					check(t, e.do("p1", "POST", "/fhir/DocumentReference", docRef("", nil)))
					if e.countDocs() != docs {
						t.Fatal("document stored without its AuditEvent")
					}
					if got := e.countAudit() - events; got != m.writeEvents {
						t.Fatalf("%d AuditEvents, want %d", got, m.writeEvents)
					}
					if m.writeEvents == 1 {
						if ev := e.lastAudit(); ev.Outcome != audit.OutcomeSeriousFail || ev.Status != 500 {
							t.Fatalf("failure event outcome %s status %d", ev.Outcome, ev.Status)
						}
					}
				})
				t.Run("update", func(t *testing.T) {
					check(t, e.do("p1", "PUT", "/fhir/DocumentReference/"+existing, update, "If-Match", `W/"1"`))
					now, _ := e.store.Read(t.Context(), TypeDocumentReference, existing, pat1)
					if now.VersionID != 1 || !bytes.Equal(now.Body, before.Body) {
						t.Fatal("update kept without its AuditEvent")
					}
					if h, _ := e.store.HistoryCount(t.Context(), TypeDocumentReference, existing); h != 0 {
						t.Fatal("history written without the update")
					}
				})
				if m.name == "always fails" {
					t.Run("read", func(t *testing.T) {
						check(t, e.do("p1", "GET", "/fhir/DocumentReference/"+existing, nil))
					})
					t.Run("search", func(t *testing.T) {
						check(t, e.do("p1", "GET", "/fhir/DocumentReference", nil))
					})
					t.Run("denial", func(t *testing.T) {
						r := e.do("p1", "POST", "/fhir/DocumentReference", docRef(ref(pat2), nil))
						if r.Code != 500 {
							t.Fatalf("unrecorded denial answered %d", r.Code)
						}
					})
				}
			})
		}
	})
}

// TestAuditEventContent: the AuditEvent of a request names the app, the
// user with the EHR issuer, the patient, the purpose of use, the action and
// outcome, and never a token.
func TestAuditEventContent(t *testing.T) {
	db := openDB(t, "sqlite")
	e := newEnv(t, db, nil)
	id := e.create("p1", TypeDocumentReference, docRef("", nil))
	e.do("p1", "GET", "/fhir/DocumentReference?status=current&access_token=secret-token-value", nil)
	entries, _, err := e.audit.Search(t.Context(), audit.Filter{})
	if err != nil || len(entries) != 2 {
		t.Fatalf("%d events %v", len(entries), err)
	}
	create := entries[1]
	var ae map[string]any
	if err := json.Unmarshal(create.Body, &ae); err != nil || ae["resourceType"] != "AuditEvent" {
		t.Fatalf("not an AuditEvent: %v", err)
	}
	s := string(create.Body)
	for _, want := range []string{`"action":"C"`, `"outcome":"0"`, `"code":"create"`, `"code":"TREAT"`, `"value":"dtr-app"`,
		`"reference":"` + ehrBase + `/Practitioner/prac-1"`, `"system":"` + ehrBase + `"`, `"reference":"` + pat1 + `"`,
		`"reference":"DocumentReference/` + id + `"`, `"requestor":true`, `"requestor":false`} {
		if !strings.Contains(s, want) {
			t.Errorf("create AuditEvent lacks %s", want)
		}
	}
	for _, en := range entries {
		if bytes.Contains(en.Body, []byte("secret-token-value")) {
			t.Fatal("token in the audit trail")
		}
	}
}
