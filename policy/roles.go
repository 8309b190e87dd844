package policy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy/internal/projection"
)

// Grant is one role a role rule of the policy granted a caller: a rule
// namespace_roles[ns] contains role, or system_roles contains role, in package
// temporal.custom or a package below it (temporal.custom.<name>).
type Grant struct {
	Role string `json:"role"` // worker, read, write or admin
	// Namespace is the namespace the role is held on; empty for a system role
	// (held on every namespace and on cluster APIs, as temporal-system:<role>).
	Namespace string `json:"namespace,omitempty"`
	// Rule is the rule that granted it, such as data.temporal.custom.groups.namespace_roles.
	Rule string `json:"rule"`
}

// String gives the grant as a permission claim writes it, with its rule:
// payments:write (data.temporal.custom.groups.namespace_roles).
func (g Grant) String() string {
	ns := g.Namespace
	if ns == "" {
		ns = "temporal-system"
	}
	return fmt.Sprintf("%s:%s (%s)", ns, g.Role, g.Rule)
}

const (
	// grantedRolesPath lists the grants that count for one call;
	// allGrantedRolesPath every grant of the caller, whatever the call.
	grantedRolesPath    = "data.temporal.authz.granted_roles"
	allGrantedRolesPath = "data.temporal.authz.all_granted_roles"
	grantsVar           = ast.Var("grants")

	// maxGrants bounds the grants kept for one decision (a role rule that
	// grants on thousands of namespaces is listed by CallerRoles, not here).
	maxGrants = 64
)

// roleRuleNames are the rules that grant roles, in package temporal.custom or
// one level below it.
var roleRuleNames = []string{"namespace_roles", "system_roles"}

// hasRoleRules reports whether the compiled policy has a role rule where the
// default policy collects them.
func hasRoleRules(c *ast.Compiler) bool {
	for _, m := range c.Modules {
		if customLevel(m.Package.Path) < 0 {
			continue
		}
		for _, r := range m.Rules {
			if ref := r.Head.Ref(); len(ref) > 0 {
				if name, ok := ref[0].Value.(ast.Var); ok && slices.Contains(roleRuleNames, string(name)) {
					return true
				}
			}
		}
	}
	return false
}

// customLevel is 0 for package temporal.custom, 1 for a package directly
// below it (collected by the default policy), 2 or more for deeper ones, and
// -1 for packages outside it.
func customLevel(pkg ast.Ref) int {
	if !pkg.HasPrefix(customPackage) {
		return -1
	}
	return len(pkg) - len(customPackage)
}

// grantsOf reads granted_roles' value: a set of {"role", "namespace", "rule"}.
// Entries of another shape are left out (the default policy makes none).
func grantsOf(t *ast.Term) []Grant {
	if t == nil {
		return nil
	}
	set, ok := t.Value.(ast.Set)
	if !ok || set.Len() == 0 {
		return nil
	}
	out := make([]Grant, 0, min(set.Len(), maxGrants))
	set.Until(func(e *ast.Term) bool {
		obj, ok := e.Value.(ast.Object)
		if !ok {
			return false
		}
		g := Grant{Role: stringAt(obj, "role"), Namespace: stringAt(obj, "namespace"), Rule: stringAt(obj, "rule")}
		if g.Role != "" {
			out = append(out, g)
		}
		return len(out) == maxGrants
	})
	sortGrants(out)
	return out
}

func stringAt(obj ast.Object, key string) string {
	if v := obj.Get(ast.StringTerm(key)); v != nil {
		if s, ok := v.Value.(ast.String); ok {
			return string(s)
		}
	}
	return ""
}

func sortGrants(gs []Grant) {
	slices.SortFunc(gs, func(a, b Grant) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(roleRank[a.Role], roleRank[b.Role]), cmp.Compare(a.Rule, b.Rule))
	})
}

// roleRank is Temporal's Role bit of each role name.
var roleRank = map[string]authorization.Role{
	"worker": authorization.RoleWorker,
	"read":   authorization.RoleReader,
	"write":  authorization.RoleWriter,
	"admin":  authorization.RoleAdmin,
}

// Roles are every role a caller holds: those of its claims (its token) and
// those the policy's role rules grant it, as Temporal's Role bits.
type Roles struct {
	System     authorization.Role            // held across the cluster (temporal-system)
	Namespaces map[string]authorization.Role // held per namespace
	// Granted are the role rules' grants among them (all_granted_roles), sorted.
	Granted []Grant
}

// CallerRoles returns every role the caller holds for a call to target: its
// claims' roles and every role the active policy's role rules grant it, on
// any namespace. The server trims ListNamespaces to the namespaces the caller
// holds a role on with it. It is not cached. Without role rules (or with a
// decision path other than the default's, whose policy has none the default
// rules collect) the roles are the claims' alone. On an error evaluating the
// role rules the claims' roles are returned with the error, so that a caller
// can fail closed.
func (a *Authorizer) CallerRoles(ctx context.Context, claims *authorization.Claims, target *authorization.CallTarget) (Roles, error) {
	out := Roles{Namespaces: map[string]authorization.Role{}}
	if claims == nil {
		return out, nil
	}
	out.System = claims.System
	for ns, r := range claims.Namespaces {
		out.Namespaces[ns] = r
	}
	a.addGrantRoles(&out, claims, time.Now())
	g := a.current.Load()
	if !g.roles {
		sortGrants(out.Granted)
		return out, nil
	}
	if target == nil {
		target = &authorization.CallTarget{}
	}
	in, err := projection.Whole(claims, target, nil, true)
	if err != nil {
		return out, &EvalError{Code: CodeInvalidInput, Err: err}
	}
	rs, err := g.run(ctx, g.allGrantsBody, in, nil)
	if err != nil {
		return out, err
	}
	if len(rs) != 1 {
		return out, &EvalError{Code: CodeUndefinedDecision, Err: errors.New(allGrantedRolesPath + " is undefined for this input")}
	}
	set, _ := rs[0][grantsVar].Value.(ast.Set)
	if set != nil {
		set.Foreach(func(e *ast.Term) {
			obj, ok := e.Value.(ast.Object)
			if !ok {
				return
			}
			gr := Grant{Role: stringAt(obj, "role"), Namespace: stringAt(obj, "namespace"), Rule: stringAt(obj, "rule")}
			bit, ok := roleRank[gr.Role]
			if !ok {
				return
			}
			out.Granted = append(out.Granted, gr)
			if gr.Namespace == "" {
				out.System |= bit
			} else {
				out.Namespaces[gr.Namespace] |= bit
			}
		})
	}
	sortGrants(out.Granted)
	return out, nil
}

// withRecursionHint adds a way out to a recursion error through the default
// policy's role collection: it reads every rule named like an extension point
// below package temporal.custom (data.temporal.custom[pkg].namespace_roles), so
// a rule of package temporal.custom itself that reads held_roles,
// default_allow or the decision depends on itself.
func withRecursionHint(err error) error {
	var errs ast.Errors
	if !errors.As(err, &errs) {
		return err
	}
	for _, e := range errs {
		if e.Code == ast.RecursionErr && strings.Contains(e.Message, "data.temporal.authz.") && strings.Contains(e.Message, "data.temporal.custom.") {
			return fmt.Errorf("%w (rules that read the default policy's roles or decision, such as data.temporal.authz.held_roles, cannot be in package temporal.custom itself, nor grant the roles they read: put them in a package of their own below it, temporal.custom.<name>, with the bundle root temporal/custom/<name>)", err)
		}
	}
	return err
}
