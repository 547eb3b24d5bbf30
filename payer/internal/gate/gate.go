// Package gate is the payer's per-request security gate for FHIR routes.
// In front of each data handler it establishes who is calling, in this
// order, cheapest first:
//
//  1. header caps: Authorization and X-EHR-Authorization at most once,
//     at most 8 KiB of token each, in the RFC 6750 b64token syntax;
//  2. a token-bucket rate limit (429 with Retry-After, before any
//     cryptography), keyed by the verified client when the payer token is
//     one the verifier has already verified (a SHA-256 lookup in its
//     cache, no signature check), else by the remote address: a token that
//     merely claims a client_id never reaches that client's bucket, so
//     forged tokens naming an app cannot drain it, and a flood of them
//     from one address is throttled by that address's bucket;
//  3. the payer access token (Authorization: Bearer, RFC 6750 §2.1),
//     verified with the payer's own key (401 + WWW-Authenticate: Bearer);
//  4. the EHR access token (X-EHR-Authorization: Bearer): required on
//     DocumentReference and QuestionnaireResponse routes, optional on
//     Questionnaire routes and validated when present (401, or 503 when
//     the EHR cannot answer);
//  5. the EHR token's client_id must be the one the calling payer client
//     registered for that issuer in ehr_client_ids (403);
//  6. the EHR token must name a patient (401);
//  7. the payer token's scopes must grant the interaction (403);
//
// then puts an access.Principal into the request context. Every refusal
// writes one AuditEvent with its reason (never a token) and answers an
// OperationOutcome; requests let through are audited by the data handlers.
package gate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"dtrsandbox/payer/internal/access"
	"dtrsandbox/payer/internal/audit"
	"dtrsandbox/payer/internal/authz"
	"dtrsandbox/payer/internal/trust"
	"dtrsandbox/shared/accesstoken"
	"dtrsandbox/shared/fhir"
	"dtrsandbox/shared/httpserver"
	"dtrsandbox/shared/oautherr"
	"dtrsandbox/shared/smart"
)

// Header names.
const (
	HeaderEHRAuthorization = "X-EHR-Authorization"
	HeaderPurposeOfUse     = "X-Purpose-Of-Use"
)

// MaxTokenBytes caps each bearer token; a longer one is refused before any
// decoding or cryptography.
const MaxTokenBytes = 8 << 10

// DefaultPurposeOfUse is the v3-ActReason code recorded when the request
// names none: COVERAGE ("coverage under policy or program"), which is what
// DTR documentation sent to a payer is for.
const DefaultPurposeOfUse = "COVERAGE"

// PurposesOfUse are the v3-ActReason codes (system
// http://terminology.hl7.org/CodeSystem/v3-ActReason) a caller may name in
// X-Purpose-Of-Use: treatment, payment and its coverage subtypes, claim
// attachment, and operations.
var PurposesOfUse = []string{"TREAT", "HPAYMT", "COVERAGE", "COVAUTH", "CLMATTCH", "HOPERAT"}

// PayerTokens verifies payer access tokens (authz.AccessTokenVerifier).
type PayerTokens interface {
	Verify(ctx context.Context, raw string) (*authz.PayerToken, error)
	// CachedClient returns the client of a token already verified and not
	// expired, without any cryptography (a hash lookup), or false.
	CachedClient(raw string) (clientID string, ok bool)
}

// EHRTokens validates EHR access tokens (trust.Validator).
type EHRTokens interface {
	Validate(ctx context.Context, raw string) (*smart.AccessContext, error)
}

// Bindings answers which EHR client id a payer client registered for an
// issuer (authz.ClientStore).
type Bindings interface {
	EHRClientID(ctx context.Context, clientID, issuer string) (string, bool, error)
}

// EHRBases gives the FHIR base of a trusted EHR issuer (trust.Registry).
type EHRBases interface {
	FHIRBase(issuer string) (string, bool)
}

// Config of the gate.
type Config struct {
	PayerTokens PayerTokens
	EHRTokens   EHRTokens
	Bindings    Bindings
	EHRBases    EHRBases
	Audit       audit.Recorder
	// RateLimit is requests per second per client (PAYER_RATE_LIMIT, 20);
	// the burst is twice that. Negative disables the limit.
	RateLimit float64
	Now       func() time.Time
	Logger    *slog.Logger
}

