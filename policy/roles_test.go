package policy_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/bundle"
	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy"
)

// groupsBundle is a bundle of role rules as an operator writes one: a group
// table in data.json, trusted only for tokens of one issuer, in a package of
// its own (root temporal/custom/groups).
func groupsBundle(t testing.TB, table string) *bundle.Bundle {
	t.Helper()
	return writeBundle(t, map[string]string{
		".manifest": `{"roots": ["temporal/custom/groups"], "revision": "g1", "metadata": {"name": "groups"}}`,
		"temporal/custom/groups/groups.rego": `package temporal.custom.groups

namespace_roles[ns] contains role if {
	some [ns, role] in _grants
	ns != "temporal-system"
}

system_roles contains role if {
	some ["temporal-system", role] in _grants
}

_grants contains split(grant, ":") if {
	input.claims.issuer == data.temporal.custom.groups.issuer
	some group in input.claims.jwt.groups
	some grant in data.temporal.custom.groups.table[group]
}
`,
		"temporal/custom/groups/data.json": `{"issuer": "https://idp.example", "table": ` + table + `}`,
	})
}

const groupTableV1 = `{"payments-devs": ["payments:write"], "payments-viewers": ["payments:read"], "platform": ["temporal-system:admin"]}`

// person is a caller with the groups claim of a token of issuer.
func person(sub, issuer string, groups ...string) *authorization.Claims {
	g := make([]any, len(groups))
	for i, x := range groups {
		g[i] = x
	}
	claims := map[string]any{"sub": sub, "groups": g}
	return &authorization.Claims{Subject: sub, AuthType: "jwt", Namespaces: map[string]authorization.Role{},
		Extensions: tokenExt{key: fmt.Sprint(claims), claims: claims, issuer: issuer}}
}

// eventLog keeps the recorded events.
type eventLog struct {
	mu     sync.Mutex
	events []*policy.Event
}

func (l *eventLog) Record(e *policy.Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *eventLog) last() *policy.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.events[len(l.events)-1]
}

func TestRoleRulesGrantRolesAsTokensDo(t *testing.T) {
	log := &eventLog{}
	a, err := policy.NewAuthorizer(policy.Options{Recorder: log}, map[string]*bundle.Bundle{"groups": groupsBundle(t, groupTableV1)})
	if err != nil {
		t.Fatal(err)
	}
	devs := []policy.Grant{{Role: "write", Namespace: "payments", Rule: "data.temporal.custom.groups.namespace_roles"}}
	tests := []struct {
		name    string
		claims  *authorization.Claims
		api, ns string
		allow   bool
		reason  string
		granted []policy.Grant
	}{
		{"group grants write", person("alice", "https://idp.example", "payments-devs"), apiStart, "payments", true, "allowed by the default policy", devs},
		{"not on another namespace", person("alice", "https://idp.example", "payments-devs"), apiStart, "orders", false,
			`StartWorkflowExecution in namespace "orders" requires write; caller has no role`, nil},
		{"granted read named in the reason", person("bob", "https://idp.example", "payments-viewers"), apiStart, "payments", false,
			`StartWorkflowExecution in namespace "payments" requires write; caller has read`,
			[]policy.Grant{{Role: "read", Namespace: "payments", Rule: "data.temporal.custom.groups.namespace_roles"}}},
		{"system role from a group", person("carol", "https://idp.example", "platform"), apiListNS, "", true, "allowed by the default policy",
			[]policy.Grant{{Role: "admin", Rule: "data.temporal.custom.groups.system_roles"}}},
		{"groups of another issuer grant nothing", person("mallory", "https://other.example", "payments-devs", "platform"), apiStart, "payments", false,
			`StartWorkflowExecution in namespace "payments" requires write; caller has no role`, nil},
		{"token roles and granted roles together", func() *authorization.Claims {
			c := person("dave", "https://idp.example", "payments-viewers")
			c.Namespaces["payments"] = authorization.RoleWorker
			return c
		}(), apiStart, "payments", false, `StartWorkflowExecution in namespace "payments" requires write; caller has read`,
			[]policy.Grant{{Role: "read", Namespace: "payments", Rule: "data.temporal.custom.groups.namespace_roles"}}},
		{"no credentials, no role", nil, apiDescribe, "payments", false, "DescribeWorkflowExecution requires a token: the call carried no credentials", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target := &authorization.CallTarget{APIName: tc.api, Namespace: tc.ns}
			res, err := a.Authorize(context.Background(), tc.claims, target)
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Decision == authorization.DecisionAllow; got != tc.allow {
				t.Fatalf("allow = %v (%s), want %v", got, res.Reason, tc.allow)
			}
			e := log.last()
			if e.Reason != tc.reason {
				t.Errorf("reason %q, want %q", e.Reason, tc.reason)
			}
			if !slices.Equal(e.GrantedRoles, tc.granted) {
				t.Errorf("recorded granted roles %v, want %v", e.GrantedRoles, tc.granted)
			}
			d, err := a.Decide(context.Background(), tc.claims, target)
			if err != nil || d.Allow != tc.allow || !slices.Equal(d.GrantedRoles, tc.granted) {
				t.Errorf("Decide: %+v, %v; want allow %v, granted %v", d, err, tc.allow, tc.granted)
			}
		})
	}
}

