package grantsvc

import (
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/temporal-opa/temporal-opa/policy/grants"
)

type recorder struct {
	mu    sync.Mutex
	ended []grants.Grant
}

func (r *recorder) RecordGrantEnded(g grants.Grant) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended = append(r.ended, g)
}

var (
	reader = grants.Identity{Subject: "reader", AuthType: "jwt"}
	admin  = grants.Identity{Subject: "admin", AuthType: "jwt"}
	other  = grants.Identity{Subject: "other", AuthType: "jwt"}
)

func testGrant(start time.Time, d time.Duration, breakGlass bool) grants.Grant {
	g := grants.Grant{
		ID: "g-1", Subject: grants.Subject{Subject: "reader"}, Namespace: "payments", Role: "write",
		NotBefore: start, Expires: start.Add(d), Reason: "INC-1", State: grants.StateRequested,
		RequestedBy: reader, RequestedAt: start,
	}
	if breakGlass {
		g.BreakGlass, g.State = true, grants.StateActive
	}
	return g
}

// step is an update sent after a delay; wantErr, when set, is a part of the
// rejection's message.
type step struct {
	after   time.Duration
	update  string
	by      grants.Identity
	wantErr string
	want    grants.State // the state the update returns
}

func TestGrantWorkflow(t *testing.T) {
	cases := []struct {
		name       string
		duration   time.Duration
		breakGlass bool
		ttl        time.Duration
		steps      []step
		want       grants.State
		wantEnded  int // expiries recorded
		wantTook   time.Duration
	}{
		{name: "approve then expiry", duration: time.Hour, steps: []step{
			{after: time.Minute, update: UpdateApprove, by: admin, want: grants.StateActive},
		}, want: grants.StateExpired, wantEnded: 1, wantTook: time.Hour},
		{name: "self-approval refused", duration: time.Hour, steps: []step{
			{after: time.Minute, update: UpdateApprove, by: reader, wantErr: "requested it"},
			{after: 2 * time.Minute, update: UpdateApprove, by: admin, want: grants.StateActive},
		}, want: grants.StateExpired, wantEnded: 1, wantTook: time.Hour},
		{name: "no caller refused", duration: time.Hour, steps: []step{
			{after: time.Minute, update: UpdateApprove, wantErr: "no verified caller"},
		}, want: grants.StateExpired, wantTook: time.Hour},
		{name: "deny", duration: time.Hour, steps: []step{
			{after: time.Minute, update: UpdateDeny, by: reader, wantErr: "requested it"},
			{after: 2 * time.Minute, update: UpdateDeny, by: admin, want: grants.StateDenied},
		}, want: grants.StateDenied, wantTook: 2 * time.Minute},
		{name: "revoke active", duration: time.Hour, steps: []step{
			{after: time.Minute, update: UpdateRevoke, by: admin, wantErr: ""}, // revoke of a request withdraws it
		}, want: grants.StateRevoked, wantTook: time.Minute},
		{name: "approve, revoke, then nothing more", duration: time.Hour, steps: []step{
			{after: time.Minute, update: UpdateApprove, by: admin, want: grants.StateActive},
			{after: 2 * time.Minute, update: UpdateDeny, by: admin, wantErr: "only a requested grant can be denied"},
			{after: 3 * time.Minute, update: UpdateRevoke, by: other, want: grants.StateRevoked},
		}, want: grants.StateRevoked, wantTook: 3 * time.Minute},
		{name: "break glass then after-the-fact approval", duration: time.Hour, breakGlass: true, steps: []step{
			{after: time.Minute, update: UpdateApprove, by: reader, wantErr: "requested it"},
			{after: 2 * time.Minute, update: UpdateApprove, by: admin, want: grants.StateActive},
			{after: 3 * time.Minute, update: UpdateApprove, by: other, wantErr: "already approved"},
		}, want: grants.StateExpired, wantEnded: 1, wantTook: time.Hour},
		{name: "request TTL", duration: 48 * time.Hour, ttl: 2 * time.Hour, steps: []step{
			{after: 3 * time.Hour, update: UpdateApprove, by: admin, wantErr: "expired"},
		}, want: grants.StateExpired, wantTook: 2 * time.Hour},
		{name: "default request TTL", duration: 48 * time.Hour, want: grants.StateExpired, wantTook: DefaultRequestTTL},
		{name: "request not approved before its expiry", duration: time.Hour, ttl: 2 * time.Hour, want: grants.StateExpired, wantTook: time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var suite testsuite.WorkflowTestSuite
			env := suite.NewTestWorkflowEnvironment()
			rec := &recorder{}
			w := &Workflows{RequestTTL: tc.ttl, Recorder: rec}
			env.RegisterWorkflowWithOptions(w.Grant, workflow.RegisterOptions{Name: WorkflowType})
			env.RegisterActivityWithOptions(w.GrantEnded, activity.RegisterOptions{Name: GrantEndedActivity})
			start := env.Now()
			for i, s := range tc.steps {
				env.RegisterDelayedCallback(func() {
					env.UpdateWorkflow(s.update, "", &testsuite.TestUpdateCallback{
						OnReject: func(err error) {
							if s.wantErr == "" || !strings.Contains(err.Error(), s.wantErr) {
								t.Errorf("step %d (%s by %q): rejected: %v; want %q", i, s.update, s.by.Subject, err, s.wantErr)
							}
						},
						OnAccept: func() {
							if s.wantErr != "" {
								t.Errorf("step %d (%s by %q): accepted, want a rejection with %q", i, s.update, s.by.Subject, s.wantErr)
							}
						},
						OnComplete: func(res any, err error) {
							if err != nil {
								t.Errorf("step %d: %v", i, err)
								return
							}
							g := res.(grants.Grant)
							if s.want != "" && g.State != s.want {
								t.Errorf("step %d: state %s, want %s", i, g.State, s.want)
							}
							if s.update == UpdateApprove && (g.ApprovedBy == nil || !g.ApprovedBy.Same(s.by)) {
								t.Errorf("step %d: approved by %v, want %v", i, g.ApprovedBy, s.by)
							}
						},
					}, UpdateInput{By: s.by, At: env.Now(), Reason: "because"})
				}, s.after)
			}
			env.ExecuteWorkflow(WorkflowType, RequestInput{Grant: testGrant(start, tc.duration, tc.breakGlass)})
			if !env.IsWorkflowCompleted() {
				t.Fatal("workflow did not complete")
			}
			if err := env.GetWorkflowError(); err != nil {
				t.Fatal(err)
			}
			var g grants.Grant
			if err := env.GetWorkflowResult(&g); err != nil {
				t.Fatal(err)
			}
			if g.State != tc.want {
				t.Errorf("final state %s, want %s", g.State, tc.want)
			}
			if took := env.Now().Sub(start); took < tc.wantTook || took > tc.wantTook+time.Second {
				t.Errorf("completed after %s, want %s", took, tc.wantTook)
			}
			if len(rec.ended) != tc.wantEnded {
				t.Errorf("%d expiries recorded, want %d", len(rec.ended), tc.wantEnded)
			}
			if g.State == grants.StateDenied || g.State == grants.StateRevoked {
				if g.EndedBy == nil || g.EndReason != "because" {
					t.Errorf("ended by %v reason %q, want a caller and the reason", g.EndedBy, g.EndReason)
				}
			}
		})
	}
}

