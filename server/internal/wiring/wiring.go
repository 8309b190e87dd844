// Package wiring plugs temporal-opa's Authorizer (package policy) and ClaimMapper
// (package policy/claimmapper) into go.temporal.io/server, for both
// "temporal-opa start" (Temporal's own config directory, see [Run]) and
// "temporal-opa start-dev" (package devserver).
//
// [NewAuth] builds both from the settings of an authz file; [Auth.ServerOptions]
// gives the temporal.ServerOption values that install them. The ClaimMapper
// replaces Temporal's default JWT claim mapper on the public frontend only:
// Temporal gives the internal-frontend its own internal principal, which the
// default policy allows as system admin.
package wiring

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/temporal"
	"google.golang.org/grpc"

	"github.com/open-policy-agent/opa/v1/bundle"
	"go.temporal.io/server/common/metrics"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/authzmetrics"
	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
	"github.com/temporal-opa/temporal-opa/policy/decisionlog"
	"github.com/temporal-opa/temporal-opa/policy/shadow"
	"github.com/temporal-opa/temporal-opa/policy/source"
	"github.com/temporal-opa/temporal-opa/server/internal/authzconfig"
	"github.com/temporal-opa/temporal-opa/server/internal/cli"
	"github.com/temporal-opa/temporal-opa/server/internal/grantsvc"
)

// Auth is an Authorizer and a ClaimMapper ready to be installed in a server,
// with the bundle sources that feed the Authorizer.
type Auth struct {
	Authorizer *policy.Authorizer
	// ClaimMapper verifies tokens of the single issuer of the jwt section; nil
	// when it lists jwt.issuers.
	ClaimMapper *claimmapper.Mapper
	// Issuers verifies each token with the mapper of the issuer it names, one
	// per entry of jwt.issuers; nil without jwt.issuers.
	Issuers *claimmapper.Router
	// PolicySources describes where the policy comes from, for people: the
	// embedded default, the watched bundles of policy.bundle, the bundles of
	// policy.opa_config. The start-dev banner shows it.
	PolicySources string
	// Policy is PolicySources with the mode and the shadow policy: the settings
	// log line of start shows it.
	Policy string
	// DecisionLog is the decision logger; nil when decisions are not logged.
	DecisionLog *decisionlog.Logger
	// Metrics emits the policy's series; nil without a metrics handler.
	Metrics *authzmetrics.Metrics
	// Shadow is the shadow policy; nil when none is configured.
	Shadow     *shadow.Shadow
	shadowFile *source.File
	flush      time.Duration

	// Grants is the grant service (time-bound access grants) of a process
	// that runs the frontend; nil until EnableGrants.
	Grants *grantsvc.Service
	grants authzconfig.Grants // the settings' grants section, for EnableGrants

	files []*source.File                 // the bundles of policy.bundle, watched, in order
	set   *source.Set                    // policy.opa_config's bundles; nil when not set
	extra map[string]*claimmapper.Mapper // TrustIssuer: issuer -> its own mapper
	log   *slog.Logger
}

