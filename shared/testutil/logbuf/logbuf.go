// Package logbuf holds log sinks for tests that are safe to read while other
// goroutines (a server, a watcher, a child process's output copier) write:
// Buffer keeps everything, Lines keeps complete lines for a tail.
package logbuf

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer is a bytes.Buffer guarded by a mutex. The zero value is ready.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Lines keeps the complete lines written to it (a trailing partial line
// waits for its newline), for showing the end of a service's log when a
// test fails. The zero value keeps every line.
type Lines struct {
	// Max, when positive, is how many of the latest lines are kept.
	Max int

	mu    sync.Mutex
	lines []string
	part  string
}

func (l *Lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	parts := strings.Split(l.part+string(p), "\n")
	l.part = parts[len(parts)-1]
	l.lines = append(l.lines, parts[:len(parts)-1]...)
	if over := len(l.lines) - l.Max; l.Max > 0 && over > 0 {
		l.lines = append([]string(nil), l.lines[over:]...)
	}
	return len(p), nil
}

// Tail returns the last n complete lines, joined by newlines.
func (l *Lines) Tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines[max(0, len(l.lines)-n):], "\n")
}
