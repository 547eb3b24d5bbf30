// Benchmarks of strict decoding against plain encoding/json.

package fhir

import (
	"encoding/json"
	"os"
	"testing"
)

// BenchmarkDecode compares strict Decode and CheckKeys with plain
// encoding/json (the baseline, measured in the same run) on the largest
// golden resources.
func BenchmarkDecode(b *testing.B) {
	for _, bc := range []struct {
		file string
		into func() any
	}{
		{"questionnaire-home-oxygen.json", func() any { return &Questionnaire{} }},
		{"questionnaireresponse-home-oxygen.json", func() any { return &QuestionnaireResponse{} }},
	} {
		data, err := os.ReadFile("testdata/" + bc.file)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.file+"/encoding-json", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if err := json.Unmarshal(data, bc.into()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.file+"/Decode", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if err := Decode(data, bc.into()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.file+"/CheckKeys", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if err := CheckKeys(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