// NewAuth builds the Authorizer (embedded default policy, with the bundles of
// settings.Policy.Bundle layered on it, each watched on its own, and the bundles of
// settings.Policy.OPA downloaded in the background) and the ClaimMapper
// (settings.JWT, or one mapper per entry of its issuers, whose key sources are
// fetched now: an unreachable one is an error). A bundle file that cannot be activated now is an error (a
// *PolicyError); remote bundles are waited for only with
// settings.Policy.RequireBundle, bounded by its timeout, and otherwise logged
// as pending. Close the result when done: it stops the sources.
//
// mh is the server's metrics handler (nil: no metrics): the policy's series are
// emitted on it (package authzmetrics).
func NewAuth(ctx context.Context, settings authzconfig.File, logger *slog.Logger, mh metrics.Handler) (_ *Auth, err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// The first load's errors are returned (and stop start-up): keep the
	// authorizer and the file source from also logging them as "previous
	// policy stays active".
	var quiet atomic.Bool
	quiet.Store(true)
	defer quiet.Store(false)
	gated := slog.New(gatedHandler{h: logger.Handler(), quiet: &quiet})
	opts := settings.Policy.Options
	opts.Logger = gated
	a := &Auth{flush: settings.DecisionLogs.Flush(), log: logger, grants: settings.Grants}
	if settings.GrantsEnabled(false) {
		// Callers resolve grants.enabled (its default depends on the
		// internal-frontend) before NewAuth: see ResolveGrants.
		opts.GrantsNamespace = GrantsNamespace(settings)
	}
	defer func() {
		if err != nil {
			_ = a.Close()
		}
	}()
	var recorders []policy.Recorder
	if mh != nil && mh != metrics.NoopMetricsHandler {
		a.Metrics = authzmetrics.New(mh)
		recorders = append(recorders, a.Metrics)
	}
	if settings.DecisionLogsEnabled() {
		if a.DecisionLog, err = newDecisionLog(ctx, settings, logger, a.Metrics); err != nil {
			return nil, err
		}
		recorders = append(recorders, a.DecisionLog)
	}
	if path := settings.Policy.Shadow; path != "" {
		if err := a.startShadow(ctx, settings, path, gated); err != nil {
			return nil, err
		}
		recorders = append(recorders, a.Shadow)
	}
	opts.Recorder = policy.Recorders(recorders...)
	fbs, err := settings.Policy.Bundles()
	if err != nil {
		return nil, err
	}
	az, err := settings.NewAuthorizer(opts)
	if err != nil {
		var be *authzconfig.BundleError
		switch {
		case errors.As(err, &be):
			return nil, &PolicyError{Path: be.Path, Err: be.Err}
		case !settings.StartsWithBundle():
		case len(fbs) == 1:
			return nil, &PolicyError{Path: fbs[0].Path, Err: err}
		default:
			return nil, &PolicyError{Paths: settings.Policy.Bundle, Err: err}
		}
		return nil, err
	}
	a.Authorizer = az
	if opts.Mode == policy.ModeDryRun {
		logger.Warn("DRY RUN: policy.mode is dry_run, so NOTHING IS ENFORCED: every call is evaluated and recorded, then allowed whatever the policy decides (bad tokens are still refused). Set policy.mode: enforce to enforce.")
	}
	var desc []string
	for _, fb := range fbs {
		f, err := source.NewFile(ctx, a.sink(az), fb.Name, fb.Path, a.sourceOptions(gated))
		if err != nil {
			return nil, &PolicyError{Path: fb.Path, Err: withoutSourcePrefix(fb.Name, err)}
		}
		a.files = append(a.files, f)
	}
	switch len(fbs) {
	case 0:
	case 1:
		desc = append(desc, fbs[0].Path+" (watched: edits are activated without a restart)")
	default:
		var paths, names []string
		for _, fb := range fbs {
			paths, names = append(paths, fb.Path), append(names, fb.Name)
		}
		desc = append(desc, fmt.Sprintf("%s (bundles %s, each watched: edits are activated without a restart)",
			strings.Join(paths, ", "), strings.Join(names, ", ")))
	}
	quiet.Store(false) // from here on, every activation and failure is logged as it happens
	if cfg := settings.Policy.OPA; cfg != nil {
		a.set, err = source.Open(ctx, a.sink(az), cfg, a.sourceOptions(logger))
		if err != nil {
			return nil, fmt.Errorf("policy.opa_config %s: %s", settings.Policy.OPAConfig, err)
		}
		desc = append(desc, "bundles "+strings.Join(cfg.Bundles(), ", ")+" of "+settings.Policy.OPAConfig)
		if settings.Policy.RequireBundle {
			if err := a.waitSources(ctx, settings.Policy.WaitTimeout()); err != nil {
				return nil, err
			}
		} else {
			a.warnPending(logger)
		}
	}
	if len(desc) == 0 {
		a.PolicySources = "embedded default (Temporal's default authorizer rules, in Rego)"
	} else {
		a.PolicySources = strings.Join(desc, " and ") + ", layered on the embedded default"
	}
	a.Policy = a.PolicySources
	if opts.Mode == policy.ModeDryRun {
		a.Policy += " (DRY RUN: nothing is enforced)"
	}
	if a.Shadow != nil {
		a.Policy += "; shadow policy " + settings.Policy.Shadow + " (watched)"
	}
	cmOpts := []claimmapper.Option{claimmapper.WithLogger(logger)}
	if a.Metrics != nil {
		cmOpts = append(cmOpts, claimmapper.WithKeyFetchHook(a.Metrics.KeyFetch))
	}
	if len(settings.JWT.Issuers) > 0 {
		a.Issuers, err = claimmapper.NewIssuers(ctx, settings.JWT, cmOpts...)
	} else {
		a.ClaimMapper, err = claimmapper.New(ctx, settings.JWT, cmOpts...)
	}
	if err != nil {
		return nil, err
	}
	return a, nil
}

