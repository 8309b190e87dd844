package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// A plan decides calls as the embedded default policy's decision rule does
// (rego/bundle/temporal/authz/authz.rego: data.temporal.authz.decision), in
// Go, for the calls that carry no time-bound grant. It is built at activation
// when the generation runs the embedded default rules unchanged at the
// default decision path; the custom rules layered on them (deny, allow and
// role rules, in package temporal.custom or one level below it) are still
// evaluated by OPA, each through the default policy's own rule that collects
// it (_custom_deny_reasons, _custom_allow_rules, granted_roles), and only when
// the policy has rules that may define it. What a plan skips is the default
// rules' evaluation by topdown, which was three quarters of a cache miss.
//
// The Rego stays the definition: `policy explain`, `eval`, replay and grant
// operations evaluate it, and TestPlanDifferential, TestParity and
// TestProjectionDifferential (generated custom rules) check that a plan decides
// every call exactly as the Rego does: allow, reason, granted roles.
type plan struct {
	deny  ast.Body // compiled `data.temporal.authz._custom_deny_reasons = x`; nil when no rule may define a custom deny
	allow ast.Body // compiled `data.temporal.authz._custom_allow_rules = x`; nil when no rule may define a custom allow
	roles ast.Body // compiled `data.temporal.authz.granted_roles = x`; nil when no rule may grant a role
	// eagerRoles: the decision query binds granted_roles (generation.roles),
	// so its errors deny even when the token's roles allow. Otherwise it is
	// evaluated where the decision rule reaches it.
	eagerRoles bool
}

var planVar = ast.Var("x")

// Extension points of calls (see authz.rego): what a custom rule may define
// in package temporal.custom or in a package directly below it.
var (
	extDeny  = []string{"deny"}
	extAllow = []string{"allow"}
	extRoles = roleRuleNames
)

// newPlan returns the plan of a generation compiled by c from the bundles all,
// or nil when the generation's decision is not the embedded default policy's.
func newPlan(c *ast.Compiler, all map[string]*bundle.Bundle, def *bundle.Bundle, decisionPath string, roles bool) (*plan, error) {
	if decisionPath != DefaultDecisionPath || all[defaultBundleName] != def {
		return nil, nil
	}
	prefix := defaultBundleName + "/"
	for name, m := range c.Modules {
		p := m.Package.Path
		if (p.HasPrefix(authzPackage) || p.HasPrefix(grantsPackage)) && !strings.HasPrefix(name, prefix) {
			return nil, nil // another bundle adds rules to the default policy's packages
		}
	}
	p := &plan{eagerRoles: roles}
	compile := func(rule string) (ast.Body, error) {
		q, err := ast.ParseBodyWithOpts(rule+" = "+string(planVar), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, err
		}
		return c.QueryCompiler().Compile(q)
	}
	var err error
	if mayDefine(c, extDeny) {
		if p.deny, err = compile("data.temporal.authz._custom_deny_reasons"); err != nil {
			return nil, err
		}
	}
	if mayDefine(c, extAllow) {
		if p.allow, err = compile("data.temporal.authz._custom_allow_rules"); err != nil {
			return nil, err
		}
	}
	if roles || mayDefine(c, extRoles) {
		if p.roles, err = compile(grantedRolesPath); err != nil {
			return nil, err
		}
	}
	return p, nil
}

var (
	authzPackage  = ast.MustParseRef("data.temporal.authz")
	grantsPackage = ast.MustParseRef("data.temporal.grants")
)