func TestGrantWorkflowRefusesBadInput(t *testing.T) {
	now := time.Now()
	approved := testGrant(now, time.Hour, false)
	approved.State = grants.StateActive
	noRequester := testGrant(now, time.Hour, false)
	noRequester.RequestedBy = grants.Identity{}
	invalid := testGrant(now, time.Hour, false)
	invalid.Reason = ""
	for name, g := range map[string]grants.Grant{"active without break glass": approved, "no requester": noRequester, "invalid": invalid} {
		t.Run(name, func(t *testing.T) {
			var suite testsuite.WorkflowTestSuite
			env := suite.NewTestWorkflowEnvironment()
			w := &Workflows{}
			env.RegisterWorkflowWithOptions(w.Grant, workflow.RegisterOptions{Name: WorkflowType})
			env.ExecuteWorkflow(WorkflowType, RequestInput{Grant: g})
			if err := env.GetWorkflowError(); err == nil {
				t.Fatal("workflow accepted the grant, want an error")
			}
		})
	}
}

func TestGrantWorkflowRefusesToBeAChild(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	w := &Workflows{}
	env.RegisterWorkflowWithOptions(w.Grant, workflow.RegisterOptions{Name: WorkflowType})
	g := testGrant(env.Now(), time.Hour, true)
	parent := func(ctx workflow.Context) error {
		var out grants.Grant
		return workflow.ExecuteChildWorkflow(ctx, WorkflowType, RequestInput{Grant: g}).Get(ctx, &out)
	}
	env.RegisterWorkflowWithOptions(parent, workflow.RegisterOptions{Name: "Parent"})
	env.ExecuteWorkflow("Parent")
	if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "child workflow") {
		t.Fatalf("error %v, want the child refused", err)
	}
}
