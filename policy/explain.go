package policy

import (
	"context"
	"errors"
	"fmt"
	"github.com/temporal-opa/temporal-opa/policy/internal/projection"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/topdown"
	"go.temporal.io/server/common/authorization"
)

// customPackages are the packages an explanation keeps besides the decision's:
// the custom rules layered on the default policy.
var customPackages = []ast.Ref{customPackage}

// Explanation is a decision with the rules that produced it, for tools such as
// `temporal-opa policy explain`.
type Explanation struct {
	Decision
	// Rules are the rules that produced a value while the call was decided, in
	// the decision's package and in package temporal.custom, in the order they
	// first did, each once per value.
	Rules []RuleHit `json:"rules"`
	// Trace is OPA's evaluation trace trimmed to the modules of those packages
	// (no index, unification or backtracking steps), up to the decision;
	// topdown.PrettyTraceWithLocation prints it
	// as `opa eval --explain full` does.
	Trace []*topdown.Event `json:"-"`
}

// RuleHit is one rule that produced a value.
type RuleHit struct {
	Rule     string `json:"rule"`            // e.g. data.temporal.custom.deny
	Location string `json:"location"`        // file:row of the rule (of the else branch taken)
	Value    any    `json:"value,omitempty"` // the value or set element it produced, when known
}

// Explain decides one call like [Authorizer.Decide] and says which rules
// produced the decision: it evaluates the call with OPA's tracer and keeps the
// decision package's and package temporal.custom's part of the trace. The
// decision and the trace come from the same evaluation of the same policy.
func (a *Authorizer) Explain(ctx context.Context, claims *authorization.Claims, target *authorization.CallTarget) (Explanation, error) {
	return a.current.Load().explain(ctx, claims, target, a.callGrants(claims, target))
}

func (g *generation) explain(ctx context.Context, claims *authorization.Claims, target *authorization.CallTarget, gr *projection.Grants) (Explanation, error) {
	buf := topdown.NewBufferTracer()
	d, err := g.decideWhole(ctx, claims, target, gr, buf)
	ex := Explanation{Decision: d}
	if err != nil {
		var ee *EvalError
		if !errors.As(err, &ee) || ee.Code == CodeInvalidInput {
			return ex, err
		}
		// The policy could not decide: the trace says why.
	}
	for _, e := range *buf {
		if !keepEvent(e, g.explained) {
			continue
		}
		ex.Trace = append(ex.Trace, e)
		if e.Op == topdown.ExitOp && e.ParentID == 0 {
			break // the query has its answer; what follows is the search for more
		}
	}
	ex.Rules = ruleHits(ex.Trace)
	return ex, err
}

// explainedFiles are the files of the modules of bundles (those a generation
// compiled) in the package of decision, the decision path, and in package
// temporal.custom (and their subpackages).
func explainedFiles(bundles map[string]*bundle.Bundle, decision ast.Ref) map[string]bool {
	pkgs := append([]ast.Ref{decision[:len(decision)-1]}, customPackages...)
	files := map[string]bool{}
	for _, b := range bundles {
		for _, m := range b.Modules {
			if m.Parsed == nil || m.Parsed.Package == nil || m.Parsed.Package.Location == nil {
				continue
			}
			if slices.ContainsFunc(pkgs, func(p ast.Ref) bool { return m.Parsed.Package.Path.HasPrefix(p) }) {
				files[m.Parsed.Package.Location.File] = true
			}
		}
	}
	return files
}

// keepEvent keeps the steps of the query itself and of the explained files,
// leaving out index lookups, unifications and backtracking (Redo).
func keepEvent(e *topdown.Event, files map[string]bool) bool {
	switch e.Op {
	case topdown.IndexOp, topdown.UnifyOp, topdown.WasmOp, topdown.SaveOp, topdown.RedoOp:
		return false
	}
	if e.Location == nil || e.Location.File == "" {
		return e.ParentID == 0 // the query
	}
	return files[e.Location.File]
}

// ruleHits lists the rules that exited (produced a value) in trace.
func ruleHits(trace []*topdown.Event) []RuleHit {
	var hits []RuleHit
	seen := map[string]bool{}
	for _, e := range trace {
		r, ok := e.Node.(*ast.Rule)
		if e.Op != topdown.ExitOp || !ok || r.Module == nil {
			continue
		}
		h := RuleHit{Rule: r.Ref().GroundPrefix().String(), Location: location(r.Location)}
		if v := ruleValue(r, e.Locals); v != nil {
			if x, err := ast.JSON(v); err == nil {
				h.Value = x
			}
		}
		key := h.Rule + " " + h.Location + " " + fmt.Sprint(h.Value)
		if seen[key] {
			continue
		}
		seen[key] = true
		hits = append(hits, h)
	}
	return hits
}

// ruleValue is the set element (for `contains` rules) or the value a rule
// produced, when it is a constant or a variable bound in locals.
func ruleValue(r *ast.Rule, locals *ast.ValueMap) ast.Value {
	t := r.Head.Value
	if r.Head.RuleKind() == ast.MultiValue {
		t = r.Head.Key
	}
	if t == nil {
		return nil
	}
	if t.IsGround() {
		return t.Value
	}
	if locals == nil {
		return nil
	}
	v, ok := plug(t.Value, locals)
	if !ok {
		return nil
	}
	return v
}

// plug returns v with the variables bound in locals replaced by their values,
// and whether the result is ground. v itself is left unchanged.
func plug(v ast.Value, locals *ast.ValueMap) (ast.Value, bool) {
	switch x := v.(type) {
	case ast.Var:
		val := locals.Get(x)
		return val, val != nil
	case *ast.Array:
		terms := make([]*ast.Term, 0, x.Len())
		ok := true
		x.Foreach(func(e *ast.Term) {
			pv, pok := plug(e.Value, locals)
			ok = ok && pok
			terms = append(terms, ast.NewTerm(pv))
		})
		return ast.NewArray(terms...), ok
	case ast.Object:
		out := ast.NewObject()
		ok := true
		x.Foreach(func(k, e *ast.Term) {
			pk, kok := plug(k.Value, locals)
			pv, vok := plug(e.Value, locals)
			ok = ok && kok && vok
			if kok && vok {
				out.Insert(ast.NewTerm(pk), ast.NewTerm(pv))
			}
		})
		return out, ok
	case ast.Set:
		out := ast.NewSet()
		ok := true
		x.Foreach(func(e *ast.Term) {
			pv, pok := plug(e.Value, locals)
			ok = ok && pok
			if pok {
				out.Add(ast.NewTerm(pv))
			}
		})
		return out, ok
	default:
		return v, ast.IsConstant(v)
	}
}

func location(loc *ast.Location) string {
	if loc == nil {
		return ""
	}
	return fmt.Sprintf("%s:%d", loc.File, loc.Row)
}
