package policy_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	cryptorand "crypto/rand"
	"encoding/json"
	"fmt"
	"github.com/open-policy-agent/opa/v1/bundle"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/open-policy-agent/opa/v1/rego"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/api"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
)

// The workload benchmarks run what a cluster serving many services and people
// sees, with fixed seeds: 1,000 principals holding random roles on 1-3 of 24
// namespaces (some with system roles), calling 18 APIs across those namespaces.
// Temporal's default claim mapper and authorizer run on the same calls in the
// same run; x_temporal is their ns/op divided by ours (above 1, ours is faster).

const (
	wlPrincipals = 1000
	wlNamespaces = 24
	wlCalls      = 1 << 15
	wlSeed       = 12
)

// wlAPIs are the calls of a typical cluster: pollers, responders, starts,
// signals, queries, describes, lists, terminates and cluster APIs.
var wlAPIs = []string{
	"/temporal.api.workflowservice.v1.WorkflowService/PollWorkflowTaskQueue",
	"/temporal.api.workflowservice.v1.WorkflowService/PollActivityTaskQueue",
	"/temporal.api.workflowservice.v1.WorkflowService/RespondWorkflowTaskCompleted",
	"/temporal.api.workflowservice.v1.WorkflowService/RespondActivityTaskCompleted",
	"/temporal.api.workflowservice.v1.WorkflowService/RecordActivityTaskHeartbeat",
	"/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution",
	"/temporal.api.workflowservice.v1.WorkflowService/SignalWorkflowExecution",
	"/temporal.api.workflowservice.v1.WorkflowService/SignalWithStartWorkflowExecution",
	"/temporal.api.workflowservice.v1.WorkflowService/QueryWorkflow",
	"/temporal.api.workflowservice.v1.WorkflowService/DescribeWorkflowExecution",
	"/temporal.api.workflowservice.v1.WorkflowService/GetWorkflowExecutionHistory",
	"/temporal.api.workflowservice.v1.WorkflowService/ListWorkflowExecutions",
	"/temporal.api.workflowservice.v1.WorkflowService/TerminateWorkflowExecution",
	"/temporal.api.workflowservice.v1.WorkflowService/RequestCancelWorkflowExecution",
	"/temporal.api.workflowservice.v1.WorkflowService/DescribeNamespace",
	"/temporal.api.workflowservice.v1.WorkflowService/ListNamespaces",
	"/temporal.api.workflowservice.v1.WorkflowService/GetSystemInfo",
	"/temporal.api.operatorservice.v1.OperatorService/AddSearchAttributes",
}

var wlRoles = []string{"worker", "read", "write", "admin"}

type wlPrincipal struct {
	sub    string
	perms  []string
	groups []string
	token  string // reused on every call of the principal
}

type wlCall struct {
	p      int // index of the principal
	target *authorization.CallTarget
}

type workload struct {
	iss        *benchIssuer
	principals []wlPrincipal
	calls      []wlCall
	theirs     callPath
	ours       callPath
	mapper     *claimmapper.Mapper
	claims     []*authorization.Claims // each principal's claims as our mapper gives them
}

var (
	wlOnce sync.Once
	wl     *workload
	wlErr  error
)

// loadWorkload builds the workload once per benchmark binary.
func loadWorkload(b *testing.B) *workload {
	b.Helper()
	wlOnce.Do(func() { wl, wlErr = newWorkload() })
	if wlErr != nil {
		b.Fatal(wlErr)
	}
	return wl
}

