package e2e

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/temporal-opa/temporal-opa/server/internal/testutil"
)

// Who is who in the test.
const (
	wlServiceAccount = "system:serviceaccount:payments:payments-worker"
	wlSPIFFEID       = "spiffe://example.org/ns/payments/sa/worker"
	wlTrustDomain    = "spiffe://example.org"
	wlAudience       = "temporal"                      // the serviceAccountToken volume's audience, and the people's
	wlSVIDAudience   = "spiffe://example.org/temporal" // JWT-SVIDs carry one audience
	wlTokenLifetime  = 30 * time.Second                // the worker's projected tokens (3600 s in a cluster)
	wlLeeway         = 2 * time.Second
)

// workloadBundle grants roles by identity, each rule bound to the issuer that
// vouches for it (config/data.json names the issuers, filled in by the test):
// service accounts of the cluster issuer and SPIFFE IDs of the trust domain get
// the worker role on their namespace; people get the roles of their groups.
// The worker role alone is below read (Temporal ranks roles numerically and
// its pollers need write), so the bundle also allows the calls an SDK worker
// makes to holders of the worker role, as bundles/least-privilege-workers
// does: the worker can poll and complete tasks, and cannot start, signal or
// terminate workflows.
var workloadBundle = map[string]string{
	".manifest": `{"roots": ["temporal/custom/workload"], "rego_version": 1}`,
	"temporal/custom/workload/workload.rego": `package temporal.custom.workload

_cfg := data.temporal.custom.workload.config

# Kubernetes service accounts, verified by the cluster's issuer.
namespace_roles[ns] contains "worker" if {
	input.claims.issuer == _cfg.issuers.cluster
	ns := _cfg.service_accounts[input.claims.subject]
}

# SPIFFE IDs, verified by the trust domain's bundle.
namespace_roles[ns] contains "worker" if {
	input.claims.issuer == _cfg.issuers.spiffe
	ns := _cfg.spiffe_ids[input.claims.subject]
}

# People: the roles of their groups.
namespace_roles[ns] contains role if {
	input.claims.issuer == _cfg.issuers.people
	some group in input.claims.jwt.groups
	some ns, role in _cfg.groups[group]
}

system_roles contains "admin" if {
	input.claims.issuer == _cfg.issuers.people
	some group in input.claims.jwt.groups
	group in _cfg.admin_groups
}

# What an SDK worker calls (bundles/least-privilege-workers), for holders of
# the worker role on the namespace.
allow if {
	input.target.service == "temporal.api.workflowservice.v1.WorkflowService"
	input.target.scope == "namespace"
	input.target.method in _worker_apis
	"worker" in namespace_roles[input.target.namespace]
}

_worker_apis := {
	"PollWorkflowTaskQueue", "PollActivityTaskQueue", "PollNexusTaskQueue",
	"RespondWorkflowTaskCompleted", "RespondWorkflowTaskFailed", "RespondQueryTaskCompleted", "ResetStickyTaskQueue",
	"GetWorkflowExecutionHistory",
	"RespondActivityTaskCompleted", "RespondActivityTaskCompletedById",
	"RespondActivityTaskFailed", "RespondActivityTaskFailedById",
	"RespondActivityTaskCanceled", "RespondActivityTaskCanceledById",
	"RecordActivityTaskHeartbeat", "RecordActivityTaskHeartbeatById",
	"RespondNexusTaskCompleted", "RespondNexusTaskFailed",
	"DescribeNamespace", "FetchWorkerConfig", "RecordWorkerHeartbeat", "ShutdownWorker",
}
`,
}

// AwaitGo waits for the signal "go", then greets name through the Hello
// activity: started before a token rotation and released after it, it needs
// the worker to go on polling with the new token.
func AwaitGo(ctx workflow.Context, name string) (string, error) {
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, nil)
	return Greet(ctx, name)
}

