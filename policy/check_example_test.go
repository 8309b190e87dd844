package policy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/open-policy-agent/opa/v1/bundle"
	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy"
)

// writeExampleBundle writes a bundle of custom rules into a new directory.
func writeExampleBundle(rules string) string {
	dir, err := os.MkdirTemp("", "bundle")
	if err != nil {
		panic(err)
	}
	files := map[string]string{
		".manifest":                  `{"roots": ["temporal/custom"], "revision": "v1"}`,
		"temporal/custom/rules.rego": rules,
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		_ = os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			panic(err)
		}
	}
	return dir
}

// NewAuthorizer says whether the server would activate bundles, with the
// error it would report: it activates them with the server's own checks.
func ExampleNewAuthorizer_check() {
	for _, rules := range []string{
		"package temporal.custom\n\ndeny contains \"frozen\" if input.target.namespace == \"payments\"\n",
		"package temporal.custom\n\ndeny contains \"frozen\" if input.target.namespce == \"payments\"\n",
	} {
		dir := writeExampleBundle(rules)
		defer os.RemoveAll(dir)
		b, err := policy.LoadBundle(dir)
		if err != nil {
			panic(err)
		}
		az, err := policy.NewAuthorizer(policy.Options{}, map[string]*bundle.Bundle{"policy": b})
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println("activated:", az.Status().Revisions)
	}
	// Output:
	// activated: map[policy:v1 temporal-opa/default:]
	// policy not activated (compile): bundle activation failed: 1 error occurred: /temporal/custom/rules.rego:3: rego_type_error: undefined ref: input.target.namespce
	// 	input.target.namespce
	// 	             ^
	// 	             have: "namespce"
	// 	             want (one of): ["access" "api" "health_check" "method" "namespace" "nexus_endpoint" "scope" "service"]
}

// Explain lists the rules that produced a decision, with their values.
func ExampleAuthorizer_Explain() {
	dir := writeExampleBundle("package temporal.custom\n\ndeny contains \"frozen\" if input.target.namespace == \"payments\"\n")
	defer os.RemoveAll(dir)
	b, err := policy.LoadBundle(dir)
	if err != nil {
		panic(err)
	}
	a, err := policy.NewAuthorizer(policy.Options{}, map[string]*bundle.Bundle{"policy": b})
	if err != nil {
		panic(err)
	}
	claims := &authorization.Claims{Subject: "alice", AuthType: "jwt", Namespaces: map[string]authorization.Role{"payments": authorization.RoleAdmin}}
	ex, err := a.Explain(context.Background(), claims, &authorization.CallTarget{
		APIName:   "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution",
		Namespace: "payments",
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(ex.Allow, ex.Reason)
	for _, r := range ex.Rules {
		fmt.Println(r.Location, r.Rule, r.Value)
	}
	// Output:
	// false frozen
	// /temporal/custom/rules.rego:3 data.temporal.custom.deny frozen
	// /temporal/authz/authz.rego:182 data.temporal.authz._custom_deny_reasons frozen
	// /temporal/authz/authz.rego:30 data.temporal.authz.decision map[allow:false reason:frozen]
}
