package policy_test

import (
	"context"
	"fmt"
	"github.com/open-policy-agent/opa/v1/bundle"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/grants"
)

// The differential test of the server's path. The Authorizer decides a call
// on a projected input (only the values the policy reads, by static analysis)
// and caches decisions by those values; Decide evaluates the whole input
// document with no cache. For any policy, both must give every call the same
// decision and reason. Policies here are generated, not written for the
// analysis: conditions that read the namespace map, the token's claims, the
// request and the target in odd ways, wrapped in comprehensions, `every`,
// negated helper rules, else chains, functions, helper rules in another
// package and `with`.

// condition is one condition of a generated rule body: its body lines, and
// rules it needs beside the body.
type condition struct {
	lines []string
	rules []string // rules in package temporal.custom
	help  []string // rules in package temporal.custom.helpers
}

type policyGen struct {
	rng *rand.Rand
	n   int // names generated, for unique variables and rules
}

func (g *policyGen) id() int { g.n++; return g.n }

func (g *policyGen) pick(s ...string) string { return s[g.rng.IntN(len(s))] }

// atom returns a condition that reads the input in one way.
func (g *policyGen) atom() condition {
	n := g.id()
	role := g.pick("worker", "read", "write", "admin")
	ns := g.pick("e-a", "e-b", "default", "payments")
	v := func(name string) string { return fmt.Sprintf("%s%d", name, n) }
	atoms := []func() condition{
		// The namespace map, keyed by the target namespace or not.
		func() condition {
			return condition{lines: []string{fmt.Sprintf("%q in input.claims.namespaces[input.target.namespace]", role)}}
		},
		func() condition { // the shape of issue 17
			return condition{lines: []string{
				"some " + v("ns"),
				fmt.Sprintf("%q in input.claims.namespaces[%s]", role, v("ns")),
				fmt.Sprintf("count([1 | %s == input.target.namespace]) == 0", v("ns")),
			}}
		},
		func() condition {
			return condition{lines: []string{
				"some " + v("ns"),
				fmt.Sprintf("%q in input.claims.namespaces[%s]", role, v("ns")),
				fmt.Sprintf("%s != input.target.namespace", v("ns")),
			}}
		},
		func() condition { // filter after the use
			return condition{lines: []string{
				"some " + v("ns"),
				fmt.Sprintf("%q in input.claims.namespaces[%s]", role, v("ns")),
				fmt.Sprintf("%s == input.target.namespace", v("ns")),
			}}
		},
		func() condition {
			return condition{lines: []string{
				fmt.Sprintf("%s := input.target.namespace", v("ns")),
				fmt.Sprintf("every %s in input.claims.namespaces[%s] { %s != %q }", v("r"), v("ns"), v("r"), role),
			}}
		},
		func() condition {
			return condition{lines: []string{fmt.Sprintf("not %q in input.claims.namespaces[input.target.namespace]", role)}}
		},
		func() condition {
			return condition{lines: []string{fmt.Sprintf("count(input.claims.namespaces) > %d", g.rng.IntN(3))}}
		},
		func() condition {
			return condition{lines: []string{fmt.Sprintf("%q in object.get(input.claims.namespaces, input.target.namespace, [])", role)}}
		},
		func() condition {
			return condition{
				lines: []string{fmt.Sprintf("data.temporal.custom.helpers.roles_anywhere%d[%q]", n, role)},
				help: []string{fmt.Sprintf("roles_anywhere%d contains %s if {\n\tsome %s\n\tsome %s in input.claims.namespaces[%s]\n}",
					n, v("r"), v("ns"), v("r"), v("ns"))},
			}
		},
		func() condition {
			return condition{lines: []string{
				fmt.Sprintf("some %s, %s in input.claims.namespaces", v("ns"), v("roles")),
				fmt.Sprintf("startswith(%s, %q)", v("ns"), "e-"),
				fmt.Sprintf("%q in %s", role, v("roles")),
			}}
		},
		func() condition {
			return condition{lines: []string{
				fmt.Sprintf("walk(input.claims.namespaces, [%s, %s])", v("p"), v("x")),
				fmt.Sprintf("count(%s) >= 0", v("p")),
				fmt.Sprintf("%s == %q", v("x"), role),
			}}
		},
		func() condition { // a function keyed by its argument
			return condition{
				lines: []string{fmt.Sprintf("data.temporal.custom.helpers.has_role%d(input.target.namespace, %q)", n, role)},
				help:  []string{fmt.Sprintf("has_role%d(ns, r) if r in input.claims.namespaces[ns]", n)},
			}
		},
		func() condition { // a constant namespace
			return condition{lines: []string{fmt.Sprintf("%q in input.claims.namespaces[%q]", role, ns)}}
		},
		func() condition { // the target namespace bound, then another namespace iterated
			return condition{lines: []string{
				fmt.Sprintf("%s := input.target.namespace", v("t")),
				fmt.Sprintf("some %s", v("ns")),
				fmt.Sprintf("%q in input.claims.namespaces[%s]", role, v("ns")),
				fmt.Sprintf("%s != %s", v("ns"), v("t")),
			}}
		},
		func() condition { // the whole input passed to a function
			return condition{
				lines: []string{fmt.Sprintf("data.temporal.custom.helpers.holds%d(input, %q)", n, role)},
				help:  []string{fmt.Sprintf("holds%d(i, r) if r in i.claims.namespaces[i.target.namespace]", n)},
			}
		},
		func() condition { // the map bound to a variable
			return condition{lines: []string{
				fmt.Sprintf("%s := input.claims.namespaces", v("m")),
				fmt.Sprintf("%q in %s[input.target.namespace]", role, v("m")),
			}}
		},
		func() condition { // the target namespace through a comprehension
			return condition{lines: []string{
				fmt.Sprintf("%s := [x | x := input.target.namespace][0]", v("ns")),
				fmt.Sprintf("%q in input.claims.namespaces[%s]", role, v("ns")),
			}}
		},
		// The token's claims.
		func() condition {
			return condition{lines: []string{fmt.Sprintf("%q in input.claims.jwt.groups", g.pick("platform", "ops", "payments-team"))}}
		},
		func() condition {
			return condition{lines: []string{fmt.Sprintf("input.claims.jwt.org.team == %q", g.pick("red", "blue"))}}
		},
		func() condition {
			return condition{lines: []string{"some " + v("k"), fmt.Sprintf("input.claims.jwt[%s] == %q", v("k"), g.pick("x", "1", "alice"))}}
		},
		func() condition {
			return condition{lines: []string{fmt.Sprintf("object.get(input.claims.jwt, [\"org\", \"site\"], \"none\") == %q", g.pick("a", "none"))}}
		},
		func() condition {
			return condition{lines: []string{fmt.Sprintf("input.claims.subject == %q", g.pick("alice", "bob"))}}
		},
		func() condition { return condition{lines: []string{`input.claims.auth_type == "temporal"`}} },
		func() condition { // the verifying issuer
			return condition{lines: []string{fmt.Sprintf("input.claims.issuer == %q", g.pick("https://idp.example", "https://k8s.example", ""))}}
		},
		func() condition { return condition{lines: []string{fmt.Sprintf("%q in input.claims.system", role)}} },
		func() condition {
			return condition{lines: []string{fmt.Sprintf("%s := input.claims", v("c")), fmt.Sprintf("%s.jwt.jti == %q", v("c"), g.pick("0", "1"))}}
		},
		func() condition {
			return condition{lines: []string{fmt.Sprintf("count(input.claims.jwt) > %d", 1+g.rng.IntN(3))}}
		},
		func() condition { return condition{lines: []string{"is_array(input.claims.jwt.groups)"}} },
		func() condition {
			return condition{lines: []string{fmt.Sprintf("walk(input.claims.jwt, [%s, %q])", v("p"), g.pick("ops", "red")), fmt.Sprintf("count(%s) > 0", v("p"))}}
		},
		func() condition { // a claim named by data
			return condition{
				lines: []string{fmt.Sprintf("input.claims.jwt[data.temporal.custom.helpers.claim%d] == %q", n, g.pick("x", "payments-team"))},
				help:  []string{fmt.Sprintf("claim%d := %q", n, g.pick("groups", "jti", "sub"))},
			}
		},
		// The request.
		func() condition {
			return condition{lines: []string{fmt.Sprintf("input.request.workflow_type.name == %q", g.pick("payments.Charge", "orders.Ship", ""))}}
		},
		func() condition {
			return condition{lines: []string{fmt.Sprintf("startswith(input.request.task_queue.name, %q)", g.pick("q1", "q"))}}
		},
		func() condition {
			return condition{lines: []string{`input.request.task_queue.kind == "TASK_QUEUE_KIND_STICKY"`}}
		},
		func() condition {
			return condition{lines: []string{
				fmt.Sprintf("some %s in input.request.commands", v("c")),
				fmt.Sprintf("%s.start_child_workflow_execution_command_attributes.namespace != input.target.namespace", v("c")),
			}}
		},
		func() condition {
			return condition{lines: []string{
				"some " + v("i"),
				fmt.Sprintf("input.request.commands[%s].start_child_workflow_execution_command_attributes.workflow_type.name == %q", v("i"), g.pick("payments.Charge", "orders.Ship")),
			}}
		},
		func() condition {
			return condition{lines: []string{`input.request.header.fields.tenant.data == "dDE="`}}
		},
		func() condition {
			return condition{lines: []string{`count(object.get(input.request, "memo", {})) > 0`}}
		},
		func() condition {
			return condition{lines: []string{fmt.Sprintf("input.request_type == %q", g.pick(
				"temporal.api.workflowservice.v1.StartWorkflowExecutionRequest", "temporal.api.workflowservice.v1.CreateScheduleRequest"))}}
		},
		func() condition {
			return condition{lines: []string{fmt.Sprintf("input.request.schedule.action.start_workflow.workflow_type.name == %q", g.pick("orders.Ship", "payments.Charge"))}}
		},
		func() condition {
			return condition{lines: []string{fmt.Sprintf("walk(input.request, [%s, %q])", v("p"), g.pick("q2", "e-a")), fmt.Sprintf("count(%s) > 0", v("p"))}}
		},
		func() condition {
			return condition{lines: []string{"some " + v("k"), fmt.Sprintf("input.request[%s] == %q", v("k"), g.pick("e-a", "1"))}}
		},
		// The client certificate: absent, one field, a SAN list, the whole of it.
		func() condition {
			return condition{lines: []string{fmt.Sprintf("input.claims.tls.spiffe_id == %q", g.pick("spiffe://prod.example/ns/payments/sa/worker", "spiffe://prod.example/ns/orders/sa/worker", ""))}}
		},
		func() condition {
			return condition{lines: []string{"not input.claims.tls"}}
		},
		func() condition {
			return condition{lines: []string{fmt.Sprintf("%q in input.claims.tls.subject.organization", g.pick("Payments", "Orders"))}}
		},
		func() condition {
			return condition{lines: []string{"some " + v("u"), fmt.Sprintf("startswith(input.claims.tls.uris[%s], %q)", v("u"), g.pick("spiffe://prod.example/ns/payments", "https://"))}}
		},
		func() condition {
			return condition{lines: []string{fmt.Sprintf("count(object.get(input.claims, \"tls\", {})) > %d", g.rng.IntN(12))}}
		},
		func() condition {
			return condition{lines: []string{fmt.Sprintf("input.claims.tls.subject.common_name == %q", g.pick("payments-worker", "ci-bot"))}}
		},
		// Time-bound grants (input.grants, set by diffGrants).
		func() condition {
			return condition{lines: []string{fmt.Sprintf("count(input.grants) > %d", g.rng.IntN(2))}}
		},
		func() condition {
			return condition{lines: []string{"some " + v("g") + " in input.grants", fmt.Sprintf("%s.state == %q", v("g"), g.pick("active", "expired", "requested", "revoked", "scheduled"))}}
		},
		// The target.
		func() condition {
			return condition{lines: []string{fmt.Sprintf("input.target.method == %q", g.pick("StartWorkflowExecution", "QueryWorkflow", "DescribeNamespace"))}}
		},
		func() condition {
			return condition{lines: []string{fmt.Sprintf("startswith(input.target.namespace, %q)", g.pick("e-", "p"))}}
		},
		func() condition {
			return condition{lines: []string{fmt.Sprintf("input.target.access == %q", g.pick("write", "read"))}}
		},
		// with: input replaced, and data replaced.
		func() condition {
			return condition{
				lines: []string{fmt.Sprintf("data.temporal.custom.helpers.sysadmin%d with input.claims.system as [%q]", n, role)},
				help:  []string{fmt.Sprintf("sysadmin%d if \"admin\" in input.claims.system", n)},
			}
		},
		func() condition {
			return condition{
				lines: []string{fmt.Sprintf("data.temporal.custom.helpers.team_ok%d with data.temporal.custom.helpers.team%d as %q", n, n, g.pick("red", "blue"))},
				help: []string{
					fmt.Sprintf("team%d := \"red\"", n),
					fmt.Sprintf("team_ok%d if input.claims.jwt.org.team == team%d", n, n),
				},
			}
		},
	}
	return atoms[g.rng.IntN(len(atoms))]()
}