// mayDefine reports whether a rule of c may define one of the extension
// points names: data.temporal.custom.<name>, or data.temporal.custom.<pkg>.<name>
// for a package pkg directly below it. It errs on the side of yes: a rule
// whose path has a variable where a name would be, or that defines a whole
// package's document (its value may be an object with such a key), may.
func mayDefine(c *ast.Compiler, names []string) bool {
	k := len(customPackage)
	for _, m := range c.Modules {
		if !m.Package.Path.HasPrefix(customPackage) {
			continue
		}
		for _, r := range m.Rules {
			path := m.Package.Path.Extend(r.Head.Ref())
			if len(path) <= k {
				return true // defines data.temporal.custom itself
			}
			first, ok := path[k].Value.(ast.String)
			if !ok {
				return true // data.temporal.custom[x]...
			}
			if slices.Contains(extensionNames, string(first)) {
				if slices.Contains(names, string(first)) {
					return true
				}
				continue
			}
			if len(path) == k+1 {
				return true // a package's whole document
			}
			second, ok := path[k+1].Value.(ast.String)
			if !ok || slices.Contains(names, string(second)) {
				return true
			}
		}
	}
	return false
}

// Values of the default policy's decisions.
const (
	reasonDefaultAllow = "allowed by the default policy"
)

var (
	planKeyClaims      = ast.StringTerm("claims")
	planKeyTarget      = ast.StringTerm("target")
	planKeySystem      = ast.StringTerm("system")
	planKeyNamespaces  = ast.StringTerm("namespaces")
	planKeyAuthType    = ast.StringTerm("auth_type")
	planKeyTLS         = ast.StringTerm("tls")
	planKeySpiffeID    = ast.StringTerm("spiffe_id")
	planKeySubject     = ast.StringTerm("subject")
	planKeyCommonName  = ast.StringTerm("common_name")
	planKeyAPI         = ast.StringTerm("api")
	planKeyMethod      = ast.StringTerm("method")
	planKeyNamespace   = ast.StringTerm("namespace")
	planKeyScope       = ast.StringTerm("scope")
	planKeyAccess      = ast.StringTerm("access")
	planKeyHealthCheck = ast.StringTerm("health_check")
	planKeyGrants      = ast.StringTerm("grants")
	planKeyRole        = ast.StringTerm("role")
)

func roleOfRank(r int) string {
	switch r {
	case 1:
		return "worker"
	case 2:
		return "read"
	case 4:
		return "write"
	default:
		return "admin"
	}
}

// applies reports whether the plan decides input: a call that carries no
// time-bound grant (input.grants absent or empty), with the target and claims
// the server builds (strings where the default rules read strings, a boolean
// health_check, claims an object or null). Other inputs are decided by the Rego.
func (p *plan) applies(input ast.Value) bool {
	in, ok := input.(ast.Object)
	if !ok {
		return false
	}
	target, ok := termValue(in.Get(planKeyTarget)).(ast.Object)
	if !ok {
		return false
	}
	if gt := in.Get(planKeyGrants); gt != nil {
		if a, ok := gt.Value.(*ast.Array); !ok || a.Len() > 0 {
			return false
		}
	}
	for _, k := range []*ast.Term{planKeyAPI, planKeyMethod, planKeyNamespace, planKeyScope, planKeyAccess} {
		if _, ok := termValue(target.Get(k)).(ast.String); !ok {
			return false
		}
	}
	if _, ok := termValue(target.Get(planKeyHealthCheck)).(ast.Boolean); !ok {
		return false
	}
	switch c := termValue(in.Get(planKeyClaims)).(type) {
	case ast.Null:
	case ast.Object:
		if _, ok := termValue(c.Get(planKeyAuthType)).(ast.String); !ok {
			return false
		}
		if _, ok := callerOf(c); !ok {
			return false
		}
	default:
		return false
	}
	return true
}

