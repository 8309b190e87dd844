package e2e

import (
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/temporal-opa/temporal-opa/server/internal/devserver"
	"github.com/temporal-opa/temporal-opa/server/internal/testutil"
)

// A deny rule (issue 17's, limited to namespace APIs so that the SDK's
// GetSystemInfo goes through) that reads the namespace map through a variable it equates with
// the target namespace only inside a comprehension fires in the running
// server as it does in `temporal-opa eval`: a token holding A:write and
// B:admin cannot start a workflow in A, the first time and again from the
// decision cache (issue 17: the server allowed it and cached the allow).
func TestNamespaceMapDenyRuleFiresInServer(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	dir := testutil.WriteFiles(t, map[string]string{
		".manifest": `{"roots": ["temporal/custom"], "revision": "own-namespace"}`,
		"temporal/custom/own.rego": `package temporal.custom

# A namespace admin may act only in the namespace it administers.
deny contains "admins may act only in their own namespace" if {
	input.target.scope == "namespace"
	some ns
	"admin" in input.claims.namespaces[ns]
	count([1 | ns == input.target.namespace]) == 0
}
`,
	})
	s, err := devserver.Start(ctx, devserver.Options{Namespaces: []string{"ns-a", "ns-b"}, Key: srv.Key(), Policy: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })

	mallory := dialAt(t, s.FrontendAddr(), "ns-a", newTokens(s.Key(), "ns-a:write", "ns-b:admin"))
	for i := range 2 {
		_, err := mallory.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("own"), TaskQueue: "q"}, Greet, "x")
		wantDenied(t, "StartWorkflowExecution in ns-a with ns-a:write,ns-b:admin (call "+string(rune('1'+i))+")", err,
			"admins may act only in their own namespace")
	}
	writer := dialAt(t, s.FrontendAddr(), "ns-a", newTokens(s.Key(), "ns-a:write"))
	_, err = writer.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("own"), TaskQueue: "q"}, Greet, "x")
	wantOK(t, "StartWorkflowExecution in ns-a with ns-a:write", err)
	admin := dialAt(t, s.FrontendAddr(), "ns-b", newTokens(s.Key(), "ns-a:write", "ns-b:admin"))
	_, err = admin.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("own"), TaskQueue: "q"}, Greet, "x")
	wantOK(t, "StartWorkflowExecution in ns-b with ns-a:write,ns-b:admin", err)
}