// cond wraps an atom in one of the shapes a rule body can take.
func (g *policyGen) cond(depth int) condition {
	c := g.atom()
	if depth > 1 {
		return c
	}
	n := g.id()
	body := strings.Join(c.lines, "\n\t")
	switch g.rng.IntN(9) {
	case 0: // negated helper rule
		c.rules = append(c.rules, fmt.Sprintf("_h%d if {\n\t%s\n}", n, body))
		c.lines = []string{fmt.Sprintf("not _h%d", n)}
	case 1: // comprehension
		c.lines = []string{fmt.Sprintf("count([1 | %s]) > 0", strings.Join(c.lines, "; "))}
	case 2: // every
		c.lines = []string{fmt.Sprintf("every i%d in [1] { i%d == 1; %s }", n, n, strings.Join(c.lines, "; "))}
	case 3: // else chain over two conditions
		d := g.cond(depth + 1)
		c.rules = append(c.rules, d.rules...)
		c.help = append(c.help, d.help...)
		c.rules = append(c.rules, fmt.Sprintf("_v%d := \"a\" if {\n\t%s\n} else := \"b\" if {\n\t%s\n} else := \"c\"", n, body, strings.Join(d.lines, "\n\t")))
		c.lines = []string{fmt.Sprintf("_v%d == %q", n, g.pick("a", "b", "c"))}
	case 4: // function with an argument
		c.rules = append(c.rules, fmt.Sprintf("_f%d(x) if {\n\tx == \"k\"\n\t%s\n}", n, body))
		c.lines = []string{fmt.Sprintf("_f%d(\"k\")", n)}
	case 5: // helper rule in another package
		c.help = append(c.help, fmt.Sprintf("h%d if {\n\t%s\n}", n, body))
		c.lines = []string{fmt.Sprintf("data.temporal.custom.helpers.h%d", n)}
	}
	return c
}