// Gate builds per-route middleware sharing one rate limiter.
type Gate struct {
	cfg     Config
	limiter *limiter
}

// New checks cfg.
func New(cfg Config) (*Gate, error) {
	if cfg.PayerTokens == nil || cfg.EHRTokens == nil || cfg.Bindings == nil || cfg.EHRBases == nil || cfg.Audit == nil {
		return nil, errors.New("gate: PayerTokens, EHRTokens, Bindings, EHRBases and Audit are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = 20
	}
	g := &Gate{cfg: cfg}
	if cfg.RateLimit > 0 {
		g.limiter = newLimiter(cfg.RateLimit, 2*cfg.RateLimit, cfg.Now)
	}
	return g, nil
}

// EHRToken says whether a route needs the EHR token.
type EHRToken int

const (
	// EHRRequired: DocumentReference and QuestionnaireResponse.
	EHRRequired EHRToken = iota
	// EHROptional: Questionnaire and $questionnaire-package; validated,
	// bound and audited when present.
	EHROptional
)

// Rule describes one route for the gate: the resource type and the SMART
// permission its interaction needs, how the AuditEvent names it, and
// whether the EHR token is required.
type Rule struct {
	ResourceType string
	Perm         smart.Perm // e.g. smart.PermRead; 0: no scope needed
	Action       string     // AuditEvent.action: C R U D E
	Interaction  string     // read, search-type, create, update, operation
	EHR          EHRToken
}

// Rules for the payer's interactions.
func Read(rt string, ehr EHRToken) Rule {
	return Rule{ResourceType: rt, Perm: smart.PermRead, Action: "R", Interaction: "read", EHR: ehr}
}
func Search(rt string, ehr EHRToken) Rule {
	return Rule{ResourceType: rt, Perm: smart.PermSearch, Action: "E", Interaction: "search-type", EHR: ehr}
}
func Create(rt string) Rule {
	return Rule{ResourceType: rt, Perm: smart.PermCreate, Action: "C", Interaction: "create", EHR: EHRRequired}
}
func Update(rt string) Rule {
	return Rule{ResourceType: rt, Perm: smart.PermUpdate, Action: "U", Interaction: "update", EHR: EHRRequired}
}

// Authenticated is a route that returns no data (a refused interaction):
// the payer token is required and checked, an EHR token is validated when
// sent, and no scope is needed, so the handler's refusal is audited with
// the caller's identity and rate limited like every other route.
func Authenticated(rt, action, interaction string) Rule {
	return Rule{ResourceType: rt, Action: action, Interaction: interaction, EHR: EHROptional}
}

// Operation is a FHIR operation that reads resources of rt (such as
// Questionnaire/$questionnaire-package).
func Operation(rt string, p smart.Perm, ehr EHRToken) Rule {
	return Rule{ResourceType: rt, Perm: p, Action: "E", Interaction: "operation", EHR: ehr}
}

// denial is one refusal: what the caller is told and what the audit keeps.
type denial struct {
	status     int
	issue      string // OperationOutcome issue type
	hint       string // diagnostics for the caller
	reason     string // for the AuditEvent
	challenge  string // WWW-Authenticate, for 401 and 403
	retryAfter time.Duration
	cause      error // for the log
}

// caller is what the gate has established so far, for the audit.
type caller struct {
	payer   *authz.PayerToken
	ehr     *smart.AccessContext
	patient string
	purpose string
	// throttledClient is the verified client a throttled request's payer
	// token belongs to (from the verifier's cache), "" when unverified.
	throttledClient string
}

// Require is the middleware for a route with rule.
func (g *Gate) Require(rule Rule) gin.HandlerFunc {
	return func(c *gin.Context) {
		var who caller
		p, d := g.admit(c, rule, &who)
		if d != nil {
			g.refuse(c, rule, &who, d)
			c.Abort()
			return
		}
		c.Request = c.Request.WithContext(access.With(c.Request.Context(), p))
		c.Next()
	}
}

// admit runs the checks in order; it returns the principal or a denial.
func (g *Gate) admit(c *gin.Context, rule Rule, who *caller) (*access.Principal, *denial) {
	r := c.Request
	payerRaw, payerPresent, d := bearerHeader(r, "Authorization")
	if d != nil {
		return nil, d
	}
	ehrRaw, ehrPresent, d := bearerHeader(r, HeaderEHRAuthorization)
	if d != nil {
		return nil, d
	}
	if client, d := g.throttle(payerRaw, c.ClientIP()); d != nil {
		who.throttledClient = client // verified earlier (cached), so it may be named
		return nil, d
	}
	purpose, purposeDenial := purposeOfUse(r) // refused last; known to the audit from here on
	who.purpose = purpose
	if !payerPresent {
		return nil, &denial{status: http.StatusUnauthorized, issue: fhir.IssueLogin,
			hint:      "A payer access token is required: send Authorization: Bearer <token> (SMART Backend Services).",
			reason:    "payer access token missing",
			challenge: oautherr.BearerChallenge(nil)}
	}
	pt, err := g.cfg.PayerTokens.Verify(r.Context(), payerRaw)
	if err != nil {
		return nil, payerTokenDenial(err)
	}
	who.payer = pt

	if ehrPresent {
		ac, err := g.cfg.EHRTokens.Validate(r.Context(), ehrRaw)
		if err != nil {
			return nil, ehrTokenDenial(err)
		}
		who.ehr = ac
		if d := g.checkBinding(r.Context(), pt, ac); d != nil {
			return nil, d
		}
		patient, d := g.patientOf(ac)
		if d != nil {
			return nil, d
		}
		who.patient = patient
	} else if rule.EHR == EHRRequired {
		return nil, &denial{status: http.StatusUnauthorized, issue: fhir.IssueLogin,
			hint:      "An EHR access token is required on " + rule.ResourceType + ": send X-EHR-Authorization: Bearer <EHR access token>.",
			reason:    "EHR access token missing",
			challenge: oautherr.BearerChallenge(oautherr.InvalidToken("X-EHR-Authorization with the EHR launch token is required"))}
	}

	if _, ok := pt.Scopes.Grant(rule.ResourceType, rule.Perm); rule.Perm != 0 && !ok {
		need := "system/" + rule.ResourceType + "." + rule.Perm.String()
		e := oautherr.New(oautherr.CodeInsufficientScope, http.StatusForbidden, "The payer access token does not grant %s.", need)
		return nil, &denial{status: http.StatusForbidden, issue: fhir.IssueForbidden,
			hint:      "The payer access token's scopes do not allow this interaction; it needs " + need + ".",
			reason:    "insufficient scope: needs " + need + ", token has '" + clipText(pt.Scopes.String(), 512) + "'",
			challenge: oautherr.BearerChallenge(e) + `, scope="` + need + `"`}
	}

	if purposeDenial != nil {
		return nil, purposeDenial
	}
	return &access.Principal{
		ClientID: pt.ClientID, PayerScopes: pt.Scopes, EHR: who.ehr,
		Patient: who.patient, PurposeOfUse: purpose,
	}, nil
}

// bearerHeader reads one "Bearer <token>" header (RFC 6750 §2.1; the scheme
// is case-insensitive). A repeated header is a malformed request; a token
// over MaxTokenBytes is refused unread. present is false when the header
// is absent or uses another scheme.
func bearerHeader(r *http.Request, name string) (tok string, present bool, d *denial) {
	vals := r.Header.Values(name)
	switch {
	case len(vals) == 0:
		return "", false, nil
	case len(vals) > 1:
		return "", false, &denial{status: http.StatusBadRequest, issue: fhir.IssueInvalid,
			hint:      "The " + name + " header must be sent once.",
			reason:    name + " header repeated",
			challenge: ""}
	}
	v := vals[0]
	if len(v) > MaxTokenBytes+len("Bearer ")+16 {
		return "", false, &denial{status: http.StatusUnauthorized, issue: fhir.IssueTooLong,
			hint:      fmt.Sprintf("The %s token is larger than %d bytes.", name, MaxTokenBytes),
			reason:    name + " token larger than 8 KiB",
			challenge: oautherr.BearerChallenge(oautherr.InvalidToken("token larger than %d bytes", MaxTokenBytes))}
	}
	scheme, rest, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false, nil
	}
	tok = strings.TrimLeft(rest, " ")
	if tok == "" || len(tok) > MaxTokenBytes {
		return "", false, &denial{status: http.StatusUnauthorized, issue: fhir.IssueLogin,
			hint:      "The " + name + " bearer token is empty or too large.",
			reason:    name + " bearer token empty or larger than 8 KiB",
			challenge: oautherr.BearerChallenge(oautherr.InvalidToken("empty or oversized bearer token"))}
	}
	if !b64token(tok) {
		return "", false, &denial{status: http.StatusUnauthorized, issue: fhir.IssueLogin,
			hint:      "The " + name + " header must carry one bearer token (RFC 6750 section 2.1: letters, digits and -._~+/ then optional =).",
			reason:    name + " bearer token malformed (not one b64token)",
			challenge: oautherr.BearerChallenge(oautherr.InvalidToken("malformed bearer token"))}
	}
	return tok, true, nil
}

