package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nexus-rpc/sdk-go/nexus"
	enumspb "go.temporal.io/api/enums/v1"
	nexuspb "go.temporal.io/api/nexus/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/temporal-opa/temporal-opa/server/internal/devserver"
)

// CallAllowlisted calls operation op of service "allowlist" through endpoint.
func CallAllowlisted(ctx workflow.Context, endpoint, op, in string) (string, error) {
	var out string
	err := workflow.NewNexusClient(endpoint, "allowlist").
		ExecuteOperation(ctx, op, in, workflow.NexusOperationOptions{ScheduleToCloseTimeout: time.Minute}).
		Get(ctx, &out)
	return out, err
}

// allowlistBundle copies bundles/nexus-endpoint-allowlist into a directory of
// the test, with data.json replaced by data, and returns the directory and the
// path of its data.json.
func allowlistBundle(t *testing.T, data string) (dir, dataPath string) {
	t.Helper()
	src := repoPath(t, "bundles/nexus-endpoint-allowlist")
	dir = t.TempDir()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "data.json" {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	dataPath = filepath.Join(dir, "temporal/custom/nexus_endpoint_allowlist/data.json")
	if err := os.WriteFile(dataPath, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, dataPath
}

// With the nexus-endpoint-allowlist bundle, an endpoint whose handler runs in
// namespace "payments" lists "orders" as its only caller namespace. A real
// workflow in "orders" calls an operation through it and gets the result; the
// same workflow in "shipping" cannot schedule it: its workflow task's
// RespondWorkflowTaskCompleted is denied with the bundle's reason, so the
// task times out again and again and the history never shows the operation
// scheduled, until "shipping" is added to the list. A direct call of the
// endpoint over the Nexus HTTP API with a token is refused. Last, "orders" is removed from the list while one of its
// operations is being retried: its next dispatch to the endpoint is denied
// (the check by the caller namespace of history's link) and the workflow fails
// with that reason.
func TestNexusAllowlist(t *testing.T) {
	ctx := ctxFor(t, 4*time.Minute)
	began := time.Now()
	endpoint := randomName("payments")
	dir, dataPath := allowlistBundle(t, fmt.Sprintf(`{"endpoints": {%q: ["orders"]}}`, endpoint))
	decisions := &lockedBuffer{}
	s, err := devserver.Start(ctx, devserver.Options{Namespaces: []string{"orders", "shipping", "payments"}, Key: srv.Key(),
		Policy: []string{dir}, DecisionLog: decisions})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	// The bundle reads the request at fixed paths: its decisions are cached.
	if st := s.Authorizer().Status(); !st.Cacheable || !st.UsesRequest {
		t.Errorf("with the bundle: cacheable %v, uses the request %v; want both", st.Cacheable, st.UsesRequest)
	}

	admin := dialAt(t, s.FrontendAddr(), "payments", newTokens(s.Key(), "temporal-system:admin"))
	handlerQueue := randomName("allowlist-handler")
	created, err := admin.OperatorService().CreateNexusEndpoint(ctx, &operatorservice.CreateNexusEndpointRequest{Spec: &nexuspb.EndpointSpec{
		Name: endpoint,
		Target: &nexuspb.EndpointTarget{Variant: &nexuspb.EndpointTarget_Worker_{Worker: &nexuspb.EndpointTarget_Worker{
			Namespace: "payments", TaskQueue: handlerQueue,
		}}},
	}})
	wantOK(t, "CreateNexusEndpoint", err)

	// The handler: echo, and "unavailable", which fails every attempt with a
	// retryable error and counts them.
	var unavailableCalls atomic.Int64
	unavailable := nexus.NewSyncOperation("unavailable", func(context.Context, string, nexus.StartOperationOptions) (string, error) {
		unavailableCalls.Add(1)
		return "", nexus.NewHandlerErrorf(nexus.HandlerErrorTypeUnavailable, "try again")
	})
	svc := nexus.NewService("allowlist")
	if err := svc.Register(echoOperation, unavailable); err != nil {
		t.Fatal(err)
	}
	handler := worker.New(dialAt(t, s.FrontendAddr(), "payments", newTokens(s.Key(), "payments:write")), handlerQueue, worker.Options{})
	handler.RegisterNexusService(svc)
	callerQueue := randomName("allowlist-caller")
	callers := map[string]client.Client{}
	workers := []worker.Worker{handler}
	for _, ns := range []string{"orders", "shipping"} {
		c := dialAt(t, s.FrontendAddr(), ns, newTokens(s.Key(), ns+":read", ns+":write"))
		w := worker.New(c, callerQueue, worker.Options{})
		w.RegisterWorkflow(CallAllowlisted)
		callers[ns] = c
		workers = append(workers, w)
	}
	for _, w := range workers {
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
	}
	notAllowed := func(caller string) string {
		return fmt.Sprintf(`Nexus endpoint %q does not allow caller namespace %q (allowed: "orders"); to allow it, add %q to endpoints[%q]`,
			endpoint, caller, caller, endpoint)
	}

	// allow replaces the endpoint's caller namespaces in data.json and waits
	// for the server to activate the change.
	allow := func(t *testing.T, callers string) {
		t.Helper()
		gen := s.Status().Policy.Generation
		replaceFile(t, dataPath, fmt.Sprintf(`{"endpoints": {%q: %s}}`, endpoint, callers))
		for s.Status().Policy.Generation == gen {
			if ctx.Err() != nil {
				t.Fatal("the new data.json was never activated")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	t.Run("allowed caller namespace", func(t *testing.T) {
		run, err := callers["orders"].ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("orders"), TaskQueue: callerQueue},
			CallAllowlisted, endpoint, "echo", "hi")
		wantOK(t, "StartWorkflowExecution in orders", err)
		var got string
		wantOK(t, "workflow result", run.Get(ctx, &got))
		if got != "echo: hi" {
			t.Errorf("result %q, want %q", got, "echo: hi")
		}
		// The dispatch was authorized for the internal principal, to the
		// endpoint, in the handler's namespace, and allowed.
		dispatches := findDecisions(t, decisions, "DispatchByEndpoint", "payments")
		if len(dispatches) != 1 {
			t.Fatalf("%d decisions on DispatchByEndpoint in payments, want 1", len(dispatches))
		}
		if ev := dispatches[0]; ev["result"].(map[string]any)["allow"] != true ||
			ev["custom"].(map[string]any)["subject"] != "internal" || nexusEndpointOf(ev) != endpoint {
			t.Errorf("dispatch decision: %v", ev)
		}
	})

	t.Run("caller namespace not listed", func(t *testing.T) {
		id := randomName("shipping")
		run, err := callers["shipping"].ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: callerQueue,
			WorkflowTaskTimeout: time.Second}, CallAllowlisted, endpoint, "echo", "hi")
		wantOK(t, "StartWorkflowExecution in shipping", err)
		t.Cleanup(func() { _ = callers["shipping"].TerminateWorkflow(context.Background(), id, "", "test over") })
		want := `RespondWorkflowTaskCompleted in namespace "shipping" schedules a Nexus operation (commands[0]): ` + notAllowed("shipping")
		// The worker's RespondWorkflowTaskCompleted is refused: the task times
		// out and is retried (attempts after the first are transient: history
		// shows one WorkflowTaskTimedOut), refused again every time.
		var timedOut int
		var denied []map[string]any
		deadline := time.Now().Add(time.Minute)
		for {
			timedOut = 0
			hist := callers["shipping"].GetWorkflowHistory(ctx, id, run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for hist.HasNext() {
				ev, err := hist.Next()
				wantOK(t, "GetWorkflowExecutionHistory", err)
				switch ev.GetEventType() {
				case enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
					timedOut++
				case enumspb.EVENT_TYPE_NEXUS_OPERATION_SCHEDULED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
					enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
					t.Fatalf("history has %s: the operation was scheduled", ev.GetEventType())
				}
			}
			denied = denied[:0]
			for _, ev := range findDecisions(t, decisions, "RespondWorkflowTaskCompleted", "shipping") {
				if ev["result"].(map[string]any)["allow"] == false {
					denied = append(denied, ev)
				}
			}
			if timedOut >= 1 && len(denied) >= 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("within a minute: %d WorkflowTaskTimedOut events, %d denied RespondWorkflowTaskCompleted; want 1 and 2", timedOut, len(denied))
			}
			time.Sleep(200 * time.Millisecond)
		}
		for _, ev := range denied {
			if reason := ev["result"].(map[string]any)["reason"].(string); !strings.Contains(reason, want) {
				t.Fatalf("RespondWorkflowTaskCompleted denied with %q\nwant %q", reason, want)
			}
		}
		d, err := callers["shipping"].DescribeWorkflowExecution(ctx, id, run.GetRunID())
		wantOK(t, "DescribeWorkflowExecution", err)
		if st := d.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING || len(d.GetPendingNexusOperations()) != 0 {
			t.Errorf("workflow %s with %d pending Nexus operations, want running with none", st, len(d.GetPendingNexusOperations()))
		}
		t.Logf("denied %d times (workflow task attempt %d), reason %q", len(denied), d.GetPendingWorkflowTask().GetAttempt(), denied[0]["result"].(map[string]any)["reason"])

		// Listing "shipping" (data.json is watched) lets the next attempt through.
		allow(t, `["orders", "shipping"]`)
		var got string
		wantOK(t, "workflow result once shipping is listed", run.Get(ctx, &got))
		if got != "echo: hi" {
			t.Errorf("result %q, want %q", got, "echo: hi")
		}
	})

	t.Run("direct call of the endpoint", func(t *testing.T) {
		url := "http://" + s.HTTPAddr() + "/nexus/endpoints/" + created.GetEndpoint().GetId() + "/services/allowlist/echo"
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`"direct"`))
		if err != nil {
			t.Fatal(err)
		}
		h, err := newTokens(s.Key(), "payments:write", "orders:write").GetHeaders(ctx)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", h["Authorization"])
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 2000))
		resp.Body.Close()
		const want = "by a caller other than Temporal's history service is denied by the Nexus endpoint allowlist"
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), want) {
			t.Errorf("POST %s with a token: %s %s, want 403 with %q", url, resp.Status, body, want)
		}
	})

	t.Run("caller namespace removed while its operation is retried", func(t *testing.T) {
		run, err := callers["orders"].ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("orders"), TaskQueue: callerQueue},
			CallAllowlisted, endpoint, "unavailable", "hi")
		wantOK(t, "StartWorkflowExecution in orders", err)
		for unavailableCalls.Load() == 0 {
			if ctx.Err() != nil {
				t.Fatal("the handler was never called")
			}
			time.Sleep(50 * time.Millisecond)
		}
		allow(t, `["billing"]`)
		calls := unavailableCalls.Load()
		err = run.Get(ctx, nil)
		want := fmt.Sprintf(`DispatchByEndpoint of a Nexus operation scheduled in namespace "orders": Nexus endpoint %q does not allow caller namespace "orders" (allowed: "billing")`, endpoint)
		var nexusErr *temporal.NexusOperationError
		if err == nil || !errors.As(err, &nexusErr) || !strings.Contains(err.Error(), want) {
			t.Fatalf("workflow result: %v\nwant a Nexus operation error with %q", err, want)
		}
		if after := unavailableCalls.Load(); after > calls+1 {
			t.Errorf("the handler was called %d times after the new list was active, want at most 1 (an attempt already past the check)", after-calls)
		}
		t.Logf("handler attempts before the change: %d; workflow failed with: %v", calls, err)
	})
	t.Logf("TestNexusAllowlist took %s", time.Since(began).Round(time.Millisecond))
}

// findDecisions returns the console decision-log events on method in namespace.
func findDecisions(t *testing.T, decisions *lockedBuffer, method, namespace string) []map[string]any {
	t.Helper()
	var found []map[string]any
	for _, ev := range decisions.events(t) {
		in, _ := ev["input"].(map[string]any)
		target, _ := in["target"].(map[string]any)
		if target["method"] == method && target["namespace"] == namespace {
			found = append(found, ev)
		}
	}
	return found
}

func nexusEndpointOf(ev map[string]any) string {
	target, _ := ev["input"].(map[string]any)["target"].(map[string]any)
	s, _ := target["nexus_endpoint"].(string)
	return s
}
