package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/server/common/authorization"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/proto"

	"github.com/temporal-opa/temporal-opa/policy/internal/projection"
	defaultrego "github.com/temporal-opa/temporal-opa/rego"
)

// Defaults of [Options].
const (
	DefaultDecisionPath       = defaultrego.DecisionPath
	DefaultEvalTimeout        = time.Second
	DefaultDecisionCacheSize  = 65536
	DefaultDecisionCacheBytes = 32 << 20
)

// defaultBundleName names the embedded default policy in status and revisions.
const defaultBundleName = "temporal-opa/default"

// Options configure an [Authorizer]. The zero value is valid: the embedded default
// policy, decided at data.temporal.authz.decision.
type Options struct {
	// DecisionPath is the rule that decides, e.g. data.temporal.authz.decision.
	// It must produce {"allow": bool, "reason": string} or a bool.
	DecisionPath string `yaml:"decision_path"`
	// EvalTimeout bounds one evaluation; a call whose evaluation runs longer is denied.
	EvalTimeout time.Duration `yaml:"eval_timeout"`
	// DecisionCacheSize bounds the decisions cached per policy generation:
	// 0 means DefaultDecisionCacheSize, a negative value disables the cache.
	DecisionCacheSize int `yaml:"decision_cache_size"`
	// DecisionCacheBytes bounds the memory of the cached decisions: keys,
	// reasons and bookkeeping. 0 means DefaultDecisionCacheBytes.
	DecisionCacheBytes int `yaml:"decision_cache_bytes"`
	// Logger receives activation and evaluation errors; nil discards them.
	Logger *slog.Logger `yaml:"-"`
	// Mode is ModeEnforce (the default) or ModeDryRun: every call is evaluated
	// and recorded as in enforcement, then allowed, whatever the policy decided.
	Mode string `yaml:"mode"`
	// GrantsNamespace, when set, is the namespace that holds time-bound access
	// grants (package policy/grants; the server's grant service). Calls on it
	// are not decided by the policy: Temporal's internal principal (the grant
	// service's own follower and worker) is allowed, unrecorded; for other
	// callers with a verified subject, the grant operations
	// (StartWorkflowExecution, UpdateWorkflowExecution,
	// PollWorkflowExecutionUpdate, ListWorkflowExecutions,
	// CountWorkflowExecutions, DescribeWorkflowExecution) are let through to
	// the frontend interceptor that decides each with DecideGrant; every other
	// call there is denied, and so is every command of a workflow of another
	// namespace aimed at it (a child workflow, a signal).
	GrantsNamespace string `yaml:"-"`
	// Recorder, when set, receives every decision (see [Recorder]). When it
	// logs decisions (a [DecisionLogger]), a denied call's reason ends with its
	// decision id: "(decision <uuid>)".
	Recorder Recorder `yaml:"-"`
}

// Modes of [Options].
const (
	ModeEnforce = "enforce"
	ModeDryRun  = "dry_run"
)

// Decision is the outcome of one call, with the input it was made on.
type Decision struct {
	Allow  bool           `json:"allow"`
	Reason string         `json:"reason"`
	Input  map[string]any `json:"input,omitempty"`
	// GrantedRoles are the roles the policy's role rules granted the caller
	// that counted for the call (data.temporal.authz.granted_roles), sorted;
	// none without role rules.
	GrantedRoles []Grant `json:"granted_roles,omitempty"`
	// Grant is the id of the time-bound access grant (package policy/grants)
	// that allowed the call; "" when none did.
	Grant string `json:"grant,omitempty"`
	// Revisions are the active bundles' revisions (bundle name to revision).
	Revisions map[string]string `json:"revisions,omitempty"`
}

