package policy_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/open-policy-agent/opa/v1/bundle"
	commandpb "go.temporal.io/api/command/v1"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	schedulepb "go.temporal.io/api/schedule/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy"
)

// echoRules deny calls to namespaces starting with "e-" with one reason per
// value they read, each naming the value: any two calls whose read values
// differ get different reasons. A decision cache whose key missed one of those
// values would hand one call the other's reasons.
const echoRules = `package temporal.custom

_echo if startswith(input.target.namespace, "e-")

deny contains sprintf("type=%v", [input.request.workflow_type.name]) if _echo

deny contains sprintf("queue=%v", [input.request.task_queue.name]) if _echo

deny contains sprintf("queue-kind=%v", [input.request.task_queue.kind]) if _echo

deny contains sprintf("header=%v", [input.request.header.fields.tenant]) if _echo

deny contains sprintf("child[%v]=%v", [i, input.request.commands[i].start_child_workflow_execution_command_attributes.workflow_type.name]) if _echo

deny contains sprintf("schedule=%v", [input.request.schedule.action.start_workflow.workflow_type.name]) if _echo

deny contains sprintf("request_type=%v", [input.request_type]) if _echo

deny contains sprintf("groups=%v", [input.claims.jwt.groups]) if _echo

deny contains sprintf("team=%v", [input.claims.jwt.org.team]) if _echo

deny contains sprintf("roles=%v", [input.claims.namespaces[input.target.namespace]]) if _echo

deny contains sprintf("system=%v", [input.claims.system]) if _echo

deny contains sprintf("issuer=%v", [input.claims.issuer]) if _echo
deny contains sprintf("spiffe=%v", [input.claims.tls.spiffe_id]) if _echo
deny contains sprintf("org=%v", [input.claims.tls.subject.organization]) if _echo
deny contains "no certificate" if {
	_echo
	not input.claims.tls.fingerprint_sha256
}

deny contains sprintf("subject=%v", [input.claims.subject]) if {
	_echo
	input.target.method == "QueryWorkflow"
}
`

// TestCacheKeysCoverWhatPoliciesRead decides random calls (claims, targets and
// requests drawn from small pools, so that they often share some values and
// differ in others) with caching authorizers, and each call again without cache
// on the whole input document (Decide): every decision and reason must agree.
// The policies read roles on the target namespace only, token claims by path,
// request fields by path, by iteration and parts of the request whole, and
// every one keeps the cache on. The events' Cached flag (a Recorder) counts
// the decisions that really came from the cache.
func TestCacheKeysCoverWhatPoliciesRead(t *testing.T) {
	ctx := context.Background()
	acl, err := policy.LoadBundle("../bundles/workflow-type-acl")
	if err != nil {
		t.Fatal(err)
	}
	custom := func(rules string) *bundle.Bundle {
		return writeBundle(t, map[string]string{".manifest": customManifest, "temporal/custom/rules.rego": rules})
	}
	policies := []struct {
		name    string
		bundles []*bundle.Bundle
	}{
		{"default", nil},
		{"echo of read values", []*bundle.Bundle{custom(echoRules)}},
		{"workflow-type-acl", []*bundle.Bundle{acl}},
		{"all namespaces", []*bundle.Bundle{custom(`package temporal.custom

deny contains sprintf("holds roles on %d namespaces", [count(input.claims.namespaces)]) if count(input.claims.namespaces) > 2
`)}},
		{"whole token", []*bundle.Bundle{custom(`package temporal.custom

deny contains sprintf("claims %v", [input.claims.jwt]) if startswith(input.target.namespace, "e-")
`)}},
		{"token by computed key", []*bundle.Bundle{custom(`package temporal.custom

deny contains sprintf("claim %s", [k]) if {
	some k
	input.claims.jwt[k] == "x"
}
`)}},
		{"whole certificate", []*bundle.Bundle{custom(`package temporal.custom
deny contains sprintf("certificate %v", [input.claims.tls]) if startswith(input.target.namespace, "e-")
`)}},
		{"request parts read whole", []*bundle.Bundle{custom(`package temporal.custom

deny contains sprintf("queue %v", [input.request.task_queue]) if startswith(input.target.namespace, "e-")

deny contains sprintf("header %v", [input.request.header]) if startswith(input.target.namespace, "e-")

deny contains sprintf("memo %v", [input.request.memo]) if startswith(input.target.namespace, "e-")
`)}},
	}
	for _, p := range policies {
		t.Run(p.name, func(t *testing.T) {
			rec := &lastEvent{}
			cached := newAuthorizer(t, policy.Options{DecisionCacheSize: 512, Recorder: rec}, p.bundles...)
			if st := cached.Status(); !st.Cacheable {
				t.Fatalf("the policy turns the decision cache off (%v): this case cannot catch a key that misses a value", st.CacheNotes)
			}
			rng := rand.New(rand.NewPCG(7, uint64(len(p.name))))
			const calls = 6000
			firstHits, repeats, repeatHits := 0, 0, 0
			for i := range calls {
				claims, target := randomCall(rng)
				got, gotErr := cached.Authorize(ctx, claims, target)
				if rec.cached {
					firstHits++
				}
				want, wantErr := cached.Decide(ctx, claims, target)
				if (gotErr == nil) != (wantErr == nil) || (got.Decision == authorization.DecisionAllow) != want.Allow || !want.Allow && got.Reason != want.Reason {
					t.Fatalf("call %d (%s %q, claims %+v, request %v): cached %v %q (%v, from the cache: %v), uncached %v %q (%v)",
						i, target.APIName, target.Namespace, claims, target.Request, got.Decision, got.Reason, gotErr, rec.cached, want.Allow, want.Reason, wantErr)
				}
				if gotErr != nil {
					continue // an error is not cached
				}
				repeats++
				again, _ := cached.Authorize(ctx, claims, target)
				if !rec.cached {
					continue
				}
				repeatHits++
				if again.Reason != got.Reason || again.Decision != got.Decision {
					t.Fatalf("call %d repeated: from the cache %v %q, decided %v %q", i, again.Decision, again.Reason, got.Decision, got.Reason)
				}
			}
			// A call decided without error is in the cache when it is repeated
			// at once: every repeat is a hit. A first call is a hit when an
			// earlier, different call had the same key: those are the cached
			// decisions that the comparison with Decide above checks.
			if repeatHits != repeats {
				t.Errorf("%d of %d repeated calls were decided again instead of taken from the cache", repeats-repeatHits, repeats)
			}
			if firstHits == 0 {
				t.Errorf("no call of %d was taken from the cache: the comparison with Decide tested no cached decision", calls)
			}
			t.Logf("%d of %d calls taken from the cache, %d of %d repeats", firstHits, calls, repeatHits, repeats)
		})
	}
}

