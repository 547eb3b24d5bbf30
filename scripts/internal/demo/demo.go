// Package demo drives the whole DTR flow headlessly over HTTP(S), the way a
// clinician's browser and a hostile third-party app would, and checks what
// the sandbox promises (CONTRACT.md): the EHR launch, the app's
// authorization, questionnaire, draft, resume, submit, the document and
// audit trail at the payer, the write-back at the EHR, and four attacks
// that must be refused. `sandbox demo` prints its report; the e2e tests run
// the same flow.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"dtrsandbox/shared/httpclient"
)

// The seeded records the flow uses (CONTRACT.md "Seeded").
const (
	AppClientID    = "dtr-app"
	Patient        = "pat-1"
	Practitioner   = "prac-1"
	Encounter      = "enc-1"
	Coverage       = "Coverage/cov-1"
	Order          = "DeviceRequest/dr-oxygen-1"
	QuestionnaireQ = "home-oxygen"

	// The attacker's own launch: another patient, another clinician.
	OtherPatient      = "pat-2"
	OtherPractitioner = "prac-2"
	OtherCoverage     = "Coverage/cov-2"
	OtherOrder        = "DeviceRequest/dr-cpap-2"
)

// Config of one demo run.
type Config struct {
	EHR   string // EHR public base URL, e.g. https://localhost:8441
	App   string // SMART app base URL
	Payer string // payer base URL
	// CAFile is the sandbox CA; empty: system roots only.
	CAFile string
	// AdminToken is the payer admin token (audit search).
	AdminToken string
	// DataDir is the sandbox data directory, when the demo runs on the
	// machine that runs the services; empty otherwise. See Step 15.
	DataDir string
	// Timeout of each HTTP request; default 20 s.
	Timeout time.Duration
	// InternalURLs sends requests for a public base URL to another address
	// (SANDBOX_INTERNAL_URLS, "public=internal"): the demo run inside a
	// docker-compose network, where https://localhost:8441 is https://ehr:8441.
	// URLs, cookies and token audiences stay the public ones.
	InternalURLs map[string]string
}

// EHRFHIR is the EHR's FHIR base (its issuer).
func (c Config) EHRFHIR() string { return strings.TrimRight(c.EHR, "/") + "/fhir" }

// PayerFHIR is the payer's FHIR base.
func (c Config) PayerFHIR() string { return strings.TrimRight(c.Payer, "/") + "/fhir" }

// PatientURL is the EHR's absolute URL of a patient, the subject the payer
// stores.
func (c Config) PatientURL(id string) string { return c.EHRFHIR() + "/Patient/" + id }

// Step is one checked step of the flow.
type Step struct {
	N        int
	Name     string
	OK       bool
	Duration time.Duration
	Detail   string
}

// Line is the step as printed: "PASS  3. questionnaire loaded (12 ms) ...".
func (s Step) Line() string {
	verdict := "PASS"
	if !s.OK {
		verdict = "FAIL"
	}
	line := fmt.Sprintf("%s  %d. %s (%d ms)", verdict, s.N, s.Name, s.Duration.Milliseconds())
	if s.Detail != "" {
		line += " " + s.Detail
	}
	return line
}

// Report of one run.
type Report struct {
	Steps []Step
	Total time.Duration
	// LaunchToSubmitted is from the first EHR launch request to the
	// submit answer (zero if the flow did not get there).
	LaunchToSubmitted time.Duration
}

// OK reports whether every step held.
func (r Report) OK() bool {
	if len(r.Steps) == 0 {
		return false
	}
	for _, s := range r.Steps {
		if !s.OK {
			return false
		}
	}
	return true
}

// Failed lists the steps that did not hold.
func (r Report) Failed() []Step {
	var out []Step
	for _, s := range r.Steps {
		if !s.OK {
			out = append(out, s)
		}
	}
	return out
}

// FailedError is Run's error when a step did not hold.
type FailedError struct{ Steps []Step }

