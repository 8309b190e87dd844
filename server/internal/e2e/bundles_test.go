package e2e

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/temporal-opa/temporal-opa/server/internal/devserver"
)

// repoPath returns a path relative to the repository root, found from the
// test's working directory (not from the test binary's file paths, which
// -trimpath makes relative).
func repoPath(t testing.TB, rel string) string {
	t.Helper()
	return filepath.Join(repoRoot(t), rel)
}

// The least-privilege-workers example bundle, loaded from bundles/ as a user
// would, lets a real SDK worker holding only default:worker poll, complete
// workflow and activity tasks and heartbeat, while the same token cannot start
// a workflow. This checks the bundle's API list against what the SDK really calls.
func TestLeastPrivilegeWorkersBundle(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	s, err := devserver.Start(ctx, devserver.Options{Namespaces: []string{"default"}, Key: srv.Key(),
		Policy: []string{repoPath(t, "bundles/least-privilege-workers")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	dialS := func(perms ...string) client.Client {
		return dialAt(t, s.FrontendAddr(), "default", newTokens(s.Key(), perms...))
	}
	workerClient := dialS("default:worker")
	tq := runWorker(t, workerClient)

	_, err = workerClient.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("by-worker"), TaskQueue: tq}, Greet, "x")
	wantDenied(t, "StartWorkflowExecution with default:worker", err, "StartWorkflowExecution")

	starter := dialS("default:read", "default:write")
	run, err := starter.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("greet"), TaskQueue: tq}, Greet, "least privilege")
	wantOK(t, "StartWorkflowExecution with default:write", err)
	var got string
	wantOK(t, "workflow run by a default:worker worker", run.Get(ctx, &got))
	if got != "Hello, least privilege!" {
		t.Errorf("result %q", got)
	}
}

// With the ui-friendly-reads bundle, a namespace user may call ListNamespaces
// (the Web UI's namespace picker needs it) and the frontend answers with only
// the namespaces that user holds a role on; temporal-system readers see all.
func TestUIFriendlyReadsListsOwnNamespaces(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	s, err := devserver.Start(ctx, devserver.Options{Namespaces: []string{"default", "orders", "payments"}, Key: srv.Key(),
		Policy: []string{repoPath(t, "bundles/ui-friendly-reads")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	for _, tc := range []struct {
		name  string
		perms []string
		want  []string // sorted; nil: denied
	}{
		{"orders reader sees orders", []string{"orders:read"}, []string{"orders"}},
		{"two namespaces", []string{"orders:admin", "payments:write", "default:worker"}, []string{"orders", "payments"}},
		{"system reader sees all", []string{"temporal-system:read"}, []string{"default", "orders", "payments", "temporal-opa-grants", "temporal-system"}},
		{"worker only is denied", []string{"orders:worker"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialAt(t, s.FrontendAddr(), "default", newTokens(s.Key(), tc.perms...))
			resp, err := c.WorkflowService().ListNamespaces(ctx, &workflowservice.ListNamespacesRequest{})
			if tc.want == nil {
				wantDenied(t, "ListNamespaces", err, "ListNamespaces is a cluster API and requires read on temporal-system")
				return
			}
			wantOK(t, "ListNamespaces", err)
			var got []string
			for _, ns := range resp.GetNamespaces() {
				got = append(got, ns.GetNamespaceInfo().GetName())
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("namespaces %q, want %q", got, tc.want)
			}
		})
	}
}
