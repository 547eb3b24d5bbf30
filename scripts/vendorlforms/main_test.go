package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// realRoot is the committed vendored tree, seen from this package directory.
var realRoot = filepath.Join("..", "..", "web", "static", "lforms")

var realPin = pin{Package: pinnedPackage, Version: pinnedVersion, Integrity: pinnedIntegrity}

// TestVendoredTreeMatchesManifest is the CI guard: any edit to a vendored
// file, a stray file, or a pin bump without re-vendoring fails here.
func TestVendoredTreeMatchesManifest(t *testing.T) {
	if err := checkTree(realRoot, realPin); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-check", "-root", realRoot}, &out, io.Discard); err != nil {
		t.Fatalf("run -check: %v", err)
	}
	if !strings.Contains(out.String(), "ok:") {
		t.Fatalf("run -check output %q", out.String())
	}
}

// TestCheckTreeDetectsDrift mutates a copy of the real tree and expects each
// mutation to be reported.
func TestCheckTreeDetectsDrift(t *testing.T) {
	mainJS := filepath.Join(pinnedVersion, "webcomponent", "main.js")
	tests := []struct {
		name   string
		mutate func(t *testing.T, root string)
		want   string // substring of one reported problem; "" = no drift
	}{
		{name: "unmodified copy", mutate: func(*testing.T, string) {}, want: ""},
		{name: "one byte changed", want: pinnedVersion + "/webcomponent/main.js modified", mutate: func(t *testing.T, root string) {
			p := filepath.Join(root, mainJS)
			b := mustRead(t, p)
			b[len(b)/2] ^= 0x01
			mustWrite(t, p, b)
		}},
		{name: "same size, appended then truncated", want: "modified", mutate: func(t *testing.T, root string) {
			p := filepath.Join(root, pinnedVersion, "webcomponent", "runtime.js")
			b := mustRead(t, p)
			mustWrite(t, p, append([]byte("/*x*/"), b[:len(b)-5]...))
		}},
		{name: "file deleted", want: pinnedVersion + "/fhir/R4/lformsFHIR.min.js is missing", mutate: func(t *testing.T, root string) {
			mustRemove(t, filepath.Join(root, pinnedVersion, "fhir", "R4", "lformsFHIR.min.js"))
		}},
		{name: "stray file", want: "unexpected file " + pinnedVersion + "/webcomponent/evil.js", mutate: func(t *testing.T, root string) {
			mustWrite(t, filepath.Join(root, pinnedVersion, "webcomponent", "evil.js"), []byte("alert(1)"))
		}},
		{name: "left-over older version", want: "unexpected file 1.0.0/main.js", mutate: func(t *testing.T, root string) {
			mustWrite(t, filepath.Join(root, "1.0.0", "main.js"), []byte("old"))
		}},
		{name: "symlink swapped in", want: "is a symlink", mutate: func(t *testing.T, root string) {
			p := filepath.Join(root, pinnedVersion, "webcomponent", "polyfills.js")
			mustRemove(t, p)
			if err := os.Symlink("runtime.js", p); err != nil {
				t.Skipf("symlinks unavailable: %v", err)
			}
		}},
		{name: "manifest pins another version", want: "pinned is lforms@" + pinnedVersion, mutate: func(t *testing.T, root string) {
			editManifest(t, root, func(m *manifest) { m.Version = "0.0.1" })
		}},
		{name: "manifest drops an entry", want: "manifest does not list " + pinnedVersion + "/webcomponent/styles.css", mutate: func(t *testing.T, root string) {
			editManifest(t, root, func(m *manifest) {
				for i, f := range m.Files {
					if f.Path == pinnedVersion+"/webcomponent/styles.css" {
						m.Files = append(m.Files[:i], m.Files[i+1:]...)
						return
					}
				}
				t.Fatal("styles.css not in manifest")
			})
		}},
		{name: "manifest entry escapes root", want: "manifest path ../outside", mutate: func(t *testing.T, root string) {
			editManifest(t, root, func(m *manifest) {
				m.Files = append(m.Files, manifestFile{Path: "../outside", Source: "x", SHA256: "00"})
			})
		}},
		{name: "manifest missing", want: "cannot read manifest", mutate: func(t *testing.T, root string) {
			mustRemove(t, filepath.Join(root, manifestName))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "lforms")
			copyTree(t, realRoot, root)
			tt.mutate(t, root)
			err := checkTree(root, realPin)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("want no drift, got %v", err)
				}
				return
			}
			var de *driftError
			if !errors.As(err, &de) {
				t.Fatalf("want *driftError, got %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("problems %q lack %q", de.Problems, tt.want)
			}
		})
	}
}

