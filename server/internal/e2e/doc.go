// Package e2e holds temporal-opa's end-to-end tests: they start the dev server
// (package devserver) in-process on free loopback ports and drive it with real
// go.temporal.io/sdk clients whose HeadersProvider mints a fresh token per call.
//
// BenchmarkServerThroughput (make bench-server) is its load benchmark: workflows
// per second with and without authorization.
//
// This is the only test package that links the Temporal server: keep it that way,
// linking it is slow. It has no non-test code.
package e2e
