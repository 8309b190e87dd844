package policy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/grants"
)

func (l *eventLog) all() []*policy.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*policy.Event(nil), l.events...)
}

func writeGrant(id string, from, to time.Time) grants.Grant {
	return grants.Grant{
		ID: id, Subject: grants.Subject{Subject: "alice"}, Namespace: "payments", Role: "write",
		NotBefore: from, Expires: to, Reason: "INC-7", State: grants.StateActive,
		RequestedBy: grants.Identity{Subject: "alice"}, ApprovedBy: &grants.Identity{Subject: "ada"},
	}
}

// A grant that ends in the middle of a stream of calls from one client: every
// call that ended before the expiry is allowed (from the cache after the
// first), every call that started after it is denied with a reason naming the
// expired grant, with no SetGrants at the boundary.
func TestGrantExpiresMidStream(t *testing.T) {
	log := &eventLog{}
	a := newAuthorizer(t, policy.Options{Recorder: log})
	now := time.Now()
	expiry := now.Add(300 * time.Millisecond)
	a.SetGrants([]grants.Grant{writeGrant("g-exp", now.Add(-time.Minute), expiry)})
	ctx := context.Background()
	var before, after, straddling int
	for time.Now().Before(expiry.Add(200 * time.Millisecond)) {
		start := time.Now()
		res, err := a.Authorize(ctx, reader, target(apiStart, "payments"))
		end := time.Now()
		allowed := err == nil && res.Decision == authorization.DecisionAllow
		switch {
		case end.Before(expiry):
			before++
			if !allowed {
				t.Fatalf("call %d before the expiry denied: %q", before, res.Reason)
			}
		case !start.Before(expiry):
			after++
			if allowed {
				t.Fatalf("call %d after the expiry allowed", after)
			}
			if want := `grant g-exp (write on "payments") expired at`; !strings.Contains(res.Reason, want) {
				t.Fatalf("deny reason %q does not name the expired grant (%q)", res.Reason, want)
			}
		default:
			straddling++
		}
		time.Sleep(2 * time.Millisecond)
	}
	if before < 10 || after < 10 {
		t.Fatalf("%d calls before the expiry and %d after: too few to show the boundary", before, after)
	}
	var cached, underGrant int
	for _, e := range log.all() {
		if e.Cached {
			cached++
		}
		if e.Grant != nil {
			underGrant++
			if e.Grant.ID != "g-exp" || !strings.HasPrefix(e.Reason, "allowed by grant g-exp (write on \"payments\" until ") {
				t.Errorf("event under grant %s with reason %q", e.Grant.ID, e.Reason)
			}
		}
	}
	if cached < before+after-3 {
		t.Errorf("%d of %d decisions came from the cache: the stream should be cached on each side of the boundary", cached, before+after+straddling)
	}
	if underGrant < before {
		t.Errorf("%d events name the grant, want at least %d", underGrant, before)
	}
	t.Logf("%d calls before the expiry (allowed), %d after (denied), %d straddling it; %d decisions from the cache", before, after, straddling, cached)
}

