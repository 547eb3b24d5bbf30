// Command vendorlforms vendors the prebuilt LHC-Forms (npm package "lforms")
// browser files into web/static/lforms/<version>/ so the SMART DTR app can
// render FHIR R4 Questionnaires from our own binary, without a CDN.
//
// Usage, from the repository root:
//
//	go run ./scripts/vendorlforms          # download, verify, extract, write MANIFEST.json
//	go run ./scripts/vendorlforms -check   # verify the vendored tree against MANIFEST.json (no network)
//
// The package version and its npm integrity value (Subresource Integrity
// format, W3C SRI §3.1) are pinned below. The tarball is fetched with the npm
// client (`npm pack`), its SHA-512 is compared with the pinned value before a
// single byte is extracted, and only the files listed in vendoredFiles are
// written.
//
// To move to another release: `npm view lforms@<version> dist.integrity`,
// update pinnedVersion and pinnedIntegrity, re-run without -check, commit the
// new tree and MANIFEST.json.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
)

// The pinned LHC-Forms release. Both values must change together; -check
// fails when MANIFEST.json records anything else.
const (
	pinnedPackage   = "lforms"
	pinnedVersion   = "40.1.3"
	pinnedIntegrity = "sha512-WLruTm+BcVnafC0rSAQ3/cNqhxvclBUxyBG68aub/uha2NaK9H8ZZcEXTTuORuGzzCt0wa7fvhuieZtcDIdPzQ=="
)

// defaultRoot is the vendored tree, relative to the repository root.
const defaultRoot = "web/static/lforms"

// pin identifies one exact npm package release.
type pin struct {
	Package   string
	Version   string
	Integrity string
}

// config is everything one run needs; built from flags in main.
type config struct {
	Pin   pin
	Root  string // directory holding MANIFEST.json and <version>/
	Check bool   // verify only, no network
	NPM   string // npm executable used by npmPack
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "vendorlforms:", err)
		}
		stop()
		os.Exit(1)
	}
}

// run parses args, then either checks the vendored tree or re-vendors it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if cfg.Check {
		if err := checkTree(cfg.Root, cfg.Pin); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ok: %s matches %s@%s\n", cfg.Root, cfg.Pin.Package, cfg.Pin.Version)
		return nil
	}
	m, err := vendor(ctx, cfg, npmPack{NPM: cfg.NPM, Stderr: stderr})
	if err != nil {
		return err
	}
	var total int64
	for _, f := range m.Files {
		total += f.Size
	}
	fmt.Fprintf(stdout, "vendored %s@%s: %d files, %d bytes, into %s\n",
		m.Package, m.Version, len(m.Files), total, cfg.Root)
	return nil
}

// parseFlags builds a config from the command line.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("vendorlforms", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := config{Pin: pin{Package: pinnedPackage, Version: pinnedVersion, Integrity: pinnedIntegrity}}
	fs.BoolVar(&cfg.Check, "check", false, "verify the vendored files against MANIFEST.json without network; exit non-zero on drift")
	fs.StringVar(&cfg.Root, "root", defaultRoot, "vendored tree (relative to the current directory)")
	fs.StringVar(&cfg.NPM, "npm", "npm", "npm executable used to download the tarball")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() != 0 {
		return config{}, fmt.Errorf("unexpected arguments %q (the version is pinned in main.go)", fs.Args())
	}
	return cfg, nil
}
