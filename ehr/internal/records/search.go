package records

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"dtrsandbox/shared/fhir"
)

// Search paging limits.
const (
	DefaultCount = 50
	MaxCount     = 200
	maxOffset    = 1_000_000
)

// paramKind is the FHIR search parameter type (R4 search.html#ptypes).
type paramKind int

const (
	kindToken paramKind = iota
	kindReference
	kindURI
)

// paramDef is one supported search parameter: its kind, the index row it
// reads, and for a reference the only target type it accepts ("" for any).
type paramDef struct {
	kind   paramKind
	row    string
	target string
}

var (
	pIdentifier    = paramDef{kind: kindToken, row: rowIdentifier}
	pStatus        = paramDef{kind: kindToken, row: rowStatus}
	pSubject       = paramDef{kind: kindReference, row: rowSubject}
	pSubjectPat    = paramDef{kind: kindReference, row: rowSubject, target: "Patient"}
	pBeneficiary   = paramDef{kind: kindReference, row: rowBeneficiary, target: "Patient"}
	pEncounter     = paramDef{kind: kindReference, row: rowEncounter, target: "Encounter"}
	pQuestionnaire = paramDef{kind: kindURI, row: rowQuestionnaire}
)

// orderParams are the parameters of the three order types.
var orderParams = map[string]paramDef{
	"identifier": pIdentifier, "status": pStatus, "patient": pSubjectPat, "subject": pSubject, "encounter": pEncounter,
}

// searchParams lists, per resource type, the parameters the store answers
// beside the common _id, _lastUpdated, _count and _offset (R4 search
// parameter registry, reduced to what a DTR app and the payer use). Any
// other parameter is refused, never ignored (R4 search.html#errors).
var searchParams = map[string]map[string]paramDef{
	"Patient":           {"identifier": pIdentifier},
	"Practitioner":      {"identifier": pIdentifier},
	"Organization":      {"identifier": pIdentifier},
	"Coverage":          {"identifier": pIdentifier, "status": pStatus, "patient": pBeneficiary, "beneficiary": pBeneficiary},
	"Encounter":         {"identifier": pIdentifier, "status": pStatus, "patient": pSubjectPat, "subject": pSubject},
	"ServiceRequest":    orderParams,
	"DeviceRequest":     orderParams,
	"MedicationRequest": orderParams,
	"QuestionnaireResponse": {
		"identifier": pIdentifier, "status": pStatus, "patient": pSubjectPat, "subject": pSubject,
		"encounter": pEncounter, "questionnaire": pQuestionnaire,
	},
	"DocumentReference": {"identifier": pIdentifier, "status": pStatus, "patient": pSubjectPat, "subject": pSubject},
}

// commonParams are answered for every type.
var commonParams = []string{"_id", "_lastUpdated", "_count", "_offset"}

