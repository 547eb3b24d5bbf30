package oauthstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"
)

// GrantFields are the columns every stored grant has: the fosite request,
// flattened, with its session as JSON.
type GrantFields struct {
	Signature       string    `gorm:"primaryKey;size:128"`
	RequestID       string    `gorm:"size:64;not null;index"`
	ClientID        string    `gorm:"size:255;not null;index"`
	Subject         string    `gorm:"size:255"`
	RequestedAt     time.Time `gorm:"not null"`
	Scopes          string    `gorm:"type:text;not null"`
	GrantedScopes   string    `gorm:"type:text;not null"`
	Audience        string    `gorm:"type:text;not null"`
	GrantedAudience string    `gorm:"type:text;not null"`
	Form            string    `gorm:"type:text;not null"`
	Session         string    `gorm:"type:text;not null"`
	Active          bool      `gorm:"not null"`
	ExpiresAt       time.Time `gorm:"not null;index"`
	CreatedAt       time.Time `gorm:"not null"`
}

type authorizeCodeRow struct {
	GrantFields `gorm:"embedded"`
}

func (authorizeCodeRow) TableName() string { return TableAuthorizeCodes }

type pkceRow struct {
	GrantFields `gorm:"embedded"`
}

func (pkceRow) TableName() string { return TablePKCE }

type oidcSessionRow struct {
	GrantFields `gorm:"embedded"`
}

func (oidcSessionRow) TableName() string { return TableOIDCSessions }

type accessTokenRow struct {
	GrantFields `gorm:"embedded"`
}

func (accessTokenRow) TableName() string { return TableAccessTokens }

type refreshTokenRow struct {
	GrantFields     `gorm:"embedded"`
	AccessSignature string `gorm:"size:128;not null"`
}

func (refreshTokenRow) TableName() string { return TableRefreshTokens }

// unsetExpiry is how long a grant without an expiry is kept before Purge
// may remove it.
const unsetExpiry = 30 * 24 * time.Hour

// encodeGrant flattens r for storage under signature. expiresFor names the
// token type whose session expiry bounds the row's life.
func (s *Store) encodeGrant(signature string, r fosite.Requester, expiresFor fosite.TokenType) (GrantFields, error) {
	if r == nil || r.GetClient() == nil {
		return GrantFields{}, errors.New("oauthstore: request without a client")
	}
	if signature == "" {
		return GrantFields{}, errors.New("oauthstore: empty signature")
	}
	sess := r.GetSession()
	sessJSON, err := json.Marshal(sess)
	if err != nil {
		return GrantFields{}, fmt.Errorf("oauthstore: encode session: %w", err)
	}
	form, err := json.Marshal(r.GetRequestForm())
	if err != nil {
		return GrantFields{}, fmt.Errorf("oauthstore: encode form: %w", err)
	}
	aud, _ := json.Marshal([]string(r.GetRequestedAudience()))
	gaud, _ := json.Marshal([]string(r.GetGrantedAudience()))
	now := s.now().UTC()
	exp := time.Time{}
	subject := ""
	if sess != nil {
		exp = sess.GetExpiresAt(expiresFor)
		subject = sess.GetSubject()
	}
	if exp.IsZero() {
		exp = now.Add(unsetExpiry)
	}
	return GrantFields{
		Signature:       signature,
		RequestID:       r.GetID(),
		ClientID:        r.GetClient().GetID(),
		Subject:         subject,
		RequestedAt:     r.GetRequestedAt().UTC(),
		Scopes:          strings.Join(r.GetRequestedScopes(), " "),
		GrantedScopes:   strings.Join(r.GetGrantedScopes(), " "),
		Audience:        string(aud),
		GrantedAudience: string(gaud),
		Form:            string(form),
		Session:         string(sessJSON),
		Active:          true,
		ExpiresAt:       exp.UTC(),
		CreatedAt:       now,
	}, nil
}

// decodeGrant rebuilds the fosite request of a stored grant. The client is
// loaded afresh, so a client deleted since fails every token it held.
func (s *Store) decodeGrant(ctx context.Context, g *GrantFields) (*fosite.Request, error) {
	client, err := s.GetClient(ctx, g.ClientID)
	if err != nil {
		return nil, err
	}
	sess := s.newSession()
	if err := json.Unmarshal([]byte(g.Session), sess); err != nil {
		return nil, fmt.Errorf("oauthstore: decode session: %w", err)
	}
	form := url.Values{}
	if err := json.Unmarshal([]byte(g.Form), &form); err != nil {
		return nil, fmt.Errorf("oauthstore: decode form: %w", err)
	}
	var aud, gaud []string
	if err := json.Unmarshal([]byte(g.Audience), &aud); err != nil {
		return nil, fmt.Errorf("oauthstore: decode audience: %w", err)
	}
	if err := json.Unmarshal([]byte(g.GrantedAudience), &gaud); err != nil {
		return nil, fmt.Errorf("oauthstore: decode granted audience: %w", err)
	}
	return &fosite.Request{
		ID:                g.RequestID,
		RequestedAt:       g.RequestedAt.UTC(),
		Client:            client,
		RequestedScope:    splitScopes(g.Scopes),
		GrantedScope:      splitScopes(g.GrantedScopes),
		Form:              form,
		Session:           sess,
		RequestedAudience: fosite.Arguments(aud),
		GrantedAudience:   fosite.Arguments(gaud),
	}, nil
}

func splitScopes(s string) fosite.Arguments {
	if s == "" {
		return fosite.Arguments{}
	}
	return fosite.Arguments(strings.Split(s, " "))
}
