package httpserver

import "strings"

// LooksLikeJWT reports whether v has the shape of a compact JWS or JWE
// (base64url segments starting with "eyJ", 3 or 5 of them): a token that a
// client put somewhere it should not be, such as a URL.
func LooksLikeJWT(v string) bool {
	if !strings.HasPrefix(v, "eyJ") {
		return false
	}
	dots := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '.':
			dots++
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '=':
		default:
			return false
		}
	}
	return dots == 2 || dots == 4
}

// ScrubPath returns a URL path fit for a log line: a segment shaped like a
// JWT (a token pasted into a URL) becomes "redacted", and the result is at
// most 512 bytes. Logs carry paths, never query strings or headers.
func ScrubPath(p string) string {
	if strings.Contains(p, "eyJ") {
		segs := strings.Split(p, "/")
		for i, seg := range segs {
			if LooksLikeJWT(seg) {
				segs[i] = "redacted"
			}
		}
		p = strings.Join(segs, "/")
	}
	if len(p) > 512 {
		p = strings.ToValidUTF8(p[:512], "") + "..."
	}
	return p
}