func (e FailedError) Error() string {
	names := make([]string, len(e.Steps))
	for i, s := range e.Steps {
		names[i] = fmt.Sprintf("%d. %s", s.N, s.Name)
	}
	return fmt.Sprintf("demo: %d step(s) failed: %s", len(e.Steps), strings.Join(names, "; "))
}

// Run drives the flow against running services, printing each step to w
// as it completes. It returns a FailedError when a step did not hold, and
// another error only when it could not run at all.
func Run(ctx context.Context, cfg Config, w io.Writer) (Report, error) {
	if w == nil {
		w = io.Discard
	}
	if cfg.EHR == "" || cfg.App == "" || cfg.Payer == "" {
		return Report{}, errors.New("demo: EHR, App and Payer URLs are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 20 * time.Second
	}
	base, err := httpclient.New(httpclient.Config{CAFile: cfg.CAFile, Timeout: cfg.Timeout, Rewrites: cfg.InternalURLs})
	if err != nil {
		return Report{}, fmt.Errorf("demo: HTTP client: %w", err)
	}
	f := &flow{cfg: cfg, ctx: ctx, out: w, transport: base.Transport}
	start := time.Now()
	f.run()
	rep := Report{Steps: f.steps, Total: time.Since(start)}
	if !f.submittedAt.IsZero() {
		rep.LaunchToSubmitted = f.submittedAt.Sub(f.launchedAt)
	}
	if !rep.OK() {
		return rep, FailedError{Steps: rep.Failed()}
	}
	return rep, nil
}

// Summary prints the closing lines of a report.
func Summary(w io.Writer, r Report) {
	passed := len(r.Steps) - len(r.Failed())
	fmt.Fprintf(w, "\n%d/%d steps held in %d ms", passed, len(r.Steps), r.Total.Milliseconds())
	if r.LaunchToSubmitted > 0 {
		fmt.Fprintf(w, "; launch to submitted %d ms", r.LaunchToSubmitted.Milliseconds())
	}
	fmt.Fprintln(w)
	if r.OK() {
		fmt.Fprintln(w, "RESULT: PASS")
		return
	}
	fmt.Fprintln(w, "RESULT: FAIL")
	for _, s := range r.Failed() {
		fmt.Fprintf(w, "  %s\n", s.Line())
	}
}

// stepFunc does one step: it returns the detail to print, or an error
// (the step failed; the error's text is the detail).
type stepFunc func() (string, error)

// errSkipped marks a step that could not run because an earlier one failed.
type errSkipped struct{ needs string }

func (e errSkipped) Error() string { return "not run: needs " + e.needs }

// step runs fn as step n and records it. It returns whether it held.
func (f *flow) step(name string, fn stepFunc) bool {
	n := len(f.steps) + 1
	t := time.Now()
	var detail string
	var err error
	if f.ctx.Err() != nil {
		err = f.ctx.Err()
	} else {
		detail, err = runStep(fn)
	}
	s := Step{N: n, Name: name, Duration: time.Since(t), OK: err == nil, Detail: detail}
	if err != nil {
		s.Detail = oneLine(err.Error())
	}
	f.steps = append(f.steps, s)
	fmt.Fprintln(f.out, s.Line())
	return s.OK
}

// runStep calls fn; a panic (a bug in the demo, or an answer it did not
// expect) fails the step with the panic's text instead of ending the run
// with a stack trace.
func runStep(fn stepFunc) (detail string, err error) {
	defer func() {
		if r := recover(); r != nil {
			detail, err = "", fmt.Errorf("internal error in the demo: %v", r)
		}
	}()
	return fn()
}

// skip records a step that cannot run.
func (f *flow) skip(name, needs string) {
	f.step(name, func() (string, error) { return "", errSkipped{needs: needs} })
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 400 {
		s = s[:400] + "..."
	}
	return s
}

func clipBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