// A grant that starts in the middle of a stream: denied (cached) before its
// not-before, allowed from it on.
func TestGrantStartsMidStream(t *testing.T) {
	a := newAuthorizer(t, policy.Options{})
	now := time.Now()
	start := now.Add(200 * time.Millisecond)
	a.SetGrants([]grants.Grant{writeGrant("g-later", start, start.Add(time.Hour))})
	var before, after int
	for time.Now().Before(start.Add(150 * time.Millisecond)) {
		t0 := time.Now()
		res, _ := a.Authorize(context.Background(), reader, target(apiStart, "payments"))
		t1 := time.Now()
		allowed := res.Decision == authorization.DecisionAllow
		switch {
		case t1.Before(start):
			before++
			if allowed || !strings.Contains(res.Reason, `grant g-later (write on "payments") starts at`) {
				t.Fatalf("before the start: allowed %v, reason %q", allowed, res.Reason)
			}
		case !t0.Before(start):
			after++
			if !allowed {
				t.Fatalf("after the start: denied %q", res.Reason)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	if before < 10 || after < 10 {
		t.Fatalf("%d calls before the start and %d after: too few", before, after)
	}
}

func TestGrantMatchesItsSubjectOnly(t *testing.T) {
	a := newAuthorizer(t, policy.Options{})
	now := time.Now()
	group := writeGrant("g-group", now.Add(-time.Minute), now.Add(time.Hour))
	group.Subject = grants.Subject{Claim: "groups", Value: "oncall", Issuer: "https://idp.example"}
	api := writeGrant("g-api", now.Add(-time.Minute), now.Add(time.Hour))
	api.Subject, api.Role, api.APIs = grants.Subject{Subject: "carol"}, "", []string{"TerminateWorkflowExecution"}
	a.SetGrants([]grants.Grant{writeGrant("g-alice", now.Add(-time.Minute), now.Add(time.Hour)), group, api})
	person := func(sub, iss string, groups ...any) *authorization.Claims {
		return &authorization.Claims{Subject: sub, AuthType: "jwt", Extensions: tokenExt{key: sub + iss, claims: map[string]any{"sub": sub, "groups": groups}, issuer: iss}}
	}
	cases := []struct {
		name   string
		claims *authorization.Claims
		api    string
		grant  string // "" for a deny
	}{
		{"the subject", reader, apiStart, "g-alice"},
		{"another subject", worker, apiStart, ""},
		{"no claims", nil, apiStart, ""},
		{"a member of the group at its issuer", person("dan", "https://idp.example", "oncall"), apiStart, "g-group"},
		{"a member of the group at another issuer", person("dan", "https://other.example", "oncall"), apiStart, ""},
		{"not a member", person("dan", "https://idp.example", "devs"), apiStart, ""},
		{"an API grant allows its API", person("carol", ""), apiTerm, "g-api"},
		{"an API grant allows no other", person("carol", ""), apiStart, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := a.Decide(context.Background(), c.claims, target(c.api, "payments"))
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != (c.grant != "") || d.Grant != c.grant {
				t.Fatalf("allow %v grant %q (%q), want grant %q", d.Allow, d.Grant, d.Reason, c.grant)
			}
			res, _ := a.Authorize(context.Background(), c.claims, target(c.api, "payments"))
			if (res.Decision == authorization.DecisionAllow) != d.Allow {
				t.Fatalf("Authorize %v, Decide %v", res.Decision, d.Allow)
			}
		})
	}
	roles, err := a.CallerRoles(context.Background(), reader, target(apiListNS, ""))
	if err != nil || roles.Namespaces["payments"]&authorization.RoleWriter == 0 {
		t.Fatalf("CallerRoles under a write grant: %+v, %v", roles, err)
	}
}

func TestDecideGrant(t *testing.T) {
	log := &eventLog{}
	sre := writeBundle(t, map[string]string{
		".manifest":                    `{"roots": ["temporal/custom/sre"]}`,
		"temporal/custom/sre/sre.rego": "package temporal.custom.sre\n\ngrant_allow if input.caller.subject == \"rita\"\n",
	})
	a := newAuthorizer(t, policy.Options{Recorder: log}, sre)
	now := time.Now()
	req := writeGrant("g-1", now, now.Add(2*time.Minute))
	req.State, req.ApprovedBy = grants.StateRequested, nil
	payAdmin := &authorization.Claims{Subject: "ada", AuthType: "jwt", Namespaces: map[string]authorization.Role{"payments": authorization.RoleAdmin}}
	aliceAdmin := &authorization.Claims{Subject: "alice", AuthType: "jwt", Namespaces: map[string]authorization.Role{"payments": authorization.RoleAdmin}}
	rita := &authorization.Claims{Subject: "rita", AuthType: "jwt"}
	breakGlass := writeGrant("g-bg", now, now.Add(30*time.Minute))
	breakGlass.BreakGlass, breakGlass.ApprovedBy = true, nil
	cases := []struct {
		name   string
		claims *authorization.Claims
		op     string
		grant  grants.Grant
		allow  bool
		reason string
	}{
		{"a reader requests", reader, grants.OpRequest, req, true, "request allowed by the default grant policy"},
		{"an admin of the namespace approves", payAdmin, grants.OpApprove, req, true, "approve allowed by the default grant policy"},
		{"the requester cannot approve, even as admin", aliceAdmin, grants.OpApprove, req, false, "alice requested grant g-1 and cannot approve it: another person must (four eyes)"},
		{"a custom grant_allow cannot lift four eyes", &authorization.Claims{Subject: "rita", AuthType: "jwt"}, grants.OpApprove,
			func() grants.Grant { g := req; g.RequestedBy = grants.Identity{Subject: "rita"}; return g }(), false, "rita requested grant g-1 and cannot approve it: another person must (four eyes)"},
		{"a custom grant_allow lets another approve", rita, grants.OpApprove, req, true, "allowed by a custom rule (data.temporal.custom.sre.grant_allow)"},
		{"someone without admin cannot approve", writer, grants.OpApprove, req, false, `approve on a grant for namespace "payments" requires admin there, and a caller who neither requested the grant nor would hold it; caller has write`},
		{"no subject, no operation", nil, grants.OpList, req, false, "grant operations need a caller with a verified subject"},
		{"a reader breaks glass for itself", reader, grants.OpBreakGlass, breakGlass, true, "break_glass allowed by the default grant policy"},
		{"an unknown operation", reader, "frobnicate", req, false, "policy could not decide (invalid_input); the call is denied"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, _ := a.DecideGrant(context.Background(), c.claims, c.op, c.grant)
			if d.Allow != c.allow || !strings.HasPrefix(d.Reason, c.reason) {
				t.Fatalf("allow %v %q, want %v %q", d.Allow, d.Reason, c.allow, c.reason)
			}
			evs := log.all()
			e := evs[len(evs)-1]
			if e.GrantOperation == nil || e.GrantOperation.Operation != c.op || e.GrantOperation.Grant.ID != c.grant.ID || e.Allow != c.allow || e.ID != d.ID {
				t.Fatalf("recorded %+v", e)
			}
		})
	}
}

// The grants namespace is changed only through grant operations, whatever
// roles the caller holds; Temporal's internal principal is decided as usual.
func TestGrantsNamespaceGate(t *testing.T) {
	log := &eventLog{}
	a := newAuthorizer(t, policy.Options{GrantsNamespace: "temporal-opa-grants", Recorder: log})
	internal := &authorization.Claims{Subject: "internal", AuthType: "temporal", System: authorization.RoleAdmin}
	wf := "/temporal.api.workflowservice.v1.WorkflowService/"
	cases := []struct {
		name   string
		claims *authorization.Claims
		method string
		allow  bool
	}{
		{"a reader may request", reader, "StartWorkflowExecution", true},
		{"a reader may approve through an update", reader, "UpdateWorkflowExecution", true},
		{"a reader may list", reader, "ListWorkflowExecutions", true},
		{"a system admin may not terminate a grant", admin, "TerminateWorkflowExecution", false},
		{"a system admin may not signal a grant", admin, "SignalWorkflowExecution", false},
		{"no token may not list", nil, "ListWorkflowExecutions", false},
		{"the internal principal polls", internal, "PollWorkflowTaskQueue", true},
		{"the internal principal lists", internal, "ListWorkflowExecutions", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(log.all())
			res, err := a.Authorize(context.Background(), c.claims, target(wf+c.method, "temporal-opa-grants"))
			if (err == nil && res.Decision == authorization.DecisionAllow) != c.allow {
				t.Fatalf("decision %v (%q, %v), want allow %v", res.Decision, res.Reason, err, c.allow)
			}
			// The grant service's own calls are not decisions: not recorded.
			if recorded := len(log.all()) > before; recorded == (c.claims == internal) {
				t.Fatalf("recorded %v", recorded)
			}
		})
	}
	// A workflow of another namespace starting a child in the grants namespace.
	res, _ := a.Authorize(context.Background(), admin, &authorization.CallTarget{APIName: wf + "StartWorkflowExecution", Namespace: "temporal-opa-grants",
		Request: &workflowservice.RespondWorkflowTaskCompletedRequest{Namespace: "payments"}})
	if res.Decision != authorization.DecisionDeny || !strings.Contains(res.Reason, "not by workflows of other namespaces") {
		t.Fatalf("cross-namespace child: %v %q", res.Decision, res.Reason)
	}
	// Elsewhere the internal principal is decided by the policy, as ever.
	if res, _ := a.Authorize(context.Background(), internal, target(wf+"ListWorkflowExecutions", "payments")); res.Decision != authorization.DecisionAllow || len(log.all()) == 0 {
		t.Fatalf("internal principal on payments: %v", res.Decision)
	}
}
