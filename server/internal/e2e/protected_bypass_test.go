package e2e

import (
	"context"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/temporal-opa/temporal-opa/server/internal/devserver"
)

// With the protected-namespaces bundle, a writer in a protected namespace
// cannot end a running workflow without TerminateWorkflowExecution either:
// a start, signal-with-start or update-with-start whose workflow-id policy
// terminates the running workflow of the same id, and a schedule whose
// overlap policy terminates its running workflow, are denied with the
// bundle's reason through a real SDK client, and the workflow keeps running.
// The writer's ordinary starts, schedules and triggers still work, and an
// admin of the namespace may terminate-and-start.
func TestProtectedNamespacesBundleBlocksTerminatingStarts(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	s, err := devserver.Start(ctx, devserver.Options{Namespaces: []string{"default", "production"}, Key: srv.Key(),
		Policy: []string{repoPath(t, "bundles/protected-namespaces")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	// The bundle reads the request at fixed paths: its decisions are cached.
	if st := s.Authorizer().Status(); !st.Cacheable || !st.UsesRequest {
		t.Errorf("with the bundle: cacheable %v, uses the request %v; want both", st.Cacheable, st.UsesRequest)
	}
	writer := dialAt(t, s.FrontendAddr(), "production", newTokens(s.Key(), "production:write"))
	admin := dialAt(t, s.FrontendAddr(), "production", newTokens(s.Key(), "production:admin"))

	// A workflow no worker polls for: it stays running until something ends it.
	const workflowType = "LongRunning"
	tq := randomName("tq")
	id := randomName("order")
	run, err := writer.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: tq}, workflowType)
	wantOK(t, "writer's ordinary StartWorkflowExecution", err)
	stillRunning := func(t *testing.T) {
		t.Helper()
		d, err := writer.DescribeWorkflowExecution(ctx, id, "")
		wantOK(t, "DescribeWorkflowExecution", err)
		info := d.GetWorkflowExecutionInfo()
		if got := info.GetStatus(); got != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING || info.GetExecution().GetRunId() != run.GetRunID() {
			first, err := writer.DescribeWorkflowExecution(ctx, id, run.GetRunID())
			wantOK(t, "DescribeWorkflowExecution of the first run", err)
			t.Fatalf("workflow %s: first run %s is %s, latest run %s is %s; want the first still running",
				id, run.GetRunID(), first.GetWorkflowExecutionInfo().GetStatus(), info.GetExecution().GetRunId(), got)
		}
	}

	const needsAdmin = `in protected namespace "production" requires admin on "production" or on temporal-system; caller has write`
	const sameID = "(terminates the running workflow of the same id)"
	terminateExisting := client.StartWorkflowOptions{ID: id, TaskQueue: tq,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING}
	terminateIfRunning := client.StartWorkflowOptions{ID: id, TaskQueue: tq,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING}
	for _, tc := range []struct {
		name string
		call func(ctx context.Context) error
		want string
	}{
		{"start with TERMINATE_EXISTING", func(ctx context.Context) error {
			_, err := writer.ExecuteWorkflow(ctx, terminateExisting, workflowType)
			return err
		}, "StartWorkflowExecution with workflow_id_conflict_policy WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING " + sameID},
		{"start with TERMINATE_IF_RUNNING", func(ctx context.Context) error {
			_, err := writer.ExecuteWorkflow(ctx, terminateIfRunning, workflowType)
			return err
		}, "StartWorkflowExecution with workflow_id_reuse_policy WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING " + sameID},
		{"signal-with-start with TERMINATE_EXISTING", func(ctx context.Context) error {
			_, err := writer.SignalWithStartWorkflow(ctx, id, "poke", nil, terminateExisting, workflowType)
			return err
		}, "SignalWithStartWorkflowExecution with workflow_id_conflict_policy WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING " + sameID},
		{"update-with-start with TERMINATE_EXISTING", func(ctx context.Context) error {
			_, err := writer.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
				StartWorkflowOperation: writer.NewWithStartWorkflowOperation(terminateExisting, workflowType),
				UpdateOptions:          client.UpdateWorkflowOptions{UpdateName: "approve", WaitForStage: client.WorkflowUpdateStageAccepted},
			})
			return err
		}, "ExecuteMultiOperation with operations[0].start_workflow.workflow_id_conflict_policy WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING " + sameID},
		{"schedule with TERMINATE_OTHER", func(ctx context.Context) error {
			_, err := writer.ScheduleClient().Create(ctx, client.ScheduleOptions{
				ID:      randomName("nightly"),
				Spec:    client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour}}},
				Action:  &client.ScheduleWorkflowAction{ID: randomName("nightly-run"), Workflow: workflowType, TaskQueue: tq},
				Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER,
				Paused:  true,
			})
			return err
		}, "CreateSchedule with schedule.policies.overlap_policy SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER (terminates the schedule's running workflow)"},
	} {
		t.Run("writer denied: "+tc.name, func(t *testing.T) {
			// Bounded: allowed, an update-with-start waits for a worker that never comes.
			callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := tc.call(callCtx); err == nil {
				t.Errorf("%s: succeeded, want PermissionDenied", tc.name)
			} else {
				wantDenied(t, tc.name, err, tc.want+" "+needsAdmin)
			}
			stillRunning(t)
		})
	}

	t.Run("writer's schedule and triggers that keep runs", func(t *testing.T) {
		h, err := writer.ScheduleClient().Create(ctx, client.ScheduleOptions{
			ID:     randomName("hourly"),
			Spec:   client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour}}},
			Action: &client.ScheduleWorkflowAction{ID: randomName("hourly-run"), Workflow: workflowType, TaskQueue: tq},
			Paused: true,
		})
		wantOK(t, "writer's CreateSchedule with the default overlap policy", err)
		t.Cleanup(func() { _ = h.Delete(ctx) }) // denied to the writer; the server is stopped anyway
		wantOK(t, "writer's trigger with SKIP", h.Trigger(ctx, client.ScheduleTriggerOptions{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP}))
		wantDenied(t, "writer's trigger with the schedule's own overlap policy", h.Trigger(ctx, client.ScheduleTriggerOptions{}),
			"PatchSchedule with patch.trigger_immediately.overlap_policy SCHEDULE_OVERLAP_POLICY_UNSPECIFIED (unset: the schedule's own overlap policy applies")
	})

	t.Run("admin terminates and starts", func(t *testing.T) {
		stillRunning(t)
		next, err := admin.ExecuteWorkflow(ctx, terminateExisting, workflowType)
		wantOK(t, "admin's StartWorkflowExecution with TERMINATE_EXISTING", err)
		if next.GetRunID() == run.GetRunID() {
			t.Fatalf("admin's start returned the running run %s, want a new run", run.GetRunID())
		}
		old, err := admin.DescribeWorkflowExecution(ctx, id, run.GetRunID())
		wantOK(t, "DescribeWorkflowExecution of the first run", err)
		if got := old.GetWorkflowExecutionInfo().GetStatus(); got != enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED {
			t.Errorf("first run: status %s, want TERMINATED", got)
		}
	})
}
