package main

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// vendoredFile maps one entry of the npm tarball to its place under
// web/static/lforms/<version>/.
type vendoredFile struct {
	Source string // tar entry name, e.g. "package/dist/lforms/webcomponent/main.js"
	Dest   string // slash-separated, relative to the version directory
}

// vendoredFiles is what a plain HTML page needs to render a FHIR R4
// Questionnaire with <script> tags, per the package README ("Using the
// LHC-Forms Web Component"): styles.css, zone.min.js, runtime.js,
// polyfills.js, main.js and one FHIR support library, plus the two images
// styles.css references and the license. The layout under dist/lforms is kept
// so relative URLs inside the CSS still resolve.
//
// Deliberately left out: source maps (~40 MB), lhc-forms.js (the same code as
// runtime+polyfills+main concatenated), the STU3/R4B/R5 and "All" FHIR
// libraries (the DTR app speaks R4 only), and the non-minified dist/fhir copies.
var vendoredFiles = []vendoredFile{
	{Source: "package/LICENSE.md", Dest: "LICENSE.md"},
	{Source: "package/dist/lforms/webcomponent/styles.css", Dest: "webcomponent/styles.css"},
	{Source: "package/dist/lforms/webcomponent/down_arrow_gray_10_10.png", Dest: "webcomponent/down_arrow_gray_10_10.png"},
	{Source: "package/dist/lforms/webcomponent/magnifying_glass.png", Dest: "webcomponent/magnifying_glass.png"},
	{Source: "package/dist/lforms/webcomponent/assets/lib/zone.min.js", Dest: "webcomponent/assets/lib/zone.min.js"},
	{Source: "package/dist/lforms/webcomponent/runtime.js", Dest: "webcomponent/runtime.js"},
	{Source: "package/dist/lforms/webcomponent/polyfills.js", Dest: "webcomponent/polyfills.js"},
	{Source: "package/dist/lforms/webcomponent/main.js", Dest: "webcomponent/main.js"},
	{Source: "package/dist/lforms/fhir/R4/lformsFHIR.min.js", Dest: "fhir/R4/lformsFHIR.min.js"},
}

// maxFileSize bounds one extracted file, guarding against a decompression
// bomb should the file table ever point at something unexpected. The largest
// file vendored today (main.js) is about 1.8 MB.
const maxFileSize = 32 << 20

// safeArchiveName reports whether a tar entry name is a plain relative path
// that stays inside the extraction root: no absolute path, no "..", no empty
// or "." element, no backslash (a separator on Windows), no NUL.
func safeArchiveName(name string) error {
	trimmed := strings.TrimSuffix(name, "/") // directory entries end in "/"
	switch {
	case trimmed == "":
		return errors.New("empty name")
	case strings.ContainsAny(trimmed, "\\\x00"):
		return fmt.Errorf("%q contains a backslash or NUL", name)
	case !fs.ValidPath(trimmed):
		return fmt.Errorf("%q is absolute or escapes the archive root", name)
	}
	return nil
}

// safeJoin joins a slash-separated relative path onto root, refusing any
// result outside root.
func safeJoin(root, rel string) (string, error) {
	if err := safeArchiveName(rel); err != nil {
		return "", err
	}
	local := filepath.FromSlash(rel)
	if !filepath.IsLocal(local) {
		return "", fmt.Errorf("%q is not local to %s", rel, root)
	}
	return filepath.Join(root, local), nil
}

// extractFiles reads a gzip-compressed npm tarball and writes the entries
// named in files under dest. The whole archive is refused (error, partial
// output left for the caller to discard) if any entry name is unsafe, a
// wanted entry is not a regular file, appears twice, exceeds maxFileSize,
// or is missing.
func extractFiles(r io.Reader, files []vendoredFile, dest string) error {
	want := make(map[string]string, len(files))
	for _, f := range files {
		want[f.Source] = f.Dest
	}
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("tarball is not gzip: %w", err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	seen := make(map[string]bool, len(files))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading tarball: %w", err)
		}
		if err := safeArchiveName(hdr.Name); err != nil {
			return fmt.Errorf("refusing tarball: unsafe entry: %w", err)
		}
		rel, ok := want[hdr.Name]
		if !ok {
			continue
		}
		if hdr.Typeflag != tar.TypeReg {
			return fmt.Errorf("refusing tarball: %s is not a regular file (type %q)", hdr.Name, hdr.Typeflag)
		}
		if seen[hdr.Name] {
			return fmt.Errorf("refusing tarball: %s appears twice", hdr.Name)
		}
		seen[hdr.Name] = true
		if hdr.Size < 0 || hdr.Size > maxFileSize {
			return fmt.Errorf("refusing tarball: %s is %d bytes (limit %d)", hdr.Name, hdr.Size, maxFileSize)
		}
		if err := writeEntry(tr, dest, rel, hdr.Size); err != nil {
			return fmt.Errorf("extracting %s: %w", hdr.Name, err)
		}
	}
	var missing []string
	for _, f := range files {
		if !seen[f.Source] {
			missing = append(missing, f.Source)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("tarball lacks %s (did the package layout change? update vendoredFiles)",
			strings.Join(missing, ", "))
	}
	return nil
}

// writeEntry copies exactly size bytes from r to dest/rel, creating parent
// directories. It never overwrites: dest is a fresh staging directory.
func writeEntry(r io.Reader, dest, rel string, size int64) error {
	path, err := safeJoin(dest, rel)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, io.LimitReader(r, size))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = fmt.Errorf("short entry: %d of %d bytes", n, size)
	}
	return err
}
