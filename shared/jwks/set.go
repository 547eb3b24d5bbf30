package jwks

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	jose "github.com/go-jose/go-jose/v4"
)

// Set is the list of keys a service publishes: the current signing key first,
// then any retired keys still inside the lifetime of tokens they signed.
type Set []*SigningKey

// MarshalPublic renders the RFC 7517 §5 JWK Set {"keys":[...]} with the public
// halves only.
func (s Set) MarshalPublic() ([]byte, error) {
	out := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(s))}
	for i, k := range s {
		if k == nil || k.Private == nil {
			return nil, fmt.Errorf("jwks: key %d of the set is empty", i)
		}
		jwk := k.PublicJWK()
		if !jwk.IsPublic() {
			return nil, fmt.Errorf("jwks: key %q has no public form", k.KID)
		}
		out.Keys = append(out.Keys, jwk)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("jwks: marshal set: %w", err)
	}
	return b, nil
}

// Handler serves the public JWK Set (the jwks_uri of RFC 8414 §2 / SMART App
// Launch §2.0.2) as application/json, cacheable for five minutes. The body is
// rendered once, when the handler is made.
func Handler(s Set) http.Handler {
	body, err := s.MarshalPublic()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if err != nil {
			http.Error(w, "key set unavailable", http.StatusServiceUnavailable)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	})
}