// lastEvent records whether the last decision came from the decision cache.
type lastEvent struct{ cached bool }

func (l *lastEvent) Record(e *policy.Event) { l.cached = e.Cached }

// randomCall draws a call from small pools of values.
func randomCall(rng *rand.Rand) (*authorization.Claims, *authorization.CallTarget) {
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	namespaces := []string{"e-a", "e-b", "default", "payments", "e-c"}
	var claims *authorization.Claims
	if rng.IntN(20) > 0 {
		claims = &authorization.Claims{Subject: pick("alice", "bob"), AuthType: pick("jwt", "temporal"), System: authorization.Role(rng.IntN(3)) * authorization.RoleReader / 2}
		if rng.IntN(10) == 0 {
			claims.System = authorization.RoleAdmin
		}
		claims.Namespaces = map[string]authorization.Role{}
		for range rng.IntN(4) {
			claims.Namespaces[pick(namespaces...)] = authorization.Role(rng.IntN(16))
		}
		ext := map[string]any{"sub": claims.Subject}
		switch rng.IntN(4) {
		case 0:
			ext["groups"] = []any{pick("payments-team", "platform", "ops")}
		case 1:
			ext["groups"] = []any{"platform", "ops"}
		case 2:
			ext["groups"] = pick("payments-team", "x")
		}
		if rng.IntN(3) == 0 {
			ext["org"] = map[string]any{"team": pick("red", "blue"), "site": pick("a", "b")}
		}
		if rng.IntN(2) == 0 {
			ext["jti"] = fmt.Sprint(rng.IntN(3))
		}
		te := tokenExt{key: fmt.Sprint(ext), claims: ext, issuer: pick("https://idp.example", "https://k8s.example", "")}
		if rng.IntN(3) == 0 { // a verified client certificate, with or without the token's claims
			te.tls = randomCertificate(rng)
			if rng.IntN(2) == 0 {
				claims.AuthType, te.claims, te.issuer = "tls", nil, ""
			}
		}
		claims.Extensions = te
	}
	apis := []string{apiStart, apiDescribe, apiTerm, apiListNS,
		"/temporal.api.workflowservice.v1.WorkflowService/QueryWorkflow",
		"/temporal.api.workflowservice.v1.WorkflowService/CreateSchedule",
		"/temporal.api.workflowservice.v1.WorkflowService/RespondWorkflowTaskCompleted"}
	target := &authorization.CallTarget{APIName: pick(apis...), Namespace: pick(namespaces...)}
	wt := func() *commonpb.WorkflowType {
		if rng.IntN(6) == 0 {
			return nil
		}
		return &commonpb.WorkflowType{Name: pick("payments.Charge", "orders.Ship", "")}
	}
	switch rng.IntN(6) {
	case 0, 1:
		req := &workflowservice.StartWorkflowExecutionRequest{Namespace: target.Namespace, WorkflowId: fmt.Sprint(rng.IntN(1000)), WorkflowType: wt()}
		if rng.IntN(2) == 0 {
			req.TaskQueue = &taskqueuepb.TaskQueue{Name: pick("q1", "q2"), Kind: enumspb.TaskQueueKind(rng.IntN(3))}
		}
		if rng.IntN(3) == 0 {
			req.Header = &commonpb.Header{Fields: map[string]*commonpb.Payload{pick("tenant", "other"): {Data: []byte(pick("t1", "t2"))}}}
		}
		if rng.IntN(4) == 0 {
			req.Memo = &commonpb.Memo{Fields: map[string]*commonpb.Payload{"k": {Data: []byte("v")}}}
		}
		target.Request = req
	case 2:
		req := &workflowservice.RespondWorkflowTaskCompletedRequest{Namespace: target.Namespace}
		for range rng.IntN(3) {
			if rng.IntN(2) == 0 {
				req.Commands = append(req.Commands, &commandpb.Command{Attributes: &commandpb.Command_StartChildWorkflowExecutionCommandAttributes{
					StartChildWorkflowExecutionCommandAttributes: &commandpb.StartChildWorkflowExecutionCommandAttributes{Namespace: pick(namespaces...), WorkflowType: wt()}}})
			} else {
				req.Commands = append(req.Commands, &commandpb.Command{Attributes: &commandpb.Command_ScheduleActivityTaskCommandAttributes{
					ScheduleActivityTaskCommandAttributes: &commandpb.ScheduleActivityTaskCommandAttributes{ActivityId: fmt.Sprint(rng.IntN(5))}}})
			}
		}
		target.Request = req
	case 3:
		req := &workflowservice.CreateScheduleRequest{Namespace: target.Namespace, ScheduleId: fmt.Sprint(rng.IntN(100))}
		if rng.IntN(3) > 0 {
			req.Schedule = &schedulepb.Schedule{Action: &schedulepb.ScheduleAction{}}
			if rng.IntN(3) > 0 {
				req.Schedule.Action.Action = &schedulepb.ScheduleAction_StartWorkflow{StartWorkflow: &workflowpb.NewWorkflowExecutionInfo{WorkflowType: wt()}}
			}
		}
		target.Request = req
	case 4:
		target.Request = &workflowservice.DescribeNamespaceRequest{Namespace: target.Namespace}
	}
	return claims, target
}

