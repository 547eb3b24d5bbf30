// Package integration holds the payer's cross-service tests: a real EHR and
// a real payer, each its own process over HTTPS, started by
// dtrsandbox/shared/launcher, with the test itself playing the SMART apps
// (its own keys, RFC 7591 registrations at both servers, an EHR launch
// walked through the authorization endpoint with PKCE, and a payer token
// from SMART Backend Services client_credentials).
//
// The package has only tests; run them with
//
//	go test ./payer/integration/ -v
//
// The PostgreSQL runs need the Debian PostgreSQL 15 binaries (see
// dtrsandbox/shared/testutil/pgtest).
package integration
