package oauthstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
	"gorm.io/gorm"

	"dtrsandbox/ehr/internal/authz"
	"dtrsandbox/ehr/internal/oauthstore"
	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/database"
	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/smart"
	"dtrsandbox/shared/testutil/pgtest"
)

// forEachDB runs fn on a fresh SQLite file and on a throwaway PostgreSQL.
func forEachDB(t *testing.T, fn func(t *testing.T, s *oauthstore.Store, db *gorm.DB)) {
	open := func(t *testing.T, cfg database.Config) (*oauthstore.Store, *gorm.DB) {
		db, err := database.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { database.Close(db) })
		s, err := oauthstore.New(db, oauthstore.Options{NewSession: authz.NewSession})
		if err != nil {
			t.Fatal(err)
		}
		return s, db
	}
	t.Run("sqlite", func(t *testing.T) {
		s, db := open(t, database.Config{SQLitePath: filepath.Join(t.TempDir(), "oauth.db")})
		fn(t, s, db)
	})
	t.Run("postgres", func(t *testing.T) {
		if testing.Short() {
			t.Skip("PostgreSQL skipped in -short mode")
		}
		s, db := open(t, database.Config{URL: pgtest.Start(t)})
		fn(t, s, db)
	})
}

func testClient(id string) *oauthstore.Client {
	return &oauthstore.Client{
		DefaultOpenIDConnectClient: &fosite.DefaultOpenIDConnectClient{
			DefaultClient: &fosite.DefaultClient{
				ID: id, RedirectURIs: []string{"https://app.example/cb"}, GrantTypes: []string{"authorization_code", "refresh_token"},
				ResponseTypes: []string{"code"}, Scopes: []string{"openid", "patient/*.rs"}, Audience: []string{},
			},
			JSONWebKeysURI: "https://app.example/jwks.json", TokenEndpointAuthMethod: oauthstore.AuthPrivateKeyJWT,
			TokenEndpointAuthSigningAlgorithm: "ES384",
		},
		Name: "Test", LaunchURL: "https://app.example/launch",
	}
}

// grant is a fosite request as the handlers store it, with a SMART session.
func grant(client fosite.Client, requestID string) *fosite.Request {
	sess := &authz.Session{
		DefaultSession: openid.DefaultSession{
			Claims:  &jwt.IDTokenClaims{Subject: "Practitioner/prac-1", Extra: map[string]interface{}{"fhirUser": "https://ehr/fhir/Practitioner/prac-1"}},
			Headers: &jwt.Headers{},
			Subject: "Practitioner/prac-1",
		},
		SMART: authz.LaunchContext{
			Mode: authz.ModeEHR, Patient: "pat-1", Encounter: "enc-1",
			FHIRContext: []smart.ContextItem{{Reference: "Coverage/cov-1"}, {Reference: "DeviceRequest/dr-oxygen-1"}},
		},
		GrantedAt: time.Now().UTC().Truncate(time.Second),
		Offline:   true,
	}
	for _, tt := range []fosite.TokenType{fosite.AuthorizeCode, fosite.AccessToken, fosite.RefreshToken} {
		sess.SetExpiresAt(tt, time.Now().Add(time.Hour).UTC().Truncate(time.Second))
	}
	r := fosite.NewRequest()
	r.ID = requestID
	r.Client = client
	r.RequestedScope = fosite.Arguments{"openid", "patient/*.rs"}
	r.GrantedScope = fosite.Arguments{"openid", "patient/*.rs"}
	r.Form.Set("redirect_uri", "https://app.example/cb")
	r.Session = sess
	return r
}

