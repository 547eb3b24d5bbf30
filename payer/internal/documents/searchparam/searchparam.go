// Package searchparam parses the values of FHIR R4 search parameters the
// payer supports (R4 search.html): date values with prefixes and implicit
// precision ranges (search.html#date, search.html#prefix), token values
// (search.html#token) and comma-separated OR lists with the escapes of
// search.html#escaping. It builds no SQL beyond the date comparison, whose
// semantics it owns.
package searchparam

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Error is a search value the server cannot use. Hint is for the caller.
type Error struct{ Hint string }

func (e *Error) Error() string { return "searchparam: " + e.Hint }

func errorf(format string, a ...any) error { return &Error{Hint: fmt.Sprintf(format, a...)} }

// Range is the implicit range of a FHIR date or dateTime at its precision
// (R4 search.html#date: "2013-01-14" stands for the whole day), as a
// half-open interval [Lo, Hi) in Unix microseconds.
type Range struct {
	Lo, Hi int64
}

// ParseStored parses a date, dateTime or instant held in a resource (R4
// datatypes.html#dateTime): a time needs seconds and a time zone.
func ParseStored(s string) (Range, error) { return parseDate(s, false) }

// ParseSearch parses a date search value without its prefix. It is more
// lenient than ParseStored, as search.html#date allows: seconds may be
// omitted and a value without a time zone is taken as UTC.
func ParseSearch(s string) (Range, error) { return parseDate(s, true) }

func parseDate(s string, search bool) (Range, error) {
	bad := errorf("%q is not a FHIR date or dateTime (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.fff](Z|+hh:mm))", clip(s))
	if len(s) > 40 {
		return Range{}, bad
	}
	num := func(from, n int) (int, bool) {
		if from+n > len(s) {
			return 0, false
		}
		v := 0
		for i := from; i < from+n; i++ {
			if s[i] < '0' || s[i] > '9' {
				return 0, false
			}
			v = v*10 + int(s[i]-'0')
		}
		return v, true
	}
	year, ok := num(0, 4)
	if !ok || year == 0 {
		return Range{}, bad
	}
	if len(s) == 4 {
		lo := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC)
		return Range{lo.UnixMicro(), lo.AddDate(1, 0, 0).UnixMicro()}, nil
	}
	if s[4] != '-' {
		return Range{}, bad
	}
	month, ok := num(5, 2)
	if !ok || month < 1 || month > 12 {
		return Range{}, bad
	}
	if len(s) == 7 {
		lo := time.Date(year, time.Month(month), 1, 0, 0, 0, 0, time.UTC)
		return Range{lo.UnixMicro(), lo.AddDate(0, 1, 0).UnixMicro()}, nil
	}
	if s[7] != '-' {
		return Range{}, bad
	}
	day, ok := num(8, 2)
	if !ok || day < 1 || day > 31 {
		return Range{}, bad
	}
	if time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC).Day() != day {
		return Range{}, bad // 2024-02-30
	}
	if len(s) == 10 {
		lo := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
		return Range{lo.UnixMicro(), lo.AddDate(0, 0, 1).UnixMicro()}, nil
	}
	if s[10] != 'T' {
		return Range{}, bad
	}
	hour, ok1 := num(11, 2)
	if !ok1 || len(s) < 16 || s[13] != ':' {
		return Range{}, bad
	}
	minute, ok2 := num(14, 2)
	if !ok2 || hour > 23 || minute > 59 {
		return Range{}, bad
	}
	i := 16
	sec, nanos := 0, 0
	width := time.Minute
	if i < len(s) && s[i] == ':' {
		v, ok := num(i+1, 2)
		if !ok || v > 59 {
			return Range{}, bad
		}
		sec, i, width = v, i+3, time.Second
		if i < len(s) && s[i] == '.' {
			j := i + 1
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			digits := s[i+1 : j]
			if digits == "" || len(digits) > 9 {
				return Range{}, bad
			}
			frac, _ := strconv.Atoi((digits + "000000000")[:9])
			nanos = frac
			width = time.Duration(1)
			for k := len(digits); k < 9; k++ {
				width *= 10
			}
			if width < time.Microsecond {
				width = time.Microsecond
			}
			i = j
		}
	} else if !search {
		return Range{}, bad // a stored dateTime with a time has seconds
	}
	loc := time.UTC
	switch {
	case i == len(s):
		if !search {
			return Range{}, bad // a stored dateTime with a time has a zone
		}
	case s[i] == 'Z' && i+1 == len(s):
	case (s[i] == '+' || s[i] == '-') && i+6 == len(s) && s[i+3] == ':':
		zh, okh := num(i+1, 2)
		zm, okm := num(i+4, 2)
		if !okh || !okm || zm > 59 || zh > 14 || (zh == 14 && zm != 0) {
			return Range{}, bad
		}
		off := (zh*60 + zm) * 60
		if s[i] == '-' {
			off = -off
		}
		loc = time.FixedZone("", off)
	default:
		return Range{}, bad
	}
	lo := time.Date(year, time.Month(month), day, hour, minute, sec, nanos, loc)
	loUS := lo.UnixMicro()
	return Range{loUS, lo.Add(width).UnixMicro()}, nil
}

