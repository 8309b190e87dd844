package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/temporal"
	"google.golang.org/grpc/codes"

	"github.com/temporal-opa/temporal-opa/server/internal/cpushare"
	"github.com/temporal-opa/temporal-opa/server/internal/devkey"
	"github.com/temporal-opa/temporal-opa/server/internal/devserver"
	"github.com/temporal-opa/temporal-opa/server/internal/testutil"
)

// The load benchmark's workload (issue 12, "Through the real server").
const (
	// benchApps is the number of applications: each has a worker client (its
	// own principal and task queue) and a starter client (another principal).
	benchApps = 8
	// benchStartersPerApp is the number of goroutines of each starter client
	// that start a workflow and wait for its result, over and over.
	benchStartersPerApp = 4
	// benchWorkflowType is the workflow's registered name: the
	// workflow-type-acl bundle lets the starters' group start it.
	benchWorkflowType = "payments.BenchOrder"
	// benchGroup is the starters' "groups" claim, granted the prefix
	// "payments." by the workflow-type-acl bundle's data.json.
	benchGroup = "payments-team"
	// benchMaxErrors is how many failed workflows the benchmark tolerates.
	benchMaxErrors = 5
	// benchTarget is the share of the unauthorized throughput temporal-opa
	// with the default policy should keep (issue 12). Printed, never asserted.
	benchTarget = 0.97
	// benchProfileLabel is the pprof label every goroutine of a server
	// carries (its value the configuration's name), so that a CPU profile
	// of the process tells the server's samples from the clients'.
	benchProfileLabel = "bench-server"
)

// benchCPUTargets are the shares of a server's CPU that temporal-opa's
// components together (the claim mapper, the authorizer, metrics, decision
// logging, cumulatively) may take, by configuration (issue 22). Printed, never
// asserted.
var benchCPUTargets = map[string]float64{"opa-default": 0.01, "opa-audit": 0.03}

// benchConfig is one way of authorizing the server under load.
type benchConfig struct {
	name   string                    // metric suffix
	label  string                    // for the table
	auth   devserver.AuthReplacement // nil: temporal-opa
	policy string                    // bundle layered on the default policy, or ""
	// tokens: clients send a token (minted once per client); workerPerms are
	// the permissions of the workers' tokens.
	tokens      bool
	workerPerms []string
	// audit turns on decision logs (uploaded to a service of the benchmark,
	// every 1-2 s) and metrics (Prometheus on a free port): opaConfig and
	// metricsPort are then set by the benchmark.
	audit       bool
	opaConfig   string
	metricsPort int
}

// benchParams are the benchmark's durations, from the environment.
type benchParams struct {
	duration time.Duration // measured, per configuration and round
	warmup   time.Duration // per server, once
	rounds   int
}