// Status describes the active policy and the activations so far.
type Status struct {
	Mode        string            `json:"mode"`         // enforce or dry_run
	Generation  uint64            `json:"generation"`   // increases with every activation
	ActivatedAt time.Time         `json:"activated_at"` // when the active policy was swapped in
	Revisions   map[string]string `json:"revisions"`    // active bundle name to revision ("" if none)
	Cacheable   bool              `json:"decision_cache"`
	// Planned: the default rules decide calls without a time-bound grant
	// through a plan built at activation, in Go, with the custom rules
	// evaluated by OPA (see the README's Performance section); false when a
	// bundle replaces the default policy or the decision path is another.
	Planned bool `json:"decision_plan"`
	// CacheEntries and CacheBytes are what the decision cache holds (bounded by
	// Options.DecisionCacheSize and DecisionCacheBytes).
	CacheEntries int  `json:"decision_cache_entries"`
	CacheBytes   int  `json:"decision_cache_bytes"`
	UsesRequest  bool `json:"uses_request"` // the policy reads input.request
	ReadsJWT     bool `json:"reads_jwt"`    // the policy reads input.claims.jwt
	// CacheNotes say where the policy defeats the decision cache ("file:line:
	// message"): it reads the whole request, calls a built-in whose results
	// vary, or replaces input with `with`.
	CacheNotes  []string  `json:"cache_notes,omitempty"`
	Activations uint64    `json:"activations"` // successful activations, the first included
	Failures    uint64    `json:"failures"`    // rejected bundles
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// Authorizer decides Temporal API calls with a Rego policy. It implements
// authorization.Authorizer and is safe for concurrent use.
type Authorizer struct {
	opts        Options
	log         *slog.Logger
	decisionRef ast.Ref
	schemas     *ast.SchemaSet
	defaultB    *bundle.Bundle
	ids         *idSource
	idInReason  bool // the recorder logs decisions: deny reasons name the decision id

	current atomic.Pointer[generation]
	nextGen atomic.Uint64
	grants  atomic.Pointer[grantIndex] // the time-bound grants of SetGrants; nil for none

	setMu sync.Mutex // serializes activations (SetBundle's read-modify-activate included)

	activations atomic.Uint64
	failures    atomic.Uint64
	lastErrMu   sync.Mutex
	lastErr     string
	lastErrAt   time.Time
}

var _ authorization.Authorizer = (*Authorizer)(nil)

// generation is one activated policy version: compiled and prepared once,
// never modified, read by every request. It evaluates (eval, decideWhole),
// explains (explain) and says what of the input it reads (reads); the
// Authorizer swaps generations, caches their decisions and records them.
type generation struct {
	id            uint64
	path          string              // the decision path, for errors
	timeout       time.Duration       // bounds one evaluation
	txn           storage.Transaction // a read transaction on the query's store, shared by evaluations
	store         storage.Store
	decideBody    ast.Body        // the compiled query `<decision path> = _`, evaluated with topdown
	decisionVar   ast.Var         // the variable of decideBody that binds the decision
	roles         bool            // the policy has role rules: decideBody binds grantsVar to granted_roles too
	allGrantsBody ast.Body        // with role rules, the compiled query binding grantsVar to all_granted_roles
	grantBody     ast.Body        // the compiled query of GrantDecisionPath; nil when the policy does not define it
	grantVar      ast.Var         // the variable of grantBody that binds the grant decision
	plan          *plan           // decides the calls without a time-bound grant in Go when the default rules decide; nil otherwise
	explained     map[string]bool // the files whose steps explain keeps: the decision's package and temporal.custom
	revisions     map[string]string
	user          map[string]*bundle.Bundle // the user bundles it was built from, by name
	reads         *projection.Reads         // what of the input the policy reads: the cache key, the input built
	requestPaths  []string                  // the JSON pointers of input.request it reads; nil when it reads it whole or not at all
	jwtPaths      []string                  // the JSON pointers of input.claims.jwt it reads; nil when it reads none
	activatedAt   time.Time
	cache         *decisionCache // nil when decisions of this policy cannot be cached
	compiler      *ast.Compiler
	system        map[string][]byte // sources of the modules under data.system, kept out of the policy
}

// NewAuthorizer returns an Authorizer running the embedded default policy with
// bundles (name to bundle; nil for none) layered on it, activated as
// [Authorizer.SetBundles] activates them. Name the bundles as the sources that
// later update them do (SetBundle replaces the bundle of the same name): the
// server names policy.bundle "policy" and the bundles of an OPA config by
// their keys. A decision path other than the default's needs the bundle that
// defines it here. The error is an *ActivationError when the bundles cannot
// be activated.
func NewAuthorizer(opts Options, bundles map[string]*bundle.Bundle) (*Authorizer, error) {
	a, err := newAuthorizer(opts)
	if err != nil {
		return nil, err
	}
	if err := a.SetBundles(context.Background(), bundles); err != nil {
		return nil, err
	}
	return a, nil
}

// newAuthorizer returns an Authorizer with no policy active yet: activate one
// before it decides.
func newAuthorizer(opts Options) (*Authorizer, error) {
	if opts.DecisionPath == "" {
		opts.DecisionPath = DefaultDecisionPath
	}
	if opts.EvalTimeout == 0 {
		opts.EvalTimeout = DefaultEvalTimeout
	}
	if opts.EvalTimeout < 0 {
		return nil, fmt.Errorf("policy: eval_timeout %s is negative; set a positive duration such as 100ms", opts.EvalTimeout)
	}
	if opts.DecisionCacheSize == 0 {
		opts.DecisionCacheSize = DefaultDecisionCacheSize
	}
	if opts.DecisionCacheBytes == 0 {
		opts.DecisionCacheBytes = DefaultDecisionCacheBytes
	}
	if opts.DecisionCacheBytes < 0 {
		return nil, fmt.Errorf("policy: decision_cache_bytes %d is negative; set a size in bytes such as %d, or decision_cache_size: -1 to turn the cache off", opts.DecisionCacheBytes, DefaultDecisionCacheBytes)
	}
	switch opts.Mode {
	case "":
		opts.Mode = ModeEnforce
	case ModeEnforce, ModeDryRun:
	default:
		return nil, fmt.Errorf("policy: mode %q: must be %s or %s", opts.Mode, ModeEnforce, ModeDryRun)
	}
	ref, err := ast.ParseRef(opts.DecisionPath)
	if err != nil || !ref.HasPrefix(ast.DefaultRootRef) || len(ref) < 2 || !ref.IsGround() {
		return nil, fmt.Errorf("policy: decision_path %q is not a rule path; use a path such as %s", opts.DecisionPath, DefaultDecisionPath)
	}
	schemas, err := InputSchemas()
	if err != nil {
		return nil, err
	}
	def, err := defaultBundle()
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Authorizer{opts: opts, log: log, decisionRef: ref, schemas: schemas, defaultB: def, ids: newIDSource(), idInReason: logsDecisions(opts.Recorder)}, nil
}

// SetBundle activates the bundle named name in place of the one of that name
// (added if new; a nil bundle removes it), keeping the other bundles. Bundle
// sources call it each time they have a new revision. On error the active policy
// is unchanged and the error is an *ActivationError.
func (a *Authorizer) SetBundle(ctx context.Context, name string, b *bundle.Bundle) error {
	if name == "" {
		return &ActivationError{Stage: StageLoad, Err: errors.New("bundle name is empty")}
	}
	a.setMu.Lock()
	defer a.setMu.Unlock()
	named := maps.Clone(a.current.Load().user)
	if named == nil {
		named = map[string]*bundle.Bundle{}
	}
	if b == nil {
		delete(named, name)
	} else {
		named[name] = b
	}
	return a.activate(ctx, named)
}

// activate builds a generation from the user bundles (name to bundle) and, unless
// one of them covers its roots, the default policy; then swaps it in.
// The caller holds a.setMu.
func (a *Authorizer) activate(ctx context.Context, user map[string]*bundle.Bundle) error {
	g, err := a.build(ctx, user)
	if err != nil {
		a.failures.Add(1)
		a.lastErrMu.Lock()
		a.lastErr, a.lastErrAt = err.Error(), time.Now()
		a.lastErrMu.Unlock()
		// Returned, not logged here: the caller (a bundle source, start-up) logs it once.
		a.log.Debug("policy rejected; the previous policy stays active", "error", err)
		return err
	}
	a.current.Store(g)
	a.activations.Add(1)
	if o, ok := a.opts.Recorder.(PolicyObserver); ok {
		o.PolicyActivated(ActivePolicy{Generation: g.id, Revisions: g.revisions, UsesRequest: g.reads.UsesRequest(), System: g.system})
	}
	a.log.Info("policy activated", "generation", g.id, "revisions", g.revisions, "decision_cache", g.cache != nil, "decision_plan", g.plan != nil, "uses_request", g.reads.UsesRequest(), "reads_jwt", g.reads.ReadsJWT())
	return nil
}

// build compiles and prepares a generation; it does not swap it in.
func (a *Authorizer) build(ctx context.Context, user map[string]*bundle.Bundle) (*generation, error) {

	all, replaced, err := layer(a.defaultB, user)
	if err != nil {
		return nil, err
	}
	defRoots := rootsOf(a.defaultB)
	system := map[string][]byte{}
	for name, b := range all {
		if name != defaultBundleName {
			all[name] = withoutSystemModules(b, system)
		}
	}
	if err := compileSystem(system); err != nil {
		return nil, &ActivationError{Stage: StageCompile, Err: fmt.Errorf("decision-log rules under data.system: %w", err)}
	}

	compiler := newCompiler(a.schemas)
	opts := []func(*rego.Rego){
		rego.Query(a.opts.DecisionPath),
		rego.Compiler(compiler),
		rego.SetRegoVersion(ast.RegoV1),
	}
	for _, name := range slices.Sorted(maps.Keys(all)) {
		opts = append(opts, rego.ParsedBundle(name, all[name]))
	}
	store := inmem.New()
	wtxn, err := store.NewTransaction(ctx, storage.WriteParams)
	if err != nil {
		return nil, &ActivationError{Stage: StageCompile, Err: err}
	}
	opts = append(opts, rego.Store(store), rego.Transaction(wtxn))
	// Preparing compiles the modules and writes the bundles' data into the
	// store; evaluations then run the compiled decision query with topdown.
	_, err = rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		store.Abort(ctx, wtxn)
		return nil, &ActivationError{Stage: StageCompile, Err: withRecursionHint(err)}
	}
	if err := store.Commit(ctx, wtxn); err != nil {
		return nil, &ActivationError{Stage: StageCompile, Err: err}
	}
	// One read transaction for every evaluation of the generation: its store is
	// written only while it is prepared.
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, &ActivationError{Stage: StageCompile, Err: err}
	}
	// The decision query, compiled once and evaluated with topdown directly: no
	// per-call evaluation context, and the decision is read as an OPA value.
	// Written as `opa eval` writes a query for a value (<path> = _), so that
	// explain's trace reads as OPA's; the wildcard binds the decision.
	// With role rules under the default decision path, the same evaluation
	// also binds the roles they granted (granted_roles: for the decision log,
	// eval and explain), cached with the decision.
	text := a.opts.DecisionPath + " = _"
	roles := a.opts.DecisionPath == DefaultDecisionPath && hasRoleRules(compiler)
	if roles {
		text += "; " + grantedRolesPath + " = " + string(grantsVar)
	}
	query, err := ast.ParseBodyWithOpts(text, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return nil, &ActivationError{Stage: StageCompile, Err: err}
	}
	decideBody, err := compiler.QueryCompiler().Compile(query)
	if err != nil {
		return nil, &ActivationError{Stage: StageCompile, Err: err}
	}
	var allGrantsBody ast.Body
	if roles {
		q, err := ast.ParseBodyWithOpts(allGrantedRolesPath+" = "+string(grantsVar), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err == nil {
			allGrantsBody, err = compiler.QueryCompiler().Compile(q)
		}
		if err != nil {
			return nil, &ActivationError{Stage: StageCompile, Err: err}
		}
	}
	grantBody, grantVar, err := compileGrantQuery(compiler)
	if err != nil {
		return nil, &ActivationError{Stage: StageCompile, Err: err}
	}
	pl, err := newPlan(compiler, all, a.defaultB, a.opts.DecisionPath, roles)
	if err != nil {
		return nil, &ActivationError{Stage: StageCompile, Err: err}
	}
	var decisionVar ast.Var
	ast.WalkVars(decideBody, func(v ast.Var) bool {
		if v.IsWildcard() {
			decisionVar = v
		}
		return false
	})
	if decisionVar == "" {
		return nil, &ActivationError{Stage: StageCompile, Err: fmt.Errorf("decision query %s has no result variable", decideBody)}
	}
	if len(compiler.GetRules(a.decisionRef)) == 0 {
		hint := ""
		if replaced {
			hint = fmt.Sprintf(" (a bundle's roots cover the default policy's %v, so it replaces it: give a bundle of custom rules the roots [\"temporal/custom/<name>\"] (or [\"temporal/custom\"]) in its .manifest)", defRoots)
		}
		return nil, &ActivationError{Stage: StageEntrypoint, Err: fmt.Errorf("no rule defines the decision path %s%s", a.opts.DecisionPath, hint)}
	}

	revisions := make(map[string]string, len(all))
	for name, b := range all {
		revisions[name] = b.Manifest.Revision
	}
	g := &generation{
		roles:         roles,
		allGrantsBody: allGrantsBody,
		grantBody:     grantBody,
		grantVar:      grantVar,
		plan:          pl,
		id:            a.nextGen.Add(1),
		path:          a.opts.DecisionPath,
		decisionVar:   decisionVar,
		explained:     explainedFiles(all, a.decisionRef),
		timeout:       a.opts.EvalTimeout,
		txn:           txn,
		store:         store,
		decideBody:    decideBody,
		revisions:     revisions,
		user:          user,
		activatedAt:   time.Now(),
		compiler:      compiler,
		system:        system,
	}
	g.reads = projection.Analyze(compiler)
	g.requestPaths = g.reads.RequestPointers()
	g.jwtPaths = g.reads.JWTPointers()
	// Decisions are cached by every value the policy reads (Reads.Key); one
	// that depends on a built-in whose results vary cannot be reused, nor one
	// that reads the whole request (no two calls share it).
	if a.opts.DecisionCacheSize > 0 && g.reads.Cacheable() {
		g.cache = newDecisionCache(a.opts.DecisionCacheSize, a.opts.DecisionCacheBytes)
	}
	return g, nil
}

