package authz

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	jose "github.com/go-jose/go-jose/v4"

	"dtrsandbox/payer/internal/audit"
	"dtrsandbox/shared/clientauth"
	"dtrsandbox/shared/fhir"
	"dtrsandbox/shared/jwks"
	"dtrsandbox/shared/oautherr"
	"dtrsandbox/shared/smart"
)

// Limits on a registration request.
const (
	MaxRegistrationBody = 96 << 10 // an inline JWK Set may take 64 KiB
	MaxClientNameLength = 200      // characters
	MaxEHRClientIDs     = 16
	MaxEHRClientIDLen   = 255
	MaxJWKSURILength    = 2048
)

// registrationRequest is the validated metadata of RFC 7591 §2 that the
// payer understands, plus ehr_client_ids.
type registrationRequest struct {
	name         string
	jwks         *jose.JSONWebKeySet
	jwksURI      string
	signingAlg   string
	scope        string
	ehrClientIDs map[string]string
}

// registrationResponse is RFC 7591 §3.2.1: the client information and
// every registered metadata value.
type registrationResponse struct {
	ClientID                string            `json:"client_id"`
	ClientIDIssuedAt        int64             `json:"client_id_issued_at"`
	ClientName              string            `json:"client_name,omitempty"`
	TokenEndpointAuthMethod string            `json:"token_endpoint_auth_method"`
	TokenEndpointAuthAlg    string            `json:"token_endpoint_auth_signing_alg,omitempty"`
	GrantTypes              []string          `json:"grant_types"`
	Scope                   string            `json:"scope"`
	JWKSURI                 string            `json:"jwks_uri,omitempty"`
	JWKS                    json.RawMessage   `json:"jwks,omitempty"`
	EHRClientIDs            map[string]string `json:"ehr_client_ids,omitempty"`
}

// Register is the RFC 7591 §3 client registration endpoint. It answers 201
// with the client information, 400 invalid_client_metadata for metadata
// it cannot accept (RFC 7591 §3.2.2), and 403 access_denied while
// registration is closed (PAYER_REGISTRATION=closed).
func (s *Server) Register() gin.HandlerFunc {
	return func(c *gin.Context) {
		if !s.cfg.RegistrationOpen {
			s.registrationFailed(c, "", oautherr.AccessDenied("Dynamic client registration is closed on this payer; ask its operator to register the client."))
			return
		}
		req, err := s.parseRegistration(c.Request)
		if err != nil {
			s.registrationFailed(c, "", err)
			return
		}
		client, err := s.newClient(req)
		if err != nil {
			s.registrationFailed(c, "", err)
			return
		}
		if err := s.storeClient(c, client); err != nil {
			// Nothing was stored: the id generated for the client was never
			// registered, so the AuditEvent names no client (the reason
			// names the conflict).
			s.registrationFailed(c, "", err)
			return
		}
		s.writeRegistration(c, client)
	}
}

// parseRegistration reads the JSON body and validates every member the
// payer understands. Other members are ignored (RFC 7591 §2). Member
// names are matched exactly; a body that repeats a member, or has two
// members differing only by case, is refused.
func (s *Server) parseRegistration(r *http.Request) (*registrationRequest, error) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, oautherr.InvalidRequest("The registration request must be a JSON object sent as application/json.")
	}
	if r.ContentLength > MaxRegistrationBody { // refused on the announced size, unread
		return nil, oautherr.InvalidClientMetadata("The registration request is larger than %d bytes.", MaxRegistrationBody)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRegistrationBody+1))
	if err != nil {
		return nil, oautherr.InvalidRequest("The request body could not be read.").WithCause(err)
	}
	if len(body) > MaxRegistrationBody {
		return nil, oautherr.InvalidClientMetadata("The registration request is larger than %d bytes.", MaxRegistrationBody)
	}
	if err := fhir.CheckKeys(body); err != nil {
		return nil, oautherr.InvalidClientMetadata("The registration request is not a well-formed JSON object: %s.", strings.TrimPrefix(err.Error(), "fhir: ")).WithCause(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, oautherr.InvalidClientMetadata("The registration request must be a JSON object.").WithCause(err)
	}
	req := &registrationRequest{}
	steps := []func(map[string]json.RawMessage, *registrationRequest) error{
		parseAuthMethod, parseGrantTypes, parseClientName, parseSigningAlg,
		s.parseKeys, parseScope, s.parseEHRClientIDs,
	}
	for _, step := range steps {
		if err := step(m, req); err != nil {
			return nil, err
		}
	}
	return req, nil
}

