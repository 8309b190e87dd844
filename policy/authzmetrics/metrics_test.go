package authzmetrics_test

import (
	"context"
	"errors"
	"testing"

	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/metrics"
	"go.temporal.io/server/common/metrics/metricstest"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/authzmetrics"
	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
)

const (
	apiStart = "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution"
	apiList  = "/temporal.api.workflowservice.v1.WorkflowService/ListWorkflowExecutions"
)

// count sums the recordings of name whose tags include want.
func count(snap metricstest.CaptureSnapshot, name string, want map[string]string) int {
	n := 0
	for _, r := range snap[name] {
		ok := true
		for k, v := range want {
			if r.Tags[k] != v {
				ok = false
			}
		}
		if ok {
			if v, isInt := r.Value.(int64); isInt {
				n += int(v)
			} else {
				n++
			}
		}
	}
	return n
}

func TestDecisionSeries(t *testing.T) {
	h := metricstest.NewCaptureHandler()
	capture := h.StartCapture()
	m := authzmetrics.New(h)
	for _, mode := range []string{policy.ModeEnforce, policy.ModeDryRun} {
		az, err := policy.NewAuthorizer(policy.Options{Recorder: m, Mode: mode}, nil)
		if err != nil {
			t.Fatal(err)
		}
		reader := &authorization.Claims{Subject: "r", Namespaces: map[string]authorization.Role{"default": authorization.RoleReader}}
		for range 3 { // first from the policy, then from the cache
			_, _ = az.Authorize(context.Background(), reader, &authorization.CallTarget{APIName: apiList, Namespace: "default"})
		}
		_, _ = az.Authorize(context.Background(), reader, &authorization.CallTarget{APIName: apiStart, Namespace: "default"})
		workload := &authorization.Claims{Subject: "w", Namespaces: map[string]authorization.Role{"default": authorization.RoleReader},
			Extensions: verifiedBy("https://k8s.example")}
		_, _ = az.Authorize(context.Background(), workload, &authorization.CallTarget{APIName: apiList, Namespace: "default"})
	}
	snap := capture.Snapshot()
	cases := []struct {
		name string
		tags map[string]string
		want int
	}{
		{"list allowed from the policy", map[string]string{"operation": "ListWorkflowExecutions", "decision": "allow", "source": "policy", "mode": "enforce"}, 1},
		{"list allowed from the cache", map[string]string{"operation": "ListWorkflowExecutions", "decision": "allow", "source": "cache", "mode": "enforce", "issuer": ""}, 2},
		{"start denied", map[string]string{"operation": "StartWorkflowExecution", "decision": "deny", "mode": "enforce"}, 1},
		{"start denied in dry run", map[string]string{"operation": "StartWorkflowExecution", "decision": "deny", "mode": "dry_run"}, 1},
		{"no issuer", map[string]string{"operation": "ListWorkflowExecutions", "mode": "enforce", "issuer": ""}, 3},
		{"by the verifying issuer", map[string]string{"operation": "ListWorkflowExecutions", "mode": "enforce", "issuer": "https://k8s.example"}, 1},
	}
	for _, tc := range cases {
		if got := count(snap, "temporal_opa_decisions", tc.tags); got != tc.want {
			t.Errorf("%s: temporal_opa_decisions%v = %d, want %d", tc.name, tc.tags, got, tc.want)
		}
	}
	if hits, misses := count(snap, "temporal_opa_decision_cache_requests", map[string]string{"result": "hit"}), count(snap, "temporal_opa_decision_cache_requests", map[string]string{"result": "miss"}); hits != 6 || misses != 4 {
		t.Errorf("cache hits %d, misses %d; want 6 and 4", hits, misses)
	}
	lat := snap["temporal_opa_policy_eval_latency_microseconds"]
	if len(lat) != 4 {
		t.Fatalf("eval latency recordings: %d, want 4", len(lat))
	}
	for _, r := range lat {
		if us, ok := r.Value.(int64); !ok || us <= 0 || us > 1_000_000 || r.Tags["operation"] == "" || r.Unit != metrics.Dimensionless {
			t.Errorf("eval latency recording %v %s (unit %q) %v: want microseconds (0 < µs <= 1 s), an operation, unit %q", r.Value, r.Tags["operation"], r.Unit, r.Tags, metrics.Dimensionless)
		}
	}
}