// Decisions under role rules are cached by what the rules read: two people
// with the same groups share a decision; other groups do not.
func TestRoleRuleDecisionsCachedByGroups(t *testing.T) {
	log := &eventLog{}
	a, err := policy.NewAuthorizer(policy.Options{Recorder: log}, map[string]*bundle.Bundle{"groups": groupsBundle(t, groupTableV1)})
	if err != nil {
		t.Fatal(err)
	}
	if !a.Status().Cacheable {
		t.Fatalf("role rules defeat the decision cache: %v", a.Status().CacheNotes)
	}
	target := &authorization.CallTarget{APIName: apiStart, Namespace: "payments"}
	steps := []struct {
		claims *authorization.Claims
		allow  bool
		cached bool
	}{
		{person("alice", "https://idp.example", "payments-devs"), true, false},
		{person("erin", "https://idp.example", "payments-devs"), true, true}, // same groups: the same decision
		{person("bob", "https://idp.example", "payments-viewers"), false, false},
		{person("bob", "https://other.example", "payments-devs"), false, false}, // the issuer is read: not alice's decision
	}
	for i, s := range steps {
		res, _ := a.Authorize(context.Background(), s.claims, target)
		e := log.last()
		if (res.Decision == authorization.DecisionAllow) != s.allow || e.Cached != s.cached {
			t.Errorf("step %d (%s): allow %v cached %v, want %v %v", i, s.claims.Subject, res.Decision == authorization.DecisionAllow, e.Cached, s.allow, s.cached)
		}
		if e.Cached && len(e.GrantedRoles) == 0 {
			t.Errorf("step %d: a cached decision lost its granted roles", i)
		}
	}
}

// A new group table is a new policy generation: the next call is decided by it.
func TestRoleTableReload(t *testing.T) {
	a, err := policy.NewAuthorizer(policy.Options{}, map[string]*bundle.Bundle{"groups": groupsBundle(t, groupTableV1)})
	if err != nil {
		t.Fatal(err)
	}
	alice := person("alice", "https://idp.example", "payments-devs")
	target := &authorization.CallTarget{APIName: apiStart, Namespace: "payments"}
	if res, _ := a.Authorize(context.Background(), alice, target); res.Decision != authorization.DecisionAllow {
		t.Fatalf("before: %s", res.Reason)
	}
	if err := a.SetBundle(context.Background(), "groups", groupsBundle(t, `{"payments-devs": ["payments:read"]}`)); err != nil {
		t.Fatal(err)
	}
	res, _ := a.Authorize(context.Background(), alice, target)
	if want := `StartWorkflowExecution in namespace "payments" requires write; caller has read`; res.Decision != authorization.DecisionDeny || res.Reason != want {
		t.Fatalf("after the table changed: %v %q, want deny %q", res.Decision, res.Reason, want)
	}
}

