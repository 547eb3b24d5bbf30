package jwks

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// Limits on a JWK Set received from someone else.
const (
	MaxSetBytes = 64 << 10 // 64 KiB
	MaxSetKeys  = 20
)

// privateMembers are the JWK members that carry private or symmetric key
// material (RFC 7518 §6.2.2, §6.3.2, §6.4.1; RFC 8037 "d"; RFC 9964 "priv").
var privateMembers = map[string]bool{
	"d": true, "p": true, "q": true, "dp": true, "dq": true, "qi": true, "oth": true, "k": true, "priv": true,
}

// ParsePublicSet parses a JWK Set received from another party (a client's
// registered "jwks", the body behind a jwks_uri), strictly: at most 64 KiB and
// 20 keys; every key public and asymmetric, with a kid unique in the set and,
// if "use" is given, "use":"sig". Member names that differ only in case are
// refused, since encoding/json would match either. Keys of a type this
// library does not know are skipped (RFC 7517 §5).
func ParsePublicSet(data []byte) (*jose.JSONWebKeySet, error) {
	if len(data) > MaxSetBytes {
		return nil, fmt.Errorf("jwks: key set larger than %d bytes", MaxSetBytes)
	}
	top, err := objectMembers(data)
	if err != nil {
		return nil, fmt.Errorf("jwks: key set: %w", err)
	}
	rawKeys, ok := top["keys"]
	if !ok {
		return nil, errors.New(`jwks: key set has no "keys" member`)
	}
	var keys []json.RawMessage
	if err := json.Unmarshal(rawKeys, &keys); err != nil || keys == nil {
		return nil, errors.New(`jwks: "keys" is not an array`)
	}
	if len(keys) > MaxSetKeys {
		return nil, fmt.Errorf("jwks: key set has %d keys, at most %d allowed", len(keys), MaxSetKeys)
	}
	set := &jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(keys))}
	seen := make(map[string]bool, len(keys))
	for i, raw := range keys {
		k, skip, err := parsePublicKey(raw)
		if err != nil {
			return nil, fmt.Errorf("jwks: key %d: %w", i, err)
		}
		if skip {
			continue
		}
		if seen[k.KeyID] {
			return nil, fmt.Errorf("jwks: key %d: duplicate kid %q", i, k.KeyID)
		}
		seen[k.KeyID] = true
		set.Keys = append(set.Keys, k)
	}
	return set, nil
}

// parsePublicKey parses one JWK; skip is true for a well-formed key of a type
// we do not support.
func parsePublicKey(raw json.RawMessage) (k jose.JSONWebKey, skip bool, err error) {
	members, err := objectMembers(raw)
	if err != nil {
		return k, false, err
	}
	for name := range members {
		if privateMembers[strings.ToLower(name)] {
			return k, false, fmt.Errorf("carries private or symmetric key material (%q)", name)
		}
	}
	if err := k.UnmarshalJSON(raw); err != nil {
		if errors.Is(err, jose.ErrUnsupportedKeyType) {
			return k, true, nil
		}
		return k, false, fmt.Errorf("invalid JWK: %w", err)
	}
	switch k.Key.(type) {
	case []byte:
		return k, false, errors.New("symmetric keys are not accepted")
	case *rsa.PrivateKey, *ecdsa.PrivateKey:
		return k, false, errors.New("carries private key material")
	}
	if !k.IsPublic() || !k.Valid() {
		return k, false, errors.New("not a valid public key")
	}
	if k.KeyID == "" {
		return k, false, errors.New(`no "kid"`)
	}
	if k.Use != "" && k.Use != "sig" {
		return k, false, fmt.Errorf(`"use" is %q, only "sig" is accepted`, k.Use)
	}
	return k, false, nil
}

// objectMembers decodes one JSON object into its members, refusing member
// names that repeat, exactly or up to case.
func objectMembers(data []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	members := map[string]json.RawMessage{}
	folded := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("not JSON: %w", err)
		}
		name, _ := tok.(string)
		f := strings.ToLower(name)
		if folded[f] {
			return nil, fmt.Errorf("member %q appears twice", name)
		}
		folded[f] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("not JSON: %w", err)
		}
		members[name] = v
	}
	if _, err := dec.Token(); err != nil { // closing brace
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("data after the JSON object")
	}
	return members, nil
}

// FindKey returns the public key in set whose kid equals kid exactly and that
// can verify alg: RSA for RS*/PS*, EC on the matching curve for
// ES256/ES384/ES512, "use" empty or "sig", and "alg", when the key names one,
// equal to alg (RFC 7517 §4.4). The error wraps ErrKeyNotFound when no key
// has the kid, ErrKeyMismatch when it does but does not fit.
func FindKey(set *jose.JSONWebKeySet, kid, alg string) (crypto.PublicKey, error) {
	if kid == "" {
		return nil, fmt.Errorf("%w: empty kid", ErrKeyNotFound)
	}
	if !isRSAAlg(alg) && curveFor(alg) == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedAlg, alg)
	}
	if set == nil {
		return nil, fmt.Errorf("%w: %q (no key set)", ErrKeyNotFound, kid)
	}
	var found *jose.JSONWebKey
	for i := range set.Keys {
		if set.Keys[i].KeyID != kid {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("%w: kid %q names more than one key", ErrKeyMismatch, kid)
		}
		found = &set.Keys[i]
	}
	if found == nil {
		return nil, fmt.Errorf("%w: %q", ErrKeyNotFound, kid)
	}
	if found.Use != "" && found.Use != "sig" {
		return nil, fmt.Errorf("%w: key %q has use %q", ErrKeyMismatch, kid, found.Use)
	}
	if found.Algorithm != "" && found.Algorithm != alg {
		return nil, fmt.Errorf("%w: key %q is for %s, not %s", ErrKeyMismatch, kid, found.Algorithm, alg)
	}
	if !found.IsPublic() {
		return nil, fmt.Errorf("%w: key %q is not a public key", ErrKeyMismatch, kid)
	}
	if err := checkKeyFitsAlg(found.Key, alg); err != nil {
		return nil, fmt.Errorf("key %q: %w", kid, err)
	}
	return found.Key, nil
}
