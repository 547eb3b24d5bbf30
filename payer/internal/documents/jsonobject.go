package documents

import (
	"bytes"
	"encoding/json"
	"errors"
)

// member is one top-level member of a JSON object, its value kept as the
// exact bytes the client sent.
type member struct {
	key string
	raw json.RawMessage
}

// splitObject returns the members of a JSON object in order. The caller has
// already checked the body (fhir.Decode): no duplicates, valid JSON.
func splitObject(data []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	var ms []member
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := kt.(string)
		if !ok {
			return nil, errors.New("object key is not a string")
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		ms = append(ms, member{key: key, raw: raw})
	}
	if _, err := dec.Token(); err != nil { // closing brace
		return nil, err
	}
	return ms, nil
}

// joinObject writes members back as one JSON object, each value as it was.
func joinObject(ms []member) []byte {
	n := 2
	for _, m := range ms {
		n += len(m.key) + len(m.raw) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i, m := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		k, _ := json.Marshal(m.key)
		b = append(b, k...)
		b = append(b, ':')
		b = append(b, m.raw...)
	}
	return append(b, '}')
}

// find returns the index of key, or -1.
func find(ms []member, key string) int {
	for i, m := range ms {
		if m.key == key {
			return i
		}
	}
	return -1
}

// setMember replaces the value of key, or inserts key after the member
// named after (at the front when after is absent or ""; at the end when
// after is "$end").
func setMember(ms []member, key string, raw []byte, after string) []member {
	if i := find(ms, key); i >= 0 {
		ms[i].raw = raw
		return ms
	}
	pos := 0
	if after == "$end" {
		pos = len(ms)
	} else if j := find(ms, after); j >= 0 {
		pos = j + 1
	}
	ms = append(ms, member{})
	copy(ms[pos+1:], ms[pos:])
	ms[pos] = member{key: key, raw: raw}
	return ms
}
