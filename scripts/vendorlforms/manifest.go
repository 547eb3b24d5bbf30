package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// manifestName is the manifest file directly under the vendored root.
const manifestName = "MANIFEST.json"

// unmanagedFiles may sit directly under the root without a manifest entry.
var unmanagedFiles = map[string]bool{
	manifestName:     true,
	"README.md":      true,
	".gitattributes": true,
}

// manifest is MANIFEST.json: which release was vendored and the SHA-256 of
// every file taken from it.
type manifest struct {
	Package   string         `json:"package"`
	Version   string         `json:"version"`
	Integrity string         `json:"integrity"`
	Files     []manifestFile `json:"files"`
}

// manifestFile is one vendored file.
type manifestFile struct {
	Path   string `json:"path"`   // slash-separated, relative to the root: "<version>/..."
	Source string `json:"source"` // entry name in the npm tarball
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // lower-case hex
}

// expectedFiles lists the manifest paths (and their tarball sources) that a
// correct tree for version holds.
func expectedFiles(version string) map[string]string {
	out := make(map[string]string, len(vendoredFiles))
	for _, f := range vendoredFiles {
		out[path.Join(version, f.Dest)] = f.Source
	}
	return out
}

// buildManifest hashes the vendored files of p under root.
func buildManifest(root string, p pin) (manifest, error) {
	m := manifest{Package: p.Package, Version: p.Version, Integrity: p.Integrity}
	for rel, src := range expectedFiles(p.Version) {
		full, err := safeJoin(root, rel)
		if err != nil {
			return manifest{}, err
		}
		size, sum, err := hashFile(full)
		if err != nil {
			return manifest{}, err
		}
		m.Files = append(m.Files, manifestFile{Path: rel, Source: src, Size: size, SHA256: sum})
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	return m, nil
}

// hashFile returns the size and hex SHA-256 of a regular, non-symlink file.
func hashFile(name string) (int64, string, error) {
	fi, err := os.Lstat(name)
	if err != nil {
		return 0, "", err
	}
	if !fi.Mode().IsRegular() {
		return 0, "", fmt.Errorf("%s is not a regular file (%s)", name, fi.Mode().Type())
	}
	f, err := os.Open(name)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", fmt.Errorf("reading %s: %w", name, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// writeManifest writes root/MANIFEST.json atomically (temp file + rename).
func writeManifest(root string, m manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	tmp, err := os.CreateTemp(root, ".manifest-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(root, manifestName))
}

// readManifest parses root/MANIFEST.json strictly.
func readManifest(root string) (manifest, error) {
	data, err := os.ReadFile(filepath.Join(root, manifestName))
	if err != nil {
		return manifest{}, err
	}
	var m manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return manifest{}, fmt.Errorf("%s: %w", manifestName, err)
	}
	return m, nil
}

// driftError lists every way the vendored tree differs from what it should be.
type driftError struct {
	Root     string
	Problems []string
}

func (e *driftError) Error() string {
	return fmt.Sprintf("%s has drifted from the pinned LHC-Forms release (%d problems); "+
		"restore it from git or re-vendor with `go run ./scripts/vendorlforms`:\n  - %s",
		e.Root, len(e.Problems), strings.Join(e.Problems, "\n  - "))
}

// checkTree verifies, without network, that root holds exactly the files of
// release p recorded in MANIFEST.json with matching sizes and SHA-256, that
// the manifest names p and lists exactly vendoredFiles, and that nothing else
// (stray, symlinked, left-over older version) is in the tree.
func checkTree(root string, p pin) error {
	m, err := readManifest(root)
	if err != nil {
		return &driftError{Root: root, Problems: []string{fmt.Sprintf("cannot read manifest: %v", err)}}
	}
	var problems []string
	addf := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if m.Package != p.Package || m.Version != p.Version || m.Integrity != p.Integrity {
		addf("manifest records %s@%s (%s), pinned is %s@%s (%s)",
			m.Package, m.Version, m.Integrity, p.Package, p.Version, p.Integrity)
	}

	expected := expectedFiles(p.Version)
	listed := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		if listed[f.Path] {
			addf("manifest lists %s twice", f.Path)
			continue
		}
		listed[f.Path] = true
		src, ok := expected[f.Path]
		switch {
		case !ok:
			addf("manifest lists %s, which is not a file vendoredFiles selects", f.Path)
		case src != f.Source:
			addf("manifest says %s comes from %s, want %s", f.Path, f.Source, src)
		}
		full, err := safeJoin(root, f.Path)
		if err != nil {
			addf("manifest path %s: %v", f.Path, err)
			continue
		}
		size, sum, err := hashFile(full)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			addf("%s is missing", f.Path)
		case err != nil:
			addf("%s: %v", f.Path, err)
		case size != f.Size || sum != f.SHA256:
			addf("%s modified: sha256 %s (%d bytes), manifest %s (%d bytes)", f.Path, sum, size, f.SHA256, f.Size)
		}
	}
	for rel := range expected {
		if !listed[rel] {
			addf("manifest does not list %s", rel)
		}
	}

	err = filepath.WalkDir(root, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, name)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			addf("%s is a symlink", rel)
		case d.IsDir():
		case unmanagedFiles[rel]:
		case !listed[rel]:
			addf("unexpected file %s (not in %s)", rel, manifestName)
		}
		return nil
	})
	if err != nil {
		addf("walking %s: %v", root, err)
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return &driftError{Root: root, Problems: problems}
	}
	return nil
}