// echo is a value that reads the input, for deny reasons: a cache key that
// missed it would hand one call another's reason.
func (g *policyGen) echo() string {
	return g.pick(
		"input.target.namespace",
		"object.get(input.claims.namespaces, input.target.namespace, [])",
		"input.claims.jwt.groups",
		`object.get(input.claims.jwt, "org", {})`,
		"input.request.workflow_type.name",
		"[r | some ns; some r in input.claims.namespaces[ns]]",
		"count(input.claims.namespaces)",
		"input.claims.subject",
		"input.claims.issuer",
		"input.claims.tls.spiffe_id",
		"[g.id | some g in input.grants]",
		"object.get(input.claims, \"tls\", {})",
		`"x"`,
	)
}

// genPolicy is one generated policy: its modules in package temporal.custom,
// temporal.custom.helpers and temporal.custom.roles (role rules reading a
// group table, and deny rules reading the roles held; "" for none).
type genPolicy struct{ custom, helpers, roles string }

func (p genPolicy) String() string { return p.custom + "\n" + p.helpers + "\n" + p.roles }

// groupTable is the data of the generated temporal.custom.roles package: the
// roles each group of randomCall's tokens grants.
const groupTable = `{"temporal": {"custom": {"roles": {"groups": {
	"payments-team": ["payments:write", "e-a:read"],
	"platform": ["temporal-system:read", "e-b:worker"],
	"ops": ["e-b:admin", "default:worker", "temporal-system:bogus"]
}}}}}`

