package grantsvc

import (
	"context"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	updatepb "go.temporal.io/api/update/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/authorization"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/grants"
)

type fakeDecider struct {
	allow bool
	ops   []string
	seen  []grants.Grant
}

func (d *fakeDecider) DecideGrant(_ context.Context, _ *authorization.Claims, op string, g grants.Grant) (policy.GrantDecision, error) {
	d.ops = append(d.ops, op)
	d.seen = append(d.seen, g)
	if !d.allow {
		return policy.GrantDecision{Reason: "not an admin of payments"}, nil
	}
	return policy.GrantDecision{Allow: true, Reason: "admin of payments"}, nil
}

type fakeStore map[string]grants.Grant

func (s fakeStore) Grant(_ context.Context, wid string) (grants.Grant, string, error) {
	g, ok := s[wid]
	if !ok {
		return g, "", serviceerror.NewNotFound("no such workflow")
	}
	return g, "run-1", nil
}

func claimsOf(sub string) *authorization.Claims {
	return &authorization.Claims{Subject: sub, AuthType: "jwt"}
}

func call(t *testing.T, ic *Interceptor, claims *authorization.Claims, method string, req any) (any, any, error) {
	t.Helper()
	ctx := context.Background()
	if claims != nil {
		ctx = context.WithValue(ctx, authorization.MappedClaims, claims)
	}
	var got any
	resp, err := ic.Intercept(ctx, req, &grpc.UnaryServerInfo{FullMethod: servicePrefix + method}, func(_ context.Context, r any) (any, error) {
		got = r
		if _, ok := r.(*workflowservice.UpdateWorkflowExecutionRequest); ok {
			return &workflowservice.UpdateWorkflowExecutionResponse{}, nil
		}
		return "ok", nil
	})
	return got, resp, err
}

func wantCode(t *testing.T, err error, code codes.Code, part string) {
	t.Helper()
	st := serviceerror.ToStatus(err)
	if st.Code() != code || !strings.Contains(st.Message(), part) {
		t.Fatalf("error %v, want %s with %q", err, code, part)
	}
}

func startRequest(t *testing.T, in RequestInput) *workflowservice.StartWorkflowExecutionRequest {
	t.Helper()
	p, err := dc.ToPayloads(in)
	if err != nil {
		t.Fatal(err)
	}
	return &workflowservice.StartWorkflowExecutionRequest{
		Namespace: "grants", WorkflowId: WorkflowID("g-1"), WorkflowType: &commonpb.WorkflowType{Name: WorkflowType},
		TaskQueue: &taskqueuepb.TaskQueue{Name: TaskQueue}, Input: p, RequestId: "r-1",
		SearchAttributes: &commonpb.SearchAttributes{}, CronSchedule: "* * * * *",
	}
}