// Status describes the active policy.
func (a *Authorizer) Status() Status {
	g := a.current.Load()
	a.lastErrMu.Lock()
	lastErr, lastErrAt := a.lastErr, a.lastErrAt
	a.lastErrMu.Unlock()
	var entries, bytes int
	if g.cache != nil {
		entries, bytes = g.cache.stats()
	}
	return Status{
		CacheEntries: entries,
		CacheBytes:   bytes,
		Mode:         a.opts.Mode,
		Generation:   g.id,
		ActivatedAt:  g.activatedAt,
		Revisions:    maps.Clone(g.revisions),
		Cacheable:    g.cache != nil,
		Planned:      g.plan != nil,
		UsesRequest:  g.reads.UsesRequest(),
		ReadsJWT:     g.reads.ReadsJWT(),
		CacheNotes:   cacheNotes(g.reads),
		Activations:  a.activations.Load(),
		Failures:     a.failures.Load(),
		LastError:    lastErr,
		LastErrorAt:  lastErrAt,
	}
}

func cacheNotes(r *projection.Reads) []string {
	var out []string
	for _, n := range r.Notes() {
		out = append(out, n.String())
	}
	return out
}

// Authorize implements authorization.Authorizer. A call the policy cannot decide
// is denied, with an *EvalError. It decides the call (from the cache when it
// can), builds Temporal's result once, records the decision, and then, in dry
// run, lets the call through whatever was decided.
func (a *Authorizer) Authorize(ctx context.Context, claims *authorization.Claims, target *authorization.CallTarget) (authorization.Result, error) {
	if target == nil {
		target = &authorization.CallTarget{}
	}
	rec := a.opts.Recorder
	var start time.Time
	if rec != nil {
		start = time.Now()
	}
	g := a.current.Load()
	var o outcome
	if a.opts.GrantsNamespace != "" && target.Namespace == a.opts.GrantsNamespace {
		if isInternalPrincipal(claims) {
			// The grant service's own calls through the internal-frontend (its
			// follower's lists, its worker's polls): its mechanics, not
			// decisions. Evaluated, a policy restricting them would stop
			// grants, and the audit trail would hold an event per frontend
			// per poll.
			return a.result(outcome{d: decided{allow: true}}, claims, target, ""), nil
		}
		o = grantGate(claims, target)
	} else {
		o = a.decide(ctx, g, claims, target, rec != nil)
	}
	var id string
	if rec != nil {
		id = a.ids.next()
	}
	res := a.result(o, claims, target, id)
	if rec != nil {
		a.record(ctx, rec, g, o, res, id, start, claims, target)
	}
	if a.opts.Mode == ModeDryRun {
		// Decided and recorded as the policy decided; the call goes through.
		return a.result(outcome{d: decided{allow: true}}, claims, target, ""), nil
	}
	return res, o.err
}

