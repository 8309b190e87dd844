// Package authzmetrics emits temporal-opa's metrics through Temporal's own
// metrics pipeline (go.temporal.io/server/common/metrics.Handler): built from
// the server config's global.metrics, the same handler serves Temporal's series
// and these, on the same Prometheus endpoint (or StatsD, OpenTelemetry).
//
// Every name starts with temporal_opa_ and none repeats a series Temporal
// already emits (service_authorization_latency, service_errors_unauthorized,
// service_errors_authorize_failed). No label carries unbounded values: no
// namespace, subject or token-derived label; operation is a Temporal API method
// name, bundle a configured bundle name, code a fixed error code.
//
//	temporal_opa_decisions{operation, decision=allow|deny|error, source=cache|policy, mode=enforce|dry_run, issuer, credentials}
//	temporal_opa_policy_eval_latency_microseconds{operation}  (histogram in µs: cache misses only)
//	temporal_opa_decision_cache_requests{result=hit|miss}
//	temporal_opa_bundle_loaded{bundle}
//	temporal_opa_bundle_failed_load{bundle, stage}
//	temporal_opa_jwks_fetches{result=ok|error}
//	temporal_opa_tokens_refused{code}
//	temporal_opa_decision_logs_dropped
//	temporal_opa_shadow_disagreements{operation, direction=allow_to_deny|deny_to_allow}
//	temporal_opa_shadow_decisions{result=agree|disagree}
//	temporal_opa_grant_decisions{operation, break_glass=true|false}   (calls allowed under a time-bound grant)
//	temporal_opa_grant_operations{operation=request|approve|deny|revoke|break_glass|list|expire, decision=allow|deny|error}
//	temporal_opa_break_glass{decision=allow|deny}                      (alert on allow: access without a second person)
package authzmetrics

import (
	"errors"
	"strconv"
	"sync"

	"go.temporal.io/server/common/api"
	"go.temporal.io/server/common/metrics"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
	"github.com/temporal-opa/temporal-opa/policy/grants"
)

// The definitions register in Temporal's metric catalog when the package is
// loaded, as Temporal's own do: a handler built later knows them (the
// OpenTelemetry handler refuses a name defined twice).
var (
	Decisions = metrics.NewCounterDef("temporal_opa_decisions",
		metrics.WithDescription("Authorization decisions by API method (operation), decision (allow, deny, error), source (cache, policy), mode (enforce, dry_run), issuer (the configured issuer that verified the token; empty without one) and credentials (none, jwt, tls: a verified client certificate alone, jwt_tls, temporal: the internal principal)."))
	// EvalLatency is a histogram of microseconds, not a timer: Temporal's
	// timers are recorded in whole milliseconds with buckets from 1 ms, and
	// an evaluation takes 5-100 µs. As a dimensionless histogram it gets
	// Temporal's dimensionless buckets (1, 2, 5, 10 ... 100,000: 1 µs to
	// 100 ms), and Temporal's own series keep theirs. OpenTelemetry's
	// Prometheus exporter appends _ratio to every dimensionless series, as
	// to Temporal's: temporal_opa_policy_eval_latency_microseconds_ratio.
	EvalLatency = metrics.NewDimensionlessHistogramDef("temporal_opa_policy_eval_latency_microseconds",
		metrics.WithDescription("Evaluation time in microseconds of decisions not taken from the decision cache (the default rules' plan and the custom rules OPA evaluates, or the whole Rego policy), by API method (operation)."))
	CacheRequests = metrics.NewCounterDef("temporal_opa_decision_cache_requests",
		metrics.WithDescription("Decision cache lookups by result (hit, miss)."))
	BundleLoaded = metrics.NewCounterDef("temporal_opa_bundle_loaded",
		metrics.WithDescription("Policy bundles activated, by bundle name."))
	BundleFailed = metrics.NewCounterDef("temporal_opa_bundle_failed_load",
		metrics.WithDescription("Policy bundles rejected (the last good policy stays), by bundle name and stage (load: could not be loaded, e.g. a syntax error or a bad signature; compile; entrypoint)."))
	JWKSFetches = metrics.NewCounterDef("temporal_opa_jwks_fetches",
		metrics.WithDescription("Fetches of the claim mapper's key sources by result (ok, error: the last good keys stay)."))
	TokensRefused = metrics.NewCounterDef("temporal_opa_tokens_refused",
		metrics.WithDescription("Tokens the claim mapper refused, by error code (token_expired, bad_signature, unknown_kid, malformed_token, invalid_issuer...: claimmapper.ErrorCode)."))
	DecisionLogsDropped = metrics.NewCounterDef("temporal_opa_decision_logs_dropped",
		metrics.WithDescription("Decision-log events dropped because the logger's queue was full."))
	ShadowDisagreements = metrics.NewCounterDef("temporal_opa_shadow_disagreements",
		metrics.WithDescription("Calls the shadow policy decided otherwise than the enforced one, by API method (operation) and direction (allow_to_deny, deny_to_allow)."))
	ShadowDecisions = metrics.NewCounterDef("temporal_opa_shadow_decisions",
		metrics.WithDescription("Calls decided by the shadow policy, by result (agree, disagree)."))
	GrantDecisions = metrics.NewCounterDef("temporal_opa_grant_decisions",
		metrics.WithDescription("Calls allowed under a time-bound access grant (and by nothing else), by API method (operation) and break_glass (true for a break-glass grant)."))
	GrantOperations = metrics.NewCounterDef("temporal_opa_grant_operations",
		metrics.WithDescription("Grant operations decided by the grant policy (request, approve, deny, revoke, break_glass, list) and grant expiries (expire), by decision (allow, deny, error)."))
	BreakGlass = metrics.NewCounterDef("temporal_opa_break_glass",
		metrics.WithDescription("Break-glass requests by decision (allow, deny): an allowed one is access without a second person; alert on it."))
)

