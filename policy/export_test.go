package policy

import (
	"context"
	"time"

	"go.temporal.io/server/common/authorization"
)

// PlanOutcome is one way of deciding a call in DecideBothWays.
type PlanOutcome struct {
	Allow   bool
	Reason  string
	Granted []Grant
	Grant   string
	Err     error
}

// DecideBothWays decides a call as Authorize does on a cache miss, on the
// same input document, twice: with the active generation's plan and by
// evaluating the decision rule with topdown. planned is false when the
// generation has no plan or the plan does not apply to the call (then plan
// is the zero value).
func DecideBothWays(ctx context.Context, a *Authorizer, claims *authorization.Claims, target *authorization.CallTarget) (plan, rego PlanOutcome, planned bool, err error) {
	g := a.current.Load()
	gr := a.grants.Load().forCall(claims, target.Namespace, time.Now())
	if !g.reads.ReadsGrants() {
		gr = nil
	}
	in, err := g.reads.Input(claims, target, gr)
	if err != nil {
		return plan, rego, false, err
	}
	outcome := func(d decided, err error) PlanOutcome {
		return PlanOutcome{Allow: d.allow, Reason: d.reason, Granted: d.granted, Grant: d.grant, Err: err}
	}
	d, err := g.eval(ctx, in, nil)
	rego = outcome(capReason(d), err)
	if g.plan == nil || !g.plan.applies(in) {
		return plan, rego, false, nil
	}
	pd, perr := g.plan.decide(ctx, g, in)
	return outcome(capReason(pd), perr), rego, true, nil
}

// HasPlan reports whether the active generation decides calls with a plan.
func HasPlan(a *Authorizer) bool { return a.current.Load().plan != nil }
