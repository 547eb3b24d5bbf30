// Tests of strict decoding (decode.go): refused and accepted bodies, a
// case-variant check of every modelled field, CheckKeys and ResourceType.

package fhir

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestDecodeRefuses(t *testing.T) {
	tests := []struct {
		name     string
		into     func() any
		body     string
		wantPath string // DecodeError.Path
		wantKey  string // DecodeError.Key, "" for none
		wantText string // substring of the message
	}{
		{"empty input", newPatient, ``, "$", "", "unexpected end of input"},
		{"whitespace only", newPatient, " \n\t", "$", "", "unexpected end of input"},
		{"truncated", newPatient, `{"resourceType":"Patient","name":[{"family":"X"}`, "$.name", "", "unexpected end of input"},
		{"not JSON", newPatient, `resourceType=Patient`, "$", "", "invalid JSON"},
		{"trailing comma", newPatient, `{"resourceType":"Patient",}`, "$", "", "invalid JSON"},
		{"single quotes", newPatient, `{'resourceType':'Patient'}`, "$", "", "invalid JSON"},
		{"trailing object", newPatient, `{"resourceType":"Patient"} {"resourceType":"Patient"}`, "$", "", "after the JSON value"},
		{"trailing garbage", newPatient, `{"resourceType":"Patient"}x`, "$", "", "after the JSON value"},
		{"trailing bracket", newPatient, `{"resourceType":"Patient"}]`, "$", "", "after the JSON value"},
		{"invalid UTF-8 in a value", newPatient, "{\"resourceType\":\"Patient\",\"gender\":\"m\xffale\"}", "$", "", "not valid UTF-8"},
		{"invalid UTF-8 in a key", newPatient, "{\"resourceType\":\"Patient\",\"g\xc3\":1}", "$", "", "not valid UTF-8"},

		{"duplicate top-level key", newPatient,
			`{"resourceType":"Patient","gender":"male","gender":"female"}`, "$", "gender", `duplicate key "gender"`},
		{"duplicate key escaped", newPatient,
			`{"resourceType":"Patient","gender":"male","\u0067ender":"female"}`, "$", "gender", `duplicate key "gender"`},
		{"duplicate nested in array", newQuestionnaireResponse,
			`{"resourceType":"QuestionnaireResponse","item":[{"linkId":"1"},{"linkId":"2","answer":[{"valueString":"a","valueString":"b"}]}]}`,
			"$.item[1].answer[0]", "valueString", "duplicate key"},
		{"duplicate inside unknown key", newPatient,
			`{"resourceType":"Patient","_birthDate":{"extension":[{"url":"a","url":"b"}]}}`, "$._birthDate.extension[0]", "url", "duplicate key"},
		{"duplicate inside contained", newDocumentReference,
			`{"resourceType":"DocumentReference","contained":[{"resourceType":"Patient","id":"p","id":"q"}]}`, "$.contained[0]", "id", "duplicate key"},
		{"duplicate resourceType", newPatient,
			`{"resourceType":"Patient","resourceType":"Group"}`, "$", "resourceType", "duplicate key"},

		{"case-only pair, unknown keys", newPatient,
			`{"resourceType":"Patient","foo":1,"FOO":2}`, "$", "FOO", `keys "foo" and "FOO" differ only by case`},
		{"case-only pair, known key first", newPatient,
			`{"resourceType":"Patient","gender":"male","Gender":"female"}`, "$", "Gender", "differ only by case"},
		{"case-only pair, all capitals", newPatient,
			`{"resourceType":"Patient","gender":"male","GENDER":"x"}`, "$", "GENDER", "differ only by case"},

		{"case variant of a field", newPatient,
			`{"resourceType":"Patient","Gender":"female"}`, "$", "Gender", `key "Gender" must be spelled "gender"`},
		{"case variant of resourceType", newPatient,
			`{"ResourceType":"Patient"}`, "$", "ResourceType", `must be spelled "resourceType"`},
		{"all caps variant", newDocumentReference,
			`{"resourceType":"DocumentReference","SUBJECT":{"reference":"Patient/pat-2"}}`, "$", "SUBJECT", `must be spelled "subject"`},
		{"nested variant", newQuestionnaireResponse,
			`{"resourceType":"QuestionnaireResponse","item":[{"linkId":"1","answer":[{"valueCoding":{"Code":"x"}}]}]}`,
			"$.item[0].answer[0].valueCoding", "Code", `must be spelled "code"`},
		{"variant through Unicode folding (U+017F long s)", newDocumentReference,
			`{"resourceType":"DocumentReference","\u017fubject":{"reference":"Patient/pat-2"}}`, "$", "ſubject", `must be spelled "subject"`},
		{"variant through Unicode folding (U+212A Kelvin sign)", newQuestionnaire,
			`{"resourceType":"Questionnaire","item":[{"lin\u212aId":"1"}]}`, "$.item[0]", "lin\u212aId", `must be spelled "linkId"`},
		{"variant in contained resource", newDocumentReference,
			`{"resourceType":"DocumentReference","contained":[{"resourceType":"Patient","id":"p","Gender":"male"}]}`,
			"$.contained[0]", "Gender", `must be spelled "gender"`},
		{"variant of resourceType in contained resource", newDocumentReference,
			`{"resourceType":"DocumentReference","contained":[{"ResourceType":"Patient","id":"p"}]}`,
			"$.contained[0]", "ResourceType", `must be spelled "resourceType"`},
		{"variant in bundle entry resource", newBundle,
			`{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"DocumentReference","Subject":{"reference":"Patient/x"}}}]}`,
			"$.entry[0].resource", "Subject", `must be spelled "subject"`},
		{"variant in parameters resource, in bundle", newParameters,
			`{"resourceType":"Parameters","parameter":[{"name":"b","resource":{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","BirthDate":"1970"}}]}}]}`,
			"$.parameter[0].resource.entry[0].resource", "BirthDate", `must be spelled "birthDate"`},
		{"variant in map value", func() any { return &map[string]Reference{} },
			`{"a":{"Reference":"Patient/1"}}`, "$.a", "Reference", `must be spelled "reference"`},

		{"decimal as string", newQuestionnaireResponse,
			`{"resourceType":"QuestionnaireResponse","item":[{"linkId":"1","answer":[{"valueDecimal":"1.5"}]}]}`,
			"$.item[0].answer[0].valueDecimal", "", "decimal must be a JSON number"},
		{"wrong JSON type", newPatient,
			`{"resourceType":"Patient","name":"Smith"}`, "$.name", "", "a JSON string where an array is expected"},
		{"integer with fraction", newQuestionnaire,
			`{"resourceType":"Questionnaire","item":[{"linkId":"1","maxLength":1.5}]}`, "$.item.maxLength", "", "not an integer in range"},
		{"integer out of range", newQuestionnaire,
			`{"resourceType":"Questionnaire","item":[{"linkId":"1","maxLength":1e30}]}`, "$.item.maxLength", "", "not an integer in range"},
		{"number out of range", func() any { return new(any) }, `[1e400]`, "$", "", "out of range"},
		{"array at top", newPatient, `[{"resourceType":"Patient"}]`, "$", "", "a JSON array where an object is expected"},
		{"non-pointer target", func() any { return Patient{} }, `{}`, "$", "", "need a non-nil pointer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Decode([]byte(tt.body), tt.into())
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode(%s) = %v, want a *DecodeError", tt.body, err)
			}
			if de.Path != tt.wantPath || de.Key != tt.wantKey || !strings.Contains(de.Error(), tt.wantText) {
				t.Fatalf("Decode(%s) = %q (path %q, key %q), want path %q, key %q, text %q",
					tt.body, de.Error(), de.Path, de.Key, tt.wantPath, tt.wantKey, tt.wantText)
			}
		})
	}
}