// stringMember decodes an optional string member; present is false when it
// is absent or null.
func stringMember(m map[string]json.RawMessage, name string) (v string, present bool, err error) {
	raw, ok := m[name]
	if !ok || string(raw) == "null" {
		return "", false, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", true, oautherr.InvalidClientMetadata("%s must be a string.", name)
	}
	return v, true, nil
}

// parseAuthMethod: token_endpoint_auth_method must be private_key_jwt. When
// it is omitted RFC 7591 §2 means client_secret_basic, which the payer
// does not offer, so it is required.
func parseAuthMethod(m map[string]json.RawMessage, _ *registrationRequest) error {
	v, present, err := stringMember(m, "token_endpoint_auth_method")
	switch {
	case err != nil:
		return err
	case !present:
		return oautherr.InvalidClientMetadata("token_endpoint_auth_method is required and must be private_key_jwt (SMART Backend Services); omitting it means client_secret_basic, which this payer does not offer.")
	case v != clientauth.AuthMethodPrivateKeyJWT:
		return oautherr.InvalidClientMetadata("token_endpoint_auth_method must be private_key_jwt; %s is not offered.", clip(v))
	}
	return nil
}

// parseGrantTypes: grant_types, when given, must be exactly
// ["client_credentials"]; omitted, it is that (the only grant offered).
func parseGrantTypes(m map[string]json.RawMessage, _ *registrationRequest) error {
	raw, ok := m["grant_types"]
	if !ok || string(raw) == "null" {
		return nil
	}
	var gts []string
	if err := json.Unmarshal(raw, &gts); err != nil {
		return oautherr.InvalidClientMetadata("grant_types must be an array of strings.")
	}
	if len(gts) != 1 || gts[0] != GrantClientCredentials {
		return oautherr.InvalidClientMetadata("grant_types must be [\"client_credentials\"]: it is the only grant this payer offers.")
	}
	return nil
}

func parseClientName(m map[string]json.RawMessage, req *registrationRequest) error {
	v, _, err := stringMember(m, "client_name")
	if err != nil {
		return err
	}
	if utf8.RuneCountInString(v) > MaxClientNameLength || !utf8.ValidString(v) {
		return oautherr.InvalidClientMetadata("client_name must be valid UTF-8 of at most %d characters.", MaxClientNameLength)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return oautherr.InvalidClientMetadata("client_name must not contain control characters.")
		}
	}
	req.name = v
	return nil
}

func parseSigningAlg(m map[string]json.RawMessage, req *registrationRequest) error {
	v, present, err := stringMember(m, "token_endpoint_auth_signing_alg")
	switch {
	case err != nil:
		return err
	case present && !slices.Contains(SupportedSigningAlgs, v):
		return oautherr.InvalidClientMetadata("token_endpoint_auth_signing_alg must be one of %s.", strings.Join(SupportedSigningAlgs, ", "))
	}
	req.signingAlg = v
	return nil
}

