// Package jwtview decodes a compact JWS (RFC 7515 §7.1) into its header and
// payload JSON for display in the presenter's security panel. It verifies
// nothing and keeps no signature: only tokens the app has already verified
// are shown, and the raw token string never leaves the server.
package jwtview

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// View is a token's decoded header and payload.
type View struct {
	Header  json.RawMessage `json:"header"`
	Payload json.RawMessage `json:"payload"`
}

// Decode splits raw and decodes its first two parts, which must be JSON
// objects.
func Decode(raw string) (View, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return View{}, errors.New("jwtview: not a compact JWS")
	}
	var v View
	for i, dst := range []*json.RawMessage{&v.Header, &v.Payload} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return View{}, errors.New("jwtview: part is not base64url")
		}
		if t := bytes.TrimSpace(b); len(t) == 0 || t[0] != '{' || !json.Valid(t) {
			return View{}, errors.New("jwtview: part is not a JSON object")
		}
		*dst = json.RawMessage(b)
	}
	return v, nil
}
