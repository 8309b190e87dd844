// Package rego embeds temporal-opa's default policy bundle and the JSON schema of
// the input document that every policy is type-checked against.
//
// The bundle (directory bundle/) is Temporal's default authorizer written in Rego,
// package temporal.authz, with the entrypoint data.temporal.authz.decision. It is a
// standard OPA bundle: `opa test rego/bundle`, `opa check --strict --schema
// rego/input.schema.json rego/bundle` and `opa build rego/bundle` work on it as-is.
package rego

import (
	"embed"
	"io/fs"
)

//go:embed all:bundle
var bundleFS embed.FS

//go:embed input.schema.json
var inputSchema []byte

// BundleFS returns the default policy bundle: its .manifest, policies and their tests.
func BundleFS() fs.FS {
	sub, err := fs.Sub(bundleFS, "bundle")
	if err != nil {
		// fs.Sub fails only for an invalid path; "bundle" is a constant.
		panic(err)
	}
	return sub
}

// InputSchema returns the JSON schema of the input document. The caller owns the copy.
func InputSchema() []byte {
	return append([]byte(nil), inputSchema...)
}

// DecisionPath is the default policy's entrypoint.
const DecisionPath = "data.temporal.authz.decision"
