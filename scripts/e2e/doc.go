// Package e2e holds the sandbox's end-to-end tests: the three services
// built and started as real processes over HTTPS on free ports (launcher),
// then driven by the headless demo flow (TestDemo), by headless Chromium
// like a clinician (TestBrowserFlow), and through the `sandbox up` command
// (TestUpCommand). TestComposeFile checks docker-compose.yml's structure,
// since the machine has no Docker engine.
//
// Screenshots of the browser test go to test-artifacts/e2e/ at the
// repository root.
package e2e