// parseKeys takes exactly one of jwks (a public JWK Set, checked strictly)
// or jwks_uri (https, or http on a loopback host). With a signing alg
// registered, an inline set must hold a key for it.
func (s *Server) parseKeys(m map[string]json.RawMessage, req *registrationRequest) error {
	rawSet, hasSet := m["jwks"]
	if hasSet && string(rawSet) == "null" {
		hasSet = false
	}
	uri, hasURI, err := stringMember(m, "jwks_uri")
	if err != nil {
		return err
	}
	switch {
	case hasSet && hasURI:
		return oautherr.InvalidClientMetadata("Send either jwks or jwks_uri, not both (RFC 7591 section 2).")
	case !hasSet && !hasURI:
		return oautherr.InvalidClientMetadata("jwks or jwks_uri is required: private_key_jwt needs the client's public keys.")
	case hasURI:
		if err := s.checkJWKSURI(uri); err != nil {
			return err
		}
		req.jwksURI = uri
		return nil
	}
	set, err := jwks.ParsePublicSet(rawSet)
	if err != nil {
		return oautherr.InvalidClientMetadata("jwks is not an acceptable public JWK Set: %s.", clip(strings.TrimPrefix(err.Error(), "jwks: "))).WithCause(err)
	}
	if len(set.Keys) == 0 {
		return oautherr.InvalidClientMetadata("jwks holds no usable signing key.")
	}
	if req.signingAlg != "" && !setHasKeyFor(set, req.signingAlg) {
		return oautherr.InvalidClientMetadata("jwks holds no key for token_endpoint_auth_signing_alg %s.", req.signingAlg)
	}
	if req.signingAlg == "" && !setHasKeyForAny(set) {
		return oautherr.InvalidClientMetadata("jwks holds no key for any of %s.", strings.Join(SupportedSigningAlgs, ", "))
	}
	req.jwks = set
	return nil
}

func setHasKeyFor(set *jose.JSONWebKeySet, alg string) bool {
	for _, k := range set.Keys {
		if _, err := jwks.FindKey(set, k.KeyID, alg); err == nil {
			return true
		}
	}
	return false
}

func setHasKeyForAny(set *jose.JSONWebKeySet) bool {
	for _, alg := range SupportedSigningAlgs {
		if setHasKeyFor(set, alg) {
			return true
		}
	}
	return false
}

// checkJWKSURI accepts a jwks_uri the payer may fetch keys from (RFC 7591
// §2): an absolute https URL (http only on a loopback host, or anywhere
// with AllowHTTPJWKSURI for SANDBOX_TLS=off), without user information or
// fragment, whose host is not an obviously internal target (see
// internalHost). The payer fetches it later, at token time, with a GET
// whose answer is only ever parsed as a JWK Set and never shown to the
// caller, but a registration must still not turn the payer into a proxy
// towards cloud metadata services or the private network.
func (s *Server) checkJWKSURI(uri string) error {
	if len(uri) > MaxJWKSURILength {
		return oautherr.InvalidClientMetadata("jwks_uri is longer than %d characters.", MaxJWKSURILength)
	}
	u, err := url.Parse(uri)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		return oautherr.InvalidClientMetadata("jwks_uri must be an absolute https URL.")
	case u.User != nil:
		return oautherr.InvalidClientMetadata("jwks_uri must not carry user information.")
	case u.Fragment != "" || strings.Contains(uri, "#"):
		return oautherr.InvalidClientMetadata("jwks_uri must not have a fragment.")
	case u.Scheme != "https" && u.Scheme != "http":
		return oautherr.InvalidClientMetadata("jwks_uri must use https (http only on a loopback host).")
	case u.Scheme == "http" && !s.cfg.AllowHTTPJWKSURI && !jwks.IsLoopback(u.Hostname()):
		return oautherr.InvalidClientMetadata("jwks_uri must use https (http only on a loopback host).")
	}
	if why := internalHost(u.Hostname()); why != "" {
		return oautherr.InvalidClientMetadata("jwks_uri must not point at %s.", why)
	}
	return nil
}

// metadataHosts are the names of cloud instance-metadata services.
var metadataHosts = map[string]bool{
	"metadata": true, "metadata.google.internal": true, "metadata.goog": true,
	"instance-data": true, "instance-data.ec2.internal": true, "metadata.azure.com": true,
}

