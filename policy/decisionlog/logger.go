package decisionlog

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/temporal-opa/temporal-opa/policy/grants"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/logging"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/open-policy-agent/opa/v1/plugins/logs"
	"github.com/open-policy-agent/opa/v1/server"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"
	"github.com/sirupsen/logrus"
	"go.temporal.io/server/common/api"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/source"
)

// DefaultQueueSize is the number of events waiting to be logged before new
// ones are dropped, when Options.QueueSize is 0: a second at 50,000 calls/s,
// so that a logger goroutine held up for a moment (a build saturating both
// cores dropped 0.4% of 3 million events with 10,000) loses nothing. The queue
// holds pointers (16 bytes a slot); queued events hold their input.
const DefaultQueueSize = 50000

// Options configure a [Logger].
type Options struct {
	// Console receives the console events (decision_logs.console: true) as JSON
	// lines; nil means standard output.
	Console io.Writer
	// ForceConsole turns console events on whatever the configuration says (the
	// --decision-log flag of start-dev).
	ForceConsole bool
	// QueueSize bounds the events waiting to be logged; 0 means DefaultQueueSize.
	QueueSize int
	// KeepPayloads keeps task tokens, payloads, Nexus headers, callback data
	// and failure messages in input.request. Only for deployments whose audit
	// trail may hold workflow data.
	KeepPayloads bool
	// KeepClaims keeps every claim of the caller's token in input.claims.jwt;
	// by default only those the deciding policy reads (policy.Event.JWTPaths).
	KeepClaims bool
	// DecisionPath is the authorizer's decision rule (event path); empty means
	// policy.DefaultDecisionPath.
	DecisionPath string
	// Logger receives the plugin's own messages (upload failures...).
	Logger *slog.Logger
	// ID is labels.id of every event; empty means a random instance id.
	ID string
	// OnDrop, when set, is called for every event dropped (metrics).
	OnDrop func()
	// PluginUpload hands every event to OPA's decision-log plugin, uploads
	// included, as before temporal-opa encoded and uploaded events itself (see
	// the package doc): for comparison (BenchmarkDecisionLogLineRate).
	PluginUpload bool
}

// ConfigError is a decision_logs setting that cannot work.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return "decision_logs: " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Logger writes an OPA decision-log event for every decision it records. It
// implements [policy.Recorder] and [policy.PolicyObserver]. Make one with [New];
// Close it to flush.
type Logger struct {
	mgr    *plugins.Manager
	plugin *logs.Plugin
	opts   Options
	path   string
	cfg    *logs.Config

	queue   chan item
	stop    chan struct{}
	done    chan struct{}
	closed  atomic.Bool
	closeMu sync.Mutex

	sysMu     sync.Mutex
	sysLoaded []string // policy ids upserted in the manager's store

	// up encodes and uploads events when there is a service and no console;
	// nil: OPA's plugin does all. Events go through OPA's plugin anyway while
	// system.log rules are loaded (sysRules): its drop and mask rules.
	up       *uploader
	labels   []byte // labels as JSON
	encoded  []byte // the worker's encoding buffer
	sysRules atomic.Bool

	recorded, logged, dropped, failed atomic.Uint64

	kept keptCache // the token claims kept in events, by token (without keep_claims)
}

var (
	_ policy.Recorder       = (*Logger)(nil)
	_ policy.PolicyObserver = (*Logger)(nil)
)

// Enabled reports whether a standard OPA configuration (YAML or JSON) asks for
// decision logs: it has a decision_logs section.
func Enabled(opaConfig []byte) bool {
	var doc map[string]json.RawMessage
	if err := util.Unmarshal(opaConfig, &doc); err != nil {
		return false
	}
	v, ok := doc["decision_logs"]
	return ok && string(v) != "null"
}

