package grantsvc

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/grpc"

	"github.com/temporal-opa/temporal-opa/policy/grants"
)

// fakeLister lists its grants two to a page, or fails with err.
type fakeLister struct {
	mu     sync.Mutex
	grants []grants.Grant
	closed []grants.Grant                      // listed by the query of ended grants
	bad    []*workflowpb.WorkflowExecutionInfo // listed too, with memos that cannot be read
	err    error
	calls  int
}

func (l *fakeLister) set(gs ...grants.Grant) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.grants = gs
}

func (l *fakeLister) ListWorkflowExecutions(_ context.Context, in *workflowservice.ListWorkflowExecutionsRequest, _ ...grpc.CallOption) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if l.err != nil {
		return nil, l.err
	}
	if in.GetNamespace() != "grants" {
		return nil, errors.New("unexpected namespace")
	}
	source := l.grants
	switch {
	case in.GetQuery() == RunningQuery:
	case strings.Contains(in.GetQuery(), "CloseTime >"):
		source = l.closed
	default:
		return nil, errors.New("unexpected query " + in.GetQuery())
	}
	var all []*workflowpb.WorkflowExecutionInfo
	for _, g := range source {
		p, err := converter.GetDefaultDataConverter().ToPayload(g)
		if err != nil {
			return nil, err
		}
		all = append(all, &workflowpb.WorkflowExecutionInfo{
			Execution: &commonpb.WorkflowExecution{WorkflowId: WorkflowID(g.ID)},
			Memo:      &commonpb.Memo{Fields: map[string]*commonpb.Payload{MemoKey: p}},
		})
	}
	if in.GetQuery() == RunningQuery {
		all = append(all, l.bad...)
	}
	from := 0
	if len(in.GetNextPageToken()) > 0 {
		from = int(in.GetNextPageToken()[0])
	}
	to := min(from+2, len(all))
	resp := &workflowservice.ListWorkflowExecutionsResponse{Executions: all[from:to]}
	if to < len(all) {
		resp.NextPageToken = []byte{byte(to)}
	}
	return resp, nil
}

type sink struct {
	mu   sync.Mutex
	last []grants.Grant
	n    int
}

func (s *sink) SetGrants(gs []grants.Grant) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last, s.n = gs, s.n+1
}

func (s *sink) states() map[string]grants.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]grants.State{}
	for _, g := range s.last {
		out[g.ID] = g.State
	}
	return out
}

func grantAt(id string, state grants.State, now time.Time, d time.Duration) grants.Grant {
	g := testGrant(now, d, false)
	g.ID, g.State = id, state
	if state == grants.StateActive {
		g.ApprovedBy = &admin
	}
	return g
}

func sameStates(t *testing.T, got, want map[string]grants.State) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("grants %v, want %v", got, want)
	}
	for id, s := range want {
		if got[id] != s {
			t.Fatalf("grants %v, want %v", got, want)
		}
	}
}

// newTestFollower is a follower of namespace "grants" listing from a fake,
// publishing to a sink, on a clock the test sets (starting at now).
func newTestFollower(now time.Time) (*Follower, *fakeLister, *sink, *time.Time) {
	clock := now
	l, s := &fakeLister{}, &sink{}
	f := NewFollower(l, "grants", s, nil)
	f.now = func() time.Time { return clock }
	return f, l, s, &clock
}

func TestFollower(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	f, l, s, clock := newTestFollower(now)
	ctx := context.Background()

	// Three pages, one memo unreadable, one naming another workflow.
	badMemo := &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: "grant-x"},
		Memo: &commonpb.Memo{Fields: map[string]*commonpb.Payload{MemoKey: {Data: []byte("{")}}}}
	l.bad = []*workflowpb.WorkflowExecutionInfo{badMemo, {Execution: &commonpb.WorkflowExecution{WorkflowId: "grant-y"}}}
	l.set(grantAt("a", grants.StateActive, now, time.Hour), grantAt("b", grants.StateActive, now, time.Minute),
		grantAt("c", grants.StateRequested, now, time.Hour))
	if f.Loaded() {
		t.Fatal("loaded before a poll")
	}
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if !f.Loaded() {
		t.Fatal("not loaded after a poll")
	}
	sameStates(t, s.states(), map[string]grants.State{"a": grants.StateActive, "b": grants.StateActive, "c": grants.StateRequested})

	// a disappears before its expiry (revoked), b after (expired), c is denied.
	*clock = now.Add(2 * time.Minute)
	l.set()
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	sameStates(t, s.states(), map[string]grants.State{"a": grants.StateRevoked, "b": grants.StateExpired, "c": grants.StateExpired})

	// Errors keep the last set.
	n := s.n
	l.err = errors.New("unavailable")
	if err := f.Poll(ctx); err == nil {
		t.Fatal("no error")
	}
	if s.n != n {
		t.Fatal("a failed poll changed the grants")
	}
	l.err = nil

	// Ended grants are dropped after KeepEnded.
	*clock = now.Add(KeepEnded + 3*time.Minute)
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	sameStates(t, s.states(), map[string]grants.State{})
}