func newWorkload() (*workload, error) {
	iss, err := newBenchIssuer()
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(wlSeed, 1))
	nss := make([]string, wlNamespaces)
	for i := range nss {
		nss[i] = fmt.Sprintf("team-%02d", i)
	}
	groups := []string{"payments-team", "platform", "orders-team", "analytics"}
	w := &workload{iss: iss, principals: make([]wlPrincipal, wlPrincipals)}
	for i := range w.principals {
		p := &w.principals[i]
		p.sub = fmt.Sprintf("svc-%04d", i)
		for _, k := range rng.Perm(wlNamespaces)[:1+rng.IntN(3)] {
			for _, r := range rng.Perm(len(wlRoles))[:1+rng.IntN(2)] {
				p.perms = append(p.perms, nss[k]+":"+wlRoles[r])
			}
		}
		if rng.IntN(20) == 0 { // 5% hold a system role
			p.perms = append(p.perms, "temporal-system:"+wlRoles[1+rng.IntN(3)])
		}
		p.groups = []string{groups[rng.IntN(len(groups))]}
		if p.token, err = iss.sign(p.claims(fmt.Sprintf("%s-0", p.sub))); err != nil {
			return nil, err
		}
	}
	w.calls = make([]wlCall, wlCalls)
	for i := range w.calls {
		c := &w.calls[i]
		c.p = rng.IntN(wlPrincipals)
		apiName := wlAPIs[rng.IntN(len(wlAPIs))]
		ns := ""
		if api.GetMethodMetadata(apiName).Scope == api.ScopeNamespace {
			own := w.principals[c.p].perms
			if rng.IntN(100) < 85 {
				ns, _, _ = strings.Cut(own[rng.IntN(len(own))], ":")
			} else {
				ns = nss[rng.IntN(wlNamespaces)]
			}
		}
		c.target = &authorization.CallTarget{APIName: apiName, Namespace: ns}
	}

	tcfg := &config.Authorization{JWTKeyProvider: config.JWTKeyProvider{KeySourceURIs: []string{iss.url()}, RefreshInterval: time.Hour}}
	logger := log.NewNoopLogger()
	provider := authorization.NewDefaultTokenKeyProvider(tcfg, logger)
	w.theirs = callPath{authorization.NewDefaultJWTClaimMapper(provider, tcfg, logger), authorization.NewDefaultAuthorizer()}
	if w.mapper, err = claimmapper.New(context.Background(), claimmapper.FromTemporal(tcfg)); err != nil {
		return nil, err
	}
	az, err := policy.NewAuthorizer(policy.Options{}, nil)
	if err != nil {
		return nil, err
	}
	w.ours = callPath{w.mapper, az}
	w.claims = make([]*authorization.Claims, wlPrincipals)
	for i, p := range w.principals {
		if w.claims[i], err = w.mapper.GetClaims(&authorization.AuthInfo{AuthToken: "Bearer " + p.token}); err != nil {
			return nil, err
		}
	}
	// Both sides decide every call of the workload alike.
	ctx := context.Background()
	for i, c := range w.calls {
		tok := w.principals[c.p].token
		want, err1 := w.theirs.call(ctx, tok, c.target)
		got, err2 := w.ours.call(ctx, tok, c.target)
		if err1 != nil && want.Decision == authorization.DecisionAllow || want.Decision != got.Decision {
			return nil, fmt.Errorf("call %d (%s %q by %v): Temporal's default %v (%v), ours %v (%v)", i, c.target.APIName, c.target.Namespace, w.principals[c.p].perms, want.Decision, err1, got.Decision, err2)
		}
	}
	return w, nil
}

func (p *wlPrincipal) claims(jti string) map[string]any {
	return map[string]any{
		"iss": "https://idp.example/realms/main", "sub": p.sub, "jti": jti,
		"exp": time.Now().Add(2 * time.Hour).Unix(), "iat": time.Now().Unix(),
		"permissions": p.perms, "groups": p.groups,
	}
}

// allowedShare is the share of the workload's calls that are allowed.
func (w *workload) allowedShare() float64 {
	ctx := context.Background()
	n := 0
	for _, c := range w.calls {
		if r, _ := w.theirs.authorizer.Authorize(ctx, w.claims[c.p], c.target); r.Decision == authorization.DecisionAllow {
			n++
		}
	}
	return float64(n) / float64(len(w.calls))
}