// Date prefixes of R4 search.html#prefix.
const (
	PrefixEq = "eq"
	PrefixNe = "ne"
	PrefixGt = "gt"
	PrefixLt = "lt"
	PrefixGe = "ge"
	PrefixLe = "le"
	PrefixSa = "sa"
	PrefixEb = "eb"
	PrefixAp = "ap"
)

// SplitPrefix splits a comparison prefix off a date or number search value.
// A value without one has prefix "eq".
func SplitPrefix(v string) (prefix, rest string) {
	if len(v) >= 3 && v[2] >= '0' && v[2] <= '9' {
		switch p := v[:2]; p {
		case PrefixEq, PrefixNe, PrefixGt, PrefixLt, PrefixGe, PrefixLe, PrefixSa, PrefixEb, PrefixAp:
			return p, v[2:]
		}
	}
	return PrefixEq, v
}

// ErrUnsupportedPrefix is returned by DateSQL for prefixes the payer does
// not implement (ne, sa, eb, ap).
var ErrUnsupportedPrefix = errors.New("searchparam: unsupported date prefix")

// DateSQL returns an SQL condition that matches a stored range
// [loCol, hiCol) against the search range r under prefix, per R4
// search.html#prefix:
//
//	eq: the stored range lies within the search range
//	gt: the stored range reaches above the search range
//	lt: the stored range reaches below the search range
//	ge: gt, or eq
//	le: lt, or eq
//
// loCol and hiCol are trusted column names; values are arguments. A row
// without the element (NULL columns) never matches.
func DateSQL(loCol, hiCol, prefix string, r Range) (string, []any, error) {
	eq := fmt.Sprintf("(%s >= ? AND %s <= ?)", loCol, hiCol)
	switch prefix {
	case PrefixEq:
		return eq, []any{r.Lo, r.Hi}, nil
	case PrefixGt:
		return hiCol + " > ?", []any{r.Hi}, nil
	case PrefixLt:
		return loCol + " < ?", []any{r.Lo}, nil
	case PrefixGe:
		return fmt.Sprintf("(%s > ? OR %s)", hiCol, eq), []any{r.Hi, r.Lo, r.Hi}, nil
	case PrefixLe:
		return fmt.Sprintf("(%s < ? OR %s)", loCol, eq), []any{r.Lo, r.Lo, r.Hi}, nil
	}
	return "", nil, ErrUnsupportedPrefix
}

// Match reports whether a stored range matches the search range under
// prefix with the semantics of DateSQL (for filtering in memory).
func Match(stored Range, prefix string, r Range) (bool, error) {
	eq := stored.Lo >= r.Lo && stored.Hi <= r.Hi
	switch prefix {
	case PrefixEq:
		return eq, nil
	case PrefixGt:
		return stored.Hi > r.Hi, nil
	case PrefixLt:
		return stored.Lo < r.Lo, nil
	case PrefixGe:
		return stored.Hi > r.Hi || eq, nil
	case PrefixLe:
		return stored.Lo < r.Lo || eq, nil
	}
	return false, ErrUnsupportedPrefix
}

// SplitList splits a search value on the commas that separate OR values
// (search.html#escaping: "\," is a literal comma). Escapes are kept for
// the next step (Unescape, or SplitToken).
func SplitList(v string) []string {
	var out []string
	start := 0
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++ // skip the escaped character
		case ',':
			out = append(out, v[start:i])
			start = i + 1
		}
	}
	return append(out, v[start:])
}

// Unescape removes the search escapes "\,", "\|", "\$" and "\\". A
// backslash before anything else, or at the end, is an error.
func Unescape(v string) (string, error) {
	if !strings.Contains(v, `\`) {
		return v, nil
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '\\' {
			b.WriteByte(v[i])
			continue
		}
		if i+1 == len(v) || !strings.ContainsRune(`,|$\`, rune(v[i+1])) {
			return "", errorf("a backslash in a search value must escape one of , | $ \\")
		}
		i++
		b.WriteByte(v[i])
	}
	return b.String(), nil
}

// Token is a token search value (search.html#token):
//
//	code          any system          (HasSystem false)
//	system|code   that system
//	|code         no system           (HasSystem true, System "")
//	system|       any code of system  (Code "")
type Token struct {
	System    string
	Code      string
	HasSystem bool
}

// ParseToken parses one token value (one item of an OR list).
func ParseToken(v string) (Token, error) {
	sep := -1
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' {
			i++
			continue
		}
		if v[i] == '|' {
			if sep >= 0 {
				return Token{}, errorf("a token value has at most one unescaped |")
			}
			sep = i
		}
	}
	if sep < 0 {
		code, err := Unescape(v)
		if err != nil {
			return Token{}, err
		}
		if code == "" {
			return Token{}, errorf("empty token value")
		}
		return Token{Code: code}, nil
	}
	system, err := Unescape(v[:sep])
	if err != nil {
		return Token{}, err
	}
	code, err := Unescape(v[sep+1:])
	if err != nil {
		return Token{}, err
	}
	if system == "" && code == "" {
		return Token{}, errorf("a token value needs a system or a code")
	}
	return Token{System: system, Code: code, HasSystem: true}, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
