package policy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
	"go.temporal.io/server/common/authorization"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/temporal-opa/temporal-opa/policy"
)

const (
	apiStart    = "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution"
	apiDescribe = "/temporal.api.workflowservice.v1.WorkflowService/DescribeWorkflowExecution"
	apiListNS   = "/temporal.api.workflowservice.v1.WorkflowService/ListNamespaces"
	apiTerm     = "/temporal.api.workflowservice.v1.WorkflowService/TerminateWorkflowExecution"
)

var (
	reader = &authorization.Claims{Subject: "alice", AuthType: "jwt", Namespaces: map[string]authorization.Role{"payments": authorization.RoleReader}}
	writer = &authorization.Claims{Subject: "bob", AuthType: "jwt", Namespaces: map[string]authorization.Role{"payments": authorization.RoleWriter}}
	worker = &authorization.Claims{Subject: "svc", AuthType: "jwt", Namespaces: map[string]authorization.Role{"payments": authorization.RoleWorker}}
	admin  = &authorization.Claims{Subject: "root", AuthType: "jwt", System: authorization.RoleAdmin}
)

func target(api, ns string) *authorization.CallTarget {
	return &authorization.CallTarget{APIName: api, Namespace: ns}
}

// writeBundle writes files (path to content) as a bundle directory and loads it.
func writeBundle(t testing.TB, files map[string]string) *bundle.Bundle {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := policy.LoadBundle(dir)
	if err != nil {
		t.Fatalf("LoadBundle: %v", err)
	}
	return b
}

// newAuthorizer returns an Authorizer with bundles layered on the default
// policy, named bundle-1, bundle-2...
func newAuthorizer(t *testing.T, opts policy.Options, bundles ...*bundle.Bundle) *policy.Authorizer {
	t.Helper()
	a, err := policy.NewAuthorizer(opts, numbered(bundles...))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAuthorizeDefaultPolicy(t *testing.T) {
	a := newAuthorizer(t, policy.Options{})
	tests := []struct {
		name      string
		claims    *authorization.Claims
		target    *authorization.CallTarget
		allow     bool
		reason    string
		principal string
	}{
		{name: "reader describes", claims: reader, target: target(apiDescribe, "payments"), allow: true, principal: "jwt/alice"},
		{name: "reader cannot start", claims: reader, target: target(apiStart, "payments"),
			reason: `StartWorkflowExecution in namespace "payments" requires write; caller has read`},
		{name: "writer starts", claims: writer, target: target(apiStart, "payments"), allow: true, principal: "jwt/bob"},
		{name: "worker alone cannot poll-equivalent write", claims: worker, target: target(apiStart, "payments"),
			reason: `StartWorkflowExecution in namespace "payments" requires write; caller has worker`},
		{name: "no claims", claims: nil, target: target(apiStart, "payments"),
			reason: "StartWorkflowExecution requires a token: the call carried no credentials"},
		{name: "health check without claims has no principal", claims: nil, target: target("/grpc.health.v1.Health/Check", ""), allow: true},
		{name: "health check with claims has no principal", claims: writer, target: target("/grpc.health.v1.Health/Check", ""), allow: true},
		{name: "namespace admin cannot list namespaces", claims: &authorization.Claims{Subject: "x", Namespaces: map[string]authorization.Role{"payments": authorization.RoleAdmin}},
			target: target(apiListNS, ""), reason: "ListNamespaces is a cluster API and requires read on temporal-system; caller has no role"},
		{name: "system admin lists namespaces", claims: admin, target: target(apiListNS, ""), allow: true, principal: "jwt/root"},
		{name: "nil target is an unknown API", claims: admin, target: nil, reason: `unknown API "" is denied`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := a.Authorize(context.Background(), tc.claims, tc.target)
			if err != nil {
				t.Fatal(err)
			}
			if (got.Decision == authorization.DecisionAllow) != tc.allow {
				t.Fatalf("decision %v (reason %q), want allow=%v", got.Decision, got.Reason, tc.allow)
			}
			if !tc.allow && got.Reason != tc.reason {
				t.Errorf("reason %q, want %q", got.Reason, tc.reason)
			}
			if p := principal(got); tc.allow && p != orNil(tc.principal) {
				t.Errorf("principal %s, want %s", p, orNil(tc.principal))
			}
		})
	}
}

