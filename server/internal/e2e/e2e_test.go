package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/common/log"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/temporal-opa/temporal-opa/server/internal/devkey"
	"github.com/temporal-opa/temporal-opa/server/internal/devserver"
)

// srv is the dev server every test of the package talks to. It is not started
// when -test.run selects no test (see testsSelected).
var srv *devserver.Server

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "start": // a service process of TestCluster
		os.Exit(runStartChild(os.Args[1:]))
	case "start-dev": // the start-dev process of TestStartDevListeners
		os.Exit(runStartDevChild(os.Args[1:]))
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if !testsSelected() {
		// Benchmarks alone (-run '^$' -bench ...): they start their own servers,
		// and an idle shared one would only take start-up time and CPU from them.
		fmt.Println("e2e: -test.run selects no test: the shared dev server is not started")
		return m.Run()
	}
	key, err := devkey.Generate()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var logger log.Logger = log.NewNoopLogger()
	if os.Getenv("TEMPORAL_OPA_E2E_LOG") != "" {
		logger = log.NewZapLogger(log.BuildZapLogger(log.Config{Level: os.Getenv("TEMPORAL_OPA_E2E_LOG"), Format: "console"}))
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err = devserver.Start(ctx, devserver.Options{
		Port:       0, // a free port
		Namespaces: []string{"default", "other"},
		Key:        key,
		Logger:     logger,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start dev server:", err)
		return 1
	}
	fmt.Printf("e2e: dev server ready at %s in %s\n", srv.FrontendAddr(), time.Since(start).Round(time.Millisecond))
	code := m.Run()
	stopStart := time.Now()
	if err := srv.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop dev server:", err)
	}
	fmt.Printf("e2e: dev server stopped in %s\n", time.Since(stopStart).Round(time.Millisecond))
	return code
}

// testsSelected reports whether the -test.run pattern may select a test of
// this package: whether its first element (before any "/") matches the name of
// a Test function declared in the package's _test.go files, which go test runs
// from the package's directory. When it cannot tell, it answers true.
func testsSelected() bool {
	pattern := flag.Lookup("test.run").Value.String()
	if pattern == "" {
		return true
	}
	first, _, _ := strings.Cut(pattern, "/")
	re, err := regexp.Compile(first)
	if err != nil {
		return true
	}
	names, err := testNames(".")
	if err != nil || len(names) == 0 {
		return true
	}
	return slices.ContainsFunc(names, re.MatchString)
}

// testNames are the names of the Test functions (not TestMain) declared in
// the _test.go files of dir.
func testNames(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	var names []string
	for _, file := range files {
		f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("list tests: %w", err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Test") && fn.Name.Name != "TestMain" {
				names = append(names, fn.Name.Name)
			}
		}
	}
	return names, nil
}

// tokens is a HeadersProvider that mints a fresh token for every call, as the
// seed sample's worker and starter do, and counts them.
type tokens struct {
	key    *devkey.Key
	sub    string
	perms  []string
	ttl    time.Duration
	minted atomic.Int64
	mu     sync.Mutex
	seen   map[string]bool
}

func newTokens(key *devkey.Key, perms ...string) *tokens {
	return &tokens{key: key, sub: "e2e-" + strings.Join(perms, "+"), perms: perms, ttl: time.Minute, seen: map[string]bool{}}
}

func (p *tokens) GetHeaders(context.Context) (map[string]string, error) {
	tok, err := p.key.Mint(devkey.Claims{Subject: p.sub, Permissions: p.perms, TTL: p.ttl})
	if err != nil {
		return nil, err
	}
	p.minted.Add(1)
	p.mu.Lock()
	p.seen[tok] = true
	p.mu.Unlock()
	return map[string]string{"Authorization": "Bearer " + tok}, nil
}

func (p *tokens) distinct() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.seen)
}

// headersProvider is the SDK's client.Options.HeadersProvider.
type headersProvider interface {
	GetHeaders(context.Context) (map[string]string, error)
}

// rawToken sends a fixed Authorization value (or none when empty).
type rawToken string