func TestParseIntegrity(t *testing.T) {
	sum := sha512.Sum512([]byte("lforms"))
	b64 := base64.StdEncoding.EncodeToString(sum[:])
	other := sha512.Sum512([]byte("other"))
	pinned, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(pinnedIntegrity, "sha512-"))
	tests := []struct {
		name    string
		in      string
		want    []byte
		wantErr string
	}{
		{name: "pinned value", in: pinnedIntegrity, want: pinned},
		{name: "plain sha512", in: "sha512-" + b64, want: sum[:]},
		{name: "surrounding whitespace", in: "  sha512-" + b64 + "\n", want: sum[:]},
		{name: "with SRI options", in: "sha512-" + b64 + "?foo", want: sum[:]},
		{name: "weaker entries ignored", in: "sha1-2jmj7l5rSw0yVb/vlWAYkK/YBwk= sha512-" + b64, want: sum[:]},
		{name: "repeated equal sha512", in: "sha512-" + b64 + " sha512-" + b64, want: sum[:]},
		{name: "empty", in: "", wantErr: "no sha512 entry"},
		{name: "sha1 only", in: "sha1-2jmj7l5rSw0yVb/vlWAYkK/YBwk=", wantErr: "no sha512 entry"},
		{name: "sha256 only", in: "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", wantErr: "no sha512 entry"},
		{name: "no dash", in: "sha512" + b64, wantErr: "want <alg>-<base64>"},
		{name: "hex instead of base64", in: "sha512-" + strings.Repeat("ab", 64), wantErr: "digest is 96 bytes"},
		{name: "bad base64", in: "sha512-!!!!", wantErr: "bad base64"},
		{name: "unpadded base64", in: "sha512-" + strings.TrimRight(b64, "="), wantErr: "bad base64"},
		{name: "truncated digest", in: "sha512-" + base64.StdEncoding.EncodeToString(sum[:32]), wantErr: "digest is 32 bytes"},
		{name: "conflicting sha512", in: "sha512-" + b64 + " sha512-" + base64.StdEncoding.EncodeToString(other[:]), wantErr: "conflicting"},
		{name: "uppercase algorithm is not sha512", in: "SHA512-" + b64, wantErr: "no sha512 entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseIntegrity(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want error containing %q, got %v (digest %x)", tt.wantErr, err, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("digest %x, want %x", got, tt.want)
			}
		})
	}
}

func TestVerifyIntegrity(t *testing.T) {
	data := []byte("tarball bytes")
	good := integrityOf(data)
	tests := []struct {
		name, integrity string
		data            []byte
		wantErr         string
	}{
		{name: "match", integrity: good, data: data},
		{name: "one byte differs", integrity: good, data: []byte("tarball bytez"), wantErr: "integrity mismatch"},
		{name: "empty input", integrity: good, data: nil, wantErr: "integrity mismatch"},
		{name: "unusable pin", integrity: "sha1-abc", data: data, wantErr: "no sha512 entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verifyIntegrity(bytes.NewReader(tt.data), tt.integrity)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("want error containing %q, got %v", tt.wantErr, err)
			}
		})
	}
}

func TestSafeArchiveName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"package/dist/lforms/webcomponent/main.js", true},
		{"package/", true},
		{"package", true},
		{"../x", false},
		{"package/../../x", false},
		{"package/../x", false},
		{"..", false},
		{"/etc/passwd", false},
		{"./package/x", false},
		{"package//x", false},
		{`package\..\..\x`, false},
		{`C:\x`, false},
		{"package/x\x00.js", false},
		{"", false},
		{"/", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := safeArchiveName(tt.name)
			if (err == nil) != tt.ok {
				t.Fatalf("safeArchiveName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
			}
		})
	}
}

// tarEntry is one member of a crafted in-memory tarball.
type tarEntry struct {
	Name     string
	Body     string
	Type     byte // 0 = regular file
	Linkname string
}