func orNil(s string) string {
	if s == "" {
		return "<nil>"
	}
	return s
}

// faultBundle is a bundle rooted at "faults" whose data.faults.decision is rule.
func faultBundle(t *testing.T, rule string) *bundle.Bundle {
	return writeBundle(t, map[string]string{
		".manifest":          `{"roots": ["faults"]}`,
		"faults/policy.rego": "package faults\n\n" + rule + "\n",
	})
}

func TestAuthorizeFailsClosed(t *testing.T) {
	tests := []struct {
		name    string
		rule    string
		timeout time.Duration
		code    policy.ErrorCode
	}{
		{name: "evaluation error", code: policy.CodeEvalError,
			rule: "decision := {\"allow\": true} if input.target.method != \"\"\ndecision := {\"allow\": false} if input.target.namespace != \"\""},
		{name: "undefined decision", code: policy.CodeUndefinedDecision,
			rule: `decision := {"allow": true} if input.target.namespace == "nowhere"`},
		{name: "decision is a string", code: policy.CodeInvalidDecision, rule: `decision := "allow"`},
		{name: "allow is a string", code: policy.CodeInvalidDecision, rule: `decision := {"allow": "true", "reason": "x"}`},
		{name: "allow missing", code: policy.CodeInvalidDecision, rule: `decision := {"reason": "x"}`},
		{name: "reason is a number", code: policy.CodeInvalidDecision, rule: `decision := {"allow": true, "reason": 7}`},
		{name: "timeout", code: policy.CodeEvalTimeout, timeout: 50 * time.Millisecond,
			rule: "decision := {\"allow\": true} if {\n\tsome x in numbers.range(1, 20000)\n\tsome y in numbers.range(1, 20000)\n\tx * y == -1\n}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAuthorizer(t, policy.Options{DecisionPath: "data.faults.decision", EvalTimeout: tc.timeout, DecisionCacheSize: -1}, faultBundle(t, tc.rule))
			got, err := a.Authorize(context.Background(), admin, target(apiStart, "payments"))
			if got.Decision != authorization.DecisionDeny {
				t.Fatalf("decision %v, want deny", got.Decision)
			}
			var ee *policy.EvalError
			if !errors.As(err, &ee) || ee.Code != tc.code {
				t.Fatalf("error %v, want an *EvalError with code %s", err, tc.code)
			}
			if !strings.Contains(got.Reason, string(tc.code)) {
				t.Errorf("reason %q does not name %s", got.Reason, tc.code)
			}
			if st, ok := status.FromError(err); !ok || st.Code() != codes.PermissionDenied {
				t.Errorf("gRPC status of the error: %v, want PermissionDenied", st)
			}
		})
	}
}

