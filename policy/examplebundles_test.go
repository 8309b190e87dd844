package policy_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/open-policy-agent/opa/v1/bundle"
	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy"
)

// TestExampleBundlesCompose activates every example bundle of bundles/ at
// once, each under its own name as a server with several bundles does, and
// decides calls whose outcome depends on two of them: roles granted by
// keycloak-groups and kubernetes-workers from verified token claims, counted
// by protected-namespaces and least-privilege-workers. Each call is decided
// three times through the decision cache and once on the whole input (Decide):
// the role bundles read the token by path, so the policy stays cacheable.
func TestExampleBundlesCompose(t *testing.T) {
	dirs, err := filepath.Glob("../bundles/*/.manifest")
	if err != nil || len(dirs) < 6 {
		t.Fatalf("example bundles: %v %v", dirs, err)
	}
	bundles := map[string]*bundle.Bundle{}
	for _, m := range dirs {
		dir := filepath.Dir(m)
		b, err := policy.LoadBundle(dir)
		if err != nil {
			t.Fatal(err)
		}
		bundles[filepath.Base(dir)] = b
	}
	// payments is protected, so that the shipped group table reaches a
	// protected namespace.
	protected := bundles["protected-namespaces"].Data["temporal"].(map[string]any)["custom"].(map[string]any)["protected_namespaces"].(map[string]any)
	protected["namespaces"] = []any{"payments"}
	a, err := policy.NewAuthorizer(policy.Options{}, bundles)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Status().Cacheable {
		t.Error("the example bundles together turn the decision cache off")
	}

	const (
		keycloak = "https://keycloak.example/realms/temporal"
		cluster  = "https://kubernetes.default.svc.cluster.local"
		apiPoll  = "/temporal.api.workflowservice.v1.WorkflowService/PollWorkflowTaskQueue"
	)
	// Tokens without Temporal permissions: every role comes from a role bundle.
	member := func(key, issuer string, groups ...any) *authorization.Claims {
		return &authorization.Claims{Subject: "alice", AuthType: "jwt", Extensions: tokenExt{key: key, issuer: issuer,
			claims: map[string]any{"iss": issuer, "sub": "alice", "groups": groups}}}
	}
	pod := func(key, issuer string) *authorization.Claims {
		return &authorization.Claims{Subject: "system:serviceaccount:payments:payments-worker", AuthType: "jwt", Extensions: tokenExt{key: key, issuer: issuer,
			claims: map[string]any{"iss": issuer, "sub": "system:serviceaccount:payments:payments-worker", "kubernetes.io": map[string]any{
				"namespace":      "payments",
				"serviceaccount": map[string]any{"name": "payments-worker", "uid": "5e0c1b7e"},
				"pod":            map[string]any{"name": "payments-worker-7d9f", "uid": "9a1c2d3e"},
			}}}}
	}
	tests := []struct {
		name   string
		claims *authorization.Claims
		api    string
		allow  bool
		reason string
	}{
		{"group-granted admin terminates in a protected namespace", member("oncall", keycloak, "/temporal-payments-oncall"), apiTerm, true,
			"allowed by the default policy"},
		{"group-granted write may not", member("dev", keycloak, "/temporal-payments-devs"), apiTerm, false,
			`TerminateWorkflowExecution in protected namespace "payments" requires admin on "payments" or on temporal-system; caller has write`},
		{"group-granted write starts", member("dev", keycloak, "temporal-payments-devs"), apiStart, true,
			"allowed by the default policy"},
		{"groups of another issuer grant nothing", member("evil", "https://evil.example", "temporal-platform-admins"), apiTerm, false,
			`TerminateWorkflowExecution in protected namespace "payments" requires admin on "payments" or on temporal-system; caller has no role`},
		{"a pod's granted worker role polls", pod("pod", cluster), apiPoll, true,
			"allowed by a custom rule (data.temporal.custom.least_privilege_workers.allow)"},
		{"and does not start", pod("pod", cluster), apiStart, false,
			`StartWorkflowExecution in namespace "payments" requires write; caller has worker`},
		{"a forged service-account token polls nothing", pod("forged", "https://evil.example"), apiPoll, false,
			`PollWorkflowTaskQueue in namespace "payments" requires write; caller has no role`},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i := 0; i < 3; i++ {
				got, err := a.Authorize(ctx, tc.claims, target(tc.api, "payments"))
				// An allowed call carries no reason to the caller.
				if err != nil || (got.Decision == authorization.DecisionAllow) != tc.allow || (!tc.allow && got.Reason != tc.reason) {
					t.Fatalf("call %d: %v %q %v, want allow=%v %q", i, got.Decision, got.Reason, err, tc.allow, tc.reason)
				}
			}
			d, err := a.Decide(ctx, tc.claims, target(tc.api, "payments"))
			if err != nil || d.Allow != tc.allow || d.Reason != tc.reason {
				t.Errorf("Decide: %v %q %v", d.Allow, d.Reason, err)
			}
		})
	}
}
