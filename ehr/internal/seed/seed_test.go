package seed

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// TestResourcesEmbedsEveryFile: the embedded set is exactly the data folder,
// byte for byte.
func TestResourcesEmbedsEveryFile(t *testing.T) {
	got, err := Resources()
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(entries) {
		t.Fatalf("Resources returned %d resources, data/ holds %d files", len(got), len(entries))
	}
	byKey := map[string]Resource{}
	for _, r := range got {
		byKey[r.Type+"-"+r.ID+".json"] = r
	}
	for _, e := range entries {
		r, ok := byKey[e.Name()]
		if !ok {
			t.Errorf("%s is not returned", e.Name())
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dataDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, r.JSON) {
			t.Errorf("%s: returned bytes differ from the file", e.Name())
		}
	}
	for _, key := range []string{"Patient-pat-1.json", "Coverage-cov-2.json", "DeviceRequest-dr-wheelchair-3.json", "Practitioner-prac-2.json"} {
		if _, ok := byKey[key]; !ok {
			t.Errorf("%s missing", key)
		}
	}
	for i := 1; i < len(got); i++ {
		a, b := got[i-1], got[i]
		if a.Type > b.Type || (a.Type == b.Type && a.ID >= b.ID) {
			t.Errorf("not sorted: %s/%s before %s/%s", a.Type, a.ID, b.Type, b.ID)
		}
	}
}

func TestReadResourcesRefusesBrokenFiles(t *testing.T) {
	tests := []struct {
		name, file, body, wantErr string
	}{
		{"valid", "Patient-p1.json", `{"resourceType":"Patient","id":"p1"}`, ""},
		{"name without id", "Patient.json", `{"resourceType":"Patient","id":"p1"}`, "<Type>-<id>.json"},
		{"not json suffix", "Patient-p1.txt", `{"resourceType":"Patient","id":"p1"}`, "<Type>-<id>.json"},
		{"bad id in name", "Patient-p_1.json", `{"resourceType":"Patient","id":"p_1"}`, "<Type>-<id>.json"},
		{"id mismatch", "Patient-p1.json", `{"resourceType":"Patient","id":"p2"}`, "holds Patient/p2"},
		{"type mismatch", "Patient-p1.json", `{"resourceType":"Practitioner","id":"p1"}`, "holds Practitioner/p1"},
		{"duplicate key", "Patient-p1.json", `{"resourceType":"Patient","id":"p1","id":"p1"}`, "duplicate key"},
		{"case variant key", "Patient-p1.json", `{"resourceType":"Patient","ID":"p1","id":"p1"}`, "differ only by case"},
		{"not json", "Patient-p1.json", `{"resourceType":`, "invalid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{"d/" + tc.file: {Data: []byte(tc.body)}}
			got, err := readResources(fsys, "d")
			if tc.wantErr == "" {
				if err != nil || len(got) != 1 || got[0].Type != "Patient" || got[0].ID != "p1" {
					t.Fatalf("got %v, %v", got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}