func newPatient() any               { return &Patient{} }
func newQuestionnaire() any         { return &Questionnaire{} }
func newQuestionnaireResponse() any { return &QuestionnaireResponse{} }
func newDocumentReference() any     { return &DocumentReference{} }
func newBundle() any                { return &Bundle{} }
func newParameters() any            { return &Parameters{} }

func TestDecodeAccepts(t *testing.T) {
	tests := []struct {
		name  string
		into  any
		body  string
		check func(t *testing.T, v any)
	}{
		{"unknown keys kept out of the struct", &Patient{},
			`{"resourceType":"Patient","id":"p1","photo":[{"url":"x"}],"_gender":{"extension":[{"url":"u","valueString":"s"}]},"gender":"other"}`,
			func(t *testing.T, v any) {
				if p := v.(*Patient); p.ID != "p1" || p.Gender != "other" {
					t.Fatalf("got %+v", p)
				}
			}},
		{"same key in different objects", &QuestionnaireResponse{},
			`{"resourceType":"QuestionnaireResponse","item":[{"linkId":"1","item":[{"linkId":"1.1"}]}]}`,
			func(t *testing.T, v any) {
				if q := v.(*QuestionnaireResponse); q.Item[0].Item[0].LinkID != "1.1" {
					t.Fatalf("got %+v", q)
				}
			}},
		{"contained resource of a type the package does not model", &DeviceRequest{},
			`{"resourceType":"DeviceRequest","contained":[{"resourceType":"Device","id":"d","DeviceName":[{"name":"x"}]}],"codeReference":{"reference":"#d"}}`,
			func(t *testing.T, v any) {
				if d := v.(*DeviceRequest); len(d.Contained) != 1 || d.CodeReference.Reference != "#d" {
					t.Fatalf("got %+v", d)
				}
			}},
		{"decimal precision kept", &QuestionnaireResponse{},
			`{"resourceType":"QuestionnaireResponse","item":[{"linkId":"1","answer":[{"valueDecimal":1.50}]}]}`,
			func(t *testing.T, v any) {
				if got := *v.(*QuestionnaireResponse).Item[0].Answer[0].ValueDecimal; got != "1.50" {
					t.Fatalf("decimal = %s, want 1.50", got)
				}
			}},
		{"null is no value", &Patient{},
			`{"resourceType":"Patient","active":null,"name":null}`,
			func(t *testing.T, v any) {
				if p := v.(*Patient); p.Active != nil || p.Name != nil {
					t.Fatalf("got %+v", p)
				}
			}},
		{"false kept", &AuditEvent{},
			`{"resourceType":"AuditEvent","agent":[{"requestor":false}]}`,
			func(t *testing.T, v any) {
				out, _ := json.Marshal(v)
				if !strings.Contains(string(out), `"requestor":false`) {
					t.Fatalf("re-encoded as %s", out)
				}
			}},
		{"generic target", new(any), `{"a":{"b":[1,{"c":true}]}}`, nil},
		{"raw target with a modelled resource", new(json.RawMessage), `{"resourceType":"Patient","gender":"male"}`, nil},
		{"scalar target", new(string), `"x"`, nil},
		{"surrounding whitespace", &Patient{}, " \r\n\t{\"resourceType\":\"Patient\"}\n ", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Decode([]byte(tt.body), tt.into); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if tt.check != nil {
				tt.check(t, tt.into)
			}
		})
	}
}

