package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/template"
	"time"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/metrics"
	"go.temporal.io/server/common/persistence"
	"go.temporal.io/server/common/persistence/sql"
	"go.temporal.io/server/common/persistence/sql/sqlplugin"
	"go.temporal.io/server/common/resolver"
	"go.temporal.io/server/schema"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/temporal-opa/temporal-opa/policy/grants"
	"github.com/temporal-opa/temporal-opa/server/internal/cli"
	"github.com/temporal-opa/temporal-opa/server/internal/devkey"
	"github.com/temporal-opa/temporal-opa/server/internal/grantsvc"
	"github.com/temporal-opa/temporal-opa/server/internal/testutil"
	"github.com/temporal-opa/temporal-opa/server/internal/wiring"
)

// childEnv set to "start" makes the test binary run "temporal-opa start" with
// its arguments instead of the tests (see TestMain): the cluster's service
// processes are this binary re-executed, so that no second binary links the
// Temporal server.
const childEnv = "TEMPORAL_OPA_E2E_CHILD"

// runStartChild is the main of a service process: "temporal-opa start" as
// server/main.go runs it, until SIGTERM or SIGINT.
func runStartChild(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o, err := cli.ParseStart(args, cli.OSEnv())
	if err == nil {
		err = wiring.Run(ctx, o)
	}
	code, msg := cli.Exit(err)
	if msg != "" {
		fmt.Fprintln(os.Stderr, msg)
	}
	return code
}

// clusterConfig is one Temporal config for every process of the cluster, a
// "# enable-template" file as Temporal's Helm chart writes it: each process
// renders it with its own environment (POD_IP, the frontend's ports, the store
// password), as the chart's pods do.
const clusterConfig = `# enable-template
log:
  stdout: true
  level: warn
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: 4
  datastores:
    default:
      sql:
        pluginName: postgres12
        databaseName: temporal
        connectAddr: "{{"{{"}} env "PG_ADDR" {{"}}"}}"
        connectProtocol: tcp
        user: postgres
        password: {{"{{"}} env "TEMPORAL_DEFAULT_STORE_PASSWORD" | quote {{"}}"}}
        maxConns: 10
        maxIdleConns: 10
        maxConnLifetime: 1h
    visibility:
      sql:
        pluginName: postgres12
        databaseName: temporal_visibility
        connectAddr: "{{"{{"}} env "PG_ADDR" {{"}}"}}"
        connectProtocol: tcp
        user: postgres
        password: {{"{{"}} env "TEMPORAL_VISIBILITY_STORE_PASSWORD" | quote {{"}}"}}
        maxConns: 4
        maxIdleConns: 4
        maxConnLifetime: 1h
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: {{"{{"}} env "POD_IP" | quote {{"}}"}}
  authorization:
    jwtKeyProvider:
      keySourceURIs: [{{.JWKS}}]
    permissionsClaimName: permissions
services:
  frontend:
    rpc:
      grpcPort: {{"{{"}} env "FRONTEND_GRPC_PORT" {{"}}"}}
      membershipPort: {{"{{"}} env "FRONTEND_MEMBERSHIP_PORT" {{"}}"}}
      httpPort: 0
      bindOnLocalHost: true
  internal-frontend:
    rpc:
      grpcPort: {{.P.internalGRPC}}
      membershipPort: {{.P.internalMembership}}
      httpPort: 0
      bindOnLocalHost: true
  history:
    rpc:
      grpcPort: {{.P.historyGRPC}}
      membershipPort: {{.P.historyMembership}}
      bindOnLocalHost: true
  matching:
    rpc:
      grpcPort: {{.P.matchingGRPC}}
      membershipPort: {{.P.matchingMembership}}
      bindOnLocalHost: true
  worker:
    rpc:
      membershipPort: {{.P.workerMembership}}
      bindOnLocalHost: true
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: 127.0.0.1:{{.P.fe1GRPC}}
dcRedirectionPolicy:
  policy: noop
archival:
  history:
    state: disabled
  visibility:
    state: disabled
namespaceDefaults:
  archival:
    history:
      state: disabled
    visibility:
      state: disabled
`