// GrantsNamespace is the grants namespace of settings.
func GrantsNamespace(settings authzconfig.File) string {
	if ns := settings.Grants.Namespace; ns != "" {
		return ns
	}
	return grantsvc.DefaultNamespace
}

// ResolveGrants settles grants.enabled of settings for a server with or
// without an internal-frontend: unset, it follows hasInternalFrontend; set
// to true without one, it is an error.
func ResolveGrants(settings *authzconfig.File, hasInternalFrontend bool) error {
	on := settings.GrantsEnabled(hasInternalFrontend)
	if on && !hasInternalFrontend {
		return errors.New("grants.enabled is true but the Temporal config has no services.internal-frontend: " +
			"the grant service calls Temporal through the internal-frontend; add one (bound to loopback or protected by internode mTLS), " +
			"or set grants.enabled: false")
	}
	settings.Grants.Enabled = &on
	return nil
}

// EnableGrants builds the grant service of a process that runs the
// frontend: its client dials the internal-frontend at hostPort (with
// tlsCfg when not nil). Call it after NewAuth (with grants enabled) and
// before ServerOptions, which then installs its interceptor; start it with
// Grants.Start once the server starts.
func (a *Auth) EnableGrants(hostPort string, tlsCfg *tls.Config) error {
	g := a.grants
	ns := g.Namespace
	if ns == "" {
		ns = grantsvc.DefaultNamespace
	}
	svc, err := grantsvc.New(grantsvc.Config{
		Namespace:    ns,
		PollInterval: g.PollInterval,
		RequestTTL:   g.RequestTTL,
		Retention:    g.Retention,
		HostPort:     hostPort,
		TLS:          tlsCfg,
		Authorizer:   a.Authorizer,
		Logger:       a.log,
	})
	if err != nil {
		return err
	}
	a.Grants = svc
	return nil
}

// startShadow starts the shadow policy at path, watched, and connects its
// comparisons to the metrics and the decision log.
func (a *Auth) startShadow(ctx context.Context, settings authzconfig.File, path string, logger *slog.Logger) error {
	po := settings.Policy.Options
	po.Logger = logger.With("policy", "shadow")
	sh, err := shadow.New(shadow.Options{Policy: po, OnCompared: func(c shadow.Comparison) {
		if a.Metrics != nil {
			a.Metrics.ShadowCompared(c.Enforced.Target.APIName, c.Disagree, c.Direction())
		}
		if c.Disagree && a.DecisionLog != nil {
			a.DecisionLog.RecordShadow(c.Enforced, c.Shadow)
		}
	}})
	if err != nil {
		return err
	}
	a.Shadow = sh
	a.shadowFile, err = source.NewFile(ctx, a.sink(sh.Authorizer()), ShadowBundleName, path, a.sourceOptions(po.Logger))
	if err != nil {
		return &PolicyError{Path: path, Err: withoutSourcePrefix(ShadowBundleName, err)}
	}
	return nil
}

// ShadowBundleName is the bundle name of policy.shadow in the shadow policy.
const ShadowBundleName = "shadow"

// sourceOptions are the bundle sources' options: bundles that cannot be
// loaded (a syntax error, a bad signature) are counted in the metrics as the
// bundles the policy rejects are (temporal_opa_bundle_failed_load, stage load).
func (a *Auth) sourceOptions(logger *slog.Logger) source.Options {
	o := source.Options{Logger: logger}
	if a.Metrics != nil {
		o.OnLoadError = a.Metrics.BundleActivated
	}
	return o
}

// sink is az as a bundle sink, counting activations in the metrics.
func (a *Auth) sink(az *policy.Authorizer) source.Sink {
	if a.Metrics == nil {
		return az
	}
	return countingSink{az: az, m: a.Metrics}
}

type countingSink struct {
	az *policy.Authorizer
	m  *authzmetrics.Metrics
}

func (s countingSink) SetBundle(ctx context.Context, name string, b *bundle.Bundle) error {
	err := s.az.SetBundle(ctx, name, b)
	s.m.BundleActivated(name, err)
	return err
}

