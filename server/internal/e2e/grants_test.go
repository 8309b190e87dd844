package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/grants"
	"github.com/temporal-opa/temporal-opa/server/internal/devkey"
	"github.com/temporal-opa/temporal-opa/server/internal/devserver"
	"github.com/temporal-opa/temporal-opa/server/internal/grantsvc"
)

// grantUser is one caller of TestGrants: SDK clients of the grants namespace
// and of payments, with its own dev token.
type grantUser struct {
	name     string
	token    string
	grants   client.Client
	payments client.Client
}

func newGrantUser(t *testing.T, s *devserver.Server, key *devkey.Key, name string, perms ...string) *grantUser {
	t.Helper()
	token, err := key.Mint(devkey.Claims{Subject: name, Permissions: perms, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	dial := func(ns string) client.Client {
		c, err := client.Dial(client.Options{HostPort: s.FrontendAddr(), Namespace: ns,
			HeadersProvider: rawToken("Bearer " + token), Logger: quietLogger{}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	return &grantUser{name: name, token: token, grants: dial(s.GrantsNamespace()), payments: dial("payments")}
}

// request asks for role on payments for d, as the protocol says (the CLI's
// calls, made with the SDK).
func (u *grantUser) request(ctx context.Context, id, role string, d time.Duration) (grants.Grant, error) {
	_, err := u.grants.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: grantsvc.WorkflowID(id), TaskQueue: grantsvc.TaskQueue},
		grantsvc.WorkflowType, grantsvc.RequestInput{Duration: d.String(), Grant: grants.Grant{
			Subject: grants.Subject{Subject: "reader"}, Namespace: "payments", Role: role, Reason: "INC-42: " + id,
			// What a client says of these is overwritten by the frontend.
			State: grants.StateActive, RequestedBy: grants.Identity{Subject: "admin"},
		}})
	if err != nil {
		return grants.Grant{}, err
	}
	return u.describe(ctx, id)
}

// update runs the update name (approve, deny, revoke) on grant id and
// returns the grant after it.
func (u *grantUser) update(ctx context.Context, id, name string) (grants.Grant, error) {
	h, err := u.grants.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: grantsvc.WorkflowID(id), UpdateName: name, WaitForStage: client.WorkflowUpdateStageCompleted,
		// The caller named in By is overwritten with the verified caller.
		Args: []any{grantsvc.UpdateInput{By: grants.Identity{Subject: "someone-else"}, Reason: name + " by " + u.name}},
	})
	var g grants.Grant
	if err != nil {
		return g, err
	}
	err = h.Get(ctx, &g)
	return g, err
}

func (u *grantUser) describe(ctx context.Context, id string) (grants.Grant, error) {
	resp, err := u.grants.DescribeWorkflowExecution(ctx, grantsvc.WorkflowID(id), "")
	if err != nil {
		return grants.Grant{}, err
	}
	return grantsvc.DecodeMemo(resp.GetWorkflowExecutionInfo().GetMemo())
}

// start starts a workflow on payments (no worker runs it: the start is the write).
func (u *grantUser) start(ctx context.Context, id string) error {
	_, err := u.payments.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "payments"}, "Charge")
	return err
}