// Bundle revisions of the cluster test: r1 freezes terminations; r2 also
// denies CountWorkflowExecutions, a read call that r1 allows.
const (
	clusterR1 = `package temporal.custom

deny contains "r1: terminations are frozen" if input.target.method == "TerminateWorkflowExecution"
`
	clusterR2 = `package temporal.custom

deny contains "r2: terminations are frozen" if input.target.method == "TerminateWorkflowExecution"

deny contains "r2: counting workflows is disabled" if input.target.method == "CountWorkflowExecutions"
`
	clusterMaxDelay = 2 // bundles.*.polling.max_delay_seconds: the polling interval bound
)

// A production-shaped cluster: PostgreSQL, and two public frontends, an
// internal-frontend, history, matching and worker as six separate
// "temporal-opa start" processes sharing one signed-bundle server. Workflows
// run with a worker on frontend 1 and a starter on frontend 2, a namespace
// deletion runs through the internal-frontend, every process downloads a new
// bundle revision within the polling bound and both frontends decide with it
// (how long activation took is printed, not asserted), the policy survives the bundle
// server going away, the cluster survives losing frontend 1, and every process
// stops cleanly.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the cluster test starts PostgreSQL and six server processes")
	}
	began := time.Now()
	ctx, cancel := context.WithCancelCause(ctxFor(t, 5*time.Minute))
	defer cancel(nil)
	pg := startPostgres(t)
	setupTemporalSchema(t, pg.addr)
	t.Logf("PostgreSQL %s up with Temporal's schema in %s", pg.addr, time.Since(began).Round(time.Millisecond))

	key, err := devkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := devkey.Serve("127.0.0.1:0", key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = jwks.Close() })
	priv, pub := testutil.ECKeys(t)
	r1 := testutil.SignedBundle(t, "r1", priv, clusterR1)
	bundles := testutil.NewBundleServer(t, "cluster-bundle-token", r1)

	names := []string{"fe1GRPC", "fe1Membership", "fe2GRPC", "fe2Membership", "internalGRPC", "internalMembership",
		"historyGRPC", "historyMembership", "matchingGRPC", "matchingMembership", "workerMembership", "fe1Status", "fe2Status"}
	ports := map[string]int{}
	for i, p := range testutil.FreePorts(t, "127.0.0.1", len(names)) {
		ports[names[i]] = p
	}
	dir := t.TempDir()
	var cfg bytes.Buffer
	if err := templateMust(clusterConfig).Execute(&cfg, map[string]any{"JWKS": strconv.Quote(jwks.URL()), "P": ports}); err != nil {
		t.Fatal(err)
	}
	opaYAML := fmt.Sprintf("services:\n  bundles:\n    url: %s\n    credentials:\n      bearer:\n        token_path: %s\n"+
		"bundles:\n  authz:\n    service: bundles\n    resource: /temporal/authz.tar.gz\n    polling:\n      min_delay_seconds: 1\n      max_delay_seconds: %d\n"+
		"    signing:\n      keyid: release\nkeys:\n  release:\n    algorithm: ES256\n    key: |\n%s",
		bundles.URL, filepath.Join(dir, "bundle-token"), clusterMaxDelay, indent(pub, "      "))
	authz := func(status string) string {
		s := "jwt:\n  issuer: " + devkey.Issuer + "\n  skip_discovery: true\npolicy:\n  opa_config: " + filepath.Join(dir, "opa.yaml") +
			"\n  require_bundle: true\n  require_bundle_timeout: 60s\n"
		if status != "" {
			s += "status:\n  address: " + status + "\n"
		}
		return s
	}
	fe1Status := fmt.Sprintf("127.0.0.1:%d", ports["fe1Status"])
	fe2Status := fmt.Sprintf("127.0.0.1:%d", ports["fe2Status"])
	for name, content := range map[string]string{
		"temporal.yaml": cfg.String(), "opa.yaml": opaYAML, "bundle-token": "cluster-bundle-token\n",
		"authz-fe1.yaml": authz(fe1Status), "authz-fe2.yaml": authz(fe2Status), "authz.yaml": authz(""),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// Each process: the chart's environment (config file, service, authz file
	// from variables), except frontend 1, which is given flags.
	feEnv := func(grpc, membership int) []string {
		return []string{"FRONTEND_GRPC_PORT=" + strconv.Itoa(grpc), "FRONTEND_MEMBERSHIP_PORT=" + strconv.Itoa(membership)}
	}
	common := append([]string{"POD_IP=127.0.0.1", "PG_ADDR=" + pg.addr, "TEMPORAL_DEFAULT_STORE_PASSWORD=", "TEMPORAL_VISIBILITY_STORE_PASSWORD="},
		feEnv(ports["fe1GRPC"], ports["fe1Membership"])...)
	chartEnv := func(service, authzFile string, extra ...string) []string {
		return append(append(append([]string{}, common...),
			cli.EnvConfigFile+"="+filepath.Join(dir, "temporal.yaml"), cli.EnvServices+"="+service,
			cli.EnvAuthzFile+"="+filepath.Join(dir, authzFile)), extra...)
	}
	c := &cluster{t: t, dir: dir, died: cancel}
	// History first: the first process writes the cluster's metadata record,
	// and processes racing to write it fail (Kubernetes would restart them).
	history := c.start("history", nil, chartEnv("history", "authz.yaml"))
	waitListening(ctx, t, fmt.Sprintf("127.0.0.1:%d", ports["historyGRPC"]), history)
	c.start("matching", nil, chartEnv("matching", "authz.yaml"))
	c.start("internal-frontend", nil, chartEnv("internal-frontend", "authz.yaml"))
	c.start("worker", nil, chartEnv("worker", "authz.yaml"))
	fe1 := c.start("frontend-1", []string{"--config-file", filepath.Join(dir, "temporal.yaml"), "--service", "frontend",
		"--authz", filepath.Join(dir, "authz-fe1.yaml")}, common)
	fe2 := c.start("frontend-2", nil, chartEnv("frontend", "authz-fe2.yaml", feEnv(ports["fe2GRPC"], ports["fe2Membership"])...))
	fe1Addr := fmt.Sprintf("127.0.0.1:%d", ports["fe1GRPC"])
	fe2Addr := fmt.Sprintf("127.0.0.1:%d", ports["fe2GRPC"])
	for _, fe := range []struct {
		addr string
		p    *child
	}{{fe1Addr, fe1}, {fe2Addr, fe2}} {
		if err := waitHealthy(ctx, fe.addr, fe.p.exited); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("six processes serving %s after start", time.Since(began).Round(time.Millisecond))

	// A namespace registered through frontend 1, a worker on frontend 1, a
	// starter on frontend 2.
	ns := "cluster"
	admin1 := dialAt(t, fe1Addr, ns, newTokens(key, "temporal-system:admin"))
	retry(ctx, t, "RegisterNamespace via frontend 1", func() error {
		_, err := admin1.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
			Namespace: ns, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)})
		var exists *serviceerror.NamespaceAlreadyExists
		if errors.As(err, &exists) {
			return nil
		}
		return err
	})
	worker1 := dialAt(t, fe1Addr, ns, newTokens(key, ns+":read", ns+":write"))
	starter2 := dialAt(t, fe2Addr, ns, newTokens(key, ns+":read", ns+":write"))
	tq, stopWorker1 := stoppableWorker(t, worker1)
	runGreet(ctx, t, starter2, tq, "worker via frontend 1, starter via frontend 2")

	// r1 holds on both frontends.
	id := randomName("frozen")
	_, err = starter2.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: randomName("idle")}, Greet, "x")
	wantOK(t, "StartWorkflowExecution via frontend 2", err)
	for _, cl := range []client.Client{worker1, starter2} {
		wantDenied(t, "TerminateWorkflowExecution under r1", cl.TerminateWorkflow(ctx, id, "", "test"), "r1: terminations are frozen")
		_, err = cl.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: ns})
		wantOK(t, "CountWorkflowExecutions under r1", err)
	}

	clusterGrants(ctx, t, key, ns, fe1Addr, fe2Addr)

	// A system workflow through the internal-frontend: deleting a namespace
	// (asked of frontend 2) runs the delete and reclaim workflows on the worker
	// service, which reaches the cluster only through the internal-frontend.
	doomed := randomName("doomed")
	_, err = admin1.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: doomed, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)})
	wantOK(t, "RegisterNamespace "+doomed, err)
	admin2 := dialAt(t, fe2Addr, ns, newTokens(key, "temporal-system:admin"))
	deleteStart := time.Now()
	var deleted string
	retry(ctx, t, "DeleteNamespace via frontend 2", func() error {
		resp, err := admin2.OperatorService().DeleteNamespace(ctx, &operatorservice.DeleteNamespaceRequest{Namespace: doomed})
		deleted = resp.GetDeletedNamespace()
		return err
	})
	for {
		_, err = admin2.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: deleted})
		var nf *serviceerror.NamespaceNotFound
		if errors.As(err, &nf) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("namespace %s still there after %s: the system workflows did not finish (%v; %v)", deleted, time.Since(deleteStart), err, context.Cause(ctx))
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("namespace deletion by system workflows through the internal-frontend: %s", time.Since(deleteStart).Round(time.Millisecond))

	// A new revision: every process that polls the bundle server downloads
	// it within the polling bound (max_delay_seconds after its last poll
	// before the publication, which may have been under way then), and both
	// frontends then decide with it. The download, signature check and
	// compile that follow take what a loaded machine gives them: their time is
	// reported, and waited for within the test's deadline, not asserted.
	pollers := len(bundles.Downloads(r1)) // one download of r1 by each process
	r2 := testutil.SignedBundle(t, "r2", priv, clusterR2)
	published := time.Now()
	bundles.Publish(r2)
	took := map[string]time.Duration{}
	for len(took) < 2 || len(bundles.Downloads(r2)) < pollers {
		for name, cl := range map[string]client.Client{"frontend-1": worker1, "frontend-2": starter2} {
			if _, done := took[name]; done {
				continue
			}
			_, err := cl.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: ns})
			var pd *serviceerror.PermissionDenied
			if errors.As(err, &pd) && strings.Contains(pd.Reason, "r2: counting workflows is disabled") {
				took[name] = time.Since(published)
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("r2 published %s ago: served by %v, downloaded %d times by %d processes (%v)",
				time.Since(published).Round(time.Millisecond), took, len(bundles.Downloads(r2)), pollers, context.Cause(ctx))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The first poll after the publication starts at most max_delay_seconds
	// after the previous poll ended; one that was under way at the
	// publication (a 304 from this server, a few milliseconds) is allowed for
	// with one second.
	pollBound := clusterMaxDelay*time.Second + time.Second
	var downloads []string
	for i, at := range bundles.Downloads(r2) {
		d := at.Sub(published)
		downloads = append(downloads, d.Round(time.Millisecond).String())
		if d > pollBound {
			t.Errorf("download %d of r2 %s after its publication, want within the polling bound %s", i+1, d.Round(time.Millisecond), pollBound)
		}
	}
	fmt.Printf("cluster: revision r2 downloaded by %d processes after %s; served by frontend 1 after %s, by frontend 2 after %s (polling: 1-%ds)\n",
		pollers, strings.Join(downloads, ", "), took["frontend-1"].Round(time.Millisecond), took["frontend-2"].Round(time.Millisecond), clusterMaxDelay)
	for _, addr := range []string{fe1Status, fe2Status} {
		if st := status(t, addr); st.Policy.Revisions["authz"] != "r2" {
			t.Errorf("%s: /status revisions %v, want authz r2", addr, st.Policy.Revisions)
		}
	}

	// The bundle server goes away: both frontends keep r2 and keep serving.
	bundles.Close()
	deadline := time.Now().Add(4 * clusterMaxDelay * time.Second)
	for _, addr := range []string{fe1Status, fe2Status} {
		for {
			st := status(t, addr)
			if len(st.Sources) == 1 && !st.Sources[0].OK {
				if st.Sources[0].Revision != "r2" || st.Policy.Revisions["authz"] != "r2" {
					t.Errorf("%s after the bundle server stopped: source revision %q, active %v; want r2 kept", addr, st.Sources[0].Revision, st.Policy.Revisions)
				}
				t.Logf("%s: bundle server gone (%s), r2 stays", addr, st.Sources[0].LastError)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no failed download reported %s after the bundle server stopped", addr, 4*clusterMaxDelay*time.Second)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, cl := range []client.Client{worker1, starter2} {
		_, err = cl.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: ns})
		wantDenied(t, "CountWorkflowExecutions without the bundle server", err, "r2: counting workflows is disabled")
	}
	runGreet(ctx, t, starter2, tq, "without the bundle server")

	// Frontend 1 dies: clients of frontend 2 go on, with a worker on frontend 2.
	fe1.expected.Store(true)
	if err := fe1.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-fe1.exited
	worker2 := dialAt(t, fe2Addr, ns, newTokens(key, ns+":read", ns+":write"))
	tq2, stopWorker2 := stoppableWorker(t, worker2)
	runGreet(ctx, t, starter2, tq2, "after frontend 1 was killed")
	wantDenied(t, "TerminateWorkflowExecution via frontend 2 after frontend 1 died", starter2.TerminateWorkflow(ctx, id, "", "test"), "r2: terminations are frozen")

	// Every other process stops cleanly on SIGTERM.
	stopWorker1()
	stopWorker2()
	for _, name := range []string{"frontend-2", "worker", "internal-frontend", "matching", "history"} {
		c.stop(name, time.Minute)
	}
	t.Logf("cluster test: %s", time.Since(began).Round(time.Millisecond))
}