func (r rawToken) GetHeaders(context.Context) (map[string]string, error) {
	if r == "" {
		return nil, nil
	}
	return map[string]string{"Authorization": string(r)}, nil
}

// dial returns a lazy client (it connects on first use, so that a client whose
// credentials are refused can still be made) closed at the end of the test.
func dial(t *testing.T, namespace string, hp headersProvider) client.Client {
	t.Helper()
	return dialAt(t, srv.FrontendAddr(), namespace, hp)
}

// dialAt is dial against the frontend at addr.
func dialAt(t *testing.T, addr, namespace string, hp headersProvider) client.Client {
	t.Helper()
	c, err := client.NewLazyClient(client.Options{
		HostPort:        addr,
		Namespace:       namespace,
		HeadersProvider: hp,
		Logger:          quietLogger{},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func randomName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// wantDenied asserts err is Temporal's PermissionDenied (gRPC code and
// serviceerror type) and that its reason contains every part of want.
func wantDenied(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want PermissionDenied", what)
	}
	st := serviceerror.ToStatus(err) // the SDK returns serviceerror types, raw gRPC stubs status errors
	if st.Code() != codes.PermissionDenied {
		t.Fatalf("%s: gRPC code %s (%v), want PermissionDenied", what, st.Code(), err)
	}
	var pd *serviceerror.PermissionDenied
	if !errors.As(serviceerror.FromStatus(st), &pd) {
		t.Fatalf("%s: error %T (%v), want a serviceerror.PermissionDenied", what, err, err)
	}
	for _, w := range want {
		if !strings.Contains(pd.Reason, w) {
			t.Errorf("%s: reason %q, want it to contain %q (message %q)", what, pd.Reason, w, pd.Message)
		}
	}
}

func wantOK(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v (gRPC code %s), want success", what, err, serviceerror.ToStatus(err).Code())
	}
}

// Greet is the workflow of the tests: it runs one activity.
func Greet(ctx workflow.Context, name string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	var out string
	err := workflow.ExecuteActivity(ctx, Hello, name).Get(ctx, &out)
	return out, err
}

// Hello is the activity of Greet.
func Hello(ctx context.Context, name string) (string, error) {
	activity.GetLogger(ctx).Info("hello", "name", name)
	return "Hello, " + name + "!", nil
}

// runWorker starts a worker on a fresh task queue and returns the queue.
func runWorker(t *testing.T, c client.Client) string {
	t.Helper()
	tq := randomName("tq")
	w := worker.New(c, tq, worker.Options{})
	w.RegisterWorkflow(Greet)
	w.RegisterActivity(Hello)
	if err := w.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	t.Cleanup(w.Stop)
	return tq
}

// A worker and a starter holding default:read,default:write run a workflow to
// completion, each minting a new token per call.
func TestWorkerAndStarterCompleteWorkflow(t *testing.T) {
	ctx := ctxFor(t, time.Minute)
	workerTokens := newTokens(srv.Key(), "default:read", "default:write")
	starterTokens := newTokens(srv.Key(), "default:read", "default:write")
	tq := runWorker(t, dial(t, "default", workerTokens))
	starter := dial(t, "default", starterTokens)

	run, err := starter.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("greet"), TaskQueue: tq}, Greet, "Temporal")
	wantOK(t, "StartWorkflowExecution", err)
	var got string
	wantOK(t, "workflow result", run.Get(ctx, &got))
	if got != "Hello, Temporal!" {
		t.Errorf("result %q, want %q", got, "Hello, Temporal!")
	}
	desc, err := starter.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
	wantOK(t, "DescribeWorkflowExecution", err)
	if st := desc.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Errorf("status %s, want COMPLETED", st)
	}
	// Rotation: every call carried a token minted for it.
	if n, d := workerTokens.minted.Load(), workerTokens.distinct(); n < 3 || int64(d) != n {
		t.Errorf("worker minted %d tokens, %d distinct; want >= 3, all distinct", n, d)
	}
	if n := starterTokens.minted.Load(); n < 2 {
		t.Errorf("starter minted %d tokens, want >= 2", n)
	}
}