// b64token reports whether s is an RFC 6750 §2.1 b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=". Two tokens
// in one header, a comma list, spaces, NUL or non-ASCII bytes are not.
func b64token(s string) bool {
	i := 0
	for i < len(s) {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", c) >= 0 {
			i++
			continue
		}
		break
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// throttle takes a token from the caller's bucket: the verified client's
// when the payer token is one the verifier has already verified (no
// cryptography: a hash lookup), else the remote address's. It returns the
// verified client id it keyed on ("" for the address bucket).
func (g *Gate) throttle(payerRaw, remoteIP string) (string, *denial) {
	if g.limiter == nil {
		return "", nil
	}
	client, verified := "", false
	if payerRaw != "" {
		client, verified = g.cfg.PayerTokens.CachedClient(payerRaw)
	}
	key, who := "ip:"+remoteIP, "unverified requests from "+clipText(remoteIP, 64)
	if verified {
		key, who = "client:"+client, "client "+clipText(client, 200)
	}
	ok, wait := g.limiter.allow(key)
	if ok {
		return client, nil
	}
	return client, &denial{status: http.StatusTooManyRequests, issue: fhir.IssueThrottled,
		hint:       fmt.Sprintf("Too many requests: at most %g a second per client. Retry later.", g.cfg.RateLimit),
		reason:     "rate limit exceeded for " + who,
		retryAfter: wait}
}

// payerTokenDenial turns a verification failure into a 401 with an RFC
// 6750 invalid_token challenge.
func payerTokenDenial(err error) *denial {
	var ae *accesstoken.Error
	if !errors.As(err, &ae) {
		return &denial{status: http.StatusServiceUnavailable, issue: fhir.IssueTransient,
			hint: "The payer access token could not be checked.", reason: "payer token check failed", cause: err}
	}
	e := ae.OAuth()
	if e.Status != http.StatusUnauthorized {
		return &denial{status: http.StatusServiceUnavailable, issue: fhir.IssueTransient,
			hint: "The payer access token could not be checked.", reason: "payer token verifier misconfigured", cause: err}
	}
	issue := fhir.IssueLogin
	if ae.Reason == accesstoken.ReasonExpired {
		issue = fhir.IssueExpired
	}
	return &denial{status: http.StatusUnauthorized, issue: issue,
		hint:      "The payer access token was refused: " + ae.Reason.String() + ".",
		reason:    "payer token: " + string(ae.Reason),
		challenge: oautherr.BearerChallenge(e), cause: err}
}

// ehrTokenDenial: 401 for a refused EHR token, 503 when its EHR could not
// answer (fail closed).
func ehrTokenDenial(err error) *denial {
	f := trust.AsFailure(err)
	if f == nil {
		return &denial{status: http.StatusServiceUnavailable, issue: fhir.IssueTransient,
			hint: "The EHR access token could not be checked; try again later.", reason: "EHR token check failed",
			retryAfter: 5 * time.Second, cause: err}
	}
	reason := "EHR token: " + string(f.Reason)
	if f.Issuer != "" {
		reason += " (issuer " + f.Issuer + ")"
	}
	if f.Reason == trust.ReasonUntrusted && f.Err != nil {
		reason += ": " + clipText(f.Err.Error(), 300)
	}
	if f.Status() == http.StatusServiceUnavailable {
		return &denial{status: http.StatusServiceUnavailable, issue: fhir.IssueTransient,
			hint: f.Hint() + ".", reason: reason, retryAfter: 5 * time.Second, cause: err}
	}
	issue := fhir.IssueLogin
	if f.Reason == trust.ReasonExpired {
		issue = fhir.IssueExpired
	}
	return &denial{status: http.StatusUnauthorized, issue: issue,
		hint:      "The X-EHR-Authorization token was refused: " + f.Hint() + ".",
		reason:    reason,
		challenge: oautherr.BearerChallenge(oautherr.InvalidToken("X-EHR-Authorization: %s", f.Hint())), cause: err}
}

// checkBinding enforces ehr_client_ids: the EHR token must have been
// issued to the EHR client this payer client registered for that issuer,
// so no app can spend another app's EHR token.
func (g *Gate) checkBinding(ctx context.Context, pt *authz.PayerToken, ac *smart.AccessContext) *denial {
	want, ok, err := g.cfg.Bindings.EHRClientID(ctx, pt.ClientID, ac.Issuer)
	switch {
	case err != nil:
		return &denial{status: http.StatusServiceUnavailable, issue: fhir.IssueTransient,
			hint: "The client registration could not be read; try again later.", reason: "client registration lookup failed",
			retryAfter: 5 * time.Second, cause: err}
	case !ok:
		return &denial{status: http.StatusForbidden, issue: fhir.IssueForbidden,
			hint:   "This client registered no client id at " + ac.Issuer + " (ehr_client_ids), so it may not present that EHR's tokens.",
			reason: "EHR token from " + ac.Issuer + ", for which the client registered no ehr_client_id"}
	case want != ac.ClientID:
		return &denial{status: http.StatusForbidden, issue: fhir.IssueForbidden,
			hint:   "The EHR token was issued to another client than the one this client registered at that EHR.",
			reason: "EHR token client_id '" + clipText(ac.ClientID, 200) + "' is not the registered ehr_client_id '" + clipText(want, 200) + "'"}
	}
	return nil
}

// patientOf is the launch patient as the absolute reference
// "{EHR FHIR base}/Patient/{id}" (CONTRACT.md "Patient binding"), the FHIR
// base being the one the trust registry lists for the token's issuer.
func (g *Gate) patientOf(ac *smart.AccessContext) (string, *denial) {
	invalid := func(hint, reason string) (string, *denial) {
		return "", &denial{status: http.StatusUnauthorized, issue: fhir.IssueLogin, hint: hint, reason: reason,
			challenge: oautherr.BearerChallenge(oautherr.InvalidToken("%s", hint))}
	}
	if ac.Patient == "" {
		return invalid("The EHR token carries no patient: launch the app with a patient in context.", "EHR token has no patient")
	}
	if !fhir.ValidID(ac.Patient) {
		return invalid("The EHR token's patient is not a FHIR id.", "EHR token patient is not a FHIR id")
	}
	base, ok := g.cfg.EHRBases.FHIRBase(ac.Issuer)
	if !ok {
		return invalid("The EHR token's issuer is no longer trusted.", "EHR issuer left the registry during the request")
	}
	return strings.TrimRight(base, "/") + "/Patient/" + ac.Patient, nil
}

// purposeOfUse reads X-Purpose-Of-Use (one v3-ActReason code from
// PurposesOfUse), defaulting to DefaultPurposeOfUse.
func purposeOfUse(r *http.Request) (string, *denial) {
	vals := r.Header.Values(HeaderPurposeOfUse)
	switch {
	case len(vals) == 0:
		return DefaultPurposeOfUse, nil
	case len(vals) == 1:
		v := strings.TrimSpace(vals[0])
		for _, p := range PurposesOfUse {
			if v == p {
				return p, nil
			}
		}
	}
	return "", &denial{status: http.StatusBadRequest, issue: fhir.IssueCodeInvalid,
		hint:   "X-Purpose-Of-Use must be one of " + strings.Join(PurposesOfUse, ", ") + " (v3-ActReason), sent once.",
		reason: "unsupported purpose of use"}
}

// refuse answers d as an OperationOutcome and writes its AuditEvent.
func (g *Gate) refuse(c *gin.Context, rule Rule, who *caller, d *denial) {
	g.record(c, rule, who, d)
	h := c.Writer.Header()
	if d.challenge != "" {
		h.Set("WWW-Authenticate", d.challenge)
	}
	if d.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(d.retryAfter.Seconds()))))
	}
	h.Set("Cache-Control", "no-store")
	fhir.WriteOutcome(c.Writer, d.status, d.issue, d.hint)
}

