package seed

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"dtrsandbox/shared/fhir"
)

// dataFS holds the seed resources, one per file, named <Type>-<id>.json.
//
//go:embed data/*.json
var dataFS embed.FS

// Resource is one seed resource: its type and id (from the file name,
// checked against the body) and its FHIR JSON exactly as written.
type Resource struct {
	Type string // e.g. "Patient"
	ID   string // e.g. "pat-1"
	JSON []byte // the file's bytes
}

// Resources returns every embedded seed resource, sorted by type and id. A
// file whose name is not <Type>-<id>.json, whose body a strict FHIR JSON
// reader refuses (fhir.ResourceType: duplicate or case-variant keys), or
// whose resourceType and id disagree with its name is an error: the seed is
// fixed at build time, so any such error is a build defect, never skipped.
func Resources() ([]Resource, error) {
	return readResources(dataFS, "data")
}

// readResources reads the <Type>-<id>.json files of dir in fsys.
func readResources(fsys fs.FS, dir string) ([]Resource, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	out := make([]Resource, 0, len(entries))
	for _, e := range entries {
		r, err := readResource(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Type != out[j].Type {
			return out[i].Type < out[j].Type
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// readResource reads one seed file and checks its name against its body.
func readResource(fsys fs.FS, name string) (Resource, error) {
	base := path.Base(name)
	stem, ok := strings.CutSuffix(base, ".json")
	typ, id, found := strings.Cut(stem, "-")
	if !ok || !found || !fhir.ValidID(id) {
		return Resource{}, fmt.Errorf("seed: %s: the name must be <Type>-<id>.json", base)
	}
	raw, err := fs.ReadFile(fsys, name)
	if err != nil {
		return Resource{}, fmt.Errorf("seed: %w", err)
	}
	var head struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
	}
	if err := fhir.Decode(raw, &head); err != nil {
		return Resource{}, fmt.Errorf("seed: %s: %w", base, err)
	}
	if head.ResourceType != typ || head.ID != id {
		return Resource{}, fmt.Errorf("seed: %s holds %s/%s", base, head.ResourceType, head.ID)
	}
	return Resource{Type: typ, ID: id, JSON: raw}, nil
}