func TestClients(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *oauthstore.Store, _ *gorm.DB) {
		ctx := context.Background()
		key, err := jwks.Generate(jwks.ES384)
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := jwks.Set{key}.MarshalPublic()
		set, err := jwks.ParsePublicSet(pub)
		if err != nil {
			t.Fatal(err)
		}
		c := testClient("c1")
		c.PublicKeys, c.JSONWebKeysURI = set, ""
		c.Secret = oauthstore.HashSecret("s3cret-s3cret-s3cret-s3cret-s3cret")
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateClient(ctx, testClient("c1")); !errors.Is(err, oauthstore.ErrClientExists) {
			t.Fatalf("duplicate: %v", err)
		}
		got, err := s.Client(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "Test" || got.LaunchURL != c.LaunchURL || len(got.PublicKeys.Keys) != 1 || got.JSONWebKeys == nil ||
			!got.CheckSecret("s3cret-s3cret-s3cret-s3cret-s3cret") || got.CheckSecret("wrong") || got.IsPublic() ||
			!got.GetGrantTypes().Has("refresh_token") || got.GetScopes()[1] != "patient/*.rs" {
			t.Fatalf("client %+v", got)
		}
		ac, err := s.AssertionClient(ctx, "c1")
		if err != nil || ac.AuthMethod != "private_key_jwt" || ac.SigningAlg != "ES384" || ac.JWKS == nil {
			t.Fatalf("assertion client %+v %v", ac, err)
		}
		if _, err := s.AssertionClient(ctx, "nobody"); !errors.Is(err, clientauth.ErrUnknownClient) {
			t.Fatalf("unknown: %v", err)
		}
		if _, err := s.GetClient(ctx, "nobody"); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("unknown: %v", err)
		}
		// SaveClient replaces.
		c2 := testClient("c1")
		c2.Name = "Renamed"
		c2.EHRApproved = true
		if err := s.SaveClient(ctx, c2); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Client(ctx, "c1"); got.Name != "Renamed" || !got.EHRApproved || got.PublicKeys != nil {
			t.Fatalf("saved %+v", got)
		}
		// fosite's own JWT client authentication is disabled: fail closed.
		if s.ClientAssertionJWTValid(ctx, "any") == nil || s.SetClientAssertionJWT(ctx, "any", time.Now()) == nil {
			t.Fatal("fosite jti path accepts")
		}
	})
}

func TestAuthorizeCodes(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *oauthstore.Store, _ *gorm.DB) {
		ctx := context.Background()
		c := testClient("app")
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAuthorizeCodeSession(ctx, "sig1", grant(c, "req-1")); err != nil {
			t.Fatal(err)
		}
		r, err := s.GetAuthorizeCodeSession(ctx, "sig1", nil)
		if err != nil {
			t.Fatal(err)
		}
		sess := r.GetSession().(*authz.Session)
		if r.GetID() != "req-1" || r.GetClient().GetID() != "app" || sess.SMART.Patient != "pat-1" || len(sess.SMART.FHIRContext) != 2 ||
			sess.IDTokenClaims().Extra["fhirUser"] == nil || !sess.Offline || r.GetRequestForm().Get("redirect_uri") != "https://app.example/cb" ||
			!r.GetGrantedScopes().Has("patient/*.rs") {
			t.Fatalf("decoded %+v %+v", r, sess)
		}
		if _, err := s.GetAuthorizeCodeSession(ctx, "nope", nil); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("unknown: %v", err)
		}
		// Exactly one of concurrent invalidations wins.
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				switch err := s.InvalidateAuthorizeCodeSession(ctx, "sig1"); {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode):
					t.Errorf("invalidate: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d invalidations won", wins.Load())
		}
		r, err = s.GetAuthorizeCodeSession(ctx, "sig1", nil)
		if !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) || r == nil || r.GetID() != "req-1" {
			t.Fatalf("used code: %v %v", r, err)
		}

		// PKCE and OpenID Connect sessions.
		if err := s.CreatePKCERequestSession(ctx, "sig2", grant(c, "req-2")); err != nil {
			t.Fatal(err)
		}
		if r, err := s.GetPKCERequestSession(ctx, "sig2", nil); err != nil || r.GetID() != "req-2" {
			t.Fatalf("pkce %v", err)
		}
		if err := s.DeletePKCERequestSession(ctx, "sig2"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetPKCERequestSession(ctx, "sig2", nil); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("deleted pkce: %v", err)
		}
		if err := s.CreateOpenIDConnectSession(ctx, "the-code", grant(c, "req-3")); err != nil {
			t.Fatal(err)
		}
		if r, err := s.GetOpenIDConnectSession(ctx, "the-code", nil); err != nil || r.GetID() != "req-3" {
			t.Fatalf("oidc %v", err)
		}
		if err := s.DeleteOpenIDConnectSession(ctx, "the-code"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetOpenIDConnectSession(ctx, "the-code", nil); !errors.Is(err, openid.ErrNoSessionFound) {
			t.Fatalf("deleted oidc: %v", err)
		}
	})
}