// BenchmarkServerThroughput drives the in-process dev server with a pool of
// real SDK clients and reports workflows completed per second under five
// authorization setups: (1) none, (2) Temporal's default JWT claim mapper and
// authorizer, (3) temporal-opa with its embedded default policy, (4)
// temporal-opa with the four example bundles of bundles/ layered on it, (5)
// (3) with decision logs (OPA's plugin, uploading to a service of the
// benchmark every 1-2 s) and metrics (Prometheus) on. The ratio of each to
// (1) is printed, and whether (3) keeps at least 97% of (1).
// It is a load test, not part of make test: make bench-server runs it.
//
// Throughput cannot resolve a few percent on this persistence-bound server,
// so each measured slice is also CPU-profiled (runtime/pprof, 100 Hz), every
// goroutine of a server carrying the pprof label bench-server=<config>: the
// samples of the server's goroutines (not the clients', nor the runtime's
// unlabelled GC workers) are attributed by package (package cpushare) to
// temporal-opa's claim mapper, authorizer (with OPA's evaluation under it),
// metrics and decision logging, cumulatively (samples with a frame of the
// component in their stack) and by the leaf function's package, and the
// share of all of them together is compared with the targets of issue 22
// (benchCPUTargets: <= 1% with the default policy, <= 3% with decision logs
// and metrics). TEMPORAL_OPA_BENCH_PROFILES=DIR keeps the profiles for go
// tool pprof (-tagfocus bench-server=opa-default).
//
// Measured on the 2-core machine (issue 22; two runs, shares of the server's
// CPU, all components together, cumulative): (3) the default policy 0.26% and
// 0.25% (target <= 1%: met); (4) the four bundles 0.81% and 0.74%; (5) decision
// logs and metrics 10.5% and 7.8% with OPA's decision-log plugin uploading
// (decision logging 9.8% and 7.2%, metrics 0.4% and 0.2%), and 0.87-1.44% with
// the decision logger's own upload path (target <= 3%: met; decision logging
// 0.40%). docs/performance.md's "What temporal-opa costs the server's CPU" has the
// tables and the plugin's profile.
//
// Workload, per server: benchApps applications, each a worker (its own
// client, principal and task queue) running a workflow of one activity, and a
// starter client whose benchStartersPerApp goroutines start a workflow and
// wait for its result, over and over. Every client sends one token minted for
// it, as a real SDK client reuses its API key. Only workflows that completed
// with the expected result count. The starters hold default:read and
// default:write and the group benchGroup, which the workflow-type-acl bundle
// lets start the workflow's type (benchWorkflowType); the workers hold
// default:write, as Temporal's default authorizer requires, except in (4),
// where they hold only default:worker (the least-privilege-workers bundle).
//
// The four servers run side by side (the idle ones cost every configuration
// alike) and the load goes to one at a time: after a warm-up of each
// (TEMPORAL_OPA_BENCH_WARMUP, default 5s), TEMPORAL_OPA_BENCH_ROUNDS rounds
// (default 3) give each configuration TEMPORAL_OPA_BENCH_DURATION measured
// (default 20s) after a ramp of benchRamp, every other round in reverse order
// (12345 54321 ...) so that a drift of the machine weighs on all alike. Between
// two slices the workflows in flight finish and the machine goes idle (up to
// 15s). A measurement during which other processes used more than
// benchDisturbed of the CPUs is made again (benchAttempts in all), and the
// table's "others" column shows what they took from the ones kept. The
// table gives each configuration's mean over the rounds and each round's.
//
// TEMPORAL_OPA_BENCH_CONFIGS (e.g. "opa-default,opa-bundles") runs only some
// configurations, always with (1).
//
// It runs once whatever b.N: use -benchtime 1x. Run it with -run '^$' so that
// TestMain does not start the tests' shared server.
func BenchmarkServerThroughput(b *testing.B) {
	p := benchParamsFromEnv(b)
	key, err := devkey.Generate()
	if err != nil {
		b.Fatal(err)
	}
	configs := []benchConfig{
		{name: "noauth", label: "(1) no authorization", auth: noAuthorization},
		{name: "temporal-default", label: "(2) Temporal default mapper+authorizer", auth: temporalDefaultAuthorization,
			tokens: true, workerPerms: []string{"default:write"}},
		{name: "opa-default", label: "(3) temporal-opa, default policy", tokens: true, workerPerms: []string{"default:write"}},
		{name: "opa-bundles", label: "(4) temporal-opa, 4 example bundles", policy: layeredBundles(b),
			tokens: true, workerPerms: []string{"default:worker"}},
		{name: "opa-audit", label: "(5) temporal-opa, decision logs+metrics", tokens: true, workerPerms: []string{"default:write"}, audit: true},
	}
	configs = selectConfigs(b, configs)
	audit := &auditService{}
	for i := range configs {
		if configs[i].audit {
			svc := httptest.NewServer(audit)
			defer svc.Close()
			configs[i].opaConfig = writeAuditConfig(b, svc.URL)
			configs[i].metricsPort = testutil.FreePort(b, "127.0.0.1")
		}
	}
	fmt.Printf("BenchmarkServerThroughput: %d servers, each with %d workers and %d starter clients (%d workflows in flight); "+
		"%s warm-up each, then %d rounds of %s (+%s ramp) per configuration; %d CPUs\n",
		len(configs), benchApps, benchApps, benchApps*benchStartersPerApp, p.warmup, p.rounds, p.duration, benchRamp, runtime.NumCPU())

	ctx := context.Background()
	servers := make([]*benchServer, len(configs))
	defer func() {
		for _, s := range servers {
			if s != nil {
				s.stop()
			}
		}
	}()
	for i, c := range configs {
		start := time.Now()
		s, err := startBenchServer(ctx, c, key)
		if err != nil {
			b.Fatalf("%s: %v", c.label, err)
		}
		servers[i] = s
		fmt.Printf("  %-40s started in %s\n", c.label, time.Since(start).Round(time.Millisecond))
	}
	for _, s := range servers {
		if _, err := s.drive(ctx, p.warmup, 0); err != nil {
			b.Fatalf("%s, warm-up: %v", s.config.label, err)
		}
	}

	results := map[string][]benchSegment{}
	for round := range p.rounds {
		order := slices.Clone(servers)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, s := range order {
			var seg benchSegment // the least disturbed attempt
			for attempt := 1; attempt <= benchAttempts; attempt++ {
				got, err := s.drive(ctx, benchRamp, p.duration)
				if err != nil {
					b.Fatalf("round %d, %s: %v", round+1, s.config.label, err)
				}
				ours := "no CPU profile"
				if got.shares != nil {
					ours = fmt.Sprintf("temporal-opa %5.2f%% of the server's CPU", 100*got.shares.Share(got.shares.UnderOurs))
					if err := saveProfile(got.profile, s.config.name, round+1, attempt); err != nil {
						b.Fatal(err)
					}
				}
				fmt.Printf("  round %d  %-40s %7.1f wf/s  cpu %3.0f%%  %5.2f ms cpu/wf  other processes %3.0f%%  %s\n",
					round+1, s.config.label, got.rate(), 100*got.cpuShare(), got.cpuPerWorkflow(), 100*got.othersShare(), ours)
				if attempt == 1 || got.othersShare() < seg.othersShare() {
					seg = got
				}
				if seg.othersShare() <= benchDisturbed {
					break
				}
			}
			results[s.config.name] = append(results[s.config.name], seg)
		}
	}

	printBenchTable(os.Stdout, configs, results)
	printCPUShares(os.Stdout, configs, results)
	base := meanRate(results[configs[0].name])
	for _, c := range configs {
		mean := meanRate(results[c.name])
		b.ReportMetric(mean, "wf/s-"+c.name)
		if c.name != configs[0].name {
			b.ReportMetric(mean/base, "ratio-"+c.name)
		}
		if sh := sumShares(results[c.name]); sh != nil && c.auth == nil {
			b.ReportMetric(100*sh.Share(sh.UnderOurs), "cpu%-"+c.name)
		}
	}
	if n, size := audit.received(); slices.ContainsFunc(configs, func(c benchConfig) bool { return c.audit }) {
		fmt.Printf("the decision-log service received %d uploads (%d bytes, gzip)\n", n, size)
		if n == 0 {
			b.Fatal("the decision-log service received nothing: decision logs were not on")
		}
	}
}