// Workload identity with real parts: "temporal-opa start" (a child process,
// SQLite in memory) trusting three issuers through jwt.issuers, and a policy
// bundle whose role rules give each identity its roles:
//
//   - a Kubernetes API server's service-account issuer: HTTPS with a private CA
//     (ca_file), OIDC discovery and /openid/v1/jwks behind a bearer token
//     (fetch_token_file), projected service-account tokens (RS256, kid);
//   - a people's identity provider (Keycloak-shaped: OIDC discovery on
//     loopback http, ES256, a groups claim);
//   - a SPIFFE trust domain: JWT-SVIDs without kid, verified with the trust
//     bundle file as SPIRE writes it (one jwt-svid key beside an x509-svid one).
//
// A real SDK worker takes its token from a projected-token file, re-read for
// every call (client.NewAPIKeyDynamicCredentials); the file is rotated as the
// kubelet does, and the worker keeps completing workflows after the old token
// has expired.
//
// Each identity holds exactly the roles the rules give it (denials name the
// role held); a person whose sub names the service account gets nothing.
// Refused tokens (a key of one issuer signing for another, an unlisted issuer,
// a token living longer than max_lifetime, another audience, an expired
// token) get Temporal's generic "Request unauthorized.", and the server's log
// has the claim mapper's code and reason; the worker's calls are never refused.
//
// The test bundle (workloadBundle) is small and inline; bundles/kubernetes-workers
// and bundles/keycloak-groups are the examples of the same ideas.
func TestWorkloadIdentity(t *testing.T) {
	began := time.Now()
	ctx, cancel := context.WithCancelCause(ctxFor(t, 4*time.Minute))
	defer cancel(nil)
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}

	// The cluster's issuer: HTTPS with the cluster CA, discovery and keys for
	// authenticated callers only, as an API server serves them by default.
	ca := newTestCA(t)
	kube := newKubeIssuer(t, ca)
	// The server's own service-account token, for its discovery and key fetches.
	serverSAToken := kube.sign(t, kube.projected("system:serviceaccount:temporal:temporal-frontend", "https://kubernetes.default.svc.cluster.local", time.Now(), time.Hour))
	kube.allowFetchToken(serverSAToken)

	// The people's issuer, Keycloak-shaped.
	people := newPeopleIssuer(t)

	// The SPIFFE trust domain: its bundle in SPIFFE format, as SPIRE writes it.
	spiffe := newSigner(t, wlTrustDomain, "ES256", "")
	spiffeBundle := spiffe.spiffeBundle(t, ca.certDER)

	bundleData, _ := json.Marshal(map[string]any{
		"issuers":          map[string]string{"cluster": kube.url, "people": people.url, "spiffe": wlTrustDomain},
		"service_accounts": map[string]string{wlServiceAccount: "payments"},
		"spiffe_ids":       map[string]string{wlSPIFFEID: "payments"},
		"groups":           map[string]map[string]string{"payments-devs": {"payments": "write"}},
		"admin_groups":     []string{"temporal-admins"},
	})
	files := map[string]string{"temporal/custom/workload/config/data.json": string(bundleData)}
	for k, v := range workloadBundle {
		files[k] = v
	}
	bundleDir := testutil.WriteFiles(t, files)

	authz := fmt.Sprintf(`jwt:
  leeway: %s
  audiences: [%s]
  issuers:
    - issuer: %s
      ca_file: %s
      fetch_token_file: %s
      max_lifetime: 1h
    - issuer: %s
    - issuer: %s
      skip_discovery: true
      jwks_files: [%s]
      audiences: [%q]
policy:
  bundle: %s
`, wlLeeway, wlAudience, kube.url, write("cluster-ca.crt", ca.pem), write("server-sa-token", serverSAToken),
		people.url, wlTrustDomain, write("spiffe-bundle.jwks", spiffeBundle), wlSVIDAudience, bundleDir)

	// temporal-opa start, all services in one process, as a child.
	p := testutil.FreePorts(t, "127.0.0.1", 10)
	svc := func(g, m int) string {
		return fmt.Sprintf("    rpc:\n      grpcPort: %d\n      membershipPort: %d\n      bindOnLocalHost: true\n", g, m)
	}
	temporalYAML := fmt.Sprintf(`log:
  stdout: true
  level: warn
%s%s`, oneProcessStore("workload"), oneProcessServices([5]string{svc(p[0], p[1]), svc(p[2], p[3]), svc(p[4], p[5]), svc(p[6], p[7]), svc(p[8], p[9])}, p[0]))
	procs := &cluster{t: t, dir: dir, died: cancel}
	server := procs.start("temporal-opa", []string{
		"--config-file", write("temporal.yaml", temporalYAML), "--authz", write("authz.yaml", authz),
		"--service", "frontend", "--service", "internal-frontend", "--service", "history", "--service", "matching", "--service", "worker",
	}, nil)
	addr := fmt.Sprintf("127.0.0.1:%d", p[0])
	if err := waitHealthy(ctx, addr, server.exited); err != nil {
		t.Fatal(err)
	}
	ready := time.Since(began)
	t.Logf("temporal-opa start serving after %s", ready.Round(time.Millisecond))
	if n := kube.fetches.Load(); n < 2 {
		t.Errorf("the cluster issuer served %d authenticated fetches, want discovery and the key set", n)
	}
	if n := kube.refused.Load(); n != 0 {
		t.Errorf("the cluster issuer refused %d fetches without the server's token", n)
	}
	log := &serverLog{path: server.log}

	checked := 0
	ok := func(what string, err error) {
		t.Helper()
		checked++
		wantOK(t, what, err)
	}
	denied := func(what string, err error, reason ...string) {
		t.Helper()
		checked++
		wantDenied(t, what, err, reason...)
	}
	// refused: the claim mapper refused the token: the caller gets Temporal's
	// generic answer, and the server's log says why.
	refusals := 0
	refused := func(what string, call func() error, logged ...string) {
		t.Helper()
		checked++
		refusals++
		mark := log.size()
		err := call()
		var pd *serviceerror.PermissionDenied
		if !errors.As(err, &pd) || pd.Message != "Request unauthorized." || pd.Reason != "" {
			t.Errorf("%s: %v, want PermissionDenied \"Request unauthorized.\" with no reason", what, err)
			return
		}
		testutil.Eventually(t, 10*time.Second, 100*time.Millisecond, what+": the refusal in the server's log "+strings.Join(logged, " "), func() bool {
			s := log.since(mark)
			for _, l := range logged {
				if !strings.Contains(s, l) {
					return false
				}
			}
			return true
		})
	}
	dialToken := func(ns, token string) client.Client {
		return dialAt(t, addr, ns, rawToken("Bearer "+token))
	}
	person := func(sub string, groups ...string) string {
		return people.sign(t, map[string]any{
			"iss": people.url, "sub": sub, "aud": wlAudience, "azp": "temporal-ui", "preferred_username": sub,
			"groups": groups, "iat": time.Now().Unix(), "exp": time.Now().Add(5 * time.Minute).Unix(),
		})
	}

	// An administrator (group temporal-admins: system admin) registers the namespaces.
	admin := dialToken("payments", person("ops", "temporal-admins"))
	for _, ns := range []string{"payments", "billing"} {
		retry(ctx, t, "RegisterNamespace "+ns, func() error {
			_, err := admin.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
				Namespace: ns, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)})
			return err
		})
		checked++
	}

	// The worker: its token from the projected-token file, read for every call.
	tokenPath := filepath.Join(dir, "serviceaccount", "token")
	if err := os.MkdirAll(filepath.Dir(tokenPath), 0o755); err != nil {
		t.Fatal(err)
	}
	kl := &kubelet{t: t, issuer: kube, path: tokenPath, sub: wlServiceAccount}
	first := kl.rotate()
	tok1, exp1 := first.token, first.exp
	kubeletCtx, stopKubelet := context.WithCancel(ctx)
	defer stopKubelet()
	go kl.run(kubeletCtx)
	creds := &tokenFile{path: tokenPath, sent: map[string]int{}}
	workerClient, err := client.NewLazyClient(client.Options{
		HostPort:          addr,
		Namespace:         "payments",
		Credentials:       client.NewAPIKeyDynamicCredentials(creds.read),
		ConnectionOptions: client.ConnectionOptions{TLSDisabled: true}, // the test's frontend is plaintext
		Logger:            quietLogger{},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(workerClient.Close)
	tq := randomName("payments")
	w := worker.New(workerClient, tq, worker.Options{})
	w.RegisterWorkflow(Greet)
	w.RegisterWorkflow(AwaitGo)
	w.RegisterActivity(Hello)
	if err := w.Start(); err != nil {
		t.Fatalf("start the worker (service account %s): %v", wlServiceAccount, err)
	}
	stopWorker := sync.OnceFunc(w.Stop)
	t.Cleanup(stopWorker)

	// A developer (group payments-devs: payments write) starts workflows.
	dev := dialToken("payments", person("alice", "payments-devs"))
	runGreet(ctx, t, dev, tq, "before rotation")
	checked++
	waiting, err := dev.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("await"), TaskQueue: tq}, AwaitGo, "across rotation")
	ok("StartWorkflowExecution by payments-devs (AwaitGo)", err)

	// The roles each identity holds, and nothing more.
	t.Run("roles", func(t *testing.T) {
		rctx := ctxFor(t, time.Minute)
		sa := dialToken("payments", tok1)
		_, err := sa.ExecuteWorkflow(rctx, client.StartWorkflowOptions{ID: randomName("by-sa"), TaskQueue: tq}, Greet, "x")
		denied("StartWorkflowExecution by the service account", err,
			"StartWorkflowExecution in namespace \"payments\" requires write; caller has worker")
		denied("TerminateWorkflowExecution by the service account", sa.TerminateWorkflow(rctx, waiting.GetID(), "", "x"),
			"TerminateWorkflowExecution in namespace \"payments\" requires write; caller has worker")
		_, err = sa.ListWorkflow(rctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: "payments"})
		denied("ListWorkflowExecutions by the service account", err, "requires read; caller has worker")
		_, err = dialToken("billing", tok1).WorkflowService().DescribeNamespace(rctx, &workflowservice.DescribeNamespaceRequest{Namespace: "billing"})
		denied("DescribeNamespace billing by the service account", err, "caller has no role")

		devBilling := dialToken("billing", person("alice", "payments-devs"))
		_, err = devBilling.ExecuteWorkflow(rctx, client.StartWorkflowOptions{ID: randomName("x"), TaskQueue: "idle"}, Greet, "x")
		denied("StartWorkflowExecution in billing by payments-devs", err,
			"StartWorkflowExecution in namespace \"billing\" requires write; caller has no role")
		_, err = dev.WorkflowService().UpdateNamespace(rctx, &workflowservice.UpdateNamespaceRequest{Namespace: "payments"})
		denied("UpdateNamespace payments by payments-devs", err, "UpdateNamespace in namespace \"payments\" requires admin; caller has write")
		_, err = dev.WorkflowService().RegisterNamespace(rctx, &workflowservice.RegisterNamespaceRequest{Namespace: randomName("x"), WorkflowExecutionRetentionPeriod: durationpb.New(time.Hour)})
		denied("RegisterNamespace by payments-devs", err, "RegisterNamespace in namespace", "requires admin; caller has no role")
		_, err = dev.ListWorkflow(rctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: "payments"})
		ok("ListWorkflowExecutions by payments-devs", err)
		// The same person out of the group: the decision just made for her is
		// not reused (the decision cache keys on the groups the rules read).
		_, err = dialToken("payments", person("alice")).ListWorkflow(rctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: "payments"})
		denied("ListWorkflowExecutions by alice out of payments-devs", err, "requires read; caller has no role")

		// A person whose subject claims to be the service account gets no
		// worker role: the rule is bound to the cluster's issuer (and the
		// decision just made for the service account is not reused).
		_, err = sa.WorkflowService().DescribeNamespace(rctx, &workflowservice.DescribeNamespaceRequest{Namespace: "payments"})
		ok("DescribeNamespace (a worker call) by the service account", err)
		impostor := dialToken("payments", person(wlServiceAccount))
		_, err = impostor.WorkflowService().DescribeNamespace(rctx, &workflowservice.DescribeNamespaceRequest{Namespace: "payments"})
		denied("DescribeNamespace by a person named like the service account", err,
			"DescribeNamespace in namespace \"payments\" requires read; caller has no role")
		_, err = impostor.WorkflowService().PollActivityTaskQueue(rctx, &workflowservice.PollActivityTaskQueueRequest{Namespace: "payments"})
		denied("PollActivityTaskQueue by a person named like the service account", err, "requires write; caller has no role")

		// The JWT-SVID (no kid; one jwt-svid key in the bundle) is the worker of payments.
		svid := spiffe.sign(t, map[string]any{"iss": wlTrustDomain, "sub": wlSPIFFEID, "aud": wlSVIDAudience,
			"iat": time.Now().Unix(), "exp": time.Now().Add(5 * time.Minute).Unix()})
		spiffeClient := dialToken("payments", svid)
		_, err = spiffeClient.WorkflowService().DescribeNamespace(rctx, &workflowservice.DescribeNamespaceRequest{Namespace: "payments"})
		ok("DescribeNamespace (a worker call) by the SPIFFE ID", err)
		_, err = spiffeClient.ExecuteWorkflow(rctx, client.StartWorkflowOptions{ID: randomName("x"), TaskQueue: "idle"}, Greet, "x")
		denied("StartWorkflowExecution by the SPIFFE ID", err, "requires write; caller has worker")
		// The same SVID with an audience of another service is refused.
		other := spiffe.sign(t, map[string]any{"iss": wlTrustDomain, "sub": wlSPIFFEID, "aud": "spiffe://example.org/vault",
			"iat": time.Now().Unix(), "exp": time.Now().Add(5 * time.Minute).Unix()})
		refused("a JWT-SVID for another audience", func() error {
			_, err := dialToken("payments", other).WorkflowService().DescribeNamespace(rctx, &workflowservice.DescribeNamespaceRequest{Namespace: "payments"})
			return err
		}, "token refused (invalid_audience)")
	})

	t.Run("refused tokens", func(t *testing.T) {
		rctx := ctxFor(t, time.Minute)
		describe := func(token string) func() error {
			return func() error {
				_, err := dialToken("payments", token).WorkflowService().DescribeNamespace(rctx, &workflowservice.DescribeNamespaceRequest{Namespace: "payments"})
				return err
			}
		}
		now := time.Now()
		// Key confusion: a token claiming the cluster's issuer, signed by the
		// people's key (with its kid); and one claiming the trust domain,
		// signed by the people's key without kid (the trust domain's one key is
		// then tried, and does not verify it).
		forged := kube.projected(wlServiceAccount, wlAudience, now, 10*time.Minute)
		refused("a projected token signed with the people's key", describe(people.sign(t, forged)),
			"token refused (unknown_kid)", people.kid)
		noKid := *people
		noKid.kid = ""
		refused("a JWT-SVID signed with the people's key", describe(noKid.sign(t, map[string]any{
			"iss": wlTrustDomain, "sub": wlSPIFFEID, "aud": wlSVIDAudience, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()})),
			"token refused (bad_signature)")
		// An issuer that is not listed, even with a valid signature of a listed key.
		refused("a token of an unlisted issuer", describe(kube.sign(t, map[string]any{
			"iss": "https://evil.example/realms/temporal", "sub": wlServiceAccount, "aud": wlAudience, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()})),
			"token refused (unknown_issuer)", "https://evil.example/realms/temporal", "is not one of jwt.issuers")
		// A projected token living longer than max_lifetime (1h).
		refused("a projected token living 2h", describe(kube.sign(t, kube.projected(wlServiceAccount, wlAudience, now, 2*time.Hour))),
			"token refused (lifetime_too_long)", "above max_lifetime 1h0m0s")
		// A projected token for another audience (the API server's).
		refused("a projected token for the API server's audience", describe(kube.sign(t, kube.projected(wlServiceAccount, "https://kubernetes.default.svc.cluster.local", now, 10*time.Minute))),
			"token refused (invalid_audience)")
		// An expired projected token.
		refused("an expired projected token", describe(kube.sign(t, kube.projected(wlServiceAccount, wlAudience, now.Add(-10*time.Minute), 5*time.Minute))),
			"token refused (token_expired)", "exp is in the past")
	})

	// Rotation: the kubelet replaces the token at 80% of its lifetime; the
	// old token then expires, and the worker goes on with the new one.
	testutil.Eventually(t, wlTokenLifetime, 100*time.Millisecond, "the kubelet's first rotation", func() bool { return len(kl.issued()) > 1 })
	second := kl.issued()[1]
	tok2, rotated := second.token, second.written
	t.Logf("token rotated %s after it was issued, %s before it expires", rotated.Sub(first.iat).Round(time.Millisecond), exp1.Sub(rotated).Round(time.Millisecond))
	runGreet(ctx, t, dev, tq, "after rotation")
	checked++
	time.Sleep(time.Until(exp1.Add(wlLeeway + time.Second)))
	expired := time.Now()
	refused("the old projected token, once expired", func() error {
		_, err := dialToken("payments", tok1).WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "payments"})
		return err
	}, "token refused (token_expired)", "exp is in the past")
	ok("SignalWorkflowExecution to the workflow started before the rotation", dev.SignalWorkflow(ctx, waiting.GetID(), waiting.GetRunID(), "go", nil))
	var got string
	checked++
	if err := waiting.Get(ctxFor(t, 30*time.Second), &got); err != nil {
		t.Fatalf("the workflow started before the rotation did not complete after the first token expired: %v; "+
			"a worker that does not read the token file again polls with the expired token", err)
	}
	if got != "Hello, across rotation!" {
		t.Errorf("result %q", got)
	}
	runGreet(ctx, t, dev, tq, "after expiry")
	checked++
	done := time.Now()

	stopKubelet()
	sent1, sent2, reads := creds.count(tok1), creds.count(tok2), creds.reads.Load()
	t.Logf("worker calls: %d with the first token, %d with the second, %d reads of the token file in all (%d tokens issued); "+
		"after the first token expired, the workflow started before the rotation and a new one completed within %s",
		sent1, sent2, reads, len(kl.issued()), done.Sub(expired).Round(time.Millisecond))
	// Every refusal the server logged is one the test asked for: the worker's
	// calls were never refused, before, during or after the rotation.
	if n := strings.Count(log.since(0), "token refused ("); n != refusals {
		t.Errorf("the server refused %d tokens, want the %d refusals the test caused (a worker call was refused?)", n, refusals)
	}
	if sent1 == 0 || sent2 == 0 {
		t.Errorf("worker sent the first token %d times and the second %d times, want both used", sent1, sent2)
	}
	if after := creds.sentAfter(rotated, tok1); after > 0 {
		t.Errorf("the worker sent the old token %d times after the file was rotated: it must read the file for every call", after)
	}
	if n := kube.refused.Load(); n != 0 {
		t.Errorf("the cluster issuer refused %d fetches", n)
	}
	t.Logf("%d calls checked; cluster issuer served %d authenticated fetches; test took %s (server start %s)",
		checked, kube.fetches.Load(), time.Since(began).Round(time.Millisecond), ready.Round(time.Millisecond))
	stopWorker()
	procs.stop("temporal-opa", time.Minute)
}