func makeTarGz(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		typ := e.Type
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.Name, Mode: 0o644, Typeflag: typ, Linkname: e.Linkname, Format: tar.FormatPAX}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.Body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("header %q: %v", e.Name, err)
		}
		if typ == tar.TypeReg {
			if _, err := io.WriteString(tw, e.Body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fullPackage is a tarball holding every vendored source (content = its name)
// plus files that must not be vendored.
func fullPackage(extra ...tarEntry) []tarEntry {
	entries := []tarEntry{{Name: "package/package.json", Body: `{"name":"lforms"}`}}
	for _, f := range vendoredFiles {
		entries = append(entries, tarEntry{Name: f.Source, Body: "content of " + f.Source})
	}
	entries = append(entries, tarEntry{Name: "package/dist/lforms/webcomponent/main.js.map", Body: "map"})
	return append(entries, extra...)
}

// withoutEntry drops one member from a crafted tarball listing.
func withoutEntry(entries []tarEntry, name string) []tarEntry {
	var out []tarEntry
	for _, e := range entries {
		if e.Name != name {
			out = append(out, e)
		}
	}
	return out
}

func TestExtractFiles(t *testing.T) {
	wantMain := vendoredFile{Source: "package/dist/lforms/webcomponent/main.js", Dest: "webcomponent/main.js"}
	one := []vendoredFile{wantMain}
	tests := []struct {
		name    string
		files   []vendoredFile
		entries []tarEntry
		wantErr string // "" = success
	}{
		{name: "all vendored files", files: vendoredFiles, entries: fullPackage()},
		{name: "dot-dot entry", files: one, wantErr: "unsafe entry", entries: []tarEntry{
			{Name: wantMain.Source, Body: "ok"}, {Name: "../x", Body: "pwned"}}},
		{name: "dot-dot entry before wanted file", files: one, wantErr: "unsafe entry", entries: []tarEntry{
			{Name: "../x", Body: "pwned"}, {Name: wantMain.Source, Body: "ok"}}},
		{name: "dot-dot inside path", files: one, wantErr: "unsafe entry", entries: []tarEntry{
			{Name: "package/../../x", Body: "pwned"}, {Name: wantMain.Source, Body: "ok"}}},
		{name: "absolute entry", files: one, wantErr: "unsafe entry", entries: []tarEntry{
			{Name: "/tmp/x", Body: "pwned"}, {Name: wantMain.Source, Body: "ok"}}},
		{name: "backslash traversal", files: one, wantErr: "unsafe entry", entries: []tarEntry{
			{Name: `package\..\..\x`, Body: "pwned"}, {Name: wantMain.Source, Body: "ok"}}},
		{name: "wanted file is a symlink", files: one, wantErr: "not a regular file", entries: []tarEntry{
			{Name: wantMain.Source, Type: tar.TypeSymlink, Linkname: "/etc/passwd"}}},
		{name: "wanted file is a hard link", files: one, wantErr: "not a regular file", entries: []tarEntry{
			{Name: "package/a", Body: "a"}, {Name: wantMain.Source, Type: tar.TypeLink, Linkname: "package/a"}}},
		{name: "wanted file twice", files: one, wantErr: "appears twice", entries: []tarEntry{
			{Name: wantMain.Source, Body: "one"}, {Name: wantMain.Source, Body: "two"}}},
		{name: "wanted file missing", files: vendoredFiles, wantErr: "tarball lacks package/dist/lforms/fhir/R4/lformsFHIR.min.js (", entries: withoutEntry(fullPackage(), "package/dist/lforms/fhir/R4/lformsFHIR.min.js")},
		{name: "destination escapes", wantErr: "escapes", files: []vendoredFile{{Source: wantMain.Source, Dest: "../escaped.js"}},
			entries: []tarEntry{{Name: wantMain.Source, Body: "ok"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dest := filepath.Join(parent, "dest")
			if err := os.Mkdir(dest, 0o755); err != nil {
				t.Fatal(err)
			}
			err := extractFiles(bytes.NewReader(makeTarGz(t, tt.entries)), tt.files, dest)
			// Nothing may ever land outside dest.
			for _, name := range []string{"x", "escaped.js"} {
				if _, serr := os.Stat(filepath.Join(parent, name)); serr == nil {
					t.Fatalf("%s written outside the destination", name)
				}
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want error containing %q, got %v", tt.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range tt.files {
				got := mustRead(t, filepath.Join(dest, filepath.FromSlash(f.Dest)))
				if string(got) != "content of "+f.Source {
					t.Fatalf("%s = %q", f.Dest, got)
				}
			}
			if _, err := os.Stat(filepath.Join(dest, "webcomponent", "main.js.map")); err == nil {
				t.Fatal("unselected file extracted")
			}
		})
	}
}

func TestExtractFilesRejectsNonGzip(t *testing.T) {
	err := extractFiles(strings.NewReader("not a tarball"), vendoredFiles, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "not gzip") {
		t.Fatalf("got %v", err)
	}
}

// fakeFetcher writes fixed bytes where npm pack would have put the tarball.
type fakeFetcher struct {
	data  []byte
	calls int
}

func (f *fakeFetcher) Fetch(_ context.Context, p pin, dir string) (string, error) {
	f.calls++
	path := filepath.Join(dir, p.Package+"-"+p.Version+".tgz")
	return path, os.WriteFile(path, f.data, 0o644)
}

func TestVendor(t *testing.T) {
	tgz := makeTarGz(t, fullPackage())
	root := filepath.Join(t.TempDir(), "lforms")
	first := config{Root: root, Pin: pin{Package: "lforms", Version: "1.0.0", Integrity: integrityOf(tgz)}}

	t.Run("integrity mismatch extracts nothing", func(t *testing.T) {
		bad := first
		bad.Pin.Integrity = integrityOf([]byte("something else"))
		f := &fakeFetcher{data: tgz}
		_, err := vendor(context.Background(), bad, f)
		if err == nil || !strings.Contains(err.Error(), "integrity mismatch") {
			t.Fatalf("want integrity mismatch, got %v", err)
		}
		if f.calls != 1 {
			t.Fatalf("fetcher called %d times", f.calls)
		}
		if _, err := os.Stat(root); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("root created despite mismatch: %v", err)
		}
	})

	t.Run("unusable pin fails before fetching", func(t *testing.T) {
		bad := first
		bad.Pin.Integrity = "sha1-2jmj7l5rSw0yVb/vlWAYkK/YBwk="
		f := &fakeFetcher{data: tgz}
		if _, err := vendor(context.Background(), bad, f); err == nil {
			t.Fatal("want error")
		}
		if f.calls != 0 {
			t.Fatal("fetched with an unusable pin")
		}
	})

	t.Run("traversal tarball with valid integrity is refused", func(t *testing.T) {
		evil := makeTarGz(t, fullPackage(tarEntry{Name: "package/../../evil", Body: "x"}))
		cfg := first
		cfg.Pin.Integrity = integrityOf(evil)
		_, err := vendor(context.Background(), cfg, &fakeFetcher{data: evil})
		if err == nil || !strings.Contains(err.Error(), "unsafe entry") {
			t.Fatalf("got %v", err)
		}
		if _, err := os.Stat(filepath.Join(root, "1.0.0")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("version dir created: %v", err)
		}
	})

	t.Run("vendors, then re-vendors a new version", func(t *testing.T) {
		m, err := vendor(context.Background(), first, &fakeFetcher{data: tgz})
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Files) != len(vendoredFiles) || m.Version != "1.0.0" {
			t.Fatalf("manifest %+v", m)
		}
		if err := checkTree(root, first.Pin); err != nil {
			t.Fatal(err)
		}
		onDisk, err := readManifest(root)
		if err != nil {
			t.Fatal(err)
		}
		if len(onDisk.Files) != len(vendoredFiles) {
			t.Fatalf("MANIFEST.json lists %d files", len(onDisk.Files))
		}
		if err := checkTree(root, realPin); err == nil {
			t.Fatal("check passed against a different pin")
		}

		second := first
		second.Pin.Version = "2.0.0"
		if _, err := vendor(context.Background(), second, &fakeFetcher{data: tgz}); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(root, "1.0.0")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("old version left behind: %v", err)
		}
		if err := checkTree(root, second.Pin); err != nil {
			t.Fatal(err)
		}
		entries, err := os.ReadDir(root)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				t.Fatalf("temporary %s left in root", e.Name())
			}
		}
	})
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    config
		wantErr bool
	}{
		{name: "defaults", args: nil, want: config{Pin: realPin, Root: defaultRoot, NPM: "npm"}},
		{name: "check", args: []string{"-check", "-root", "x"}, want: config{Pin: realPin, Root: "x", NPM: "npm", Check: true}},
		{name: "version argument refused", args: []string{"41.0.0"}, wantErr: true},
		{name: "unknown flag", args: []string{"-version", "41.0.0"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlags(tt.args, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func integrityOf(b []byte) string {
	sum := sha512.Sum512(b)
	return "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
}

func editManifest(t *testing.T, root string, edit func(*manifest)) {
	t.Helper()
	m, err := readManifest(root)
	if err != nil {
		t.Fatal(err)
	}
	edit(&m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(root, manifestName), b)
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustWrite(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustRemove(t *testing.T, name string) {
	t.Helper()
	if err := os.Remove(name); err != nil {
		t.Fatal(err)
	}
}
