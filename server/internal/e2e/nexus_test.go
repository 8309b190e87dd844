package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nexus-rpc/sdk-go/nexus"
	nexuspb "go.temporal.io/api/nexus/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// echoOperation is a synchronous Nexus operation.
var echoOperation = nexus.NewSyncOperation("echo", func(_ context.Context, in string, _ nexus.StartOperationOptions) (string, error) {
	return "echo: " + in, nil
})

// CallEcho calls echoOperation of service "e2e" through endpoint.
func CallEcho(ctx workflow.Context, endpoint, in string) (string, error) {
	var out string
	err := workflow.NewNexusClient(endpoint, "e2e").
		ExecuteOperation(ctx, echoOperation, in, workflow.NexusOperationOptions{ScheduleToCloseTimeout: time.Minute}).
		Get(ctx, &out)
	return out, err
}

// A workflow calls a Nexus operation of a worker-target endpoint. Temporal's
// history service dispatches it over HTTP, to the internal-frontend's HTTP
// port in start-dev (the reason it has one: see devserver.serverConfig), with
// no token: the operation completes only if that path works, Host check
// included.
func TestNexusOperationThroughWorkerEndpoint(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	admin := dial(t, "default", newTokens(srv.Key(), "temporal-system:admin"))
	endpoint := randomName("nexus-ep")
	handlerQueue := randomName("nexus-handler")
	_, err := admin.OperatorService().CreateNexusEndpoint(ctx, &operatorservice.CreateNexusEndpointRequest{Spec: &nexuspb.EndpointSpec{
		Name: endpoint,
		Target: &nexuspb.EndpointTarget{Variant: &nexuspb.EndpointTarget_Worker_{Worker: &nexuspb.EndpointTarget_Worker{
			Namespace: "default", TaskQueue: handlerQueue,
		}}},
	}})
	wantOK(t, "CreateNexusEndpoint", err)

	c := dial(t, "default", newTokens(srv.Key(), "default:read", "default:write"))
	svc := nexus.NewService("e2e")
	if err := svc.Register(echoOperation); err != nil {
		t.Fatal(err)
	}
	handler := worker.New(c, handlerQueue, worker.Options{})
	handler.RegisterNexusService(svc)
	callerQueue := randomName("nexus-caller")
	caller := worker.New(c, callerQueue, worker.Options{})
	caller.RegisterWorkflow(CallEcho)
	for _, w := range []worker.Worker{handler, caller} {
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("nexus"), TaskQueue: callerQueue}, CallEcho, endpoint, "hi")
	wantOK(t, "StartWorkflowExecution", err)
	var got string
	wantOK(t, "workflow result", run.Get(ctx, &got))
	if got != "echo: hi" {
		t.Errorf("result %q, want %q", got, "echo: hi")
	}

	// What a web page can send (fetch no-cors, text/plain) to run that
	// operation by namespace and task queue, without a token: refused on the
	// internal-frontend's HTTP port (whose callers are all system admin; see
	// devserver.internalGuard) and on the public HTTP API.
	for _, addr := range []string{srv.InternalFrontendHTTPAddr(), srv.HTTPAddr()} {
		url := "http://" + addr + "/namespaces/default/task-queues/" + handlerQueue + "/nexus-services/e2e/echo"
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`"from a web page"`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("Origin", "http://evil.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", url, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		resp.Body.Close()
		// Refused before the worker: a request that reached it (its answer,
		// or its failure with "source":"GoSDK") ran the worker's handler.
		if resp.StatusCode != http.StatusForbidden || strings.Contains(string(body), "GoSDK") {
			t.Errorf("POST %s without a token: %s %q, want 403 before the worker", url, resp.Status, body)
		}
	}
}