// clusterGrants checks that a grant approved through one frontend is
// honoured by the other within a few seconds (each frontend follows the
// grants), and that a revocation through the other ends it on the first.
func clusterGrants(ctx context.Context, t *testing.T, key *devkey.Key, ns, fe1Addr, fe2Addr string) {
	t.Helper()
	readerPerms := ns + ":read"
	reader1 := dialAt(t, fe1Addr, grantsvc.DefaultNamespace, newTokens(key, readerPerms))
	admin1 := dialAt(t, fe1Addr, grantsvc.DefaultNamespace, newTokens(key, ns+":admin"))
	admin2 := dialAt(t, fe2Addr, grantsvc.DefaultNamespace, newTokens(key, ns+":admin"))
	readerOn := map[string]client.Client{"frontend 1": dialAt(t, fe1Addr, ns, newTokens(key, readerPerms)), "frontend 2": dialAt(t, fe2Addr, ns, newTokens(key, readerPerms))}
	start := func(c client.Client) error {
		_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("granted"), TaskQueue: randomName("idle")}, Greet, "x")
		return err
	}
	wantDenied(t, "reader's start via frontend 2 before a grant", start(readerOn["frontend 2"]))
	const id = "cluster-write"
	retry(ctx, t, "grant request via frontend 1", func() error {
		_, err := reader1.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: grantsvc.WorkflowID(id), TaskQueue: grantsvc.TaskQueue}, grantsvc.WorkflowType,
			grantsvc.RequestInput{Duration: "10m", Grant: grants.Grant{Subject: grants.Subject{Subject: "e2e-" + readerPerms}, Namespace: ns, Role: "write", Reason: "cluster test"}})
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if errors.As(err, &started) {
			return nil
		}
		return err
	})
	update := func(c client.Client, name string) func() error {
		return func() error {
			h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: grantsvc.WorkflowID(id), UpdateName: name,
				Args: []any{grantsvc.UpdateInput{Reason: "cluster test"}}, WaitForStage: client.WorkflowUpdateStageCompleted})
			if err != nil {
				return err
			}
			return h.Get(ctx, nil)
		}
	}
	retry(ctx, t, "grant approval via frontend 1", update(admin1, grantsvc.UpdateApprove))
	approved := time.Now()
	// Honoured by frontend 2 once it polled (every second by default).
	waitFor := func(what string, c client.Client, allowed bool) time.Duration {
		t.Helper()
		began := time.Now()
		for {
			err := start(c)
			if (err == nil) == allowed {
				return time.Since(began)
			}
			if time.Since(began) > 15*time.Second || ctx.Err() != nil {
				t.Fatalf("%s: %v after %s", what, err, time.Since(began).Round(time.Millisecond))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("reader's start via frontend 2 under the grant approved via frontend 1", readerOn["frontend 2"], true)
	honoured := time.Since(approved)
	if err := start(readerOn["frontend 1"]); err != nil {
		t.Fatalf("reader's start via frontend 1 under the grant: %v", err)
	}
	// Revoked via frontend 2: frontend 1 ends it too.
	retry(ctx, t, "grant revocation via frontend 2", update(admin2, grantsvc.UpdateRevoke))
	if err := start(readerOn["frontend 2"]); err == nil {
		t.Fatal("reader's start via frontend 2 right after the revocation there succeeded")
	}
	ended := waitFor("reader's start via frontend 1 after the revocation via frontend 2", readerOn["frontend 1"], false)
	fmt.Printf("cluster: a grant approved via frontend 1 was honoured by frontend 2 after %s; revoked via frontend 2, denied by frontend 1 after %s\n",
		honoured.Round(time.Millisecond), ended.Round(time.Millisecond))
}

// runGreet runs Greet on task queue tq through starter and checks its result.
func runGreet(ctx context.Context, t *testing.T, starter client.Client, tq, what string) {
	t.Helper()
	var run client.WorkflowRun
	retry(ctx, t, "StartWorkflowExecution "+what, func() error {
		var err error
		run, err = starter.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("greet"), TaskQueue: tq}, Greet, what)
		return err
	})
	var got string
	wantOK(t, "workflow result "+what, run.Get(ctx, &got))
	if want := "Hello, " + what + "!"; got != want {
		t.Errorf("result %q, want %q", got, want)
	}
}

