package policy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy"
)

// The embedded default policy decides as Temporal's default authorizer does, and
// says why it denies.
func ExampleAuthorizer_Authorize() {
	a, err := policy.NewAuthorizer(policy.Options{}, nil)
	if err != nil {
		panic(err)
	}
	claims := &authorization.Claims{
		Subject:    "alice",
		AuthType:   "jwt",
		Namespaces: map[string]authorization.Role{"payments": authorization.RoleReader},
	}
	for _, method := range []string{"DescribeWorkflowExecution", "StartWorkflowExecution"} {
		res, err := a.Authorize(context.Background(), claims, &authorization.CallTarget{
			APIName:   "/temporal.api.workflowservice.v1.WorkflowService/" + method,
			Namespace: "payments",
		})
		if err != nil {
			panic(err)
		}
		if res.Decision == authorization.DecisionAllow {
			fmt.Println(method, "allowed")
		} else {
			fmt.Println(method, "denied:", res.Reason)
		}
	}
	// Output:
	// DescribeWorkflowExecution allowed
	// StartWorkflowExecution denied: StartWorkflowExecution in namespace "payments" requires write; caller has read
}

// A bundle of custom rules in package temporal.custom is layered on the default
// policy (here as a bundle source hot-reloads it, by name): its deny reasons
// override any allow.
func ExampleAuthorizer_SetBundle() {
	dir, err := os.MkdirTemp("", "bundle")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	must(os.MkdirAll(filepath.Join(dir, "temporal", "custom"), 0o755))
	must(os.WriteFile(filepath.Join(dir, ".manifest"), []byte(`{"roots": ["temporal/custom"], "revision": "v1"}`), 0o644))
	must(os.WriteFile(filepath.Join(dir, "temporal", "custom", "production.rego"), []byte(`package temporal.custom

deny contains "terminating workflows in production is disabled" if {
	input.target.namespace == "production"
	input.target.method == "TerminateWorkflowExecution"
}
`), 0o644))

	b, err := policy.LoadBundle(dir)
	if err != nil {
		panic(err)
	}
	a, err := policy.NewAuthorizer(policy.Options{}, nil)
	if err != nil {
		panic(err)
	}
	if err := a.SetBundle(context.Background(), "custom", b); err != nil {
		panic(err)
	}
	admin := &authorization.Claims{Subject: "root", AuthType: "jwt", System: authorization.RoleAdmin}
	res, _ := a.Authorize(context.Background(), admin, &authorization.CallTarget{
		APIName:   "/temporal.api.workflowservice.v1.WorkflowService/TerminateWorkflowExecution",
		Namespace: "production",
	})
	fmt.Println(res.Decision == authorization.DecisionAllow, res.Reason)
	// Output:
	// false terminating workflows in production is disabled
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
