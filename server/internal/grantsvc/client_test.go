package grantsvc

import (
	"context"
	"errors"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/api/serviceerror"
	updatepb "go.temporal.io/api/update/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/temporal-opa/temporal-opa/policy/grants"
)

// The client is tested against a fake WorkflowService on a loopback
// listener: the requests it sends are the protocol (protocol.go), and the
// errors the frontend answers with are mapped as the CLI needs them.

const testToken = "tok-secret-1234"

// fakeService records the calls of the grant operations and answers them
// as the test sets.
type fakeService struct {
	workflowservice.UnimplementedWorkflowServiceServer

	mu       sync.Mutex
	starts   []*workflowservice.StartWorkflowExecutionRequest
	updates  []*workflowservice.UpdateWorkflowExecutionRequest
	lists    []*workflowservice.ListWorkflowExecutionsRequest
	auth     []string // the authorization header of every grant call
	startErr error
	// updateErr is the gRPC error of UpdateWorkflowExecution;
	// updateFailure the update's failure outcome; otherwise the update
	// returns updateResult.
	updateErr     error
	updateFailure string
	updateResult  *grants.Grant
	describeErr   error
	memo          *grants.Grant // Describe's memo; nil = none recorded yet
	pages         [][]*workflowpb.WorkflowExecutionInfo
	listErr       error
	systemErr     error // GetSystemInfo's, which Dial calls
}

func (f *fakeService) record(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.auth = append(f.auth, strings.Join(md.Get("authorization"), ","))
}

func (f *fakeService) GetSystemInfo(context.Context, *workflowservice.GetSystemInfoRequest) (*workflowservice.GetSystemInfoResponse, error) {
	if f.systemErr != nil {
		return nil, wire(f.systemErr)
	}
	return &workflowservice.GetSystemInfoResponse{Capabilities: &workflowservice.GetSystemInfoResponse_Capabilities{}}, nil
}

func (f *fakeService) StartWorkflowExecution(ctx context.Context, r *workflowservice.StartWorkflowExecutionRequest) (*workflowservice.StartWorkflowExecutionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record(ctx)
	f.starts = append(f.starts, r)
	if f.startErr != nil {
		return nil, wire(f.startErr)
	}
	return &workflowservice.StartWorkflowExecutionResponse{RunId: "run-1", Started: true}, nil
}

func (f *fakeService) DescribeWorkflowExecution(ctx context.Context, r *workflowservice.DescribeWorkflowExecutionRequest) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record(ctx)
	if f.describeErr != nil {
		return nil, wire(f.describeErr)
	}
	info := &workflowpb.WorkflowExecutionInfo{Execution: r.GetExecution()}
	if f.memo != nil {
		info.Memo = memoOf(f.memo)
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: info}, nil
}

func (f *fakeService) UpdateWorkflowExecution(ctx context.Context, r *workflowservice.UpdateWorkflowExecutionRequest) (*workflowservice.UpdateWorkflowExecutionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record(ctx)
	f.updates = append(f.updates, r)
	if f.updateErr != nil {
		return nil, wire(f.updateErr)
	}
	out := &updatepb.Outcome{}
	if f.updateFailure != "" {
		out.Value = &updatepb.Outcome_Failure{Failure: &failurepb.Failure{
			Message:     f.updateFailure,
			FailureInfo: &failurepb.Failure_ApplicationFailureInfo{ApplicationFailureInfo: &failurepb.ApplicationFailureInfo{Type: "GrantError"}},
		}}
	} else {
		p, err := converter.GetDefaultDataConverter().ToPayloads(f.updateResult)
		if err != nil {
			return nil, err
		}
		out.Value = &updatepb.Outcome_Success{Success: p}
	}
	return &workflowservice.UpdateWorkflowExecutionResponse{
		UpdateRef: &updatepb.UpdateRef{
			WorkflowExecution: r.GetWorkflowExecution(),
			UpdateId:          r.GetRequest().GetMeta().GetUpdateId(),
		},
		Outcome: out,
		Stage:   enumspb.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED,
	}, nil
}

