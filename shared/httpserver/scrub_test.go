package httpserver

import (
	"strings"
	"testing"
)

func TestScrubPath(t *testing.T) {
	jwt := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	tests := []struct{ name, in, want string }{
		{"plain", "/fhir/DocumentReference/doc-1", "/fhir/DocumentReference/doc-1"},
		{"token in a segment", "/fhir/DocumentReference/" + jwt, "/fhir/DocumentReference/redacted"},
		{"eyJ prefix but not a token", "/fhir/Patient/eyJ-not.a-token.x!", "/fhir/Patient/eyJ-not.a-token.x!"},
		{"long path clipped", "/" + strings.Repeat("a", 600), "/" + strings.Repeat("a", 511) + "..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ScrubPath(tt.in); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