// TestGrants runs time-bound access grants end to end on a dev server of its
// own (grants on, as start-dev has them): a reader of payments requests write
// on payments for 20 s; its own approval is refused; an admin of payments
// approves; the reader's start on payments succeeds, and is denied again
// after the expiry, with a reason naming the grant; a revocation ends another
// grant at once; a break glass made with the client of `temporal-opa grant`
// is active at once, approved after the fact by the admin and revoked by its
// holder; calls on the grants namespace outside the protocol are refused.
func TestGrants(t *testing.T) {
	key, err := devkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	decisions := &lockedBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := devserver.Start(ctx, devserver.Options{Namespaces: []string{"payments"}, Key: key, HTTPPort: -1, DecisionLog: decisions})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Stop() }()
	if s.GrantsNamespace() != grantsvc.DefaultNamespace {
		t.Fatalf("grants namespace %q, want %q", s.GrantsNamespace(), grantsvc.DefaultNamespace)
	}
	reader := newGrantUser(t, s, key, "reader", "payments:read")
	admin := newGrantUser(t, s, key, "admin", "payments:admin")

	// Without a grant the reader cannot write.
	wantDenied(t, "reader's start before any grant", reader.start(ctx, "charge-0"))

	// The request: stamped by the frontend, whatever the client said.
	const grantFor = 20 * time.Second
	g, err := reader.request(ctx, "g-write", "write", grantFor)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if g.State != grants.StateRequested || g.RequestedBy.Subject != "reader" || g.ApprovedBy != nil {
		t.Fatalf("requested grant %+v: want requested by reader, no approver", g)
	}
	wantDenied(t, "reader's start with a pending grant", reader.start(ctx, "charge-1"))

	// Four eyes: the reader cannot approve its own request, and the refusal
	// is a decision-log event with the reader's verified identity.
	_, err = reader.update(ctx, "g-write", grantsvc.UpdateApprove)
	wantDenied(t, "self-approval", err, "reader (temporal-opa-dev) requested grant g-write and cannot approve it: another person must (four eyes)")
	waitEvent(t, decisions, "the refused self-approval at temporal/grants/decision", func(ev map[string]any) bool {
		c, _ := ev["custom"].(map[string]any)
		op, _ := c["grant_operation"].(map[string]any)
		res, _ := ev["result"].(map[string]any)
		return ev["path"] == "temporal/grants/decision" && op["operation"] == "approve" && c["subject"] == "reader" && res["allow"] == false
	})

	// An admin of payments approves.
	g, err = admin.update(ctx, "g-write", grantsvc.UpdateApprove)
	if err != nil {
		t.Fatalf("approval by admin: %v", err)
	}
	if g.State != grants.StateActive || g.ApprovedBy == nil || g.ApprovedBy.Subject != "admin" {
		t.Fatalf("approved grant %+v: want active, approved by admin", g)
	}
	if err := reader.start(ctx, "charge-2"); err != nil {
		t.Fatalf("reader's start under the grant: %v", err)
	}
	// The decision-log event of the allowed start names the grant
	// (custom.grant); events are written in the background.
	waitEvent(t, decisions, "the reader's allowed start naming grant g-write in custom.grant", func(ev map[string]any) bool {
		c, _ := ev["custom"].(map[string]any)
		res, _ := ev["result"].(map[string]any)
		return c["api"] == "StartWorkflowExecution" && c["subject"] == "reader" && res["allow"] == true &&
			strings.Contains(fmt.Sprint(c["grant"]), "g-write")
	})

	// Calls on the grants namespace outside the protocol are refused, for
	// admins of payments too.
	_, err = admin.grants.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "grant-x", TaskQueue: grantsvc.TaskQueue}, "Other")
	wantDenied(t, "start of another type", err)
	err = admin.grants.SignalWorkflow(ctx, grantsvc.WorkflowID("g-write"), "", "sig", nil)
	wantDenied(t, "signal", err)
	err = admin.grants.TerminateWorkflow(ctx, grantsvc.WorkflowID("g-write"), "", "no")
	wantDenied(t, "terminate", err)
	_, err = admin.grants.WorkflowService().ResetStickyTaskQueue(ctx, &workflowservice.ResetStickyTaskQueueRequest{
		Namespace: s.GrantsNamespace(), Execution: &commonpb.WorkflowExecution{WorkflowId: grantsvc.WorkflowID("g-write")}})
	wantDenied(t, "reset sticky task queue", err)

	// A denial of a fresh request.
	if _, err := reader.request(ctx, "g-deny", "admin", time.Minute); err != nil {
		t.Fatalf("third request: %v", err)
	}
	if g, err = admin.update(ctx, "g-deny", grantsvc.UpdateDeny); err != nil || g.State != grants.StateDenied {
		t.Fatalf("deny: %+v %v", g, err)
	}

	// The list shows the grants.
	resp, err := admin.grants.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: "ExecutionStatus = 'Running'"})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	var listed []string
	for _, e := range resp.GetExecutions() {
		listed = append(listed, e.GetExecution().GetWorkflowId())
	}
	if len(listed) != 1 || listed[0] != "grant-g-write" {
		t.Errorf("running grants %v, want [grant-g-write] (g-deny was denied)", listed)
	}

	// A stream of starts from the reader across g-write's expiry (the
	// server's clock, on this machine): every start that returned before the
	// expiry is allowed, every start sent after it is denied naming the
	// grant; no reload happens at the boundary.
	approved, err := admin.describe(ctx, "g-write")
	if err != nil {
		t.Fatal(err)
	}
	var before, after, straddling int
	for i := 0; time.Now().Before(approved.Expires.Add(2 * time.Second)); i++ {
		sent := time.Now()
		err := reader.start(ctx, fmt.Sprintf("charge-stream-%d", i))
		returned := time.Now()
		switch {
		case returned.Before(approved.Expires):
			before++
			if err != nil {
				t.Fatalf("start %d, returned %s before the expiry (%s): %v", i, approved.Expires.Sub(returned), approved.Expires, err)
			}
		case !sent.Before(approved.Expires):
			after++
			wantDenied(t, fmt.Sprintf("start %d, sent %s after the expiry", i, sent.Sub(approved.Expires)), err, "grant g-write (write on \"payments\") expired at")
		default:
			straddling++
		}
		time.Sleep(50 * time.Millisecond)
	}
	if before < 10 || after < 10 {
		t.Fatalf("%d starts before the expiry and %d after: too few to show the boundary", before, after)
	}
	t.Logf("stream across the expiry of g-write: %d starts allowed before it, %d denied after it, %d straddling it", before, after, straddling)
	deadline := time.Now().Add(30 * time.Second)
	for {
		g, err = admin.describe(ctx, "g-write")
		if err == nil && g.State == grants.StateExpired {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("grant g-write after its expiry: %+v %v, want expired", g, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The expiry is recorded (the workflow's local activity, in the server's
	// process) as a decision-log event of its own.
	waitEvent(t, decisions, "the expiry of g-write at "+policy.GrantEndedPath, func(ev map[string]any) bool {
		return ev["path"] == policy.GrantEndedPath && strings.Contains(fmt.Sprint(ev), "g-write")
	})

	// Revocation ends another grant at once.
	if _, err := reader.request(ctx, "g-revoke", "write", 10*time.Minute); err != nil {
		t.Fatalf("second request: %v", err)
	}
	if _, err := admin.update(ctx, "g-revoke", grantsvc.UpdateApprove); err != nil {
		t.Fatalf("second approval: %v", err)
	}
	if err := reader.start(ctx, "charge-4"); err != nil {
		t.Fatalf("reader's start under the second grant: %v", err)
	}
	g, err = admin.update(ctx, "g-revoke", grantsvc.UpdateRevoke)
	if err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if g.State != grants.StateRevoked || g.EndedBy == nil || g.EndedBy.Subject != "admin" {
		t.Fatalf("revoked grant %+v", g)
	}
	wantDenied(t, "reader's start right after the revocation", reader.start(ctx, "charge-5"))

	// Break glass with the client of `temporal-opa grant` (no subject: the
	// caller's own): active at once, approved after the fact, revoked by its
	// holder.
	readerCLI, err := grantsvc.Dial(ctx, grantsvc.ClientOptions{Address: s.FrontendAddr(), APIKey: reader.token})
	if err != nil {
		t.Fatal(err)
	}
	defer readerCLI.Close()
	adminCLI, err := grantsvc.Dial(ctx, grantsvc.ClientOptions{Address: s.FrontendAddr(), APIKey: admin.token})
	if err != nil {
		t.Fatal(err)
	}
	defer adminCLI.Close()
	bg, err := readerCLI.BreakGlass(ctx, grantsvc.Request{ID: "g-glass", Namespace: "payments", Role: "write", Duration: 5 * time.Minute, Reason: "INC-43"})
	if err != nil {
		t.Fatalf("break glass: %v", err)
	}
	if bg.State != grants.StateActive || !bg.BreakGlass || bg.Subject.Subject != "reader" || bg.ApprovedBy != nil {
		t.Fatalf("break-glass grant %+v: want active, the reader's, no approver", bg)
	}
	if err := reader.start(ctx, "charge-6"); err != nil {
		t.Fatalf("reader's start under the break glass: %v", err)
	}
	if _, err := readerCLI.Approve(ctx, "g-glass", "self"); err == nil {
		t.Fatal("the reader approved its own break glass")
	}
	if bg, err = adminCLI.Approve(ctx, "g-glass", "after the fact"); err != nil || bg.State != grants.StateActive || bg.ApprovedBy == nil || bg.ApprovedBy.Subject != "admin" {
		t.Fatalf("approval after the fact: %+v %v", bg, err)
	}
	all, err := adminCLI.List(ctx)
	if err != nil {
		t.Fatalf("list with the client: %v", err)
	}
	states := map[string]grants.State{}
	for _, g := range all {
		states[g.ID] = g.State
	}
	if states["g-glass"] != grants.StateActive || states["g-revoke"] != grants.StateRevoked {
		t.Errorf("the client lists %v", states)
	}
	if bg, err = readerCLI.Revoke(ctx, "g-glass", "done"); err != nil || bg.State != grants.StateRevoked {
		t.Fatalf("revocation by the holder: %+v %v", bg, err)
	}
	wantDenied(t, "reader's start after its break glass was revoked", reader.start(ctx, "charge-7"))

	// The ended grants, as a restarted frontend loads them (the follower's
	// query of the grants closed within the last hour).
	resp, err = admin.grants.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: "ExecutionStatus != 'Running' AND CloseTime > '" + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339) + "'"})
	if err != nil {
		t.Fatalf("list ended grants: %v", err)
	}
	ended := map[string]grants.State{}
	for _, e := range resp.GetExecutions() {
		g, err := grantsvc.DecodeMemo(e.GetMemo())
		if err != nil {
			t.Fatal(err)
		}
		ended[g.ID] = g.State
	}
	if ended["g-write"] != grants.StateExpired || ended["g-revoke"] != grants.StateRevoked || ended["g-deny"] != grants.StateDenied || ended["g-glass"] != grants.StateRevoked {
		t.Errorf("ended grants %v, want g-write expired, g-revoke and g-glass revoked, g-deny denied", ended)
	}
}

