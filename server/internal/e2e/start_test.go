package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/config"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/temporal-opa/temporal-opa/server/internal/cli"
	"github.com/temporal-opa/temporal-opa/server/internal/devkey"
	"github.com/temporal-opa/temporal-opa/server/internal/devserver"
	"github.com/temporal-opa/temporal-opa/server/internal/grantsvc"
	"github.com/temporal-opa/temporal-opa/server/internal/testutil"
	"github.com/temporal-opa/temporal-opa/server/internal/wiring"
)

// guardBundle and listBundle are policy bundles with their own roots, layered
// together on the embedded default: the first denies terminations in default,
// the second lets default readers list namespaces.
var (
	guardBundle = map[string]string{
		".manifest": `{"roots": ["temporal/custom/guard"], "rego_version": 1, "revision": "guard-1"}`,
		"temporal/custom/guard/guard.rego": `package temporal.custom.guard

deny contains "terminating workflows in default is disabled by the e2e policy" if {
	input.target.method == "TerminateWorkflowExecution"
	input.target.namespace == "default"
}
`,
	}
	listBundle = map[string]string{
		".manifest": `{"roots": ["temporal/custom/lists"], "rego_version": 1, "revision": "lists-1"}`,
		"temporal/custom/lists/lists.rego": `package temporal.custom.lists

allow if {
	input.target.method == "ListNamespaces"
	"read" in input.claims.namespaces["default"]
}
`,
	}
)

// start-dev --policy A --policy B: the rules of both bundles apply on top of
// the default policy, each bundle under its own name.
func TestStartDevWithPolicyBundle(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	guard, lists := testutil.WriteFiles(t, guardBundle), testutil.WriteFiles(t, listBundle)
	s, err := devserver.Start(ctx, devserver.Options{Namespaces: []string{"default"}, Key: srv.Key(), Policy: []string{guard, lists}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	revs := s.Authorizer().Status().Revisions
	if revs["policy/"+filepath.Base(guard)] != "guard-1" || revs["policy/"+filepath.Base(lists)] != "lists-1" {
		t.Errorf("revisions %v, want both bundles under policy/<base name>", revs)
	}
	if src := s.PolicySources(); !strings.Contains(src, guard) || !strings.Contains(src, lists) {
		t.Errorf("policy sources %q, want both paths", src)
	}

	dialS := func(perms ...string) client.Client {
		return dialAt(t, s.FrontendAddr(), "default", newTokens(s.Key(), perms...))
	}
	reader, writer := dialS("default:read"), dialS("default:read", "default:write")

	_, err = reader.WorkflowService().ListNamespaces(ctx, &workflowservice.ListNamespacesRequest{})
	wantOK(t, "ListNamespaces with default:read (custom allow)", err)

	id := randomName("to-terminate")
	_, err = writer.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: randomName("idle")}, Greet, "x")
	wantOK(t, "StartWorkflowExecution with write (default rules)", err)
	err = writer.TerminateWorkflow(ctx, id, "", "test")
	wantDenied(t, "TerminateWorkflowExecution (custom deny)", err, "terminating workflows in default is disabled by the e2e policy")
}

// A policy that does not compile stops start-dev before the Temporal server
// starts, with one line naming the flag and the file.
func TestStartDevWithBadPolicy(t *testing.T) {
	bad := testutil.WriteFiles(t, map[string]string{
		".manifest":                        `{"roots": ["temporal/custom/typo"], "rego_version": 1}`,
		"temporal/custom/typo/custom.rego": "package temporal.custom.typo\n\ndeny contains \"x\" if {\n\tinput.target.metod == \"Foo\"\n}\n",
	})
	ctx := ctxFor(t, time.Minute)
	// Alone, and beside a good bundle: the error names the bad one.
	good := testutil.WriteFiles(t, guardBundle)
	for _, policies := range [][]string{{bad}, {good, bad}} {
		_, err := devserver.Start(ctx, devserver.Options{Key: srv.Key(), Policy: policies})
		var de *devserver.Error
		if !errors.As(err, &de) {
			t.Fatalf("%q: error %v (%T), want a *devserver.Error", policies, err, err)
		}
		for _, want := range []string{"--policy " + bad + ":", "custom.rego:4", "metod"} {
			if !strings.Contains(de.Msg, want) {
				t.Errorf("%q: error %q lacks %q", policies, de.Msg, want)
			}
		}
		if strings.Contains(de.Msg, "\n") || strings.Contains(de.Msg, good) {
			t.Errorf("%q: error spans lines or names the good bundle: %q", policies, de.Msg)
		}
	}
}

