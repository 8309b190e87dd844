package source_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/source"
)

// A bundle directory layered on the embedded default policy, watched: the
// server's --policy PATH.
func ExampleNewFile() {
	dir, _ := os.MkdirTemp("", "bundle")
	defer os.RemoveAll(dir)
	_ = os.MkdirAll(filepath.Join(dir, "temporal/custom"), 0o755)
	_ = os.WriteFile(filepath.Join(dir, ".manifest"), []byte(`{"roots": ["temporal/custom"], "revision": "r1"}`), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "temporal/custom/rules.rego"), []byte("package temporal.custom\n\ndeny contains \"frozen\" if input.target.namespace == \"payments\"\n"), 0o644)

	az, err := policy.NewAuthorizer(policy.Options{}, nil)
	if err != nil {
		panic(err)
	}
	src, err := source.NewFile(context.Background(), az, "policy", dir, source.Options{})
	if err != nil {
		fmt.Println("start-up fails:", err)
		return
	}
	defer src.Close()
	st := src.Status()
	fmt.Println(st.Kind, st.Revision, st.Activations, az.Status().Revisions["policy"])
	// Output: file r1 1 r1
}

// Bundles from a standard OPA configuration; an unknown service is named.
func ExampleParseConfig() {
	_, err := source.ParseConfig([]byte(`
services:
  acme:
    url: https://bundles.acme.example
bundles:
  authz:
    service: acmee
    resource: temporal/authz.tar.gz
`))
	fmt.Println(err)
	// Output: bundle config: bundles.authz.service: unknown service "acmee"; services defined: acme
}
