package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/temporal-opa/temporal-opa/server/internal/cli"
	"github.com/temporal-opa/temporal-opa/server/internal/testutil"
)

// The soak (issue 23): the six-process PostgreSQL cluster of TestCluster under
// steady load through both frontends for SOAK_DURATION (default 60s here, the
// short form run by `make test`; `make soak` runs 10m), while faults follow a
// schedule scaled to the duration: a new bundle revision every 30s (at most
// D/6), the issuer's key rotation, the bundle server, the issuer and the
// decision-log service down, the decision-log service slow, a frontend killed
// (SIGKILL) and restarted, PostgreSQL restarted once. Every call's decision is
// recomputed offline (soak_oracle_test.go) and compared with what the client
// saw; every decision is found in the decision-log service; the figures are
// printed ("soak figures:") and written as JSON to SOAK_REPORT when set.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the soak starts PostgreSQL and six server processes")
	}
	d := soakDuration(t)
	plan := newSoakPlan(d)
	s := startSoakCluster(t, plan)
	s.run()
	s.analyse()
}

// soakDuration is SOAK_DURATION (a Go duration), 60s when unset.
func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv("SOAK_DURATION")
	if v == "" {
		return 60 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 30*time.Second || d > 2*time.Hour {
		t.Fatalf("SOAK_DURATION=%q: want a duration from 30s to 2h", v)
	}
	return d
}

// soakPlan is the fault schedule, scaled to the duration of the load: the
// faults run in cycles of at least 200s (one cycle below 400s: the short
// form), each cycle doing each fault once but PostgreSQL's restart (once, in
// the middle cycle); outages last min(60s, 0.3 cycle).
type soakPlan struct {
	duration    time.Duration
	cycles      int
	cycle       time.Duration
	outage      time.Duration
	publish     time.Duration // a new bundle revision every publish
	tokenTTL    time.Duration // of the tokens minted per call
	oldTokenTTL time.Duration // of the token held across a rotation
	faults      []fault
}

type fault struct {
	at   time.Duration // from the start of the load
	kind string
	arg  string // the frontend to kill
}

const (
	faultRotate      = "issuer key rotation"
	faultBundleDown  = "bundle server down"
	faultIssuerDown  = "issuer down"
	faultLogDown     = "decision-log service down"
	faultLogSlow     = "decision-log service slow"
	faultKill        = "frontend killed and restarted"
	faultPGRestart   = "PostgreSQL restarted"
	soakNamespace    = "soak"
	soakPollMaxDelay = 2 // bundle polling max_delay_seconds
	soakLogMaxDelay  = 2 // decision-log reporting max_delay_seconds
)

func newSoakPlan(d time.Duration) soakPlan {
	p := soakPlan{duration: d, cycles: max(1, int(d/(200*time.Second))), tokenTTL: 30 * time.Second, oldTokenTTL: 20 * time.Second}
	p.cycle = d / time.Duration(p.cycles)
	p.outage = min(60*time.Second, p.cycle*3/10)
	p.publish = min(30*time.Second, d/6)
	at := func(c int, frac float64) time.Duration {
		return time.Duration(c)*p.cycle + time.Duration(frac*float64(p.cycle))
	}
	for c := range p.cycles {
		fe := []string{"fe1", "fe2"}[c%2]
		p.faults = append(p.faults,
			fault{at: at(c, 0.05), kind: faultRotate},
			fault{at: at(c, 0.10), kind: faultBundleDown},
			fault{at: at(c, 0.12), kind: faultLogDown},
			fault{at: at(c, 0.45), kind: faultIssuerDown},
			fault{at: at(c, 0.47), kind: faultLogSlow},
			// After every outage of the cycle: a restarting frontend needs the
			// bundle server (require_bundle) and the issuer (discovery).
			fault{at: at(c, 0.78), kind: faultKill, arg: fe},
		)
		if c == p.cycles/2 {
			p.faults = append(p.faults, fault{at: at(c, 0.90), kind: faultPGRestart})
		}
	}
	return p
}