// A default:read token lists and describes, but StartWorkflowExecution is denied
// with the policy's reason.
func TestReadTokenCanListButNotStart(t *testing.T) {
	ctx := ctxFor(t, time.Minute)
	writer := dial(t, "default", newTokens(srv.Key(), "default:read", "default:write"))
	reader := dial(t, "default", newTokens(srv.Key(), "default:read"))

	// A workflow to describe; no worker needed.
	id := randomName("to-describe")
	run, err := writer.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: randomName("idle")}, Greet, "x")
	wantOK(t, "start with write", err)
	t.Cleanup(func() { _ = writer.TerminateWorkflow(context.Background(), id, "", "test over") })

	_, err = reader.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default"})
	wantOK(t, "ListWorkflowExecutions with read", err)
	_, err = reader.DescribeWorkflowExecution(ctx, id, run.GetRunID())
	wantOK(t, "DescribeWorkflowExecution with read", err)
	_, err = reader.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
	wantOK(t, "DescribeNamespace with read", err)

	_, err = reader.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("nope"), TaskQueue: "q"}, Greet, "x")
	wantDenied(t, "StartWorkflowExecution with read", err, "StartWorkflowExecution", `"default"`, "requires write", "caller has read")
	err = reader.SignalWorkflow(ctx, id, "", "sig", nil)
	wantDenied(t, "SignalWorkflowExecution with read", err, "SignalWorkflowExecution", "requires write")
}

// Callers without valid credentials for the namespace are denied; health checks
// and GetSystemInfo still answer callers without a token.
func TestDeniedCallers(t *testing.T) {
	otherKey, err := devkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	expired := newTokens(srv.Key(), "default:read", "default:write")
	expired.ttl = -time.Minute
	wrongIssuer, err := srv.Key().Mint(devkey.Claims{Subject: "x", Permissions: []string{"default:write"}, Issuer: "https://evil.example"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		hp     headersProvider
		reason []string // expected in the policy's reason; nil when the claim mapper refuses the token (generic denial)
	}{
		{"token for another namespace", newTokens(srv.Key(), "other:read", "other:write"), []string{"ListWorkflowExecutions", "requires read", "caller has no role"}},
		{"worker permission alone", newTokens(srv.Key(), "default:worker"), []string{"requires read", "caller has worker"}},
		{"no token", rawToken(""), []string{"requires a token"}},
		{"expired token", expired, nil},
		{"token signed by an unknown key", newTokens(otherKey, "default:read", "default:write"), nil},
		{"token from another issuer", rawToken("Bearer " + wrongIssuer), nil},
		{"not a JWT", rawToken("Bearer not-a-jwt"), nil},
		{"not Bearer", rawToken("Basic dXNlcjpwYXNz"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxFor(t, 30*time.Second)
			c := dial(t, "default", tc.hp)
			_, err := c.WorkflowService().ListWorkflowExecutions(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default"})
			wantDenied(t, "ListWorkflowExecutions", err, tc.reason...)
			_, err = c.WorkflowService().StartWorkflowExecution(ctx, &workflowservice.StartWorkflowExecutionRequest{
				Namespace: "default", WorkflowId: randomName("denied"), RequestId: randomName("req"),
			})
			wantDenied(t, "StartWorkflowExecution", err)
			if tc.reason == nil {
				// Refused tokens get Temporal's generic answer, with no detail for the caller.
				var pd *serviceerror.PermissionDenied
				if errors.As(err, &pd) && (pd.Reason != "" || pd.Message != "Request unauthorized.") {
					t.Errorf("refused token: message %q reason %q, want the generic \"Request unauthorized.\"", pd.Message, pd.Reason)
				}
			}
		})
	}

	t.Run("no token still gets health and GetSystemInfo", func(t *testing.T) {
		ctx := ctxFor(t, 30*time.Second)
		conn, err := grpc.NewClient(srv.FrontendAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "temporal.api.workflowservice.v1.WorkflowService"})
		wantOK(t, "health check", err)
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %s, want SERVING", resp.GetStatus())
		}
		info, err := workflowservice.NewWorkflowServiceClient(conn).GetSystemInfo(ctx, &workflowservice.GetSystemInfoRequest{})
		wantOK(t, "GetSystemInfo", err)
		if info.GetServerVersion() == "" {
			t.Error("GetSystemInfo: empty server version")
		}
		_, err = workflowservice.NewWorkflowServiceClient(conn).DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
		wantDenied(t, "DescribeNamespace without token", err, "requires a token")
	})
}

