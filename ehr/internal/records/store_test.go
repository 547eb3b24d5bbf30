package records

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"dtrsandbox/ehr/internal/seed"
	"dtrsandbox/shared/database"
	"dtrsandbox/shared/testutil/pgtest"
)

const testBase = "https://ehr.test/fhir"

// backend opens fresh databases of one kind.
type backend struct {
	name string
	open func(t *testing.T) *gorm.DB
}

// backends returns SQLite and PostgreSQL. PostgreSQL starts once per
// top-level test and gives each caller its own database.
func backends(t *testing.T) []backend {
	var (
		once  sync.Once
		pgURL string
		n     int
		mu    sync.Mutex
	)
	return []backend{
		{"sqlite", func(t *testing.T) *gorm.DB {
			db, err := database.Open(context.Background(), database.Config{SQLitePath: filepath.Join(t.TempDir(), "ehr.db")})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = database.Close(db) })
			return db
		}},
		{"postgres", func(tt *testing.T) *gorm.DB {
			once.Do(func() { pgURL = pgtest.Start(t) })
			mu.Lock()
			n++
			name := fmt.Sprintf("records_%d", n)
			mu.Unlock()
			admin, err := database.Open(context.Background(), database.Config{URL: pgURL})
			if err != nil {
				tt.Fatal(err)
			}
			if err := admin.Exec("CREATE DATABASE " + name).Error; err != nil {
				tt.Fatal(err)
			}
			_ = database.Close(admin)
			u, _ := url.Parse(pgURL)
			u.Path = "/" + name
			db, err := database.Open(context.Background(), database.Config{URL: u.String()})
			if err != nil {
				tt.Fatal(err)
			}
			tt.Cleanup(func() { _ = database.Close(db) })
			return db
		}},
	}
}

// openSeeded opens a store on db and loads the embedded seed.
func openSeeded(t *testing.T, db *gorm.DB) *Store {
	t.Helper()
	s, err := Open(db)
	if err != nil {
		t.Fatal(err)
	}
	res, err := seed.Resources()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Seed(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	return s
}

// withoutServerMeta decodes body and drops id, meta.versionId and
// meta.lastUpdated (and meta when nothing else is left).
func withoutServerMeta(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "id")
	if meta, ok := m["meta"].(map[string]any); ok {
		delete(meta, "versionId")
		delete(meta, "lastUpdated")
		if len(meta) == 0 {
			delete(m, "meta")
		}
	}
	return m
}