// TestDecodeCaseVariantsOfEveryField tries, for every field of every model
// (through nested types up to a few levels), a body using the exact JSON name
// and one using a case variant of it. encoding/json accepts both; Decode
// must accept the first and refuse the second, naming the key.
func TestDecodeCaseVariantsOfEveryField(t *testing.T) {
	cases := 0
	for _, rt := range modelledTypes {
		model := modelFor(rt)
		forEachFieldPath(model, 3, func(wrap func(leaf string) string, name string) {
			cases++
			exact := wrap(`"` + name + `":null`)
			variant := wrap(`"` + swapFirstCase(name) + `":null`)
			if err := Decode([]byte(exact), reflect.New(model).Interface()); err != nil {
				t.Errorf("%s: Decode(%s) = %v, want nil", rt, exact, err)
			}
			if err := json.Unmarshal([]byte(variant), reflect.New(model).Interface()); err != nil {
				t.Errorf("%s: encoding/json refuses %s (%v); the premise of this test is wrong", rt, variant, err)
			}
			err := Decode([]byte(variant), reflect.New(model).Interface())
			var de *DecodeError
			if !errors.As(err, &de) || de.Key != swapFirstCase(name) {
				t.Errorf("%s: Decode(%s) = %v, want a DecodeError for key %q", rt, variant, err, swapFirstCase(name))
			}
		})
	}
	if cases < 500 {
		t.Fatalf("only %d field paths tried; the walk is broken", cases)
	}
	t.Logf("%d field paths", cases)
}