func (f *fakeService) ListWorkflowExecutions(ctx context.Context, r *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record(ctx)
	f.lists = append(f.lists, r)
	if f.listErr != nil {
		return nil, wire(f.listErr)
	}
	page := 0
	if len(r.GetNextPageToken()) > 0 {
		page = int(r.GetNextPageToken()[0])
	}
	resp := &workflowservice.ListWorkflowExecutionsResponse{Executions: f.pages[page]}
	if page+1 < len(f.pages) {
		resp.NextPageToken = []byte{byte(page + 1)}
	}
	return resp, nil
}

// wire is err as the frontend sends it: a gRPC status with the service
// error's details.
func wire(err error) error { return serviceerror.ToStatus(err).Err() }

func memoOf(g *grants.Grant) *commonpb.Memo {
	p, err := converter.GetDefaultDataConverter().ToPayload(g)
	if err != nil {
		panic(err)
	}
	return &commonpb.Memo{Fields: map[string]*commonpb.Payload{MemoKey: p}}
}

// serve runs f on a loopback listener and dials it with a token.
func serve(t *testing.T, f *fakeService) *Client {
	t.Helper()
	c, err := dialFake(t, f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func dialFake(t *testing.T, f *fakeService) (*Client, error) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	workflowservice.RegisterWorkflowServiceServer(s, f)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return Dial(testCtx(t), ClientOptions{Address: lis.Addr().String(), APIKey: testToken})
}

func TestDialCredentialsRefused(t *testing.T) {
	_, err := dialFake(t, &fakeService{systemErr: serviceerror.NewPermissionDenied("Request unauthorized.", "")})
	var d *DeniedError
	if !errors.As(err, &d) || d.Op != "connect" {
		t.Fatalf("error %v (%T), want a *DeniedError of connect", err, err)
	}
	if want := "the server refused the connection: Request unauthorized. (check your token"; !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), testToken) {
		t.Errorf("message %q, want it to start %q", err, want)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var t0 = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

func recorded(id string, state grants.State) *grants.Grant {
	return &grants.Grant{
		ID: id, Subject: grants.Subject{Subject: "reader"}, Namespace: "payments", Role: "write",
		NotBefore: t0, Expires: t0.Add(2 * time.Hour), Reason: "INC-1", State: state,
		RequestedBy: grants.Identity{Subject: "reader"}, RequestedAt: t0,
	}
}

func TestRequestSendsTheProtocol(t *testing.T) {
	f := &fakeService{memo: recorded("g-1", grants.StateRequested)}
	c := serve(t, f)
	g, err := c.Request(testCtx(t), Request{ID: "g-1", Namespace: "payments", Role: "write", Duration: 2 * time.Hour, Reason: "INC-1"})
	if err != nil {
		t.Fatal(err)
	}
	if g.State != grants.StateRequested || g.RequestedBy.Subject != "reader" {
		t.Errorf("returned %+v, want the recorded grant", g)
	}
	if len(f.starts) != 1 {
		t.Fatalf("%d starts, want 1", len(f.starts))
	}
	r := f.starts[0]
	if r.GetNamespace() != DefaultNamespace || r.GetWorkflowId() != "grant-g-1" || r.GetWorkflowType().GetName() != WorkflowType || r.GetTaskQueue().GetName() != TaskQueue {
		t.Errorf("start namespace %q id %q type %q queue %q", r.GetNamespace(), r.GetWorkflowId(), r.GetWorkflowType().GetName(), r.GetTaskQueue().GetName())
	}
	if r.GetWorkflowIdReusePolicy() != enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE {
		t.Errorf("reuse policy %v: a grant id names one grant forever", r.GetWorkflowIdReusePolicy())
	}
	if n := len(r.GetInput().GetPayloads()); n != 1 {
		t.Fatalf("input has %d payloads, want one RequestInput", n)
	}
	p := r.GetInput().GetPayloads()[0]
	if enc := string(p.GetMetadata()["encoding"]); enc != "json/plain" {
		t.Errorf("input encoding %q, want json/plain", enc)
	}
	var in RequestInput
	if err := converter.GetDefaultDataConverter().FromPayload(p, &in); err != nil {
		t.Fatal(err)
	}
	if d, err := time.ParseDuration(in.Duration); err != nil || d != 2*time.Hour {
		t.Errorf("duration %q: want one time.ParseDuration reads as 2h", in.Duration)
	}
	want := grants.Grant{ID: "g-1", Namespace: "payments", Role: "write", Reason: "INC-1"}
	if in.Grant.ID != want.ID || in.Grant.Namespace != want.Namespace || in.Grant.Role != want.Role || in.Grant.Reason != want.Reason ||
		in.Grant.BreakGlass || in.Grant.Subject != (grants.Subject{}) || !in.Grant.NotBefore.IsZero() || !in.Grant.Expires.IsZero() || in.Grant.State != "" {
		t.Errorf("sent grant %+v: want id, namespace, role and reason, no subject (the caller), no times, no state", in.Grant)
	}
	for _, a := range f.auth {
		if a != "Bearer "+testToken {
			t.Errorf("authorization %q, want the API key as a bearer token", a)
		}
	}
}

func TestBreakGlassAndOptionalFields(t *testing.T) {
	f := &fakeService{memo: recorded("g-2", grants.StateActive)}
	c := serve(t, f)
	nb := t0.Add(time.Hour).In(time.FixedZone("CET", 3600))
	_, err := c.BreakGlass(testCtx(t), Request{
		Subject:   grants.Subject{Claim: "groups", Value: "sre", Issuer: "https://idp"},
		Namespace: "payments", APIs: []string{"StartWorkflowExecution", "SignalWorkflowExecution"},
		NotBefore: nb, Duration: 30 * time.Minute, Reason: "INC-2",
	})
	if err != nil {
		t.Fatal(err)
	}
	var in RequestInput
	if err := converter.GetDefaultDataConverter().FromPayload(f.starts[0].GetInput().GetPayloads()[0], &in); err != nil {
		t.Fatal(err)
	}
	if !in.Grant.BreakGlass || in.Grant.Subject.Claim != "groups" || in.Grant.Subject.Value != "sre" || in.Grant.Subject.Issuer != "https://idp" ||
		len(in.Grant.APIs) != 2 || in.Grant.Role != "" || !in.Grant.NotBefore.Equal(nb) || in.Grant.NotBefore.Location() != time.UTC {
		t.Errorf("sent %+v", in.Grant)
	}
	id := strings.TrimPrefix(f.starts[0].GetWorkflowId(), WorkflowIDPrefix)
	if !regexp.MustCompile(`^g-[a-z2-7]{8}$`).MatchString(id) || !grants.ValidID(id) {
		t.Errorf("generated id %q, want g- and 8 lower-case base32 characters", id)
	}
}

func TestRequestNotRecordedYet(t *testing.T) {
	f := &fakeService{} // the workflow records nothing
	c := serve(t, f)
	c.Wait = 200 * time.Millisecond
	g, err := c.Request(testCtx(t), Request{ID: "g-3", Namespace: "payments", Role: "read", Duration: time.Hour, Reason: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if g.ID != "g-3" || g.State != "" || g.Duration() != time.Hour {
		t.Errorf("got %+v, want the grant as sent with an empty state", g)
	}

	// A caller who may request but not read grants: the request stands.
	f.describeErr = serviceerror.NewPermissionDenied("reader may not read grants", "")
	c.Wait = time.Minute
	start := time.Now()
	g, err = c.Request(testCtx(t), Request{ID: "g-4", Namespace: "payments", Role: "read", Duration: time.Hour, Reason: "x"})
	if err != nil || g.ID != "g-4" || g.State != "" {
		t.Errorf("got %+v, %v; want the grant as sent and no error", g, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("waited %s for a grant it may not read", d)
	}
}

func TestRequestCheckedBeforeSending(t *testing.T) {
	tests := []struct {
		name string
		r    Request
		want string
	}{
		{"bad id", Request{ID: "G_1", Namespace: "p", Role: "read", Duration: time.Hour, Reason: "x"}, `id "G_1"`},
		{"no namespace", Request{Role: "read", Duration: time.Hour, Reason: "x"}, "namespace: name the namespace"},
		{"no role", Request{Namespace: "p", Duration: time.Hour, Reason: "x"}, "role: give a role"},
		{"bad role", Request{Namespace: "p", Role: "root", Duration: time.Hour, Reason: "x"}, `role "root"`},
		{"bad api", Request{Namespace: "p", APIs: []string{"start"}, Duration: time.Hour, Reason: "x"}, `"start" is not an API method name`},
		{"no duration", Request{Namespace: "p", Role: "read", Reason: "x"}, "duration 0s: must be positive"},
		{"negative duration", Request{Namespace: "p", Role: "read", Duration: -time.Hour, Reason: "x"}, "must be positive"},
		{"too long", Request{Namespace: "p", Role: "read", Duration: 31 * 24 * time.Hour, Reason: "x"}, "longer than any grant may be"},
		{"no reason", Request{Namespace: "p", Role: "read", Duration: time.Hour, Reason: " "}, "reason: say what the access is for"},
		{"claim without value", Request{Subject: grants.Subject{Claim: "groups"}, Namespace: "p", Role: "read", Duration: time.Hour, Reason: "x"}, "a claim subject needs a value"},
	}
	f := &fakeService{}
	c := serve(t, f)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Request(testCtx(t), tc.r)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "request: ") {
				t.Errorf("error %v, want one starting with request: and containing %q", err, tc.want)
			}
		})
	}
	if len(f.starts) != 0 {
		t.Errorf("%d starts sent for bad requests", len(f.starts))
	}
}