// policy generates the modules of one policy.
func (g *policyGen) policy() genPolicy {
	var rules, help []string
	for range 1 + g.rng.IntN(3) {
		var lines []string
		for range 1 + g.rng.IntN(3) {
			c := g.cond(0)
			lines = append(lines, c.lines...)
			rules = append(rules, c.rules...)
			help = append(help, c.help...)
		}
		body := strings.Join(lines, "\n\t")
		switch g.rng.IntN(6) {
		case 0:
			rules = append(rules, fmt.Sprintf("allow if {\n\t%s\n}", body))
		case 1: // a role rule on a namespace named in the rule or the call's
			role := g.pick("worker", "read", "write", "admin")
			if g.rng.IntN(2) == 0 {
				rules = append(rules, fmt.Sprintf("namespace_roles[%q] contains %q if {\n\t%s\n}", g.pick("e-a", "payments", "default"), role, body))
			} else {
				rules = append(rules, fmt.Sprintf("namespace_roles[ns] contains %q if {\n\tns := input.target.namespace\n\t%s\n}", role, body))
			}
		case 2:
			rules = append(rules, fmt.Sprintf("system_roles contains %q if {\n\t%s\n}", g.pick("worker", "read", "admin"), body))
		default:
			rules = append(rules, fmt.Sprintf("deny contains sprintf(\"d%d %%v\", [%s]) if {\n\t%s\n}", g.id(), g.echo(), body))
		}
	}
	p := genPolicy{
		custom:  "package temporal.custom\n\n" + strings.Join(rules, "\n\n") + "\n",
		helpers: "package temporal.custom.helpers\n\n" + strings.Join(help, "\n\n") + "\n",
	}
	if g.rng.IntN(2) == 0 {
		p.roles = `package temporal.custom.roles

namespace_roles[ns] contains role if {
	some group in input.claims.jwt.groups
	some grant in data.temporal.custom.roles.groups[group]
	[ns, role] := split(grant, ":")
	ns != "temporal-system"
}

system_roles contains role if {
	some group in input.claims.jwt.groups
	some grant in data.temporal.custom.roles.groups[group]
	parts := split(grant, ":")
	parts[0] == "temporal-system"
	role := parts[1]
}
`
		if g.rng.IntN(2) == 0 {
			p.roles += fmt.Sprintf(`
deny contains sprintf("r%d %%v", [sort(data.temporal.authz.held_roles)]) if {
	input.target.namespace == %q
	not %q in data.temporal.authz.held_roles
}
`, g.id(), g.pick("e-a", "e-b", "payments"), g.pick("read", "write", "admin"))
		}
	}
	return p
}