// serverLog reads what the server process has logged.
type serverLog struct{ path string }

func (l *serverLog) size() int64 {
	fi, err := os.Stat(l.path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// since returns what was logged after offset off.
func (l *serverLog) since(off int64) string {
	b, err := os.ReadFile(l.path)
	if err != nil || int64(len(b)) < off {
		return ""
	}
	return string(b[off:])
}

// tokenFile is the worker's credential: the projected token, read from its
// file for every call, as client.NewAPIKeyDynamicCredentials calls it.
type tokenFile struct {
	path  string
	reads atomic.Int64
	mu    sync.Mutex
	sent  map[string]int
	times []sentToken
}

type sentToken struct {
	at    time.Time
	token string
}

func (f *tokenFile) read(context.Context) (string, error) {
	at := time.Now() // before the read: a read after a rotation sees the new file
	b, err := os.ReadFile(f.path)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	f.reads.Add(1)
	f.mu.Lock()
	f.sent[tok]++
	f.times = append(f.times, sentToken{at, tok})
	f.mu.Unlock()
	return tok, nil
}

func (f *tokenFile) count(tok string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent[tok]
}

func (f *tokenFile) sentAfter(t time.Time, tok string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, s := range f.times {
		if s.at.After(t) && s.token == tok {
			n++
		}
	}
	return n
}

// kubelet writes projected service-account tokens to path, replacing the file
// atomically as the kubelet's atomic writer does, and rotates them at 80% of
// their lifetime.
type kubelet struct {
	t      *testing.T
	issuer *kubeIssuer
	path   string
	sub    string
	mu     sync.Mutex
	tokens []issuedToken
}

type issuedToken struct {
	token    string
	iat, exp time.Time
	written  time.Time // when the file held it
}

// rotate writes a new token of wlTokenLifetime.
func (k *kubelet) rotate() issuedToken {
	now := time.Now()
	tok := k.issuer.sign(k.t, k.issuer.projected(k.sub, wlAudience, now, wlTokenLifetime))
	tmp := k.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(tok), 0o644); err != nil {
		k.t.Error(err)
	}
	if err := os.Rename(tmp, k.path); err != nil {
		k.t.Error(err)
	}
	it := issuedToken{token: tok, iat: time.Unix(now.Unix(), 0), exp: time.Unix(now.Add(wlTokenLifetime).Unix(), 0), written: time.Now()}
	k.mu.Lock()
	k.tokens = append(k.tokens, it)
	k.mu.Unlock()
	return it
}

// run rotates the token at 80% of its lifetime until ctx ends.
func (k *kubelet) run(ctx context.Context) {
	for {
		last := k.issued()[len(k.issued())-1]
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(last.iat.Add(wlTokenLifetime * 4 / 5))):
			k.rotate()
		}
	}
}