// Label values.
const (
	DecisionAllow = "allow"
	DecisionDeny  = "deny"
	DecisionError = "error"
	SourceCache   = "cache"
	SourcePolicy  = "policy"
)

// Metrics emits temporal-opa's series on a Temporal metrics handler. It is a
// [policy.Recorder] for the decision series; the other methods are hooks for
// the claim mapper, bundle sources, decision logger and shadow policy. The zero
// handler (nil) is metrics.NoopMetricsHandler.
type Metrics struct {
	h                                                                metrics.Handler
	loaded, failed, fetches, refused, dropped, disagreements, shadow metrics.CounterIface
	cacheHit, cacheMiss                                              metrics.CounterIface

	// Per-call series, resolved once per label set: recording on a handler
	// already carrying its tags builds no attribute set per call.
	decisionsBy sync.Map // decisionKey -> metrics.CounterIface
	evalBy      sync.Map // operation -> metrics.HistogramIface
}

// decisionKey is a label set of temporal_opa_decisions. issuer is the
// configured issuer that verified the token ("" without one): bounded by the
// configuration.
type decisionKey struct{ op, decision, source, mode, issuer, credentials string }

// credentials names what the caller of e authenticated with, from a bounded set.
func credentials(e *policy.Event) string {
	c := e.Claims
	if c == nil {
		return "none"
	}
	switch c.AuthType {
	case "temporal":
		return "temporal"
	case claimmapper.AuthTypeTLS:
		return "tls"
	case "jwt":
		if cc, ok := c.Extensions.(policy.CertificateClaims); ok && cc.CertificateClaims() != nil {
			return "jwt_tls"
		}
		return "jwt"
	}
	return "other"
}

var _ policy.Recorder = (*Metrics)(nil)

// New returns Metrics emitting on h.
func New(h metrics.Handler) *Metrics {
	if h == nil {
		h = metrics.NoopMetricsHandler
	}
	return &Metrics{
		h:             h,
		cacheHit:      CacheRequests.With(h.WithTags(metrics.StringTag("result", "hit"))),
		cacheMiss:     CacheRequests.With(h.WithTags(metrics.StringTag("result", "miss"))),
		loaded:        BundleLoaded.With(h),
		failed:        BundleFailed.With(h),
		fetches:       JWKSFetches.With(h),
		refused:       TokensRefused.With(h),
		dropped:       DecisionLogsDropped.With(h),
		disagreements: ShadowDisagreements.With(h),
		shadow:        ShadowDecisions.With(h),
	}
}

