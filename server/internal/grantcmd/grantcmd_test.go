package grantcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	updatepb "go.temporal.io/api/update/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/temporal-opa/temporal-opa/policy/grants"
	"github.com/temporal-opa/temporal-opa/server/internal/cli"
	"github.com/temporal-opa/temporal-opa/server/internal/grantsvc"
)

var now = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func TestShort(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{45 * time.Second, "45s"},
		{59*time.Second + 999*time.Millisecond, "59s"},
		{time.Minute, "1m"},
		{3*time.Minute + 59*time.Second, "3m"},
		{time.Hour, "1h"},
		{time.Hour + 59*time.Minute + 59*time.Second, "1h59m"},
		{2 * time.Hour, "2h"},
		{23*time.Hour + 5*time.Minute, "23h5m"},
		{24 * time.Hour, "1d"},
		{3*24*time.Hour + 4*time.Hour + 30*time.Minute, "3d4h"},
		{-3 * time.Minute, "3m"},
	}
	for _, tc := range tests {
		if got := Short(tc.d); got != tc.want {
			t.Errorf("Short(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func grant(state grants.State, start, end time.Duration) *grants.Grant {
	return &grants.Grant{
		ID: "g-1", Subject: grants.Subject{Subject: "reader"}, Namespace: "payments", Role: "write",
		NotBefore: now.Add(start), Expires: now.Add(end), Reason: "INC-1", State: state,
		RequestedBy: grants.Identity{Subject: "reader"}, RequestedAt: now.Add(-time.Hour),
	}
}

func TestTimeLeft(t *testing.T) {
	revoked := grant(grants.StateRevoked, -time.Hour, time.Hour)
	revoked.EndedAt = now.Add(-5 * time.Minute)
	tests := []struct {
		name string
		g    *grants.Grant
		want string
	}{
		{"active", grant(grants.StateActive, -time.Minute, 2*time.Hour-time.Second), "1h59m"},
		{"active, last seconds", grant(grants.StateActive, -time.Hour, 30*time.Second), "30s"},
		{"active, not started", grant(grants.StateActive, 10*time.Minute, 2*time.Hour), "starts in 10m"},
		{"requested, not started", grant(grants.StateRequested, 90*time.Minute, 2*time.Hour), "starts in 1h30m"},
		{"requested, would run", grant(grants.StateRequested, -time.Minute, time.Hour), "1h"},
		{"active past expiry", grant(grants.StateActive, -time.Hour, -3*time.Minute), "expired 3m ago"},
		{"requested past expiry", grant(grants.StateRequested, -time.Hour, -2*24*time.Hour), "expired 2d ago"},
		{"expired at expiry", grant(grants.StateExpired, -time.Hour, 0), "expired 0s ago"},
		{"revoked", revoked, "revoked 5m ago"},
		{"revoked, no time", grant(grants.StateRevoked, -time.Hour, time.Hour), "revoked"},
		{"denied", grant(grants.StateDenied, 0, time.Hour), "denied"},
		{"unknown", &grants.Grant{ID: "g-1"}, "-"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := TimeLeft(tc.g, now); got != tc.want {
				t.Errorf("TimeLeft = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestWriteTable(t *testing.T) {
	bg := grant(grants.StateActive, -10*time.Minute, 50*time.Minute)
	bg.ID, bg.BreakGlass, bg.Reason = "g-bg", true, "INC-2\x1b[31m red\nline"
	approved := grant(grants.StateActive, -time.Minute, 2*time.Hour)
	approved.ID, approved.ApprovedBy = "g-ok", &grants.Identity{Subject: "admin"}
	group := grant(grants.StateRequested, 0, time.Hour)
	group.ID, group.Subject, group.Role, group.APIs = "g-grp", grants.Subject{Claim: "groups", Value: "sre"}, "", []string{"StartWorkflowExecution"}
	expired := grant(grants.StateActive, -3*time.Hour, -3*time.Minute)
	expired.ID = "g-old"
	gs := []grants.Grant{*bg, *group, *approved, *expired, {ID: "new"}}
	var out bytes.Buffer
	if err := WriteTable(&out, gs, "all", now); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, line := range []string{
		"AWAITING (break glass)",
		"Break glass awaiting approval after the fact: g-bg (temporal-opa grant approve ID)",
		"expired 3m ago",
		"groups=sre",
		"StartWorkflowExecution on payments",
		"INC-2 [31m red line", // the escape and the newline are spaces
	} {
		if !strings.Contains(got, line) {
			t.Errorf("table lacks %q:\n%s", line, got)
		}
	}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	header := strings.Fields(lines[0])
	if strings.Join(header, " ") != "ID STATE SUBJECT ACCESS STARTS EXPIRES TIME LEFT REQUESTED BY APPROVED BY REASON" {
		t.Errorf("header %q", lines[0])
	}
	var order []string
	for _, l := range lines[1:6] {
		order = append(order, strings.Fields(l)[0])
	}
	if strings.Join(order, " ") != "g-bg g-grp g-ok g-old new" {
		t.Errorf("rows %v: the table keeps the client's order", order)
	}
	if !strings.Contains(lines[5], "new    unknown") {
		t.Errorf("a grant not recorded yet: %q", lines[5])
	}
	out.Reset()
	_ = WriteTable(&out, nil, "active", now)
	if out.String() != "No active grants.\n" {
		t.Errorf("empty: %q", out.String())
	}
}

func TestWriteGrant(t *testing.T) {
	revoked := grant(grants.StateRevoked, -time.Hour, time.Hour)
	revoked.ApprovedBy, revoked.ApprovedAt = &grants.Identity{Subject: "admin", Issuer: "https://idp"}, now.Add(-50*time.Minute)
	revoked.EndedBy, revoked.EndedAt, revoked.EndReason = &grants.Identity{Subject: "admin"}, now.Add(-time.Minute), "done"
	bg := grant(grants.StateActive, 0, 30*time.Minute)
	bg.BreakGlass = true
	sent := grant("", 0, time.Hour)
	sent.Subject, sent.RequestedBy = grants.Subject{}, grants.Identity{}
	tests := []struct {
		name string
		g    *grants.Grant
		want []string
	}{
		{"requested", grant(grants.StateRequested, 0, 2*time.Hour), []string{
			"Grant g-1: requested, waiting for approval\n",
			"  subject:      reader\n",
			"  access:       write on payments\n",
			"  starts:       2026-12-06T12:00:00Z\n",
			"  expires:      2026-12-06T14:00:00Z\n",
			"  time left:    2h\n",
			"  reason:       INC-1\n",
			"  requested by: reader at 2026-12-06T11:00:00Z\n",
		}},
		{"revoked", revoked, []string{
			"Grant g-1: revoked\n",
			"  approved by:  admin (https://idp) at 2026-12-06T11:10:00Z\n",
			"  revoked by:   admin at 2026-12-06T11:59:00Z\n",
			"  why:          done\n",
			"  time left:    revoked 1m ago\n",
		}},
		{"break glass", bg, []string{"Grant g-1: active, break glass: awaiting approval after the fact\n"}},
		{"not recorded yet", sent, []string{
			"Grant g-1: sent; the grant service has not recorded it yet (see 'grant list')\n",
			"  subject:      you (the server fills in the verified caller)\n",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := WriteGrant(&out, tc.g, now); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestCheckRequest(t *testing.T) {
	ok := cli.GrantRequest{Namespace: "payments", Role: "write", Duration: 2 * time.Hour, Reason: "INC-1"}
	tests := []struct {
		name   string
		change func(*cli.GrantRequest)
		want   string // "" = valid
	}{
		{"valid", func(*cli.GrantRequest) {}, ""},
		{"valid group with APIs", func(o *cli.GrantRequest) {
			o.Role, o.APIs, o.Claim, o.ClaimValue = "", []string{"StartWorkflowExecution"}, "groups", "sre"
		}, ""},
		{"bad id", func(o *cli.GrantRequest) { o.ID = "Grant_1" },
			`grant request: --id "Grant_1": use 1-63 lower-case letters, digits and dashes, starting with a letter or digit`},
		{"bad role", func(o *cli.GrantRequest) { o.Role = "owner" }, `grant request: --role "owner": must be one of worker, read, write, admin`},
		{"too many apis", func(o *cli.GrantRequest) { o.Role, o.APIs = "", make([]string, 33) }, "grant request: --api: 33 APIs, at most 32"},
		{"bad api", func(o *cli.GrantRequest) { o.Role, o.APIs = "", []string{"startWorkflow"} },
			`grant request: apis: "startWorkflow" is not an API method name such as StartWorkflowExecution`},
		{"too long", func(o *cli.GrantRequest) { o.Duration = 31 * 24 * time.Hour },
			"grant request: --duration 744h0m0s: longer than any grant may be (720h0m0s); the policy's maximum for the role is shorter"},
		{"long reason", func(o *cli.GrantRequest) { o.Reason = strings.Repeat("x", 513) }, "grant request: --reason: 513 bytes, at most 512"},
		{"ends in the past", func(o *cli.GrantRequest) { o.NotBefore = now.Add(-3 * time.Hour) },
			"grant request: --not-before 2026-12-06T09:00:00Z with --duration 2h0m0s ends in the past: give a later start"},
		{"break glass is named", func(o *cli.GrantRequest) { o.BreakGlass, o.Role = true, "root" },
			`grant break-glass: --role "root": must be one of worker, read, write, admin`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.change(&o)
			err := CheckRequest(o, now)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ue *cli.UsageError
			if !errors.As(err, &ue) || ue.Msg != tc.want {
				t.Errorf("error %v (%T)\nwant usage error %s", err, err, tc.want)
			}
		})
	}
}

func TestFilter(t *testing.T) {
	gs := []grants.Grant{
		*grant(grants.StateRequested, 0, time.Hour), *grant(grants.StateActive, 0, time.Hour),
		*grant(grants.StateActive, -2*time.Hour, -time.Hour), *grant(grants.StateDenied, 0, time.Hour),
		*grant(grants.StateRevoked, 0, time.Hour), {ID: "new"},
	}
	for state, want := range map[string]int{"all": 6, "requested": 1, "active": 1, "ended": 3} {
		if got := len(Filter(gs, state, now)); got != want {
			t.Errorf("--state %s: %d grants, want %d", state, got, want)
		}
	}
}

// fake is a WorkflowService answering the grant calls as the test says.
type fake struct {
	workflowservice.UnimplementedWorkflowServiceServer
	err    error         // answer to every grant call
	result *grants.Grant // the grant of Describe, updates and list
	auth   []string
}

func (f *fake) GetSystemInfo(context.Context, *workflowservice.GetSystemInfoRequest) (*workflowservice.GetSystemInfoResponse, error) {
	return &workflowservice.GetSystemInfoResponse{}, nil
}

func (f *fake) call(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	f.auth = append(f.auth, strings.Join(md.Get("authorization"), ","))
	if f.err != nil {
		return serviceerror.ToStatus(f.err).Err()
	}
	return nil
}

func (f *fake) memo() *commonpb.Memo {
	p, _ := converter.GetDefaultDataConverter().ToPayload(f.result)
	return &commonpb.Memo{Fields: map[string]*commonpb.Payload{grantsvc.MemoKey: p}}
}

func (f *fake) StartWorkflowExecution(ctx context.Context, _ *workflowservice.StartWorkflowExecutionRequest) (*workflowservice.StartWorkflowExecutionResponse, error) {
	if err := f.call(ctx); err != nil {
		return nil, err
	}
	return &workflowservice.StartWorkflowExecutionResponse{RunId: "r", Started: true}, nil
}

func (f *fake) DescribeWorkflowExecution(ctx context.Context, r *workflowservice.DescribeWorkflowExecutionRequest) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	if err := f.call(ctx); err != nil {
		return nil, err
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{Execution: r.GetExecution(), Memo: f.memo()}}, nil
}

func (f *fake) UpdateWorkflowExecution(ctx context.Context, r *workflowservice.UpdateWorkflowExecutionRequest) (*workflowservice.UpdateWorkflowExecutionResponse, error) {
	if err := f.call(ctx); err != nil {
		return nil, err
	}
	p, _ := converter.GetDefaultDataConverter().ToPayloads(f.result)
	return &workflowservice.UpdateWorkflowExecutionResponse{
		UpdateRef: &updatepb.UpdateRef{WorkflowExecution: r.GetWorkflowExecution(), UpdateId: r.GetRequest().GetMeta().GetUpdateId()},
		Outcome:   &updatepb.Outcome{Value: &updatepb.Outcome_Success{Success: p}},
		Stage:     enumspb.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED,
	}, nil
}

func (f *fake) ListWorkflowExecutions(ctx context.Context, _ *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	if err := f.call(ctx); err != nil {
		return nil, err
	}
	return &workflowservice.ListWorkflowExecutionsResponse{Executions: []*workflowpb.WorkflowExecutionInfo{{Memo: f.memo()}}}, nil
}

func listen(t *testing.T, f *fake) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	workflowservice.RegisterWorkflowServiceServer(s, f)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

func TestRun(t *testing.T) {
	const token = "tok-secret-42"
	keyFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(keyFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	active := grant(grants.StateActive, -time.Minute, time.Hour)
	active.ApprovedBy = &grants.Identity{Subject: "admin"}
	const reason = "approve grant g-1: reader requested it: a grant is approved by a second person (four eyes)"
	tests := []struct {
		name     string
		cmd      string
		args     []string
		err      error
		wantCode int
		wantOut  string // in stdout
		wantMsg  string // in the message main prints
	}{
		{"approve", "grant approve", []string{"g-1", "--reason", "ok"}, nil, 0, "Grant g-1: active\n", ""},
		{"approve as JSON", "grant approve", []string{"g-1", "-o", "json"}, nil, 0, `"approved_by": {`, ""},
		{"request", "grant request", []string{"--namespace", "payments", "--role", "write", "--duration", "1h", "--reason", "INC-1", "--id", "g-1"}, nil, 0,
			"Ask an approver to run: temporal-opa grant approve g-1", ""},
		{"list", "grant list", []string{"--state", "active"}, nil, 0, "g-1  active", ""},
		{"list as JSON", "grant list", []string{"-o", "json"}, nil, 0, `"time_left": "1h"`, ""},
		{"denied", "grant approve", []string{"g-1"}, serviceerror.NewPermissionDenied(reason, ""), cli.ExitDenied, "",
			"temporal-opa: approve grant g-1: denied by the server: " + reason},
		{"no such grant", "grant revoke", []string{"g-2", "--reason", "x"}, serviceerror.NewNotFound("workflow not found for ID: grant-g-2"), 1, "",
			"temporal-opa: no grant g-2"},
		{"bad id", "grant deny", []string{"G-2", "--reason", "x"}, nil, 2, "", `grant deny: grant id "G-2"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{err: tc.err, result: active}
			addr := listen(t, f)
			var stdout, stderr bytes.Buffer
			args := append([]string{"--address", addr, "--api-key-file", keyFile}, tc.args...)
			err := runAt(t, tc.cmd, args, &stdout, &stderr)
			code, msg := cli.Exit(err)
			if code != tc.wantCode || !strings.Contains(msg, tc.wantMsg) || !strings.Contains(stdout.String(), tc.wantOut) {
				t.Errorf("exit %d, message %q, stdout:\n%s\nwant exit %d, message with %q, stdout with %q", code, msg, stdout.String(), tc.wantCode, tc.wantMsg, tc.wantOut)
			}
			for _, s := range []string{msg, stdout.String(), stderr.String()} {
				if strings.Contains(s, token) {
					t.Errorf("the token is printed: %s", s)
				}
			}
			for _, a := range f.auth {
				if a != "Bearer "+token {
					t.Errorf("authorization %q: want the token of --api-key-file", a)
				}
			}
			if strings.Contains(tc.name, "JSON") && !json.Valid(stdout.Bytes()) {
				t.Errorf("not JSON:\n%s", stdout.String())
			}
		})
	}
}

// runAt runs a command with the clock at now.
func runAt(t *testing.T, name string, args []string, stdout, stderr *bytes.Buffer) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return run(ctx, name, args, cli.Env{}, stdout, stderr, func() time.Time { return now })
}

func TestBreakGlassWarns(t *testing.T) {
	bg := grant(grants.StateActive, 0, 30*time.Minute)
	bg.BreakGlass = true
	addr := listen(t, &fake{result: bg})
	var stdout, stderr bytes.Buffer
	err := runAt(t, "grant break-glass", []string{"--address", addr, "--namespace", "payments", "--role", "write", "--duration", "30m", "--reason", "INC-9"}, &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stderr.String(), "WARNING: break glass: grant g-1 gives write on payments without a second person") {
		t.Errorf("stderr %q", stderr.String())
	}
	if !strings.Contains(stdout.String(), "awaiting approval after the fact") {
		t.Errorf("stdout:\n%s", stdout.String())
	}
}

func TestRunUnreachable(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	err = Run(context.Background(), "grant list", []string{"--address", addr, "--timeout", "3s"}, cli.Env{}, &bytes.Buffer{}, &bytes.Buffer{})
	code, msg := cli.Exit(err)
	if code != 1 || !strings.Contains(msg, "cannot reach the Temporal frontend at "+addr) {
		t.Errorf("exit %d %q", code, msg)
	}
}