// Throttle is the gate's rate limit alone, for the routes outside the FHIR
// gate whose callers are not authenticated yet: the token and registration
// endpoints (a client assertion costs a signature check), the admin audit
// search and the console sign-in. Their buckets are per remote address, in
// a namespace of their own (scope), so they neither share nor drain the
// FHIR routes' buckets. A throttled request is answered 429 with
// Retry-After before anything else is read or checked, by write (each
// route's own error format), and is audited as rule.
func (g *Gate) Throttle(scope string, rule Rule, write func(c *gin.Context, hint string)) gin.HandlerFunc {
	return func(c *gin.Context) {
		if g.limiter == nil {
			c.Next()
			return
		}
		ip := c.ClientIP()
		ok, wait := g.limiter.allow(scope + ":" + ip)
		if ok {
			c.Next()
			return
		}
		d := &denial{status: http.StatusTooManyRequests, issue: fhir.IssueThrottled,
			hint:       fmt.Sprintf("Too many requests: at most %g a second from one address. Retry later.", g.cfg.RateLimit),
			reason:     "rate limit exceeded for " + scope + " requests from " + clipText(ip, 64),
			retryAfter: wait}
		g.record(c, rule, &caller{}, d)
		h := c.Writer.Header()
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		h.Set("Cache-Control", "no-store")
		write(c, d.hint)
		c.Abort()
	}
}