// New starts a Logger from a standard OPA configuration (YAML or JSON): its
// decision_logs section with the services and labels it names. With
// opts.ForceConsole the configuration may be empty (nil). An error is a
// *ConfigError when the configuration cannot work.
func New(ctx context.Context, opaConfig []byte, opts Options) (*Logger, error) {
	raw, err := configJSON(opaConfig, opts.ForceConsole)
	if err != nil {
		return nil, &ConfigError{Err: err}
	}
	if opts.QueueSize == 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.QueueSize < 0 {
		return nil, &ConfigError{Err: fmt.Errorf("queue size %d is negative", opts.QueueSize)}
	}
	if opts.DecisionPath == "" {
		opts.DecisionPath = policy.DefaultDecisionPath
	}
	if opts.ID == "" {
		opts.ID = randomID()
	}
	slogger := opts.Logger
	if slogger == nil {
		slogger = slog.New(slog.DiscardHandler)
	}
	level := logging.Info
	if slogger.Enabled(ctx, slog.LevelDebug) {
		level = logging.Debug
	}
	console := logging.New()
	console.SetFormatter(&logrus.JSONFormatter{})
	if opts.Console != nil {
		console.SetOutput(opts.Console)
	} else {
		console.SetOutput(os.Stdout)
	}
	mgr, err := plugins.New(raw, opts.ID, inmem.New(),
		// Upload errors and OPA's debug logs name the service URL: redacted.
		plugins.Logger(logging.NewLoggerFromSlogHandler(source.RedactLogs(slogger.Handler()), level)),
		plugins.ConsoleLogger(console))
	if err != nil {
		return nil, &ConfigError{Err: err}
	}
	services := mgr.Services()
	slices.Sort(services)
	cfg, err := logs.NewConfigBuilder().
		WithBytes(mgr.Config.DecisionLogs).
		WithServices(services).
		Parse()
	if err != nil {
		return nil, &ConfigError{Err: err}
	}
	if cfg == nil {
		return nil, &ConfigError{Err: errors.New("nothing to log to: set console: true, or a service (decision_logs.service, or a services section)")}
	}
	if cfg.Plugin != nil {
		return nil, &ConfigError{Err: fmt.Errorf("plugin %q: custom decision-log plugins are not available in temporal-opa; use console or a service", *cfg.Plugin)}
	}
	if *cfg.Reporting.Trigger == plugins.TriggerManual && cfg.Service != "" {
		return nil, &ConfigError{Err: errors.New("reporting.trigger manual: nothing would trigger the upload; use periodic (the default)")}
	}
	plugin := logs.New(cfg, mgr)
	mgr.Register(logs.Name, plugin)
	if err := mgr.Start(ctx); err != nil {
		return nil, fmt.Errorf("decision logs: start: %w", err)
	}
	l := &Logger{
		mgr:    mgr,
		plugin: plugin,
		opts:   opts,
		path:   strings.ReplaceAll(strings.TrimPrefix(opts.DecisionPath, "data."), ".", "/"),
		cfg:    cfg,
		queue:  make(chan item, opts.QueueSize),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	if cfg.Service != "" && !cfg.ConsoleLogs && cfg.Reporting.MaxDecisionsPerSecond == nil && !opts.PluginUpload {
		labels := map[string]any{}
		for k, v := range mgr.Labels() {
			labels[k] = v
		}
		if l.labels, err = appendAny(nil, labels); err != nil {
			return nil, &ConfigError{Err: fmt.Errorf("labels: %w", err)}
		}
		l.up = newUploader(mgr.Client(cfg.Service), cfg, mgr.Logger(), l.drop)
	}
	go l.loop()
	return l, nil
}

// configJSON returns the configuration as JSON, with console logs on when forced.
func configJSON(opaConfig []byte, forceConsole bool) ([]byte, error) {
	doc := map[string]any{}
	if len(strings.TrimSpace(string(opaConfig))) > 0 {
		if err := util.Unmarshal(opaConfig, &doc); err != nil {
			return nil, fmt.Errorf("not YAML or JSON: %w", err)
		}
		if doc == nil {
			doc = map[string]any{}
		}
	}
	if forceConsole {
		dl, _ := doc["decision_logs"].(map[string]any)
		if dl == nil {
			dl = map[string]any{}
		}
		dl["console"] = true
		doc["decision_logs"] = dl
	}
	if _, ok := doc["decision_logs"]; !ok {
		return nil, errors.New("the OPA configuration has no decision_logs section")
	}
	return json.Marshal(doc)
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "temporal-opa-" + hex.EncodeToString(b[:])
}

// item is an event to log; enforced is set for a shadow policy's decision.
type item struct {
	e, enforced *policy.Event
}

// Record queues the event; when the queue is full it drops it and counts it. It
// never blocks.
func (l *Logger) Record(e *policy.Event) { l.push(item{e: e}) }

// RecordShadow queues the decision of a shadow policy (package policy/shadow)
// that disagrees with the enforced decision: its event carries the shadow's
// result, and custom.shadow the enforced decision's id and result.
func (l *Logger) RecordShadow(enforced, shadow *policy.Event) {
	l.push(item{e: shadow, enforced: enforced})
}

func (l *Logger) push(it item) {
	if !l.closed.Load() {
		select {
		case l.queue <- it:
			l.recorded.Add(1)
			return
		default:
		}
	}
	l.drop(1)
}

// drop counts n dropped events.
func (l *Logger) drop(n int) {
	l.dropped.Add(uint64(n))
	if l.opts.OnDrop != nil {
		for range n {
			l.opts.OnDrop()
		}
	}
}

// LogsDecisions tells the Authorizer that decisions are logged: a denied call's
// reason then names its decision id.
func (l *Logger) LogsDecisions() bool { return true }

// drainInterval is how often the worker takes what was queued. Waking it per
// event would cost every call a goroutine switch; batching delays an event by
// at most this.
const drainInterval = 5 * time.Millisecond

func (l *Logger) loop() {
	defer close(l.done)
	ctx := context.Background()
	tick := time.NewTicker(drainInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			for n := len(l.queue); n > 0; n-- {
				l.log(ctx, <-l.queue)
			}
		case <-l.stop:
			return
		}
	}
}

