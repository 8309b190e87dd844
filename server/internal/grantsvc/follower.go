package grantsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/grpc"

	"github.com/temporal-opa/temporal-opa/policy/grants"
)

// DefaultPollInterval is how often a follower lists the running grants when
// grants.poll_interval is not set.
const DefaultPollInterval = time.Second

// KeepEnded is how long a follower keeps a grant that left the running list,
// as ended: deny reasons can then name it.
const KeepEnded = time.Hour

// localHold is how long a grant applied by this frontend (Apply) wins over an
// older state listed by visibility, which may lag behind the workflow.
const localHold = time.Minute

// newGrantLag is how long a grant started by this frontend stays in force
// (as applied) while visibility does not list it yet.
const newGrantLag = 5 * time.Second

// RunningQuery is the visibility query of the running grant workflows.
const RunningQuery = "WorkflowType = '" + WorkflowType + "' AND ExecutionStatus = 'Running'"

// Lister is the part of the WorkflowService a follower calls.
type Lister interface {
	ListWorkflowExecutions(ctx context.Context, in *workflowservice.ListWorkflowExecutionsRequest, opts ...grpc.CallOption) (*workflowservice.ListWorkflowExecutionsResponse, error)
}

// GrantSetter takes the grants a follower knows; *policy.Authorizer is one.
type GrantSetter interface {
	SetGrants(gs []grants.Grant)
}

// Follower follows the grants of a namespace: every poll it lists the
// running grant workflows, decodes each one's memo and gives the set, with
// the grants that ended within KeepEnded, to a GrantSetter.
type Follower struct {
	lister    Lister
	namespace string
	sink      GrantSetter
	log       *slog.Logger
	now       func() time.Time

	mu      sync.Mutex
	running map[string]grants.Grant // by id, as last listed (or applied)
	ended   map[string]grants.Grant // by id, ended within KeepEnded (EndedAt set)
	applied map[string]applied      // by id, applied by this frontend, until visibility catches up
	loaded  bool
	lastErr time.Time // when a poll error was last logged
	errs    int       // poll errors since then
}

type applied struct {
	g  grants.Grant
	at time.Time
	// fresh: the grant was unknown when applied (started by this frontend);
	// visibility may not list it yet. A grant already known that a poll does
	// not list has ended, whatever was applied.
	fresh bool
}

// NewFollower returns a follower of namespace; log may be nil.
func NewFollower(l Lister, namespace string, sink GrantSetter, log *slog.Logger) *Follower {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Follower{lister: l, namespace: namespace, sink: sink, log: log, now: time.Now,
		running: map[string]grants.Grant{}, ended: map[string]grants.Grant{}, applied: map[string]applied{}}
}

// Loaded reports whether a poll has succeeded.
func (f *Follower) Loaded() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.loaded
}

// Run polls every interval until ctx is done, starting at once.
func (f *Follower) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := f.Poll(ctx); err != nil && ctx.Err() == nil {
			f.logError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// logError logs poll errors at most once a minute, with how many there were.
func (f *Follower) logError(err error) {
	f.mu.Lock()
	f.errs++
	now := f.now()
	if now.Sub(f.lastErr) < time.Minute {
		f.mu.Unlock()
		return
	}
	n := f.errs
	f.lastErr, f.errs = now, 0
	f.mu.Unlock()
	f.log.Warn("grants: listing the grants failed; the last grants listed stay in force", "errors", n, "error", err)
}

// endedQuery is the visibility query of the grant workflows closed since t.
func endedQuery(t time.Time) string {
	return "WorkflowType = '" + WorkflowType + "' AND ExecutionStatus != 'Running' AND CloseTime > '" +
		t.UTC().Format(time.RFC3339) + "'"
}

// list lists the grant workflows of query, by id.
func (f *Follower) list(ctx context.Context, query string) (map[string]grants.Grant, error) {
	listed := map[string]grants.Grant{}
	var next []byte
	for pages := 0; ; pages++ {
		if pages >= 1000 {
			return nil, errors.New("grants: more than 1000 pages of grants")
		}
		resp, err := f.lister.ListWorkflowExecutions(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: f.namespace, PageSize: 1000, NextPageToken: next, Query: query,
		})
		if err != nil {
			return nil, fmt.Errorf("grants: list the grants of namespace %s: %w", f.namespace, err)
		}
		for _, e := range resp.GetExecutions() {
			id := e.GetExecution().GetWorkflowId()
			g, err := DecodeMemo(e.GetMemo())
			if err != nil {
				f.log.Warn("grants: a grant workflow's memo cannot be read; it is ignored", "workflow_id", id, "error", err)
				continue
			}
			if WorkflowID(g.ID) != id {
				f.log.Warn("grants: a grant workflow's memo names another grant; it is ignored", "workflow_id", id, "grant", g.ID)
				continue
			}
			if ct := e.GetCloseTime(); ct != nil && g.EndedAt.IsZero() {
				g.EndedAt = ct.AsTime()
			}
			listed[g.ID] = g
		}
		if next = resp.GetNextPageToken(); len(next) == 0 {
			return listed, nil
		}
	}
}