// Record counts one decision.
func (m *Metrics) Record(e *policy.Event) {
	if e.GrantOperation != nil {
		m.grantOperation(e)
		return
	}
	op := api.MethodName(e.Target.APIName)
	if e.Grant != nil && e.Allow && e.Err == nil {
		GrantDecisions.With(m.h).Record(1, metrics.OperationTag(op), metrics.StringTag("break_glass", strconv.FormatBool(e.Grant.BreakGlass)))
	}
	k := decisionKey{op: op, decision: DecisionDeny, source: SourcePolicy, mode: e.Mode, issuer: e.Issuer(), credentials: credentials(e)}
	switch {
	case e.Err != nil:
		k.decision = DecisionError
	case e.Allow:
		k.decision = DecisionAllow
	}
	if e.Cached {
		k.source = SourceCache
		m.cacheHit.Record(1)
	} else {
		m.cacheMiss.Record(1)
		if e.EvalDuration > 0 {
			h, ok := m.evalBy.Load(op)
			if !ok {
				h, _ = m.evalBy.LoadOrStore(op, EvalLatency.With(m.h.WithTags(metrics.OperationTag(op))))
			}
			h.(metrics.HistogramIface).Record(e.EvalDuration.Microseconds())
		}
	}
	c, ok := m.decisionsBy.Load(k)
	if !ok {
		c, _ = m.decisionsBy.LoadOrStore(k, Decisions.With(m.h.WithTags(metrics.OperationTag(op),
			metrics.StringTag("decision", k.decision), metrics.StringTag("source", k.source), metrics.StringTag("mode", k.mode), metrics.StringTag("issuer", k.issuer), metrics.StringTag("credentials", k.credentials))))
	}
	c.(metrics.CounterIface).Record(1)
}

// grantOperation counts a grant operation's decision, or a grant's expiry.
func (m *Metrics) grantOperation(e *policy.Event) {
	op := e.GrantOperation.Operation
	decision := DecisionDeny
	switch {
	case op == "expire":
		decision = DecisionAllow
	case e.Err != nil:
		decision = DecisionError
	case e.Allow:
		decision = DecisionAllow
	}
	GrantOperations.With(m.h).Record(1, metrics.OperationTag(op), metrics.StringTag("decision", decision))
	if op == grants.OpBreakGlass {
		BreakGlass.With(m.h).Record(1, metrics.StringTag("decision", decision))
	}
}

// BundleActivated counts a bundle activation (err nil) or rejection.
func (m *Metrics) BundleActivated(bundle string, err error) {
	if err == nil {
		m.loaded.Record(1, metrics.StringTag("bundle", bundle))
		return
	}
	stage := "load"
	var ae *policy.ActivationError
	if errors.As(err, &ae) {
		stage = string(ae.Stage)
	}
	m.failed.Record(1, metrics.StringTag("bundle", bundle), metrics.StringTag("stage", stage))
}

// KeyFetch counts a fetch of a key source (for claimmapper.WithKeyFetchHook).
func (m *Metrics) KeyFetch(err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.fetches.Record(1, metrics.StringTag("result", result))
}

// TokenRefused counts a token the claim mapper refused, by its error code.
func (m *Metrics) TokenRefused(code string) {
	m.refused.Record(1, metrics.StringTag("code", code))
}

// DecisionLogDropped counts a decision-log event dropped.
func (m *Metrics) DecisionLogDropped() { m.dropped.Record(1) }

// ShadowCompared counts a call decided by the shadow policy; disagree with the
// enforced decision allowed or denied it (direction allow_to_deny or deny_to_allow).
func (m *Metrics) ShadowCompared(apiName string, disagree bool, direction string) {
	if !disagree {
		m.shadow.Record(1, metrics.StringTag("result", "agree"))
		return
	}
	m.shadow.Record(1, metrics.StringTag("result", "disagree"))
	m.disagreements.Record(1, metrics.OperationTag(api.MethodName(apiName)), metrics.StringTag("direction", direction))
}
