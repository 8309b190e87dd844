package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/temporal-opa/temporal-opa/server/internal/devkey"
	"github.com/temporal-opa/temporal-opa/server/internal/testutil"
)

// The payments worker's SPIFFE ID: the URI SAN of its X.509-SVID.
const mtlsWorkerID = "spiffe://prod.example/ns/payments/sa/worker"

// mtlsBundle grants roles to workloads by the SPIFFE ID of the client
// certificate they connect with (input.claims.tls.spiffe_id: the frontend's
// TLS layer verified the certificate against its client CA), and makes one
// API need both a token and a certificate.
var mtlsBundle = map[string]string{
	".manifest": `{"roots": ["temporal/custom/mtls"], "rego_version": 1}`,
	"temporal/custom/mtls/mtls.rego": `package temporal.custom.mtls

# Workloads by SPIFFE ID, and the role each holds on its namespaces.
_workloads := {"spiffe://prod.example/ns/payments/sa/worker": {"payments": "write"}}

namespace_roles[ns] contains role if {
	some ns, role in _workloads[input.claims.tls.spiffe_id]
}

# Terminating a payments workflow takes a token presented with a client
# certificate: a certificate alone, however privileged, is not enough.
deny contains "TerminateWorkflowExecution in payments needs a token and a client certificate" if {
	input.target.method == "TerminateWorkflowExecution"
	input.target.namespace == "payments"
	not _token_with_certificate
}

_token_with_certificate if {
	input.claims.auth_type == "jwt"
	input.claims.tls.fingerprint_sha256 != ""
}
`,
}