// forEachFieldPath calls fn for each field reachable from struct type t
// within depth levels, with a function that wraps a member into the JSON
// that leads to that field.
func forEachFieldPath(t reflect.Type, depth int, fn func(wrap func(string) string, name string)) {
	var walk func(t reflect.Type, depth int, wrap func(string) string)
	walk = func(t reflect.Type, depth int, wrap func(string) string) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := jsonName(f)
			fn(wrap, name)
			if depth == 0 {
				continue
			}
			ft, inArray := f.Type, false
			if ft.Kind() == reflect.Slice && ft != rawMessageType {
				ft, inArray = ft.Elem(), true
			}
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() != reflect.Struct {
				continue
			}
			outer := wrap
			walk(ft, depth-1, func(member string) string {
				inner := "{" + member + "}"
				if inArray {
					inner = "[" + inner + "]"
				}
				return outer(`"` + name + `":` + inner)
			})
		}
	}
	walk(t, depth, func(member string) string { return "{" + member + "}" })
}

// swapFirstCase changes the case of the first letter: "subject" -> "Subject".
func swapFirstCase(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if unicode.IsUpper(r) {
		return string(unicode.ToLower(r)) + s[n:]
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

func TestCheckKeys(t *testing.T) {
	tests := []struct {
		name string
		body string
		ok   bool
	}{
		{"object", `{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}`, true},
		{"scalar", `"x"`, true},
		{"array of objects with same keys", `[{"k":1},{"k":2}]`, true},
		{"case variant of a field is fine without a type", `{"Subject":{}}`, true},
		{"duplicate deep", `{"a":[{"b":{"c":1,"c":2}}]}`, false},
		{"case pair", `{"id":"x","ID":"y"}`, false},
		{"case pair via Kelvin sign", `{"k":1,"\u212a":2}`, false},
		{"case pair via long s", `{"s":1,"\u017f":2}`, false},
		{"different letters that look alike are distinct", `{"a":1,"\u0430":2}`, true},
		{"invalid", `{"a":}`, false},
		{"trailing", `{} {}`, false},
		{"empty", ``, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckKeys([]byte(tt.body))
			if (err == nil) != tt.ok {
				t.Fatalf("CheckKeys(%s) = %v, want ok=%v", tt.body, err, tt.ok)
			}
		})
	}
}

// TestCheckKeysLargeObject checks that duplicate detection does not depend
// on neighbouring keys: the duplicate is the last of 20000 distinct keys.
func TestCheckKeysLargeObject(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := 0; i < 20000; i++ {
		b.WriteString(`"k` + itoa(i) + `":0,`)
	}
	ok := b.String() + `"end":0}`
	dup := b.String() + `"K7":0}`
	if err := CheckKeys([]byte(ok)); err != nil {
		t.Fatalf("distinct keys: %v", err)
	}
	err := CheckKeys([]byte(dup))
	var de *DecodeError
	if !errors.As(err, &de) || de.Key != "K7" {
		t.Fatalf("duplicate of k7 among 20000 keys: %v", err)
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func TestResourceType(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string // "" means an error is expected
	}{
		{"plain", `{"resourceType":"DocumentReference","id":"x"}`, "DocumentReference"},
		{"not first", `{"id":"x","resourceType":"Patient"}`, "Patient"},
		{"nested ones ignored", `{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient"}}]}`, "Bundle"},
		{"missing", `{"id":"x"}`, ""},
		{"null", `{"resourceType":null}`, ""},
		{"number", `{"resourceType":7}`, ""},
		{"empty", `{"resourceType":""}`, ""},
		{"lower case", `{"resourceType":"patient"}`, ""},
		{"with a slash", `{"resourceType":"Patient/1"}`, ""},
		{"case variant key", `{"ResourceType":"Patient"}`, ""},
		{"variant next to the real one", `{"resourceType":"Patient","resourcetype":"Group"}`, ""},
		{"duplicate", `{"resourceType":"Patient","resourceType":"Group"}`, ""},
		{"duplicate deep inside", `{"resourceType":"Patient","name":[{"family":"a","family":"b"}]}`, ""},
		{"array", `[{"resourceType":"Patient"}]`, ""},
		{"string", `"Patient"`, ""},
		{"trailing data", `{"resourceType":"Patient"}{}`, ""},
		{"invalid", `{"resourceType":"Patient"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResourceType([]byte(tt.body))
			if tt.want == "" {
				var de *DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("ResourceType(%s) = %q, %v; want a *DecodeError", tt.body, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ResourceType(%s) = %q, %v; want %q", tt.body, got, err, tt.want)
			}
		})
	}
}

func TestDecimal(t *testing.T) {
	if got := *DecimalOf(2.5); got != "2.5" {
		t.Errorf("DecimalOf(2.5) = %s", got)
	}
	if f, err := Decimal("1.50").Float64(); err != nil || f != 1.5 {
		t.Errorf("Float64 = %v, %v", f, err)
	}
	for _, bad := range []Decimal{"", "abc", "1.", "01", "+1", "NaN", "1 2"} {
		if _, err := json.Marshal(bad); err == nil {
			t.Errorf("Marshal(Decimal(%q)) succeeded", string(bad))
		}
	}
	var d Decimal
	for _, bad := range []string{`"1.5"`, `true`, `{}`} {
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("Unmarshal(%s) into Decimal succeeded", bad)
		}
	}
	if err := json.Unmarshal([]byte(`-0.000e+10`), &d); err != nil || d != "-0.000e+10" {
		t.Errorf("Unmarshal exponent: %q, %v", d, err)
	}
}

func TestDecodeDepthLimit(t *testing.T) {
	ok := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	if err := CheckKeys([]byte(ok)); err != nil {
		t.Fatalf("depth %d: %v", maxDepth, err)
	}
	for _, body := range []string{
		strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1),
		strings.Repeat(`{"a":`, 200000) + "1" + strings.Repeat("}", 200000),
	} {
		err := CheckKeys([]byte(body))
		var de *DecodeError
		if !errors.As(err, &de) || !strings.Contains(de.Reason, "nesting deeper") {
			t.Fatalf("CheckKeys(deep) = %v, want a nesting error", err)
		}
		if err := Decode([]byte(body), new(any)); err == nil {
			t.Fatal("Decode accepted nesting beyond the limit")
		}
	}
}

func TestDecodeErrorStaysShort(t *testing.T) {
	long := strings.Repeat("k", 5000)
	deep := strings.Repeat(`{"a":`, 5000) + `{"` + long + `":1,"` + long + `":2}` + strings.Repeat("}", 5000)
	err := CheckKeys([]byte(deep))
	var de *DecodeError
	if !errors.As(err, &de) || de.Key != long {
		t.Fatalf("CheckKeys = %v, want the duplicate key", err)
	}
	if msg := err.Error(); len(msg) > 400 || !strings.Contains(msg, "$.a.a") || !strings.Contains(msg, "...") {
		t.Fatalf("message of %d bytes: %.500s", len(msg), msg)
	}
}
