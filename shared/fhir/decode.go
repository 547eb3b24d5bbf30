// Strict decoding of FHIR R4 JSON (R4 json.html, "JSON Representation of
// Resources"). FHIR JSON property names are case-sensitive and an object
// carries each property once (RFC 8259 §4 leaves the meaning of duplicate
// names to each parser). Go's encoding/json matches struct fields
// case-insensitively and keeps the last of duplicate keys, so a body with
// "Subject", or with two "subject" keys, would mean one thing to Go and
// another to the next FHIR server that reads the stored bytes. Decode
// refuses such bodies instead.

package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DecodeError says why a body was refused and where. Its Error text is meant
// for the caller (an OperationOutcome's diagnostics); it never quotes values,
// only keys.
type DecodeError struct {
	Reason string // what is wrong, for example `duplicate key "subject"`
	Path   string // JSON path of the object holding the key, "$" for the root
	Key    string // the offending key, "" when the fault is not a key
	Offset int64  // byte offset just after the offending token
	Err    error  // cause from encoding/json, if any
}

func (e *DecodeError) Error() string {
	if e.Offset <= 0 {
		return fmt.Sprintf("fhir: %s at %s", e.Reason, e.Path)
	}
	return fmt.Sprintf("fhir: %s at %s (byte %d)", e.Reason, e.Path, e.Offset)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Decode parses data, one FHIR JSON value, into v (a non-nil pointer) and
// refuses it with a *DecodeError when it is not valid JSON, has data after
// the value, repeats a key in any object, has two keys in one object that
// differ only by case (Unicode simple folding, as Go matches names), or has
// a key that names a field of the Go type at that position only
// case-insensitively ("Subject" where the struct has "subject"). Keys the
// model does not know are otherwise accepted. Raw resources inside the body
// (contained, Bundle.entry.resource, Parameters.parameter.resource) are
// checked against the model of their resourceType when this package has one.
func Decode(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return &DecodeError{Reason: fmt.Sprintf("cannot decode into %T, need a non-nil pointer", v), Path: "$"}
	}
	root, err := parseTree(data)
	if err != nil {
		return err
	}
	c := fieldChecker{fields: map[reflect.Type]map[string]fieldInfo{}}
	if err := c.check(root, rv.Type().Elem(), &jsonPath{}); err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return unmarshalError(err)
	}
	return nil
}

// CheckKeys reports, as a *DecodeError, the first syntax error, trailing
// data, duplicate key or pair of keys differing only by case anywhere in
// data. It does not look at any Go type. It reads the input as a stream in
// one pass: time is linear in len(data), memory grows with nesting depth and
// the key count of the open objects, not with the rest of the input.
func CheckKeys(data []byte) error {
	s := newScanner(data, false)
	_, err := s.document()
	return err
}

// ResourceType returns the top-level resourceType of a FHIR JSON resource,
// reading the body with the same rules as Decode: the body must be one JSON
// object without duplicate or case-variant keys anywhere, resourceType must
// be spelled exactly so, and its value must be a string that looks like a
// resource type name (an upper-case letter, then letters).
func ResourceType(data []byte) (string, error) {
	var head struct {
		ResourceType *string `json:"resourceType"`
	}
	if err := Decode(data, &head); err != nil {
		return "", err
	}
	if head.ResourceType == nil {
		return "", &DecodeError{Reason: "missing resourceType", Path: "$"}
	}
	if !validTypeName(*head.ResourceType) {
		return "", &DecodeError{Reason: "resourceType is not a resource type name", Path: "$", Key: "resourceType"}
	}
	return *head.ResourceType, nil
}

// modelFor returns the Go type this package uses for a resource type, for
// checking raw resources nested in another resource.
func modelFor(resourceType string) reflect.Type {
	var v any
	switch resourceType {
	case "Patient":
		v = Patient{}
	case "Practitioner":
		v = Practitioner{}
	case "Organization":
		v = Organization{}
	case "Coverage":
		v = Coverage{}
	case "Encounter":
		v = Encounter{}
	case "ServiceRequest":
		v = ServiceRequest{}
	case "DeviceRequest":
		v = DeviceRequest{}
	case "MedicationRequest":
		v = MedicationRequest{}
	case "Questionnaire":
		v = Questionnaire{}
	case "QuestionnaireResponse":
		v = QuestionnaireResponse{}
	case "DocumentReference":
		v = DocumentReference{}
	case "AuditEvent":
		v = AuditEvent{}
	case "Bundle":
		v = Bundle{}
	case "OperationOutcome":
		v = OperationOutcome{}
	case "CapabilityStatement":
		v = CapabilityStatement{}
	case "Parameters":
		v = Parameters{}
	default:
		return nil
	}
	return reflect.TypeOf(v)
}