// auditService is the decision-log service of the audit configuration: it
// counts the uploads (OPA's POST of a gzip JSON batch) and their bytes.
type auditService struct {
	mu      sync.Mutex
	uploads int
	bytes   int64
}

func (a *auditService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	a.uploads++
	a.bytes += n
	a.mu.Unlock()
}

func (a *auditService) received() (int, int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.uploads, a.bytes
}

// writeAuditConfig writes an OPA configuration whose decision logs go to url
// every 1-2 s (so that uploads happen within a measured slice) and returns
// its path.
func writeAuditConfig(b *testing.B, url string) string {
	path := filepath.Join(b.TempDir(), "opa.yaml")
	cfg := fmt.Sprintf("services:\n  audit:\n    url: %s\ndecision_logs:\n  service: audit\n  reporting:\n    min_delay_seconds: 1\n    max_delay_seconds: 2\n", url)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// saveProfile writes a measured slice's CPU profile to
// $TEMPORAL_OPA_BENCH_PROFILES/<config>-round<n>-<attempt>.pprof, for go tool
// pprof (with the label bench-server=<config> for the server's samples);
// nothing when the variable is unset.
func saveProfile(raw []byte, config string, round, attempt int) error {
	dir := os.Getenv("TEMPORAL_OPA_BENCH_PROFILES")
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("TEMPORAL_OPA_BENCH_PROFILES: %w", err)
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-round%d-%d.pprof", config, round, attempt))
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		return fmt.Errorf("TEMPORAL_OPA_BENCH_PROFILES: %w", err)
	}
	return nil
}

// sumShares adds up the CPU shares of segs; nil when none was profiled.
func sumShares(segs []benchSegment) *cpushare.Shares {
	var sum *cpushare.Shares
	for _, s := range segs {
		if s.shares != nil {
			if sum == nil {
				sum = &cpushare.Shares{}
			}
			sum.Add(s.shares)
		}
	}
	return sum
}

// printCPUShares prints, for each configuration, the share of its server's
// CPU (the samples of its goroutines, labelled benchProfileLabel) spent in
// temporal-opa's components over the measured slices kept: under each
// component (cumulative: what it and all it calls cost; the authorizer's
// share includes the metrics and decision-log work done on the call, so the
// columns overlap and "all" counts each sample once), then by the leaf
// function's package (OPA's evaluation apart; work in shared packages, such
// as the OpenTelemetry SDK or gzip, counts for none), and the target.
func printCPUShares(w io.Writer, configs []benchConfig, results map[string][]benchSegment) {
	fmt.Fprintln(w, "share of each server's CPU spent in temporal-opa (CPU profile of the measured slices; the server's goroutines only):")
	fmt.Fprintf(w, "%-40s %8s %7s | %-42s | %-48s | %s\n", "", "server", "of the", "under (cumulative)", "by leaf package", "")
	fmt.Fprintf(w, "%-40s %8s %7s | %6s %6s %6s %6s %6s %6s | %6s %6s %6s %6s %6s %6s %6s | %s\n", "configuration", "cpu s", "process",
		"mapper", "authz", "metric", "declog", "all", "", "mapper", "authz", "OPA", "metric", "declog", "all", "", "target")
	pct := func(sh *cpushare.Shares, d time.Duration) string { return fmt.Sprintf("%5.2f%%", 100*sh.Share(d)) }
	for _, c := range configs {
		sh := sumShares(results[c.name])
		if sh == nil {
			fmt.Fprintf(w, "%-40s no CPU profile\n", c.label)
			continue
		}
		target := "-"
		if t, ok := benchCPUTargets[c.name]; ok {
			verdict := map[bool]string{true: "met", false: "NOT met"}[sh.Share(sh.UnderOurs) <= t]
			target = fmt.Sprintf("<= %.0f%%: %s", 100*t, verdict)
		}
		fmt.Fprintf(w, "%-40s %8.1f %6.0f%% | %s %s %s %s %s %6s | %s %s %s %s %s %s %6s | %s\n", c.label,
			sh.Total.Seconds(), 100*float64(sh.Total)/float64(max(sh.All, 1)),
			pct(sh, sh.Under[cpushare.ClaimMapper]), pct(sh, sh.Under[cpushare.Authorizer]), pct(sh, sh.Under[cpushare.Metrics]),
			pct(sh, sh.Under[cpushare.DecisionLog]), pct(sh, sh.UnderOurs), "",
			pct(sh, sh.Leaf[cpushare.ClaimMapper]), pct(sh, sh.Leaf[cpushare.Authorizer]), pct(sh, sh.Leaf[cpushare.OPA]),
			pct(sh, sh.Leaf[cpushare.Metrics]), pct(sh, sh.Leaf[cpushare.DecisionLog]), pct(sh, sh.LeafOurs), "", target)
	}
}

// noAuthorization installs no claim mapper and no authorizer: Temporal's
// interceptor then skips authorization and every call is allowed whatever its
// token. The benchmark's baseline.
func noAuthorization(string, log.Logger) ([]temporal.ServerOption, func()) { return nil, nil }

