package grantsvc

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/temporal-opa/temporal-opa/policy/grants"
)

// DefaultRequestTTL is how long a request waits for an approval when
// grants.request_ttl is not set: a request not approved within it (or before
// the grant's expiry, whichever comes first) expires.
const DefaultRequestTTL = 24 * time.Hour

// GrantEndedActivity is the local activity the grant workflow runs when an
// active grant expires: it records the expiry (Authorizer.RecordGrantEnded).
const GrantEndedActivity = "temporalopa.GrantEnded"

// GrantEndRecorder records the end of a grant that no call decided (its
// expiry); *policy.Authorizer is one.
type GrantEndRecorder interface {
	RecordGrantEnded(g grants.Grant)
}

// Workflows holds the grant workflow and its activity, registered by the
// worker under WorkflowType and GrantEndedActivity.
type Workflows struct {
	// RequestTTL bounds how long a request waits for an approval (0:
	// DefaultRequestTTL). The value a grant's workflow used is recorded in its
	// history, so changing it applies to new requests only.
	RequestTTL time.Duration
	// Recorder records expiries; nil records nothing.
	Recorder GrantEndRecorder
}

// GrantEnded is the local activity recording the expiry of grant g.
func (w *Workflows) GrantEnded(g grants.Grant) error {
	if w.Recorder != nil {
		w.Recorder.RecordGrantEnded(g)
	}
	return nil
}

// errWorkflowInput is a grant workflow started with a grant it cannot hold
// (the frontend rebuilds every request, so this is a start that bypassed it).
var errWorkflowInput = errors.New("grant workflow: invalid input")

// Grant is the grant workflow: one grant, from its request (or break glass)
// to its end. Its state is the memo MemoKey (the grant as JSON), upserted on
// every change; the updates approve, deny and revoke (UpdateInput, stamped
// by the frontend) change it and return the grant after the change. A
// requested grant expires when not approved before its expiry or the request
// TTL, whichever comes first; an active one at its expiry (its timer), which
// is recorded with the local activity GrantEndedActivity. The workflow
// completes, returning the final grant, once the grant is denied, revoked or
// expired.
func (w *Workflows) Grant(ctx workflow.Context, in RequestInput) (grants.Grant, error) {
	g := in.Grant
	if workflow.GetInfo(ctx).ParentWorkflowExecution != nil {
		// Grants are started by the frontend alone, never as a child of
		// another workflow (which skips the frontend's checks).
		err := fmt.Errorf("%w: a grant workflow cannot be a child workflow", errWorkflowInput)
		return g, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidGrant", err)
	}
	if err := checkStart(g); err != nil {
		return g, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidGrant", err)
	}
	logger := workflow.GetLogger(ctx)
	var ttl time.Duration
	// The TTL in force when the request was made, recorded so that a replay
	// after a configuration change takes the same path.
	if err := workflow.SideEffect(ctx, func(workflow.Context) any {
		if w.RequestTTL > 0 {
			return w.RequestTTL
		}
		return DefaultRequestTTL
	}).Get(&ttl); err != nil {
		return g, fmt.Errorf("grant workflow: request TTL: %w", err)
	}
	if err := upsert(ctx, g); err != nil {
		return g, err
	}

	handlers := []struct {
		name  string
		check func(in UpdateInput) error
		apply func(in UpdateInput)
	}{
		{UpdateApprove, func(in UpdateInput) error { return checkApprove(g, in, workflow.Now(ctx)) }, func(in UpdateInput) {
			by := in.By
			g.ApprovedBy, g.ApprovedAt = &by, at(ctx, in)
			g.State = grants.StateActive
		}},
		{UpdateDeny, func(in UpdateInput) error { return checkDeny(g, in) }, func(in UpdateInput) {
			g.State = grants.StateDenied
			g.EndedAt, g.EndReason = at(ctx, in), in.Reason
			by := in.By
			g.EndedBy = &by
		}},
		{UpdateRevoke, func(in UpdateInput) error { return checkRevoke(g, in) }, func(in UpdateInput) {
			g.State = grants.StateRevoked
			g.EndedAt, g.EndReason = at(ctx, in), in.Reason
			by := in.By
			g.EndedBy = &by
		}},
	}
	for _, h := range handlers {
		err := workflow.SetUpdateHandlerWithOptions(ctx, h.name,
			func(ctx workflow.Context, in UpdateInput) (grants.Grant, error) {
				// The validator ran just before, on the same state.
				h.apply(in)
				if err := upsert(ctx, g); err != nil {
					return g, err
				}
				logger.Info("grant changed", "grant", g.ID, "update", h.name, "state", g.State, "by", in.By.String())
				return g, nil
			},
			workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, in UpdateInput) error { return h.check(in) }})
		if err != nil {
			return g, fmt.Errorf("grant workflow: set update handler %s: %w", h.name, err)
		}
	}

	for !final(g.State) {
		deadline := g.Expires
		if g.State == grants.StateRequested {
			if d := g.RequestedAt.Add(ttl); d.Before(deadline) {
				deadline = d
			}
		}
		state := g.State
		wait := deadline.Sub(workflow.Now(ctx))
		changed := true
		if wait > 0 {
			var err error
			changed, err = workflow.AwaitWithTimeout(ctx, wait, func() bool { return g.State != state })
			if err != nil {
				return g, fmt.Errorf("grant workflow: wait: %w", err)
			}
		} else {
			changed = false
		}
		if changed {
			continue
		}
		// The deadline passed with no change: the grant (or its request) expired.
		wasActive := g.State == grants.StateActive
		g.State = grants.StateExpired
		g.EndedAt = workflow.Now(ctx)
		if !wasActive {
			g.EndReason = "not approved in time"
		}
		if err := upsert(ctx, g); err != nil {
			return g, err
		}
		logger.Info("grant expired", "grant", g.ID, "was_active", wasActive)
		if wasActive {
			lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
				StartToCloseTimeout: 10 * time.Second,
				RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
			})
			if err := workflow.ExecuteLocalActivity(lctx, GrantEndedActivity, g).Get(ctx, nil); err != nil {
				// The grant is expired whatever the record says: log and go on.
				logger.Warn("grant expiry not recorded", "grant", g.ID, "error", err)
			}
		}
	}
	// Let an update that is finishing return before the workflow completes.
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return g, fmt.Errorf("grant workflow: wait for handlers: %w", err)
	}
	return g, nil
}

