package demo

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"dtrsandbox/shared/fhir"
)

// auditSearch is GET {payer}/fhir/AuditEvent?<q> with the admin token.
func (f *flow) auditSearch(q url.Values) ([]fhir.AuditEvent, error) {
	if f.cfg.AdminToken == "" {
		return nil, errors.New("no payer admin token: set PAYER_ADMIN_TOKEN or give the data directory holding payer/admin-token")
	}
	q.Set("_count", "200")
	res, err := do(f.ctx, f.api, http.MethodGet, f.cfg.PayerFHIR()+"/AuditEvent?"+q.Encode(),
		map[string]string{"Authorization": bearer(f.cfg.AdminToken)}, nil)
	if err != nil {
		return nil, err
	}
	var b fhir.Bundle
	if err := res.expect("AuditEvent search ("+q.Encode()+")", &b, http.StatusOK); err != nil {
		return nil, err
	}
	var out []fhir.AuditEvent
	for _, e := range b.Entry {
		var ae fhir.AuditEvent
		if err := json.Unmarshal(e.Resource, &ae); err != nil {
			return nil, fmt.Errorf("AuditEvent entry: %w", err)
		}
		out = append(out, ae)
	}
	return out, nil
}

// auditUser is the fhirUser agent of an event ("" when none).
func auditUser(ae fhir.AuditEvent) string {
	for _, a := range ae.Agent {
		if a.Who == nil {
			continue
		}
		if strings.Contains(a.Who.Reference, "Practitioner/") {
			return a.Who.Reference
		}
		if a.Who.Identifier != nil && strings.Contains(a.Who.Identifier.Value, "Practitioner/") {
			return a.Who.Identifier.Value
		}
	}
	return ""
}

// auditClient is the app's client_id in an event.
func auditClient(ae fhir.AuditEvent) string {
	for _, a := range ae.Agent {
		if a.AltID != "" {
			return a.AltID
		}
		if a.Who != nil && a.Who.Identifier != nil && strings.HasSuffix(a.Who.Identifier.System, "/client_id") {
			return a.Who.Identifier.Value
		}
	}
	return ""
}

// auditPurpose is the first purpose-of-use code of an event.
func auditPurpose(ae fhir.AuditEvent) string {
	for _, cc := range ae.PurposeOfEvent {
		for _, c := range cc.Coding {
			if c.Code != "" {
				return c.Code
			}
		}
	}
	for _, a := range ae.Agent {
		for _, cc := range a.PurposeOfUse {
			for _, c := range cc.Coding {
				if c.Code != "" {
					return c.Code
				}
			}
		}
	}
	return ""
}

// auditTouches reports whether an event names resource ref (Type/id).
func auditTouches(ae fhir.AuditEvent, ref string) bool {
	for _, e := range ae.Entity {
		if e.What != nil && (e.What.Reference == ref || strings.HasSuffix(e.What.Reference, "/"+ref)) {
			return true
		}
	}
	return false
}

// checkPayerAudit: the payer's audit trail for pat-1 shows the writes of
// this run, by the clinician (prac-1 as fhirUser) through dtr-app, with a
// purpose of use.
func (f *flow) checkPayerAudit() (string, error) {
	events, err := f.auditSearch(url.Values{"patient": {f.cfg.PatientURL(Patient)}})
	if err != nil {
		return "", err
	}
	if len(events) == 0 {
		return "", fmt.Errorf("no AuditEvent for patient %s", f.cfg.PatientURL(Patient))
	}
	ref := "DocumentReference/" + f.docID
	var hit *fhir.AuditEvent
	for i := range events {
		ae := events[i]
		if ae.Outcome == "0" && auditTouches(ae, ref) && (ae.Action == "C" || ae.Action == "U") {
			hit = &events[i]
			break
		}
	}
	if hit == nil {
		return "", fmt.Errorf("%d AuditEvents for %s, none records the successful create/update of %s", len(events), Patient, ref)
	}
	user, client, purpose := auditUser(*hit), auditClient(*hit), auditPurpose(*hit)
	switch {
	case !strings.HasSuffix(user, "Practitioner/"+Practitioner):
		return "", fmt.Errorf("AuditEvent/%s for %s names user %q, want Practitioner/%s", hit.ID, ref, user, Practitioner)
	case client != AppClientID:
		return "", fmt.Errorf("AuditEvent/%s for %s names app %q, want %s", hit.ID, ref, client, AppClientID)
	case purpose == "":
		return "", fmt.Errorf("AuditEvent/%s for %s has no purpose of use", hit.ID, ref)
	}
	return fmt.Sprintf("%d events for %s; AuditEvent/%s: action %s on %s, outcome 0, user %s, app %s, purpose %s",
		len(events), Patient, hit.ID, hit.Action, ref, user, client, purpose), nil
}

// checkAttackAudit: every refused attack is in the audit trail as a
// denial, attributed to the attacker's payer client, with the reason.
func (f *flow) checkAttackAudit() (string, error) {
	events, err := f.auditSearch(url.Values{"agent": {f.atk.payerClient}})
	if err != nil {
		return "", err
	}
	secrets := []string{f.atk.ehrToken.AccessToken, f.atk.payerToken.AccessToken, f.legitEHRToken, f.forgedToken}
	for _, ae := range events {
		b, _ := json.Marshal(ae)
		for _, s := range secrets {
			if s != "" && strings.Contains(string(b), s) {
				return "", fmt.Errorf("AuditEvent/%s contains an access token", ae.ID)
			}
		}
	}
	denied := 0
	var reasons []string
	seen := map[string]bool{}
	for _, ae := range events {
		if ae.Outcome == "" || ae.Outcome == "0" {
			continue
		}
		denied++
		if ae.OutcomeDesc == "" {
			return "", fmt.Errorf("denied AuditEvent/%s has no reason (outcomeDesc)", ae.ID)
		}
		if r := clipString(ae.OutcomeDesc, 50); !seen[r] {
			seen[r] = true
			reasons = append(reasons, r)
		}
	}
	// 404 by id, the 401 of the forged token and the 403 of the stolen one
	// are denials for sure; searches may be answered with an empty result.
	if denied < 3 {
		return "", fmt.Errorf("%d events for the attacker's client %s, %d of them denials; want at least 3", len(events), short(f.atk.payerClient), denied)
	}
	return fmt.Sprintf("%d denials for client %s, no token in any event: %s", denied, short(f.atk.payerClient), strings.Join(reasons, " | ")), nil
}

func clipString(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