// record hands the decision of one call to the recorder.
func (a *Authorizer) record(ctx context.Context, rec Recorder, g *generation, o outcome, res authorization.Result, id string, start time.Time,
	claims *authorization.Claims, target *authorization.CallTarget) {
	allow := o.err == nil && o.d.allow
	reason := res.Reason // a deny's reason, as the caller is (or would be) told
	if allow {
		reason = o.d.reason // Temporal's allow carries no reason; the audit trail keeps the policy's
	}
	e := &Event{
		ID:           id,
		Time:         start,
		EvalDuration: o.evalTime,
		Claims:       claims,
		Target:       authorization.CallTarget{APIName: target.APIName, Namespace: target.Namespace, NexusEndpointName: target.NexusEndpointName},
		Allow:        allow,
		Reason:       reason,
		GrantedRoles: o.d.granted,
		Grant:        a.grantPtr(o.d.grant),
		Err:          o.err,
		Cached:       o.cached,
		Mode:         a.opts.Mode,
		Generation:   g.id,
		Revisions:    g.revisions,
		Peer:         peerAddr(ctx),
		input:        o.input,
		grants:       o.grants,
		request:      o.input != nil && g.reads.UsesRequest(),
		requestPaths: g.requestPaths,
		JWTPaths:     g.jwtPaths,
	}
	if rr, ok := rec.(RequestRecorder); ok && rr.NeedsRequest() {
		if m, ok := target.Request.(proto.Message); ok && m != nil && m.ProtoReflect().IsValid() {
			e.Request = proto.Clone(m) // the handler goes on with the original
		}
	}
	e.Duration = time.Since(start)
	rec.Record(e)
}