// BenchmarkWorkload runs the call path (claim mapper and authorizer) on the
// workload: (a) each principal reusing its token, (b) a fresh token on every
// call, (d) (a) from every core at once.
func BenchmarkWorkload(b *testing.B) {
	w := loadWorkload(b)
	ctx := context.Background()
	b.Logf("workload: %d principals, %d namespaces, %d APIs, %d calls, %.0f%% allowed", wlPrincipals, wlNamespaces, len(wlAPIs), wlCalls, 100*w.allowedShare())

	b.Run("a-reused-tokens", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			c := &w.calls[i%wlCalls]
			_, _ = w.ours.call(ctx, w.principals[c.p].token, c.target)
			i++
		}
		j := 0
		reportAgainstDefault(b, func() {
			c := &w.calls[j%wlCalls]
			_, _ = w.theirs.call(ctx, w.principals[c.p].token, c.target)
			j++
		})
	})

	b.Run("b-fresh-tokens", func(b *testing.B) {
		fresh := w.freshTokens(b)
		b.ResetTimer()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			c := &w.calls[i%wlCalls]
			_, _ = w.ours.call(ctx, fresh[i%len(fresh)], c.target)
			i++
		}
		j := 0
		reportAgainstDefault(b, func() {
			c := &w.calls[j%wlCalls]
			_, _ = w.theirs.call(ctx, fresh[j%len(fresh)], c.target)
			j++
		})
	})

	b.Run("d-parallel-reused-tokens", func(b *testing.B) {
		b.ReportAllocs()
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := int(next.Add(wlCalls / 8)) // each goroutine its own stretch of calls
			for pb.Next() {
				c := &w.calls[i%wlCalls]
				_, _ = w.ours.call(ctx, w.principals[c.p].token, c.target)
				i++
			}
		})
		reportParallelAgainstDefault(b, func(i int) {
			c := &w.calls[i%wlCalls]
			_, _ = w.theirs.call(ctx, w.principals[c.p].token, c.target)
		})
	})
}

// freshTokens signs one token per call of the workload, each with its own jti:
// more tokens than our mapper caches (claimmapper.DefaultCacheSize), so that no
// call finds its token verified.
func (w *workload) freshTokens(b *testing.B) []string {
	b.Helper()
	n := 2 * claimmapper.DefaultCacheSize
	out := make([]string, n)
	for i := range out {
		p := &w.principals[w.calls[i%wlCalls].p]
		tok, err := w.iss.sign(p.claims(fmt.Sprintf("%s-fresh-%d", p.sub, i)))
		if err != nil {
			b.Fatal(err)
		}
		out[i] = tok
	}
	return out
}

// reportParallelAgainstDefault times baseline from as many goroutines as
// RunParallel used, for as many calls in all, and reports x_temporal.
func reportParallelAgainstDefault(b *testing.B, baseline func(i int)) {
	b.Helper()
	ours := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.StopTimer()
	procs := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	var next atomic.Int64
	start := time.Now()
	for range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > b.N {
					return
				}
				baseline(i)
			}
		}()
	}
	wg.Wait()
	base := float64(time.Since(start).Nanoseconds()) / float64(b.N)
	b.ReportMetric(base, "temporal-ns/op")
	if ours > 0 {
		b.ReportMetric(base/ours, "x_temporal")
	}
}

// BenchmarkEvalMiss compares an evaluation that misses the decision cache (our
// authorizer with the cache off) with a naive OPA embedding of the same policy:
// its files loaded with rego.Load, PrepareForEval once, a map[string]any input
// built per call. x_naive is the naive ns/op divided by ours. default is the
// embedded policy alone; example-bundles layers every bundle of bundles/ on it
// (their rules evaluated by OPA on every miss, the default rules by the plan);
// bundle-<name> each of them alone.
func BenchmarkEvalMiss(b *testing.B) {
	w := loadWorkload(b)
	def := []string{"../rego/bundle/temporal/authz/authz.rego", "../rego/bundle/temporal/grants/grants.rego"}
	b.Run("default", func(b *testing.B) { benchEvalMiss(b, w, nil, def) })
	dirs, err := filepath.Glob("../bundles/*/.manifest")
	if err != nil || len(dirs) == 0 {
		b.Fatalf("no example bundles: %v", err)
	}
	bundles := map[string]*bundle.Bundle{}
	files := slices.Clone(def)
	for _, m := range dirs {
		dir := filepath.Dir(m)
		bd, err := policy.LoadBundle(dir)
		if err != nil {
			b.Fatal(err)
		}
		name := filepath.Base(dir)
		bundles[name] = bd
		files = append(files, dir)
		b.Run("bundle-"+name, func(b *testing.B) {
			benchEvalMiss(b, w, map[string]*bundle.Bundle{name: bd}, append(slices.Clip(def), dir))
		})
	}
	b.Run("example-bundles", func(b *testing.B) { benchEvalMiss(b, w, bundles, files) })
}

