package demo

import (
	"errors"
	"strings"
	"testing"
)

func TestRunStepTurnsAPanicIntoAFailedStep(t *testing.T) {
	detail, err := runStep(func() (string, error) {
		var m map[string]int
		m["x"] = 1 // a bug: writing to a nil map
		return "held", nil
	})
	if err == nil || detail != "" || !strings.Contains(err.Error(), "internal error in the demo") {
		t.Fatalf("detail %q err %v", detail, err)
	}
	want := errors.New("refused")
	if detail, err := runStep(func() (string, error) { return "d", want }); err != want || detail != "d" {
		t.Fatalf("detail %q err %v", detail, err)
	}
}