// internalHost says why host is an obviously internal target for a
// jwks_uri, or "". Refused:
//   - IP literals that are unspecified (0.0.0.0, ::), in 0.0.0.0/8,
//     link-local (169.254.0.0/16 with the cloud metadata address,
//     fe80::/10), multicast, broadcast, private (10/8, 172.16/12,
//     192.168/16, fc00::/7) or shared address space (100.64/10);
//   - names that are not DNS names (a numeric last label, as in
//     "2130706433" or "0x7f.1", which some resolvers read as an address);
//   - the names of cloud instance-metadata services.
//
// Loopback is allowed: the sandbox's apps run on localhost (the seeded
// dtr-app's jwks_uri is https://localhost:8442/...), as RFC 8252 allows for
// native apps. Host names are not resolved here: the compose setup reaches
// apps by service names that resolve to private addresses, so a name is
// judged by its text only, and a DNS name that resolves to an internal
// address is not refused. That residual risk is an egress-policy matter;
// the fetch itself is a bounded GET whose answer is never echoed.
func internalHost(host string) string {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if i := strings.IndexByte(h, '%'); i >= 0 { // IPv6 zone
		h = h[:i]
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		ip = ip.Unmap()
		switch {
		case ip.IsLoopback():
			return ""
		case ip.IsUnspecified(), ip.Is4() && ip.As4()[0] == 0:
			return "an unspecified address"
		case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
			return "a link-local address (such as a cloud metadata service)"
		case ip.IsMulticast(), ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			return "a multicast or broadcast address"
		case ip.IsPrivate(), sharedAddressSpace.Contains(ip):
			return "a private network address"
		}
		return ""
	}
	if metadataHosts[h] {
		return "a cloud metadata service"
	}
	labels := strings.Split(h, ".")
	last := labels[len(labels)-1]
	if last == "" || strings.HasPrefix(last, "0x") || strings.Trim(last, "0123456789") == "" {
		return "a host that is not a DNS name"
	}
	return ""
}

// sharedAddressSpace is RFC 6598's carrier-grade NAT range.
var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// parseScope: every registered scope must be a system-level scope covered
// by SupportedScopes (SMART Backend Services clients get system/ scopes).
// Omitted, the client is registered for all of SupportedScopes (RFC 7591
// §2 lets the server choose a default); its token requests still name the
// scopes they want.
func parseScope(m map[string]json.RawMessage, req *registrationRequest) error {
	v, present, err := stringMember(m, "scope")
	if err != nil {
		return err
	}
	if !present {
		req.scope = strings.Join(SupportedScopes, " ")
		return nil
	}
	scope, err := checkSystemScopes(v)
	if err != nil {
		return oautherr.InvalidClientMetadata("%s", err.Error())
	}
	req.scope = scope
	return nil
}

// checkSystemScopes validates a space-delimited scope string against
// SupportedScopes and returns it normalised (duplicates and extra spaces
// removed). Errors carry a caller-facing hint.
func checkSystemScopes(v string) (string, error) {
	scopes, err := smart.ParseScopes(v)
	if err != nil {
		var se *smart.ScopeError
		if errors.As(err, &se) {
			return "", errors.New(se.Hint)
		}
		return "", errors.New("scope is not a valid scope string")
	}
	if scopes.Len() == 0 {
		return "", errors.New("scope is empty")
	}
	supported := strings.Join(SupportedScopes, " ")
	for _, tok := range scopes.Strings() {
		sc, err := smart.ParseScope(tok)
		if err != nil || sc.Level != smart.LevelSystem {
			return "", errors.New("scope '" + clip(tok) + "' is not offered: this payer grants system/ scopes on " + strings.Join(SupportedScopes, ", "))
		}
		if ok, hint := smart.Allowed(tok, supported); !ok {
			return "", errors.New(hint + "; this payer offers " + strings.Join(SupportedScopes, ", "))
		}
	}
	return scopes.String(), nil
}