func TestCallerRoles(t *testing.T) {
	a, err := policy.NewAuthorizer(policy.Options{}, map[string]*bundle.Bundle{"groups": groupsBundle(t,
		`{"payments-devs": ["payments:write", "orders:read"], "platform": ["temporal-system:read"], "odd": ["payments:owner"]}`)})
	if err != nil {
		t.Fatal(err)
	}
	c := person("alice", "https://idp.example", "payments-devs", "platform", "odd")
	c.Namespaces["billing"] = authorization.RoleWorker
	c.Namespaces["orders"] = authorization.RoleWorker
	roles, err := a.CallerRoles(context.Background(), c, &authorization.CallTarget{APIName: apiListNS})
	if err != nil {
		t.Fatal(err)
	}
	wantNS := map[string]authorization.Role{
		"billing":  authorization.RoleWorker,
		"orders":   authorization.RoleWorker | authorization.RoleReader,
		"payments": authorization.RoleWriter,
	}
	if roles.System != authorization.RoleReader || fmt.Sprint(roles.Namespaces) != fmt.Sprint(wantNS) {
		t.Errorf("roles: system %v, namespaces %v; want %v, %v", roles.System, roles.Namespaces, authorization.RoleReader, wantNS)
	}
	if got := fmt.Sprint(roles.Granted); got != "[temporal-system:read (data.temporal.custom.groups.system_roles) orders:read (data.temporal.custom.groups.namespace_roles) payments:write (data.temporal.custom.groups.namespace_roles)]" {
		t.Errorf("granted: %s", got)
	}
	// Without role rules: the claims' roles.
	plain, err := policy.NewAuthorizer(policy.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	roles, err = plain.CallerRoles(context.Background(), c, nil)
	if err != nil || roles.System != 0 || len(roles.Namespaces) != 2 || roles.Granted != nil {
		t.Errorf("without role rules: %+v, %v", roles, err)
	}
	if roles, err := a.CallerRoles(context.Background(), nil, nil); err != nil || len(roles.Namespaces) != 0 || roles.Granted != nil {
		t.Errorf("no claims: %+v, %v", roles, err)
	}
}

// Bundles with their own roots below temporal/custom are active together: a
// role bundle's grants count in another bundle's rules that read held_roles.
func TestBundlesCompose(t *testing.T) {
	guard := writeBundle(t, map[string]string{
		".manifest": `{"roots": ["temporal/custom/guard"], "metadata": {"name": "guard"}}`,
		"temporal/custom/guard/guard.rego": `package temporal.custom.guard

deny contains sprintf("terminate in %s needs admin", [input.target.namespace]) if {
	input.target.method == "TerminateWorkflowExecution"
	not "admin" in data.temporal.authz.held_roles
}
`,
	})
	a, err := policy.NewAuthorizer(policy.Options{}, map[string]*bundle.Bundle{
		"groups": groupsBundle(t, `{"payments-devs": ["payments:write"], "payments-admins": ["payments:admin"]}`),
		"guard":  guard,
	})
	if err != nil {
		t.Fatal(err)
	}
	terminate := &authorization.CallTarget{APIName: apiTerm, Namespace: "payments"}
	if res, _ := a.Authorize(context.Background(), person("a", "https://idp.example", "payments-devs"), terminate); res.Reason != "terminate in payments needs admin" {
		t.Errorf("writer: %v %q", res.Decision, res.Reason)
	}
	if res, _ := a.Authorize(context.Background(), person("b", "https://idp.example", "payments-admins"), terminate); res.Decision != authorization.DecisionAllow {
		t.Errorf("admin by group: %v %q", res.Decision, res.Reason)
	}
}

// Two bundles whose roots overlap are refused with both names and what to do;
// the active policy stays.
func TestOverlappingBundlesAreNamed(t *testing.T) {
	rules := func(root string) *bundle.Bundle {
		return writeBundle(t, map[string]string{
			".manifest":                `{"roots": ["` + root + `"]}`,
			"temporal/custom/a/a.rego": "package temporal.custom.a\n\ndeny contains \"no\" if false\n",
		})
	}
	a, err := policy.NewAuthorizer(policy.Options{}, map[string]*bundle.Bundle{"policy/a": rules("temporal/custom/a")})
	if err != nil {
		t.Fatal(err)
	}
	err = a.SetBundle(context.Background(), "policy/b", rules("temporal/custom"))
	var ae *policy.ActivationError
	want := "bundles policy/a and policy/b have overlapping roots (temporal/custom/a and temporal/custom): each bundle must own its roots; give each its own root"
	if !errors.As(err, &ae) || ae.Stage != policy.StageLoad || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v\nwant a load error containing %q", err, want)
	}
	if revs := a.Status().Revisions; !maps.Equal(revs, map[string]string{"policy/a": "", "temporal-opa/default": ""}) {
		t.Errorf("revisions after the refusal %v, want policy/a on the default alone", revs)
	}
}