// differ decides calls with a caching Authorizer (the server's path) and with
// Decide (the whole input, no cache), and reports the first call on which they
// disagree. Each call is decided three times by the Authorizer, under two
// sets of time-bound grants, so that the third is a cache hit when the
// policy's decisions are cached.
func differ(t testing.TB, a *policy.Authorizer, h *hitCounter, rng *rand.Rand, calls int) (string, bool) {
	ctx := context.Background()
	// Each call is decided with the grants of now, then with the same grants
	// 90 minutes older (active ones expired, scheduled ones started), then
	// with those of now again: a decision cached under one set of grants must
	// not be reused under the other.
	now := time.Now()
	sets := [][]grants.Grant{diffGrants(now), diffGrants(now.Add(-90 * time.Minute))}
	for i := range calls {
		claims, target := randomCall(rng)
		for round := range 3 {
			a.SetGrants(sets[round%2])
			got, gotErr := a.Authorize(ctx, claims, target)
			want, wantErr := a.Decide(ctx, claims, target)
			if (gotErr == nil) != (wantErr == nil) || (got.Decision == authorization.DecisionAllow) != want.Allow || !want.Allow && got.Reason != want.Reason {
				return fmt.Sprintf("call %d (%s in %q, claims %+v, request %v): server path %v %q (error %v); whole input %v %q (error %v)",
					i, target.APIName, target.Namespace, claims, target.Request, got.Decision, got.Reason, gotErr, want.Allow, want.Reason, wantErr), true
			}
			if got.Decision == authorization.DecisionAllow && h.grant() != want.Grant {
				return fmt.Sprintf("call %d (%s in %q, claims %+v): server path allowed under grant %q; whole input under %q", i, target.APIName, target.Namespace, claims, h.grant(), want.Grant), true
			}
			// The roles granted, recorded for the audit trail, are those of the whole input too.
			if p := h.granted.Load(); p != nil && !slices.Equal(*p, want.GrantedRoles) {
				return fmt.Sprintf("call %d (%s in %q, claims %+v): server path granted %v; whole input %v", i, target.APIName, target.Namespace, claims, *p, want.GrantedRoles), true
			}
		}
	}
	return "", false
}