// A temporal-system:admin token registers a namespace and works in it; a token
// for that namespace then works there too, and only there.
func TestSystemAdminRegistersNamespace(t *testing.T) {
	ctx := ctxFor(t, 90*time.Second)
	ns := randomName("e2e-ns")
	admin := dial(t, "default", newTokens(srv.Key(), "temporal-system:admin"))
	user := dial(t, "default", newTokens(srv.Key(), "default:read", "default:write"))

	regReq := &workflowservice.RegisterNamespaceRequest{Namespace: ns, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)}
	_, err := user.WorkflowService().RegisterNamespace(ctx, regReq)
	wantDenied(t, "RegisterNamespace with default:write", err, "RegisterNamespace", "requires admin", "caller has no role")
	_, err = admin.WorkflowService().RegisterNamespace(ctx, regReq)
	wantOK(t, "RegisterNamespace with temporal-system:admin", err)

	_, err = admin.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: ns})
	wantOK(t, "DescribeNamespace", err)

	// The admin runs a workflow in it, as worker and as starter.
	inNS := dial(t, ns, newTokens(srv.Key(), "temporal-system:admin"))
	tq := runWorker(t, inNS)
	var run client.WorkflowRun
	for { // the new namespace reaches every service's cache within seconds
		run, err = inNS.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("greet"), TaskQueue: tq}, Greet, ns)
		var nf *serviceerror.NamespaceNotFound
		if !errors.As(err, &nf) || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	wantOK(t, "StartWorkflowExecution in the new namespace", err)
	var got string
	wantOK(t, "workflow result", run.Get(ctx, &got))
	if got != "Hello, "+ns+"!" {
		t.Errorf("result %q", got)
	}

	// A namespace token for it works; a default token does not.
	nsUser := dial(t, ns, newTokens(srv.Key(), ns+":read"))
	_, err = nsUser.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
	wantOK(t, "DescribeWorkflowExecution with "+ns+":read", err)
	defaultUserInNS := dial(t, ns, newTokens(srv.Key(), "default:read", "default:write"))
	_, err = defaultUserInNS.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
	wantDenied(t, "DescribeWorkflowExecution in "+ns+" with a default token", err, "requires read", "caller has no role")
}