func TestInterceptorStart(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	d := &fakeDecider{allow: true}
	var applied []grants.Grant
	ic := &Interceptor{Namespace: "grants", Decider: d, Now: func() time.Time { return now },
		Applied: func(g grants.Grant) { applied = append(applied, g) }}
	forged := admin
	in := RequestInput{Duration: "20s", Grant: grants.Grant{
		ID: "other", Subject: grants.Subject{Subject: "reader"}, Namespace: "payments", Role: "write", Reason: "INC-1",
		State: grants.StateActive, ApprovedBy: &forged, RequestedBy: admin, NotBefore: now.Add(-time.Hour), Expires: now.Add(time.Hour),
	}}
	got, _, err := call(t, ic, claimsOf("reader"), "StartWorkflowExecution", startRequest(t, in))
	if err != nil {
		t.Fatal(err)
	}
	r := got.(*workflowservice.StartWorkflowExecutionRequest)
	if r.GetCronSchedule() != "" || r.GetSearchAttributes() != nil || r.GetRequestId() != "r-1" || r.GetWorkflowId() != "grant-g-1" {
		t.Fatalf("start request not rebuilt: %v", r)
	}
	var sent RequestInput
	if err := dc.FromPayloads(r.GetInput(), &sent); err != nil {
		t.Fatal(err)
	}
	g := sent.Grant
	if g.ID != "g-1" || g.State != grants.StateRequested || g.ApprovedBy != nil || !g.RequestedBy.Same(reader) ||
		!g.NotBefore.Equal(now) || !g.Expires.Equal(now.Add(20*time.Second)) || !g.RequestedAt.Equal(now) {
		t.Fatalf("grant not stamped: %+v", g)
	}
	memo, err := DecodeMemo(r.GetMemo())
	if err != nil || memo.State != grants.StateRequested {
		t.Fatalf("memo %+v %v", memo, err)
	}
	if len(applied) != 1 || d.ops[0] != grants.OpRequest {
		t.Fatalf("applied %v, ops %v", applied, d.ops)
	}

	// Break glass: active at once, decided as such.
	in.Grant.BreakGlass = true
	got, _, err = call(t, ic, claimsOf("reader"), "StartWorkflowExecution", startRequest(t, in))
	if err != nil {
		t.Fatal(err)
	}
	if err := dc.FromPayloads(got.(*workflowservice.StartWorkflowExecutionRequest).GetInput(), &sent); err != nil {
		t.Fatal(err)
	}
	if sent.Grant.State != grants.StateActive || d.ops[1] != grants.OpBreakGlass {
		t.Fatalf("break glass: state %s, op %s", sent.Grant.State, d.ops[1])
	}

	// No subject: the grant is the caller's.
	noSubject := in
	noSubject.Grant.Subject = grants.Subject{}
	got, _, err = call(t, ic, claimsOf("alice"), "StartWorkflowExecution", startRequest(t, noSubject))
	if err != nil {
		t.Fatal(err)
	}
	if err := dc.FromPayloads(got.(*workflowservice.StartWorkflowExecutionRequest).GetInput(), &sent); err != nil {
		t.Fatal(err)
	}
	if sent.Grant.Subject != (grants.Subject{Subject: "alice"}) {
		t.Fatalf("subject %+v, want the caller", sent.Grant.Subject)
	}

	// Refusals.
	d.allow = false
	_, _, err = call(t, ic, claimsOf("reader"), "StartWorkflowExecution", startRequest(t, in))
	wantCode(t, err, codes.PermissionDenied, "not an admin of payments")
	bad := startRequest(t, in)
	bad.WorkflowType.Name = "Other"
	_, _, err = call(t, ic, claimsOf("reader"), "StartWorkflowExecution", bad)
	wantCode(t, err, codes.PermissionDenied, "only through `temporal-opa grant`")
	in.Duration = "-1s"
	d.allow = true
	_, _, err = call(t, ic, claimsOf("reader"), "StartWorkflowExecution", startRequest(t, in))
	wantCode(t, err, codes.InvalidArgument, "duration")
	_, _, err = call(t, ic, nil, "StartWorkflowExecution", startRequest(t, in))
	wantCode(t, err, codes.PermissionDenied, "verified caller")
	in.Duration = "1h"
	in.Grant.Subject = grants.Subject{Claim: "groups", Value: strings.Repeat("x", 2000)}
	_, _, err = call(t, ic, claimsOf("reader"), "StartWorkflowExecution", startRequest(t, in))
	wantCode(t, err, codes.InvalidArgument, "subject value: 2000 bytes")
}

func TestInterceptorUpdate(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	d := &fakeDecider{allow: true}
	stored := testGrant(now, time.Hour, false)
	var applied []grants.Grant
	ic := &Interceptor{Namespace: "grants", Decider: d, Now: func() time.Time { return now },
		Store:   func() Store { return fakeStore{"grant-g-1": stored} },
		Applied: func(g grants.Grant) { applied = append(applied, g) }}
	update := func(wid, name string, in UpdateInput) *workflowservice.UpdateWorkflowExecutionRequest {
		p, err := dc.ToPayloads(in)
		if err != nil {
			t.Fatal(err)
		}
		return &workflowservice.UpdateWorkflowExecutionRequest{Namespace: "grants",
			WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: wid},
			Request: &updatepb.Request{Meta: &updatepb.Meta{UpdateId: "u-1"}, Input: &updatepb.Input{Name: name, Args: p,
				Header: &commonpb.Header{Fields: map[string]*commonpb.Payload{"x": {}}}}}}
	}
	// The caller's By and At are overwritten.
	got, _, err := call(t, ic, claimsOf("admin"), "UpdateWorkflowExecution", update("grant-g-1", UpdateApprove, UpdateInput{By: reader, At: now.Add(time.Hour), Reason: "ok"}))
	if err != nil {
		t.Fatal(err)
	}
	r := got.(*workflowservice.UpdateWorkflowExecutionRequest)
	var in UpdateInput
	if err := dc.FromPayloads(r.GetRequest().GetInput().GetArgs(), &in); err != nil {
		t.Fatal(err)
	}
	if !in.By.Same(admin) || !in.At.Equal(now) || in.Reason != "ok" || r.GetRequest().GetInput().GetHeader() != nil ||
		r.GetWorkflowExecution().GetRunId() != "run-1" || r.GetRequest().GetMeta().GetUpdateId() != "u-1" {
		t.Fatalf("update not rebuilt: %v %+v", r, in)
	}
	if d.ops[0] != grants.OpApprove || d.seen[0].ID != "g-1" {
		t.Fatalf("decided %v on %v", d.ops, d.seen)
	}
	// Four eyes is the decider's (Authorizer.DecideGrant checks it first and
	// records the refusal): the interceptor asks it about every approval.
	d.allow = false
	_, _, err = call(t, ic, claimsOf("reader"), "UpdateWorkflowExecution", update("grant-g-1", UpdateApprove, UpdateInput{}))
	wantCode(t, err, codes.PermissionDenied, "not an admin of payments")
	if n := len(d.ops); d.ops[n-1] != grants.OpApprove {
		t.Fatalf("the self-approval was not decided: %v", d.ops)
	}
	d.allow = true
	_, _, err = call(t, ic, claimsOf("admin"), "UpdateWorkflowExecution", update("grant-nope", UpdateRevoke, UpdateInput{}))
	wantCode(t, err, codes.NotFound, "no grant nope")
	_, _, err = call(t, ic, claimsOf("admin"), "UpdateWorkflowExecution", update("grant-g-1", "other", UpdateInput{}))
	wantCode(t, err, codes.PermissionDenied, "only through")
	d.allow = false
	_, _, err = call(t, ic, claimsOf("other"), "UpdateWorkflowExecution", update("grant-g-1", UpdateRevoke, UpdateInput{}))
	wantCode(t, err, codes.PermissionDenied, "not an admin of payments")
	// Not started yet.
	ic.Store = func() Store { return nil }
	d.allow = true
	_, _, err = call(t, ic, claimsOf("admin"), "UpdateWorkflowExecution", update("grant-g-1", UpdateRevoke, UpdateInput{}))
	wantCode(t, err, codes.Unavailable, "starting")
}