func benchEvalMiss(b *testing.B, w *workload, bundles map[string]*bundle.Bundle, files []string) {
	ctx := context.Background()
	ours, err := policy.NewAuthorizer(policy.Options{DecisionCacheSize: -1}, bundles)
	if err != nil {
		b.Fatal(err)
	}
	skipTests := func(_ string, info fs.FileInfo, _ int) bool {
		return !info.IsDir() && strings.HasSuffix(info.Name(), "_test.rego")
	}
	naive, err := rego.New(
		rego.Query(policy.DefaultDecisionPath),
		rego.Load(files, skipTests),
	).PrepareForEval(ctx)
	if err != nil {
		b.Fatal(err)
	}
	naiveAuthorize := func(c *authorization.Claims, t *authorization.CallTarget) bool {
		rs, err := naive.Eval(ctx, rego.EvalInput(naiveInput(c, t)))
		if err != nil || len(rs) != 1 {
			return false
		}
		d, _ := rs[0].Expressions[0].Value.(map[string]any)
		allow, _ := d["allow"].(bool)
		return allow
	}
	for i, c := range w.calls[:2000] {
		got, _ := ours.Authorize(ctx, w.claims[c.p], c.target)
		if want := naiveAuthorize(w.claims[c.p], c.target); want != (got.Decision == authorization.DecisionAllow) {
			b.Fatalf("call %d: naive embedding allow=%v, ours %v", i, want, got.Decision)
		}
	}
	// Interleaved in chunks, so that a change of load on the machine weighs on both alike.
	const chunk = 256
	var naiveTime time.Duration
	b.ResetTimer()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c := &w.calls[i%wlCalls]
		_, _ = ours.Authorize(ctx, w.claims[c.p], c.target)
		i++
		if i%chunk == 0 {
			b.StopTimer()
			start := time.Now()
			for j := i - chunk; j < i; j++ {
				c := &w.calls[j%wlCalls]
				naiveAuthorize(w.claims[c.p], c.target)
			}
			naiveTime += time.Since(start)
			b.StartTimer()
		}
	}
	oursNs := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	naiveNs := oursNs
	if n := i / chunk * chunk; n > 0 {
		naiveNs = float64(naiveTime.Nanoseconds()) / float64(n)
	}
	b.ReportMetric(naiveNs, "naive-ns/op")
	b.ReportMetric(naiveNs/oursNs, "x_naive")
}

// naiveInput is the input document as a straightforward embedding builds it:
// the whole document the policy may read (see docs/writing-policies.md, "The input document"),
// the token's claims included, as Go maps.
func naiveInput(c *authorization.Claims, t *authorization.CallTarget) map[string]any {
	roles := func(r authorization.Role) []any {
		var out []any
		for _, n := range []struct {
			bit  authorization.Role
			name string
		}{{authorization.RoleWorker, "worker"}, {authorization.RoleReader, "read"}, {authorization.RoleWriter, "write"}, {authorization.RoleAdmin, "admin"}} {
			if r&n.bit != 0 {
				out = append(out, n.name)
			}
		}
		return out
	}
	nss := map[string]any{}
	for ns, r := range c.Namespaces {
		nss[ns] = roles(r)
	}
	// The whole documented input: input.claims.jwt holds the verified token's claims.
	jwt := map[string]any{}
	if tc, ok := c.Extensions.(policy.TokenClaims); ok {
		jwt = tc.TokenClaims()
	}
	md := api.GetMethodMetadata(t.APIName)
	scope := map[api.Scope]string{api.ScopeNamespace: "namespace", api.ScopeCluster: "cluster"}[md.Scope]
	if scope == "" {
		scope = "unknown"
	}
	access := map[api.Access]string{api.AccessReadOnly: "read", api.AccessWrite: "write", api.AccessAdmin: "admin"}[md.Access]
	if access == "" {
		access = "unknown"
	}
	return map[string]any{
		"claims": map[string]any{"subject": c.Subject, "auth_type": c.AuthType, "system": roles(c.System), "namespaces": nss, "jwt": jwt},
		"target": map[string]any{
			"api": t.APIName, "service": strings.Trim(api.ServiceName(t.APIName), "/"), "method": api.MethodName(t.APIName),
			"namespace": t.Namespace, "nexus_endpoint": t.NexusEndpointName, "scope": scope, "access": access,
			"health_check": authorization.IsHealthCheckAPI(t.APIName),
		},
	}
}

