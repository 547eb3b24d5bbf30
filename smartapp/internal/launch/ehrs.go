package launch

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"dtrsandbox/smartapp/internal/signer"
)

// ParseEHRs reads SMARTAPP_EHRS: a comma-separated list of
// "issuer=client_id" pairs, the EHR FHIR bases the app accepts launches from
// and its client id at each. Issuers are absolute http(s) URLs, kept without a
// trailing slash, each listed once.
func ParseEHRs(s string) ([]signer.EHR, error) {
	var out []signer.EHR
	seen := map[string]bool{}
	for _, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		// The issuer may itself hold "=" in a query (it should not), so
		// split at the last "=".
		i := strings.LastIndex(pair, "=")
		if i <= 0 || i == len(pair)-1 {
			return nil, fmt.Errorf("SMARTAPP_EHRS: %q is not issuer=client_id", pair)
		}
		iss, client := strings.TrimRight(strings.TrimSpace(pair[:i]), "/"), strings.TrimSpace(pair[i+1:])
		u, err := url.Parse(iss)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("SMARTAPP_EHRS: issuer %q is not an absolute http(s) URL", iss)
		}
		if seen[iss] {
			return nil, fmt.Errorf("SMARTAPP_EHRS: issuer %q is listed twice", iss)
		}
		seen[iss] = true
		out = append(out, signer.EHR{Issuer: iss, ClientID: client})
	}
	if len(out) == 0 {
		return nil, errors.New("SMARTAPP_EHRS: no EHR listed")
	}
	return out, nil
}