// temporalDefaultAuthorization installs Temporal's default JWT claim mapper
// (authorization.NewDefaultJWTClaimMapper, its keys fetched by
// authorization.NewDefaultTokenKeyProvider from the dev key's JWKS, so that the
// dev key's tokens are accepted) and its default authorizer
// (authorization.NewDefaultAuthorizer).
func temporalDefaultAuthorization(jwksURL string, logger log.Logger) ([]temporal.ServerOption, func()) {
	cfg := &config.Authorization{JWTKeyProvider: config.JWTKeyProvider{
		KeySourceURIs:   []string{jwksURL},
		RefreshInterval: time.Minute,
	}}
	keys := authorization.NewDefaultTokenKeyProvider(cfg, logger)
	return []temporal.ServerOption{
		temporal.WithAuthorizer(authorization.NewDefaultAuthorizer()),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper {
			return authorization.NewDefaultJWTClaimMapper(keys, cfg, logger)
		}),
	}, keys.Close
}

// The benchmark's comparison servers authorize as they say: without
// authorization every call is allowed; with Temporal's default claim mapper
// and authorizer the dev key's tokens are verified and their roles enforced,
// and a denial is Temporal's own (its generic message, no reason), not
// temporal-opa's. Options that need temporal-opa are refused with them.
func TestDevServerAuthorizationModes(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	for _, tc := range []struct {
		name string
		o    devserver.Options
		want string
	}{
		{"policy without temporal-opa", devserver.Options{ReplaceAuth: noAuthorization, Policy: []string{repoPath(t, "bundles/ui-friendly-reads")}},
			"devserver: ReplaceAuth cannot be combined with Policy, which needs temporal-opa's authorization"},
		{"status endpoint without temporal-opa", devserver.Options{ReplaceAuth: temporalDefaultAuthorization, StatusAddr: "127.0.0.1:0"},
			"devserver: ReplaceAuth cannot be combined with StatusAddr, which needs temporal-opa's authorization"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Key = srv.Key()
			s, err := devserver.Start(ctx, tc.o)
			if err == nil {
				_ = s.Stop()
				t.Fatalf("Start succeeded, want the error %q", tc.want)
			}
			if err.Error() != tc.want {
				t.Fatalf("Start: %v, want %q", err, tc.want)
			}
		})
	}

	start := func(name string, auth devserver.AuthReplacement) *devserver.Server {
		s, err := devserver.Start(ctx, devserver.Options{Namespaces: []string{"default"}, Key: srv.Key(), HTTPPort: -1, ReplaceAuth: auth})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(func() { _ = s.Stop() })
		if s.Authorizer() != nil {
			t.Errorf("%s: Authorizer() is not nil: temporal-opa's authorizer was built", name)
		}
		return s
	}
	describe := &workflowservice.DescribeNamespaceRequest{Namespace: "default"}
	none := start("no authorization", noAuthorization)
	def := start("Temporal default", temporalDefaultAuthorization)
	otherKey, err := devkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	// wantTemporalDenied asserts Temporal's own denial: PermissionDenied with
	// its generic message and no reason (temporal-opa's carry the policy's).
	wantTemporalDenied := func(t *testing.T, err error) {
		t.Helper()
		wantDenied(t, "call", err)
		var pd *serviceerror.PermissionDenied
		if errors.As(serviceerror.FromStatus(serviceerror.ToStatus(err)), &pd) && (pd.Message != authorization.RequestUnauthorized || pd.Reason != "") {
			t.Errorf("PermissionDenied %q (reason %q), want Temporal's %q with no reason", pd.Message, pd.Reason, authorization.RequestUnauthorized)
		}
	}
	for _, tc := range []struct {
		name   string
		s      *devserver.Server
		call   func(ctx context.Context, s *devserver.Server) error
		denied bool
	}{
		{"no authorization: DescribeNamespace without a token", none, func(ctx context.Context, s *devserver.Server) error {
			_, err := dialAt(t, s.FrontendAddr(), "default", rawToken("")).WorkflowService().DescribeNamespace(ctx, describe)
			return err
		}, false},
		{"no authorization: StartWorkflowExecution with a token of another key", none, func(ctx context.Context, s *devserver.Server) error {
			_, err := dialAt(t, s.FrontendAddr(), "default", newTokens(otherKey, "default:read")).ExecuteWorkflow(ctx,
				client.StartWorkflowOptions{ID: randomName("allowed"), TaskQueue: "idle"}, Greet, "x")
			return err
		}, false},
		{"Temporal default: DescribeNamespace without a token", def, func(ctx context.Context, s *devserver.Server) error {
			_, err := dialAt(t, s.FrontendAddr(), "default", rawToken("")).WorkflowService().DescribeNamespace(ctx, describe)
			return err
		}, true},
		{"Temporal default: DescribeNamespace with default:read", def, func(ctx context.Context, s *devserver.Server) error {
			_, err := dialAt(t, s.FrontendAddr(), "default", newTokens(s.Key(), "default:read")).WorkflowService().DescribeNamespace(ctx, describe)
			return err
		}, false},
		{"Temporal default: StartWorkflowExecution with default:read", def, func(ctx context.Context, s *devserver.Server) error {
			_, err := dialAt(t, s.FrontendAddr(), "default", newTokens(s.Key(), "default:read")).ExecuteWorkflow(ctx,
				client.StartWorkflowOptions{ID: randomName("denied"), TaskQueue: "idle"}, Greet, "x")
			return err
		}, true},
		{"Temporal default: DescribeNamespace with a token of another key", def, func(ctx context.Context, s *devserver.Server) error {
			_, err := dialAt(t, s.FrontendAddr(), "default", newTokens(otherKey, "default:read")).WorkflowService().DescribeNamespace(ctx, describe)
			return err
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(ctx, tc.s)
			if tc.denied {
				wantTemporalDenied(t, err)
			} else {
				wantOK(t, tc.name, err)
			}
		})
	}
}

