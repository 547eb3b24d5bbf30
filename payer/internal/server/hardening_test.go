package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"dtrsandbox/payer/internal/authz"
	"dtrsandbox/shared/accesstoken"
	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/database"
	"dtrsandbox/shared/httpserver"
	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/testutil/logbuf"
)

// TestNoTokenInLogsOrAuditEvents drives every kind of credential through
// the payer, accepted and refused, in headers, bodies and query strings,
// then greps the whole JSON log (debug level) and every stored AuditEvent
// for each of them (CONTRACT.md: "never a token").
func TestNoTokenInLogsOrAuditEvents(t *testing.T) {
	logs := &logbuf.Buffer{}
	w := probeWorld(t, "sqlite", func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	secrets := map[string]string{} // name -> the part of the credential no other value shares
	keep := func(name, cred string) {
		if i := strings.LastIndexByte(cred, '.'); i >= 0 {
			cred = cred[i+1:] // a JWT's signature
		}
		if len(cred) < 16 {
			t.Fatalf("%s: credential part too short to look for", name)
		}
		secrets[name] = cred
	}
	form := func(path string, f url.Values) (*http.Response, string) {
		return w.do("POST", path, f.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	}

	// The token endpoint: a good assertion, its replay, an assertion for
	// a client that does not exist, one with a foreign key.
	signer := &clientauth.Signer{Key: w.appKey, ClientID: SeedClientID}
	good, _ := signer.Form(w.url+authz.TokenPath, url.Values{"grant_type": {"client_credentials"}, "scope": {fullScope}})
	keep("client assertion", good.Get("client_assertion"))
	resp, body := form(authz.TokenPath, good)
	if resp.StatusCode != 200 {
		t.Fatalf("token: %d %s", resp.StatusCode, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal([]byte(body), &tr)
	payer := tr.AccessToken
	keep("payer access token", payer)
	if resp, _ := form(authz.TokenPath, good); resp.StatusCode != 401 {
		t.Fatalf("replay: %d", resp.StatusCode)
	}
	ghost, _ := (&clientauth.Signer{Key: w.appKey, ClientID: "ghost"}).Form(w.url+authz.TokenPath, url.Values{"grant_type": {"client_credentials"}, "scope": {fullScope}})
	keep("assertion of an unknown client", ghost.Get("client_assertion"))
	form(authz.TokenPath, ghost)
	stranger, _ := jwks.Generate("ES384")
	forgedAssertion, _ := (&clientauth.Signer{Key: stranger, ClientID: SeedClientID}).Form(w.url+authz.TokenPath, url.Values{"grant_type": {"client_credentials"}, "scope": {fullScope}})
	keep("assertion with a foreign key", forgedAssertion.Get("client_assertion"))
	form(authz.TokenPath, forgedAssertion)
	// A client secret and a bearer header where none belong.
	secretForm := url.Values{"grant_type": {"client_credentials"}, "scope": {fullScope}, "client_id": {SeedClientID}, "client_secret": {"s3cr3t-client-secret-value"}}
	keep("client secret", "s3cr3t-client-secret-value")
	form(authz.TokenPath, secretForm)

	// Data requests with good and bad tokens, and tokens put in URLs.
	ehr := w.ehrToken("dtr-app", "pat-1")
	keep("EHR access token", ehr)
	stolen := w.ehrToken("another-app", "pat-1")
	keep("another app's EHR token", stolen)
	forgedEHR, _ := accesstoken.Sign(stranger, &accesstoken.Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: w.ehrURL, Subject: "x",
		Audience: jwt.ClaimStrings{w.ehrURL}, IssuedAt: jwt.NewNumericDate(time.Now()), ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Minute)), ID: "f"},
		ClientID: "dtr-app", Patient: "pat-2"})
	keep("forged EHR token", forgedEHR)
	expired, _ := accesstoken.Sign(w.ehrKey, &accesstoken.Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: w.ehrURL, Subject: "x",
		Audience: jwt.ClaimStrings{w.ehrURL}, IssuedAt: jwt.NewNumericDate(time.Now().Add(-time.Hour)), ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Minute)), ID: "e"},
		ClientID: "dtr-app", Patient: "pat-1"})
	keep("expired EHR token", expired)
	both := []string{"Authorization", "Bearer " + payer, "X-EHR-Authorization", "Bearer " + ehr}
	created := w.create(both, drBody)
	for _, r := range []struct {
		method, path string
		hdr          []string
	}{
		{"GET", "/fhir/DocumentReference/" + created, both},
		{"GET", "/fhir/DocumentReference?access_token=" + payer + "&_id=" + ehr, both},
		{"GET", "/fhir/DocumentReference?x-ehr-authorization=" + ehr + "&token=" + payer, both},
		{"GET", "/fhir/DocumentReference?note=" + forgedEHR, both},
		{"GET", "/fhir/Questionnaire?access_token=" + payer, nil},
		{"GET", "/fhir/DocumentReference/" + created, []string{"Authorization", "Bearer " + payer, "X-EHR-Authorization", "Bearer " + stolen}},
		{"GET", "/fhir/DocumentReference/" + created, []string{"Authorization", "Bearer " + payer, "X-EHR-Authorization", "Bearer " + forgedEHR}},
		{"GET", "/fhir/DocumentReference/" + created, []string{"Authorization", "Bearer " + payer, "X-EHR-Authorization", "Bearer " + expired}},
		{"GET", "/fhir/DocumentReference/" + created, []string{"Authorization", "Bearer " + ehr, "X-EHR-Authorization", "Bearer " + payer}},
		{"GET", "/fhir/DocumentReference/" + created, []string{"Authorization", "Bearer " + payer + "x", "X-EHR-Authorization", "Bearer " + ehr}},
		{"GET", "/fhir/DocumentReference/" + created, []string{"Authorization", "Bearer " + payer + " " + ehr}},
		{"GET", "/fhir/DocumentReference/" + created, []string{"Authorization", "Bearer " + payer, "Authorization", "Bearer " + ehr}},
		{"GET", "/fhir/DocumentReference/" + ehr, both},
		{"POST", "/fhir", both},
		{"GET", "/fhir/_history?access_token=" + payer, both},
	} {
		w.do(r.method, r.path, "", r.hdr...)
	}
	// A registration, a refused one, the console and the audit trail.
	set, _ := jwks.Set{stranger}.MarshalPublic()
	reg := `{"client_name":"x","token_endpoint_auth_method":"private_key_jwt","jwks":` + string(set) + `,"ehr_client_ids":{"` + w.ehrURL + `":"dtr-app"}}`
	w.do("POST", authz.RegistrationPath, reg, "Content-Type", "application/json")
	admin := w.adminToken()
	keep("admin token", admin)
	wrongAdmin := "wrong-admin-token-" + strings.Repeat("z", 30)
	keep("a wrong admin token", wrongAdmin)
	w.do("POST", "/console/login", url.Values{"token": {admin}}.Encode(), "Content-Type", "application/x-www-form-urlencoded", "Origin", w.url)
	w.do("POST", "/console/login", url.Values{"token": {wrongAdmin}}.Encode(), "Content-Type", "application/x-www-form-urlencoded", "Origin", w.url)
	w.do("GET", "/fhir/AuditEvent", "", "Authorization", "Bearer "+wrongAdmin)
	resp, trail := w.do("GET", "/fhir/AuditEvent?_count=200", "", "Authorization", "Bearer "+admin)
	if resp.StatusCode != 200 {
		t.Fatalf("audit search: %d", resp.StatusCode)
	}

	logText := logs.String()
	for _, want := range []string{`"request refused by the gate"`, `"token refused"`, `"registration refused"`, `"msg":"request"`} {
		if !strings.Contains(logText, want) {
			t.Fatalf("the log lacks %s: the probe did not exercise it\n%s", want, logText)
		}
	}
	var rows []struct{ Body, Reason, ClientID, ResourceID string }
	if err := w.srv.DB().Table("audit_events").Find(&rows).Error; err != nil || len(rows) < 20 {
		t.Fatalf("%d audit rows, %v", len(rows), err)
	}
	var stored strings.Builder
	for _, r := range rows {
		stored.WriteString(r.Body + r.Reason + r.ClientID + r.ResourceID + "\n")
	}
	for name, secret := range secrets {
		if i := strings.Index(logText, secret); i >= 0 {
			t.Errorf("the log holds the %s: %s", name, logText[max(0, strings.LastIndexByte(logText[:i], '\n')):min(len(logText), i+200)])
		}
		if strings.Contains(stored.String(), secret) || strings.Contains(trail, secret) {
			t.Errorf("the audit trail holds the %s", name)
		}
	}
}