func TestInterceptorOtherCalls(t *testing.T) {
	d := &fakeDecider{allow: true}
	ic := &Interceptor{Namespace: "grants", Decider: d}
	// Other namespaces and the internal principal pass untouched.
	sig := &workflowservice.SignalWorkflowExecutionRequest{Namespace: "payments"}
	if got, _, err := call(t, ic, claimsOf("reader"), "SignalWorkflowExecution", sig); err != nil || got != sig {
		t.Fatalf("other namespace: %v %v", got, err)
	}
	sig = &workflowservice.SignalWorkflowExecutionRequest{Namespace: "grants"}
	internal := &authorization.Claims{Subject: "internal", AuthType: authorization.InternalPrincipalType, System: authorization.RoleAdmin}
	if got, _, err := call(t, ic, internal, "SignalWorkflowExecution", sig); err != nil || got != sig {
		t.Fatalf("internal: %v %v", got, err)
	}
	_, _, err := call(t, ic, claimsOf("admin"), "SignalWorkflowExecution", sig)
	wantCode(t, err, codes.PermissionDenied, "only through `temporal-opa grant`")
	_, _, err = call(t, ic, claimsOf("admin"), "TerminateWorkflowExecution", &workflowservice.TerminateWorkflowExecutionRequest{Namespace: "grants"})
	wantCode(t, err, codes.PermissionDenied, "only through")

	// List: the query is kept to the grant workflows.
	for q, want := range map[string]string{
		"":                               "WorkflowType = 'temporalopa.Grant'",
		"ExecutionStatus = 'Running'":    "WorkflowType = 'temporalopa.Grant' AND (ExecutionStatus = 'Running')",
		"WorkflowId = 'a)' OR (x = 'b')": "WorkflowType = 'temporalopa.Grant' AND (WorkflowId = 'a)' OR (x = 'b'))",
	} {
		got, _, err := call(t, ic, claimsOf("reader"), "ListWorkflowExecutions", &workflowservice.ListWorkflowExecutionsRequest{Namespace: "grants", Query: q})
		if err != nil {
			t.Fatal(err)
		}
		if g := got.(*workflowservice.ListWorkflowExecutionsRequest).GetQuery(); g != want {
			t.Errorf("query %q became %q, want %q", q, g, want)
		}
	}
	for _, q := range []string{"a = 'b') OR (c = 'd'", "a = 'b", "x = 1 ORDER BY StartTime"} {
		_, _, err := call(t, ic, claimsOf("reader"), "ListWorkflowExecutions", &workflowservice.ListWorkflowExecutionsRequest{Namespace: "grants", Query: q})
		wantCode(t, err, codes.InvalidArgument, "query")
	}
	d.allow = false
	_, _, err = call(t, ic, claimsOf("reader"), "CountWorkflowExecutions", &workflowservice.CountWorkflowExecutionsRequest{Namespace: "grants"})
	wantCode(t, err, codes.PermissionDenied, "not an admin")
	if d.ops[len(d.ops)-1] != grants.OpList {
		t.Fatalf("ops %v", d.ops)
	}
}