// outcome is what deciding one call gave.
type outcome struct {
	d        decided
	err      error
	cached   bool
	input    ast.Value // the evaluated input; nil for a cached decision
	evalTime time.Duration
	grants   *projection.Grants // the caller's grants the call saw (input.grants); nil for none
}

// decide decides a call with generation g, from the cache when it can.
func (a *Authorizer) decide(ctx context.Context, g *generation, claims *authorization.Claims, target *authorization.CallTarget, timed bool) outcome {
	var gr *projection.Grants
	if ix := a.grants.Load(); ix != nil && g.reads.ReadsGrants() {
		// The grants the call sees at this instant are part of its key: a
		// decision under a grant is not reused past the grant's end.
		gr = ix.forCall(claims, target.Namespace, time.Now())
	}
	var key []byte
	cacheable := false
	if g.cache != nil {
		bp := keyBufs.Get().(*[]byte)
		defer func() { *bp = key[:0]; keyBufs.Put(bp) }()
		if key, cacheable = g.reads.Key(*bp, claims, target, gr); cacheable {
			if d, hit := g.cache.get(key); hit {
				o := outcome{d: d, cached: true, grants: gr}
				if timed && g.reads.UsesRequest() {
					// The audit trail gets the request values the policy read.
					o.input, _ = g.reads.Input(claims, target, gr)
				}
				return o
			}
		} else {
			key = *bp
		}
	}
	in, err := g.reads.Input(claims, target, gr)
	if err != nil {
		return outcome{err: &EvalError{Code: CodeInvalidInput, Err: err}}
	}
	var evalStart time.Time
	if timed {
		evalStart = time.Now()
	}
	d, err := g.evalCall(ctx, in)
	o := outcome{d: d, err: err, input: in, grants: gr}
	if timed {
		o.evalTime = time.Since(evalStart)
	}
	if err == nil && cacheable {
		g.cache.put(string(key), d)
	}
	return o
}