// parseEHRClientIDs reads the ehr_client_ids extension: issuer → the app's
// client id at that EHR. Every issuer must be in the trusted-EHR registry
// now; ids are 1..255 visible ASCII characters.
func (s *Server) parseEHRClientIDs(m map[string]json.RawMessage, req *registrationRequest) error {
	raw, ok := m["ehr_client_ids"]
	if !ok || string(raw) == "null" {
		return nil
	}
	var ids map[string]string
	if err := json.Unmarshal(raw, &ids); err != nil || ids == nil {
		return oautherr.InvalidClientMetadata("ehr_client_ids must be an object mapping an EHR issuer to the client_id at that EHR.")
	}
	if len(ids) > MaxEHRClientIDs {
		return oautherr.InvalidClientMetadata("ehr_client_ids names more than %d EHRs.", MaxEHRClientIDs)
	}
	for iss, id := range ids {
		if !s.cfg.Trusted.Trusted(iss) {
			return oautherr.InvalidClientMetadata("ehr_client_ids names %s, which is not a trusted EHR issuer at this payer.", clip(iss))
		}
		if id == "" || len(id) > MaxEHRClientIDLen || !visibleASCII(id) {
			return oautherr.InvalidClientMetadata("The client id for %s must be 1 to %d visible ASCII characters.", clip(iss), MaxEHRClientIDLen)
		}
	}
	req.ehrClientIDs = ids
	return nil
}

func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func (s *Server) newClient(req *registrationRequest) (*Client, error) {
	id, err := randomID()
	if err != nil {
		return nil, oautherr.ServerError("The client could not be registered.").WithCause(err)
	}
	return &Client{
		ID: id, Name: req.name, JWKS: req.jwks, JWKSURI: req.jwksURI,
		AuthMethod: clientauth.AuthMethodPrivateKeyJWT, SigningAlg: req.signingAlg,
		Scope: req.scope, GrantTypes: []string{GrantClientCredentials},
		EHRClientIDs: req.ehrClientIDs, IssuedAt: s.cfg.Now().UTC().Truncate(1e9),
	}, nil
}

func (s *Server) storeClient(c *gin.Context, client *Client) error {
	err := s.cfg.Clients.Create(c.Request.Context(), client)
	var taken *EHRClientIDTakenError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &taken):
		return oautherr.InvalidClientMetadata("The client id %s at %s is already registered by another client; an EHR client id can be claimed by one payer client only.", clip(taken.EHRClientID), clip(taken.Issuer)).WithCause(err)
	default:
		return oautherr.ServerError("The client could not be registered.").WithCause(err)
	}
}

func (s *Server) writeRegistration(c *gin.Context, client *Client) {
	resp := registrationResponse{
		ClientID: client.ID, ClientIDIssuedAt: client.IssuedAt.Unix(), ClientName: client.Name,
		TokenEndpointAuthMethod: client.AuthMethod, TokenEndpointAuthAlg: client.SigningAlg,
		GrantTypes: client.GrantTypes, Scope: client.Scope, JWKSURI: client.JWKSURI,
		EHRClientIDs: client.EHRClientIDs,
	}
	if client.JWKS != nil {
		resp.JWKS = publicSetJSON(client.JWKS)
	}
	s.record(c, audit.Event{
		Action: "C", Interaction: "register", Outcome: audit.OutcomeSuccess,
		Status: http.StatusCreated, ClientID: client.ID,
	})
	h := c.Writer.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	c.JSON(http.StatusCreated, resp)
}

func (s *Server) registrationFailed(c *gin.Context, clientID string, err error) {
	e := oautherr.As(err)
	s.logError(c, "registration refused", e)
	s.record(c, audit.Event{
		Action: "C", Interaction: "register", Outcome: outcomeFor(e.Status),
		Reason: e.Code + ": " + e.Description, Status: e.Status, ClientID: clientID,
	})
	oautherr.Write(c.Writer, e)
}
