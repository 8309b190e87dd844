package authzmetrics_test

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/metrics/metricstest"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/authzmetrics"
	"github.com/temporal-opa/temporal-opa/policy/grants"
)

func TestGrantSeries(t *testing.T) {
	h := metricstest.NewCaptureHandler()
	capture := h.StartCapture()
	m := authzmetrics.New(h)
	az, err := policy.NewAuthorizer(policy.Options{Recorder: m}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	g := grants.Grant{ID: "g-1", Subject: grants.Subject{Subject: "r"}, Namespace: "default", Role: "write", State: grants.StateActive,
		NotBefore: now.Add(-time.Minute), Expires: now.Add(30 * time.Minute), Reason: "INC-1", BreakGlass: true,
		RequestedBy: grants.Identity{Subject: "r"}}
	az.SetGrants([]grants.Grant{g})
	reader := &authorization.Claims{Subject: "r", AuthType: "jwt", Namespaces: map[string]authorization.Role{"default": authorization.RoleReader}}
	for range 2 {
		_, _ = az.Authorize(context.Background(), reader, &authorization.CallTarget{APIName: apiStart, Namespace: "default"})
	}
	_, _ = az.Authorize(context.Background(), reader, &authorization.CallTarget{APIName: apiList, Namespace: "default"}) // by the role, not the grant
	_, _ = az.DecideGrant(context.Background(), reader, grants.OpBreakGlass, g)
	_, _ = az.DecideGrant(context.Background(), reader, grants.OpApprove, g) // four eyes: denied
	az.RecordGrantEnded(g)
	snap := capture.Snapshot()
	h.StopCapture(capture)
	for _, c := range []struct {
		name string
		tags map[string]string
		want int
	}{
		{"temporal_opa_grant_decisions", map[string]string{"operation": "StartWorkflowExecution", "break_glass": "true"}, 2},
		{"temporal_opa_grant_decisions", map[string]string{"operation": "ListWorkflowExecutions"}, 0},
		{"temporal_opa_grant_operations", map[string]string{"operation": "break_glass", "decision": "allow"}, 1},
		{"temporal_opa_grant_operations", map[string]string{"operation": "approve", "decision": "deny"}, 1},
		{"temporal_opa_grant_operations", map[string]string{"operation": "expire"}, 1},
		{"temporal_opa_break_glass", map[string]string{"decision": "allow"}, 1},
		{"temporal_opa_decisions", map[string]string{"operation": "break_glass"}, 0},
	} {
		if got := count(snap, c.name, c.tags); got != c.want {
			t.Errorf("%s%v = %d, want %d", c.name, c.tags, got, c.want)
		}
	}
}