// keyBufs hold cache keys while they are built and looked up.
var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

func peerAddr(ctx context.Context) net.Addr {
	if p, ok := peer.FromContext(ctx); ok {
		return p.Addr
	}
	return nil
}

func decisionSuffix(id string) string { return " (decision " + id + ")" }

// Decide evaluates one call like Authorize and returns the decision with its input
// document, for tools such as `temporal-opa eval`. It is not cached.
func (a *Authorizer) Decide(ctx context.Context, claims *authorization.Claims, target *authorization.CallTarget) (Decision, error) {
	return a.current.Load().decideWhole(ctx, claims, target, a.callGrants(claims, target), nil)
}

// callGrants are the grants the call to target by the caller with claims sees now.
func (a *Authorizer) callGrants(claims *authorization.Claims, target *authorization.CallTarget) *projection.Grants {
	if target == nil {
		return nil
	}
	return a.grants.Load().forCall(claims, target.Namespace, time.Now())
}

// decideWhole decides a call on its whole input document, with no cache, and
// traces the evaluation into tracer when there is one.
func (g *generation) decideWhole(ctx context.Context, claims *authorization.Claims, target *authorization.CallTarget, gr *projection.Grants, tracer topdown.QueryTracer) (Decision, error) {
	if target == nil {
		target = &authorization.CallTarget{}
	}
	in, err := projection.Whole(claims, target, gr, true)
	var doc map[string]any
	if err == nil {
		doc, err = projection.JSON(in)
	}
	return g.decision(ctx, in, doc, err, tracer)
}

// decision evaluates input (doc, its JSON form) into a Decision; inErr is
// an error building the input, which denies.
func (g *generation) decision(ctx context.Context, input ast.Value, doc map[string]any, inErr error, tracer topdown.QueryTracer) (Decision, error) {
	if inErr != nil {
		err := &EvalError{Code: CodeInvalidInput, Err: inErr}
		return Decision{Reason: denyReason(err)}, err
	}
	d, err := g.eval(ctx, input, tracer)
	out := Decision{Allow: d.allow, Reason: d.reason, Input: doc, GrantedRoles: slices.Clone(d.granted), Grant: d.grant, Revisions: maps.Clone(g.revisions)}
	if err != nil {
		out.Allow, out.Reason, out.GrantedRoles, out.Grant = false, denyReason(err), nil, ""
	}
	return out, err
}