func TestUpdatesSendTheProtocol(t *testing.T) {
	for _, tc := range []struct {
		name string
		call func(*Client, context.Context, string, string) (*grants.Grant, error)
	}{
		{UpdateApprove, (*Client).Approve},
		{UpdateDeny, (*Client).Deny},
		{UpdateRevoke, (*Client).Revoke},
	} {
		t.Run(tc.name, func(t *testing.T) {
			after := recorded("g-4", grants.StateActive)
			f := &fakeService{updateResult: after}
			c := serve(t, f)
			g, err := tc.call(c, testCtx(t), "g-4", "ok by me")
			if err != nil {
				t.Fatal(err)
			}
			if g.ID != "g-4" || g.State != grants.StateActive {
				t.Errorf("returned %+v, want the grant after the change", g)
			}
			u := f.updates[0]
			if u.GetNamespace() != DefaultNamespace || u.GetWorkflowExecution().GetWorkflowId() != "grant-g-4" || u.GetRequest().GetInput().GetName() != tc.name {
				t.Errorf("update namespace %q workflow %q name %q", u.GetNamespace(), u.GetWorkflowExecution().GetWorkflowId(), u.GetRequest().GetInput().GetName())
			}
			if s := u.GetWaitPolicy().GetLifecycleStage(); s != enumspb.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED {
				t.Errorf("wait stage %v, want completed", s)
			}
			args := u.GetRequest().GetInput().GetArgs().GetPayloads()
			if len(args) != 1 {
				t.Fatalf("%d args, want one UpdateInput", len(args))
			}
			var in UpdateInput
			if err := converter.GetDefaultDataConverter().FromPayload(args[0], &in); err != nil {
				t.Fatal(err)
			}
			if in.Reason != "ok by me" || in.By != (grants.Identity{}) || !in.At.IsZero() {
				t.Errorf("sent %+v: want the reason alone (by and at are the frontend's)", in)
			}
		})
	}
}