// log hands one event to OPA's plugin.
func (l *Logger) log(ctx context.Context, it item) {
	e := it.e
	fast := l.up != nil && !l.sysRules.Load()
	info, err := l.itemInfo(it, fast)
	if err == nil && fast {
		l.encoded, err = appendEvent(l.encoded[:0], l.labels, info)
		if errors.Is(err, errLongString) {
			// A string to cut: through the JSON document, as OPA's path does.
			if info, err = l.itemInfo(it, false); err == nil {
				l.encoded, err = appendEvent(l.encoded[:0], l.labels, info)
			}
		}
		if err == nil {
			l.up.add(l.encoded)
		}
	} else if err == nil {
		err = l.plugin.Log(ctx, info)
	}
	if err != nil {
		l.failed.Add(1)
		l.mgr.Logger().Error("decision %s not logged: %v", e.ID, err)
		return
	}
	l.logged.Add(1)
}

// itemInfo is info of the item's event, with a shadow decision's custom.shadow.
func (l *Logger) itemInfo(it item, direct bool) (*server.Info, error) {
	info, err := l.info(it.e, direct)
	if err == nil && it.enforced != nil {
		info.Custom["mode"] = "shadow"
		info.Custom["shadow"] = map[string]any{
			"enforced_decision_id": it.enforced.ID,
			"enforced_result":      map[string]any{"allow": it.enforced.Allow, "reason": bounded(it.enforced.Reason)},
			"enforced_mode":        cmp.Or(it.enforced.Mode, policy.ModeEnforce),
		}
	}
	return info, err
}

// input is the event's whole input document as the log keeps it: without
// keep_claims, input.claims.jwt holds only the claims the policy read, and
// erased lists the others. The kept claims of a token are computed once (by
// the token's cache key and the policy's claim paths) and reused for its
// later events: converting every claim of a token and pruning them was two
// thirds of the logger's CPU.
func (l *Logger) input(e *policy.Event) (ast.Value, []string, error) {
	if l.opts.KeepClaims {
		v, err := e.InputValue()
		return v, nil, err
	}
	tc, _ := claimsOf(e).(policy.TokenClaims)
	if tc == nil {
		v, err := e.InputValue()
		if err != nil {
			return nil, nil, err
		}
		// On the OPA value: no second conversion when nothing else is erased.
		v, erased := keepClaimsRead(v, e.JWTPaths)
		return v, erased, nil
	}
	key := tc.CacheKey()
	if kept, ok := l.kept.get(key, e.JWTPaths); ok {
		v, ok, err := e.InputValueWithJWT(kept.jwt)
		if ok {
			return v, slices.Clone(kept.erased), err
		}
	}
	v, err := e.InputValue()
	if err != nil {
		return nil, nil, err
	}
	v, erased := keepClaimsRead(v, e.JWTPaths)
	l.kept.put(key, e.JWTPaths, keptClaims{jwt: jwtOf(v), erased: erased})
	return v, erased, nil
}