// unmarshalError turns an encoding/json error (a value of the wrong JSON
// type) into a DecodeError with a path (encoding/json gives the field path
// without array indexes).
func unmarshalError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		path := "$"
		if te.Field != "" {
			path = "$." + te.Field
		}
		if len(path) > 200 {
			path = path[:100] + "..." + path[len(path)-100:]
		}
		value, _, _ := strings.Cut(te.Value, " ") // "number 1.5" -> "number": no input echoed
		want := jsonKindOf(te.Type)
		reason := fmt.Sprintf("a JSON %s where %s is expected", value, want)
		switch {
		case value == "number" && want == "an integer":
			reason = "a JSON number that is not an integer in range"
		case value == "number" && want == "a number":
			reason = "a JSON number out of range"
		}
		return &DecodeError{Reason: reason, Path: path, Offset: te.Offset, Err: err}
	}
	return &DecodeError{Reason: "invalid value", Path: "$", Err: err}
}

// jsonKindOf names the JSON value a Go type decodes from.
func jsonKindOf(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "another value"
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "another value"
}

// ---- pass 1: tokens, duplicates, case-only differences ----

// node is a parsed JSON value, kept only as far as the field check needs:
// objects with their keys, arrays with their elements, and string values.
type node struct {
	kind   byte // '{' object, '[' array, '"' string, '#' number, 't' boolean, 'z' null
	keys   []string
	keyEnd []int64 // offset just after each key
	kids   []*node // object values (parallel to keys) or array elements
	str    string
}

// maxDepth is how deeply arrays and objects may nest: encoding/json's own
// limit, which its Decoder.Token does not enforce. It also bounds the
// recursion of the scanner and of the field check.
const maxDepth = 10000

// scanner reads a JSON document token by token with encoding/json's
// tokenizer (so its idea of valid JSON, escapes and invalid UTF-8 is Go's).
type scanner struct {
	dec    *json.Decoder
	build  bool // keep a tree for the field check
	depth  int  // arrays and objects open
	path   jsonPath
	utf8OK bool // the whole body is valid UTF-8
}

func newScanner(data []byte, build bool) *scanner {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers stay text: no float conversion, no overflow errors
	return &scanner{dec: dec, build: build, utf8OK: utf8.Valid(data)}
}

// parseTree checks data like CheckKeys and returns its tree.
func parseTree(data []byte) (*node, error) {
	return newScanner(data, true).document()
}

// document reads exactly one JSON value followed only by whitespace. The
// body must be valid UTF-8 (RFC 8259 §8.1): encoding/json would silently
// turn bad bytes into U+FFFD, so what we check would differ from what a
// client stored verbatim and another reads back.
func (s *scanner) document() (*node, error) {
	if !s.utf8OK {
		return nil, &DecodeError{Reason: "body is not valid UTF-8", Path: "$"}
	}
	tok, err := s.token()
	if err != nil {
		return nil, err
	}
	n, err := s.value(tok)
	if err != nil {
		return nil, err
	}
	if _, err := s.dec.Token(); err != io.EOF {
		return nil, &DecodeError{Reason: "unexpected data after the JSON value", Path: "$", Offset: s.dec.InputOffset(), Err: err}
	}
	return n, nil
}

// token reads the next token, turning errors into DecodeErrors at the
// current path.
func (s *scanner) token() (json.Token, error) {
	tok, err := s.dec.Token()
	if err == nil {
		return tok, nil
	}
	reason := "invalid JSON"
	var se *json.SyntaxError
	switch {
	case err == io.EOF, errors.Is(err, io.ErrUnexpectedEOF):
		reason = "invalid JSON: unexpected end of input"
	case errors.As(err, &se):
		reason = "invalid JSON: " + strings.TrimPrefix(se.Error(), "json: ")
	}
	return nil, &DecodeError{Reason: reason, Path: s.path.String(), Offset: s.dec.InputOffset(), Err: err}
}

// value reads the value that starts with tok.
func (s *scanner) value(tok json.Token) (*node, error) {
	switch t := tok.(type) {
	case json.Delim:
		if s.depth++; s.depth > maxDepth {
			return nil, &DecodeError{Reason: fmt.Sprintf("nesting deeper than %d", maxDepth), Path: s.path.String(), Offset: s.dec.InputOffset()}
		}
		defer func() { s.depth-- }()
		if t == '{' {
			return s.object()
		}
		return s.array()
	}
	if !s.build {
		return nil, nil
	}
	switch t := tok.(type) {
	case string:
		return &node{kind: '"', str: t}, nil
	case json.Number:
		return &node{kind: '#'}, nil
	case bool:
		return &node{kind: 't'}, nil
	default:
		return &node{kind: 'z'}, nil
	}
}

