package clientauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// b64 is base64url without padding, refusing non-canonical trailing bits
// (RFC 7515 §2, §7.1), so one JWS has one encoding.
var b64 = base64.RawURLEncoding.Strict()

// decodeCompact splits a compact JWS into its decoded header and payload,
// checking that the signature part is valid base64url too. Only the JWS
// alphabet is allowed: the base64 decoder would otherwise skip CR and LF.
func decodeCompact(raw string) (header, payload []byte, err error) {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return nil, nil, errors.New("character outside the base64url alphabet")
		}
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, nil, errors.New("not three dot-separated parts")
	}
	if parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return nil, nil, errors.New("empty part")
	}
	if header, err = b64.DecodeString(parts[0]); err != nil {
		return nil, nil, err
	}
	if payload, err = b64.DecodeString(parts[1]); err != nil {
		return nil, nil, err
	}
	if _, err = b64.DecodeString(parts[2]); err != nil {
		return nil, nil, err
	}
	return header, payload, nil
}

// unmarshalObject decodes data, which must be a JSON object, into v.
func unmarshalObject(data []byte, v any) error {
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return errors.New("not a JSON object")
	}
	return json.Unmarshal(data, v)
}
