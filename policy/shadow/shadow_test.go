package shadow_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/shadow"
)

const (
	apiTerminate = "/temporal.api.workflowservice.v1.WorkflowService/TerminateWorkflowExecution"
	apiList      = "/temporal.api.workflowservice.v1.WorkflowService/ListWorkflowExecutions"
	apiStart     = "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution"
)

func bundleDir(t *testing.T, rev, rules string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		".manifest":                  `{"roots": ["temporal/custom"], "revision": "` + rev + `"}`,
		"temporal/custom/rules.rego": "package temporal.custom\n\n" + rules,
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func load(t *testing.T, dir string) *bundle.Bundle {
	t.Helper()
	b, err := policy.LoadBundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitCompared waits until the shadow compared n calls since its activation.
func waitCompared(t *testing.T, sh *shadow.Shadow, n uint64) shadow.Counters {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := sh.Counters()
		if c.Compared+c.Dropped >= n {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("the shadow compared %d of %d calls", c.Compared, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The enforced default policy allows terminate; the shadow denies it: every
// call succeeds, each terminate is counted and reported as a disagreement, and
// activating a new shadow revision restarts the counts.
func TestShadowCountsDisagreements(t *testing.T) {
	var mu sync.Mutex
	var seen []shadow.Comparison
	sh, err := shadow.New(shadow.Options{OnCompared: func(c shadow.Comparison) {
		mu.Lock()
		seen = append(seen, c)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	ctx := context.Background()
	if err := sh.Authorizer().SetBundle(ctx, "shadow", load(t, bundleDir(t, "s1", `deny contains "terminate is off" if input.target.method == "TerminateWorkflowExecution"`+"\n"))); err != nil {
		t.Fatal(err)
	}
	az, err := policy.NewAuthorizer(policy.Options{Recorder: sh}, nil)
	if err != nil {
		t.Fatal(err)
	}
	writer := &authorization.Claims{Subject: "w", Namespaces: map[string]authorization.Role{"default": authorization.RoleWriter}}
	calls := []string{apiList, apiTerminate, apiList, apiTerminate, apiTerminate, apiStart}
	for _, api := range calls {
		res, err := az.Authorize(ctx, writer, &authorization.CallTarget{APIName: api, Namespace: "default"})
		if err != nil || res.Decision != authorization.DecisionAllow {
			t.Fatalf("%s: %v %v: the shadow must not change the result", api, res.Decision, err)
		}
	}
	c := waitCompared(t, sh, uint64(len(calls)))
	if c.Compared != uint64(len(calls)) || c.AllowToDeny != 3 || c.DenyToAllow != 0 || c.Revisions["shadow"] != "s1" {
		t.Fatalf("counters %+v", c)
	}
	mu.Lock()
	disagreements := 0
	for _, cmp := range seen {
		if cmp.Disagree {
			disagreements++
			if cmp.Enforced.Target.APIName != apiTerminate || cmp.Shadow.Allow || cmp.Shadow.Reason == "" || cmp.Direction() != "allow_to_deny" {
				t.Errorf("disagreement %+v / %+v", cmp.Enforced, cmp.Shadow)
			}
		}
	}
	mu.Unlock()
	if disagreements != 3 {
		t.Fatalf("%d disagreements reported, want 3", disagreements)
	}

	// Hot reload of the shadow: counts restart for the new revision.
	if err := sh.Authorizer().SetBundle(ctx, "shadow", load(t, bundleDir(t, "s2", `deny contains "no lists" if input.target.method == "ListWorkflowExecutions"`+"\n"))); err != nil {
		t.Fatal(err)
	}
	if c := sh.Counters(); c.Compared != 0 || c.AllowToDeny != 0 || c.Revisions["shadow"] != "s2" {
		t.Fatalf("after reload: %+v", c)
	}
	_, _ = az.Authorize(ctx, writer, &authorization.CallTarget{APIName: apiList, Namespace: "default"})
	_, _ = az.Authorize(ctx, writer, &authorization.CallTarget{APIName: apiTerminate, Namespace: "default"})
	if c := waitCompared(t, sh, 2); c.AllowToDeny != 1 {
		t.Fatalf("after reload: %+v", c)
	}
}

// A shadow policy that reads the request body gets a copy of it.
func TestShadowReadsRequest(t *testing.T) {
	sh, err := shadow.New(shadow.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	ctx := context.Background()
	if err := sh.Authorizer().SetBundle(ctx, "shadow", load(t, bundleDir(t, "r1", `deny contains "no payroll" if input.request.workflow_id == "payroll"`+"\n"))); err != nil {
		t.Fatal(err)
	}
	if !sh.NeedsRequest() {
		t.Fatal("NeedsRequest is false for a policy reading input.request")
	}
	az, err := policy.NewAuthorizer(policy.Options{Recorder: sh}, nil)
	if err != nil {
		t.Fatal(err)
	}
	writer := &authorization.Claims{Subject: "w", Namespaces: map[string]authorization.Role{"default": authorization.RoleWriter}}
	for _, id := range []string{"payroll", "other"} {
		req := &workflowservice.StartWorkflowExecutionRequest{Namespace: "default", WorkflowId: id}
		_, _ = az.Authorize(ctx, writer, &authorization.CallTarget{APIName: apiStart, Namespace: "default", Request: req})
		req.WorkflowId = "changed-by-the-handler" // the shadow decides on its copy
	}
	if c := waitCompared(t, sh, 2); c.AllowToDeny != 1 || c.Errors != 0 {
		t.Fatalf("counters %+v", c)
	}
}

// When the shadow cannot keep up, events are dropped and counted, and calls
// are not delayed.
func TestShadowQueueFull(t *testing.T) {
	sh, err := shadow.New(shadow.Options{QueueSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	az, err := policy.NewAuthorizer(policy.Options{Recorder: sh, DecisionCacheSize: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	writer := &authorization.Claims{Subject: "w", Namespaces: map[string]authorization.Role{"default": authorization.RoleWriter}}
	for range 500 {
		_, _ = az.Authorize(context.Background(), writer, &authorization.CallTarget{APIName: apiList, Namespace: "default"})
	}
	c := waitCompared(t, sh, 500)
	if c.Dropped == 0 || c.Compared+c.Dropped != 500 {
		t.Fatalf("counters %+v", c)
	}
}