func (p soakPlan) String() string {
	short := ""
	if p.outage < 60*time.Second {
		short = fmt.Sprintf(" (short form: outages of %s instead of 60s)", p.outage)
	}
	return fmt.Sprintf("%s of load, %d fault cycle(s) of %s, outages of %s%s, a bundle revision every %s, %d faults",
		p.duration, p.cycles, p.cycle.Round(time.Second), p.outage.Round(time.Second), short, p.publish.Round(time.Second), len(p.faults))
}

// soakRevision is the Rego of bundle revision n: every even revision denies
// CountWorkflowExecutions (a call the readers make), every odd one does not.
func soakRevision(n int) string {
	r := fmt.Sprintf("r%d", n)
	s := "package temporal.custom\n\ndeny contains \"" + r + ": terminations are frozen\" if input.target.method == \"TerminateWorkflowExecution\"\n"
	if n%2 == 0 {
		s += "\ndeny contains \"" + r + ": counting workflows is disabled\" if input.target.method == \"CountWorkflowExecutions\"\n"
	}
	return s
}

// soakConfig is clusterConfig with Prometheus metrics on each process's own
// port (METRICS_ADDR), and Go's pprof on loopback for the frontends
// (PPROF_PORT; 0, the others' default, turns it off): the memory and
// goroutine figures are read there, live (Temporal's runtime gauges are
// reported once a minute).
var soakConfig = strings.Replace(clusterConfig, "global:\n  membership:",
	"global:\n  metrics:\n    prometheus:\n      timerType: histogram\n      listenAddress: \"{{\"{{\"}} env \"METRICS_ADDR\" {{\"}}\"}}\"\n"+
		"  pprof:\n    host: 127.0.0.1\n    port: {{\"{{\"}} env \"PPROF_PORT\" | default \"0\" {{\"}}\"}}\n  membership:", 1)

// soak is one run: the cluster, its outside services, the load and what was
// observed.
type soak struct {
	t      *testing.T
	plan   soakPlan
	ctx    context.Context
	cancel context.CancelCauseFunc
	dir    string
	began  time.Time

	pg      *postgres
	c       *cluster
	issuer  *rotatingIssuer
	ca      *testCA
	bundles *testutil.BundleServer
	bundleS *flappingServer
	logs    *logService
	priv    string
	pubKey  string
	ports   map[string]int

	fes map[string]*soakFrontend

	revMu     sync.Mutex
	revisions []publishedRevision

	loadStart, loadEnd time.Time
	faultMu            sync.Mutex
	faults             []faultEvent

	rec     *recorder
	started atomic.Int64 // workflows started
	done    atomic.Int64 // workflows completed with the expected result
	wfErrs  sync.Map     // workflow id -> error of its result, for the report
}

// publishedRevision is one bundle revision and when it was published.
type publishedRevision struct {
	n       int
	name    string
	tarball []byte
	at      time.Time
}

// soakFrontend is one of the two public frontends, across its incarnations
// (a killed frontend is started again as the next incarnation).
type soakFrontend struct {
	name        string // fe1, fe2
	addr        string
	statusAddr  string
	metricsAddr string
	pprofAddr   string
	ports       [2]int // gRPC, membership

	mu          sync.Mutex
	incarnation int
	proc        *child
	instances   []*feInstance
	timeline    []revSample // the active revision read from /status, oldest first
}

// feInstance is one process of a frontend.
type feInstance struct {
	name    string // fe1#1, fe1#2 ...
	started time.Time
	ready   time.Time
	killed  time.Time // zero unless killed
	pid     int

	mu       sync.Mutex
	first    *metricSample // the first scrape once serving
	last     *metricSample
	scrapes  []metricSample
	statusDL dlStatus
	memFirst *memSample // the first reading once serving
	memLast  *memSample
	memMax   memSample // the largest heap read
}

