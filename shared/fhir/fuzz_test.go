// Fuzzing of strict decoding, with an independent oracle for repeated keys,
// and an exhaustive check of the Unicode case folding it relies on.

package fhir

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzDecode feeds arbitrary bytes to Decode with several targets. Run it
// with `go test -fuzz FuzzDecode ./shared/fhir/`; without -fuzz the seed
// corpus (the golden files and the hand-written cases below) runs as a
// normal test. It requires that Decode never panics, that whatever it
// accepts is valid JSON without duplicate or case-only-different keys
// (checked by an independent, quadratic implementation), that CheckKeys
// accepts it too, and that a re-encoding of an accepted resource is
// accepted again.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		``, `{}`, `[]`, `null`, `"x"`, `1e400`, `{"a":1}{}`, `{"a":1,"a":2}`, `{"a":1,"A":2}`,
		`{"resourceType":"Patient","Gender":"x"}`, `{"\u017fubject":{}}`, `{"k":{"\u212a":1,"k":2}}`,
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","ID":"x"}}]}`,
		`{"contained":[{"resourceType":"Questionnaire","item":[{"item":[{"LinkId":"x"}]}]}]}`,
		`{"item":[{"answer":[{"valueDecimal":"1"}]}]}`, `{"a":"\xff","\xfe":1}`, `{"\ud800":1,"\udc00":2}`,
		strings.Repeat(`[`, 200) + strings.Repeat(`]`, 200), strings.Repeat(`{"a":`, 100) + `1` + strings.Repeat(`}`, 100),
	} {
		f.Add([]byte(s))
	}
	targets := []func() any{
		func() any { return new(any) },
		func() any { return &Patient{} },
		func() any { return &QuestionnaireResponse{} },
		func() any { return &DocumentReference{} },
		func() any { return &Bundle{} },
		func() any { return &Parameters{} },
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, target := range targets {
			v := target()
			if err := Decode(data, v); err != nil {
				if _, ok := err.(*DecodeError); !ok {
					t.Fatalf("Decode returned %T, want *DecodeError", err)
				}
				continue
			}
			if !json.Valid(data) {
				t.Fatalf("Decode accepted invalid JSON %q", data)
			}
			if msg := findRepeatedKey(data); msg != "" {
				t.Fatalf("Decode(%T) accepted %q with %s", v, data, msg)
			}
			if err := CheckKeys(data); err != nil {
				t.Fatalf("Decode accepted %q but CheckKeys refuses: %v", data, err)
			}
			out, err := json.Marshal(v)
			if err != nil {
				continue // e.g. a float64 in a generic value that JSON cannot hold
			}
			if err := Decode(out, target()); err != nil {
				t.Fatalf("re-encoding %s of accepted input refused: %v", out, err)
			}
		}
	})
}

// findRepeatedKey is an independent oracle: it reports a key that repeats,
// exactly or under strings.EqualFold, in some object of data (valid JSON),
// comparing every pair of keys.
func findRepeatedKey(data []byte) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		object    bool
		expectKey bool
		keys      []string
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return ""
		}
		if err != nil {
			return "" // json.Valid already holds; nothing to report
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expectKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			key := tok.(string)
			for _, k := range top.keys {
				if strings.EqualFold(k, key) {
					return "keys " + k + " and " + key
				}
			}
			top.keys = append(top.keys, key)
			top.expectKey = false
			continue
		}
		if top != nil && top.object {
			top.expectKey = true // this token is a value (or starts one)
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, expectKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}

// TestFoldKeyMatchesEqualFold checks, for every Unicode code point, that
// foldKey maps it to a member of its own simple-folding orbit and maps all
// members of the orbit alike, which makes foldKey(x) == foldKey(y) exactly
// strings.EqualFold(x, y), the rule encoding/json uses to match names.
func TestFoldKeyMatchesEqualFold(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		s := string(r)
		k := foldKey(s)
		if !strings.EqualFold(s, k) {
			t.Fatalf("foldKey(%q) = %q, not in its folding orbit", s, k)
		}
		if other := string(unicode.SimpleFold(r)); foldKey(other) != k {
			t.Fatalf("foldKey(%q) = %q but foldKey(%q) = %q", s, k, other, foldKey(other))
		}
	}
}

func TestFindRepeatedKeyOracle(t *testing.T) {
	for body, want := range map[string]bool{
		`{"a":1,"b":[{"a":1}],"c":{"a":{}}}`: false,
		`{"a":{"x":1},"A":2}`:                true,
		`[{"a":1},{"b":[{"q":1,"q":2}]}]`:    true,
		`{"a":[],"b":{},"a":3}`:              true,
	} {
		if got := findRepeatedKey([]byte(body)) != ""; got != want {
			t.Errorf("findRepeatedKey(%s) = %v, want %v", body, got, want)
		}
	}
}