// newDecisionLog starts the decision logger of settings.
func newDecisionLog(ctx context.Context, settings authzconfig.File, logger *slog.Logger, m *authzmetrics.Metrics) (*decisionlog.Logger, error) {
	d := settings.DecisionLogs
	var raw []byte
	if settings.Policy.OPA != nil && settings.Policy.OPA.DecisionLogs() {
		raw = settings.Policy.OPA.JSON()
	}
	dl, err := decisionlog.New(ctx, raw, decisionlog.Options{
		Console:      d.Console,
		ForceConsole: d.ForceConsole,
		QueueSize:    d.QueueSize,
		KeepPayloads: d.KeepPayloads,
		KeepClaims:   d.KeepClaims,
		DecisionPath: settings.Policy.DecisionPath,
		Logger:       logger.With("component", "decision-logs"),
		OnDrop:       onDrop(m),
	})
	if err != nil {
		if settings.Policy.OPAConfig != "" {
			return nil, fmt.Errorf("policy.opa_config %s: %w", settings.Policy.OPAConfig, err)
		}
		return nil, err
	}
	if d.KeepPayloads {
		logger.Warn("decision_logs.keep_payloads is on: decision-log events carry task tokens and workflow payloads")
	}
	if d.KeepClaims {
		logger.Warn("decision_logs.keep_claims is on: decision-log events carry every claim of the callers' tokens")
	}
	return dl, nil
}

func onDrop(m *authzmetrics.Metrics) func() {
	if m == nil {
		return nil
	}
	return m.DecisionLogDropped
}

// waitSources waits up to timeout for every remote source to activate a bundle.
func (a *Auth) waitSources(ctx context.Context, timeout time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := a.set.WaitReady(wctx)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var msgs []string
	for _, st := range a.set.Status() {
		if st.Activations > 0 {
			continue
		}
		m := fmt.Sprintf("bundle %s (%s)", st.Name, st.Location)
		if st.LastError != "" {
			m += ": last error: " + cli.OneLine(st.LastError)
		} else {
			m += ": nothing downloaded yet"
		}
		msgs = append(msgs, m)
	}
	return fmt.Errorf("policy.require_bundle: not every bundle was activated within %s (policy.require_bundle_timeout): %s",
		timeout, strings.Join(msgs, "; "))
}

// warnPending warns, once at start-up, about each bundle of policy.opa_config
// not activated yet (policy.require_bundle: false): until it is, calls are
// decided without its rules, which may be the ones that deny.
func (a *Auth) warnPending(logger *slog.Logger) {
	for _, st := range a.set.Status() {
		if st.Activations > 0 {
			continue
		}
		attrs := []any{"bundle", st.Name, "location", st.Location}
		if st.LastError != "" {
			attrs = append(attrs, "last_error", cli.OneLine(st.LastError))
		}
		logger.Warn(fmt.Sprintf("bundle %s not activated yet: the server starts without it, and calls are decided without its rules "+
			"(by the embedded default and the bundles activated) until it is downloaded and activated; "+
			"set policy.require_bundle: true to make start-up wait for it instead", st.Name), attrs...)
	}
}

// withoutSourcePrefix drops the file source's "bundle NAME[ from PATH]: "
// prefix, which PolicyError says better.
func withoutSourcePrefix(name string, err error) error {
	var ae *policy.ActivationError
	if errors.As(err, &ae) {
		return ae
	}
	msg, ok := strings.CutPrefix(err.Error(), "bundle "+name+": ")
	if !ok {
		return err
	}
	return &prefixless{msg: msg, err: err}
}

type prefixless struct {
	msg string
	err error
}

func (p *prefixless) Error() string { return p.msg }
func (p *prefixless) Unwrap() error { return p.err }

// Sources are the status of every bundle source, the watched files first.
func (a *Auth) Sources() []source.Status {
	out := []source.Status{}
	for _, f := range a.files {
		out = append(out, f.Status())
	}
	if a.set != nil {
		out = append(out, a.set.Status()...)
	}
	return out
}

// gatedHandler drops records while quiet is set.
type gatedHandler struct {
	h     slog.Handler
	quiet *atomic.Bool
}

func (g gatedHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return !g.quiet.Load() && g.h.Enabled(ctx, l)
}

func (g gatedHandler) Handle(ctx context.Context, r slog.Record) error { return g.h.Handle(ctx, r) }

