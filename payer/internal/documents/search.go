package documents

import (
	"errors"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"dtrsandbox/payer/internal/documents/searchparam"
	"dtrsandbox/shared/fhir"
)

// SearchError is a search the payer refuses (400): Code is the
// OperationOutcome issue type (not-supported for unknown parameters,
// modifiers, chains and includes; invalid or value for bad values).
type SearchError struct {
	Code string
	Hint string
}

func (e *SearchError) Error() string { return "documents: search: " + e.Hint }

func searchErr(code, hint string) *SearchError { return &SearchError{Code: code, Hint: hint} }

// Values of _total (R4 search.html#total).
const (
	TotalNone     = "none"
	TotalEstimate = "estimate"
	TotalAccurate = "accurate"
)

// Page sizes (R4 search.html#count: the server may return fewer than asked).
const (
	DefaultCount = 50
	MaxCount     = 100
	maxOffset    = 10000
)

// Limits on a search request, against queries built to be expensive.
const (
	maxSearchValues = 64   // parameter occurrences
	maxListItems    = 32   // items of one comma list
	maxValueLen     = 2048 // bytes of one value
)

// PatientFilterSQL is the first condition of every compiled query: the
// resource type and the launch patient. Its arguments are the first two.
const PatientFilterSQL = "documents.resource_type = ? AND documents.patient = ?"

// Condition is one AND-ed SQL condition with its arguments. SQL holds only
// constant text and placeholders; every value is an argument.
type Condition struct {
	SQL  string
	Args []any
}

// SortKey is one _sort key.
type SortKey struct {
	Column string // constant column expression
	Desc   bool
}

// Query is a compiled search: conditions (the patient filter first, always)
// and result parameters.
type Query struct {
	ResourceType string
	Patient      string
	Conditions   []Condition
	Sort         []SortKey
	Count        int // page size; 0 = no entries (_count=0 or _summary=count)
	Offset       int
	Total        string // TotalAccurate (default), TotalEstimate or TotalNone
	SummaryCount bool
	// Params are the parameters as accepted, for the self link.
	Params url.Values
}

// Where returns the conditions joined with AND, the patient filter first,
// and their arguments.
func (q *Query) Where() (string, []any) {
	var b strings.Builder
	var args []any
	for i, c := range q.Conditions {
		if i > 0 {
			b.WriteString(" AND ")
		}
		b.WriteString(c.SQL)
		args = append(args, c.Args...)
	}
	return b.String(), args
}

// OrderBy returns the ORDER BY list: the _sort keys, then the default
// (most recently updated first), then the id for a stable order.
func (q *Query) OrderBy() string {
	var parts []string
	for _, k := range q.Sort {
		dir := " ASC"
		if k.Desc {
			dir = " DESC"
		}
		// NULLs last in both directions, the same on SQLite and PostgreSQL.
		parts = append(parts, "("+k.Column+" IS NULL) ASC", k.Column+dir)
	}
	parts = append(parts, "documents.last_updated_us DESC", "documents.id ASC")
	return strings.Join(parts, ", ")
}

// paramKind is how a search parameter is matched.
type paramKind int

const (
	kindID paramKind = iota
	kindPatient
	kindToken
	kindDate
	kindReference
	kindCanonical
)

// searchParams lists the parameters of each type (R4
// documentreference.html#search, questionnaireresponse.html#search) the
// payer supports; the name in the index table where it has one.
var searchParams = map[string]map[string]paramKind{
	TypeDocumentReference: {
		"_id": kindID, "patient": kindPatient, "subject": kindPatient, "status": kindToken,
		"type": kindToken, "category": kindToken, "date": kindDate, "related": kindReference,
	},
	TypeQuestionnaireResponse: {
		"_id": kindID, "patient": kindPatient, "subject": kindPatient, "status": kindToken,
		"questionnaire": kindCanonical, "authored": kindDate, "based-on": kindReference,
	},
}

// sortKeys lists the _sort values of each type.
var sortKeys = map[string]map[string]string{
	TypeDocumentReference:     {"date": "documents.date_lo", "_lastUpdated": "documents.last_updated_us"},
	TypeQuestionnaireResponse: {"authored": "documents.date_lo", "_lastUpdated": "documents.last_updated_us"},
}

// refused names parameters that are valid FHIR but deliberately not
// supported, with the reason given to the caller.
var refused = map[string]string{
	"_has": "reverse chaining (_has) is not supported", "_include": "_include is not supported",
	"_revinclude": "_revinclude is not supported", "_elements": "_elements is not supported",
	"_contained": "_contained is not supported", "_containedType": "_containedType is not supported",
	"_query": "named queries (_query) are not supported", "_filter": "_filter is not supported",
	"_list": "_list is not supported", "_text": "_text is not supported", "_content": "_content is not supported",
	"_type": "_type is not supported", "_security": "_security is not supported", "_tag": "_tag is not supported",
	"_profile": "_profile is not supported", "_source": "_source is not supported",
	"_lastUpdated": "searching by _lastUpdated is not supported (sort by it with _sort)",
}