// selectConfigs keeps the configurations named in TEMPORAL_OPA_BENCH_CONFIGS
// (comma-separated, e.g. "opa-default"; default: all), always with the first,
// the baseline of the ratios.
func selectConfigs(b *testing.B, configs []benchConfig) []benchConfig {
	v := os.Getenv("TEMPORAL_OPA_BENCH_CONFIGS")
	if v == "" {
		return configs
	}
	want := strings.Split(v, ",")
	for _, name := range want {
		if !slices.ContainsFunc(configs, func(c benchConfig) bool { return c.name == name }) {
			b.Fatalf("TEMPORAL_OPA_BENCH_CONFIGS: unknown configuration %q", name)
		}
	}
	base := configs[0].name
	return slices.DeleteFunc(configs, func(c benchConfig) bool { return c.name != base && !slices.Contains(want, c.name) })
}

// benchParamsFromEnv reads TEMPORAL_OPA_BENCH_DURATION, _WARMUP and _ROUNDS.
func benchParamsFromEnv(b *testing.B) benchParams {
	p := benchParams{duration: 20 * time.Second, warmup: 5 * time.Second, rounds: 3}
	for _, d := range []struct {
		env string
		to  *time.Duration
	}{{"TEMPORAL_OPA_BENCH_DURATION", &p.duration}, {"TEMPORAL_OPA_BENCH_WARMUP", &p.warmup}} {
		if v := os.Getenv(d.env); v != "" {
			dur, err := time.ParseDuration(v)
			if err != nil || dur <= 0 {
				b.Fatalf("%s=%q: want a positive duration such as 20s", d.env, v)
			}
			*d.to = dur
		}
	}
	if v := os.Getenv("TEMPORAL_OPA_BENCH_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("TEMPORAL_OPA_BENCH_ROUNDS=%q: want a positive integer", v)
		}
		p.rounds = n
	}
	return p
}

// benchSegment is the measurement of one configuration in one round.
type benchSegment struct {
	completed int64         // workflows completed in the measured window
	window    time.Duration // its wall time
	cpu       time.Duration // the process's CPU time in it (all servers and clients)
	others    time.Duration // the CPU time other processes used in it
	// profile is the process's CPU profile of the window, shares its
	// attribution for the server's goroutines (nil if it could not be taken).
	profile []byte
	shares  *cpushare.Shares
}

func (s benchSegment) rate() float64 { return float64(s.completed) / s.window.Seconds() }

// cpuShare is the share of the machine's CPUs the process used.
func (s benchSegment) cpuShare() float64 {
	return s.cpu.Seconds() / s.window.Seconds() / float64(runtime.NumCPU())
}

// othersShare is the share of the machine's CPUs other processes used.
func (s benchSegment) othersShare() float64 {
	return s.others.Seconds() / s.window.Seconds() / float64(runtime.NumCPU())
}

// cpuPerWorkflow is the CPU time per completed workflow, in milliseconds.
func (s benchSegment) cpuPerWorkflow() float64 {
	if s.completed == 0 {
		return 0
	}
	return float64(s.cpu.Microseconds()) / 1000 / float64(s.completed)
}

func meanRate(segs []benchSegment) float64 {
	var sum float64
	for _, s := range segs {
		sum += s.rate()
	}
	return sum / float64(len(segs))
}

// benchServer is a dev server configured by config, with its workers running
// and its starter clients ready.
type benchServer struct {
	config  benchConfig
	srv     *devserver.Server
	clients []client.Client
	workers []worker.Worker
	apps    []benchApp
	sdkLog  *countingLogger
	errs    benchErrors
	seq     atomic.Int64 // numbers the workflows
}

// benchApp is a starter client and the task queue of its worker.
type benchApp struct {
	starter   client.Client
	taskQueue string
}