// retry calls f until it succeeds, retrying the errors of a cluster still
// forming (a namespace not yet in every cache, a service not yet in the ring).
func retry(ctx context.Context, t *testing.T, what string, f func() error) {
	t.Helper()
	for {
		err := f()
		if err == nil {
			return
		}
		var nf *serviceerror.NamespaceNotFound
		var un *serviceerror.Unavailable
		var dl *serviceerror.DeadlineExceeded
		var pd *serviceerror.PermissionDenied
		if errors.As(err, &pd) || !(errors.As(err, &nf) || errors.As(err, &un) || errors.As(err, &dl)) || ctx.Err() != nil {
			t.Fatalf("%s: %v (%v)", what, err, context.Cause(ctx))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func status(t *testing.T, addr string) wiring.StatusReport {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st wiring.StatusReport
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("%s/status: %v", addr, err)
	}
	return st
}

// waitListening waits until addr accepts TCP connections.
func waitListening(ctx context.Context, t *testing.T, addr string, p *child) {
	t.Helper()
	for {
		if conn, err := net.Dial("tcp", addr); err == nil {
			_ = conn.Close()
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %s not listening: %v", p.name, addr, context.Cause(ctx))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// cluster is the service processes of TestCluster.
type cluster struct {
	t        *testing.T
	dir      string
	children map[string]*child
	died     context.CancelCauseFunc // called when a process exits unexpectedly
}

type child struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan error // receives Wait's result, then is closed
	// expected is set before the test stops or kills the process; an exit
	// without it ends the test's context (cluster.died).
	expected atomic.Bool
	err      error
}

// start runs "temporal-opa start args..." with env as a child process (this
// test binary re-executed), logging to <dir>/<name>.log.
func (c *cluster) start(name string, args, env []string) *child {
	t := c.t
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(c.dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(append(os.Environ(), childEnv+"=start"), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = logFile.Close()
	p := &child{name: name, cmd: cmd, log: logPath, exited: make(chan error, 1)}
	go func() {
		err := cmd.Wait()
		if !p.expected.Load() && c.died != nil {
			c.died(fmt.Errorf("%s exited unexpectedly: %v (log: %s)", name, err, logPath))
		}
		p.exited <- err
		close(p.exited)
	}()
	if c.children == nil {
		c.children = map[string]*child{}
	}
	c.children[name] = p
	t.Cleanup(func() {
		p.expected.Store(true)
		_ = cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			tail(t, name, logPath, 25)
		}
	})
	return p
}

// stop sends SIGTERM to the named process and fails the test unless it exits
// with status 0 within limit.
func (c *cluster) stop(name string, limit time.Duration) {
	t := c.t
	t.Helper()
	p := c.children[name]
	began := time.Now()
	p.expected.Store(true)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("stop %s: %v", name, err)
		return
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Errorf("%s exited with %v after SIGTERM, want status 0", name, err)
		} else {
			t.Logf("%s stopped in %s", name, time.Since(began).Round(time.Millisecond))
		}
	case <-time.After(limit):
		t.Errorf("%s did not stop within %s of SIGTERM", name, limit)
	}
}

func tail(t *testing.T, name, path string, n int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Logf("%s: %v", name, err)
		return
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if len(l) > 600 {
			lines[i] = l[:600] + " ..."
		}
	}
	t.Logf("last lines of %s:\n  %s", name, strings.Join(lines, "\n  "))
}

// postgres is a PostgreSQL server started for one test.
type postgres struct {
	addr string // 127.0.0.1:port, user postgres, no password (trust)

	mu     sync.Mutex
	launch func() (*exec.Cmd, <-chan error) // starts the server process on the data directory
	cmd    *exec.Cmd
	exited <-chan error
	log    string
}

// startPostgres runs initdb and postgres from Debian's postgresql package on a
// free loopback port, as user postgres when the test runs as root (PostgreSQL
// refuses root), with durability off for speed. It stops at the end of the test.
func startPostgres(t *testing.T) *postgres {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		if os.Geteuid() != 0 {
			t.Skip("PostgreSQL is not installed and cannot be installed without root: run 'sudo make deps' (apt-get install postgresql)")
		}
		t.Fatal("PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb): run 'make deps' (apt-get install postgresql)")
	}
	sort.Strings(bins)
	bin := filepath.Dir(bins[len(bins)-1])

	dir, err := os.MkdirTemp("", "temporal-opa-pg-") // not t.TempDir: user postgres must reach it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, PostgreSQL needs the user postgres (made by the postgresql package): %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		attr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	logPath := filepath.Join(dir, "postgres.log")
	run := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = dir
		cmd.SysProcAttr = attr
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		return cmd
	}
	if out, err := run("initdb", "-D", filepath.Join(dir, "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port := testutil.FreePort(t, "127.0.0.1")
	pg := &postgres{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), log: logPath}
	pg.launch = func() (*exec.Cmd, <-chan error) {
		cmd := run("postgres", "-D", filepath.Join(dir, "data"), "-p", strconv.Itoa(port), "-c", "listen_addresses=127.0.0.1",
			"-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
			"-c", "max_connections=200")
		logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			t.Fatalf("postgres: %v", err)
		}
		_ = logFile.Close()
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait(); close(exited) }() // closed: every later receive returns at once
		return cmd, exited
	}
	pg.cmd, pg.exited = pg.launch()
	t.Cleanup(func() { pg.shutdown(30 * time.Second) })
	if err := pg.waitListening(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	return pg
}