func (k *kubelet) issued() []issuedToken {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.tokens)
}

// signer mints JWTs for one issuer with one key.
type signer struct {
	url string
	alg jwa.SignatureAlgorithm
	kid string // "" for none in the tokens' header
	key crypto.Signer
}

func newSigner(t *testing.T, url, alg, kid string) *signer {
	t.Helper()
	s := &signer{url: url, alg: jwa.SignatureAlgorithm(alg), kid: kid}
	var err error
	switch alg {
	case "RS256":
		s.key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		s.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		t.Fatalf("alg %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sign signs claims as a compact JWS with typ JWT and, when set, the kid.
func (s *signer) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	h := jws.NewHeaders()
	_ = h.Set(jws.TypeKey, "JWT")
	if s.kid != "" {
		_ = h.Set(jws.KeyIDKey, s.kid)
	}
	tok, err := jws.Sign(payload, jws.WithKey(s.alg, s.key, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(tok)
}

// publicJWK is the public key as a JWK with kid (if any), alg and use.
func (s *signer) publicJWK(t *testing.T, use string) jwk.Key {
	t.Helper()
	k, err := jwk.FromRaw(s.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if s.kid != "" {
		_ = k.Set(jwk.KeyIDKey, s.kid)
	}
	_ = k.Set(jwk.AlgorithmKey, s.alg)
	if use != "" {
		_ = k.Set(jwk.KeyUsageKey, use)
	}
	return k
}

// jwks is the key set of the signer's one key, as a provider publishes it.
func (s *signer) jwks(t *testing.T) []byte {
	t.Helper()
	set := jwk.NewSet()
	_ = set.AddKey(s.publicJWK(t, "sig"))
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// spiffeBundle is the trust domain's bundle in the SPIFFE format
// (spire-server bundle show -format spiffe): an x509-svid key (the X.509 CA,
// with its certificate) and the jwt-svid key, whose kid JWT-SVIDs may omit.
func (s *signer) spiffeBundle(t *testing.T, caDER []byte) string {
	t.Helper()
	jwtKey := s.publicJWK(t, "")
	jwtKeyJSON, _ := json.Marshal(jwtKey)
	var jwtMap map[string]any
	_ = json.Unmarshal(jwtKeyJSON, &jwtMap)
	jwtMap["use"] = "jwt-svid"
	jwtMap["kid"] = "spire-jwt-1"
	delete(jwtMap, "alg") // SPIRE does not set alg
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := jwk.FromRaw(caCert.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	caKeyJSON, _ := json.Marshal(caKey)
	var caMap map[string]any
	_ = json.Unmarshal(caKeyJSON, &caMap)
	caMap["use"] = "x509-svid"
	caMap["x5c"] = []string{base64.StdEncoding.EncodeToString(caDER)}
	b, err := json.MarshalIndent(map[string]any{"keys": []any{caMap, jwtMap}, "spiffe_sequence": 1, "spiffe_refresh_hint": 300}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// kubeIssuer is a Kubernetes API server's service-account issuer: OIDC
// discovery and /openid/v1/jwks over HTTPS with the cluster CA, served only
// to callers with an accepted bearer token.
type kubeIssuer struct {
	*signer
	fetches atomic.Int64 // authenticated discovery and key-set requests
	refused atomic.Int64 // requests without an accepted token
	mu      sync.Mutex
	tokens  map[string]bool
}

func newKubeIssuer(t *testing.T, ca *testCA) *kubeIssuer {
	t.Helper()
	k := &kubeIssuer{tokens: map[string]bool{}}
	srv := httptest.NewUnstartedServer(nil)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.serverCert(t)}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	k.signer = newSigner(t, srv.URL, "RS256", "sa-key-2026")
	jwks := k.jwks(t)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		k.mu.Lock()
		accepted := k.tokens[tok]
		k.mu.Unlock()
		if !accepted {
			k.refused.Add(1)
			http.Error(w, `{"kind":"Status","status":"Failure","reason":"Unauthorized","code":401}`, http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			k.fetches.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{
				"issuer": k.url, "jwks_uri": k.url + "/openid/v1/jwks", "response_types_supported": []string{"id_token"},
				"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
			})
		case "/openid/v1/jwks":
			k.fetches.Add(1)
			w.Header().Set("Content-Type", "application/jwk-set+json")
			_, _ = w.Write(jwks)
		default:
			http.NotFound(w, r)
		}
	})
	return k
}

func (k *kubeIssuer) allowFetchToken(tok string) {
	k.mu.Lock()
	k.tokens[tok] = true
	k.mu.Unlock()
}

// projected is the claims of a projected service-account token of sub
// (system:serviceaccount:<namespace>:<name>) for aud, issued at iat.
func (k *kubeIssuer) projected(sub, aud string, iat time.Time, lifetime time.Duration) map[string]any {
	parts := strings.Split(sub, ":")
	ns, name := parts[2], parts[3]
	return map[string]any{
		"iss": k.url, "sub": sub, "aud": []string{aud},
		"iat": iat.Unix(), "nbf": iat.Unix(), "exp": iat.Add(lifetime).Unix(),
		"kubernetes.io": map[string]any{
			"namespace":      ns,
			"pod":            map[string]string{"name": name + "-7d9f8b6c5-x2x4q", "uid": "0b6e4a1c-3f0e-4c8a-9a57-1d2f3e4a5b6c"},
			"serviceaccount": map[string]string{"name": name, "uid": "6a1f0c2e-8d3b-4f5a-b1c9-7e2d4f6a8b0c"},
		},
	}
}

// newPeopleIssuer is a Keycloak-shaped identity provider on loopback http:
// OIDC discovery and its JWKS, ES256 with kid.
func newPeopleIssuer(t *testing.T) *signer {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	t.Cleanup(srv.Close)
	s := newSigner(t, srv.URL+"/realms/people", "ES256", "people-key-1")
	jwks := s.jwks(t)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/realms/people/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": s.url, "jwks_uri": s.url + "/protocol/openid-connect/certs"})
		case "/realms/people/protocol/openid-connect/certs":
			_, _ = w.Write(jwks)
		default:
			http.NotFound(w, r)
		}
	})
	return s
}

// testCA is a private certificate authority, as a cluster's.
type testCA struct {
	key     *ecdsa.PrivateKey
	cert    *x509.Certificate
	certDER []byte
	pem     string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	return newNamedCA(t, "kubernetes")
}

// newNamedCA is a private certificate authority whose subject is cn.
func newNamedCA(t *testing.T, cn string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{key: key, cert: cert, certDER: der, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// serverCert is a certificate for 127.0.0.1 and localhost signed by the CA.
func (ca *testCA) serverCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