// startBenchServer starts a dev server configured by c, checks that it
// authorizes as c says, and starts the workers of the workload.
func startBenchServer(ctx context.Context, c benchConfig, key *devkey.Key) (_ *benchServer, err error) {
	// Every goroutine the server starts inherits the label: its samples in
	// a CPU profile are told from those of the clients and other servers.
	var srv *devserver.Server
	pprof.Do(ctx, pprof.Labels(benchProfileLabel, c.name), func(ctx context.Context) {
		srv, err = devserver.Start(ctx, devserver.Options{
			Namespaces:    []string{"default"},
			Key:           key,
			HTTPPort:      -1,
			ReplaceAuth:   c.auth,
			Policy:        policyPaths(c.policy),
			OPAConfig:     c.opaConfig,
			MetricsPort:   c.metricsPort,
			DynamicConfig: benchDynamicConfig(),
		})
	})
	if err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	s := &benchServer{config: c, srv: srv, sdkLog: &countingLogger{}}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	if err := checkEnforced(ctx, srv, c); err != nil {
		return nil, err
	}
	starterPerms := []string{"default:read", "default:write"}
	starterClaims := map[string]any{"groups": []string{benchGroup}}
	for i := range benchApps {
		wc, err := s.dial(ctx, key, fmt.Sprintf("bench-worker-%d", i), c.workerPerms, nil)
		if err != nil {
			return nil, err
		}
		tq := fmt.Sprintf("bench-%d", i)
		w := worker.New(wc, tq, worker.Options{})
		w.RegisterWorkflowWithOptions(benchWorkflow, workflow.RegisterOptions{Name: benchWorkflowType})
		w.RegisterActivity(benchActivity)
		if err := w.Start(); err != nil {
			return nil, fmt.Errorf("start worker %d: %w", i, err)
		}
		s.workers = append(s.workers, w)
		sc, err := s.dial(ctx, key, fmt.Sprintf("bench-starter-%d", i), starterPerms, starterClaims)
		if err != nil {
			return nil, err
		}
		s.apps = append(s.apps, benchApp{starter: sc, taskQueue: tq})
	}
	if c.policy != "" {
		// The bundles are in force: the workflow-type ACL denies the
		// starters a type outside their prefix.
		_, err := s.apps[0].starter.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "bench-acl-check", TaskQueue: s.apps[0].taskQueue}, "billing.Invoice")
		var pd *serviceerror.PermissionDenied
		if !errors.As(err, &pd) || !strings.Contains(pd.Reason, "workflow-type ACL") {
			return nil, fmt.Errorf("start a billing.Invoice workflow: %v, want a denial by the workflow-type ACL", err)
		}
	}
	return s, nil
}

// dial connects a client of the server as sub. With tokens, it sends one
// token, minted now, on every call.
func (s *benchServer) dial(ctx context.Context, key *devkey.Key, sub string, perms []string, extra map[string]any) (client.Client, error) {
	var hp headersProvider
	if s.config.tokens {
		tok, err := key.Mint(devkey.Claims{Subject: sub, Permissions: perms, Extra: extra, TTL: 24 * time.Hour})
		if err != nil {
			return nil, err
		}
		hp = rawToken("Bearer " + tok)
	}
	c, err := client.DialContext(ctx, client.Options{HostPort: s.srv.FrontendAddr(), Namespace: "default", HeadersProvider: hp, Logger: s.sdkLog})
	if err != nil {
		return nil, fmt.Errorf("dial as %s: %w", sub, err)
	}
	s.clients = append(s.clients, c)
	return c, nil
}

// stop stops the workers, the clients and the server.
func (s *benchServer) stop() {
	for _, w := range s.workers {
		w.Stop()
	}
	for _, c := range s.clients {
		c.Close()
	}
	_ = s.srv.Stop()
}

// drive runs the starters for ramp then window, and measures the window: the
// workflows completed in it and the CPU time of the process and of the
// others. Then it stops starting workflows, waits for those in flight and for
// the machine to go idle, so that the next slice, on another server, does not
// pay for this one's leftovers (its visibility tasks, for one).
func (s *benchServer) drive(ctx context.Context, ramp, window time.Duration) (benchSegment, error) {
	startCtx, stopStarting := context.WithCancel(ctx)
	defer stopStarting()
	var completed atomic.Int64
	var wg sync.WaitGroup
	for _, a := range s.apps {
		for range benchStartersPerApp {
			wg.Go(func() {
				for startCtx.Err() == nil {
					n := int(s.seq.Add(1))
					if err := runBenchWorkflow(ctx, a.starter, a.taskQueue, fmt.Sprintf("bench-%d", n), n); err != nil {
						s.errs.add(err)
						continue
					}
					completed.Add(1)
				}
			})
		}
	}
	time.Sleep(ramp)
	var prof bytes.Buffer
	profiling := false
	if window > 0 {
		// Fails only if the process is being profiled already (go test
		// -cpuprofile): then the segment has no shares.
		if err := pprof.StartCPUProfile(&prof); err != nil {
			fmt.Printf("  no CPU profile of %s: %v\n", s.config.label, err)
		} else {
			profiling = true
		}
	}
	cpu0, busy0, t0, n0 := processCPU(), machineCPU(), time.Now(), completed.Load()
	time.Sleep(window)
	cpu1, busy1, t1, n1 := processCPU(), machineCPU(), time.Now(), completed.Load()
	if profiling {
		pprof.StopCPUProfile()
	}
	stopStarting()
	wg.Wait()

	seg := benchSegment{completed: n1 - n0, window: t1.Sub(t0), cpu: cpu1 - cpu0, others: max(busy1-busy0-(cpu1-cpu0), 0)}
	if profiling {
		seg.profile = prof.Bytes()
		shares, err := cpushare.Read(bytes.NewReader(seg.profile), benchProfileLabel, s.config.name)
		if err != nil {
			return seg, err
		}
		seg.shares = shares
	}
	if n := s.errs.count(); n > benchMaxErrors {
		return seg, fmt.Errorf("%d workflows failed (the SDK logged %d warnings and errors), first: %v", n, s.sdkLog.n.Load(), s.errs.first())
	}
	if completed.Load() == 0 {
		return seg, fmt.Errorf("no workflow completed in %s (%d failed; the SDK logged %d warnings and errors, last: %s)",
			ramp+window, s.errs.count(), s.sdkLog.n.Load(), s.sdkLog.lastMessage())
	}
	settle()
	return seg, nil
}