// TestGrantsAfterARestart: a restarted server has the grants at once (start-dev
// returns once its follower has loaded them): an approved grant is honoured
// by the first call after the restart, and a grant that expired while the
// server was down is named in the deny reason.
func TestGrantsAfterARestart(t *testing.T) {
	key, err := devkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := devserver.Options{Namespaces: []string{"payments"}, Key: key, HTTPPort: -1, DBFilename: filepath.Join(t.TempDir(), "grants.db")}
	first, err := devserver.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	reader := newGrantUser(t, first, key, "reader", "payments:read")
	admin := newGrantUser(t, first, key, "admin", "payments:admin")
	for id, d := range map[string]time.Duration{"g-long": 10 * time.Minute, "g-short": 5 * time.Second} {
		if _, err := reader.request(ctx, id, "write", d); err != nil {
			t.Fatalf("request %s: %v", id, err)
		}
		if _, err := admin.update(ctx, id, grantsvc.UpdateApprove); err != nil {
			t.Fatalf("approve %s: %v", id, err)
		}
	}
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second) // g-short expires while the server is down

	second, err := devserver.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = second.Stop() }()
	reader = newGrantUser(t, second, key, "reader", "payments:read")
	if err := reader.start(ctx, "charge-after-restart"); err != nil {
		t.Fatalf("the first start after the restart, under g-long: %v", err)
	}
	// Revoke g-long: g-short, ended, is what the reason can name.
	admin = newGrantUser(t, second, key, "admin", "payments:admin")
	if _, err := admin.update(ctx, "g-long", grantsvc.UpdateRevoke); err != nil {
		t.Fatalf("revoke g-long: %v", err)
	}
	// The reason names both: g-short, which expired while the server was
	// down, was loaded with the grants ended within the last hour.
	wantDenied(t, "reader's start after the revocation", reader.start(ctx, "charge-denied"),
		"grant g-long (write on \"payments\") was revoked", "grant g-short (write on \"payments\") expired")
}

// waitEvent waits up to 10 s for a decision-log event that match accepts.
func waitEvent(t *testing.T, decisions *lockedBuffer, what string, match func(map[string]any) bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		for _, ev := range decisions.events(t) {
			if match(ev) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no decision-log event of %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