func (fe *soakFrontend) current() *feInstance {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	return fe.instances[len(fe.instances)-1]
}

func startSoakCluster(t *testing.T, plan soakPlan) *soak {
	began := time.Now()
	// The run's bound: setup, the load, draining and the analysis.
	ctx, cancel := context.WithCancelCause(ctxFor(t, plan.duration+6*time.Minute))
	t.Cleanup(func() { cancel(nil) })
	s := &soak{t: t, plan: plan, ctx: ctx, cancel: cancel, dir: t.TempDir(), began: began, rec: &recorder{}}
	s.pg = startPostgres(t)
	setupTemporalSchema(t, s.pg.addr)
	s.ca = newNamedCA(t, "soak issuer CA")
	s.issuer = newRotatingIssuer(t, s.ca)
	s.priv, s.pubKey = testutil.ECKeys(t)
	first := s.publishRevision(1)
	s.bundles = testutil.NewBundleServer(t, "soak-bundle-token", first.tarball)
	// The bundle server's own handler, served on a port that can go down and come back.
	s.bundleS = newFlappingServer(t, "bundle server", s.bundles.Config.Handler, nil)
	s.logs = newLogService(t)

	names := []string{"fe1GRPC", "fe1Membership", "fe2GRPC", "fe2Membership", "internalGRPC", "internalMembership",
		"historyGRPC", "historyMembership", "matchingGRPC", "matchingMembership", "workerMembership", "fe1Status", "fe2Status",
		"fe1Metrics", "fe2Metrics", "fe1PProf", "fe2PProf", "internalMetrics", "historyMetrics", "matchingMetrics", "workerMetrics"}
	s.ports = map[string]int{}
	for i, p := range testutil.FreePorts(t, "127.0.0.1", len(names)) {
		s.ports[names[i]] = p
	}
	var cfg bytes.Buffer
	if err := templateMust(soakConfig).Execute(&cfg, map[string]any{"JWKS": strconv.Quote(s.issuer.url + "/jwks"), "P": s.ports}); err != nil {
		t.Fatal(err)
	}
	s.write("temporal.yaml", cfg.String())
	s.write("bundle-token", "soak-bundle-token\n")
	s.write("issuer-ca.crt", s.ca.pem)
	s.write("opa.yaml", s.opaConfig(""))
	s.write("authz.yaml", s.authzConfig("", "opa.yaml"))

	s.c = &cluster{t: t, dir: s.dir, died: cancel}
	history := s.c.start("history", nil, s.env("history", "authz.yaml", "historyMetrics"))
	waitListening(ctx, t, fmt.Sprintf("127.0.0.1:%d", s.ports["historyGRPC"]), history)
	s.c.start("matching", nil, s.env("matching", "authz.yaml", "matchingMetrics"))
	s.c.start("internal-frontend", nil, s.env("internal-frontend", "authz.yaml", "internalMetrics"))
	s.c.start("worker", nil, s.env("worker", "authz.yaml", "workerMetrics"))
	s.fes = map[string]*soakFrontend{}
	for _, name := range []string{"fe1", "fe2"} {
		fe := &soakFrontend{name: name, addr: fmt.Sprintf("127.0.0.1:%d", s.ports[name+"GRPC"]),
			statusAddr:  fmt.Sprintf("127.0.0.1:%d", s.ports[name+"Status"]),
			metricsAddr: fmt.Sprintf("127.0.0.1:%d", s.ports[name+"Metrics"]),
			pprofAddr:   fmt.Sprintf("127.0.0.1:%d", s.ports[name+"PProf"]),
			ports:       [2]int{s.ports[name+"GRPC"], s.ports[name+"Membership"]}}
		s.fes[name] = fe
		s.startFrontend(fe)
	}
	for _, fe := range s.fes {
		s.waitServing(fe)
	}
	t.Logf("soak: PostgreSQL, six processes, issuer %s, bundle server, decision-log service up in %s; plan: %s",
		s.issuer.url, time.Since(began).Round(time.Millisecond), plan)
	return s
}