// info turns an event into what OPA's plugin logs. With direct, the input is
// left as the OPA value (Input nil) when it has no input.request to erase: the
// event is then encoded straight from it (appendEvent fails with errLongString
// when a string in it must be cut).
func (l *Logger) info(e *policy.Event, direct bool) (*server.Info, error) {
	var erased, truncated []string
	inputAST, erased, err := l.input(e)
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	var in any
	if !direct || !plainInput(inputAST) {
		doc, err := ast.JSON(inputAST)
		if err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
		input, _ := doc.(map[string]any)
		var erasedReq []string
		if !l.opts.KeepPayloads {
			erasedReq = eraseSecrets(input)
		}
		truncateStrings(input, "/input", &truncated)
		erased = append(erasedReq, erased...)
		if len(erasedReq) > 0 || len(truncated) > 0 {
			// The value the drop and mask rules see must be the erased document.
			if inputAST, err = ast.InterfaceToValue(input); err != nil {
				return nil, fmt.Errorf("input: %w", err)
			}
		}
		in = input
	}
	var result any = map[string]any{"allow": e.Allow, "reason": bounded(e.Reason)}
	bundles := make(map[string]server.BundleInfo, len(e.Revisions))
	for name, rev := range e.Revisions {
		bundles[name] = server.BundleInfo{Revision: rev}
	}
	custom := map[string]any{
		"cached":    e.Cached,
		"mode":      cmp.Or(e.Mode, policy.ModeEnforce),
		"api":       bounded(api.MethodName(e.Target.APIName)),
		"namespace": bounded(e.Target.Namespace),
		"subject":   "",
	}
	if e.Claims != nil {
		custom["subject"] = bounded(e.Claims.Subject)
	}
	if iss := e.Issuer(); iss != "" {
		custom["issuer"] = bounded(iss)
	}
	if e.Claims != nil {
		if cc, ok := e.Claims.Extensions.(policy.CertificateClaims); ok {
			if tls := cc.CertificateClaims(); tls != nil {
				custom["tls"] = certificateIdentity(tls)
			}
		}
	}
	if len(e.GrantedRoles) > 0 {
		// The roles the policy's role rules granted for the call, with the rule
		// that granted each: why a caller without the role in its token held it.
		granted := make([]any, len(e.GrantedRoles))
		for i, g := range e.GrantedRoles {
			granted[i] = map[string]any{"role": g.Role, "namespace": bounded(g.Namespace), "rule": bounded(g.Rule)}
		}
		custom["granted_roles"] = granted
	}
	path := l.path
	if e.Grant != nil {
		// The time-bound grant that allowed the call: which, why, approved by whom.
		custom["grant"] = grantSummary(e.Grant)
	}
	if op := e.GrantOperation; op != nil {
		custom["grant_operation"] = map[string]any{"operation": op.Operation, "grant": grantSummary(&op.Grant)}
		path = grantDecisionPath
		if op.Operation == "expire" {
			path = policy.GrantEndedPath
		}
		if op.Operation == grants.OpBreakGlass && e.Allow {
			// Alert on it: access without a second person.
			custom["alert"] = "break_glass"
		}
	}
	if len(erased) > 0 {
		custom["erased"] = erased
	}
	if len(truncated) > 0 {
		custom["truncated"] = truncated
	}
	if paths := e.RequestPaths(); len(paths) > 0 {
		custom["request_paths"] = paths
	}
	m := timers{Metrics: metrics.NoOp(), all: map[string]any{"timer_server_handler_ns": e.Duration.Nanoseconds()}}
	if !e.Cached && e.EvalDuration > 0 {
		m.all["timer_rego_query_eval_ns"] = e.EvalDuration.Nanoseconds()
	}
	info := &server.Info{
		DecisionID: e.ID,
		Path:       path,
		Timestamp:  e.Time.UTC(),
		Input:      inputPtr(in),
		InputAST:   inputAST, // spares OPA a JSON round trip to run the drop and mask rules
		Results:    &result,
		Bundles:    bundles,
		Metrics:    m,
		Custom:     custom,
	}
	if e.Peer != nil {
		info.RemoteAddr = e.Peer.String()
	}
	if e.Err != nil {
		ee := eventError(e.Err)
		info.Error = ee
		// OPA's console output writes an event's error as a string: custom.error
		// keeps {code, message} in every sink.
		custom["error"] = map[string]any{"code": ee.Code, "message": bounded(ee.Message)}
	}
	return info, nil
}

