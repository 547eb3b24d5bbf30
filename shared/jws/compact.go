// Package jws decodes the JWS Compact Serialization (RFC 7515 §7.1) for the
// sandbox's verifiers (RFC 9068 access tokens, RFC 7523 client assertions,
// the payer's pre-check of EHR tokens) before anything is trusted: one
// strict decoding, so a token has exactly one accepted spelling.
package jws

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// b64 is base64url without padding (RFC 7515 §2), refusing non-canonical
// trailing bits, so one JWS has one encoding.
var b64 = base64.RawURLEncoding.Strict()

// Compact is a compact JWS split and decoded, not verified.
type Compact struct {
	Header, Payload, Signature []byte
	// SigningInput is ASCII(BASE64URL(header) || '.' || BASE64URL(payload)),
	// what the signature covers (RFC 7515 §5.2 step 8).
	SigningInput string
}

// Decode splits raw into its three parts and decodes each. Only the
// base64url alphabet and exactly two dots are allowed: the base64 decoder
// would otherwise skip CR and LF.
func Decode(raw string) (*Compact, error) {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return nil, errors.New("character outside the base64url alphabet")
		}
	}
	first := strings.IndexByte(raw, '.')
	last := strings.LastIndexByte(raw, '.')
	if first < 0 || first == last || strings.Count(raw, ".") != 2 {
		return nil, errors.New("not three dot-separated parts")
	}
	h, p, s := raw[:first], raw[first+1:last], raw[last+1:]
	if h == "" || p == "" || s == "" {
		return nil, errors.New("empty part")
	}
	c := &Compact{SigningInput: raw[:last]}
	var err error
	if c.Header, err = b64.DecodeString(h); err != nil {
		return nil, errors.New("header is not base64url")
	}
	if c.Payload, err = b64.DecodeString(p); err != nil {
		return nil, errors.New("payload is not base64url")
	}
	if c.Signature, err = b64.DecodeString(s); err != nil {
		return nil, errors.New("signature is not base64url")
	}
	return c, nil
}

// UnmarshalObject decodes data, which must be a JSON object (RFC 7515 §4,
// RFC 7519 §7.2 step 10), into v.
func UnmarshalObject(data []byte, v any) error {
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return errors.New("not a JSON object")
	}
	return json.Unmarshal(data, v)
}