// record writes the AuditEvent of a refusal (never a token) and logs it.
func (g *Gate) record(c *gin.Context, rule Rule, who *caller, d *denial) {
	ev := audit.Event{
		Time: g.cfg.Now().UTC(), Action: rule.Action, Interaction: rule.Interaction,
		ResourceType: rule.ResourceType, Query: c.Request.URL.RawQuery, Outcome: audit.OutcomeMinorFailure,
		Reason: d.reason, Status: d.status, PurposeOfUse: who.purpose, SourceIP: c.ClientIP(),
	}
	if id := c.Param("id"); fhir.ValidID(id) {
		ev.ResourceID = id // anything else (NUL, invalid UTF-8, a path) is not an id
	}
	if d.status >= 500 {
		ev.Outcome = audit.OutcomeSeriousFail
	}
	switch {
	case who.payer != nil:
		ev.ClientID = who.payer.ClientID
	case who.throttledClient != "":
		ev.ClientID = who.throttledClient
	}
	if who.ehr != nil {
		ev.EHRIssuer, ev.FHIRUser = who.ehr.Issuer, who.ehr.FHIRUser
	}
	ev.Patient = who.patient
	if err := g.cfg.Audit.Record(c.Request.Context(), nil, ev); err != nil {
		g.cfg.Logger.Error("audit write failed for a refused request", "path", httpserver.ScrubPath(c.Request.URL.Path), "err", err)
	}
	level := slog.LevelInfo
	if d.status >= 500 {
		level = slog.LevelWarn
	}
	attrs := []any{"path", httpserver.ScrubPath(c.Request.URL.Path), "status", d.status, "reason", d.reason}
	if d.cause != nil {
		attrs = append(attrs, "cause", d.cause.Error())
	}
	g.cfg.Logger.Log(c.Request.Context(), level, "request refused by the gate", attrs...)
}

// clipText bounds caller-supplied text kept in an audit reason, as valid
// UTF-8 without control characters (a NUL or a stray byte must not reach
// the audit store, where PostgreSQL would refuse the whole event).
func clipText(s string, n int) string {
	cut := len(s) > n
	if cut {
		s = s[:n]
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if cut {
		s += "..."
	}
	return s
}
