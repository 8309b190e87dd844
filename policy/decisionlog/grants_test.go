package decisionlog_test

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy/decisionlog"
	"github.com/temporal-opa/temporal-opa/policy/grants"
)

// Events of calls allowed under a time-bound grant name it (custom.grant), and
// grant operations and expiries are events of their own, at their own paths,
// with the verified identities; an allowed break glass is marked for alerts;
// replaying a call's recorded input gives the same decision.
func TestGrantEvents(t *testing.T) {
	var out syncBuffer
	az, dl := newLogged(t, "", decisionlog.Options{ForceConsole: true, Console: &out})
	now := time.Now()
	g := grants.Grant{
		ID: "g-1", Subject: grants.Subject{Subject: "rita"}, Namespace: "default", Role: "write",
		NotBefore: now.Add(-time.Minute), Expires: now.Add(time.Hour), Reason: "INC-42", State: grants.StateActive,
		RequestedBy: grants.Identity{Subject: "rita"}, ApprovedBy: &grants.Identity{Subject: "ada"},
	}
	az.SetGrants([]grants.Grant{g})
	rita := reader("default")
	rita.Subject = "rita"
	if res, err := az.Authorize(context.Background(), rita, &authorization.CallTarget{APIName: apiStart, Namespace: "default"}); err != nil || res.Decision != authorization.DecisionAllow {
		t.Fatal(res, err)
	}
	bg := g
	bg.ID, bg.BreakGlass, bg.ApprovedBy, bg.Expires = "g-2", true, nil, now.Add(30*time.Minute)
	if d, _ := az.DecideGrant(context.Background(), rita, grants.OpBreakGlass, bg); !d.Allow {
		t.Fatalf("break glass refused: %s", d.Reason)
	}
	az.RecordGrantEnded(g)
	closeLogger(t, dl)
	evs := events(t, out.String())
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}
	custom := func(i int) map[string]any { c, _ := evs[i]["custom"].(map[string]any); return c }
	call := custom(0)["grant"].(map[string]any)
	if call["id"] != "g-1" || call["reason"] != "INC-42" || call["approved_by"] != "ada" || call["role"] != "write" {
		t.Errorf("custom.grant of the call: %v", call)
	}
	in, _ := evs[0]["input"].(map[string]any)
	if gs, _ := in["grants"].([]any); len(gs) != 1 {
		t.Errorf("input.grants of the call: %v", in["grants"])
	}
	d, err := az.DecideInput(context.Background(), in)
	if err != nil || !d.Allow || d.Grant != "g-1" {
		t.Errorf("replay of the recorded input: %+v, %v", d, err)
	}
	if evs[1]["path"] != "temporal/grants/decision" || custom(1)["alert"] != "break_glass" {
		t.Errorf("break glass event: path %v, custom %v", evs[1]["path"], custom(1))
	}
	op := custom(1)["grant_operation"].(map[string]any)
	if op["operation"] != "break_glass" || op["grant"].(map[string]any)["requested_by"] != "rita" {
		t.Errorf("custom.grant_operation: %v", op)
	}
	if evs[2]["path"] != "temporal/grants/ended" || custom(2)["grant_operation"].(map[string]any)["operation"] != "expire" {
		t.Errorf("expiry event: path %v, custom %v", evs[2]["path"], custom(2))
	}
}