func TestCustomRuleShapesAreChecked(t *testing.T) {
	sub := func(files map[string]string) map[string]string {
		files[".manifest"] = `{"roots": ["temporal/custom/x"]}`
		return files
	}
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"deny in a sub-package must be a set", sub(map[string]string{"temporal/custom/x/x.rego": "package temporal.custom.x\n\ndeny := \"no\"\n"}),
			"data.temporal.custom.x.deny must be a set of reason strings"},
		{"allow must be a boolean", sub(map[string]string{"temporal/custom/x/x.rego": "package temporal.custom.x\n\nallow := \"yes\"\n"}),
			"data.temporal.custom.x.allow must be a boolean"},
		{"namespace_roles must map namespaces", sub(map[string]string{"temporal/custom/x/x.rego": "package temporal.custom.x\n\nnamespace_roles contains \"payments:write\"\n"}),
			"data.temporal.custom.x.namespace_roles must map namespaces to sets of role names; write it as: namespace_roles[namespace] contains"},
		{"system_roles must be a set", sub(map[string]string{"temporal/custom/x/x.rego": "package temporal.custom.x\n\nsystem_roles := \"admin\"\n"}),
			"data.temporal.custom.x.system_roles must be a set of role names"},
		{"too deep to be collected", sub(map[string]string{"temporal/custom/x/y/y.rego": "package temporal.custom.x.y\n\ndeny contains \"no\"\n"}),
			"data.temporal.custom.x.y.deny is not read by the default policy, which collects deny only from package temporal.custom and the packages directly below it; move it to package temporal.custom.x (bundle root temporal/custom/x)"},
		{"data cannot allow", sub(map[string]string{"temporal/custom/x/data.json": `{"allow": true}`}),
			"data.temporal.custom.x.allow is data; the default policy reads it as a rule of package temporal.custom.x: rename the data key"},
		{"data cannot grant", map[string]string{".manifest": customManifest, "temporal/custom/data.json": `{"namespace_roles": {"payments": ["admin"]}}`},
			"data.temporal.custom.namespace_roles is data; the default policy reads it as a rule: rename the data key"},
		{"legacy package reading held_roles", map[string]string{".manifest": customManifest, "temporal/custom/c.rego": "package temporal.custom\n\ndeny contains \"x\" if not \"admin\" in data.temporal.authz.held_roles\n"},
			"cannot be in package temporal.custom itself, nor grant the roles they read: put them in a package of their own below it, temporal.custom.<name>, with the bundle root temporal/custom/<name>"},
		{"roles from held roles", sub(map[string]string{"temporal/custom/x/x.rego": "package temporal.custom.x\n\nsystem_roles contains \"admin\" if \"write\" in data.temporal.authz.held_roles\n"}),
			"nor grant the roles they read"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := policy.NewAuthorizer(policy.Options{}, map[string]*bundle.Bundle{"b": writeBundle(t, tc.files)})
			var ae *policy.ActivationError
			if !errors.As(err, &ae) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant one containing %q", err, tc.want)
			}
		})
	}
}

// A caller identified by its client certificate alone holds the roles that
// role rules grant its SPIFFE ID, and no other.
func TestRoleRulesForCertificates(t *testing.T) {
	b := writeBundle(t, map[string]string{
		".manifest": `{"roots": ["temporal/custom/svids"]}`,
		"temporal/custom/svids/svids.rego": `package temporal.custom.svids

namespace_roles[ns] contains "write" if {
	["", "ns", ns, "sa", "worker"] = split(trim_prefix(input.claims.tls.spiffe_id, "spiffe://prod.example"), "/")
}
`,
	})
	a, err := policy.NewAuthorizer(policy.Options{}, map[string]*bundle.Bundle{"svids": b})
	if err != nil {
		t.Fatal(err)
	}
	svid := func(id string) *authorization.Claims {
		return &authorization.Claims{Subject: id, AuthType: "tls", Extensions: tokenExt{tls: map[string]any{"spiffe_id": id, "fingerprint_sha256": id}}}
	}
	tests := []struct {
		name   string
		claims *authorization.Claims
		ns     string
		reason string
	}{
		{"its namespace", svid("spiffe://prod.example/ns/payments/sa/worker"), "payments", "allowed by the default policy"},
		{"another namespace", svid("spiffe://prod.example/ns/payments/sa/worker"), "orders", `StartWorkflowExecution in namespace "orders" requires write; caller spiffe://prod.example/ns/payments/sa/worker (client certificate) has no role`},
		{"another trust domain", svid("spiffe://evil.example/ns/payments/sa/worker"), "payments", `StartWorkflowExecution in namespace "payments" requires write; caller spiffe://evil.example/ns/payments/sa/worker (client certificate) has no role`},
		{"a token without a certificate", person("spiffe://prod.example/ns/payments/sa/worker", "https://idp.example"), "payments", `StartWorkflowExecution in namespace "payments" requires write; caller has no role`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := a.Decide(context.Background(), tc.claims, &authorization.CallTarget{APIName: apiStart, Namespace: tc.ns})
			if err != nil || d.Reason != tc.reason {
				t.Errorf("%+v, %v; want reason %q", d, err, tc.reason)
			}
		})
	}
}
