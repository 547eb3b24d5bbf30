package records

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"dtrsandbox/shared/fhir"
)

// instantLayout writes meta.lastUpdated as a FHIR instant (R4
// datatypes.html#instant) in UTC with millisecond precision, the precision
// the store keeps.
const instantLayout = "2006-01-02T15:04:05.000Z07:00"

// FormatInstant renders t as the store writes meta.lastUpdated.
func FormatInstant(t time.Time) string { return t.UTC().Format(instantLayout) }

// member is one key of a JSON object with its raw value.
type member struct {
	key   string
	value json.RawMessage
}

// object is a JSON object with its keys in their written order, so that a
// resource keeps its layout when the server sets id and meta.
type object []member

// parseObject reads one JSON object. It refuses anything else, trailing
// data, and (through fhir.CheckKeys) duplicate or case-variant keys at any
// depth: the stored bytes must mean one thing to every reader.
func parseObject(raw []byte) (object, error) {
	if err := fhir.CheckKeys(raw); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('{') {
		return nil, errors.New("a resource must be a JSON object")
	}
	var o object
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		o = append(o, member{key: key, value: v})
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the resource")
	}
	return o, nil
}

func (o object) get(key string) (json.RawMessage, bool) {
	for _, m := range o {
		if m.key == key {
			return m.value, true
		}
	}
	return nil, false
}

// set replaces key's value in place, or inserts key after the member named
// after (at the front when after is absent).
func (o object) set(key string, v json.RawMessage, after string) object {
	for i := range o {
		if o[i].key == key {
			o[i].value = v
			return o
		}
	}
	at := 0
	for i := range o {
		if o[i].key == after {
			at = i + 1
			break
		}
	}
	o = append(o, member{})
	copy(o[at+1:], o[at:])
	o[at] = member{key: key, value: v}
	return o
}

// marshal writes the object compactly.
func (o object) marshal() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(m.key)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		if err := json.Compact(&b, m.value); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// stamp returns raw with the server-managed elements set (R4 resource.html:
// id, meta.versionId, meta.lastUpdated) and everything else kept as the
// client wrote it, in its order. raw's resourceType must be typ.
func stamp(raw []byte, typ, id string, version int, lastUpdated time.Time) ([]byte, error) {
	o, err := parseObject(raw)
	if err != nil {
		return nil, err
	}
	rtRaw, ok := o.get("resourceType")
	var rt string
	if !ok || json.Unmarshal(rtRaw, &rt) != nil || rt != typ {
		return nil, fmt.Errorf("resourceType must be %s", typ)
	}
	idRaw, _ := json.Marshal(id)
	o = o.set("id", idRaw, "resourceType")

	var meta object
	if m, ok := o.get("meta"); ok {
		if meta, err = parseObject(m); err != nil {
			return nil, fmt.Errorf("meta: %w", err)
		}
	}
	vRaw, _ := json.Marshal(strconv.Itoa(version))
	luRaw, _ := json.Marshal(FormatInstant(lastUpdated))
	meta = meta.set("versionId", vRaw, "")
	meta = meta.set("lastUpdated", luRaw, "versionId")
	metaRaw, err := meta.marshal()
	if err != nil {
		return nil, err
	}
	o = o.set("meta", metaRaw, "id")
	return o.marshal()
}