// hitCounter counts the decisions that came from the decision cache and keeps
// the roles granted for the last one.
type hitCounter struct {
	hits       atomic.Int64
	granting   atomic.Int64 // decisions with roles granted by role rules
	granted    atomic.Pointer[[]policy.Grant]
	last       atomic.Pointer[policy.Event]
	underGrant atomic.Int64 // decisions allowed under a time-bound grant
}

// grant is the id of the grant that allowed the last decision.
func (h *hitCounter) grant() string {
	if e := h.last.Load(); e != nil && e.Grant != nil {
		return e.Grant.ID
	}
	return ""
}

func (h *hitCounter) Record(e *policy.Event) {
	if e.Cached {
		h.hits.Add(1)
	}
	h.last.Store(e)
	if e.Grant != nil {
		h.underGrant.Add(1)
	}
	g := e.GrantedRoles
	h.granted.Store(&g)
	if len(g) > 0 {
		h.granting.Add(1)
	}
}

func generatedAuthorizer(t *testing.T, p genPolicy) (*policy.Authorizer, *hitCounter, error) {
	files := map[string]string{
		".manifest":                          customManifest,
		"temporal/custom/rules.rego":         p.custom,
		"temporal/custom/helpers/rules.rego": p.helpers,
	}
	if p.roles != "" {
		files["temporal/custom/roles/roles.rego"] = p.roles
		files["data.json"] = groupTable
	}
	b := writeBundle(t, files)
	h := &hitCounter{}
	a, err := policy.NewAuthorizer(policy.Options{DecisionCacheSize: 256, Recorder: h}, map[string]*bundle.Bundle{"custom": b})
	return a, h, err
}

