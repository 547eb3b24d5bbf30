package questionnaires

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"dtrsandbox/payer/internal/documents/searchparam"
	"dtrsandbox/shared/fhir"
)

//go:embed data/*.json
var seedFS embed.FS

// Seeds returns the embedded seed files (data/Questionnaire-<id>.json).
func Seeds() fs.FS {
	sub, err := fs.Sub(seedFS, "data")
	if err != nil {
		panic(err) // data/ is embedded at build time
	}
	return sub
}

// entry is one questionnaire of the catalog: its JSON as shipped and the
// elements search and $questionnaire-package use.
type entry struct {
	raw  []byte
	q    fhir.Questionnaire
	date *searchparam.Range // Questionnaire.date, when present
}

// Catalog is the payer's read-only set of Questionnaires.
type Catalog struct {
	list []*entry // by id
	byID map[string]*entry
}

// LoadCatalog reads every *.json in fsys as a Questionnaire, strictly
// (fhir.Decode), and refuses duplicates of id or url|version.
func LoadCatalog(fsys fs.FS) (*Catalog, error) {
	names, err := fs.Glob(fsys, "*.json")
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, errors.New("questionnaires: no seed files")
	}
	c := &Catalog{byID: map[string]*entry{}}
	canon := map[string]string{}
	for _, name := range names {
		raw, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		e := &entry{raw: raw}
		if err := fhir.Decode(raw, &e.q); err != nil {
			return nil, fmt.Errorf("questionnaires: %s: %w", name, err)
		}
		q := &e.q
		if q.ResourceType != "Questionnaire" || !fhir.ValidID(q.ID) || q.URL == "" {
			return nil, fmt.Errorf("questionnaires: %s: not a Questionnaire with id and url", path.Base(name))
		}
		if q.Date != "" {
			r, err := searchparam.ParseStored(q.Date)
			if err != nil {
				return nil, fmt.Errorf("questionnaires: %s: bad date", name)
			}
			e.date = &r
		}
		if _, dup := c.byID[q.ID]; dup {
			return nil, fmt.Errorf("questionnaires: duplicate id %s", q.ID)
		}
		key := q.URL + "|" + q.Version
		if other, dup := canon[key]; dup {
			return nil, fmt.Errorf("questionnaires: %s and %s share %s", other, q.ID, key)
		}
		canon[key] = q.ID
		c.byID[q.ID] = e
		c.list = append(c.list, e)
	}
	sort.Slice(c.list, func(i, j int) bool { return c.list[i].q.ID < c.list[j].q.ID })
	return c, nil
}

// Resolve finds the questionnaire a canonical names: "url" (the latest
// version, by string order) or "url|version".
func (c *Catalog) Resolve(canonical string) (*fhir.Questionnaire, []byte, bool) {
	e := c.resolve(canonical)
	if e == nil {
		return nil, nil, false
	}
	return &e.q, e.raw, true
}

func (c *Catalog) resolve(canonical string) *entry {
	url, version, versioned := strings.Cut(canonical, "|")
	var best *entry
	for _, e := range c.list {
		if e.q.URL != url {
			continue
		}
		if versioned {
			if e.q.Version == version {
				return e
			}
			continue
		}
		if best == nil || e.q.Version > best.q.Version {
			best = e
		}
	}
	return best
}

// IDs lists the catalog's ids in order.
func (c *Catalog) IDs() []string {
	out := make([]string, len(c.list))
	for i, e := range c.list {
		out[i] = e.q.ID
	}
	return out
}