// randomCertificate is the input.claims.tls of a client certificate, as
// claimmapper.CertificateClaims describes one.
func randomCertificate(rng *rand.Rand) map[string]any {
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	spiffe := pick("spiffe://prod.example/ns/payments/sa/worker", "spiffe://prod.example/ns/orders/sa/worker", "")
	uris := []any{}
	if spiffe != "" {
		uris = append(uris, spiffe)
	} else if rng.IntN(2) == 0 {
		uris = append(uris, "https://ci.example/bot")
	}
	org := []any{pick("Payments", "Orders")}
	cn := pick("payments-worker", "ci-bot")
	c := map[string]any{
		"subject":         map[string]any{"common_name": cn, "organization": org, "organizational_unit": []any{}, "country": []any{}, "province": []any{}, "locality": []any{}, "serial_number": "", "string": "CN=" + cn + ",O=" + org[0].(string)},
		"issuer":          map[string]any{"common_name": "ca", "organization": []any{}, "organizational_unit": []any{}, "country": []any{}, "province": []any{}, "locality": []any{}, "serial_number": "", "string": "CN=ca"},
		"spiffe_id":       spiffe,
		"uris":            uris,
		"dns_names":       []any{},
		"email_addresses": []any{},
		"ip_addresses":    []any{},
		"serial":          fmt.Sprintf("%x", rng.IntN(4)),
		"not_before":      "2026-01-01T00:00:00Z",
		"not_after":       "2027-01-01T00:00:00Z",
	}
	// The fingerprint identifies the certificate, as the SHA-256 of its DER does.
	c["fingerprint_sha256"] = fmt.Sprintf("%x", sha256.Sum256([]byte(fmt.Sprint(c))))
	return c
}