// BenchmarkRequestPolicy is (c): the workflow-type-acl bundle, whose rules read
// the workflow type from input.request, deciding starts of varied workflow
// types by varied principals, against Temporal's default authorizer alone on
// the same calls. cost_x_temporal is our ns/op divided by Temporal's.
func BenchmarkRequestPolicy(b *testing.B) {
	w := loadWorkload(b)
	ctx := context.Background()
	acl, err := policy.LoadBundle("../bundles/workflow-type-acl")
	if err != nil {
		b.Fatal(err)
	}
	ours, err := policy.NewAuthorizer(policy.Options{}, map[string]*bundle.Bundle{"workflow-type-acl": acl})
	if err != nil {
		b.Fatal(err)
	}
	def := authorization.NewDefaultAuthorizer()
	rng := rand.New(rand.NewPCG(wlSeed, 3))
	types := []string{"payments.Charge", "payments.Refund", "payments.Settle", "orders.Ship", "orders.Cancel", "reports.Daily"}
	type start struct {
		claims *authorization.Claims
		target *authorization.CallTarget
	}
	starts := make([]start, 4096)
	allowed := 0
	for i := range starts {
		p := rng.IntN(200) // 200 principals starting, each with a token that names its groups
		c := *w.claims[p]
		c.Namespaces = map[string]authorization.Role{"default": authorization.RoleWriter}
		wfType := fmt.Sprintf("%s.v%d", types[rng.IntN(len(types))], rng.IntN(8))
		req := &workflowservice.StartWorkflowExecutionRequest{
			Namespace: "default", WorkflowId: fmt.Sprintf("wf-%d", i), RequestId: fmt.Sprintf("req-%d", i),
			WorkflowType: &commonpb.WorkflowType{Name: wfType}, Identity: w.principals[p].sub,
			Input: &commonpb.Payloads{Payloads: []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`{"amount": 42}`)}}},
		}
		starts[i] = start{&c, &authorization.CallTarget{APIName: apiStart, Namespace: "default", Request: req}}
		if r, _ := ours.Authorize(ctx, starts[i].claims, starts[i].target); r.Decision == authorization.DecisionAllow {
			allowed++
		}
	}
	if allowed == 0 || allowed == len(starts) {
		b.Fatalf("%d of %d starts allowed: the workload does not exercise the ACL", allowed, len(starts))
	}
	b.Logf("request policy: %d starts by 200 principals of %d workflow types, %.0f%% allowed", len(starts), len(types)*8, 100*float64(allowed)/float64(len(starts)))
	b.ResetTimer()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s := &starts[i%len(starts)]
		_, _ = ours.Authorize(ctx, s.claims, s.target)
		i++
	}
	oursNs := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.StopTimer()
	t0 := time.Now()
	for j := range b.N {
		s := &starts[j%len(starts)]
		_, _ = def.Authorize(ctx, s.claims, s.target)
	}
	defNs := float64(time.Since(t0).Nanoseconds()) / float64(b.N)
	b.ReportMetric(defNs, "temporal-ns/op")
	b.ReportMetric(oursNs/defNs, "cost_x_temporal")
}

// benchIssuer signs ES256 tokens and serves its key set over HTTP.
type benchIssuer struct {
	priv jwk.Key
	srv  *httptest.Server
}