// A frontend port already in use is one clear error, and nothing starts.
func TestStartDevPortInUse(t *testing.T) {
	host, port, _ := net.SplitHostPort(srv.FrontendAddr())
	var p int
	fmt.Sscanf(port, "%d", &p)
	_, err := devserver.Start(ctxFor(t, time.Minute), devserver.Options{IP: host, Port: p, Key: srv.Key()})
	var de *devserver.Error
	if !errors.As(err, &de) || !strings.Contains(de.Msg, fmt.Sprintf("port %d on %s is already in use", p, host)) || !strings.Contains(de.Msg, "--port") {
		t.Fatalf("error %v, want a port-in-use error pointing at --port", err)
	}
}

// temporal-opa start: Temporal's own config file (global.authorization giving the
// key source) plus an --authz file, run until the context ends.
func TestStartWithTemporalConfig(t *testing.T) {
	priv, pub := testutil.ECKeys(t)
	key, err := devkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := devkey.Serve("127.0.0.1:0", key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = jwks.Close() })

	ports := testutil.FreePorts(t, "127.0.0.1", 11) // the last for the status endpoint
	svc := func(g, m int) string {
		return fmt.Sprintf("    rpc:\n      grpcPort: %d\n      membershipPort: %d\n      bindOnLocalHost: true\n", g, m)
	}
	logFile := filepath.Join(t.TempDir(), "temporal.log")
	temporalYAML := fmt.Sprintf(`log:
  level: warn
  outputFile: %s
%s  authorization:
    jwtKeyProvider:
      keySourceURIs: [%q]
    permissionsClaimName: permissions
    authorizer: default
    claimMapper: default
%s`, logFile, oneProcessStore(fmt.Sprintf("e2e-start-%d", time.Now().UnixNano())), jwks.URL(),
		oneProcessServices([5]string{svc(ports[0], ports[1]), svc(ports[2], ports[3]), svc(ports[4], ports[5]), svc(ports[6], ports[7]), svc(ports[8], ports[9])}, ports[0]))
	// A remote bundle server as `opa build` + `opa sign` + any static file
	// server would be: a signed tarball with an ETag, behind a bearer token.
	bundles := testutil.NewBundleServer(t, "s3cret-bundle-token", remoteBundle(t, "r1", priv))
	opaYAML := fmt.Sprintf(`services:
  bundles:
    url: %s
    credentials:
      bearer:
        token: s3cret-bundle-token
bundles:
  remote:
    service: bundles
    resource: /temporal/authz.tar.gz
    polling:
      min_delay_seconds: 1
      max_delay_seconds: 2
    signing:
      keyid: release
keys:
  release:
    algorithm: ES256
    key: |
%s`, bundles.URL, indent(pub, "      "))
	statusAddr := fmt.Sprintf("127.0.0.1:%d", ports[10])
	dir := testutil.WriteFiles(t, map[string]string{
		"temporal.yaml": temporalYAML,
		"opa.yaml":      opaYAML,
	})
	authzYAML := "jwt:\n  issuer: " + devkey.Issuer + "\n  skip_discovery: true\npolicy:\n  eval_timeout: 250ms\n" +
		"  opa_config: " + filepath.Join(dir, "opa.yaml") + "\n  require_bundle: true\n  require_bundle_timeout: 20s\n" +
		"status:\n  address: " + statusAddr + "\n"
	if err := os.WriteFile(filepath.Join(dir, "authz.yaml"), []byte(authzYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := cli.ParseStart([]string{
		"--config-file", filepath.Join(dir, "temporal.yaml"), "--authz", filepath.Join(dir, "authz.yaml"),
		"--service", "frontend", "--service", "internal-frontend", "--service", "history", "--service", "matching", "--service", "worker",
	}, cli.Env{})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- wiring.Run(ctx, o) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("start returned %v after the context ended", err)
			}
		case <-time.After(time.Minute):
			t.Error("start did not return within a minute of the context ending")
		}
	}()

	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	waitCtx := ctxFor(t, 2*time.Minute)
	if err := waitHealthy(waitCtx, addr, done); err != nil {
		t.Fatal(err)
	}
	dialS := func(perms ...string) client.Client {
		var hp headersProvider = rawToken("")
		if len(perms) > 0 {
			hp = newTokens(key, perms...)
		}
		c, err := client.NewLazyClient(client.Options{HostPort: addr, Namespace: "e2e-start", HeadersProvider: hp, Logger: quietLogger{}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	reg := &workflowservice.RegisterNamespaceRequest{Namespace: "e2e-start", WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)}
	_, err = dialS().WorkflowService().RegisterNamespace(waitCtx, reg)
	wantDenied(t, "RegisterNamespace without a token", err, "requires a token")
	_, err = dialS("temporal-system:admin").WorkflowService().RegisterNamespace(waitCtx, reg)
	wantOK(t, "RegisterNamespace with temporal-system:admin", err)

	// Grants are on by default with an internal-frontend: the grant service
	// registers its namespace through it.
	for admin := dialS("temporal-system:admin"); ; {
		resp, err := admin.WorkflowService().ListNamespaces(waitCtx, &workflowservice.ListNamespacesRequest{PageSize: 100})
		wantOK(t, "ListNamespaces", err)
		if slices.ContainsFunc(resp.GetNamespaces(), func(ns *workflowservice.DescribeNamespaceResponse) bool {
			return ns.GetNamespaceInfo().GetName() == grantsvc.DefaultNamespace
		}) {
			break
		}
		if waitCtx.Err() != nil {
			t.Fatalf("the grant service did not register namespace %s", grantsvc.DefaultNamespace)
		}
		time.Sleep(200 * time.Millisecond)
	}

	user := dialS("e2e-start:read", "e2e-start:write")
	tq := runWorker(t, user)
	run, err := user.ExecuteWorkflow(waitCtx, client.StartWorkflowOptions{ID: randomName("greet"), TaskQueue: tq}, Greet, "start")
	wantOK(t, "StartWorkflowExecution", err)
	var got string
	wantOK(t, "workflow result", run.Get(waitCtx, &got))
	_, err = dialS("e2e-start:read").ExecuteWorkflow(waitCtx, client.StartWorkflowOptions{TaskQueue: tq}, Greet, "x")
	wantDenied(t, "StartWorkflowExecution with read", err, "requires write")

	// The remote bundle (policy.opa_config, required at start-up) is active.
	err = user.TerminateWorkflow(waitCtx, run.GetID(), "", "test")
	wantDenied(t, "TerminateWorkflowExecution under the remote bundle", err, "remote bundle: terminations are frozen")
	resp, err := http.Get("http://" + statusAddr + "/status")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var st wiring.StatusReport
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("status.address: %v in %s", err, body)
	}
	if !st.Ready || len(st.Sources) != 1 || st.Sources[0].Name != "remote" || st.Sources[0].Kind != "http" ||
		st.Sources[0].Revision != "r1" || st.Sources[0].ETag == "" || st.Policy.Revisions["remote"] != "r1" {
		t.Errorf("status: %s", body)
	}
	for _, secret := range []string{"s3cret", "PRIVATE", "PUBLIC KEY"} {
		if strings.Contains(string(body), secret) {
			t.Errorf("status shows %q: %s", secret, body)
		}
	}
	if n := bundles.Requests(); n < 1 {
		t.Errorf("bundle server saw %d requests", n)
	}
}