// decide decides input (a call p applies to) as data.temporal.authz.decision
// does, evaluating the custom rules with g. The steps are the decision rule's.
func (p *plan) decide(ctx context.Context, g *generation, input ast.Value) (decided, error) {
	in := input.(ast.Object)
	target := in.Get(planKeyTarget).Value.(ast.Object)
	claims, _ := in.Get(planKeyClaims).Value.(ast.Object) // nil for null: no credentials

	var vc topdown.VirtualCache // created by the first query
	// The roles the role rules grant (granted_roles): evaluated first when
	// the decision query binds them too, else where the rules reach them.
	var (
		granted     []Grant
		grantedRank int
		rolesDone   bool
	)
	evalRoles := func() error {
		if rolesDone || p.roles == nil {
			return nil
		}
		rolesDone = true
		v, err := p.query(ctx, g, p.roles, input, &vc)
		if err != nil {
			return err
		}
		grantedRank = grantedRankOf(v)
		granted = grantsOf(ast.NewTerm(v))
		return nil
	}
	if p.eagerRoles {
		if err := evalRoles(); err != nil {
			return decided{}, err
		}
	}
	out := func(allow bool, reason string) (decided, error) {
		d := decided{allow: allow, reason: reason}
		if p.eagerRoles {
			d.granted = granted
		}
		return d, nil
	}

	// 1. Custom deny reasons override everything.
	if p.deny != nil {
		v, err := p.query(ctx, g, p.deny, input, &vc)
		if err != nil {
			return decided{}, err
		}
		if reasons := stringsOf(v); len(reasons) > 0 {
			slices.Sort(reasons)
			return out(false, strings.Join(reasons, "; "))
		}
	}

	// 2. The default rules (default_allow), in the order of their bodies.
	scope := strAt(target, planKeyScope)
	knownScope := scope == "cluster" || scope == "namespace"
	required := 8 // _required_rank
	switch strAt(target, planKeyAccess) {
	case "read":
		required = 2
	case "write":
		required = 4
	}
	var system, nsRoles ast.Value
	hasClaims := false // _has_claims
	if claims != nil {
		system = termValue(claims.Get(planKeySystem))
		hasClaims = system != nil && truthy(system)
		if scope == "namespace" {
			if nss, ok := termValue(claims.Get(planKeyNamespaces)).(ast.Object); ok {
				nsRoles = termValue(nss.Get(target.Get(planKeyNamespace)))
			}
		}
	}
	if target.Get(planKeyHealthCheck).Value.(ast.Boolean) {
		return out(true, reasonDefaultAllow)
	}
	if knownScope && (maxRank(system) >= required || (scope == "namespace" && maxRank(nsRoles) >= required)) {
		return out(true, reasonDefaultAllow)
	}
	if err := evalRoles(); err != nil {
		return decided{}, err
	}
	if knownScope && grantedRank >= required {
		return out(true, reasonDefaultAllow)
	}

	// 3. A time-bound grant: the plan applies only to calls that carry none.
	// 4. Custom allow.
	if p.allow != nil {
		v, err := p.query(ctx, g, p.allow, input, &vc)
		if err != nil {
			return decided{}, err
		}
		if rules := stringsOf(v); len(rules) > 0 {
			slices.Sort(rules)
			return out(true, "allowed by a custom rule ("+strings.Join(rules, ", ")+")")
		}
	}

	// 5. The default deny reason (_default_deny_reason; no grant notes
	// without grants).
	method := strAt(target, planKeyMethod)
	switch {
	case !hasClaims:
		return out(false, method+" requires a token: the call carried no credentials")
	case !knownScope:
		return out(false, fmt.Sprintf("unknown API %q is denied", strAt(target, planKeyAPI)))
	}
	held := max(maxRank(system), grantedRank)
	if scope == "namespace" {
		held = max(held, maxRank(nsRoles))
	}
	roles := "no role" // _caller_roles_text
	if held > 0 {
		roles = roleOfRank(held)
	}
	caller, _ := callerOf(claims)
	if scope == "cluster" {
		return out(false, fmt.Sprintf("%s is a cluster API and requires %s on temporal-system; %s has %s",
			method, roleOfRank(required), caller, roles))
	}
	return out(false, fmt.Sprintf("%s in namespace %q requires %s; %s has %s",
		method, strAt(target, planKeyNamespace), roleOfRank(required), caller, roles))
}

