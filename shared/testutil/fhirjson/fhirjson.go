// Package fhirjson checks seed files the way a strict FHIR JSON parser
// would, independently of the production decoder.
package fhirjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// CheckShape walks the token stream: one JSON value, no duplicate or
// case-variant keys in an object (the shared FHIR decoder refuses them), and
// none of the empty values FHIR JSON forbids (null, "", [], {}).
func CheckShape(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := walk(dec, "$"); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the resource")
	}
	return nil
}

func walk(dec *json.Decoder, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	switch v := tok.(type) {
	case nil:
		return fmt.Errorf("%s: null is not allowed in FHIR JSON", path)
	case string:
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("%s: empty string is not allowed in FHIR JSON", path)
		}
		return nil
	case json.Delim:
		switch v {
		case '{':
			seen := map[string]string{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
				key := kt.(string)
				if prev, dup := seen[strings.ToLower(key)]; dup {
					return fmt.Errorf("%s: key %q repeats %q", path, key, prev)
				}
				seen[strings.ToLower(key)] = key
				if err := walk(dec, path+"."+key); err != nil {
					return err
				}
			}
			if len(seen) == 0 {
				return fmt.Errorf("%s: empty object is not allowed in FHIR JSON", path)
			}
		case '[':
			n := 0
			for ; dec.More(); n++ {
				if err := walk(dec, fmt.Sprintf("%s[%d]", path, n)); err != nil {
					return err
				}
			}
			if n == 0 {
				return fmt.Errorf("%s: empty array is not allowed in FHIR JSON", path)
			}
		}
		_, err := dec.Token() // the closing delimiter
		return err
	}
	return nil
}