// diffGrants are time-bound grants for randomCall's callers, in every state a
// call can see them in, far from their boundaries (the differential test
// compares decisions made a few microseconds apart).
func diffGrants(now time.Time) []grants.Grant {
	h := time.Hour
	g := func(id string, sub grants.Subject, ns, role string, apis []string, state grants.State, from, to time.Duration) grants.Grant {
		return grants.Grant{ID: id, Subject: sub, Namespace: ns, Role: role, APIs: apis, State: state,
			NotBefore: now.Add(from), Expires: now.Add(to), Reason: "diff", RequestedBy: grants.Identity{Subject: "x"},
			ApprovedBy: &grants.Identity{Subject: "y"}, EndedAt: now.Add(-time.Minute)}
	}
	alice := grants.Subject{Subject: "alice"}
	return []grants.Grant{
		g("g-a1", alice, "payments", "write", nil, grants.StateActive, -h, h),
		g("g-a2", alice, "e-a", "admin", nil, grants.StateActive, -h/2, h/4),
		g("g-a3", alice, "e-b", "write", nil, grants.StateActive, -2*h, -h/2),   // expired
		g("g-a4", alice, "default", "read", nil, grants.StateActive, h, 2*h),    // scheduled
		g("g-a5", alice, "payments", "admin", nil, grants.StateActive, -h, 9*h), // longer than the policy allows
		g("g-b1", grants.Subject{Subject: "bob", Issuer: "https://idp.example"}, "payments", "", []string{"QueryWorkflow", "StartWorkflowExecution"}, grants.StateActive, -h, h),
		g("g-b2", grants.Subject{Subject: "bob"}, "e-a", "write", nil, grants.StateRevoked, -h, h),
		g("g-b3", grants.Subject{Subject: "bob"}, "e-b", "write", nil, grants.StateRequested, -h, h),
		g("g-p1", grants.Subject{Claim: "groups", Value: "payments-team"}, "e-b", "write", nil, grants.StateActive, -h, h),
		g("g-p2", grants.Subject{Claim: "groups", Value: "ops", Issuer: "https://k8s.example"}, "default", "admin", nil, grants.StateActive, -h, h/2),
	}
}

// TestProjectionDifferential generates policies and decides random calls with
// each both ways: the server's path must give exactly the decision of the
// whole input.
func TestProjectionDifferential(t *testing.T) {
	policies, calls := 400, 20
	if raceEnabled || testing.Short() {
		policies = 60
	}
	pairs, cached, hits, granting, underGrant, disagreements := 0, 0, int64(0), int64(0), int64(0), 0
	for p := range policies {
		rng := rand.New(rand.NewPCG(17, uint64(p)))
		g := &policyGen{rng: rng}
		gp := g.policy()
		a, h, err := generatedAuthorizer(t, gp)
		if err != nil {
			t.Fatalf("generated policy %d does not activate: %v\n%s", p, err, gp)
		}
		diff, bad := differ(t, a, h, rng, calls)
		if bad {
			disagreements++
			t.Errorf("policy %d:\n%s\n%s", p, gp, diff)
		}
		if a.Status().Cacheable {
			cached++
			// Each call's second decision comes from the cache: the
			// comparison covered cache hits, not only misses.
			if !bad && h.hits.Load() < int64(calls) {
				t.Errorf("policy %d has a decision cache but only %d of its %d repeated calls were cache hits\n%s", p, h.hits.Load(), calls, gp)
			}
		}
		hits += h.hits.Load()
		granting += h.granting.Load()
		underGrant += h.underGrant.Load()
		pairs += calls
	}
	t.Logf("%d generated policies (%d with a decision cache), %d policy/call pairs decided three times by the server path (under two sets of grants) and each time by the whole input (%d decisions from the cache, %d with roles granted by role rules, %d allowed under a time-bound grant), %d disagreements",
		policies, cached, pairs, hits, granting, underGrant, disagreements)
	if underGrant == 0 {
		t.Error("no decision was allowed under a time-bound grant: the generator does not exercise them")
	}
	if granting == 0 {
		t.Error("no decision had roles granted by role rules: the generator does not exercise them")
	}
}