// object reads an object's members after its '{', refusing a key equal to,
// or differing only by case from, an earlier key of the same object.
func (s *scanner) object() (*node, error) {
	var n *node
	if s.build {
		n = &node{kind: '{'}
	}
	seen := map[string]string{} // folded key -> key as written
	for {
		tok, err := s.token()
		if err != nil {
			return nil, err
		}
		if tok == json.Delim('}') {
			return n, nil
		}
		key := tok.(string) // the tokenizer allows only a string here
		folded := foldKey(key)
		if prev, dup := seen[folded]; dup {
			reason := fmt.Sprintf("duplicate key %s", quoteKey(key))
			if prev != key {
				reason = fmt.Sprintf("keys %s and %s differ only by case", quoteKey(prev), quoteKey(key))
			}
			return nil, &DecodeError{Reason: reason, Path: s.path.String(), Key: key, Offset: s.dec.InputOffset()}
		}
		seen[folded] = key
		end := s.dec.InputOffset()

		s.path.pushKey(key)
		tok, err = s.token()
		if err != nil {
			return nil, err
		}
		kid, err := s.value(tok)
		if err != nil {
			return nil, err
		}
		s.path.pop()
		if s.build {
			n.keys = append(n.keys, key)
			n.keyEnd = append(n.keyEnd, end)
			n.kids = append(n.kids, kid)
		}
	}
}

// array reads an array's elements after its '['.
func (s *scanner) array() (*node, error) {
	var n *node
	if s.build {
		n = &node{kind: '['}
	}
	for i := 0; ; i++ {
		tok, err := s.token()
		if err != nil {
			return nil, err
		}
		if tok == json.Delim(']') {
			return n, nil
		}
		s.path.pushIndex(i)
		kid, err := s.value(tok)
		if err != nil {
			return nil, err
		}
		s.path.pop()
		if s.build {
			n.kids = append(n.kids, kid)
		}
	}
}

// foldKey maps keys that strings.EqualFold (and so encoding/json's field
// matching) treats as equal to one string: every rune becomes the smallest
// rune of its Unicode simple-folding orbit, so "subject", "SUBJECT" and
// "ſubject" (U+017F) all fold alike.
func foldKey(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToUpper(s) // 'A' < 'a': the orbit minimum of an ASCII letter
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

// foldRune returns the smallest rune in r's simple-folding orbit.
func foldRune(r rune) rune {
	for {
		next := unicode.SimpleFold(r)
		if next <= r {
			return next
		}
		r = next
	}
}

// ---- pass 2: keys against the Go type ----

// fieldInfo is one JSON-visible struct field.
type fieldInfo struct {
	name string
	typ  reflect.Type
}

// fieldChecker walks a parsed tree alongside a Go type. Its cache lives for
// one Decode call.
type fieldChecker struct {
	fields map[reflect.Type]map[string]fieldInfo // struct -> folded name -> field
}

// Types the field check treats specially (read-only after initialisation).
var (
	rawMessageType     = reflect.TypeFor[json.RawMessage]()
	decimalType        = reflect.TypeFor[Decimal]()
	unmarshalerType    = reflect.TypeFor[json.Unmarshaler]()
	foldedResourceType = foldKey("resourceType")
)

// check refuses keys of n that match a field of t only case-insensitively,
// at any depth.
func (c *fieldChecker) check(n *node, t reflect.Type, path *jsonPath) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || n == nil {
		return nil
	}
	switch {
	case t == rawMessageType:
		return c.checkRawResource(n, path)
	case t == decimalType:
		if n.kind != '#' && n.kind != 'z' {
			return &DecodeError{Reason: "a decimal must be a JSON number", Path: path.String()}
		}
		return nil
	case reflect.PointerTo(t).Implements(unmarshalerType):
		return nil // a type that decodes itself
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.kind != '{' {
			return nil // encoding/json reports the type mismatch
		}
		fields := c.structFields(t)
		for i, key := range n.keys {
			f, found := fields[foldKey(key)]
			if !found {
				continue // unknown key: allowed, its contents were checked in pass 1
			}
			if f.name != key {
				return &DecodeError{
					Reason: fmt.Sprintf("key %s must be spelled %q (FHIR JSON is case-sensitive)", quoteKey(key), f.name),
					Path:   path.String(), Key: key, Offset: n.keyEnd[i],
				}
			}
			path.pushKey(key)
			if err := c.check(n.kids[i], f.typ, path); err != nil {
				return err
			}
			path.pop()
		}
	case reflect.Map:
		if n.kind != '{' {
			return nil
		}
		for i, key := range n.keys {
			path.pushKey(key)
			if err := c.check(n.kids[i], t.Elem(), path); err != nil {
				return err
			}
			path.pop()
		}
	case reflect.Slice, reflect.Array:
		if n.kind != '[' {
			return nil
		}
		for i, kid := range n.kids {
			path.pushIndex(i)
			if err := c.check(kid, t.Elem(), path); err != nil {
				return err
			}
			path.pop()
		}
	}
	return nil
}

