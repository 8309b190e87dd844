package e2e

import (
	"context"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// forging sends a verified token and, beside it, principal headers of its
// own choosing, as a caller trying to put another name in a history would.
type forging struct{ *tokens }

func (f forging) GetHeaders(ctx context.Context) (map[string]string, error) {
	h, err := f.tokens.GetHeaders(ctx)
	if err != nil {
		return nil, err
	}
	h["temporal-principal-type"] = "jwt"
	h["temporal-principal-name"] = "ceo"
	return h, nil
}

// A workflow's history names who started and who signalled it: the verified
// token's subject, stamped by the server on the events each call wrote
// (frontend.enablePrincipalPropagation, on in start-dev). Principal headers a
// caller sends are not taken.
func TestHistoryNamesTheVerifiedCaller(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	starter := newTokens(srv.Key(), "default:write")
	starter.sub = "alice"
	signaller := newTokens(srv.Key(), "default:write")
	signaller.sub = "bob"
	id := randomName("principal")
	run, err := dial(t, "default", starter).ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: randomName("no-worker")}, Greet, "x")
	wantOK(t, "start as alice", err)
	err = dial(t, "default", forging{signaller}).SignalWorkflow(ctx, id, run.GetRunID(), "poke", "x")
	wantOK(t, "signal as bob, with forged principal headers", err)

	admin := dial(t, "default", newTokens(srv.Key(), "default:read"))
	it := admin.GetWorkflowHistory(ctx, id, run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	want := map[enumspb.EventType]string{
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:  "alice",
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: "bob",
	}
	seen := map[enumspb.EventType]bool{}
	for it.HasNext() {
		e, err := it.Next()
		wantOK(t, "read the history", err)
		name, ok := want[e.GetEventType()]
		if !ok {
			continue
		}
		seen[e.GetEventType()] = true
		if p := e.GetPrincipal(); p.GetType() != "jwt" || p.GetName() != name {
			t.Errorf("%s: principal %v, want jwt %q", e.GetEventType(), p, name)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("history has %v of the events %v", seen, want)
	}
}
