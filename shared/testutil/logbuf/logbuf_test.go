package logbuf

import (
	"fmt"
	"sync"
	"testing"
)

func TestBufferConcurrentWriters(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				fmt.Fprint(&b, "x")
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := len(b.String()); got != 800 {
		t.Fatalf("%d bytes, want 800", got)
	}
}

func TestLinesTail(t *testing.T) {
	all, last2 := &Lines{}, &Lines{Max: 2}
	for _, l := range []*Lines{all, last2} {
		fmt.Fprint(l, "one\ntw")
		fmt.Fprint(l, "o\nthree\nfour (partial)")
	}
	if got, want := all.Tail(10), "one\ntwo\nthree"; got != want {
		t.Errorf("unbounded Tail(10) = %q, want %q", got, want)
	}
	if got, want := all.Tail(1), "three"; got != want {
		t.Errorf("Tail(1) = %q, want %q", got, want)
	}
	if got, want := last2.Tail(10), "two\nthree"; got != want {
		t.Errorf("Max 2 Tail(10) = %q, want %q", got, want)
	}
}
