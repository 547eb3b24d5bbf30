package fhir

import "testing"

func TestLabel(t *testing.T) {
	tests := []struct {
		name string
		cc   *CodeableConcept
		want string
	}{
		{"nil", nil, ""},
		{"text first", &CodeableConcept{Text: "Oxygen", Coding: []Coding{{Code: "E1390", Display: "Concentrator"}}}, "Oxygen"},
		{"display next", &CodeableConcept{Coding: []Coding{{Code: "a"}, {Code: "b", Display: "Bee"}}}, "Bee"},
		{"code last", &CodeableConcept{Coding: []Coding{{System: "s"}, {Code: "E0601"}}}, "E0601"},
		{"empty", &CodeableConcept{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cc.Label(); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDisplayName(t *testing.T) {
	carter := HumanName{Use: "official", Prefix: []string{"Dr."}, Given: []string{"Alice", "M."}, Family: "Carter", Suffix: []string{"MD"}}
	tests := []struct {
		name   string
		names  []HumanName
		titles bool
		want   string
	}{
		{"none", nil, true, ""},
		{"official with titles", []HumanName{{Use: "nickname", Given: []string{"Al"}}, carter}, true, "Dr. Alice M. Carter, MD"},
		{"official plain", []HumanName{carter}, false, "Alice M. Carter"},
		{"usual before first", []HumanName{{Given: []string{"X"}}, {Use: "usual", Given: []string{"Y"}, Family: "Z"}}, false, "Y Z"},
		{"first otherwise", []HumanName{{Given: []string{"Harold"}, Family: "Whitfield"}}, false, "Harold Whitfield"},
		{"text wins", []HumanName{{Use: "official", Text: "Harold J. Whitfield", Family: "W"}}, true, "Harold J. Whitfield"},
		{"no family", []HumanName{{Given: []string{"Cher"}}}, true, "Cher"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DisplayName(tt.names, tt.titles); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