func (g gatedHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return gatedHandler{h: g.h.WithAttrs(as), quiet: g.quiet}
}

func (g gatedHandler) WithGroup(name string) slog.Handler {
	return gatedHandler{h: g.h.WithGroup(name), quiet: g.quiet}
}

// PolicyError is a policy bundle that could not be loaded or activated: the
// one at Path, or the bundles of Paths (Path is then "") when the first
// activation of several together failed.
type PolicyError struct {
	Path  string
	Paths []string
	Err   error
}

func (e *PolicyError) Error() string {
	if e.Path == "" && len(e.Paths) > 0 {
		return fmt.Sprintf("policy bundles %s: %v", strings.Join(e.Paths, ", "), e.Err)
	}
	return fmt.Sprintf("policy bundle %s: %v", e.Path, e.Err)
}

func (e *PolicyError) Unwrap() error { return e.Err }

// claimMapper is the ClaimMapper as the server gets it (see mappers),
// counting the tokens it refuses when metrics are on.
func (a *Auth) claimMapper() authorization.ClaimMapper {
	// The caller's verified client certificate, when Temporal's TLS layer
	// verified one (global.tls.frontend with client CAs), is an identity too.
	m := authorization.ClaimMapper(claimmapper.WithCertificates(a.mappers()))
	if a.Metrics == nil {
		return m
	}
	return countingMapper{inner: m, m: a.Metrics}
}

type countingMapper struct {
	inner authorization.ClaimMapper
	m     *authzmetrics.Metrics
}

func (countingMapper) AuthInfoRequired() bool { return true }

func (c countingMapper) GetClaims(ai *authorization.AuthInfo) (*authorization.Claims, error) {
	claims, err := c.inner.GetClaims(ai)
	if err != nil {
		code := "error"
		var te *claimmapper.TokenError
		if errors.As(err, &te) {
			code = string(te.Code)
		}
		c.m.TokenRefused(code)
	}
	return claims, err
}

// ServerOptions install the Authorizer, the ClaimMapper, FilterNamespaces and
// the grant service's interceptor (when EnableGrants was called). Put them after
// temporal.WithConfig: Temporal calls the claim mapper factory when the option is
// applied.
func (a *Auth) ServerOptions() []temporal.ServerOption {
	interceptors := []grpc.UnaryServerInterceptor{FilterNamespaces(a.Authorizer, a.log)}
	if a.Grants != nil {
		interceptors = append(interceptors, a.Grants.Interceptor())
	}
	return []temporal.ServerOption{
		temporal.WithAuthorizer(a.Authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return a.claimMapper() }),
		temporal.WithChainedFrontendGrpcInterceptors(interceptors...),
	}
}

// Close stops the bundle sources (the active policy stays) and the
// ClaimMapper's background key refresh, and flushes the decision logs (within
// decision_logs.flush_timeout): call it once the server has stopped.
func (a *Auth) Close() error {
	if a == nil {
		return nil
	}
	var errs []error
	if a.Grants != nil {
		errs = append(errs, a.Grants.Close())
		a.Grants = nil
	}
	for _, f := range a.files {
		errs = append(errs, f.Close())
	}
	a.files = nil
	if a.shadowFile != nil {
		errs = append(errs, a.shadowFile.Close())
		a.shadowFile = nil
	}
	if a.Shadow != nil {
		a.Shadow.Close()
	}
	if a.set != nil {
		errs = append(errs, a.set.Close())
		a.set = nil
	}
	if a.ClaimMapper != nil {
		errs = append(errs, a.ClaimMapper.Close())
	}
	if a.Issuers != nil {
		errs = append(errs, a.Issuers.Close())
	}
	if a.DecisionLog != nil {
		// After the server has stopped: flush what is queued, within a bound.
		ctx, cancel := context.WithTimeout(context.Background(), a.flush)
		errs = append(errs, a.DecisionLog.Close(ctx))
		cancel()
	}
	for _, m := range a.extra {
		errs = append(errs, m.Close())
	}
	a.extra = nil
	return errors.Join(errs...)
}

// InterruptOn returns a channel for temporal.InterruptOn that is closed when ctx
// is done.
func InterruptOn(ctx context.Context) <-chan any {
	ch := make(chan any)
	go func() {
		<-ctx.Done()
		close(ch)
	}()
	return ch
}