func TestFollowerApply(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	f, l, s, clock := newTestFollower(now)
	ctx := context.Background()
	req := grantAt("a", grants.StateRequested, now, time.Hour)
	l.set(req)
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	// Approved here: active at once, and visibility's older state does not undo it.
	active := grantAt("a", grants.StateActive, now, time.Hour)
	f.Apply(active)
	sameStates(t, s.states(), map[string]grants.State{"a": grants.StateActive})
	*clock = (*clock).Add(time.Second)
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	sameStates(t, s.states(), map[string]grants.State{"a": grants.StateActive})
	if g, ok := f.Grant("a"); !ok || g.State != grants.StateActive {
		t.Fatalf("Grant(a) = %v %v", g, ok)
	}
	// Revoked here: ended at once, even while visibility still lists it.
	l.set(active)
	revoked := active
	revoked.State = grants.StateRevoked
	f.Apply(revoked)
	sameStates(t, s.states(), map[string]grants.State{"a": grants.StateRevoked})
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	sameStates(t, s.states(), map[string]grants.State{"a": grants.StateRevoked})
	// Gone from visibility: stays revoked.
	l.set()
	*clock = (*clock).Add(2 * localHold)
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	sameStates(t, s.states(), map[string]grants.State{"a": grants.StateRevoked})
}

func TestFollowerRunLogsAndStops(t *testing.T) {
	l := &fakeLister{err: errors.New("unavailable")}
	f := NewFollower(l, "grants", &sink{}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	f.Run(ctx, 10*time.Millisecond)
	if l.calls < 2 {
		t.Fatalf("%d polls, want several", l.calls)
	}
}

// A grant approved here and then ended through another frontend is ended
// here at the next poll, even before visibility showed the approval.
func TestFollowerAppliedThenEndedElsewhere(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	f, l, s, clock := newTestFollower(now)
	ctx := context.Background()
	l.set(grantAt("a", grants.StateRequested, now, time.Hour))
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	f.Apply(grantAt("a", grants.StateActive, now, time.Hour))
	l.set() // revoked elsewhere, before any poll listed it active
	*clock = (*clock).Add(time.Second)
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	sameStates(t, s.states(), map[string]grants.State{"a": grants.StateRevoked})

	// A grant started here stays while visibility does not list it yet, then not.
	f.Apply(grantAt("b", grants.StateActive, *clock, time.Hour))
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	sameStates(t, s.states(), map[string]grants.State{"a": grants.StateRevoked, "b": grants.StateActive})
	*clock = (*clock).Add(newGrantLag + time.Second)
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	sameStates(t, s.states(), map[string]grants.State{"a": grants.StateRevoked, "b": grants.StateRevoked})
}

// The first poll loads the grants ended within the last hour.
func TestFollowerLoadsRecentlyEnded(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	expired := grantAt("old", grants.StateExpired, now.Add(-2*time.Hour), time.Hour)
	expired.EndedAt = now.Add(-time.Hour + time.Minute)
	l := &fakeLister{closed: []grants.Grant{expired}}
	l.set(grantAt("a", grants.StateActive, now, time.Hour))
	s := &sink{}
	f := NewFollower(l, "grants", s, nil)
	f.now = func() time.Time { return now }
	if err := f.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	sameStates(t, s.states(), map[string]grants.State{"a": grants.StateActive, "old": grants.StateExpired})
	calls := l.calls
	if err := f.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l.calls-calls != 1 {
		t.Fatalf("%d list calls in a later poll, want 1 (the running grants)", l.calls-calls)
	}
}