func inputPtr(in any) *any {
	if in == nil {
		return nil
	}
	return &in
}

// timers reports fixed timer values as the event's metrics.
type timers struct {
	metrics.Metrics
	all map[string]any
}

func (t timers) All() map[string]any { return t.all }

// EventError is the error of an event: {code, message}.
type EventError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *EventError) Error() string { return e.Code + ": " + e.Message }

func eventError(err error) *EventError {
	var ee *policy.EvalError
	if errors.As(err, &ee) {
		return &EventError{Code: string(ee.Code), Message: bounded(ee.Err.Error())}
	}
	return &EventError{Code: "error", Message: bounded(err.Error())}
}

// PolicyActivated loads the activated policy's modules under data.system (the
// operator's system.log mask and drop rules) into the plugin's store, in place
// of the previous policy's.
func (l *Logger) PolicyActivated(p policy.ActivePolicy) {
	l.sysMu.Lock()
	defer l.sysMu.Unlock()
	ctx := context.Background()
	prefix := fmt.Sprintf("generation-%d/", p.Generation)
	err := storage.Txn(ctx, l.mgr.Store, storage.WriteParams, func(txn storage.Transaction) error {
		for _, id := range l.sysLoaded {
			if err := l.mgr.Store.DeletePolicy(ctx, txn, id); err != nil {
				return err
			}
		}
		l.sysLoaded = l.sysLoaded[:0]
		l.sysRules.Store(false)
		for _, name := range slices.Sorted(maps.Keys(p.System)) {
			id := prefix + name
			if err := l.mgr.Store.UpsertPolicy(ctx, txn, id, p.System[name]); err != nil {
				return err
			}
			l.sysLoaded = append(l.sysLoaded, id)
			l.sysRules.Store(true)
		}
		return nil
	})
	if err != nil {
		l.mgr.Logger().Error("decision-log rules of policy generation %d not loaded: %v", p.Generation, err)
	}
}

// Status is what a Logger has done.
type Status struct {
	Console    bool   `json:"console"`
	Service    string `json:"service,omitempty"`
	Recorded   uint64 `json:"recorded"`   // events queued
	Logged     uint64 `json:"logged"`     // events handed to OPA's plugin (dropped or masked by rules included)
	Dropped    uint64 `json:"dropped"`    // events dropped because the queue was full or the logger closed
	Failed     uint64 `json:"failed"`     // events that could not be logged
	Queued     int    `json:"queued"`     // events waiting now
	QueueSize  int    `json:"queue_size"` // the queue's bound
	BufferType string `json:"buffer_type,omitempty"`
	Buffered   int64  `json:"buffered,omitempty"` // waiting for upload: events or bytes, by buffer type
	// KeepPayloads and KeepClaims report what events keep that they erase by
	// default: payloads and other user data of requests, every token claim.
	KeepPayloads bool `json:"keep_payloads"`
	KeepClaims   bool `json:"keep_claims"`
}