func newBenchIssuer() (*benchIssuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), cryptorand.Reader)
	if err != nil {
		return nil, err
	}
	priv, err := jwk.FromRaw(key)
	if err != nil {
		return nil, err
	}
	_ = priv.Set(jwk.KeyIDKey, "bench")
	_ = priv.Set(jwk.AlgorithmKey, jwa.ES256)
	pub, err := priv.PublicKey()
	if err != nil {
		return nil, err
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		return nil, err
	}
	// Served for the life of the benchmark binary: every benchmark shares the workload.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(set)
	}))
	return &benchIssuer{priv: priv, srv: srv}, nil
}

func (i *benchIssuer) url() string { return i.srv.URL }

func (i *benchIssuer) sign(claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.KeyIDKey, "bench")
	tok, err := jws.Sign(payload, jws.WithKey(jwa.ES256, i.priv, jws.WithProtectedHeaders(hdr)))
	return string(tok), err
}

// BenchmarkCacheMemory fills both caches to their default bounds with distinct
// entries (the decision cache with calls of distinct namespaces, the token
// cache with distinct tokens) and reports the heap they hold (heap-MiB, after a
// collection, against the same process before filling) and what each cache
// accounts for itself (accounted-MiB); ns/op is a hit at the bound.
func BenchmarkCacheMemory(b *testing.B) {
	w := loadWorkload(b)
	ctx := context.Background()
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}

	before := heap()
	az, err := policy.NewAuthorizer(policy.Options{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 2 * policy.DefaultDecisionCacheSize {
		ns := fmt.Sprintf("tenant-%06d", i)
		c := *w.claims[0]
		c.Namespaces = map[string]authorization.Role{ns: authorization.RoleWriter}
		_, _ = az.Authorize(ctx, &c, &authorization.CallTarget{APIName: wlAPIs[i%len(wlAPIs)], Namespace: ns})
	}
	st := az.Status()
	decisionHeap := heap() - before
	if st.CacheEntries == 0 || st.CacheEntries > policy.DefaultDecisionCacheSize || st.CacheBytes > policy.DefaultDecisionCacheBytes {
		b.Fatalf("decision cache holds %d entries, %d bytes: beyond its bounds", st.CacheEntries, st.CacheBytes)
	}
	b.Run("decision-cache", func(b *testing.B) {
		target := &authorization.CallTarget{APIName: wlAPIs[5], Namespace: "team-01"}
		c := *w.claims[0]
		c.Namespaces = map[string]authorization.Role{"team-01": authorization.RoleWriter}
		for b.Loop() {
			_, _ = az.Authorize(ctx, &c, target)
		}
		b.ReportMetric(float64(st.CacheEntries), "entries")
		b.ReportMetric(float64(st.CacheBytes)/(1<<20), "accounted-MiB")
		b.ReportMetric(float64(decisionHeap)/(1<<20), "heap-MiB")
	})

	before = heap()
	m, err := claimmapper.New(ctx, claimmapper.Config{JWKSURLs: []string{w.iss.url()}})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	p := &w.principals[0]
	var tok string
	for i := range claimmapper.DefaultCacheSize + 1000 {
		if tok, err = w.iss.sign(p.claims(fmt.Sprintf("mem-%d", i))); err != nil {
			b.Fatal(err)
		}
		if _, err := m.GetClaims(&authorization.AuthInfo{AuthToken: "Bearer " + tok}); err != nil {
			b.Fatal(err)
		}
	}
	tokenHeap := heap() - before
	entries, bytes := m.CacheStats()
	if entries == 0 || entries > claimmapper.DefaultCacheSize || bytes > claimmapper.DefaultCacheBytes {
		b.Fatalf("token cache holds %d entries, %d bytes: beyond its bounds", entries, bytes)
	}
	b.Run("token-cache", func(b *testing.B) {
		for b.Loop() {
			_, _ = m.GetClaims(&authorization.AuthInfo{AuthToken: "Bearer " + tok})
		}
		b.ReportMetric(float64(entries), "entries")
		b.ReportMetric(float64(bytes)/(1<<20), "accounted-MiB")
		b.ReportMetric(float64(tokenHeap)/(1<<20), "heap-MiB")
	})
	runtime.KeepAlive(az)
}
