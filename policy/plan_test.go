package policy_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/temporal-opa/temporal-opa/policy"
)

// TestPlanDifferential decides calls with the plan (the default rules in Go,
// for calls without a time-bound grant) and by evaluating the Rego, on the
// same input, under policies the plan was not written for: the embedded
// default alone, every example bundle alone and all together, hand-written
// shapes that may define an extension point indirectly, and generated custom
// rules (the generator of TestProjectionDifferential). Every field must
// agree: allow, reason, granted roles, grant, whether it failed.
func TestPlanDifferential(t *testing.T) {
	ctx := context.Background()
	apis := parityAPIs(t)
	type named struct {
		name    string
		bundles map[string]*bundle.Bundle
		plan    bool // the plan applies
	}
	var policies []named
	policies = append(policies, named{"embedded default", nil, true})
	dirs, err := filepath.Glob("../bundles/*/.manifest")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no example bundles: %v", err)
	}
	all := map[string]*bundle.Bundle{}
	for _, m := range dirs {
		dir := filepath.Dir(m)
		b, err := policy.LoadBundle(dir)
		if err != nil {
			t.Fatal(err)
		}
		all[filepath.Base(dir)] = b
		policies = append(policies, named{"bundle " + filepath.Base(dir), map[string]*bundle.Bundle{filepath.Base(dir): b}, true})
	}
	policies = append(policies, named{"every example bundle", all, true})
	for _, tc := range []struct{ name, rego string }{
		{"a custom deny through a package document", `package temporal.custom

doc := {"deny": {"denied through a document"}} if input.target.namespace == "payments"
`},
		{"conflicting custom allow rules", `package temporal.custom.conflict

allow := true if input.target.namespace == "payments"

allow := false if input.claims.subject == "alice"
`},
		{"a role rule reading the request", `package temporal.custom.req

namespace_roles[input.target.namespace] contains "write" if input.request.workflow_type.name == "orders.Ship"
`},
		{"deny reasons that are not strings", `package temporal.custom.odd

deny contains {"not": "a string"} if input.target.namespace == "e-a"
`},
		{"system roles for a subject", `package temporal.custom.sys

system_roles contains "admin" if input.claims.subject == "alice"
`},
		{"a helper package with no extension point", `package temporal.custom.helpers

payments := {"payments"}

is_payments if input.target.namespace in payments
`},
	} {
		policies = append(policies, named{tc.name, map[string]*bundle.Bundle{"custom": writeBundle(t, map[string]string{
			".manifest": customManifest, "temporal/custom/rules.rego": tc.rego})}, true})
	}
	handWritten := len(policies) // each decides every API several times
	generated := 150
	if testing.Short() {
		generated = 30
	}
	for p := range generated {
		gp := (&policyGen{rng: rand.New(rand.NewPCG(29, uint64(p)))}).policy()
		files := map[string]string{".manifest": customManifest, "temporal/custom/rules.rego": gp.custom, "temporal/custom/helpers/rules.rego": gp.helpers}
		if gp.roles != "" {
			files["temporal/custom/roles/roles.rego"] = gp.roles
			files["data.json"] = groupTable
		}
		policies = append(policies, named{fmt.Sprintf("generated %d", p), map[string]*bundle.Bundle{"custom": writeBundle(t, files)}, true})
	}
	// A bundle that replaces the default policy: no plan.
	policies = append(policies, named{"a replacement of the default policy", map[string]*bundle.Bundle{"own": writeBundle(t, map[string]string{
		".manifest": `{"roots": ["temporal"]}`,
		"temporal/authz/authz.rego": `package temporal.authz

decision := {"allow": input.target.namespace == "payments", "reason": "own"}
`})}, false})

	planned, agreed, allowed, failed, granting := 0, 0, 0, 0, 0
	for pi, p := range policies {
		a, err := policy.NewAuthorizer(policy.Options{DecisionCacheSize: -1}, p.bundles)
		if err != nil {
			t.Fatalf("%s does not activate: %v", p.name, err)
		}
		if policy.HasPlan(a) != p.plan {
			t.Fatalf("%s: plan %v, want %v", p.name, policy.HasPlan(a), p.plan)
		}
		rng := rand.New(rand.NewPCG(31, uint64(pi)))
		calls := 120
		if pi < handWritten {
			calls = 3 * len(apis)
		}
		for i := range calls {
			claims, target := randomCall(rng)
			if pi < handWritten {
				target.APIName = apis[i%len(apis)]
			}
			got, want, ok, err := policy.DecideBothWays(ctx, a, claims, target)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				continue
			}
			planned++
			if (got.Err == nil) != (want.Err == nil) || got.Allow != want.Allow || got.Reason != want.Reason || got.Grant != want.Grant || !slices.Equal(got.Granted, want.Granted) {
				t.Fatalf("%s: call %s in %q by %+v:\nplan %+v\nrego %+v", p.name, target.APIName, target.Namespace, claims, got, want)
			}
			agreed++
			if want.Allow {
				allowed++
			}
			if want.Err != nil {
				failed++
			}
			if len(want.Granted) > 0 {
				granting++
			}
		}
	}
	t.Logf("%d policies, %d calls decided by the plan and by the Rego: %d agreed (%d allowed, %d failed to decide, %d with roles granted by role rules)",
		len(policies), planned, agreed, allowed, failed, granting)
	if planned < 10000 || allowed == 0 || allowed == planned || failed == 0 || granting == 0 {
		t.Errorf("the comparison did not cover the plan's paths: %d planned, %d allowed, %d failed, %d granting", planned, allowed, failed, granting)
	}
}