// Status reports the counters.
func (l *Logger) Status() Status {
	s := Status{
		Console:   l.cfg.ConsoleLogs,
		Service:   l.cfg.Service,
		Recorded:  l.recorded.Load(),
		Logged:    l.logged.Load(),
		Dropped:   l.dropped.Load(),
		Failed:    l.failed.Load(),
		Queued:    len(l.queue),
		QueueSize: cap(l.queue),

		KeepPayloads: l.opts.KeepPayloads,
		KeepClaims:   l.opts.KeepClaims,
	}
	switch {
	case l.up != nil:
		s.BufferType = l.cfg.Reporting.BufferType
		events, bytes := l.up.size()
		s.Buffered = int64(bytes)
		if l.up.maxEvents > 0 {
			s.Buffered = int64(events)
		}
	case s.Service != "":
		s.BufferType, s.Buffered = l.plugin.BufferSize()
	}
	return s
}

// Close stops taking events, logs those queued and flushes the upload buffer
// to the service, within ctx's deadline; what is left then is dropped and
// counted. Close it after the server has stopped.
func (l *Logger) Close(ctx context.Context) error {
	l.closeMu.Lock()
	defer l.closeMu.Unlock()
	if l.closed.Swap(true) {
		return nil
	}
	close(l.stop)
	<-l.done
	var err error
drain:
	for {
		select {
		case it := <-l.queue:
			if ctx.Err() != nil {
				l.dropped.Add(uint64(1 + len(l.queue)))
				err = fmt.Errorf("decision logs: %d events not logged before the deadline", 1+len(l.queue))
				break drain
			}
			l.log(ctx, it)
		default:
			break drain
		}
	}
	if l.up != nil {
		err = errors.Join(err, l.up.flush(ctx))
	}
	l.mgr.Stop(ctx)
	return err
}

// certificateIdentity is what an event records of the caller's verified client
// certificate (input.claims.tls): who it names and which certificate it is.
// A certificate holds nothing secret; its private key never reaches the server.
func certificateIdentity(tls map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range []string{"spiffe_id", "serial", "fingerprint_sha256", "not_after"} {
		if s, ok := tls[k].(string); ok {
			out[k] = bounded(s)
		}
	}
	for _, k := range []string{"subject", "issuer"} {
		if name, ok := tls[k].(map[string]any); ok {
			if s, ok := name["string"].(string); ok {
				out[k] = bounded(s)
			}
		}
	}
	for _, k := range []string{"uris", "dns_names", "email_addresses", "ip_addresses"} {
		list, _ := tls[k].([]any)
		if len(list) == 0 {
			continue
		}
		kept := make([]any, 0, min(len(list), maxSANs))
		for _, v := range list[:min(len(list), maxSANs)] {
			if s, ok := v.(string); ok {
				kept = append(kept, bounded(s))
			}
		}
		out[k] = kept
	}
	return out
}

// maxSANs bounds the names of each kind an event records of a certificate.
const maxSANs = 16

// grantDecisionPath is the decision-log path of grant operations' events.
var grantDecisionPath = strings.ReplaceAll(strings.TrimPrefix(policy.GrantDecisionPath, "data."), ".", "/")

// grantSummary is a grant as decision-log events carry it: what it gives, to
// whom, until when, why, and who asked and approved (verified identities).
func grantSummary(g *grants.Grant) map[string]any {
	out := map[string]any{
		"id":           bounded(g.ID),
		"namespace":    bounded(g.Namespace),
		"subject":      bounded(g.Subject.String()),
		"not_before":   g.NotBefore.UTC().Format(time.RFC3339Nano),
		"expires":      g.Expires.UTC().Format(time.RFC3339Nano),
		"reason":       bounded(g.Reason),
		"state":        string(g.State),
		"requested_by": bounded(g.RequestedBy.String()),
		"break_glass":  g.BreakGlass,
	}
	if g.Role != "" {
		out["role"] = g.Role
	} else {
		apis := make([]any, len(g.APIs))
		for i, a := range g.APIs {
			apis[i] = bounded(a)
		}
		out["apis"] = apis
	}
	if g.ApprovedBy != nil {
		out["approved_by"] = bounded(g.ApprovedBy.String())
	}
	if g.EndedBy != nil {
		out["ended_by"] = bounded(g.EndedBy.String())
	}
	return out
}
