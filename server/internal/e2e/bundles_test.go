package e2e

import (
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/temporal-opa/temporal-opa/server/internal/devserver"
)

// repoPath returns a path relative to the repository root.
func repoPath(t *testing.T, rel string) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..", rel)
}

// The least-privilege-workers example bundle, loaded from bundles/ as a user
// would, lets a real SDK worker holding only default:worker poll, complete
// workflow and activity tasks and heartbeat, while the same token cannot start
// a workflow. This checks the bundle's API list against what the SDK really calls.
func TestLeastPrivilegeWorkersBundle(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	s, err := devserver.Start(ctx, devserver.Options{Namespaces: []string{"default"}, Key: srv.Key(),
		Policy: repoPath(t, "bundles/least-privilege-workers")})
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