// SearchParams returns the names of the search parameters supported for
// typ, sorted, with the common ones; nil for a type the store does not
// search. The CapabilityStatement lists these.
func SearchParams(typ string) []string {
	defs, ok := searchParams[typ]
	if !ok {
		return nil
	}
	names := slices.Clone(commonParams)
	for name := range defs {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// SearchParamType returns the FHIR type of a supported parameter of typ
// ("token", "reference", "uri", "date", "number"), "" when unsupported.
func SearchParamType(typ, name string) string {
	switch name {
	case "_id":
		return "token"
	case "_lastUpdated":
		return "date"
	case "_count", "_offset":
		return "number"
	}
	def, ok := searchParams[typ][name]
	if !ok {
		return ""
	}
	return [...]string{kindToken: "token", kindReference: "reference", kindURI: "uri"}[def.kind]
}

// QueryError is a search the store refuses (R4 search.html#errors: unknown
// or malformed parameters answer 400). Hint is safe to show the caller.
type QueryError struct{ Hint string }

func (e *QueryError) Error() string { return "records: bad search: " + e.Hint }

func queryErr(format string, args ...any) *QueryError {
	return &QueryError{Hint: fmt.Sprintf(format, args...)}
}

// clause is one SQL condition on the resources table (alias r).
type clause struct {
	sql  string
	args []any
}

// Query is a parsed search. Build it with ParseQuery; set Patient to
// confine it to one patient compartment whatever the parameters say.
type Query struct {
	Type    string
	Patient string // when not "", only resources in this patient's compartment match
	Count   int
	Offset  int
	clauses []clause
}

// matchNothing is a condition no row meets (a reference to another server).
var matchNothing = clause{sql: "1 = 0"}

// ParseQuery parses search parameters (URL query or form body, R4
// search.html) for typ. base is this server's FHIR base URL: absolute
// reference values with that base are taken as local, any other base
// matches nothing. Repeated parameters are ANDed; comma-separated values
// are ORed. Modifiers, chains, _sort, _include and unknown parameters are
// refused with a *QueryError.
func ParseQuery(typ string, values url.Values, base string) (*Query, error) {
	defs, ok := searchParams[typ]
	if !ok {
		return nil, queryErr("resource type %s is not searchable", typ)
	}
	q := &Query{Type: typ, Count: DefaultCount}
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	sort.Strings(names) // deterministic SQL, and the first error is stable
	for _, name := range names {
		for _, raw := range values[name] {
			if raw == "" {
				return nil, queryErr("parameter %s has no value", name)
			}
			if err := q.add(typ, defs, name, raw, base); err != nil {
				return nil, err
			}
		}
	}
	return q, nil
}

func (q *Query) add(typ string, defs map[string]paramDef, name, raw, base string) error {
	if bare, _, found := strings.Cut(name, ":"); found {
		if _, known := defs[bare]; known || slices.Contains(commonParams, bare) {
			return queryErr("modifier on %s is not supported", bare)
		}
	}
	switch name {
	case "_count":
		n, err := strconv.Atoi(raw)
		if err != nil || n < 0 {
			return queryErr("_count must be a non-negative integer")
		}
		q.Count = min(n, MaxCount)
		return nil
	case "_offset":
		n, err := strconv.Atoi(raw)
		if err != nil || n < 0 || n > maxOffset {
			return queryErr("_offset must be an integer from 0 to %d", maxOffset)
		}
		q.Offset = n
		return nil
	case "_id":
		ids := splitValues(raw)
		for _, id := range ids {
			if !fhir.ValidID(id) {
				return queryErr("_id values must be FHIR ids")
			}
		}
		q.clauses = append(q.clauses, clause{sql: "r.resource_id IN ?", args: []any{ids}})
		return nil
	case "_lastUpdated":
		c, err := lastUpdatedClause(raw)
		if err != nil {
			return err
		}
		q.clauses = append(q.clauses, c)
		return nil
	}
	def, ok := defs[name]
	if !ok {
		return queryErr("search parameter %q is not supported for %s; supported: %s", name, typ, strings.Join(SearchParams(typ), ", "))
	}
	var ors []string
	var args []any
	for _, v := range splitValues(raw) {
		var sql string
		var a []any
		var err error
		switch def.kind {
		case kindToken:
			sql, a = tokenMatch(v)
		case kindReference:
			sql, a, err = referenceMatch(name, def, v, base)
		case kindURI:
			sql, a = "p.value = ?", []any{v}
		}
		if err != nil {
			return err
		}
		ors = append(ors, "("+sql+")")
		args = append(args, a...)
	}
	q.clauses = append(q.clauses, clause{
		sql: "EXISTS (SELECT 1 FROM fhir_search_params p WHERE p.resource_type = r.resource_type" +
			" AND p.resource_id = r.resource_id AND p.name = ? AND (" + strings.Join(ors, " OR ") + "))",
		args: append([]any{def.row}, args...),
	})
	return nil
}

// splitValues splits a parameter value on unescaped commas and removes the
// escapes "\,", "\|", "\$", "\\" (R4 search.html#escaping).
func splitValues(raw string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '\\' && i+1 < len(raw) && strings.IndexByte(`,|$\`, raw[i+1]) >= 0:
			cur.WriteByte(raw[i+1])
			i++
		case c == ',':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(out, cur.String())
}

// tokenMatch: code, system|code, |code (no system), system| (any code)
// (R4 search.html#token).
func tokenMatch(v string) (string, []any) {
	system, code, hasSystem := strings.Cut(v, "|")
	switch {
	case !hasSystem:
		return "p.value = ?", []any{v}
	case code == "":
		return "p.system = ?", []any{system}
	default:
		return "p.system = ? AND p.value = ?", []any{system, code}
	}
}

// referenceMatch: id, Type/id, or an absolute URL of this server
// (R4 search.html#reference).
func referenceMatch(name string, def paramDef, v, base string) (string, []any, error) {
	if fhir.ValidID(v) {
		if def.target == "" {
			return "p.value = ?", []any{v}, nil
		}
		return "p.system = ? AND p.value = ?", []any{def.target, v}, nil
	}
	refBase, typ, id, ok := fhir.ParseReference(v)
	if !ok {
		return "", nil, queryErr("%s must be an id, Type/id or an absolute reference", name)
	}
	if (refBase != "" && refBase != strings.TrimSuffix(base, "/")) || (def.target != "" && typ != def.target) {
		return matchNothing.sql, nil, nil
	}
	return "p.system = ? AND p.value = ?", []any{typ, id}, nil
}

// lastUpdatedClause parses [prefix]date for _lastUpdated (R4
// search.html#date): prefixes eq (default), gt, ge, lt, le; the value is a
// date (YYYY, YYYY-MM, YYYY-MM-DD, read in UTC) or a dateTime with seconds
// and a time zone, and stands for the range its precision covers.
func lastUpdatedClause(raw string) (clause, error) {
	prefix, value := "eq", raw
	if len(raw) >= 2 && raw[0] >= 'a' && raw[0] <= 'z' {
		prefix, value = raw[:2], raw[2:]
	}
	lo, hi, ok := dateRange(value)
	if !ok {
		return clause{}, queryErr("_lastUpdated must be [prefix]date or [prefix]dateTime with seconds and a time zone")
	}
	switch prefix {
	case "eq":
		return clause{sql: "r.last_updated >= ? AND r.last_updated < ?", args: []any{lo, hi}}, nil
	case "gt":
		return clause{sql: "r.last_updated >= ?", args: []any{hi}}, nil
	case "ge":
		return clause{sql: "r.last_updated >= ?", args: []any{lo}}, nil
	case "lt":
		return clause{sql: "r.last_updated < ?", args: []any{lo}}, nil
	case "le":
		return clause{sql: "r.last_updated < ?", args: []any{hi}}, nil
	}
	return clause{}, queryErr("_lastUpdated prefix %q is not supported (eq, gt, ge, lt, le)", prefix)
}

// dateRange returns the half-open UTC range [lo, hi) a FHIR date or
// dateTime covers at its precision.
func dateRange(v string) (lo, hi time.Time, ok bool) {
	layouts := []struct {
		layout string
		next   func(time.Time) time.Time
	}{
		{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }},
		{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }},
		{"2006-01-02", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
		{time.RFC3339, func(t time.Time) time.Time { return t.Add(time.Second) }},
	}
	for _, l := range layouts {
		if len(v) != len(l.layout) && l.layout != time.RFC3339 {
			continue
		}
		t, err := time.Parse(l.layout, v)
		if err != nil {
			continue
		}
		if l.layout == time.RFC3339 && strings.Contains(v, ".") {
			// fractional seconds: the instant itself, at millisecond precision
			t = t.UTC().Truncate(time.Millisecond)
			return t, t.Add(time.Millisecond), true
		}
		return t.UTC(), l.next(t).UTC(), true
	}
	return time.Time{}, time.Time{}, false
}

// Page is one page of search results.
type Page struct {
	Total   int // every match, not only this page
	Records []Record
}

// apply adds the query's conditions to a query on fhir_resources AS r.
func (q *Query) apply(db *gorm.DB) *gorm.DB {
	db = db.Table("fhir_resources AS r").Where("r.resource_type = ?", q.Type)
	if q.Patient != "" {
		db = db.Where("r.patient_id = ?", q.Patient)
	}
	for _, c := range q.clauses {
		db = db.Where(c.sql, c.args...)
	}
	return db
}

// Search runs q: the total count of matches and the page [Offset,
// Offset+Count), newest first.
func (s *Store) Search(ctx context.Context, q *Query) (*Page, error) {
	db := s.db.WithContext(ctx)
	var total int64
	if err := q.apply(db).Count(&total).Error; err != nil {
		return nil, fmt.Errorf("records: search %s: %w", q.Type, err)
	}
	page := &Page{Total: int(total)}
	if q.Count == 0 || q.Offset >= int(total) {
		return page, nil
	}
	var rows []resourceRow
	err := q.apply(db).
		Select("r.*").
		Order("r.last_updated DESC").Order("r.resource_id").
		Limit(q.Count).Offset(q.Offset).
		Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("records: search %s: %w", q.Type, err)
	}
	page.Records = make([]Record, len(rows))
	for i := range rows {
		page.Records[i] = *rows[i].record()
	}
	return page, nil
}