func TestErrorMapping(t *testing.T) {
	const reason = `approve grant g-5: reader is the requester: a grant is approved by a second person (four eyes)`
	tests := []struct {
		name  string
		setup func(*fakeService)
		call  func(context.Context, *Client) error
		check func(*testing.T, error)
	}{
		{"start denied", func(f *fakeService) {
			f.startErr = serviceerror.NewPermissionDenied("no grants for namespace payments: reader may not request write", "")
		},
			func(ctx context.Context, c *Client) error {
				_, err := c.Request(ctx, Request{ID: "g-5", Namespace: "payments", Role: "write", Duration: time.Hour, Reason: "x"})
				return err
			}, wantDenied(grants.OpRequest, "no grants for namespace payments: reader may not request write", "request grant g-5: denied by the server: ")},
		{"update denied", func(f *fakeService) { f.updateErr = serviceerror.NewPermissionDenied(reason, "") },
			approve("g-5"), wantDenied(grants.OpApprove, reason, "approve grant g-5: denied by the server: ")},
		{"credentials refused", func(f *fakeService) { f.listErr = serviceerror.NewPermissionDenied("Request unauthorized.", "") },
			func(ctx context.Context, c *Client) error { _, err := c.List(ctx); return err },
			wantDenied(grants.OpList, "Request unauthorized.", "list: denied by the server: ")},
		{"denied with the reason field alone", func(f *fakeService) { f.updateErr = serviceerror.NewPermissionDenied("", "the policy's reason") },
			approve("g-5"), wantDenied(grants.OpApprove, "the policy's reason", "")},
		{"no such grant", func(f *fakeService) { f.updateErr = serviceerror.NewNotFound("workflow not found for ID: grant-g-6") },
			approve("g-6"), wantNotFound("no grant g-6")},
		{"ended grant", func(f *fakeService) { f.updateErr = serviceerror.NewNotFound("workflow execution already completed") },
			func(ctx context.Context, c *Client) error { _, err := c.Revoke(ctx, "g-6", "x"); return err },
			wantNotFound("grant g-6 has ended: there is nothing to revoke (see 'grant list')")},
		{"no grants namespace", func(f *fakeService) { f.listErr = serviceerror.NewNamespaceNotFound(DefaultNamespace) },
			func(ctx context.Context, c *Client) error { _, err := c.List(ctx); return err },
			wantNotFound("list: the server at 127.0.0.1:")},
		{"id taken", func(f *fakeService) {
			f.startErr = serviceerror.NewWorkflowExecutionAlreadyStarted("started", "req", "run")
		},
			func(ctx context.Context, c *Client) error {
				_, err := c.Request(ctx, Request{ID: "g-7", Namespace: "p", Role: "read", Duration: time.Hour, Reason: "x"})
				return err
			}, wantMessage("request grant g-7: grant g-7 already exists: give another --id, or none to have one generated")},
		{"update refused by the workflow", func(f *fakeService) { f.updateFailure = "grant g-8 is denied: only a requested grant can be approved" },
			approve("g-8"), wantMessage("approve grant g-8: grant g-8 is denied: only a requested grant can be approved")},
		{"bad id", func(*fakeService) {}, approve("G 1"),
			func(t *testing.T, err error) {
				var ie *InvalidIDError
				if !errors.As(err, &ie) || ie.ID != "G 1" {
					t.Errorf("error %v (%T), want an *InvalidIDError", err, err)
				}
			}},
		{"other errors are wrapped", func(f *fakeService) { f.updateErr = serviceerror.NewInvalidArgument("bad update") },
			approve("g-9"), func(t *testing.T, err error) {
				var ia *serviceerror.InvalidArgument
				if !errors.As(err, &ia) || !strings.HasPrefix(err.Error(), "approve grant g-9: ") {
					t.Errorf("error %v (%T), want the InvalidArgument wrapped with the operation", err, err)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeService{}
			tc.setup(f)
			c := serve(t, f)
			err := tc.call(testCtx(t), c)
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("the error holds the token: %v", err)
			}
			tc.check(t, err)
		})
	}
}