// DecideInput evaluates the active policy on an input document given as JSON
// values, such as the input of a recorded decision-log event, for tools that
// replay decisions. It is not cached.
func (a *Authorizer) DecideInput(ctx context.Context, input map[string]any) (Decision, error) {
	v, err := projection.JSONValue(input)
	return a.current.Load().decision(ctx, v, input, err, nil)
}

// ReadsInput reports whether the active policy may read the input document at
// path (such as "request.input" for input.request.input): a reference to it,
// below it, to one of its parents as a whole, or through a computed key counts.
func (a *Authorizer) ReadsInput(path ...string) bool {
	return a.current.Load().reads.MayRead(path...)
}

// RequestReadsWithin reports whether every field of input.request the active
// policy may read is among recorded, the JSON pointers of the fields a recorded
// input.request holds (Event.RequestPaths; "*" stands for every key or
// element). If not, it returns the first pointer the policy may read outside
// them. Tools that replay recorded decisions use it.
func (a *Authorizer) RequestReadsWithin(recorded []string) (outside string, ok bool) {
	return a.current.Load().reads.RequestWithin(recorded)
}

// decided is a decision as the policy made it.
type decided struct {
	allow   bool
	reason  string
	granted []Grant // the roles role rules granted for the call, sorted; shared: do not modify
	grant   string  // the id of the time-bound grant that allowed the call ("grant" of the decision); "" for none
}

// evalCall decides a call of Authorize: with the generation's plan when it
// has one for the call, else by evaluating the decision.
func (g *generation) evalCall(ctx context.Context, input ast.Value) (decided, error) {
	if g.plan == nil || !g.plan.applies(input) {
		return g.eval(ctx, input, nil)
	}
	d, err := g.plan.decide(ctx, g, input)
	return capReason(d), err
}

// eval evaluates the decision on input, traced into tracer when there is one.
func (g *generation) eval(ctx context.Context, input ast.Value, tracer topdown.QueryTracer) (decided, error) {
	rs, err := g.run(ctx, g.decideBody, input, tracer)
	if err != nil {
		return decided{}, err
	}
	if len(rs) == 0 || rs[0][g.decisionVar] == nil {
		return decided{}, &EvalError{Code: CodeUndefinedDecision, Err: fmt.Errorf("%s is undefined for this input", g.path)}
	}
	if len(rs) > 1 {
		return decided{}, &EvalError{Code: CodeInvalidDecision, Err: fmt.Errorf("%s has %d results; it must have one", g.path, len(rs))}
	}
	d, err := decisionOf(g.path, rs[0][g.decisionVar].Value)
	if err == nil && g.roles {
		d.granted = grantsOf(rs[0][grantsVar])
	}
	return capReason(d), err // cached and returned bounded
}

var (
	keyAllow  = ast.StringTerm("allow")
	keyReason = ast.StringTerm("reason")
	keyGrant  = ast.StringTerm("grant")
)

// run evaluates the compiled query body on input within the generation's
// timeout, traced into tracer when there is one. Its errors are *EvalError.
func (g *generation) run(ctx context.Context, body ast.Body, input ast.Value, tracer topdown.QueryTracer) (topdown.QueryResultSet, error) {
	return g.runShared(ctx, body, input, tracer, nil)
}

// runShared is run with the rule values cached in vc when it is not nil:
// queries on the same input that share vc evaluate each rule once.
func (g *generation) runShared(ctx context.Context, body ast.Body, input ast.Value, tracer topdown.QueryTracer, vc topdown.VirtualCache) (topdown.QueryResultSet, error) {
	// Cancelled by a timer and by the caller's context, without the goroutine
	// and context OPA would start for each evaluation.
	c := topdown.NewCancel()
	var timedOut atomic.Bool
	timer := time.AfterFunc(g.timeout, func() { timedOut.Store(true); c.Cancel() })
	stop := context.AfterFunc(ctx, c.Cancel)
	q := topdown.NewQuery(body).
		WithCompiler(g.compiler).
		WithStore(g.store).
		WithTransaction(g.txn).
		WithInput(ast.NewTerm(input)).
		WithCancel(c).
		WithEarlyExit(true).
		WithIndexing(true)
	if tracer != nil {
		q = q.WithQueryTracer(tracer)
	}
	if vc != nil {
		q = q.WithVirtualCache(vc)
	}
	rs, err := q.Run(ctx)
	timer.Stop()
	stop()
	if err != nil {
		if timedOut.Load() {
			return nil, &EvalError{Code: CodeEvalTimeout, Err: fmt.Errorf("evaluation stopped after %s: %w", g.timeout, context.DeadlineExceeded)}
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, &EvalError{Code: CodeEvalTimeout, Err: fmt.Errorf("evaluation stopped: %w", ctxErr)}
		}
		return nil, &EvalError{Code: CodeEvalError, Err: err}
	}
	return rs, nil
}