const (
	// benchRamp is the time the starters run on a warm server before a
	// measurement, to fill the pipeline.
	benchRamp = 2 * time.Second
	// benchDisturbed is the share of the machine's CPUs other processes may
	// use during a measurement; above it, the measurement is made again, up
	// to benchAttempts times in all.
	benchDisturbed = 0.10
	benchAttempts  = 3
)

// settle waits, at most 15s, until the machine (this process and every other)
// uses less than a tenth of a CPU over a quarter of a second.
func settle() {
	cpu := machineCPU
	if cpu() == 0 { // no /proc/stat: this process alone
		cpu = processCPU
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		c0, t0 := cpu(), time.Now()
		time.Sleep(250 * time.Millisecond)
		if (cpu()-c0).Seconds()/time.Since(t0).Seconds() < 0.1 {
			return
		}
	}
}

// runBenchWorkflow starts the benchmark's workflow and checks its result.
func runBenchWorkflow(ctx context.Context, c client.Client, taskQueue, id string, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: taskQueue}, benchWorkflowType, n)
	if err != nil {
		return fmt.Errorf("start %s: %w", id, err)
	}
	var got int
	if err := run.Get(ctx, &got); err != nil {
		return fmt.Errorf("workflow %s: %w", id, err)
	}
	if got != n+1 {
		return fmt.Errorf("workflow %s: result %d, want %d", id, got, n+1)
	}
	return nil
}

// benchWorkflow is the workload's workflow: one activity.
func benchWorkflow(ctx workflow.Context, n int) (int, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second})
	var out int
	err := workflow.ExecuteActivity(ctx, benchActivity, n).Get(ctx, &out)
	return out, err
}

// benchActivity is the activity of benchWorkflow.
func benchActivity(_ context.Context, n int) (int, error) { return n + 1, nil }

// checkEnforced makes sure the server authorizes as c says: a call without a
// token is denied unless c has no authorization.
func checkEnforced(ctx context.Context, s *devserver.Server, c benchConfig) error {
	anon, err := client.NewLazyClient(client.Options{HostPort: s.FrontendAddr(), Namespace: "default", Logger: quietLogger{}})
	if err != nil {
		return err
	}
	defer anon.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = anon.WorkflowService().DescribeNamespace(cctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
	denied := serviceerror.ToStatus(err).Code() == codes.PermissionDenied
	switch {
	case c.tokens && err == nil:
		return errors.New("DescribeNamespace without a token succeeded, want PermissionDenied: the server does not authorize")
	case c.tokens && !denied:
		return fmt.Errorf("DescribeNamespace without a token: %w, want PermissionDenied", err)
	case !c.tokens && err != nil:
		return fmt.Errorf("DescribeNamespace without a token: %w, want success: the server authorizes", err)
	}
	return nil
}

// benchDynamicConfig lifts the rate limits of the frontend (2,400 requests per
// second), history, matching and their persistence, so that none of them
// bounds the throughput; task queues get one partition, as each has a single
// worker (no forwarding between partitions).
func benchDynamicConfig() dynamicconfig.StaticClient {
	v := func(x any) []dynamicconfig.ConstrainedValue { return []dynamicconfig.ConstrainedValue{{Value: x}} }
	const unlimited = 1_000_000
	return dynamicconfig.StaticClient{
		dynamicconfig.FrontendRPS.Key():                         v(unlimited),
		dynamicconfig.FrontendMaxNamespaceRPSPerInstance.Key():  v(unlimited),
		dynamicconfig.FrontendPersistenceMaxQPS.Key():           v(unlimited),
		dynamicconfig.HistoryRPS.Key():                          v(unlimited),
		dynamicconfig.HistoryPersistenceMaxQPS.Key():            v(unlimited),
		dynamicconfig.MatchingRPS.Key():                         v(unlimited),
		dynamicconfig.MatchingPersistenceMaxQPS.Key():           v(unlimited),
		dynamicconfig.MatchingNumTaskqueueReadPartitions.Key():  v(1),
		dynamicconfig.MatchingNumTaskqueueWritePartitions.Key(): v(1),
		// The dev server reloads search attributes on every read, for tests
		// that add some; a server under load would not.
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): v(false),
	}
}

