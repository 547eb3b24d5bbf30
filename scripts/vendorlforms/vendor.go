package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxTarballSize bounds the download held in memory; lforms 40.1.3 is 13 MB.
const maxTarballSize = 256 << 20

// vendor fetches the pinned release, verifies its SHA-512 against
// cfg.Pin.Integrity before reading any archive entry, extracts vendoredFiles
// into a staging directory, swaps it in as cfg.Root/<version>, removes the
// previously vendored version, writes MANIFEST.json and re-checks the tree.
func vendor(ctx context.Context, cfg config, fetcher tarballFetcher) (manifest, error) {
	p := cfg.Pin
	if _, err := parseIntegrity(p.Integrity); err != nil {
		return manifest{}, fmt.Errorf("pinned integrity unusable: %w", err)
	}
	if err := validVersionDir(p.Version); err != nil {
		return manifest{}, err
	}

	tmp, err := os.MkdirTemp("", "vendorlforms-")
	if err != nil {
		return manifest{}, err
	}
	defer os.RemoveAll(tmp)
	tgz, err := fetcher.Fetch(ctx, p, tmp)
	if err != nil {
		return manifest{}, err
	}
	// Verify and extract from the same in-memory bytes, so what was
	// verified is exactly what is extracted.
	data, err := readBounded(tgz, maxTarballSize)
	if err != nil {
		return manifest{}, err
	}
	if err := verifyIntegrity(bytes.NewReader(data), p.Integrity); err != nil {
		return manifest{}, err
	}

	if err := os.MkdirAll(cfg.Root, 0o755); err != nil {
		return manifest{}, err
	}
	staging, err := os.MkdirTemp(cfg.Root, ".staging-")
	if err != nil {
		return manifest{}, err
	}
	defer os.RemoveAll(staging) // no-op once renamed into place
	if err := extractFiles(bytes.NewReader(data), vendoredFiles, staging); err != nil {
		return manifest{}, err
	}
	if err := os.Chmod(staging, 0o755); err != nil {
		return manifest{}, err
	}

	prev, prevErr := readManifest(cfg.Root)
	final := filepath.Join(cfg.Root, p.Version)
	if err := os.RemoveAll(final); err != nil {
		return manifest{}, err
	}
	if err := os.Rename(staging, final); err != nil {
		return manifest{}, err
	}
	if prevErr == nil && prev.Version != p.Version && validVersionDir(prev.Version) == nil {
		if err := os.RemoveAll(filepath.Join(cfg.Root, prev.Version)); err != nil {
			return manifest{}, fmt.Errorf("removing previously vendored %s: %w", prev.Version, err)
		}
	}

	m, err := buildManifest(cfg.Root, p)
	if err != nil {
		return manifest{}, err
	}
	if err := writeManifest(cfg.Root, m); err != nil {
		return manifest{}, err
	}
	if err := checkTree(cfg.Root, p); err != nil {
		return manifest{}, fmt.Errorf("vendored tree fails its own check: %w", err)
	}
	return m, nil
}

// validVersionDir refuses a version that would not be a single, ordinary
// directory name under the root.
func validVersionDir(v string) error {
	if v == "" || strings.ContainsAny(v, `/\`) || !fs.ValidPath(v) || v == "." || strings.HasPrefix(v, ".") {
		return fmt.Errorf("version %q is not usable as a directory name", v)
	}
	return nil
}

// readBounded reads a whole file, failing if it exceeds limit bytes.
func readBounded(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, limit)
	}
	return data, nil
}