func (s *soak) write(name, content string) string {
	path := filepath.Join(s.dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		s.t.Fatal(err)
	}
	return path
}

// opaConfig is the OPA configuration of one process: the signed bundle, and
// for a frontend instance its decision logs, labelled with the instance.
func (s *soak) opaConfig(instance string) string {
	c := fmt.Sprintf("services:\n  bundles:\n    url: %s\n    credentials:\n      bearer:\n        token_path: %s\n",
		s.bundleS.URL(), filepath.Join(s.dir, "bundle-token"))
	if instance != "" {
		c += fmt.Sprintf("  audit:\n    url: %s\n", s.logs.URL())
	}
	c += fmt.Sprintf("bundles:\n  authz:\n    service: bundles\n    resource: /temporal/authz.tar.gz\n    polling:\n      min_delay_seconds: 1\n      max_delay_seconds: %d\n"+
		"    signing:\n      keyid: release\nkeys:\n  release:\n    algorithm: ES256\n    key: |\n%s", soakPollMaxDelay, indent(s.pubKey, "      "))
	if instance != "" {
		c += fmt.Sprintf("decision_logs:\n  service: audit\n  reporting:\n    min_delay_seconds: 1\n    max_delay_seconds: %d\n    buffer_size_limit_bytes: %d\n"+
			"labels:\n  instance: %q\n", soakLogMaxDelay, soakLogBufferBytes, instance)
	}
	return c
}

// Cache bounds of the frontends: the memory figure is checked against them.
const (
	soakDecisionCacheBytes = 4 << 20
	soakTokenCacheBytes    = 4 << 20
	soakLogBufferBytes     = 16 << 20 // decision logs waiting for upload (the service down)
)

func (s *soak) authzConfig(statusAddr, opaFile string) string {
	a := fmt.Sprintf("jwt:\n  issuer: %s\n  ca_file: %s\n  refresh_interval: 10s\n  refetch_min_interval: 1s\n  cache_bytes: %d\n"+
		"policy:\n  opa_config: %s\n  require_bundle: true\n  require_bundle_timeout: 60s\n  decision_cache_bytes: %d\n",
		s.issuer.url, filepath.Join(s.dir, "issuer-ca.crt"), soakTokenCacheBytes, filepath.Join(s.dir, opaFile), soakDecisionCacheBytes)
	if statusAddr != "" {
		a += "status:\n  address: " + statusAddr + "\n"
	}
	return a
}

// env is the environment of one process, as Temporal's Helm chart sets it.
func (s *soak) env(service, authzFile, metricsPort string, extra ...string) []string {
	return append([]string{"POD_IP=127.0.0.1", "PG_ADDR=" + s.pg.addr, "TEMPORAL_DEFAULT_STORE_PASSWORD=", "TEMPORAL_VISIBILITY_STORE_PASSWORD=",
		"FRONTEND_GRPC_PORT=" + strconv.Itoa(s.ports["fe1GRPC"]), "FRONTEND_MEMBERSHIP_PORT=" + strconv.Itoa(s.ports["fe1Membership"]),
		fmt.Sprintf("METRICS_ADDR=127.0.0.1:%d", s.ports[metricsPort]),
		cli.EnvConfigFile + "=" + filepath.Join(s.dir, "temporal.yaml"), cli.EnvServices + "=" + service,
		cli.EnvAuthzFile + "=" + filepath.Join(s.dir, authzFile)}, extra...)
}

