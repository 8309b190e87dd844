package policy_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy"
)

const apiList = "/temporal.api.workflowservice.v1.WorkflowService/ListWorkflowExecutions"

// events keeps what it records.
type events struct {
	mu   sync.Mutex
	list []*policy.Event
	logs bool
}

func (r *events) Record(e *policy.Event) {
	r.mu.Lock()
	r.list = append(r.list, e)
	r.mu.Unlock()
}

func (r *events) LogsDecisions() bool { return r.logs }

// In dry-run mode every call is allowed, and recorded as the policy decided it:
// denies and errors included.
func TestDryRun(t *testing.T) {
	deny := writeBundle(t, map[string]string{
		".manifest":                 `{"roots": ["temporal/custom"]}`,
		"temporal/custom/deny.rego": "package temporal.custom\n\ndeny contains \"starts are frozen\" if input.target.method == \"StartWorkflowExecution\"\n",
	})
	conflict := writeBundle(t, map[string]string{
		".manifest": `{"roots": ["temporal/custom"]}`,
		"temporal/custom/c.rego": "package temporal.custom\n\n_x := 1 if input.target.method == \"ListWorkflowExecutions\"\n\n_x := 2 if input.target.method == \"ListWorkflowExecutions\"\n\n" +
			"deny contains \"x\" if _x == 1\n",
	})
	cases := []struct {
		name      string
		claims    *authorization.Claims
		api       string
		wantAllow bool // the policy's decision, as recorded
		wantErr   bool // the policy could not decide
	}{
		{"allowed", writer, apiList, true, false},
		{"denied by the custom rule", writer, apiStart, false, false},
		{"denied by the default", reader, apiStart, false, false},
		{"policy error", writer, apiList, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &events{logs: true}
			b := deny
			if tc.wantErr {
				b = conflict
			}
			az, err := policy.NewAuthorizer(policy.Options{Mode: policy.ModeDryRun, Recorder: rec}, numbered(b))
			if err != nil {
				t.Fatal(err)
			}
			res, err := az.Authorize(context.Background(), tc.claims, target(tc.api, "payments"))
			if err != nil || res.Decision != authorization.DecisionAllow || res.Principal == nil {
				t.Fatalf("dry run: got %v %v %v, want allowed with a principal", res.Decision, res.Principal, err)
			}
			if len(rec.list) != 1 {
				t.Fatalf("%d events", len(rec.list))
			}
			e := rec.list[0]
			if e.Mode != policy.ModeDryRun || e.Allow != tc.wantAllow || (e.Err != nil) != tc.wantErr {
				t.Fatalf("event: mode %s allow %v err %v", e.Mode, e.Allow, e.Err)
			}
			if !e.Allow && e.Reason == "" {
				t.Fatal("a dry-run deny is recorded without its reason")
			}
			if st := az.Status(); st.Mode != policy.ModeDryRun {
				t.Fatalf("status mode %q", st.Mode)
			}
		})
	}
	// Without a recorder, dry-run still allows.
	az, err := policy.NewAuthorizer(policy.Options{Mode: policy.ModeDryRun}, numbered(deny))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := az.Authorize(context.Background(), writer, target(apiStart, "payments")); err != nil || res.Decision != authorization.DecisionAllow {
		t.Fatalf("got %v %v", res.Decision, err)
	}
	if _, err := policy.NewAuthorizer(policy.Options{Mode: "permissive"}, nil); err == nil || !strings.Contains(err.Error(), `mode "permissive"`) {
		t.Fatalf("bad mode: %v", err)
	}
}

// The decision id ends a deny reason only when decisions are logged.
func TestDecisionIDInReason(t *testing.T) {
	for _, logs := range []bool{false, true} {
		rec := &events{logs: logs}
		az, err := policy.NewAuthorizer(policy.Options{Recorder: policy.Recorders(nil, rec)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, _ := az.Authorize(context.Background(), reader, target(apiStart, "payments"))
		has := strings.HasSuffix(res.Reason, "(decision "+rec.list[0].ID+")")
		if has != logs || len(rec.list[0].ID) != 36 {
			t.Errorf("logs %v: reason %q, id %q", logs, res.Reason, rec.list[0].ID)
		}
	}
}