// TestGracefulShutdownFinishesInFlightWrite: a create whose body is still
// arriving when the payer is told to stop (the listener closes at once) is
// completed, answered 201 and committed with its AuditEvent before Serve
// returns; then the server closes its database, and the document is in the
// file.
func TestGracefulShutdownFinishesInFlightWrite(t *testing.T) {
	w := probeWorld(t, "sqlite", nil)
	auth := w.tokens("pat-1")
	entered := make(chan struct{})
	var once sync.Once
	handler := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			once.Do(func() { close(entered) })
		}
		w.srv.Handler().ServeHTTP(rw, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	served := make(chan error, 1)
	go func() {
		served <- httpserver.Serve(ctx, ln, httpserver.Config{Handler: handler, Logger: slog.New(slog.DiscardHandler), ShutdownTimeout: time.Minute})
	}()

	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", "http://"+addr+"/fhir/DocumentReference", pr)
	req.ContentLength = int64(len(drBody))
	req.Header.Set("Content-Type", "application/fhir+json")
	req.Header.Set("Authorization", auth[1])
	req.Header.Set("X-EHR-Authorization", auth[3])
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	type result struct {
		status int
		body   string
		err    error
	}
	answered := make(chan result, 1)
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			answered <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answered <- result{status: resp.StatusCode, body: string(b)}
	}()
	half := len(drBody) / 2
	if _, err := io.WriteString(pw, drBody[:half]); err != nil {
		t.Fatal(err)
	}
	<-entered // the request is in the handler, half its body sent
	stop()    // SIGTERM
	// The listener closes when shutdown begins: wait for that (no sleep).
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections after shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned with a request in flight: %v", err)
	default:
	}
	if _, err := io.WriteString(pw, drBody[half:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	res := <-answered
	if res.err != nil || res.status != http.StatusCreated {
		t.Fatalf("in-flight create: %d %v %s", res.status, res.err, res.body)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	var head struct{ ID string }
	json.Unmarshal([]byte(res.body), &head)

	// As cmd/payer does: the database closes after Serve has returned.
	if err := w.srv.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := database.Open(context.Background(), database.Config{SQLitePath: filepath.Join(w.dataDir, "payer", "payer.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer database.Close(db)
	var docs, events int64
	db.Table("documents").Where("id = ?", head.ID).Count(&docs)
	db.Table("audit_events").Where("resource_id = ? AND action = ? AND outcome = ?", head.ID, "C", "0").Count(&events)
	if head.ID == "" || docs != 1 || events != 1 {
		t.Fatalf("after shutdown: document %q: %d rows, %d create AuditEvents", head.ID, docs, events)
	}
}

// TestSQLiteSettings: the payer's SQLite connections run in WAL mode with
// synchronous=FULL and a busy timeout (writers queue rather than fail;
// BEGIN IMMEDIATE is the DSN's _txlock, exercised by the concurrent-writer
// tests of the documents package).
func TestSQLiteSettings(t *testing.T) {
	w := probeWorld(t, "sqlite", nil)
	db := w.srv.DB()
	var mode string
	var sync, busy int
	if err := db.Raw("PRAGMA journal_mode").Scan(&mode).Error; err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q %v", mode, err)
	}
	if err := db.Raw("PRAGMA synchronous").Scan(&sync).Error; err != nil || sync != 2 {
		t.Fatalf("synchronous %d (2 is FULL) %v", sync, err)
	}
	if err := db.Raw("PRAGMA busy_timeout").Scan(&busy).Error; err != nil || busy < 1000 {
		t.Fatalf("busy_timeout %d %v", busy, err)
	}
}
