package accesstoken

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// b64 is base64url without padding, refusing non-canonical trailing bits
// (RFC 7515 §2), so a token has exactly one encoding.
var b64 = base64.RawURLEncoding.Strict()

// decodeCompact splits a compact JWS (RFC 7515 §7.1) into its decoded parts
// and the signing input. Only the base64url alphabet and two dots are
// allowed: the base64 decoder would otherwise skip CR and LF.
func decodeCompact(raw string) (header, payload, sig []byte, signingInput string, err error) {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return nil, nil, nil, "", errors.New("character outside the base64url alphabet")
		}
	}
	first := strings.IndexByte(raw, '.')
	last := strings.LastIndexByte(raw, '.')
	if first < 0 || first == last || strings.Count(raw, ".") != 2 {
		return nil, nil, nil, "", errors.New("not three dot-separated parts")
	}
	h, p, s := raw[:first], raw[first+1:last], raw[last+1:]
	if h == "" || p == "" || s == "" {
		return nil, nil, nil, "", errors.New("empty part")
	}
	if header, err = b64.DecodeString(h); err != nil {
		return nil, nil, nil, "", errors.New("header is not base64url")
	}
	if payload, err = b64.DecodeString(p); err != nil {
		return nil, nil, nil, "", errors.New("payload is not base64url")
	}
	if sig, err = b64.DecodeString(s); err != nil {
		return nil, nil, nil, "", errors.New("signature is not base64url")
	}
	return header, payload, sig, raw[:last], nil
}

// unmarshalObject decodes data, which must be a JSON object, into v.
func unmarshalObject(data []byte, v any) error {
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return errors.New("not a JSON object")
	}
	return json.Unmarshal(data, v)
}
