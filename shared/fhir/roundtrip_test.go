// Golden round-trip tests: every file in testdata is a FHIR R4 resource that
// must survive Decode and json.Marshal unchanged, and together the files must
// use every field of the model.

package fhir

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// modelledTypes are the resource types this package models; each must have
// a model (modelFor) and at least one golden file in testdata.
var modelledTypes = []string{
	"Patient", "Practitioner", "Organization", "Coverage", "Encounter",
	"ServiceRequest", "DeviceRequest", "MedicationRequest",
	"Questionnaire", "QuestionnaireResponse", "DocumentReference",
	"AuditEvent", "Bundle", "OperationOutcome", "CapabilityStatement",
	"Parameters",
}

func goldenFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	return files
}

// decodeGeneric reads JSON into maps, slices, strings, bools and
// json.Number, so numbers compare by their text (1.50 is not 1.5).
func decodeGeneric(t *testing.T, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("generic decode: %v", err)
	}
	return v
}

// roundTrip decodes data into a new value of the model for its
// resourceType and encodes it again.
func roundTrip(t *testing.T, data []byte) (string, []byte) {
	t.Helper()
	rt, err := ResourceType(data)
	if err != nil {
		t.Fatalf("ResourceType: %v", err)
	}
	model := modelFor(rt)
	if model == nil {
		t.Fatalf("no model for resourceType %q", rt)
	}
	v := reflect.New(model).Interface()
	if err := Decode(data, v); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	return rt, out
}

// diff describes the first difference between two generic JSON values.
func diff(path string, want, got any) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return path + ": object became " + describe(got)
		}
		keys := make([]string, 0, len(w)+len(g))
		for k := range w {
			keys = append(keys, k)
		}
		for k := range g {
			if _, in := w[k]; !in {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			wv, win := w[k]
			gv, gin := g[k]
			switch {
			case !gin:
				return path + "." + k + ": dropped"
			case !win:
				return path + "." + k + ": added"
			}
			if d := diff(path+"."+k, wv, gv); d != "" {
				return d
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return path + ": array changed length or type"
		}
		for i := range w {
			if d := diff(path+"["+strconv.Itoa(i)+"]", w[i], g[i]); d != "" {
				return d
			}
		}
		return ""
	default:
		if !reflect.DeepEqual(want, got) {
			return path + ": " + describe(want) + " became " + describe(got)
		}
		return ""
	}
}

func describe(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestGoldenRoundTrip decodes every golden file into its model, encodes it
// again and requires the same JSON (same keys, same values, numbers as
// written), so an element the model drops or misspells fails. Resources
// nested as raw JSON (contained, entry.resource, parameter.resource,
// response.outcome) are round-tripped through their own models as well,
// when the package models their type.
func TestGoldenRoundTrip(t *testing.T) {
	for _, file := range goldenFiles(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			_, out := roundTrip(t, data)
			if d := diff("$", decodeGeneric(t, data), decodeGeneric(t, out)); d != "" {
				t.Fatalf("round trip changed the resource: %s", d)
			}
			nested := 0
			forEachNestedResource(decodeGeneric(t, data), false, func(path string, res map[string]any) {
				if modelFor(res["resourceType"].(string)) == nil {
					return // kept as raw JSON only, checked by the outer round trip
				}
				nested++
				raw, err := json.Marshal(res)
				if err != nil {
					t.Fatal(err)
				}
				_, out := roundTrip(t, raw)
				if d := diff(path, res, decodeGeneric(t, out)); d != "" {
					t.Errorf("round trip of nested resource changed it: %s", d)
				}
			})
			t.Logf("%d nested resources", nested)
		})
	}
}

// forEachNestedResource calls fn for every object below the root that has a
// resourceType (a contained or bundled resource).
func forEachNestedResource(v any, isNested bool, fn func(path string, res map[string]any)) {
	var walk func(path string, v any, nested bool)
	walk = func(path string, v any, nested bool) {
		switch x := v.(type) {
		case map[string]any:
			if _, ok := x["resourceType"].(string); ok && nested {
				fn(path, x)
			}
			for k, e := range x {
				walk(path+"."+k, e, true)
			}
		case []any:
			for _, e := range x {
				walk(path+"[]", e, true)
			}
		}
	}
	walk("$", v, isNested)
}

// TestGoldenCoverage requires every modelled resource type to have a golden
// file, and every field of every model struct to appear in some golden file,
// so that the round trip really exercises each JSON name in the model.
func TestGoldenCoverage(t *testing.T) {
	seenTypes := map[string]bool{}
	seenFields := map[string]bool{} // "GoType.jsonName"
	for _, file := range goldenFiles(t) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		rt, err := ResourceType(data)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		seenTypes[rt] = true
		markFields(decodeGeneric(t, data), modelFor(rt), seenFields, seenTypes)
	}
	for _, rt := range modelledTypes {
		if modelFor(rt) == nil {
			t.Errorf("modelFor(%q) is nil", rt)
		}
		if !seenTypes[rt] {
			t.Errorf("no golden file for %s", rt)
		}
	}
	all := map[string]bool{}
	for _, rt := range modelledTypes {
		listFields(modelFor(rt), all)
	}
	var missing []string
	for f := range all {
		if !seenFields[f] {
			missing = append(missing, f)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%d modelled fields appear in no golden file:\n%s", len(missing), strings.Join(missing, "\n"))
	}
}

func derefType(t reflect.Type) reflect.Type {
	for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice) && t != rawMessageType {
		t = t.Elem()
	}
	return t
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		name = f.Name
	}
	return name
}

// markFields records which fields of t (and of nested types) v uses.
func markFields(v any, t reflect.Type, seen map[string]bool, seenTypes map[string]bool) {
	t = derefType(t)
	if t == nil {
		return
	}
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			markFields(e, t, seen, seenTypes)
		}
	case map[string]any:
		if t == rawMessageType {
			rt, _ := x["resourceType"].(string)
			seenTypes[rt] = true
			markFields(x, modelFor(rt), seen, seenTypes)
			return
		}
		if t.Kind() != reflect.Struct {
			return
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := jsonName(f)
			if e, ok := x[name]; ok {
				seen[t.Name()+"."+name] = true
				markFields(e, f.Type, seen, seenTypes)
			}
		}
	}
}

// listFields records every field of t and of the struct types it reaches.
func listFields(t reflect.Type, all map[string]bool) {
	t = derefType(t)
	if t == nil || t.Kind() != reflect.Struct {
		return
	}
	if t.NumField() > 0 && all[t.Name()+"."+jsonName(t.Field(0))] {
		return // already listed (recursive types)
	}
	for i := 0; i < t.NumField(); i++ {
		all[t.Name()+"."+jsonName(t.Field(i))] = true
	}
	for i := 0; i < t.NumField(); i++ {
		listFields(t.Field(i).Type, all)
	}
}