// Mutual TLS through "temporal-opa start" (a child process, SQLite in
// memory): the frontend requires client certificates of a private CA
// (global.tls.frontend.server with requireClientAuth and clientCaFiles), and
// the certificate is the caller's identity:
//
//   - an SDK worker and starter with a certificate alone (its SPIFFE ID as URI
//     SAN) hold exactly the role the bundle's rule grants that ID: a workflow
//     with an activity completes in payments, the history names the SPIFFE ID
//     as principal {tls, ID} (frontend.enablePrincipalPropagation from the
//     dynamic config file), and the same certificate is denied in billing;
//   - a certificate of the CA that no rule names (CN only) is denied with the
//     policy's reason; one of a foreign CA, and none, are refused by the TLS
//     handshake before any authorization;
//   - a token bound to a certificate (cnf x5t#S256) works with that
//     certificate, its roles adding to the certificate's, and is refused with
//     another; a call the bundle reserves to a token with a certificate is
//     denied to the certificate alone;
//   - the frontend's HTTP API is served with the same TLS settings, and
//     authorizes by the certificate as gRPC does;
//   - decision-log events (uploaded to a local service) carry the
//     certificate's identity in custom.tls, for a denied call too (whose
//     reason names the certificate), metrics count tls and jwt_tls
//     credentials, and no private key reaches the log or the events;
//   - the system worker is unaffected: it calls the internal-frontend
//     (global.tls.internode, here none), and a namespace deletion completes.
//
// A bound token on a connection without a certificate cannot happen here
// (requireClientAuth): policy/claimmapper's unit tests refuse it.
func TestMTLS(t *testing.T) {
	began := time.Now()
	ctx, cancel := context.WithCancelCause(ctxFor(t, 2*time.Minute))
	defer cancel(nil)
	dir := t.TempDir()
	write := func(name string, content []byte) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}

	// The cluster's client CA, and a foreign one.
	ca := newNamedCA(t, "temporal-opa e2e CA")
	foreign := newNamedCA(t, "foreign CA")
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	serverCert := ca.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "temporal-frontend"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	workerCert := ca.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "payments-worker", Organization: []string{"prod.example"}},
		URIs: []*url.URL{mustURL(t, mtlsWorkerID)}})
	batchCert := ca.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "batch-job"}})
	operatorCert := ca.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "operator"}})
	impostorCert := foreign.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "payments-worker"},
		URIs: []*url.URL{mustURL(t, mtlsWorkerID)}})

	// Tokens: a dev signing key, trusted through a JWKS file.
	key, err := devkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := key.JWKS()
	if err != nil {
		t.Fatal(err)
	}

	// Decision logs go to a decision-log service on loopback.
	col := &collector{}
	logSvc := httptest.NewServer(col)
	defer logSvc.Close()
	opaConfig := write("opa.yaml", []byte(fmt.Sprintf("services:\n  audit:\n    url: %s\ndecision_logs:\n  service: audit\n"+
		"  reporting:\n    min_delay_seconds: 1\n    max_delay_seconds: 2\n", logSvc.URL)))
	authz := fmt.Sprintf("jwt:\n  issuer: %s\n  skip_discovery: true\n  jwks_files: [%s]\npolicy:\n  bundle: %s\n  opa_config: %s\n",
		devkey.Issuer, write("jwks.json", jwks), testutil.WriteFiles(t, mtlsBundle), opaConfig)
	dynamicConfig := write("dynamicconfig.yaml", []byte("frontend.enablePrincipalPropagation:\n  - value: true\n"))

	p := testutil.FreePorts(t, "127.0.0.1", 12)
	grpcPort, httpPort, metricsPort := p[0], p[10], p[11]
	svc := func(g, m int, extra string) string {
		return fmt.Sprintf("    rpc:\n      grpcPort: %d\n      membershipPort: %d\n%s      bindOnLocalHost: true\n", g, m, extra)
	}
	temporalYAML := fmt.Sprintf(`log:
  stdout: true
  level: warn
%s  tls:
    frontend:
      server:
        certFile: %s
        keyFile: %s
        requireClientAuth: true
        clientCaFiles: [%s]
  metrics:
    prometheus:
      timerType: histogram
      listenAddress: 127.0.0.1:%d
dynamicConfigClient:
  filepath: %s
  pollInterval: 10s
%s`, oneProcessStore("mtls"), write("frontend.crt", serverCert.certPEM), write("frontend.key", serverCert.keyPEM), write("ca.crt", []byte(ca.pem)),
		metricsPort, dynamicConfig,
		oneProcessServices([5]string{svc(grpcPort, p[1], fmt.Sprintf("      httpPort: %d\n", httpPort)), svc(p[2], p[3], ""), svc(p[4], p[5], ""),
			svc(p[6], p[7], ""), svc(p[8], p[9], "")}, grpcPort))
	procs := &cluster{t: t, dir: dir, died: cancel}
	server := procs.start("temporal-opa", []string{
		"--config-file", write("temporal.yaml", []byte(temporalYAML)), "--authz", write("authz.yaml", []byte(authz)),
		"--service", "frontend", "--service", "internal-frontend", "--service", "history", "--service", "matching", "--service", "worker",
	}, nil)
	addr := fmt.Sprintf("127.0.0.1:%d", grpcPort)
	tlsFor := func(c *issuedCert) *tls.Config {
		cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		if c != nil {
			// Presented whatever CAs the server's certificate request
			// names: Go's client would keep a foreign CA's certificate to
			// itself, and the server would see no certificate.
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c.pair, nil }
		}
		return cfg
	}
	if err := waitHealthyOver(ctx, addr, credentials.NewTLS(tlsFor(batchCert)), server.exited); err != nil {
		t.Fatal(err)
	}
	ready := time.Since(began)
	t.Logf("temporal-opa start serving mTLS after %s", ready.Round(time.Millisecond))
	log := &serverLog{path: server.log}

	dialCert := func(ns string, c *issuedCert, hp headersProvider) client.Client {
		t.Helper()
		cl, err := client.NewLazyClient(client.Options{HostPort: addr, Namespace: ns, HeadersProvider: hp, Logger: quietLogger{},
			ConnectionOptions: client.ConnectionOptions{TLS: tlsFor(c)}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
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

	// An operator (a system admin token, with its own certificate: every
	// connection needs one) registers the namespaces.
	admin := dialCert("payments", operatorCert, newTokens(key, "temporal-system:admin"))
	scratch := randomName("scratch")
	for _, ns := range []string{"payments", "billing", scratch} {
		retry(ctx, t, "RegisterNamespace "+ns, func() error {
			_, err := admin.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
				Namespace: ns, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)})
			return err
		})
		checked++
	}

	// The system worker reaches the cluster through the internal-frontend
	// (internode settings, here plaintext on loopback), not through the
	// mTLS frontend: deleting a namespace runs its system workflows.
	deleteStart := time.Now()
	var deleted string
	retry(ctx, t, "DeleteNamespace "+scratch, func() error {
		resp, err := admin.OperatorService().DeleteNamespace(ctx, &operatorservice.DeleteNamespaceRequest{Namespace: scratch})
		deleted = resp.GetDeletedNamespace()
		return err
	})
	checked++
	testutil.Eventually(t, 30*time.Second, 250*time.Millisecond, "the system workflows deleting "+scratch, func() bool {
		_, err := admin.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: deleted})
		var nf *serviceerror.NamespaceNotFound
		return errors.As(err, &nf)
	})
	t.Logf("namespace deletion by the system worker: %s", time.Since(deleteStart).Round(time.Millisecond))

	// The payments worker and a starter: the certificate alone, no token.
	workerClient := dialCert("payments", workerCert, nil)
	tq := randomName("payments")
	w := worker.New(workerClient, tq, worker.Options{})
	w.RegisterWorkflow(Greet)
	w.RegisterActivity(Hello)
	if err := w.Start(); err != nil {
		t.Fatalf("start the worker (certificate %s): %v", mtlsWorkerID, err)
	}
	stopWorker := sync.OnceFunc(w.Stop)
	t.Cleanup(stopWorker)
	starter := dialCert("payments", workerCert, nil)
	var run client.WorkflowRun
	retry(ctx, t, "StartWorkflowExecution by certificate", func() error {
		var err error
		run, err = starter.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("greet"), TaskQueue: tq}, Greet, "mTLS")
		return err
	})
	var got string
	ok("workflow by certificate", run.Get(ctx, &got))
	if got != "Hello, mTLS!" {
		t.Errorf("result %q, want %q", got, "Hello, mTLS!")
	}

	// The history names the certificate's SPIFFE ID.
	it := starter.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	sawStarted := false
	for it.HasNext() {
		e, err := it.Next()
		ok("GetWorkflowExecutionHistory by certificate", err)
		if e.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED {
			sawStarted = true
			if p := e.GetPrincipal(); p.GetType() != "tls" || p.GetName() != mtlsWorkerID {
				t.Errorf("WorkflowExecutionStarted principal %v, want tls %q", p, mtlsWorkerID)
			}
		}
	}
	if !sawStarted {
		t.Error("no WorkflowExecutionStarted event in the history")
	}

	// Exactly the granted role: write on payments, nothing on billing.
	_, err = dialCert("billing", workerCert, nil).ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("elsewhere"), TaskQueue: tq}, Greet, "x")
	denied("StartWorkflowExecution in billing by the payments certificate", err,
		`StartWorkflowExecution in namespace "billing" requires write; caller spiffe://prod.example/ns/payments/sa/worker (client certificate) has no role`)
	// A certificate of the CA that no rule names.
	_, err = dialCert("payments", batchCert, nil).ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("batch"), TaskQueue: tq}, Greet, "x")
	denied("StartWorkflowExecution in payments by a certificate no rule names", err,
		`StartWorkflowExecution in namespace "payments" requires write; caller CN=batch-job (client certificate) has no role`)

	// The TLS layer refuses a foreign CA's certificate (with the payments
	// worker's SPIFFE ID) and a connection without a certificate: the
	// handshake ends with the server's alert, and a gRPC call fails with
	// Unavailable, before any authorization.
	tlsRefused := func(what string, cfg *tls.Config, alert string) {
		t.Helper()
		checked++
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
		if err == nil {
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			_, err = conn.Read(make([]byte, 1)) // TLS 1.3: the server's verdict arrives after the client's Finished
			_ = conn.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "remote error: tls: "+alert) {
			t.Errorf("%s: TLS handshake: %v, want the server's alert %q", what, err, alert)
		}
		gc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		defer gc.Close()
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		defer ccancel()
		_, err = workflowservice.NewWorkflowServiceClient(gc).GetSystemInfo(cctx, &workflowservice.GetSystemInfoRequest{})
		if st := serviceerror.ToStatus(err); err == nil || st.Code() != codes.Unavailable {
			t.Errorf("%s: gRPC call: %v (code %s), want Unavailable: the connection refused", what, err, st.Code())
		}
	}
	tlsRefused("a certificate of a foreign CA", tlsFor(impostorCert), "unknown certificate authority")
	tlsRefused("no client certificate", tlsFor(nil), "certificate required")

	// A token bound to the worker's certificate: with it, the token's roles
	// (billing write) add to the certificate's; with another certificate the
	// token is refused.
	bound, err := key.Mint(devkey.Claims{Subject: "payments-deployer", Permissions: []string{"billing:write"}, TTL: 5 * time.Minute,
		Extra: map[string]any{"cnf": map[string]any{"x5t#S256": workerCert.x5t}}})
	if err != nil {
		t.Fatal(err)
	}
	boundWithCert := dialCert("billing", workerCert, rawToken("Bearer "+bound))
	_, err = boundWithCert.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("bound"), TaskQueue: randomName("idle")}, Greet, "x")
	ok("StartWorkflowExecution in billing by the bound token with its certificate", err)
	mark := log.size()
	_, err = dialCert("billing", batchCert, rawToken("Bearer "+bound)).WorkflowService().DescribeNamespace(ctx,
		&workflowservice.DescribeNamespaceRequest{Namespace: "billing"})
	checked++
	var pd *serviceerror.PermissionDenied
	if !errors.As(err, &pd) || pd.Message != "Request unauthorized." || pd.Reason != "" {
		t.Errorf("the bound token with another certificate: %v, want PermissionDenied \"Request unauthorized.\" with no reason", err)
	}
	testutil.Eventually(t, 10*time.Second, 100*time.Millisecond, "the certificate_binding refusal in the server's log", func() bool {
		return strings.Contains(log.since(mark), "token refused (certificate_binding)")
	})

	// Terminating in payments takes a token with a certificate.
	idle, err := starter.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("idle"), TaskQueue: randomName("idle")}, Greet, "x")
	ok("StartWorkflowExecution (idle) by certificate", err)
	denied("TerminateWorkflowExecution by the certificate alone", starter.TerminateWorkflow(ctx, idle.GetID(), "", "x"),
		"TerminateWorkflowExecution in payments needs a token and a client certificate")
	ok("TerminateWorkflowExecution by the bound token with its certificate",
		dialCert("payments", workerCert, rawToken("Bearer "+bound)).TerminateWorkflow(ctx, idle.GetID(), "", "x"))

	// The HTTP API: the same TLS settings, the same authorization.
	httpGet := func(c *issuedCert, path string) (int, string, error) {
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsFor(c)}}
		defer hc.CloseIdleConnections()
		resp, err := hc.Get(fmt.Sprintf("https://127.0.0.1:%d%s", httpPort, path))
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), nil
	}
	checked += 3
	if code, body, err := httpGet(workerCert, "/api/v1/namespaces/payments"); err != nil || code != http.StatusOK || !strings.Contains(body, `"payments"`) {
		t.Errorf("HTTP GET /api/v1/namespaces/payments with the payments certificate: %d %s %v, want 200 with the namespace", code, body, err)
	}
	if code, body, err := httpGet(workerCert, "/api/v1/namespaces/billing"); err != nil || code != http.StatusForbidden ||
		!strings.Contains(body, "requires read; caller spiffe://prod.example/ns/payments/sa/worker (client certificate) has no role") {
		t.Errorf("HTTP GET /api/v1/namespaces/billing with the payments certificate: %d %s %v, want 403 with the policy's reason", code, body, err)
	}
	if code, _, err := httpGet(nil, "/api/v1/namespaces/payments"); err == nil || !strings.Contains(err.Error(), "tls: ") {
		t.Errorf("HTTP GET without a client certificate: %d %v, want the TLS handshake refused", code, err)
	}

	// Metrics count the certificate's calls and the bound token's refusal.
	// global.metrics.prometheus is Temporal's tally reporter: it flushes
	// every second or so, names counters without _total, and keeps only
	// [a-zA-Z0-9_] in label values (the credentials label values are chosen so).
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	for _, m := range []struct {
		name   string
		labels map[string]string
		want   func(float64) bool
	}{
		{"temporal_opa_decisions", map[string]string{"credentials": "tls", "decision": "allow"}, func(n float64) bool { return n > 0 }},
		{"temporal_opa_decisions", map[string]string{"credentials": "tls", "decision": "deny"}, func(n float64) bool { return n > 0 }},
		{"temporal_opa_decisions", map[string]string{"credentials": "jwt_tls", "decision": "allow"}, func(n float64) bool { return n > 0 }},
		{"temporal_opa_tokens_refused", map[string]string{"code": "certificate_binding"}, func(n float64) bool { return n == 1 }},
	} {
		var n float64
		var sel []string
		for k, v := range m.labels {
			sel = append(sel, fmt.Sprintf("%s=%q", k, v))
		}
		slices.Sort(sel)
		series := m.name + "{" + strings.Join(sel, ",") + "}"
		testutil.Eventually(t, 10*time.Second, 250*time.Millisecond, series, func() bool {
			n = scrape(t, metricsURL, m.name, m.labels)
			return m.want(n)
		})
		t.Logf("%s %v", series, n)
	}

	// The decision log: the certificate's identity in custom.tls, the role
	// rule that granted write.
	fingerprint := workerCert.fingerprint()
	var event map[string]any
	testutil.Eventually(t, 15*time.Second, 200*time.Millisecond, "a decision-log event of the worker's certificate", func() bool {
		col.mu.Lock()
		defer col.mu.Unlock()
		for _, ev := range col.events {
			custom, _ := ev["custom"].(map[string]any)
			tlsID, _ := custom["tls"].(map[string]any)
			if custom["subject"] == mtlsWorkerID && custom["api"] == "StartWorkflowExecution" && custom["namespace"] == "payments" &&
				tlsID["spiffe_id"] == mtlsWorkerID && tlsID["fingerprint_sha256"] == fingerprint {
				event = ev
				return true
			}
		}
		return false
	})
	checked++
	custom := event["custom"].(map[string]any)
	if roles, _ := custom["granted_roles"].([]any); len(roles) != 1 || roles[0].(map[string]any)["role"] != "write" || roles[0].(map[string]any)["namespace"] != "payments" {
		t.Errorf("custom.granted_roles %v, want write on payments", custom["granted_roles"])
	}
	if claims, _ := event["input"].(map[string]any)["claims"].(map[string]any); claims["auth_type"] != "tls" {
		t.Errorf("input.claims.auth_type %v, want tls", claims["auth_type"])
	}

	// A denied call's event names the caller the reason does not: the
	// certificate's SPIFFE ID, with no role granted on billing.
	testutil.Eventually(t, 15*time.Second, 200*time.Millisecond, "the decision-log event of the denial in billing", func() bool {
		col.mu.Lock()
		defer col.mu.Unlock()
		for _, ev := range col.events {
			custom, _ := ev["custom"].(map[string]any)
			tlsID, _ := custom["tls"].(map[string]any)
			result, _ := ev["result"].(map[string]any)
			if custom["api"] == "StartWorkflowExecution" && custom["namespace"] == "billing" && custom["subject"] == mtlsWorkerID &&
				tlsID["spiffe_id"] == mtlsWorkerID && result["allow"] == false && custom["granted_roles"] == nil {
				return true
			}
		}
		return false
	})
	checked++

	stopWorker()
	procs.stop("temporal-opa", time.Minute)

	// The one token refused is the bound token with another certificate:
	// no call of the certificate-only clients was.
	if n := strings.Count(log.since(0), "token refused ("); n != 1 {
		t.Errorf("the server refused %d tokens, want 1 (the bound token with another certificate)", n)
	}

	// No private key anywhere: not the server's log, not the events.
	col.mu.Lock()
	events := col.raw.String()
	nEvents := len(col.events)
	col.mu.Unlock()
	serverOut := log.since(0)
	for _, c := range []*issuedCert{serverCert, workerCert, batchCert, operatorCert, impostorCert} {
		secret := c.keyBody()
		for name, text := range map[string]string{"server log": serverOut, "decision-log events": events} {
			if strings.Contains(text, secret) || strings.Contains(text, "PRIVATE KEY") {
				t.Errorf("the %s holds private key material (key of %s)", name, c.leaf.Subject.CommonName)
			}
		}
	}
	t.Logf("%d calls checked; %d decision-log events; test took %s (server start %s)",
		checked, nEvents, time.Since(began).Round(time.Millisecond), ready.Round(time.Millisecond))
}

// issuedCert is a certificate a testCA issued, with its key.
type issuedCert struct {
	leaf    *x509.Certificate
	pair    tls.Certificate
	certPEM []byte
	keyPEM  []byte // PKCS #8, "PRIVATE KEY"
	x5t     string // RFC 8705 thumbprint: base64url SHA-256 of the DER
}

// issue signs tmpl (subject, SANs, extended key usage: client auth when
// unset) for a new P-256 key, valid for a day.
func (ca *testCA) issue(t *testing.T, tmpl *x509.Certificate) *issuedCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	if len(tmpl.ExtKeyUsage) == 0 {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return &issuedCert{
		leaf:    leaf,
		pair:    tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		x5t:     base64.RawURLEncoding.EncodeToString(sum[:]),
	}
}

// fingerprint is the certificate's SHA-256 in lowercase hex.
func (c *issuedCert) fingerprint() string {
	sum := sha256.Sum256(c.leaf.Raw)
	return hex.EncodeToString(sum[:])
}

// keyBody is the first base64 line of the private key's PEM: what would show
// if the key leaked into a log.
func (c *issuedCert) keyBody() string {
	lines := strings.Split(string(c.keyPEM), "\n")
	return lines[1]
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
