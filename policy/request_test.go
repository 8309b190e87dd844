package policy_test

import (
	"context"
	"github.com/open-policy-agent/opa/v1/bundle"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy"
)

func TestInputRequest(t *testing.T) {
	a := newAuthorizer(t, policy.Options{})
	if a.Status().UsesRequest {
		t.Fatal("the default policy does not read input.request, yet the authorizer builds it")
	}
	b := writeBundle(t, map[string]string{
		".manifest": customManifest,
		"temporal/custom/types.rego": `package temporal.custom

deny contains sprintf("workflow type %q is not allowed in %s", [input.request.workflow_type.name, input.target.namespace]) if {
	input.target.method == "StartWorkflowExecution"
	input.request_type == "temporal.api.workflowservice.v1.StartWorkflowExecutionRequest"
	not startswith(input.request.workflow_type.name, "payments.")
}

deny contains "start requests must name a task queue" if {
	input.target.method == "StartWorkflowExecution"
	input.request_type == "temporal.api.workflowservice.v1.StartWorkflowExecutionRequest"
	not input.request.task_queue.name
}
`,
	})
	if err := a.SetBundles(context.Background(), map[string]*bundle.Bundle{"custom": b}); err != nil {
		t.Fatal(err)
	}
	st := a.Status()
	if !st.UsesRequest || !st.Cacheable {
		t.Fatalf("status %+v: a policy reading request fields needs the request, and its decisions are cached by those fields", st)
	}
	start := func(wfType, queue string) *authorization.CallTarget {
		return &authorization.CallTarget{APIName: apiStart, Namespace: "payments", Request: &workflowservice.StartWorkflowExecutionRequest{
			Namespace:    "payments",
			WorkflowId:   "wf-1",
			WorkflowType: &commonpb.WorkflowType{Name: wfType},
			TaskQueue:    &taskqueuepb.TaskQueue{Name: queue},
		}}
	}
	tests := []struct {
		name   string
		target *authorization.CallTarget
		allow  bool
		reason string
	}{
		{"allowed type", start("payments.Charge", "q"), true, ""},
		{"other type", start("orders.Ship", "q"), false, `workflow type "orders.Ship" is not allowed in payments`},
		{"no task queue", start("payments.Charge", ""), false, "start requests must name a task queue"},
		{"cross-namespace command carries its own request type", &authorization.CallTarget{APIName: apiStart, Namespace: "payments",
			Request: &workflowservice.RespondWorkflowTaskCompletedRequest{Namespace: "orders"}}, true, ""},
		{"no request", &authorization.CallTarget{APIName: apiStart, Namespace: "payments"}, true, ""},
	}
	for _, round := range []string{"evaluated", "cached"} {
		for _, tc := range tests {
			t.Run(round+"/"+tc.name, func(t *testing.T) {
				got, err := a.Authorize(context.Background(), writer, tc.target)
				if err != nil {
					t.Fatal(err)
				}
				if (got.Decision == authorization.DecisionAllow) != tc.allow || (!tc.allow && got.Reason != tc.reason) {
					t.Fatalf("got %v %q, want allow=%v %q", got.Decision, got.Reason, tc.allow, tc.reason)
				}
			})
		}
	}
	d, err := a.Decide(context.Background(), writer, start("payments.Charge", "q"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Input["request"].(map[string]any)["workflow_id"] != "wf-1" || d.Input["request_type"] != "temporal.api.workflowservice.v1.StartWorkflowExecutionRequest" {
		t.Fatalf("input.request = %v", d.Input["request"])
	}
}