func approve(id string) func(context.Context, *Client) error {
	return func(ctx context.Context, c *Client) error { _, err := c.Approve(ctx, id, ""); return err }
}

func wantDenied(op, reason, prefix string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var d *DeniedError
		if !errors.As(err, &d) {
			t.Fatalf("error %v (%T), want a *DeniedError", err, err)
		}
		if d.Op != op || d.Reason != reason {
			t.Errorf("denied %q with reason %q, want %q and the server's reason %q verbatim", d.Op, d.Reason, op, reason)
		}
		if prefix != "" && err.Error() != prefix+reason {
			t.Errorf("message %q, want %q", err.Error(), prefix+reason)
		}
	}
}

func wantNotFound(prefix string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var nf *NotFoundError
		if !errors.As(err, &nf) || !strings.HasPrefix(err.Error(), prefix) {
			t.Errorf("error %v (%T), want a *NotFoundError starting %q", err, err, prefix)
		}
	}
}

func wantMessage(msg string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		if err.Error() != msg {
			t.Errorf("message\n got: %s\nwant: %s", err, msg)
		}
	}
}

func TestDialUnreachable(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = Dial(ctx, ClientOptions{Address: addr, APIKey: testToken})
	var ce *ConnectError
	if !errors.As(err, &ce) || ce.Address != addr {
		t.Fatalf("error %v (%T), want a *ConnectError naming %s", err, err, addr)
	}
	if !strings.Contains(err.Error(), "cannot reach the Temporal frontend at "+addr) || strings.Contains(err.Error(), testToken) {
		t.Errorf("message %q", err)
	}
}