// remoteBundle is an `opa build` tarball at revision rev, signed as `opa sign`
// does with the ES256 key priv (PEM) under key id "release": it freezes
// terminations.
func remoteBundle(t *testing.T, rev, priv string) []byte {
	return testutil.SignedBundle(t, rev, priv, `package temporal.custom

deny contains "remote bundle: terminations are frozen" if input.target.method == "TerminateWorkflowExecution"
`)
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return prefix + strings.Join(lines, "\n"+prefix) + "\n"
}

// waitHealthy polls the frontend's health check until it serves, start fails or ctx ends.
func waitHealthy(ctx context.Context, addr string, done <-chan error) error {
	return waitHealthyOver(ctx, addr, insecure.NewCredentials(), done)
}

// waitHealthyOver is waitHealthy with the transport credentials creds (TLS
// with a client certificate for a frontend that requires one).
func waitHealthyOver(ctx context.Context, addr string, creds credentials.TransportCredentials, done <-chan error) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	for {
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "temporal.api.workflowservice.v1.WorkflowService"})
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		select {
		case err := <-done:
			return fmt.Errorf("start returned before serving: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("frontend %s not serving: %v", addr, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// start-dev --db-filename keeps namespaces and workflows across a restart, and
// the restart is quick (stale cluster membership is cleared).
func TestStartDevKeepsStateInDBFile(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	db := filepath.Join(t.TempDir(), "dev.db")
	opts := devserver.Options{DBFilename: db, Namespaces: []string{"default", "kept"}, Key: srv.Key()}
	first, err := devserver.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	id := randomName("kept")
	c, err := client.NewLazyClient(client.Options{HostPort: first.FrontendAddr(), Namespace: "kept",
		HeadersProvider: newTokens(srv.Key(), "kept:write"), Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "idle"}, Greet, "x")
	c.Close()
	wantOK(t, "StartWorkflowExecution", err)
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}

	restart := time.Now()
	opts.Port = 0
	second, err := devserver.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restart took %s", time.Since(restart).Round(time.Millisecond))
	c, err = client.NewLazyClient(client.Options{HostPort: second.FrontendAddr(), Namespace: "kept",
		HeadersProvider: newTokens(srv.Key(), "kept:read"), Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.DescribeWorkflowExecution(ctx, id, "")
	c.Close()
	wantOK(t, "DescribeWorkflowExecution after restart", err)
	stop := time.Now()
	if err := second.Stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(stop); d > 10*time.Second {
		t.Errorf("stop after restart took %s; stale membership slows it down", d)
	}
}

// Without --authz, start needs a key source in Temporal's own config; with one,
// the authz file adds to it.
func TestStartSettingsNeedAKeySource(t *testing.T) {
	cfg := &config.Config{Global: config.Global{Authorization: config.Authorization{Authorizer: "default", ClaimMapper: "default"}}}
	_, err := wiring.Settings(cfg, "")
	if err == nil || !strings.Contains(err.Error(), "global.authorization.jwtKeyProvider.keySourceURIs") || !strings.Contains(err.Error(), "--authz") {
		t.Errorf("error %v, want advice naming keySourceURIs and --authz", err)
	}
}

func TestStartSettingsLayerAuthzOnTemporal(t *testing.T) {
	cfg := &config.Config{Global: config.Global{Authorization: config.Authorization{
		JWTKeyProvider:       config.JWTKeyProvider{KeySourceURIs: []string{"https://idp.example/jwks.json", "file:///etc/jwks.json"}, RefreshInterval: time.Minute},
		PermissionsClaimName: "perms",
		Audience:             "temporal",
	}}}
	f := filepath.Join(testutil.WriteFiles(t, map[string]string{"authz.yaml": "jwt:\n  permissions_claim: realm_access.roles\n  system_namespace_aliases: [system]\n"}), "authz.yaml")
	s, err := wiring.Settings(cfg, f)
	if err != nil {
		t.Fatal(err)
	}
	j := s.JWT
	if len(j.JWKSURLs) != 1 || len(j.JWKSFiles) != 1 || j.RefreshInterval != time.Minute || j.PermissionsClaim != "realm_access.roles" ||
		len(j.Audiences) != 1 || j.Audiences[0] != "temporal" || len(j.SystemNamespaceAliases) != 1 {
		t.Errorf("settings %+v: want Temporal's key sources, refresh and audience with the file's claim and aliases", j)
	}
}

// oneProcessStore is the persistence and membership part of a Temporal config
// for `temporal-opa start` running every service in one process: SQLite in
// memory under the database name db, membership on loopback. It ends inside
// the global section, so that a test can add global settings (tls,
// authorization, metrics) after it.
func oneProcessStore(db string) string {
	return fmt.Sprintf(`persistence:
  defaultStore: sqlite
  visibilityStore: sqlite
  numHistoryShards: 1
  datastores:
    sqlite:
      sql:
        pluginName: sqlite
        databaseName: %s
        connectAddr: localhost
        connectProtocol: tcp
        connectAttributes:
          mode: memory
          cache: shared
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
`, db)
}

// oneProcessServices is the end of a Temporal config for `temporal-opa start`
// running every service in one process: the services (frontend,
// internal-frontend, history, matching, worker; each entry their indented
// rpc block) and a single active cluster whose frontend is at frontendPort.
func oneProcessServices(services [5]string, frontendPort int) string {
	return fmt.Sprintf(`services:
  frontend:
%s  internal-frontend:
%s  history:
%s  matching:
%s  worker:
%sclusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: 127.0.0.1:%d
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
`, services[0], services[1], services[2], services[3], services[4], frontendPort)
}
