package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// tarballFetcher downloads the tarball of one pinned release into dir and
// returns its path. The caller verifies its integrity; a fetcher is not
// trusted to have done so.
type tarballFetcher interface {
	Fetch(ctx context.Context, p pin, dir string) (string, error)
}

// npmPack fetches through the npm client (`npm pack <name>@<version>`), so
// registry configuration, proxies and the npm cache apply as usual.
type npmPack struct {
	NPM    string    // executable; "npm" when empty
	Stderr io.Writer // receives npm's own progress output; may be nil
}

// npmPackResult is the part of `npm pack --json` output we use.
type npmPackResult struct {
	Filename string `json:"filename"`
}

// Fetch runs npm pack in dir and returns the path of the tarball it wrote.
func (n npmPack) Fetch(ctx context.Context, p pin, dir string) (string, error) {
	exe := n.NPM
	if exe == "" {
		exe = "npm"
	}
	spec := p.Package + "@" + p.Version
	cmd := exec.CommandContext(ctx, exe, "pack", spec,
		"--pack-destination", dir, "--json", "--ignore-scripts")
	cmd.Dir = dir // keep any project .npmrc / package.json out of it
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if n.Stderr != nil {
		cmd.Stderr = io.MultiWriter(&stderr, n.Stderr)
	}
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("npm pack %s failed (is npm installed and the registry reachable?): %w: %s",
			spec, err, strings.TrimSpace(lastLines(stderr.String(), 5)))
	}
	var res []npmPackResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return "", fmt.Errorf("npm pack %s: unreadable --json output: %w", spec, err)
	}
	if len(res) != 1 || res[0].Filename == "" {
		return "", fmt.Errorf("npm pack %s: want one tarball in --json output, got %d", spec, len(res))
	}
	path := filepath.Join(dir, filepath.Base(res[0].Filename))
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("npm pack %s: tarball %s not written: %v", spec, path, err)
	}
	return path, nil
}

// lastLines keeps the tail of a tool's diagnostic output for an error message.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