// Compile turns search parameters into a Query confined to patient (the
// absolute launch patient reference). The patient filter is always the
// first condition, whatever params say: a patient or subject parameter
// naming someone else only adds a condition no document of patient meets.
// Repeated parameters are AND-ed, comma lists OR-ed (R4 search.html#combining).
// Modifiers, chains, includes and unknown parameters are refused with a
// *SearchError (not-supported).
func Compile(resourceType string, params url.Values, patient string) (*Query, error) {
	known, ok := searchParams[resourceType]
	if !ok {
		return nil, searchErr(fhir.IssueNotSupported, "search is not supported on this resource type")
	}
	if patient == "" {
		return nil, errors.New("documents: compile without a patient")
	}
	q := &Query{
		ResourceType: resourceType, Patient: patient,
		Conditions: []Condition{{SQL: PatientFilterSQL, Args: []any{resourceType, patient}}},
		Count:      DefaultCount, Total: TotalAccurate, Params: url.Values{},
	}
	names := make([]string, 0, len(params))
	total := 0
	for name, values := range params {
		names = append(names, name)
		total += len(values)
	}
	if total > maxSearchValues {
		return nil, searchErr(fhir.IssueTooCostly, "too many search parameters")
	}
	sort.Strings(names) // deterministic SQL for one set of parameters
	for _, name := range names {
		values := params[name]
		if err := checkName(name); err != nil {
			return nil, err
		}
		for _, v := range values {
			if v == "" {
				return nil, searchErr(fhir.IssueInvalid, "empty value for "+quote(name))
			}
			if len(v) > maxValueLen {
				return nil, searchErr(fhir.IssueTooLong, "value of "+quote(name)+" too long")
			}
			if !textValue(v) {
				return nil, searchErr(fhir.IssueValue, "the value of "+quote(name)+" is not valid UTF-8 text (no NUL)")
			}
		}
		if strings.HasPrefix(name, "_") {
			if kind, isParam := known[name]; !isParam || kind != kindID {
				if err := q.result(name, values); err != nil {
					return nil, err
				}
				q.Params[name] = values
				continue
			}
		}
		kind, isParam := known[name]
		if !isParam {
			return nil, searchErr(fhir.IssueNotSupported, "unknown search parameter "+quote(name)+" for "+resourceType)
		}
		for _, v := range values {
			c, err := condition(name, kind, v)
			if err != nil {
				return nil, err
			}
			q.Conditions = append(q.Conditions, c)
		}
		q.Params[name] = values
	}
	if q.SummaryCount {
		q.Count = 0
	}
	return q, nil
}

// textValue reports whether s can be a search value: valid UTF-8 without
// NUL. Anything else matches no stored value (they are all such text), and
// PostgreSQL refuses it as a bound argument.
func textValue(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

// checkName refuses modifiers, chains and the parameters listed in refused.
func checkName(name string) error {
	if strings.HasPrefix(name, "_has") {
		return searchErr(fhir.IssueNotSupported, refused["_has"])
	}
	if i := strings.IndexByte(name, ':'); i >= 0 {
		return searchErr(fhir.IssueNotSupported, "search modifiers ("+quote(name[i:])+") are not supported")
	}
	if strings.Contains(name, ".") {
		return searchErr(fhir.IssueNotSupported, "chained parameters ("+quote(name)+") are not supported")
	}
	if hint, ok := refused[name]; ok {
		return searchErr(fhir.IssueNotSupported, hint)
	}
	return nil
}

// result applies a result parameter (R4 search.html#return).
func (q *Query) result(name string, values []string) error {
	if len(values) != 1 {
		return searchErr(fhir.IssueInvalid, quote(name)+" given more than once")
	}
	v := values[0]
	switch name {
	case "_count":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return searchErr(fhir.IssueValue, "_count must be a non-negative integer")
		}
		q.Count = min(n, MaxCount)
	case "_offset":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxOffset {
			return searchErr(fhir.IssueValue, "_offset must be an integer from 0 to "+strconv.Itoa(maxOffset))
		}
		q.Offset = n
	case "_total":
		switch v {
		case TotalNone, TotalEstimate, TotalAccurate:
			q.Total = v
		default:
			return searchErr(fhir.IssueValue, "_total must be none, estimate or accurate")
		}
	case "_summary":
		switch v {
		case "count":
			q.SummaryCount = true
			if q.Total == TotalNone {
				q.Total = TotalAccurate
			}
		case "false":
		default:
			return searchErr(fhir.IssueNotSupported, "_summary supports only count and false")
		}
	case "_sort":
		keys := sortKeys[q.ResourceType]
		seen := map[string]bool{}
		for _, item := range strings.Split(v, ",") {
			desc := strings.HasPrefix(item, "-")
			col, ok := keys[strings.TrimPrefix(item, "-")]
			if !ok {
				allowed := make([]string, 0, len(keys))
				for k := range keys {
					allowed = append(allowed, k)
				}
				sort.Strings(allowed)
				return searchErr(fhir.IssueNotSupported, "_sort supports "+strings.Join(allowed, ", ")+" (with - for descending)")
			}
			if seen[col] {
				return searchErr(fhir.IssueInvalid, "_sort names a key twice")
			}
			seen[col] = true
			q.Sort = append(q.Sort, SortKey{Column: col, Desc: desc})
		}
	case "_format":
		switch v {
		case "json", "application/json", "application/fhir+json":
		default:
			return searchErr(fhir.IssueNotSupported, "only JSON is supported (_format)")
		}
	case "_pretty":
		if v != "true" && v != "false" {
			return searchErr(fhir.IssueValue, "_pretty must be true or false")
		}
	default:
		return searchErr(fhir.IssueNotSupported, "unknown search parameter "+quote(name))
	}
	if q.SummaryCount && q.Total == TotalNone {
		q.Total = TotalAccurate // _summary=count asks for the total
	}
	return nil
}