func TestTokensAndRevocation(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *oauthstore.Store, db *gorm.DB) {
		ctx := context.Background()
		c := testClient("app")
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"fam-a", "fam-b"} {
			if err := s.CreateAccessTokenSession(ctx, "at-"+id, grant(c, id)); err != nil {
				t.Fatal(err)
			}
			if err := s.CreateRefreshTokenSession(ctx, "rt-"+id, "at-"+id, grant(c, id)); err != nil {
				t.Fatal(err)
			}
		}
		if r, err := s.GetAccessTokenSession(ctx, "at-fam-a", nil); err != nil || r.GetSession().(*authz.Session).SMART.Encounter != "enc-1" {
			t.Fatalf("access token: %v", err)
		}
		if _, err := s.GetAccessTokenSession(ctx, "nope", nil); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("unknown: %v", err)
		}

		// Rotation: one winner among concurrent exchanges of one refresh token.
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tctx, err := s.BeginTX(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if err := s.RotateRefreshToken(tctx, "fam-a", "rt-fam-a"); err != nil {
					if !errors.Is(err, fosite.ErrInactiveToken) {
						t.Errorf("rotate: %v", err)
					}
					_ = s.Rollback(tctx)
					return
				}
				if err := s.Commit(tctx); err != nil {
					t.Error(err)
					return
				}
				wins.Add(1)
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d rotations won", wins.Load())
		}
		r, err := s.GetRefreshTokenSession(ctx, "rt-fam-a", nil)
		if !errors.Is(err, fosite.ErrInactiveToken) || r == nil || r.GetID() != "fam-a" {
			t.Fatalf("rotated refresh token: %v %v", r, err)
		}
		if _, err := s.GetAccessTokenSession(ctx, "at-fam-a", nil); !errors.Is(err, fosite.ErrInactiveToken) {
			t.Fatalf("access token of a rotated grant: %v", err)
		}

		// Revocation by request id leaves other grants alone.
		if err := s.RevokeRefreshToken(ctx, "fam-b"); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeAccessToken(ctx, "fam-b"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetRefreshTokenSession(ctx, "rt-fam-b", nil); !errors.Is(err, fosite.ErrInactiveToken) {
			t.Fatalf("revoked refresh: %v", err)
		}
		if _, err := s.GetAccessTokenSession(ctx, "at-fam-b", nil); !errors.Is(err, fosite.ErrInactiveToken) {
			t.Fatalf("revoked access: %v", err)
		}

		// RefreshScoper: the refresh token keeps the wider scope.
		g := grant(c, "fam-c")
		g.GrantedScope = fosite.Arguments{"patient/Observation.rs"}
		g.Session.(*authz.Session).RefreshScopes = []string{"openid", "patient/*.rs"}
		if err := s.CreateRefreshTokenSession(ctx, "rt-fam-c", "at-fam-c", g); err != nil {
			t.Fatal(err)
		}
		if r, err := s.GetRefreshTokenSession(ctx, "rt-fam-c", nil); err != nil || !r.GetGrantedScopes().Has("patient/*.rs") {
			t.Fatalf("refresh scope: %v %v", r.GetGrantedScopes(), err)
		}

		// A rolled-back transaction stores nothing.
		tctx, err := s.BeginTX(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAccessTokenSession(tctx, "at-rolled-back", grant(c, "fam-d")); err != nil {
			t.Fatal(err)
		}
		if err := s.Rollback(tctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetAccessTokenSession(ctx, "at-rolled-back", nil); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("rolled back: %v", err)
		}

		// Purge removes expired rows only.
		old := grant(c, "fam-old")
		old.Session.SetExpiresAt(fosite.AccessToken, time.Now().Add(-time.Minute))
		if err := s.CreateAccessTokenSession(ctx, "at-old", old); err != nil {
			t.Fatal(err)
		}
		if err := s.Purge(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetAccessTokenSession(ctx, "at-old", nil); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("purged: %v", err)
		}
		var n int64
		db.Table(oauthstore.TableAccessTokens).Count(&n)
		if n != 2 {
			t.Fatalf("%d access token rows left, want 2", n)
		}
	})
}