// Poll lists the running grants once and gives the result to the sink. On
// error the grants it had stay as they are. The first poll that succeeds
// also loads the grants ended within KeepEnded (so that deny reasons name
// them after a restart); that part is best effort.
func (f *Follower) Poll(ctx context.Context) error {
	listed, err := f.list(ctx, RunningQuery)
	if err != nil {
		return err
	}
	f.mu.Lock()
	first := !f.loaded
	f.mu.Unlock()
	var closed map[string]grants.Grant
	if first {
		if closed, err = f.list(ctx, endedQuery(f.now().Add(-KeepEnded))); err != nil {
			f.log.Warn("grants: the grants ended recently could not be listed; deny reasons will not name them", "error", err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	for id, g := range closed {
		if _, ok := listed[id]; !ok && final(g.State) {
			f.ended[id] = g
		}
	}
	for id, a := range f.applied {
		l, ok := listed[id]
		switch {
		case now.Sub(a.at) > localHold:
			delete(f.applied, id)
		case final(a.g.State):
			// Ended here: visibility may still list it running for a moment.
			delete(listed, id)
		case ok && rank(l) >= rank(a.g):
			delete(f.applied, id) // visibility caught up
		case ok:
			listed[id] = a.g // visibility lags behind this frontend's change
			a.fresh = false
			f.applied[id] = a
		case a.fresh && now.Sub(a.at) < newGrantLag:
			listed[id] = a.g // started here, not listed yet
		default:
			// Not listed: it ended (through another frontend, or by itself).
			delete(f.applied, id)
		}
	}
	for id, g := range f.running {
		if _, ok := listed[id]; ok {
			continue
		}
		if _, ok := f.ended[id]; ok {
			continue
		}
		// It left the running list: it ended, by a call if before its expiry.
		if g.State == grants.StateActive && now.Before(g.Expires) {
			g.State = grants.StateRevoked
		} else if !final(g.State) {
			g.State = grants.StateExpired
		}
		if g.EndedAt.IsZero() {
			g.EndedAt = now
		}
		f.ended[id] = g
	}
	for id := range listed {
		delete(f.ended, id)
	}
	f.running = listed
	f.loaded = true
	f.publish(now)
	return nil
}

// Apply takes the state of a grant an operation on this frontend just
// changed, at once, before the next poll: its result wins over what
// visibility lists until visibility shows it too (or for a minute).
func (f *Follower) Apply(g grants.Grant) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	_, running := f.running[g.ID]
	_, ended := f.ended[g.ID]
	f.applied[g.ID] = applied{g: g, at: now, fresh: !running && !ended}
	if final(g.State) {
		delete(f.running, g.ID)
		if g.EndedAt.IsZero() {
			g.EndedAt = now
		}
		f.ended[g.ID] = g
	} else {
		f.running[g.ID] = g
		delete(f.ended, g.ID)
	}
	f.publish(now)
}

// Grant is the grant id as this follower knows it (running or recently
// ended).
func (f *Follower) Grant(id string) (grants.Grant, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if g, ok := f.running[id]; ok {
		return g, true
	}
	g, ok := f.ended[id]
	return g, ok
}

// publish gives the sink every grant known, dropping those ended more than
// KeepEnded ago. f.mu is held.
func (f *Follower) publish(now time.Time) {
	for id, g := range f.ended {
		if now.Sub(g.EndedAt) > KeepEnded {
			delete(f.ended, id)
		}
	}
	all := make([]grants.Grant, 0, len(f.running)+len(f.ended))
	for _, id := range slices.Sorted(maps.Keys(f.running)) {
		all = append(all, f.running[id])
	}
	for _, id := range slices.Sorted(maps.Keys(f.ended)) {
		all = append(all, f.ended[id])
	}
	f.sink.SetGrants(all)
}

// rank orders the states of a grant in its life: a later state never goes
// back to an earlier one.
func rank(g grants.Grant) int {
	switch {
	case g.State == grants.StateRequested:
		return 0
	case g.State == grants.StateActive && g.ApprovedBy == nil:
		return 1
	case g.State == grants.StateActive:
		return 2
	default:
		return 3
	}
}

// DecodeMemo reads the grant of a grant workflow's memo (MemoKey).
func DecodeMemo(m *commonpb.Memo) (grants.Grant, error) {
	var g grants.Grant
	p := m.GetFields()[MemoKey]
	if p == nil {
		return g, fmt.Errorf("no memo %q", MemoKey)
	}
	if err := converter.GetDefaultDataConverter().FromPayload(p, &g); err != nil {
		return g, fmt.Errorf("memo %q: %w", MemoKey, err)
	}
	if g.ID == "" {
		return g, fmt.Errorf("memo %q: no grant id", MemoKey)
	}
	return g, nil
}