// FuzzProjection is TestProjectionDifferential driven by the fuzzer's seeds:
// go test -run '^$' -fuzz FuzzProjection ./policy/
func FuzzProjection(f *testing.F) {
	for _, s := range []uint64{1, 2, 17, 2026, 1 << 40} {
		f.Add(s, s*7+1)
	}
	f.Fuzz(func(t *testing.T, s1, s2 uint64) {
		rng := rand.New(rand.NewPCG(s1, s2))
		g := &policyGen{rng: rng}
		gp := g.policy()
		a, h, err := generatedAuthorizer(t, gp)
		if err != nil {
			t.Fatalf("generated policy does not activate: %v\n%s", err, gp)
		}
		if diff, bad := differ(t, a, h, rng, 20); bad {
			t.Fatalf("\n%s\n%s", gp, diff)
		}
	})
}

// TestProjectionTrickyPolicies: hand-written policies whose shapes a shortcut
// of the analysis could get wrong, each deciding random calls both ways, and
// the call of issue 17 (a token with A:write,B:admin starting a workflow in A).
func TestProjectionTrickyPolicies(t *testing.T) {
	tests := []struct {
		name   string
		custom string
	}{
		{"issue 17: admins may act only in their own namespace", `package temporal.custom

# A namespace admin may act only in the namespace it administers.
deny contains "admins may act only in their own namespace" if {
	some ns
	"admin" in input.claims.namespaces[ns]
	count([1 | ns == input.target.namespace]) == 0
}
`},
		{"the equality after the use", `package temporal.custom

deny contains "admins may act only in their own namespace" if {
	some ns
	"admin" in input.claims.namespaces[ns]
	not ns == input.target.namespace
}
`},
		{"every over the other namespaces", `package temporal.custom

deny contains "admin elsewhere" if {
	ns := input.target.namespace
	some other, roles in input.claims.namespaces
	other != ns
	every r in roles { r == "admin" }
}
`},
		{"binding in an else branch", `package temporal.custom

mode := "target" if {
	ns := input.target.namespace
	"admin" in input.claims.namespaces[ns]
} else := "elsewhere" if {
	some ns
	"admin" in input.claims.namespaces[ns]
} else := "none"

deny contains "admin elsewhere" if mode == "elsewhere"
`},
		{"a function called with the target and another namespace", `package temporal.custom

is_admin(ns) if "admin" in input.claims.namespaces[ns]

deny contains "admin of payments acting elsewhere" if {
	is_admin("payments")
	not is_admin(input.target.namespace)
}
`},
		{"roles through a variable bound to the claims", `package temporal.custom

deny contains sprintf("roles %v", [roles]) if {
	c := input.claims
	roles := {ns | some ns, rs in c.namespaces; "admin" in rs}
	count(roles) > 0
}
`},
		{"with replacing the target namespace", `package temporal.custom

is_admin if "admin" in input.claims.namespaces[input.target.namespace]

deny contains "admin of payments" if is_admin with input.target.namespace as "payments"
`},
		{"comprehension binding the captured variable", `package temporal.custom

deny contains "admin elsewhere" if {
	some ns
	"admin" in input.claims.namespaces[ns]
	count([r | ns = input.target.namespace; some r in input.claims.namespaces[ns]]) == 0
}
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, h, err := generatedAuthorizer(t, genPolicy{custom: tc.custom, helpers: "package temporal.custom.helpers\n"})
			if err != nil {
				t.Fatal(err)
			}
			if diff, bad := differ(t, a, h, rand.New(rand.NewPCG(3, 4)), 1000); bad {
				t.Fatal(diff)
			}
			ctx := context.Background()
			claims := &authorization.Claims{Subject: "mallory", AuthType: "jwt",
				Namespaces: map[string]authorization.Role{"A": authorization.RoleWriter, "B": authorization.RoleAdmin}}
			target := &authorization.CallTarget{APIName: apiStart, Namespace: "A"}
			want, _ := a.Decide(ctx, claims, target)
			for i := range 2 {
				got, _ := a.Authorize(ctx, claims, target)
				if (got.Decision == authorization.DecisionAllow) != want.Allow {
					t.Fatalf("A:write,B:admin starting a workflow in A, call %d: the server's path says %v (%q), the whole input says allow=%v (%q)",
						i+1, got.Decision, got.Reason, want.Allow, want.Reason)
				}
			}
		})
	}
}
