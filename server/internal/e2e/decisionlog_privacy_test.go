package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/decisionlog"
	"github.com/temporal-opa/temporal-opa/server/internal/devserver"
	"github.com/temporal-opa/temporal-opa/server/internal/testutil"
)

// privacyBundle reads the request whole, so that events carry every request
// field the erasure keeps, and quotes the workflow type of the starts it denies.
var privacyBundle = map[string]string{
	".manifest": `{"roots": ["temporal/custom"], "revision": "privacy-1"}`,
	"temporal/custom/rules.rego": `package temporal.custom

deny contains "a request this large is refused" if count(input.request) > 999

deny contains sprintf("workflow type %q may not be started", [input.request.workflow_type.name]) if {
	input.target.method == "StartWorkflowExecution"
	startswith(input.request.workflow_type.name, "Huge")
}
`,
}

// Decline is an activity that fails, naming the card in its message.
func Decline(_ context.Context, card string) error {
	return temporal.NewNonRetryableApplicationError("card "+card+" declined", "CardDeclined", nil)
}

// Charge runs Decline once and fails with its failure.
func Charge(ctx workflow.Context, card string) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	return workflow.ExecuteActivity(ctx, Decline, card).Get(ctx, nil)
}

// TestDecisionLogKeepsNoUserData: through start-dev --decision-log with a policy
// that reads requests whole, the failure messages of real SDK calls
// (RespondActivityTaskFailed, the failing workflow's command) and the token's
// claims the policy does not read are not in the events; every allowed call's
// event says which rule allowed it; a start with a 1 MiB workflow type gets a
// reason and an event of bounded size.
func TestDecisionLogKeepsNoUserData(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	consolePath := filepath.Join(t.TempDir(), "decisions.jsonl")
	console, err := os.Create(consolePath)
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close()
	s, err := devserver.Start(ctx, devserver.Options{Namespaces: []string{"default"}, Key: srv.Key(),
		Policy: []string{testutil.WriteFiles(t, privacyBundle)}, DecisionLog: console})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = s.Stop()
		}
	}()
	c := dialAt(t, s.FrontendAddr(), "default", newTokens(s.Key(), "default:read", "default:write"))
	tq := randomName("tq")
	w := worker.New(c, tq, worker.Options{})
	w.RegisterWorkflow(Charge)
	w.RegisterActivity(Decline)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	const card = "4111-card-marker-93b1"
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("charge"), TaskQueue: tq}, Charge, card)
	wantOK(t, "StartWorkflowExecution", err)
	if err := run.Get(ctx, nil); err == nil || !strings.Contains(err.Error(), card) {
		t.Fatalf("workflow result %v: want the activity's failure", err)
	}

	huge := "Huge" + strings.Repeat("x", 1<<20)
	_, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("huge"), TaskQueue: tq}, huge)
	wantDenied(t, "StartWorkflowExecution of a 1 MiB workflow type", err, `workflow type "Hugexxx`, "…(truncated, ", "(decision ")
	var pd *serviceerror.PermissionDenied
	if errors.As(err, &pd) && len(pd.Reason) > policy.MaxReasonBytes+len(" (decision 00000000-0000-0000-0000-000000000000)") {
		t.Errorf("reason of %d bytes", len(pd.Reason))
	}
	w.Stop()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true

	text, err := os.ReadFile(consolePath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(text), card) {
		t.Errorf("the card number of a failure message is in the decision log")
	}
	if strings.Contains(string(text), strings.Repeat("x", decisionlog.MaxValueBytes)) {
		t.Errorf("the decision log repeats the 1 MiB workflow type")
	}
	var failed, hugeStarts, allowed int
	for _, ev := range decodeLines(t, text) {
		if ev["decision_id"] == nil {
			continue
		}
		custom := ev["custom"].(map[string]any)
		res := ev["result"].(map[string]any)
		in, _ := ev["input"].(map[string]any)
		claims, _ := in["claims"].(map[string]any)
		if jwt, _ := claims["jwt"].(map[string]any); len(jwt) > 0 {
			t.Errorf("%s: input.claims.jwt = %v: the policy reads no claim", custom["api"], jwt)
		}
		if res["allow"] == true {
			allowed++
			if r, _ := res["reason"].(string); r == "" {
				t.Errorf("%s allowed without a reason: %v", custom["api"], res)
			}
		}
		erased, _ := custom["erased"].([]any)
		switch custom["api"] {
		case "RespondActivityTaskFailed":
			failed++
			if !containsAny(erased, "/input/request/failure/message") {
				t.Errorf("RespondActivityTaskFailed: custom.erased %v lacks the failure message", erased)
			}
		case "StartWorkflowExecution":
			if res["allow"] == true {
				continue
			}
			hugeStarts++
			if r, _ := res["reason"].(string); len(r) > policy.MaxReasonBytes+64 || !utf8.ValidString(r) {
				t.Errorf("denied start: reason of %d bytes", len(r))
			}
			if truncated, _ := custom["truncated"].([]any); !containsAny(truncated, "/input/request/workflow_type/name") {
				t.Errorf("denied start: custom.truncated = %v", truncated)
			}
		}
	}
	if failed == 0 || hugeStarts != 1 || allowed == 0 {
		t.Fatalf("events: %d RespondActivityTaskFailed, %d denied starts, %d allowed calls", failed, hugeStarts, allowed)
	}
}

func containsAny(l []any, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