// shutdown stops the server (fast shutdown: SIGINT), killing it after limit.
func (pg *postgres) shutdown(limit time.Duration) {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	if pg.cmd == nil {
		return
	}
	_ = pg.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-pg.exited:
	case <-time.After(limit):
		_ = pg.cmd.Process.Kill()
		<-pg.exited
	}
	pg.cmd = nil
}

// restart stops the server (fast shutdown, as an operator's restart does:
// open connections are closed) and starts it again on the same data and port.
func (pg *postgres) restart() error {
	pg.shutdown(30 * time.Second)
	pg.mu.Lock()
	pg.cmd, pg.exited = pg.launch()
	pg.mu.Unlock()
	return pg.waitListening(30 * time.Second)
}

// waitListening waits until the server accepts TCP connections.
func (pg *postgres) waitListening(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if conn, err := net.Dial("tcp", pg.addr); err == nil {
			_ = conn.Close()
			return nil
		}
		select {
		case err := <-pg.exited:
			return fmt.Errorf("postgres exited: %v (log %s)", err, pg.log)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not listen within %s (log %s)", limit, pg.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// setupTemporalSchema creates the temporal and temporal_visibility databases
// and loads Temporal's PostgreSQL schemas, embedded in the server module
// (go.temporal.io/server/schema), with its own SQL admin code: what
// temporal-sql-tool setup-schema does, without the tool.
func setupTemporalSchema(t *testing.T, addr string) {
	t.Helper()
	base := config.SQL{PluginName: "postgres12", ConnectAddr: addr, ConnectProtocol: "tcp", User: "postgres"}
	admin := func(kind sqlplugin.DbKind, db string) sqlplugin.AdminDB {
		c := base
		c.DatabaseName = db
		var (
			a   sqlplugin.AdminDB
			err error
		)
		for range 50 { // the server may still be starting up
			if a, err = sql.NewSQLAdminDB(kind, &c, resolver.NewNoopResolver(), log.NewNoopLogger(), metrics.NoopMetricsHandler); err == nil {
				if err = a.Exec("SELECT 1"); err == nil {
					return a
				}
				_ = a.Close()
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("connect to PostgreSQL %s database %q: %v", addr, db, err)
		return nil
	}
	a := admin(sqlplugin.DbKindUnknown, "")
	for _, db := range []string{"temporal", "temporal_visibility"} {
		if err := a.CreateDatabase(db); err != nil {
			t.Fatalf("create database %s: %v", db, err)
		}
	}
	_ = a.Close()
	for _, s := range []struct {
		kind sqlplugin.DbKind
		db   string
		file string
	}{
		{sqlplugin.DbKindMain, "temporal", "postgresql/v12/temporal/schema.sql"},
		{sqlplugin.DbKindVisibility, "temporal_visibility", "postgresql/v12/visibility/schema.sql"},
	} {
		data, err := fs.ReadFile(schema.Assets(), s.file)
		if err != nil {
			t.Fatal(err)
		}
		stmts, err := persistence.LoadAndSplitQueryFromReaders([]io.Reader{bytes.NewReader(data)})
		if err != nil {
			t.Fatalf("%s: %v", s.file, err)
		}
		a := admin(s.kind, s.db)
		for i, stmt := range stmts {
			if err := a.Exec(stmt); err != nil {
				t.Fatalf("%s statement %d: %v", s.file, i, err)
			}
		}
		// The version the server checks at start (sql.VerifyCompatibleVersion).
		v := a.ExpectedVersion()
		if err := a.CreateSchemaVersionTables(); err != nil {
			t.Fatal(err)
		}
		if err := a.UpdateSchemaVersion(s.db, v, v); err != nil {
			t.Fatal(err)
		}
		if err := a.WriteSchemaUpdateLog("0", v, "", "initial version"); err != nil {
			t.Fatal(err)
		}
		_ = a.Close()
	}
}

func templateMust(text string) *template.Template { return template.Must(template.New("").Parse(text)) }

// stoppableWorker starts a worker for Greet on a fresh task queue of c; stop
// (also run at the end of the test) stops it.
func stoppableWorker(t *testing.T, c client.Client) (tq string, stop func()) {
	t.Helper()
	tq = randomName("tq")
	w := worker.New(c, tq, worker.Options{})
	w.RegisterWorkflow(Greet)
	w.RegisterActivity(Hello)
	if err := w.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	stop = sync.OnceFunc(w.Stop)
	t.Cleanup(stop)
	return tq, stop
}