// callerOf is authz.rego's _caller: a caller identified by its client
// certificate alone is named by it. ok is false for certificate claims of a
// shape the server does not build (left to the Rego).
func callerOf(claims ast.Object) (caller string, ok bool) {
	if strAt(claims, planKeyAuthType) != "tls" {
		return "caller", true
	}
	tls, isObj := termValue(claims.Get(planKeyTLS)).(ast.Object)
	if !isObj {
		return "caller", termValue(claims.Get(planKeyTLS)) == nil
	}
	switch id := termValue(tls.Get(planKeySpiffeID)).(type) {
	case nil:
	case ast.String:
		if id != "" {
			return fmt.Sprintf("caller %s (client certificate)", string(id)), true
		}
	default:
		return "", false
	}
	subject, isObj := termValue(tls.Get(planKeySubject)).(ast.Object)
	if !isObj {
		return "caller", termValue(tls.Get(planKeySubject)) == nil
	}
	switch cn := termValue(subject.Get(planKeyCommonName)).(type) {
	case nil:
		return "caller", true
	case ast.String:
		return fmt.Sprintf("caller CN=%s (client certificate)", string(cn)), true
	default:
		return "", false
	}
}

// grantedRankOf is the highest rank among granted_roles' entries (v, a set
// of {"role", ...}), all of them: grantsOf keeps maxGrants.
func grantedRankOf(v ast.Value) int {
	best := 0
	if s, ok := v.(ast.Set); ok {
		s.Foreach(func(t *ast.Term) {
			if o, ok := t.Value.(ast.Object); ok {
				if r, ok := termValue(o.Get(planKeyRole)).(ast.String); ok {
					best = max(best, int(roleRank[string(r)]))
				}
			}
		})
	}
	return best
}

// query evaluates a compiled query of the plan and returns its x. The
// queries of one call share vc, as the rules of one evaluation of the
// decision share their values: the role rules, read by granted_roles and by
// custom rules through held_roles, are evaluated once.
func (p *plan) query(ctx context.Context, g *generation, body ast.Body, input ast.Value, vc *topdown.VirtualCache) (ast.Value, error) {
	if *vc == nil {
		*vc = topdown.NewVirtualCache()
	}
	rs, err := g.runShared(ctx, body, input, nil, *vc)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 || rs[0][planVar] == nil {
		return ast.NewSet(), nil
	}
	return rs[0][planVar].Value, nil
}

// maxRank is the highest rank of the known roles in v (an array or set of
// role names); 0 for none.
func maxRank(v ast.Value) int {
	best := 0
	visit := func(t *ast.Term) {
		if s, ok := t.Value.(ast.String); ok {
			best = max(best, int(roleRank[string(s)]))
		}
	}
	switch c := v.(type) {
	case *ast.Array:
		c.Foreach(visit)
	case ast.Set:
		c.Foreach(visit)
	case ast.Object:
		c.Foreach(func(_, t *ast.Term) { visit(t) })
	}
	return best
}

// stringsOf lists the strings of a set.
func stringsOf(v ast.Value) []string {
	s, ok := v.(ast.Set)
	if !ok {
		return nil
	}
	out := make([]string, 0, s.Len())
	s.Foreach(func(t *ast.Term) {
		if str, ok := t.Value.(ast.String); ok {
			out = append(out, string(str))
		}
	})
	return out
}

func termValue(t *ast.Term) ast.Value {
	if t == nil {
		return nil
	}
	return t.Value
}

func strAt(o ast.Object, key *ast.Term) string {
	if o == nil {
		return ""
	}
	s, _ := termValue(o.Get(key)).(ast.String)
	return string(s)
}

// truthy is Rego's truth of a defined value: everything but false.
func truthy(v ast.Value) bool {
	b, ok := v.(ast.Boolean)
	return !ok || bool(b)
}
