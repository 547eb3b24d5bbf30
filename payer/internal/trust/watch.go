package trust

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"
)

// Load reads and parses the registry file at path.
func Load(path string) (*Snapshot, error) {
	data, err := readCapped(path)
	if err != nil {
		return nil, err
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func readCapped(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("trust: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxRegistryFile+1))
	if err != nil {
		return nil, fmt.Errorf("trust: read %s: %w", path, err)
	}
	if len(data) > MaxRegistryFile {
		return nil, fmt.Errorf("trust: %s is larger than %d bytes", path, MaxRegistryFile)
	}
	return data, nil
}

// Watcher re-reads the registry file when it changes, without a restart
// (CONTRACT.md: "re-read when it changes"). It polls: every Interval it
// reads the file (at most MaxRegistryFile) and hashes it; a new hash is
// parsed. Hashing the content, rather than trusting mtime and size, also
// sees a rewrite within the file system's timestamp granularity that keeps
// the size. A file that fails to parse (or vanishes) leaves the last good
// registry in place and is logged once as an error. Content that fails to
// parse is only reported once it has stayed the same for one more poll: an
// editor or `echo > file` writes in place (truncate, then write), and a
// poll between the two would otherwise report the empty half-written file
// as well as the finished one. Polling sees editors' atomic renames, bind
// mounts and network file systems alike, and needs no dependency.
type Watcher struct {
	Path     string
	Registry *Registry
	Interval time.Duration // default 1s
	Logger   *slog.Logger

	lastSeen   [32]byte // hash of the last content acted on, good or bad
	pendingBad [32]byte // hash of content that failed to parse once, not yet reported
	lastErr    string
}

// NewWatcher watches path for r, whose current snapshot came from path.
func NewWatcher(path string, r *Registry, log *slog.Logger) *Watcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{Path: path, Registry: r, Interval: time.Second, Logger: log}
	if s := r.Snapshot(); s != nil {
		w.lastSeen = s.hash
	}
	return w
}

// Run polls until ctx is done.
func (w *Watcher) Run(ctx context.Context) {
	iv := w.Interval
	if iv <= 0 {
		iv = time.Second
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.Check()
		}
	}
}

// Check looks at the file once and reloads it if its content changed. It
// reports whether a new registry was installed.
func (w *Watcher) Check() bool {
	data, err := readCapped(w.Path)
	if err != nil {
		w.fail(err.Error())
		return false
	}
	sum := sha256.Sum256(data)
	if sum == w.lastSeen {
		w.pendingBad = [32]byte{} // what looked half written was: it is back
		return false
	}
	s, err := Parse(data)
	if err != nil {
		if sum != w.pendingBad {
			w.pendingBad = sum // perhaps half written: look again next poll
			return false
		}
		w.lastSeen = sum
		w.fail(fmt.Sprintf("%s: %v", w.Path, err))
		return false
	}
	w.lastSeen = sum
	w.pendingBad = [32]byte{}
	w.Registry.Replace(s)
	w.lastErr = ""
	w.Logger.Info("trusted EHR registry reloaded", "path", w.Path, "issuers", s.Issuers())
	return true
}

// fail logs a problem once until it changes; the last good registry stays.
func (w *Watcher) fail(msg string) {
	if msg == w.lastErr {
		return
	}
	w.lastErr = msg
	w.Logger.Error("trusted EHR registry not reloaded; keeping the last good one", "err", msg)
}
