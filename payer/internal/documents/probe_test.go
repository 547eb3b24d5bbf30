package documents

import (
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"gorm.io/gorm"
)

// TestBinaryInput: a NUL or invalid UTF-8 anywhere in a search value, a
// body or an indexed element is refused with a 4xx and audited, on both
// databases (PostgreSQL text cannot hold them: a bound NUL would be a
// 500).
func TestBinaryInput(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, nil)
		e.create("p1", TypeDocumentReference, docRef("", nil))
		searches := []string{
			"status=%00", "status=cur%FFrent", "_id=%00", "patient=" + url.QueryEscape(pat1) + "%00",
			"type=" + url.QueryEscape("http://loinc.org|") + "%00", "related=%C0%80", "date=2024%00",
			"%00=x", "_sort=date%00", "_count=1%00",
		}
		for _, q := range searches {
			t.Run("search "+q, func(t *testing.T) {
				before := e.countAudit()
				r := e.do("p1", "GET", "/fhir/DocumentReference?"+q, nil)
				if r.Code != http.StatusBadRequest {
					t.Fatalf("%d %s", r.Code, r.Body)
				}
				if e.countAudit() != before+1 {
					t.Fatal("want one AuditEvent")
				}
			})
		}
		t.Run("POST _search form with NUL", func(t *testing.T) {
			r := e.do("p1", "POST", "/fhir/DocumentReference/_search", []byte("status=%00"), "Content-Type", "application/x-www-form-urlencoded")
			if r.Code != http.StatusBadRequest {
				t.Fatalf("%d %s", r.Code, r.Body)
			}
		})
		bodies := map[string][]byte{
			"raw invalid UTF-8 in a string":      []byte(strings.Replace(string(docRef("", nil)), `"current"`, "\"current\",\"description\":\"a\xffb\"", 1)),
			"escaped NUL in an indexed code":     []byte(strings.Replace(string(docRef("", nil)), `"code":"draft"`, `"code":"dr\u0000aft"`, 1)),
			"escaped NUL in a related reference": []byte(strings.Replace(string(docRef("", nil)), `/DeviceRequest/dr-oxygen-1"`, `/DeviceRequest/dr\u0000"`, 1)),
		}
		for name, body := range bodies {
			t.Run("create "+name, func(t *testing.T) {
				docs, events := e.countDocs(), e.countAudit()
				r := e.do("p1", "POST", "/fhir/DocumentReference", body)
				if r.Code != http.StatusBadRequest {
					t.Fatalf("%d %s", r.Code, r.Body)
				}
				if e.countDocs() != docs || e.countAudit() != events+1 {
					t.Fatal("stored, or not audited once")
				}
			})
		}
		t.Run("escaped NUL in an unindexed string is kept verbatim", func(t *testing.T) {
			body := []byte(strings.Replace(string(docRef("", nil)), `"current"`, `"current","description":"a\u0000b"`, 1))
			r := e.do("p1", "POST", "/fhir/DocumentReference", body)
			if r.Code != http.StatusCreated || !strings.Contains(string(r.Body), `"a\u0000b"`) {
				t.Fatalf("%d %s", r.Code, r.Body)
			}
		})
		t.Run("NUL and invalid UTF-8 in the id", func(t *testing.T) {
			for _, id := range []string{"%00", "a%FFb", "%C3%A9"} {
				r := e.do("p1", "GET", "/fhir/DocumentReference/"+id, nil)
				if r.Code != http.StatusNotFound {
					t.Fatalf("%s: %d %s", id, r.Code, r.Body)
				}
			}
		})
	})
}

// TestIfMatchForms: If-Match takes exactly one entity tag naming the
// current version, weak or strong; "*", lists, non-canonical numbers and
// garbage are refused (400), a stale tag is 412, and none of the refusals
// changes the document.
func TestIfMatchForms(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db, nil)
		id := e.create("p1", TypeDocumentReference, docRef("", nil))
		body := []byte(strings.Replace(string(docRef("", nil)), `"status":"current"`, `"id":"`+id+`","status":"superseded"`, 1))
		version := 1
		cases := []struct {
			ifMatch string
			status  int
		}{
			{`*`, 400}, {`garbage`, 400}, {`W/1`, 400}, {`W/"1`, 400}, {`W/""`, 400}, {`W/"01"`, 400}, {`W/"+1"`, 400},
			{`W/"-1"`, 400}, {`W/"1", W/"2"`, 400}, {`W/"1 "`, 400}, {`W/"99999999999999999999"`, 400}, {`w/"1"`, 400},
			{`W/"2"`, 412}, {`"7"`, 412},
			{`W/"1"`, 200}, {`"2"`, 200}, {` W/"3" `, 200},
		}
		for _, tc := range cases {
			t.Run(tc.ifMatch, func(t *testing.T) {
				before, _ := e.store.Read(t.Context(), TypeDocumentReference, id, pat1)
				r := e.do("p1", "PUT", "/fhir/DocumentReference/"+id, body, "If-Match", tc.ifMatch)
				if r.Code != tc.status {
					t.Fatalf("%d %s", r.Code, r.Body)
				}
				after, _ := e.store.Read(t.Context(), TypeDocumentReference, id, pat1)
				if tc.status != 200 {
					if after.VersionID != before.VersionID || !bytes.Equal(after.Body, before.Body) {
						t.Fatal("a refused update changed the document")
					}
					return
				}
				version++
				if after.VersionID != int64(version) || r.Header.Get("ETag") != `W/"`+strconv.Itoa(version)+`"` {
					t.Fatalf("version %d, ETag %q; want %d", after.VersionID, r.Header.Get("ETag"), version)
				}
			})
		}
	})
}

// TestSearchCounts: _summary=count, _count=0 and _total count only the
// caller's patient's documents it may see, whatever patient the query
// names.
func TestSearchCounts(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *gorm.DB) {
		f := newSearchFixture(t, db) // pat-1: d1, d2 visible, d3 hidden by creator scope; pat-2: e1
		p2 := url.QueryEscape(pat2)
		cases := []struct {
			query   string
			total   int // -1: none
			entries int
		}{
			{"_summary=count", 2, 0},
			{"_summary=count&patient=" + p2, 0, 0},
			{"_summary=count&subject=" + p2 + "," + url.QueryEscape(pat1), 2, 0},
			{"_summary=count&_id=" + f.e1 + "," + f.d3, 0, 0},
			{"_count=0", 2, 0},
			{"_count=0&patient=" + p2, 0, 0},
			{"_total=accurate&subject=" + p2, 0, 0},
			{"_total=estimate", 2, 2},
			{"_total=none&_summary=count", 2, 0},
			{"_count=100000", 2, 2},
		}
		for _, tc := range cases {
			t.Run(tc.query, func(t *testing.T) {
				r := f.e.do("p1", "GET", "/fhir/DocumentReference?"+tc.query, nil)
				if r.Code != 200 {
					t.Fatalf("%d %s", r.Code, r.Body)
				}
				b, res := bundleOf(t, r.Body)
				if (tc.total < 0) != (b.Total == nil) || (b.Total != nil && *b.Total != tc.total) || len(res) != tc.entries {
					t.Fatalf("total %v entries %d, want %d %d: %s", b.Total, len(res), tc.total, tc.entries, r.Body)
				}
				for _, m := range res { // the self link echoes the query; the entries must not leak
					if subjectOf(m) != pat1 || m["id"] == f.d3 {
						t.Fatalf("leak: %s", r.Body)
					}
				}
			})
		}
	})
}