// The server's own system worker reaches the internal-frontend and is authorized
// as the internal principal: deleting a namespace runs system workflows in
// temporal-system to completion. Meanwhile a client of the public port with no
// token gets nothing in temporal-system.
func TestSystemWorkflowsRunThroughInternalFrontend(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	admin := dial(t, "default", newTokens(srv.Key(), "temporal-system:admin"))
	ns := randomName("e2e-delete")
	_, err := admin.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: ns, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour),
	})
	wantOK(t, "RegisterNamespace", err)

	// The frontend starts temporal-sys-delete-namespace-workflow through the
	// internal-frontend and waits for its result, which the system worker
	// (also through the internal-frontend) produces.
	start := time.Now()
	resp, err := admin.OperatorService().DeleteNamespace(ctx, &operatorservice.DeleteNamespaceRequest{Namespace: ns})
	wantOK(t, "DeleteNamespace", err)
	if !strings.HasPrefix(resp.GetDeletedNamespace(), ns+"-deleted-") {
		t.Errorf("deleted namespace %q, want %s-deleted-...", resp.GetDeletedNamespace(), ns)
	}
	// Its child, which reclaims the resources, removes the namespace for good.
	for {
		_, err = admin.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: resp.GetDeletedNamespace()})
		var nf *serviceerror.NamespaceNotFound
		if errors.As(err, &nf) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("namespace %s still exists after %s: the system worker did not finish (last: %v)", resp.GetDeletedNamespace(), time.Since(start), err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("namespace deleted by system workflows in %s", time.Since(start).Round(time.Millisecond))

	// The delete workflow is visible, completed, in temporal-system, to the admin.
	sys := dial(t, "temporal-system", newTokens(srv.Key(), "temporal-system:admin"))
	desc, err := sys.DescribeWorkflowExecution(ctx, "temporal-sys-delete-namespace-workflow/"+ns, "")
	wantOK(t, "DescribeWorkflowExecution in temporal-system", err)
	if st := desc.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Errorf("delete-namespace workflow %s, want COMPLETED", st)
	}

	// The public port gives nothing to a caller without a token, in temporal-system or elsewhere.
	anon := dial(t, "temporal-system", rawToken(""))
	_, err = anon.DescribeWorkflowExecution(ctx, "temporal-sys-delete-namespace-workflow/"+ns, "")
	wantDenied(t, "DescribeWorkflowExecution in temporal-system without a token", err, "requires a token")
	_, err = anon.WorkflowService().StartWorkflowExecution(ctx, &workflowservice.StartWorkflowExecutionRequest{
		Namespace: "temporal-system", WorkflowId: randomName("x"), RequestId: randomName("r"),
	})
	wantDenied(t, "StartWorkflowExecution in temporal-system without a token", err)
	user := dial(t, "default", newTokens(srv.Key(), "default:read", "default:write"))
	_, err = user.OperatorService().DeleteNamespace(ctx, &operatorservice.DeleteNamespaceRequest{Namespace: "default"})
	wantDenied(t, "DeleteNamespace with default:write", err, "DeleteNamespace", "admin")

	// The internal-frontend treats every caller as the server itself: it must
	// only be reachable from this machine.
	host, _, err := net.SplitHostPort(srv.InternalFrontendAddr())
	if err != nil || !net.ParseIP(host).IsLoopback() {
		t.Errorf("internal-frontend listens on %s, want a loopback address", srv.InternalFrontendAddr())
	}
	internal, err := client.NewLazyClient(client.Options{HostPort: srv.InternalFrontendAddr(), Namespace: "temporal-system", Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer internal.Close()
	_, err = internal.DescribeWorkflowExecution(ctx, "temporal-sys-delete-namespace-workflow/"+ns, "")
	wantOK(t, "DescribeWorkflowExecution on the internal-frontend without a token (internal principal)", err)
}

// quietLogger drops the SDK's logs (its retries of denied calls are expected here).
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}

// The frontend's HTTP API goes through the same claim mapper and policy.
func TestHTTPAPIIsAuthorized(t *testing.T) {
	if srv.HTTPAddr() == "" {
		t.Fatal("the dev server has no HTTP API")
	}
	ctx := ctxFor(t, 30*time.Second)
	read, err := srv.Key().Mint(devkey.Claims{Subject: "http", Permissions: []string{"default:read"}})
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, token, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, "http://"+srv.HTTPAddr()+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := do("GET", "/api/v1/namespaces/default/workflows", "", ""); code != http.StatusForbidden {
		t.Errorf("list without a token: HTTP %d %s, want 403", code, body)
	}
	if code, body := do("GET", "/api/v1/namespaces/default/workflows", read, ""); code != http.StatusOK {
		t.Errorf("list with default:read: HTTP %d %s, want 200", code, body)
	}
	code, body := do("POST", "/api/v1/namespaces/default/workflows/"+randomName("http"), read,
		`{"workflowType": {"name": "Greet"}, "taskQueue": {"name": "idle"}}`)
	if code != http.StatusForbidden || !strings.Contains(body, "requires write") {
		t.Errorf("start with default:read: HTTP %d %s, want 403 with the policy's reason", code, body)
	}
}