// startFrontend starts the next incarnation of fe, with its own decision-log
// label.
func (s *soak) startFrontend(fe *soakFrontend) *feInstance {
	fe.mu.Lock()
	fe.incarnation++
	inst := &feInstance{name: fmt.Sprintf("%s#%d", fe.name, fe.incarnation), started: time.Now()}
	fe.mu.Unlock()
	opaFile := fmt.Sprintf("opa-%s-%d.yaml", fe.name, fe.incarnation)
	authzFile := fmt.Sprintf("authz-%s-%d.yaml", fe.name, fe.incarnation)
	s.write(opaFile, s.opaConfig(inst.name))
	s.write(authzFile, s.authzConfig(fe.statusAddr, opaFile))
	env := s.env("frontend", authzFile, fe.name+"Metrics",
		"FRONTEND_GRPC_PORT="+strconv.Itoa(fe.ports[0]), "FRONTEND_MEMBERSHIP_PORT="+strconv.Itoa(fe.ports[1]),
		"PPROF_PORT="+strconv.Itoa(s.ports[fe.name+"PProf"]))
	p := s.c.start(fmt.Sprintf("%s-%d", fe.name, fe.incarnation), nil, env)
	inst.pid = p.cmd.Process.Pid
	fe.mu.Lock()
	fe.proc = p
	fe.instances = append(fe.instances, inst)
	fe.mu.Unlock()
	return inst
}

func (s *soak) waitServing(fe *soakFrontend) {
	fe.mu.Lock()
	p, inst := fe.proc, fe.instances[len(fe.instances)-1]
	fe.mu.Unlock()
	if err := waitHealthy(s.ctx, fe.addr, p.exited); err != nil {
		s.t.Fatalf("%s: %v", inst.name, err)
	}
	inst.mu.Lock()
	inst.ready = time.Now()
	inst.mu.Unlock()
}

// kill kills fe's process (SIGKILL: a crash, nothing flushed) and starts the
// next incarnation; it returns when that one serves.
func (s *soak) kill(fe *soakFrontend) (down time.Duration) {
	fe.mu.Lock()
	p, inst := fe.proc, fe.instances[len(fe.instances)-1]
	fe.mu.Unlock()
	p.expected.Store(true)
	killed := time.Now()
	inst.mu.Lock()
	inst.killed = killed
	inst.mu.Unlock()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	s.startFrontend(fe)
	s.waitServing(fe)
	return time.Since(killed)
}

// publishRevision signs revision n and, once the bundle server exists,
// publishes it.
func (s *soak) publishRevision(n int) publishedRevision {
	name := fmt.Sprintf("r%d", n)
	r := publishedRevision{n: n, name: name, tarball: testutil.SignedBundle(s.t, name, s.priv, soakRevision(n))}
	if s.bundles != nil {
		s.bundles.Publish(r.tarball)
	}
	r.at = time.Now()
	s.revMu.Lock()
	s.revisions = append(s.revisions, r)
	s.revMu.Unlock()
	return r
}

// registerNamespace registers the soak's namespace through frontend 1 and
// waits until frontend 2 knows it.
func (s *soak) registerNamespace() {
	admin := dialAt(s.t, s.fes["fe1"].addr, soakNamespace, s.tokens("soak-admin", "temporal-system:admin"))
	retry(s.ctx, s.t, "RegisterNamespace soak", func() error {
		_, err := admin.WorkflowService().RegisterNamespace(s.ctx, &workflowservice.RegisterNamespaceRequest{
			Namespace: soakNamespace, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)})
		var exists *serviceerror.NamespaceAlreadyExists
		if errors.As(err, &exists) {
			return nil
		}
		return err
	})
	for _, fe := range s.fes {
		c := dialAt(s.t, fe.addr, soakNamespace, s.tokens("soak-admin", "temporal-system:admin"))
		retry(s.ctx, s.t, "DescribeNamespace soak via "+fe.name, func() error {
			_, err := c.WorkflowService().DescribeNamespace(s.ctx, &workflowservice.DescribeNamespaceRequest{Namespace: soakNamespace})
			return err
		})
	}
}