// checkRawResource checks a raw JSON value held in a json.RawMessage field
// (contained, Bundle.entry.resource, Parameters.parameter.resource): when it
// is an object, its resourceType key must be spelled exactly, and when it
// names a resource this package models, its keys are checked against that
// model.
func (c *fieldChecker) checkRawResource(n *node, path *jsonPath) error {
	if n.kind != '{' {
		return nil
	}
	resourceType := ""
	for i, key := range n.keys {
		switch {
		case key == "resourceType":
			if n.kids[i].kind == '"' {
				resourceType = n.kids[i].str
			}
		case foldKey(key) == foldedResourceType:
			return &DecodeError{
				Reason: fmt.Sprintf("key %s must be spelled %q (FHIR JSON is case-sensitive)", quoteKey(key), "resourceType"),
				Path:   path.String(), Key: key, Offset: n.keyEnd[i],
			}
		}
	}
	return c.check(n, modelFor(resourceType), path)
}

// structFields returns the JSON-visible fields of struct type t by folded
// name, following encoding/json's rules for tags, unexported fields and
// embedded structs (promoted fields; a conflict keeps the first found).
func (c *fieldChecker) structFields(t reflect.Type) map[string]fieldInfo {
	if fields, ok := c.fields[t]; ok {
		return fields
	}
	fields := map[string]fieldInfo{}
	c.fields[t] = fields
	addStructFields(t, fields, map[reflect.Type]bool{})
	return fields
}

func addStructFields(t reflect.Type, fields map[string]fieldInfo, visiting map[reflect.Type]bool) {
	if visiting[t] {
		return
	}
	visiting[t] = true
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := sf.Type
		if sf.Anonymous && name == "" {
			et := ft
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				addStructFields(et, fields, visiting)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		if _, taken := fields[foldKey(name)]; !taken {
			fields[foldKey(name)] = fieldInfo{name: name, typ: ft}
		}
	}
}

// ---- paths for error messages ----

// jsonPath is the location being read, as segments; it is formatted only
// when an error is reported.
type jsonPath struct {
	segs []pathSeg
}

// pathSeg is an object key, or an array index when isIdx is set.
type pathSeg struct {
	key   string
	index int
	isIdx bool
}

func (p *jsonPath) pushKey(k string) { p.segs = append(p.segs, pathSeg{key: k}) }
func (p *jsonPath) pushIndex(i int)  { p.segs = append(p.segs, pathSeg{index: i, isIdx: true}) }
func (p *jsonPath) pop()             { p.segs = p.segs[:len(p.segs)-1] }

// String formats the path as $.item[0].answer, quoting keys that are not
// plain identifiers: $["odd key"]. A very deep path keeps its first and last
// segments around a "..." so that error messages stay short.
func (p *jsonPath) String() string {
	const keep = 16
	var b strings.Builder
	b.WriteString("$")
	for i, s := range p.segs {
		if n := len(p.segs); n > 2*keep && i >= keep && i < n-keep {
			if i == keep {
				b.WriteString("...")
			}
			continue
		}
		switch {
		case s.isIdx:
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
		case plainKey(s.key):
			b.WriteString("." + s.key)
		default:
			b.WriteString("[" + quoteKey(s.key) + "]")
		}
	}
	return b.String()
}

// quoteKey quotes a key for an error message, cut to 64 bytes so that a
// hostile key cannot make the message (and an OperationOutcome) large.
func quoteKey(k string) string {
	const max = 64
	if len(k) <= max {
		return strconv.Quote(k)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(k[cut]) {
		cut--
	}
	return strconv.Quote(k[:cut]) + "..."
}

// plainKey reports whether k can be written after a dot in a path.
func plainKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') || i >= 64 {
			return false
		}
	}
	return true
}