func metaOf(t *testing.T, body []byte) (id, version, lastUpdated string) {
	t.Helper()
	var m struct {
		ID   string `json:"id"`
		Meta struct {
			VersionID   string `json:"versionId"`
			LastUpdated string `json:"lastUpdated"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return m.ID, m.Meta.VersionID, m.Meta.LastUpdated
}

func qr(subject, status string) string {
	return `{"resourceType":"QuestionnaireResponse","id":"client-chosen","meta":{"versionId":"99","profile":["http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/dtr-questionnaireresponse"]},` +
		`"questionnaire":"http://sandbox.dtr.example/fhir/Questionnaire/home-oxygen","status":"` + status + `",` +
		`"subject":{"reference":"` + subject + `"},"encounter":{"reference":"Encounter/enc-1"},` +
		`"identifier":{"system":"urn:test","value":"qr-` + status + `"},"item":[{"linkId":"1","answer":[{"valueDecimal":87.50}]}]}`
}

func TestStore(t *testing.T) {
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			t.Run("seed", func(t *testing.T) { testSeed(t, be.open(t)) })
			t.Run("concurrent seed", func(t *testing.T) { testConcurrentSeed(t, be.open(t)) })
			t.Run("read", func(t *testing.T) { testRead(t, be.open(t)) })
			t.Run("create", func(t *testing.T) { testCreate(t, be.open(t)) })
			t.Run("update", func(t *testing.T) { testUpdate(t, be.open(t)) })
			t.Run("search", func(t *testing.T) { testSearch(t, be.open(t)) })
			t.Run("directory", func(t *testing.T) { testDirectory(t, be.open(t)) })
		})
	}
}

func testSeed(t *testing.T, db *gorm.DB) {
	ctx := context.Background()
	res, err := seed.Resources()
	if err != nil {
		t.Fatal(err)
	}
	s := openSeeded(t, db)
	before := map[string]*Record{}
	for _, r := range res {
		rec, err := s.Read(ctx, r.Type, r.ID)
		if err != nil {
			t.Fatalf("%s/%s: %v", r.Type, r.ID, err)
		}
		if rec.VersionID != 1 {
			t.Errorf("%s/%s: version %d, want 1", r.Type, r.ID, rec.VersionID)
		}
		before[r.Type+"/"+r.ID] = rec
	}

	// Seeding again, even from a second store on the same database, changes nothing.
	s.now = func() time.Time { return time.Now().Add(time.Hour) }
	if err := s.Seed(ctx, res); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Seed(ctx, res); err != nil {
		t.Fatal(err)
	}
	for key, old := range before {
		typ, id, _ := strings.Cut(key, "/")
		rec, err := s.Read(ctx, typ, id)
		if err != nil {
			t.Fatal(err)
		}
		if rec.VersionID != 1 || !rec.LastUpdated.Equal(old.LastUpdated) || string(rec.Body) != string(old.Body) {
			t.Errorf("%s changed on reseed: version %d, lastUpdated %v -> %v", key, rec.VersionID, old.LastUpdated, rec.LastUpdated)
		}
	}
	var n int64
	if err := db.Model(&paramRow{}).Where("resource_type = ? AND resource_id = ?", "Patient", "pat-1").Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	if n != 1 { // one MRN identifier, indexed once despite three seed runs
		t.Errorf("Patient/pat-1 has %d index rows, want 1", n)
	}

	// A changed seed resource becomes version 2.
	changed := slices.Clone(res)
	for i, r := range changed {
		if r.Type == "Patient" && r.ID == "pat-1" {
			changed[i].JSON = []byte(strings.Replace(string(r.JSON), `"(413) 555-0131"`, `"(413) 555-0199"`, 1))
		}
	}
	if err := s.Seed(ctx, changed); err != nil {
		t.Fatal(err)
	}
	rec, err := s.Read(ctx, "Patient", "pat-1")
	if err != nil {
		t.Fatal(err)
	}
	if rec.VersionID != 2 || !strings.Contains(string(rec.Body), "555-0199") {
		t.Errorf("changed seed: version %d, body %s", rec.VersionID, rec.Body)
	}
	if _, v, _ := metaOf(t, rec.Body); v != "2" {
		t.Errorf("meta.versionId %q, want 2", v)
	}
}

func testRead(t *testing.T, db *gorm.DB) {
	ctx := context.Background()
	s := openSeeded(t, db)
	res, _ := seed.Resources()
	for _, r := range res {
		rec, err := s.Read(ctx, r.Type, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := withoutServerMeta(t, r.JSON)
		got := withoutServerMeta(t, rec.Body)
		if !jsonEqual(want, got) {
			t.Errorf("%s/%s: stored body differs from the seed beyond id and meta", r.Type, r.ID)
		}
		id, v, lu := metaOf(t, rec.Body)
		if id != r.ID || v != "1" || lu != FormatInstant(rec.LastUpdated) {
			t.Errorf("%s/%s: id %q version %q lastUpdated %q (record %v)", r.Type, r.ID, id, v, lu, rec.LastUpdated)
		}
		if rec.ETag() != `W/"1"` {
			t.Errorf("ETag %s", rec.ETag())
		}
	}
	wantPatient := map[string]string{
		"Patient/pat-2": "pat-2", "Coverage/cov-3": "pat-3", "DeviceRequest/dr-oxygen-1": "pat-1",
		"Encounter/enc-2": "pat-2", "Practitioner/prac-1": "", "Organization/org-payer": "",
	}
	for key, want := range wantPatient {
		typ, id, _ := strings.Cut(key, "/")
		rec, err := s.Read(ctx, typ, id)
		if err != nil {
			t.Fatal(err)
		}
		if rec.PatientID != want {
			t.Errorf("%s: patient compartment %q, want %q", key, rec.PatientID, want)
		}
	}
	if _, err := s.Read(ctx, "Patient", "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
	if _, err := s.Read(ctx, "Practitioner", "pat-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("id of another type: %v", err)
	}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func testCreate(t *testing.T, db *gorm.DB) {
	ctx := context.Background()
	s := openSeeded(t, db)
	rec, err := s.Create(ctx, "QuestionnaireResponse", []byte(qr("Patient/pat-1", "completed")))
	if err != nil {
		t.Fatal(err)
	}
	if rec.ID == "client-chosen" || len(rec.ID) != 26 || rec.VersionID != 1 || rec.PatientID != "pat-1" {
		t.Fatalf("record %+v", rec)
	}
	body := string(rec.Body)
	if !strings.HasPrefix(body, `{"resourceType":"QuestionnaireResponse","id":"`+rec.ID+`","meta":{"versionId":"1","lastUpdated":"`) {
		t.Errorf("layout: %s", body)
	}
	if !strings.Contains(body, `"profile":["http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/dtr-questionnaireresponse"]`) {
		t.Errorf("meta.profile lost: %s", body)
	}
	if !strings.Contains(body, `"valueDecimal":87.50`) {
		t.Errorf("decimal not kept verbatim: %s", body)
	}
	got, err := s.Read(ctx, "QuestionnaireResponse", rec.ID)
	if err != nil || string(got.Body) != body {
		t.Fatalf("read back: %v %s", err, got.Body)
	}

	bad := []struct{ name, typ, body string }{
		{"wrong type", "DocumentReference", qr("Patient/pat-1", "completed")},
		{"array", "QuestionnaireResponse", `[]`},
		{"duplicate key", "QuestionnaireResponse", `{"resourceType":"QuestionnaireResponse","status":"completed","status":"amended"}`},
		{"nested duplicate key", "QuestionnaireResponse", `{"resourceType":"QuestionnaireResponse","subject":{"reference":"Patient/pat-1","reference":"Patient/pat-2"}}`},
		{"trailing data", "QuestionnaireResponse", `{"resourceType":"QuestionnaireResponse"} {}`},
		{"status not a string", "QuestionnaireResponse", `{"resourceType":"QuestionnaireResponse","status":1}`},
		{"meta not an object", "QuestionnaireResponse", `{"resourceType":"QuestionnaireResponse","meta":[]}`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Create(ctx, tc.typ, []byte(tc.body))
			var ie *InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("error %v, want *InvalidError", err)
			}
		})
	}
	page, err := s.Search(ctx, mustQuery(t, "QuestionnaireResponse", ""))
	if err != nil || page.Total != 1 {
		t.Fatalf("after refused creates: %v, total %d, want 1", err, page.Total)
	}
}

func testUpdate(t *testing.T, db *gorm.DB) {
	ctx := context.Background()
	s := openSeeded(t, db)
	rec, err := s.Create(ctx, "QuestionnaireResponse", []byte(qr("Patient/pat-1", "in-progress")))
	if err != nil {
		t.Fatal(err)
	}
	t0 := rec.LastUpdated
	s.now = func() time.Time { return t0.Add(2 * time.Second) }

	var seen *Record
	up, err := s.Update(ctx, "QuestionnaireResponse", rec.ID, []byte(qr("Patient/pat-1", "completed")), func(cur *Record) error {
		seen = cur
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen == nil || seen.VersionID != 1 {
		t.Fatalf("check saw %+v", seen)
	}
	if up.VersionID != 2 || !up.LastUpdated.Equal(t0.Add(2*time.Second)) || up.ETag() != `W/"2"` {
		t.Fatalf("updated %+v", up)
	}
	if id, v, _ := metaOf(t, up.Body); id != rec.ID || v != "2" {
		t.Errorf("body id %q version %q", id, v)
	}
	page, err := s.Search(ctx, mustQuery(t, "QuestionnaireResponse", "status=completed"))
	if err != nil || page.Total != 1 {
		t.Errorf("index not updated: %v %+v", err, page)
	}
	page, _ = s.Search(ctx, mustQuery(t, "QuestionnaireResponse", "status=in-progress"))
	if page.Total != 0 {
		t.Errorf("stale index row: %d", page.Total)
	}

	// A refusing check writes nothing.
	refuse := errors.New("refused")
	_, err = s.Update(ctx, "QuestionnaireResponse", rec.ID, []byte(qr("Patient/pat-2", "amended")), func(*Record) error { return refuse })
	if !errors.Is(err, refuse) {
		t.Fatalf("error %v", err)
	}
	cur, _ := s.Read(ctx, "QuestionnaireResponse", rec.ID)
	if cur.VersionID != 2 || cur.PatientID != "pat-1" {
		t.Errorf("refused update was written: %+v", cur)
	}

	// Moving the subject moves the compartment.
	up, err = s.Update(ctx, "QuestionnaireResponse", rec.ID, []byte(qr("Patient/pat-2", "amended")), nil)
	if err != nil || up.PatientID != "pat-2" || up.VersionID != 3 {
		t.Fatalf("%v %+v", err, up)
	}

	if _, err := s.Update(ctx, "QuestionnaireResponse", "nope", []byte(qr("Patient/pat-1", "completed")), nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
	if _, err := s.Update(ctx, "QuestionnaireResponse", rec.ID, []byte(`{"resourceType":"Patient"}`), nil); err == nil {
		t.Error("wrong resourceType accepted")
	}

	// A writer that read an older version loses (optimistic concurrency).
	row, params, err := s.prepare("QuestionnaireResponse", rec.ID, []byte(qr("Patient/pat-1", "stopped")), 3)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Transaction(func(tx *gorm.DB) error { return replace(tx, row, 2, params) })
	if !errors.Is(err, ErrVersionConflict) {
		t.Errorf("stale writer: %v", err)
	}
}

func mustQuery(t *testing.T, typ, rawQuery string) *Query {
	t.Helper()
	v, err := url.ParseQuery(rawQuery)
	if err != nil {
		t.Fatal(err)
	}
	q, err := ParseQuery(typ, v, testBase)
	if err != nil {
		t.Fatalf("%s?%s: %v", typ, rawQuery, err)
	}
	return q
}

func ids(recs []Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.ID)
	}
	slices.Sort(out)
	return out
}

func testSearch(t *testing.T, db *gorm.DB) {
	ctx := context.Background()
	s := openSeeded(t, db)
	seededAt, err := s.Read(ctx, "Patient", "pat-1")
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return seededAt.LastUpdated.Add(48 * time.Hour) }
	created, err := s.Create(ctx, "QuestionnaireResponse", []byte(qr("Patient/pat-2", "completed")))
	if err != nil {
		t.Fatal(err)
	}
	day := seededAt.LastUpdated.Format("2006-01-02")
	later := created.LastUpdated.Format(time.RFC3339)

	tests := []struct {
		typ, query string
		patient    string // compartment confinement
		want       []string
		total      int // -1: len(want)
	}{
		{"Patient", "", "", []string{"pat-1", "pat-2", "pat-3"}, -1},
		{"Patient", "_id=pat-2,pat-3", "", []string{"pat-2", "pat-3"}, -1},
		{"Patient", "_id=pat-1&_id=pat-2", "", nil, -1},
		{"Patient", "identifier=RB-000101", "", []string{"pat-1"}, -1},
		{"Patient", "identifier=http://sandbox.dtr.example/ehr/sid/mrn|RB-000101", "", []string{"pat-1"}, -1},
		{"Patient", "identifier=http://other|RB-000101", "", nil, -1},
		{"Patient", "identifier=|RB-000101", "", nil, -1},
		{"Patient", "identifier=http://sandbox.dtr.example/ehr/sid/mrn|", "", []string{"pat-1", "pat-2", "pat-3"}, -1},
		{"Coverage", "patient=pat-2", "", []string{"cov-2"}, -1},
		{"Coverage", "beneficiary=Patient/pat-3", "", []string{"cov-3"}, -1},
		{"Coverage", "patient=" + testBase + "/Patient/pat-1", "", []string{"cov-1"}, -1},
		{"Coverage", "patient=https://elsewhere.test/fhir/Patient/pat-1", "", nil, -1},
		{"Coverage", "status=active", "", []string{"cov-1", "cov-2", "cov-3"}, -1},
		{"DeviceRequest", "patient=pat-1", "", []string{"dr-oxygen-1"}, -1},
		{"DeviceRequest", "subject=Patient/pat-2", "", []string{"dr-cpap-2"}, -1},
		{"DeviceRequest", "subject=Group/pat-2", "", nil, -1},
		{"DeviceRequest", "patient=Encounter/enc-1", "", nil, -1},
		{"DeviceRequest", "encounter=enc-3", "", []string{"dr-wheelchair-3"}, -1},
		{"Encounter", "subject=pat-1,pat-3", "", []string{"enc-1", "enc-3"}, -1},
		{"MedicationRequest", "patient=pat-1&status=active", "", []string{"mr-lisinopril-1"}, -1},
		// compartment confinement overrides the parameters
		{"DeviceRequest", "", "pat-3", []string{"dr-wheelchair-3"}, -1},
		{"DeviceRequest", "patient=pat-1", "pat-3", nil, -1},
		{"Patient", "", "pat-2", []string{"pat-2"}, -1},
		{"Practitioner", "", "pat-2", nil, -1}, // not in any compartment: confinement finds none
		{"QuestionnaireResponse", "patient=pat-2&questionnaire=http://sandbox.dtr.example/fhir/Questionnaire/home-oxygen", "", []string{created.ID}, -1},
		{"QuestionnaireResponse", "identifier=urn:test|qr-completed", "", []string{created.ID}, -1},
		{"QuestionnaireResponse", "", "pat-1", nil, -1},
		{"Patient", "_lastUpdated=" + day, "", []string{"pat-1", "pat-2", "pat-3"}, -1},
		{"Patient", "_lastUpdated=gt" + day, "", nil, -1},
		{"QuestionnaireResponse", "_lastUpdated=ge" + later, "", []string{created.ID}, -1},
		{"QuestionnaireResponse", "_lastUpdated=lt" + later, "", nil, -1},
		{"Patient", "_lastUpdated=le" + later + "&_lastUpdated=ge" + day, "", []string{"pat-1", "pat-2", "pat-3"}, -1},
		{"Patient", "_count=0", "", nil, 3},
		{"Patient", "_offset=10", "", nil, 3},
	}
	for _, tc := range tests {
		t.Run(tc.typ+"?"+tc.query+"@"+tc.patient, func(t *testing.T) {
			q := mustQuery(t, tc.typ, tc.query)
			q.Patient = tc.patient
			page, err := s.Search(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(page.Records); !slices.Equal(got, tc.want) {
				t.Errorf("ids %v, want %v", got, tc.want)
			}
			want := tc.total
			if want < 0 {
				want = len(tc.want)
			}
			if page.Total != want {
				t.Errorf("total %d, want %d", page.Total, want)
			}
		})
	}

	refused := []struct{ typ, query, hint string }{
		{"Patient", "name=Whitfield", "not supported"},
		{"Patient", "identifier:exact=x", "modifier"},
		{"Patient", "_sort=-_lastUpdated", "not supported"},
		{"Patient", "_include=Patient:organization", "not supported"},
		{"Patient", "identifier=", "no value"},
		{"Patient", "_count=-1", "_count"},
		{"Patient", "_count=ten", "_count"},
		{"Patient", "_offset=-3", "_offset"},
		{"Patient", "_id=bad_id", "_id"},
		{"Patient", "_lastUpdated=ne2026-01-01", "prefix"},
		{"Patient", "_lastUpdated=2026-13-01", "_lastUpdated"},
		{"Patient", "_lastUpdated=2026-01-01T10:00:00", "_lastUpdated"},
		{"Coverage", "patient=not a ref", "patient must be"},
		{"Coverage", "subject=pat-1", "not supported"},
		{"Binary", "", "not searchable"},
		{"DeviceRequest", "patient.name=x", "not supported"},
	}
	for _, tc := range refused {
		t.Run("refused "+tc.typ+"?"+tc.query, func(t *testing.T) {
			v, _ := url.ParseQuery(tc.query)
			_, err := ParseQuery(tc.typ, v, testBase)
			var qe *QueryError
			if !errors.As(err, &qe) || !strings.Contains(qe.Hint, tc.hint) {
				t.Errorf("error %v, want a QueryError mentioning %q", err, tc.hint)
			}
		})
	}

	// Pages are disjoint and together hold every match, newest first.
	p1, err := s.Search(ctx, mustQuery(t, "Patient", "_count=2"))
	if err != nil {
		t.Fatal(err)
	}
	p2, err := s.Search(ctx, mustQuery(t, "Patient", "_count=2&_offset=2"))
	if err != nil {
		t.Fatal(err)
	}
	all := append(slices.Clone(p1.Records), p2.Records...)
	if len(p1.Records) != 2 || len(p2.Records) != 1 || p1.Total != 3 || p2.Total != 3 ||
		!slices.Equal(ids(all), []string{"pat-1", "pat-2", "pat-3"}) {
		t.Errorf("paging: %v + %v (totals %d, %d)", ids(p1.Records), ids(p2.Records), p1.Total, p2.Total)
	}
	for i := 1; i < len(all); i++ {
		if all[i].LastUpdated.After(all[i-1].LastUpdated) {
			t.Errorf("not newest first: %s before %s", all[i-1].ID, all[i].ID)
		}
	}

	// _count is capped, never refused.
	q := mustQuery(t, "Patient", "_count=100000")
	if q.Count != MaxCount {
		t.Errorf("_count cap: %d", q.Count)
	}
}

func testDirectory(t *testing.T, db *gorm.DB) {
	ctx := context.Background()
	s := openSeeded(t, db)
	pracs, err := s.Practitioners(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pracs) != 2 || pracs[0].ID != "prac-1" || pracs[1].ID != "prac-2" {
		t.Fatalf("practitioners %+v", pracs)
	}
	if pracs[1].Name != "Dr. Benjamin J. Ortiz, DO" || !strings.Contains(pracs[1].Detail, "Pulmonary") {
		t.Errorf("prac-2 %+v", pracs[1])
	}
	pats, err := s.Patients(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pats) != 3 || pats[0].ID != "pat-1" || pats[0].Name != "Harold James Whitfield" ||
		pats[0].Detail != "born 1948-03-14, MRN RB-000101" {
		t.Errorf("patients %+v", pats)
	}
	for _, tc := range []struct {
		typ, id string
		want    bool
	}{{"Patient", "pat-3", true}, {"Practitioner", "prac-2", true}, {"Encounter", "enc-1", true}, {"Patient", "prac-1", false}, {"Patient", "pat-9", false}} {
		got, err := s.Exists(ctx, tc.typ, tc.id)
		if err != nil || got != tc.want {
			t.Errorf("Exists(%s, %s) = %v, %v", tc.typ, tc.id, got, err)
		}
	}
}

// testConcurrentSeed: replicas starting together on one database all
// succeed and leave one version of each resource.
func testConcurrentSeed(t *testing.T, db *gorm.DB) {
	res, err := seed.Resources()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(db); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &Store{db: db, now: time.Now}
			errs[i] = s.Seed(context.Background(), res)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	var versions []int
	if err := db.Model(&resourceRow{}).Distinct("version_id").Pluck("version_id", &versions).Error; err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(versions, []int{1}) {
		t.Errorf("versions after concurrent seeding: %v", versions)
	}
	var rows, params int64
	db.Model(&resourceRow{}).Count(&rows)
	db.Model(&paramRow{}).Where("resource_type = ? AND resource_id = ?", "DeviceRequest", "dr-oxygen-1").Count(&params)
	if int(rows) != len(res) {
		t.Errorf("%d rows, want %d", rows, len(res))
	}
	one, _ := derive("DeviceRequest", "dr-oxygen-1", mustStamped(t, res, "DeviceRequest", "dr-oxygen-1"))
	if int(params) != len(one.rows) {
		t.Errorf("dr-oxygen-1 has %d index rows, want %d", params, len(one.rows))
	}
}

func mustStamped(t *testing.T, res []seed.Resource, typ, id string) []byte {
	t.Helper()
	for _, r := range res {
		if r.Type == typ && r.ID == id {
			b, err := stamp(r.JSON, typ, id, 1, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatalf("%s/%s not in the seed", typ, id)
	return nil
}