// layeredBundles writes the four example bundles of bundles/ as one bundle in
// a temporary directory and returns it, as `opa build -b` of their directories
// merges them: each keeps its package temporal.custom.<name>, its policy files
// and data.json under its own root, and the manifest lists the four roots.
func layeredBundles(b *testing.B) string {
	names := []string{"least-privilege-workers", "protected-namespaces", "ui-friendly-reads", "workflow-type-acl"}
	dir := b.TempDir()
	var roots []string
	for _, name := range names {
		src := filepath.Join(repoPath(b, "bundles"), name)
		raw, err := os.ReadFile(filepath.Join(src, ".manifest"))
		if err != nil {
			b.Fatal(err)
		}
		var m struct {
			Roots []string `json:"roots"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			b.Fatalf("%s/.manifest: %v", name, err)
		}
		roots = append(roots, m.Roots...)
		err = filepath.WalkDir(filepath.Join(src, "temporal"), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasSuffix(p, "_test.rego") || !(strings.HasSuffix(p, ".rego") || d.Name() == "data.json") {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			raw, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, rel), raw, 0o644)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	manifest, err := json.Marshal(map[string]any{"roots": roots, "rego_version": 1, "metadata": map[string]any{"name": "four-examples"}})
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".manifest"), manifest, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// printBenchTable prints each configuration's mean throughput and its ratio
// to the first's (no authorization), the throughput and ratio of each round
// (a round's ratio compares slices run close together, on servers that have
// run as many slices: its spread shows the noise), the CPU the process used
// per workflow and in all, and the CPU other processes used meanwhile.
func printBenchTable(w io.Writer, configs []benchConfig, results map[string][]benchSegment) {
	baseSegs := results[configs[0].name]
	base := meanRate(baseSegs)
	col := max(len("ratio per round"), 5*len(baseSegs)) // "41.3 " or "1.02 " per round
	fmt.Fprintf(w, "%-40s %6s %6s  %-*s %-*s %9s %5s %7s\n", "configuration", "wf/s", "ratio",
		col, "wf/s per round", col, "ratio per round", "cpu ms/wf", "cpu", "others")
	var disturbed float64
	for _, c := range configs {
		segs := results[c.name]
		var rates, ratios []string
		var cpuPerWF, cpuShare, others float64
		for i, s := range segs {
			rates = append(rates, fmt.Sprintf("%.1f", s.rate()))
			ratios = append(ratios, fmt.Sprintf("%.2f", s.rate()/baseSegs[i].rate()))
			cpuPerWF += s.cpuPerWorkflow() / float64(len(segs))
			cpuShare += s.cpuShare() / float64(len(segs))
			others += s.othersShare() / float64(len(segs))
			disturbed = max(disturbed, s.othersShare())
		}
		mean := meanRate(segs)
		fmt.Fprintf(w, "%-40s %6.1f %6.3f  %-*s %-*s %9.2f %4.0f%% %6.0f%%\n", c.label, mean, mean/base,
			col, strings.Join(rates, " "), col, strings.Join(ratios, " "), cpuPerWF, 100*cpuShare, 100*others)
	}
	if segs := results["opa-default"]; len(segs) > 0 {
		fmt.Fprintln(w, targetVerdict(meanRate(segs)/base, segs, baseSegs))
	}
	if disturbed > benchDisturbed {
		fmt.Fprintf(w, "WARNING: other processes used up to %.0f%% of the CPUs during a measurement: "+
			"the numbers are disturbed, run it again on an idle machine\n", 100*disturbed)
	}
}

// targetVerdict says whether ratio, (3)'s throughput over (1)'s, meets
// benchTarget, taking the noise into account: the standard error of the
// per-round ratios. A verdict within two standard errors of the target is
// "by the mean, within the noise".
func targetVerdict(ratio float64, segs, baseSegs []benchSegment) string {
	n := float64(len(segs))
	var sum, sumSq float64
	for i, s := range segs {
		r := s.rate() / baseSegs[i].rate()
		sum += r
		sumSq += r * r
	}
	msg := fmt.Sprintf("temporal-opa with the default policy keeps %.1f%% of the unauthorized throughput", 100*ratio)
	met := ratio >= benchTarget
	verdict := map[bool]string{true: "met", false: "NOT met"}[met]
	if n < 2 {
		return fmt.Sprintf("%s: target (>= %.0f%%) %s (one round: no estimate of the noise)", msg, 100*benchTarget, verdict)
	}
	se := math.Sqrt(max(sumSq/n-(sum/n)*(sum/n), 0)*n/(n-1)) / math.Sqrt(n)
	if math.Abs(ratio-benchTarget) < 2*se {
		verdict += " by the mean, but within the noise"
	}
	return fmt.Sprintf("%s (standard error of the per-round ratios: %.1f%%): target (>= %.0f%%) %s",
		msg, 100*se, 100*benchTarget, verdict)
}

// processCPU is the CPU time (user and system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineCPU is the CPU time all processes have used since boot, from
// /proc/stat (0 where it cannot be read).
func machineCPU() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0
	}
	var ticks int64
	for i, f := range fields[1:9] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

// benchErrors collects the workload's failures.
type benchErrors struct {
	mu   sync.Mutex
	errs []error
}

func (e *benchErrors) add(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.errs = append(e.errs, err)
}

func (e *benchErrors) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.errs)
}

func (e *benchErrors) first() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.errs) == 0 {
		return errors.New("none")
	}
	return e.errs[0]
}

// countingLogger is the SDK's logger in the benchmark: it drops the logs and
// counts the warnings and errors (a worker whose polls are denied logs them).
type countingLogger struct {
	n    atomic.Int64
	mu   sync.Mutex
	last string
}

func (*countingLogger) Debug(string, ...any)          {}
func (*countingLogger) Info(string, ...any)           {}
func (l *countingLogger) Warn(msg string, kv ...any)  { l.record(msg, kv) }
func (l *countingLogger) Error(msg string, kv ...any) { l.record(msg, kv) }

func (l *countingLogger) record(msg string, kv []any) {
	l.n.Add(1)
	l.mu.Lock()
	l.last = fmt.Sprint(msg, " ", kv)
	l.mu.Unlock()
}

func (l *countingLogger) lastMessage() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == "" {
		return "none"
	}
	return l.last
}

// policyPaths is the bundle path as devserver.Options.Policy takes it.
func policyPaths(path string) []string {
	if path == "" {
		return nil
	}
	return []string{path}
}