// at is the update's time (the frontend's clock), or the workflow's when unset.
func at(ctx workflow.Context, in UpdateInput) time.Time {
	if in.At.IsZero() {
		return workflow.Now(ctx)
	}
	return in.At
}

func upsert(ctx workflow.Context, g grants.Grant) error {
	if err := workflow.UpsertMemo(ctx, map[string]any{MemoKey: g}); err != nil {
		return fmt.Errorf("grant workflow: upsert memo: %w", err)
	}
	return nil
}

func final(s grants.State) bool {
	return s != grants.StateRequested && s != grants.StateActive
}

// checkStart checks the grant a workflow starts with: valid, requested, or
// active as a break glass, with a verified requester.
func checkStart(g grants.Grant) error {
	if err := g.Validate(); err != nil {
		return fmt.Errorf("%w: %w", errWorkflowInput, err)
	}
	switch {
	case g.RequestedBy.Subject == "":
		return fmt.Errorf("%w: no verified requester", errWorkflowInput)
	case g.RequestedAt.IsZero():
		return fmt.Errorf("%w: no request time", errWorkflowInput)
	case g.State == grants.StateRequested && !g.BreakGlass && g.ApprovedBy == nil:
	case g.State == grants.StateActive && g.BreakGlass && g.ApprovedBy == nil:
	default:
		return fmt.Errorf("%w: a grant starts requested, or active as a break glass, without an approver (state %q, break glass %t)",
			errWorkflowInput, g.State, g.BreakGlass)
	}
	return nil
}

// checkBy refuses an update without a verified caller.
func checkBy(in UpdateInput) error {
	if in.By.Subject == "" {
		return errors.New("no verified caller")
	}
	return nil
}

// fourEyes refuses the requester, and the subject when it names one caller.
func fourEyes(g grants.Grant, by grants.Identity, op string) error {
	if by.Same(g.RequestedBy) {
		return fmt.Errorf("%s cannot %s grant %s: they requested it (a second person must)", by, op, g.ID)
	}
	if g.Subject.Claim == "" && g.Subject.Covers(by, nil) {
		return fmt.Errorf("%s cannot %s grant %s: it is theirs (a second person must)", by, op, g.ID)
	}
	return nil
}

func checkApprove(g grants.Grant, in UpdateInput, now time.Time) error {
	if err := checkBy(in); err != nil {
		return err
	}
	switch {
	case g.State == grants.StateRequested:
	case g.State == grants.StateActive && g.BreakGlass && g.ApprovedBy == nil:
	case g.State == grants.StateActive:
		return fmt.Errorf("grant %s is already approved", g.ID)
	default:
		return fmt.Errorf("grant %s is %s: only a requested grant (or a break glass, after the fact) can be approved", g.ID, g.State)
	}
	if !now.Before(g.Expires) {
		return fmt.Errorf("grant %s is expired", g.ID)
	}
	return fourEyes(g, in.By, "approve")
}

func checkDeny(g grants.Grant, in UpdateInput) error {
	if err := checkBy(in); err != nil {
		return err
	}
	if g.State != grants.StateRequested {
		return fmt.Errorf("grant %s is %s: only a requested grant can be denied (revoke an active one)", g.ID, g.State)
	}
	return fourEyes(g, in.By, "deny")
}

func checkRevoke(g grants.Grant, in UpdateInput) error {
	if err := checkBy(in); err != nil {
		return err
	}
	if final(g.State) {
		return fmt.Errorf("grant %s is already %s", g.ID, g.State)
	}
	return nil
}