func TestHookSeries(t *testing.T) {
	h := metricstest.NewCaptureHandler()
	capture := h.StartCapture()
	m := authzmetrics.New(h)
	m.BundleActivated("authz", nil)
	m.BundleActivated("authz", &policy.ActivationError{Stage: "compile", Err: errors.New("x")})
	m.KeyFetch(nil)
	m.KeyFetch(errors.New("down"))
	m.TokenRefused(string(claimmapper.CodeUnknownKID))
	m.DecisionLogDropped()
	m.ShadowCompared(apiStart, false, "")
	m.ShadowCompared(apiStart, true, "allow_to_deny")
	snap := capture.Snapshot()
	for _, tc := range []struct {
		metric string
		tags   map[string]string
	}{
		{"temporal_opa_bundle_loaded", map[string]string{"bundle": "authz"}},
		{"temporal_opa_bundle_failed_load", map[string]string{"bundle": "authz", "stage": "compile"}},
		{"temporal_opa_jwks_fetches", map[string]string{"result": "ok"}},
		{"temporal_opa_jwks_fetches", map[string]string{"result": "error"}},
		{"temporal_opa_tokens_refused", map[string]string{"code": "unknown_kid"}},
		{"temporal_opa_decision_logs_dropped", nil},
		{"temporal_opa_shadow_decisions", map[string]string{"result": "agree"}},
		{"temporal_opa_shadow_decisions", map[string]string{"result": "disagree"}},
		{"temporal_opa_shadow_disagreements", map[string]string{"operation": "StartWorkflowExecution", "direction": "allow_to_deny"}},
	} {
		if got := count(snap, tc.metric, tc.tags); got != 1 {
			t.Errorf("%s%v = %d, want 1", tc.metric, tc.tags, got)
		}
	}
}

// verifiedBy is the Claims.Extensions of a token verified by issuer, as
// package claimmapper's Token gives it.
type verifiedBy string

func (v verifiedBy) TokenClaims() map[string]any { return map[string]any{"iss": string(v)} }
func (v verifiedBy) CacheKey() string            { return "k-" + string(v) }
func (v verifiedBy) Issuer() string              { return string(v) }

// withCert is the Claims.Extensions of a caller that presented a verified
// client certificate (with a token too when token is set).
type withCert struct{ token bool }

func (w withCert) TokenClaims() map[string]any {
	if w.token {
		return map[string]any{"sub": "t"}
	}
	return nil
}
func (withCert) CacheKey() string { return "c" }
func (withCert) CertificateClaims() map[string]any {
	return map[string]any{"spiffe_id": "spiffe://x/y"}
}

// temporal_opa_decisions counts callers by the credentials they presented.
func TestDecisionsByCredentials(t *testing.T) {
	h := metricstest.NewCaptureHandler()
	capture := h.StartCapture()
	az, err := policy.NewAuthorizer(policy.Options{Recorder: authzmetrics.New(h), DecisionCacheSize: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	target := &authorization.CallTarget{APIName: apiList, Namespace: "default"}
	for _, c := range []*authorization.Claims{
		nil,
		{Subject: "t", AuthType: "jwt"},
		{Subject: "spiffe://x/y", AuthType: claimmapper.AuthTypeTLS, Extensions: withCert{}},
		{Subject: "spiffe://x/y", AuthType: claimmapper.AuthTypeTLS, Extensions: withCert{}},
		{Subject: "t", AuthType: "jwt", Extensions: withCert{token: true}},
		{Subject: "internal", AuthType: "temporal", System: authorization.RoleAdmin},
	} {
		_, _ = az.Authorize(context.Background(), c, target)
	}
	snap := capture.Snapshot()
	for creds, want := range map[string]int{"none": 1, "jwt": 1, "tls": 2, "jwt_tls": 1, "temporal": 1} {
		if got := count(snap, "temporal_opa_decisions", map[string]string{"credentials": creds}); got != want {
			t.Errorf("credentials=%s: %d decisions, want %d", creds, got, want)
		}
	}
	if got := count(snap, "temporal_opa_decisions", map[string]string{"credentials": "tls", "decision": "deny"}); got != 2 {
		t.Errorf("certificate-only callers denied: %d, want 2", got)
	}
}
