package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"dtrsandbox/shared/database"
	"dtrsandbox/shared/fhir"
	"dtrsandbox/shared/launcher"
)

// write is one create sent to the payer and what came back.
type write struct {
	marker string // the answer only this document holds
	body   []byte
	status int
	loc    string
	err    error
}

// send posts the write with the seat's tokens (safe in any goroutine).
func (wr *write) send(w *world, payerTok, ehrTok string) {
	r, err := w.trySend(http.MethodPost, w.payerFHIR+"/DocumentReference", wr.body, payerHeaders(payerTok, ehrTok, wr.body, nil))
	if err != nil {
		wr.err = err
		return
	}
	wr.status, wr.loc = r.status, r.header.Get("Location")
	if r.status != http.StatusCreated {
		wr.err = fmt.Errorf("answer %s", r)
	}
}

// id is the document id from the Location of a 201.
func (wr *write) id() string {
	_, rest, ok := strings.Cut(wr.loc, "/DocumentReference/")
	if !ok {
		return ""
	}
	id, _, ok := strings.Cut(rest, "/_history/")
	if !ok {
		return ""
	}
	return id
}

// newWrites prepares n drafts with distinct markers.
func newWrites(t *testing.T, w *world, n int, prefix string) []*write {
	t.Helper()
	out := make([]*write, n)
	for i := range out {
		m := fmt.Sprintf("%s-%d-%s", prefix, i, randomHex(t, 4))
		out[i] = &write{marker: m, body: w.draft(t, m)}
	}
	return out
}

// concurrentWriters: n goroutines each create their own DocumentReference
// through the real payer over HTTPS at the same moment. Every write is
// acknowledged, every acknowledged document is found by _id with its own
// answers, each has its AuditEvent, and the database gained exactly n.
func concurrentWriters(t *testing.T, c *cast, n int) {
	w, s := c.w, c.a.fresh(t)
	before := w.rows(t, "documents")
	since := time.Now()
	writes := newWrites(t, w, n, "writer")
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, wr := range writes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			wr.send(w, s.payerTok, s.ehr.Access)
		}()
	}
	close(start)
	wg.Wait()
	for i, wr := range writes {
		if wr.err != nil || wr.id() == "" {
			t.Errorf("writer %d: %v (Location %q)", i, wr.err, wr.loc)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	requirePresent(t, s.fresh(t), writes)
	if got := w.rows(t, "documents"); got != before+int64(n) {
		t.Fatalf("documents %d -> %d after %d acknowledged creates", before, got, n)
	}
	created := map[string]int{}
	for _, h := range w.audit(t, since, url.Values{"agent": {c.alice.payerID}, "outcome": {"0"}}) {
		if h.ev.Action == "C" && h.status() == http.StatusCreated {
			for _, ref := range h.what() {
				created[ref]++
			}
		}
	}
	for i, wr := range writes {
		if n := created["DocumentReference/"+wr.id()]; n != 1 {
			t.Errorf("writer %d: %d create AuditEvents for %s", i, n, wr.id())
		}
	}
}

// requirePresent finds every write by _id (comma lists of at most 25),
// each with its own marker.
func requirePresent(t *testing.T, s *seat, writes []*write) {
	t.Helper()
	for from := 0; from < len(writes); from += 25 {
		chunk := writes[from:min(from+25, len(writes))]
		var ids []string
		for _, wr := range chunk {
			ids = append(ids, wr.id())
		}
		_, docs := bundleDocs(t, s.search(t, url.Values{"_id": {strings.Join(ids, ",")}, "_count": {"100"}}))
		byID := map[string]*fhir.DocumentReference{}
		for i := range docs {
			byID[docs[i].ID] = &docs[i]
		}
		for _, wr := range chunk {
			d := byID[wr.id()]
			if d == nil {
				t.Errorf("acknowledged document %s (%s) is missing", wr.id(), wr.marker)
				continue
			}
			if !strings.Contains(answerText(t, d), wr.marker) {
				t.Errorf("document %s does not hold its own answers (%s)", wr.id(), wr.marker)
			}
		}
	}
}

// payerCrash: the payer is killed with SIGKILL while eight writers create
// documents in a loop. After a restart the SQLite file passes
// PRAGMA integrity_check, and every write acknowledged (201) before the
// kill is in the database with its AuditEvent and is found over HTTPS.
func payerCrash(t *testing.T, c *cast) {
	w, s := c.w, c.a.fresh(t)
	const writers, killAfter = 8, 24
	writes := newWrites(t, w, 600, "burst")
	var next, acked atomic.Int64
	var mu sync.Mutex
	var done []*write
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := next.Add(1) - 1
				if i >= int64(len(writes)) {
					return
				}
				wr := writes[i]
				wr.send(w, s.payerTok, s.ehr.Access)
				mu.Lock()
				done = append(done, wr)
				mu.Unlock()
				if wr.status == http.StatusCreated {
					acked.Add(1)
				}
				if wr.err != nil {
					return // the payer is gone (or refused: checked below)
				}
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for acked.Load() < killAfter {
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("only %d writes acknowledged in 30s", acked.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	w.closeDB()
	if err := w.sb.Kill(launcher.Payer); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()

	var ok []*write
	inFlight := 0
	for _, wr := range done {
		switch {
		case wr.status == http.StatusCreated && wr.id() != "":
			ok = append(ok, wr)
		case wr.status == 0 && isTransportError(wr.err):
			inFlight++ // cut by the kill: may or may not have committed
		default:
			t.Errorf("a write got %d before the kill: %v", wr.status, wr.err)
		}
	}
	t.Logf("%d writes acknowledged before SIGKILL, %d cut in flight", len(ok), inFlight)
	if len(ok) < killAfter {
		t.Fatalf("%d acknowledged writes, want at least %d", len(ok), killAfter)
	}

	restartService(t, w, launcher.Payer)

	db := w.readOnlyDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if res, err := database.IntegrityCheck(ctx, db); err != nil || res != "ok" {
		t.Fatalf("PRAGMA integrity_check after SIGKILL: %q %v", res, err)
	}
	for _, wr := range ok {
		var docs, events int64
		if err := db.Table("documents").Where("resource_type = ? AND id = ?", "DocumentReference", wr.id()).Count(&docs).Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Table("audit_events").Where("resource_type = ? AND resource_id = ? AND action = ? AND outcome = ?",
			"DocumentReference", wr.id(), "C", "0").Count(&events).Error; err != nil {
			t.Fatal(err)
		}
		if docs != 1 || events != 1 {
			t.Errorf("acknowledged write %s: %d rows in documents, %d create AuditEvents", wr.id(), docs, events)
		}
	}
	requirePresent(t, s.fresh(t), ok)
}
