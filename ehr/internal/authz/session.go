package authz

import (
	"time"

	"github.com/mohae/deepcopy"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"dtrsandbox/shared/smart"
)

// Launch modes recorded in a grant.
const (
	ModeEHR        = "ehr"
	ModeStandalone = "standalone"
	ModeBackend    = "backend" // client_credentials
)

// LaunchContext is the SMART launch context of a grant (SMART App Launch
// 2.2, "Launch context arrives with your access_token"): it travels in the
// token response, in the access token's claims and in introspection.
type LaunchContext struct {
	Mode              string              `json:"mode"`
	Patient           string              `json:"patient,omitempty"`
	Encounter         string              `json:"encounter,omitempty"`
	FHIRUser          string              `json:"fhirUser,omitempty"` // absolute URL of the user's resource
	FHIRContext       []smart.ContextItem `json:"fhirContext,omitempty"`
	NeedPatientBanner bool                `json:"need_patient_banner"`
}

// Session is what fosite stores with every code and token of a grant: the
// OpenID Connect session (subject, ID token claims, expiry per token type)
// and the SMART launch context. It is serialised as JSON by oauthstore.
type Session struct {
	openid.DefaultSession
	SMART LaunchContext `json:"smart"`
	// GrantedAt is when the user authorized the grant; the refresh token
	// family never outlives GrantedAt + the family's maximum age.
	GrantedAt time.Time `json:"granted_at"`
	// Offline is true when offline_access was granted (else the family is
	// online_access only).
	Offline bool `json:"offline,omitempty"`
	// RefreshScopes is the scope of the refresh token issued beside a
	// narrowed access token (see oauthstore.RefreshScoper).
	RefreshScopes []string `json:"refresh_scopes,omitempty"`
}

var _ openid.Session = (*Session)(nil)

// NewSession returns an empty session (the type oauthstore decodes into).
func NewSession() fosite.Session { return &Session{} }

// Clone deep-copies the session (fosite clones it on refresh).
func (s *Session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	return deepcopy.Copy(s).(*Session)
}

// RefreshTokenScopes implements oauthstore.RefreshScoper.
func (s *Session) RefreshTokenScopes() []string { return s.RefreshScopes }
