package searchparam

import (
	"testing"
	"time"
)

func us(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMicro()
}

func TestParseDate(t *testing.T) {
	cases := []struct {
		in      string
		search  bool
		lo, hi  string
		invalid bool
	}{
		{in: "2024", search: true, lo: "2024-01-01T00:00:00Z", hi: "2025-01-01T00:00:00Z"},
		{in: "2024-02", search: true, lo: "2024-02-01T00:00:00Z", hi: "2024-03-01T00:00:00Z"},
		{in: "2024-02-29", search: true, lo: "2024-02-29T00:00:00Z", hi: "2024-03-01T00:00:00Z"},
		{in: "2024-05-02T10:09", search: true, lo: "2024-05-02T10:09:00Z", hi: "2024-05-02T10:10:00Z"},
		{in: "2024-05-02T10:09:00-05:00", lo: "2024-05-02T15:09:00Z", hi: "2024-05-02T15:09:01Z"},
		{in: "2024-05-02T15:09:31.118Z", lo: "2024-05-02T15:09:31.118Z", hi: "2024-05-02T15:09:31.119Z"},
		{in: "2024-05-02T15:09:31.1234567Z", lo: "2024-05-02T15:09:31.123456Z", hi: "2024-05-02T15:09:31.123457Z"},
		{in: "2023-02-29", invalid: true},
		{in: "2024-13", invalid: true},
		{in: "2024-05-02T10:09", invalid: true},    // stored: seconds and zone required
		{in: "2024-05-02T10:09:00", invalid: true}, // stored: zone required
		{in: "2024-05-02T24:00:00Z", invalid: true},
		{in: "2024-05-02T10:09:00+15:00", invalid: true},
		{in: "0000", invalid: true},
		{in: "24-05-02", invalid: true},
		{in: "2024-05-02 10:09:00Z", invalid: true},
		{in: "2024-05-02T10:09:00.Z", invalid: true},
		{in: "", invalid: true},
	}
	for _, tc := range cases {
		parse := ParseStored
		if tc.search {
			parse = ParseSearch
		}
		r, err := parse(tc.in)
		if tc.invalid {
			if err == nil {
				t.Errorf("%q accepted", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if r.Lo != us(tc.lo) || r.Hi != us(tc.hi) {
			t.Errorf("%q: [%d,%d), want [%d,%d)", tc.in, r.Lo, r.Hi, us(tc.lo), us(tc.hi))
		}
	}
}

func TestPrefixSemantics(t *testing.T) {
	day, _ := ParseSearch("2024-05-02")
	in, _ := ParseStored("2024-05-02T12:00:00Z")
	before, _ := ParseStored("2024-05-01T23:59:59Z")
	after, _ := ParseStored("2024-05-03T00:00:00Z")
	want := map[string][3]bool{ // before, in, after
		PrefixEq: {false, true, false},
		PrefixGe: {false, true, true},
		PrefixLe: {true, true, false},
		PrefixGt: {false, false, true},
		PrefixLt: {true, false, false},
	}
	for prefix, w := range want {
		for i, stored := range []Range{before, in, after} {
			got, err := Match(stored, prefix, day)
			if err != nil || got != w[i] {
				t.Errorf("%s case %d: %v %v", prefix, i, got, err)
			}
		}
	}
	if _, _, err := DateSQL("lo", "hi", PrefixNe, day); err == nil {
		t.Error("ne accepted")
	}
	if p, rest := SplitPrefix("ge2024"); p != PrefixGe || rest != "2024" {
		t.Error(p, rest)
	}
	if p, rest := SplitPrefix("gender"); p != PrefixEq || rest != "gender" {
		t.Error(p, rest)
	}
}

func TestTokensAndLists(t *testing.T) {
	if got := SplitList(`a,b\,c,d`); len(got) != 3 || got[1] != `b\,c` {
		t.Fatal(got)
	}
	cases := []struct {
		in   string
		want Token
		bad  bool
	}{
		{in: "code", want: Token{Code: "code"}},
		{in: "sys|code", want: Token{System: "sys", Code: "code", HasSystem: true}},
		{in: "|code", want: Token{Code: "code", HasSystem: true}},
		{in: "sys|", want: Token{System: "sys", HasSystem: true}},
		{in: `a\|b`, want: Token{Code: "a|b"}},
		{in: "|", bad: true},
		{in: "a|b|c", bad: true},
		{in: `a\x`, bad: true},
		{in: "", bad: true},
	}
	for _, tc := range cases {
		got, err := ParseToken(tc.in)
		if tc.bad != (err != nil) || (!tc.bad && got != tc.want) {
			t.Errorf("%q: %+v %v", tc.in, got, err)
		}
	}
}