// decisionOf reads a decision from its OPA value, as parseDecision does from
// its JSON form (which it falls back to for the error of a malformed one).
func decisionOf(path string, v ast.Value) (decided, error) {
	switch d := v.(type) {
	case ast.Boolean:
		return decided{allow: bool(d)}, nil
	case ast.Object:
		a := d.Get(keyAllow)
		if a == nil {
			break
		}
		allow, ok := a.Value.(ast.Boolean)
		if !ok {
			break
		}
		var grant string
		if gt := d.Get(keyGrant); gt != nil {
			s, ok := gt.Value.(ast.String)
			if !ok {
				break
			}
			grant = string(s)
		}
		r := d.Get(keyReason)
		if r == nil {
			return decided{allow: bool(allow), grant: grant}, nil
		}
		if reason, ok := r.Value.(ast.String); ok {
			return decided{allow: bool(allow), reason: string(reason), grant: grant}, nil
		}
	}
	x, err := ast.JSON(v)
	if err != nil {
		return decided{}, &EvalError{Code: CodeInvalidDecision, Err: fmt.Errorf("%s: %w", path, err)}
	}
	return parseDecision(path, x)
}

// parseDecision accepts {"allow": bool, "reason": string} (reason optional) or a bool.
func parseDecision(path string, v any) (decided, error) {
	switch d := v.(type) {
	case bool:
		return decided{allow: d}, nil
	case map[string]any:
		allow, ok := d["allow"].(bool)
		if !ok {
			return decided{}, &EvalError{Code: CodeInvalidDecision, Err: fmt.Errorf("%s.allow is %s; it must be a boolean", path, typeName(d["allow"]))}
		}
		reason := ""
		if r, present := d["reason"]; present {
			if reason, ok = r.(string); !ok {
				return decided{}, &EvalError{Code: CodeInvalidDecision, Err: fmt.Errorf("%s.reason is %s; it must be a string", path, typeName(r))}
			}
		}
		return decided{allow: allow, reason: reason}, nil
	default:
		return decided{}, &EvalError{Code: CodeInvalidDecision, Err: fmt.Errorf("%s is %s; it must be an object {\"allow\": bool, \"reason\": string} or a boolean", path, typeName(v))}
	}
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "missing or null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number, float64, int, int64:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

// result turns an outcome into Temporal's Result. Principal is set as
// Temporal's default authorizer sets it: on allowed calls with claims, except
// health checks. A deny's reason ends with the decision id when decisions are
// logged (id is given and the recorder logs them).
func (a *Authorizer) result(o outcome, claims *authorization.Claims, target *authorization.CallTarget, id string) authorization.Result {
	if o.err != nil || !o.d.allow {
		reason := o.d.reason
		switch {
		case o.err != nil:
			// Temporal's interceptor logs the returned error for every call
			// ("Authorization error"); logging it here too would double a
			// flood from a policy that fails on every call.
			a.log.Debug("policy could not decide; call denied", "api", target.APIName, "namespace", target.Namespace, "error", o.err)
			reason = denyReason(o.err)
		case reason == "":
			reason = "denied by policy"
		}
		if id != "" && a.idInReason {
			reason += decisionSuffix(id)
		}
		return authorization.Result{Decision: authorization.DecisionDeny, Reason: reason}
	}
	r := authorization.Result{Decision: authorization.DecisionAllow}
	if claims != nil && !authorization.IsHealthCheckAPI(target.APIName) {
		r.Principal = &commonpb.Principal{Type: claims.AuthType, Name: claims.Subject}
	}
	return r
}

func denyReason(err error) string {
	var ee *EvalError
	if errors.As(err, &ee) {
		return "policy could not decide (" + string(ee.Code) + "); the call is denied"
	}
	return "policy could not decide; the call is denied"
}