func TestAuthorizeHonoursCallerDeadline(t *testing.T) {
	a := newAuthorizer(t, policy.Options{DecisionPath: "data.faults.decision", DecisionCacheSize: -1},
		faultBundle(t, "decision := {\"allow\": true} if {\n\tsome x in numbers.range(1, 20000)\n\tsome y in numbers.range(1, 20000)\n\tx * y == -1\n}"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	got, err := a.Authorize(ctx, admin, target(apiStart, "payments"))
	var ee *policy.EvalError
	if got.Decision != authorization.DecisionDeny || !errors.As(err, &ee) || ee.Code != policy.CodeEvalTimeout {
		t.Fatalf("got %v, %v; want deny with %s", got.Decision, err, policy.CodeEvalTimeout)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Fatalf("evaluation was not stopped: it ran %s", elapsed)
	}
}

func TestDecisionOfBooleanShape(t *testing.T) {
	a := newAuthorizer(t, policy.Options{DecisionPath: "data.faults.allow"},
		faultBundle(t, "default allow := false\n\nallow if input.claims.subject == \"root\""))
	for _, tc := range []struct {
		claims *authorization.Claims
		want   authorization.Decision
	}{{admin, authorization.DecisionAllow}, {writer, authorization.DecisionDeny}} {
		got, err := a.Authorize(context.Background(), tc.claims, target(apiStart, "payments"))
		if err != nil || got.Decision != tc.want {
			t.Errorf("%s: got %v, %v; want %v", tc.claims.Subject, got.Decision, err, tc.want)
		}
		if got.Decision == authorization.DecisionDeny && got.Reason != "denied by policy" {
			t.Errorf("reason %q", got.Reason)
		}
	}
}

const customManifest = `{"roots": ["temporal/custom"], "revision": "r1", "metadata": {"name": "custom"}}`

func TestCustomRulesLayerOnDefault(t *testing.T) {
	a := newAuthorizer(t, policy.Options{})
	custom := writeBundle(t, map[string]string{
		".manifest": customManifest,
		"temporal/custom/rules.rego": `package temporal.custom

deny contains "terminate is disabled in production" if {
	input.target.namespace == "production"
	input.target.method == "TerminateWorkflowExecution"
}

allow if {
	input.target.method == "StartWorkflowExecution"
	"worker" in input.claims.namespaces[input.target.namespace]
}
`,
	})
	if err := a.SetBundles(context.Background(), map[string]*bundle.Bundle{"custom": custom}); err != nil {
		t.Fatal(err)
	}
	st := a.Status()
	if st.Revisions["custom"] != "r1" || len(st.Revisions) != 2 {
		t.Errorf("revisions %v, want custom r1 and the default", st.Revisions)
	}
	tests := []struct {
		name   string
		claims *authorization.Claims
		target *authorization.CallTarget
		allow  bool
		reason string
	}{
		{"custom deny beats system admin", admin, target(apiTerm, "production"), false, "terminate is disabled in production"},
		{"default still allows elsewhere", admin, target(apiTerm, "staging"), true, ""},
		{"custom allow grants worker start", worker, target(apiStart, "payments"), true, ""},
		{"default still denies reader start", reader, target(apiStart, "payments"), false, `StartWorkflowExecution in namespace "payments" requires write; caller has read`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := a.Authorize(context.Background(), tc.claims, tc.target)
			if err != nil {
				t.Fatal(err)
			}
			if (got.Decision == authorization.DecisionAllow) != tc.allow || (!tc.allow && got.Reason != tc.reason) {
				t.Fatalf("got %v %q, want allow=%v %q", got.Decision, got.Reason, tc.allow, tc.reason)
			}
		})
	}
}

func TestBundleReplacingDefault(t *testing.T) {
	a := newAuthorizer(t, policy.Options{})
	replacement := writeBundle(t, map[string]string{
		".manifest": `{"roots": ["temporal/authz"]}`,
		"temporal/authz/mine.rego": `package temporal.authz

default decision := {"allow": false, "reason": "only bob"}

decision := {"allow": true, "reason": "bob"} if input.claims.subject == "bob"
`,
	})
	if err := a.SetBundles(context.Background(), map[string]*bundle.Bundle{"custom": replacement}); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Status().Revisions["temporal-opa/default"]; ok {
		t.Fatal("the default policy is still active next to a bundle that replaces it")
	}
	got, _ := a.Authorize(context.Background(), admin, target(apiDescribe, "payments"))
	if got.Decision != authorization.DecisionDeny || got.Reason != "only bob" {
		t.Fatalf("system admin: %v %q, want the replacement's deny", got.Decision, got.Reason)
	}
	got, _ = a.Authorize(context.Background(), writer, target(apiTerm, "payments"))
	if got.Decision != authorization.DecisionAllow {
		t.Fatalf("bob: %v %q, want allow", got.Decision, got.Reason)
	}
}

func TestBadBundleKeepsPreviousPolicy(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		stage policy.Stage
		want  string
	}{
		{name: "syntax error", stage: "load", want: "rules.rego:4",
			files: map[string]string{".manifest": customManifest, "temporal/custom/rules.rego": "package temporal.custom\n\ndeny contains \"x\" if {\n"}},
		{name: "typo against the input schema", stage: "compile", want: "undefined ref: input.claim",
			files: map[string]string{".manifest": customManifest, "temporal/custom/rules.rego": "package temporal.custom\n\ndeny contains \"x\" if input.claim.subject == \"eve\"\n"}},
		{name: "type error against the input schema", stage: "compile", want: "rego_type_error",
			files: map[string]string{".manifest": customManifest, "temporal/custom/rules.rego": "package temporal.custom\n\ndeny contains \"x\" if input.target.health_check == \"yes\"\n"}},
		{name: "package outside the manifest roots", stage: "load", want: "do not permit 'package elsewhere'",
			files: map[string]string{".manifest": customManifest, "elsewhere/rules.rego": "package elsewhere\n\nx := 1\n"}},
		{name: "custom deny written as a boolean", stage: "compile", want: "rules.rego:3: data.temporal.custom.deny must be a set of reason strings",
			files: map[string]string{".manifest": customManifest, "temporal/custom/rules.rego": "package temporal.custom\n\ndeny if input.target.namespace == \"prod\"\n"}},
		{name: "custom allow written as a set", stage: "compile", want: "data.temporal.custom.allow must be a boolean",
			files: map[string]string{".manifest": customManifest, "temporal/custom/rules.rego": "package temporal.custom\n\nallow contains \"x\" if true\n"}},
		{name: "no manifest roots replaces the default and has no entrypoint", stage: "entrypoint", want: "temporal/custom",
			files: map[string]string{"temporal/custom/rules.rego": "package temporal.custom\n\ndeny contains \"x\" if false\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAuthorizer(t, policy.Options{})
			before := a.Status()
			dir := t.TempDir()
			for name, content := range tc.files {
				p := filepath.Join(dir, name)
				_ = os.MkdirAll(filepath.Dir(p), 0o755)
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			b, err := policy.LoadBundle(dir)
			if err == nil {
				err = a.SetBundles(context.Background(), map[string]*bundle.Bundle{"custom": b})
			}
			if err == nil {
				t.Fatal("bad bundle activated")
			}
			var ae *policy.ActivationError
			if b != nil && (!errors.As(err, &ae) || ae.Stage != tc.stage) {
				t.Errorf("error %v, want an *ActivationError at stage %s", err, tc.stage)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if after := a.Status(); after.Generation != before.Generation {
				t.Fatalf("generation moved from %d to %d", before.Generation, after.Generation)
			}
			got, err := a.Authorize(context.Background(), writer, target(apiStart, "payments"))
			if err != nil || got.Decision != authorization.DecisionAllow {
				t.Fatalf("previous policy not active: %v %v", got.Decision, err)
			}
		})
	}
}

func TestNewAuthorizerRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts policy.Options
		want string
	}{
		{"decision path not under data", policy.Options{DecisionPath: "input.x"}, "decision_path"},
		{"decision path not a ref", policy.Options{DecisionPath: "data.x[_"}, "decision_path"},
		{"negative timeout", policy.Options{EvalTimeout: -time.Second}, "eval_timeout"},
		{"decision path without rules", policy.Options{DecisionPath: "data.temporal.authz.nope"}, "no rule defines the decision path data.temporal.authz.nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := policy.NewAuthorizer(tc.opts, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// tokenExt stands for the Extensions a verifying claim mapper attaches.
type tokenExt struct {
	key    string
	claims map[string]any
	issuer string
	tls    map[string]any // a verified client certificate's claims (claimmapper.CertificateClaims)
}

func (e tokenExt) CertificateClaims() map[string]any { return e.tls }

func (e tokenExt) TokenClaims() map[string]any { return e.claims }
func (e tokenExt) CacheKey() string            { return e.key }
func (e tokenExt) Issuer() string              { return e.issuer }

func TestTokenClaimsReachInputAndCache(t *testing.T) {
	a := newAuthorizer(t, policy.Options{})
	if err := a.SetBundles(context.Background(), numbered(writeBundle(t, map[string]string{
		".manifest": customManifest,
		"temporal/custom/rules.rego": `package temporal.custom

deny contains "contractors may not start workflows" if {
	input.target.method == "StartWorkflowExecution"
	"contractors" in input.claims.jwt.groups
}
`,
	}))); err != nil {
		t.Fatal(err)
	}
	claims := func(key string, groups ...any) *authorization.Claims {
		return &authorization.Claims{Subject: "dan", AuthType: "jwt", Namespaces: map[string]authorization.Role{"payments": authorization.RoleWriter},
			Extensions: tokenExt{key: key, claims: map[string]any{"groups": groups, "iss": "https://idp.example"}}}
	}
	for i := 0; i < 3; i++ { // repeated calls go through the decision cache
		got, err := a.Authorize(context.Background(), claims("k1", "contractors"), target(apiStart, "payments"))
		if err != nil || got.Decision != authorization.DecisionDeny || got.Reason != "contractors may not start workflows" {
			t.Fatalf("call %d, contractor: %v %q %v", i, got.Decision, got.Reason, err)
		}
		got, err = a.Authorize(context.Background(), claims("k2", "staff"), target(apiStart, "payments"))
		if err != nil || got.Decision != authorization.DecisionAllow {
			t.Fatalf("call %d, staff: %v %q %v", i, got.Decision, got.Reason, err)
		}
	}
	d, err := a.Decide(context.Background(), claims("k1", "contractors"), target(apiStart, "payments"))
	if err != nil {
		t.Fatal(err)
	}
	jwt := d.Input["claims"].(map[string]any)["jwt"].(map[string]any)
	if jwt["iss"] != "https://idp.example" {
		t.Errorf("input.claims.jwt = %v", jwt)
	}
}

func TestNondeterministicPolicyIsNotCached(t *testing.T) {
	a := newAuthorizer(t, policy.Options{})
	if !a.Status().Cacheable {
		t.Fatal("the default policy should be cacheable")
	}
	if err := a.SetBundles(context.Background(), numbered(writeBundle(t, map[string]string{
		".manifest":                  customManifest,
		"temporal/custom/rules.rego": "package temporal.custom\n\ndeny contains \"closed at night\" if time.clock(time.now_ns())[0] > 25\n",
	}))); err != nil {
		t.Fatal(err)
	}
	if a.Status().Cacheable {
		t.Fatal("a policy calling time.now_ns must not be cached")
	}
}

// TestConcurrentAuthorizeAndActivate runs decisions while policies swap; run with -race.
func TestConcurrentAuthorizeAndActivate(t *testing.T) {
	a := newAuthorizer(t, policy.Options{})
	deny := writeBundle(t, map[string]string{".manifest": customManifest, "temporal/custom/rules.rego": "package temporal.custom\n\ndeny contains \"frozen\" if true\n"})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, err := a.Authorize(context.Background(), writer, target(apiStart, "payments"))
				if err != nil {
					t.Error(err)
					return
				}
				if got.Decision == authorization.DecisionDeny && got.Reason != "frozen" {
					t.Errorf("unexpected deny %q", got.Reason)
					return
				}
			}
		}()
	}
	for i := 0; i < 10; i++ {
		if err := a.SetBundles(context.Background(), map[string]*bundle.Bundle{"custom": deny}); err != nil {
			t.Fatal(err)
		}
		got, _ := a.Authorize(context.Background(), writer, target(apiStart, "payments"))
		if got.Decision != authorization.DecisionDeny {
			t.Fatalf("after activating the deny bundle: %v", got.Decision)
		}
		if err := a.SetBundles(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		got, _ = a.Authorize(context.Background(), writer, target(apiStart, "payments"))
		if got.Decision != authorization.DecisionAllow {
			t.Fatalf("after reverting to the default: %v %q", got.Decision, got.Reason)
		}
	}
	close(stop)
	wg.Wait()
}

func TestInputKeepsIntegersIntegral(t *testing.T) {
	claims := &authorization.Claims{Subject: "dan", AuthType: "jwt", Extensions: tokenExt{key: "k", claims: map[string]any{
		"exp": 1795423527.0, "scale": 0.5, "nested": map[string]any{"n": []any{2.0, "x", nil, true}},
	}}}
	in, err := policy.Input(claims, target(apiStart, "payments"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(in["claims"].(map[string]any)["jwt"])
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"exp":1795423527,"nested":{"n":[2,"x",null,true]},"scale":0.5}`; string(b) != want {
		t.Fatalf("input.claims.jwt = %s, want %s", b, want)
	}
}

// TestStaticAnalysisOfPolicies checks what the authorizer learns from a policy at
// activation: whether to build input.request, whether input.claims.jwt matters for
// the decision cache key, and whether decisions can be cached at all (not when a
// call's decision may depend on its whole request, a replaced input or a
// non-deterministic built-in).
func TestStaticAnalysisOfPolicies(t *testing.T) {
	tests := []struct {
		name                           string
		rule                           string
		usesRequest, readsJWT, caching bool
	}{
		{"default policy alone", "", false, false, true},
		{"token claim", `deny contains "x" if "contractors" in input.claims.jwt.groups`, false, true, true},
		{"claims as a whole", `deny contains "x" if count(input.claims) > 99`, false, true, true},
		{"computed input key", `deny contains "x" if { some k; input[k] == "boom" }`, true, true, false},
		{"request field", `deny contains "x" if input.request.workflow_id == "w"`, true, false, true},
		{"request type", `deny contains "x" if input.request_type == "t"`, true, false, true},
		{"whole request", `deny contains "x" if count(input.request) > 99`, true, false, false},
		{"request passed whole to a function", `deny contains "x" if object.get(input.request, "workflow_id", "") == "w"`, true, false, false},
		{"token claim by a computed key", `deny contains "x" if { some k; input.claims.jwt[k] == "boom" }`, false, true, true},
		{"with input", "deny contains \"x\" if data.temporal.authz.required_role == \"read\" with input.target.access as \"read\"", true, true, false},
		{"non-deterministic built-in", `deny contains "x" if time.now_ns() < 0`, false, false, false},
		{"target only", `deny contains "x" if input.target.namespace == "frozen"`, false, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var bundles []*bundle.Bundle
			if tc.rule != "" {
				bundles = append(bundles, writeBundle(t, map[string]string{
					".manifest":                  customManifest,
					"temporal/custom/rules.rego": "package temporal.custom\n\n" + tc.rule + "\n",
				}))
			}
			st := newAuthorizer(t, policy.Options{}, bundles...).Status()
			if st.UsesRequest != tc.usesRequest || st.ReadsJWT != tc.readsJWT || st.Cacheable != tc.caching {
				t.Fatalf("status uses_request=%v reads_jwt=%v decision_cache=%v; want %v %v %v",
					st.UsesRequest, st.ReadsJWT, st.Cacheable, tc.usesRequest, tc.readsJWT, tc.caching)
			}
		})
	}
}

// numbered names bundles bundle-1, bundle-2... for activation.
func numbered(bundles ...*bundle.Bundle) map[string]*bundle.Bundle {
	m := make(map[string]*bundle.Bundle, len(bundles))
	for i, b := range bundles {
		m[fmt.Sprintf("bundle-%d", i+1)] = b
	}
	return m
}