// paramExists is the EXISTS test on the index table for one parameter.
const paramExists = "EXISTS (SELECT 1 FROM document_params p WHERE p.resource_type = documents.resource_type AND p.resource_id = documents.id AND p.name = ? AND ("

// condition compiles one occurrence of a parameter (a comma list is OR).
func condition(name string, kind paramKind, value string) (Condition, error) {
	items := searchparam.SplitList(value)
	if len(items) > maxListItems {
		return Condition{}, searchErr(fhir.IssueTooCostly, "too many values in the list of "+quote(name))
	}
	switch kind {
	case kindID, kindPatient:
		col := "documents.id"
		if kind == kindPatient {
			col = "documents.patient"
		}
		args := make([]any, 0, len(items))
		for _, it := range items {
			s, err := searchparam.Unescape(it)
			if err != nil || s == "" {
				return Condition{}, searchErr(fhir.IssueValue, "bad value for "+quote(name))
			}
			args = append(args, s)
		}
		return Condition{SQL: col + " IN (" + placeholders(len(args)) + ")", Args: args}, nil

	case kindToken:
		var ors []string
		args := []any{name}
		for _, it := range items {
			tok, err := searchparam.ParseToken(it)
			if err != nil {
				return Condition{}, searchErr(fhir.IssueValue, "bad token for "+quote(name)+": "+hintOf(err))
			}
			switch {
			case !tok.HasSystem:
				ors = append(ors, "p.value = ?")
				args = append(args, tok.Code)
			case tok.Code == "":
				ors = append(ors, "p.system = ?")
				args = append(args, tok.System)
			default:
				ors = append(ors, "(p.system = ? AND p.value = ?)")
				args = append(args, tok.System, tok.Code)
			}
		}
		return Condition{SQL: paramExists + strings.Join(ors, " OR ") + "))", Args: args}, nil

	case kindReference:
		args := []any{name}
		for _, it := range items {
			s, err := searchparam.Unescape(it)
			if err != nil || s == "" {
				return Condition{}, searchErr(fhir.IssueValue, "bad reference for "+quote(name))
			}
			args = append(args, s)
		}
		return Condition{SQL: paramExists + "p.value IN (" + placeholders(len(args)-1) + ")))", Args: args}, nil

	case kindCanonical:
		var ors []string
		args := []any{name}
		for _, it := range items {
			s, err := searchparam.Unescape(it)
			if err != nil || s == "" {
				return Condition{}, searchErr(fhir.IssueValue, "bad canonical for "+quote(name))
			}
			u, version, versioned := strings.Cut(s, "|")
			if versioned {
				ors = append(ors, "(p.value = ? AND p.system = ?)")
				args = append(args, u, version)
			} else {
				ors = append(ors, "p.value = ?")
				args = append(args, u)
			}
		}
		return Condition{SQL: paramExists + strings.Join(ors, " OR ") + "))", Args: args}, nil

	case kindDate:
		var ors []string
		var args []any
		for _, it := range items {
			prefix, rest := searchparam.SplitPrefix(it)
			r, err := searchparam.ParseSearch(rest)
			if err != nil {
				return Condition{}, searchErr(fhir.IssueValue, hintOf(err))
			}
			sql, a, err := searchparam.DateSQL("documents.date_lo", "documents.date_hi", prefix, r)
			if err != nil {
				return Condition{}, searchErr(fhir.IssueNotSupported, "date prefixes supported: eq, ge, le, gt, lt")
			}
			ors = append(ors, sql)
			args = append(args, a...)
		}
		return Condition{SQL: "(" + strings.Join(ors, " OR ") + ")", Args: args}, nil
	}
	return Condition{}, searchErr(fhir.IssueNotSupported, "unsupported parameter "+quote(name))
}

func hintOf(err error) string {
	var se *searchparam.Error
	if errors.As(err, &se) {
		return se.Hint
	}
	return "invalid value"
}

// quote shows a caller-supplied name in a message: clipped, valid UTF-8.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strconv.Quote(strings.ToValidUTF8(s, "?"))
}
