// Package web holds every user interface file of the sandbox, embedded in
// the binaries: HTML templates per service under templates/<service>/, the
// shared layout under templates/shared/, and static files (CSS, the vendored
// LHC-Forms build) under static/.
package web

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
)

//go:embed templates static
var files embed.FS

// Templates parses templates/shared/*.html and templates/<service>/*.html
// into one set; pages refer to each other by file name.
func Templates(service string, funcs template.FuncMap) (*template.Template, error) {
	t := template.New(service).Funcs(funcs)
	for _, pattern := range []string{"templates/shared/*.html", "templates/" + service + "/*.html"} {
		matches, err := fs.Glob(files, pattern)
		if err != nil {
			return nil, err
		}
		if len(matches) == 0 {
			continue
		}
		if t, err = t.ParseFS(files, pattern); err != nil {
			return nil, fmt.Errorf("web: parse %s: %w", pattern, err)
		}
	}
	return t, nil
}

// Static is the static/ tree, to serve under /static/.
func Static() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // static/ is embedded at build time; absence is a build bug
	}
	return sub
}
