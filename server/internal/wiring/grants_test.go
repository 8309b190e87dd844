package wiring

import (
	"context"
	"testing"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/authorization"
)

type denyAll struct{ calls int }

func (d *denyAll) Authorize(context.Context, *authorization.Claims, *authorization.CallTarget) (authorization.Result, error) {
	d.calls++
	return authorization.Result{Decision: authorization.DecisionDeny, Reason: "policy"}, nil
}

func TestGrantsAuthorizer(t *testing.T) {
	inner := &denyAll{}
	az := grantsAuthorizer{Authorizer: inner, namespace: "grants"}
	internal := &authorization.Claims{Subject: authorization.InternalPrincipalName, AuthType: authorization.InternalPrincipalType, System: authorization.RoleAdmin}
	user := &authorization.Claims{Subject: "admin", AuthType: "jwt", System: authorization.RoleAdmin}
	for _, tc := range []struct {
		name   string
		claims *authorization.Claims
		ns     string
		allow  bool
	}{
		{"the grant service's own calls", internal, "grants", true},
		{"the internal principal elsewhere: the policy", internal, "payments", false},
		{"a user on the grants namespace: the policy", user, "grants", false},
		{"no claims: the policy", nil, "grants", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := inner.calls
			res, err := az.Authorize(context.Background(), tc.claims, &authorization.CallTarget{Namespace: tc.ns, APIName: "/temporal.api.workflowservice.v1.WorkflowService/ListWorkflowExecutions",
				Request: &workflowservice.ListWorkflowExecutionsRequest{Namespace: tc.ns}})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Decision == authorization.DecisionAllow; got != tc.allow {
				t.Fatalf("allowed %t, want %t", got, tc.allow)
			}
			if asked := inner.calls > before; asked == tc.allow {
				t.Fatalf("policy asked %t", asked)
			}
		})
	}
}

func TestGrantsAuthorizerRefusesCrossNamespaceCommands(t *testing.T) {
	inner := &denyAll{}
	az := grantsAuthorizer{Authorizer: inner, namespace: "grants"}
	user := &authorization.Claims{Subject: "w", AuthType: "jwt", System: authorization.RoleAdmin}
	res, err := az.Authorize(context.Background(), user, &authorization.CallTarget{Namespace: "grants",
		APIName: "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution",
		Request: &workflowservice.RespondWorkflowTaskCompletedRequest{Namespace: "payments"}})
	if err != nil || res.Decision != authorization.DecisionDeny || inner.calls != 0 {
		t.Fatalf("%v %v (policy asked %d times), want a deny without the policy", res, err, inner.calls)
	}
}