func TestDialBadTLSFiles(t *testing.T) {
	ctx := testCtx(t)
	_, err := Dial(ctx, ClientOptions{TLS: &TLSOptions{CAFile: t.TempDir() + "/none.pem"}})
	if err == nil || !strings.Contains(err.Error(), "read the TLS CA file") {
		t.Errorf("error %v, want one about the CA file", err)
	}
	_, err = Dial(ctx, ClientOptions{TLS: &TLSOptions{CertFile: "c.pem"}})
	if err == nil || !strings.Contains(err.Error(), "needs its key") {
		t.Errorf("error %v, want one about the missing key", err)
	}
}

func TestListAllPagesSorted(t *testing.T) {
	now := time.Now().UTC()
	mk := func(id string, state grants.State, expiresIn time.Duration) *grants.Grant {
		return &grants.Grant{ID: id, State: state, Namespace: "p", Role: "read", NotBefore: now.Add(-time.Hour), Expires: now.Add(expiresIn), RequestedAt: now.Add(-time.Hour)}
	}
	info := func(g *grants.Grant) *workflowpb.WorkflowExecutionInfo {
		return &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: WorkflowID(g.ID)}, Memo: memoOf(g)}
	}
	bg := mk("bg", grants.StateActive, time.Hour)
	bg.BreakGlass = true
	f := &fakeService{pages: [][]*workflowpb.WorkflowExecutionInfo{
		{info(mk("late", grants.StateActive, 3*time.Hour)), info(mk("old", grants.StateExpired, -2*time.Hour))},
		{info(mk("soon", grants.StateActive, time.Hour)), info(mk("gone", grants.StateActive, -time.Minute)), info(bg)},
		{info(mk("req", grants.StateRequested, time.Hour)), {Execution: &commonpb.WorkflowExecution{WorkflowId: "grant-new"}}},
	}}
	c := serve(t, f)
	gs, err := c.List(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, g := range gs {
		ids = append(ids, g.ID)
	}
	if got, want := strings.Join(ids, " "), "bg req soon late gone old new"; got != want {
		t.Errorf("order %q, want %q (awaiting approval, active by expiry, ended most recent first, unknown)", got, want)
	}
	if len(f.lists) != 3 {
		t.Errorf("%d list calls, want 3 pages", len(f.lists))
	}
	if q := f.lists[0].GetQuery(); !strings.Contains(q, "WorkflowType = '"+WorkflowType+"'") || f.lists[0].GetNamespace() != DefaultNamespace {
		t.Errorf("query %q in %q", q, f.lists[0].GetNamespace())
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id, err := NewID()
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 10 || !grants.ValidID(id) || seen[id] {
			t.Fatalf("id %q: want 10 characters, valid, new", id)
		}
		seen[id] = true
	}
}
