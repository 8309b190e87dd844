package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nexus-rpc/sdk-go/nexus"
	nexuspb "go.temporal.io/api/nexus/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/temporal-opa/temporal-opa/server/internal/devca"
	"github.com/temporal-opa/temporal-opa/server/internal/devkey"
	"github.com/temporal-opa/temporal-opa/server/internal/devserver"
	"github.com/temporal-opa/temporal-opa/server/internal/testutil"
)

// TestStartDevTLS runs "start-dev --tls" as a process of its own and checks,
// from the files it leaves in its state directory (the dev CA, the dev-user
// certificate, the signing key):
//
//   - a client with the dev-user certificate completes the handshake: the
//     health check and GetSystemInfo answer; with a token too, the token's
//     permissions apply (a worker and a starter run a workflow, which also
//     takes the services' internode mTLS and the system worker's path);
//   - a client without a certificate, or with one of another CA, is refused
//     by the TLS handshake;
//   - a Nexus operation completes (the history service calls the
//     internal-frontend's HTTP port over mTLS);
//   - the HTTP API takes the same certificates;
//   - the Web UI, which calls the frontend with a certificate of its own,
//     still lists namespaces.
func TestStartDevTLS(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	state := t.TempDir()
	ports := testutil.FreePorts(t, "127.0.0.1", 3)
	grpcPort, httpPort, uiPort := ports[0], ports[1], ports[2]
	startDevChild(t, "--tls", "--port", strconv.Itoa(grpcPort), "--http-port", strconv.Itoa(httpPort),
		"--ui-port", strconv.Itoa(uiPort), "--status-addr", "-1", "--state-dir", state, "--log-level", "error")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(grpcPort))

	caPEM, err := os.ReadFile(filepath.Join(state, devca.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("dev CA file holds no certificate")
	}
	user, err := tls.LoadX509KeyPair(filepath.Join(state, devserver.UserCertFile), filepath.Join(state, devserver.UserKeyFile))
	if err != nil {
		t.Fatalf("dev-user certificate: %v", err)
	}
	key, err := devkey.Load(filepath.Join(state, devkey.KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	withCert := &tls.Config{Certificates: []tls.Certificate{user}, RootCAs: roots}

	t.Run("certificate", func(t *testing.T) {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(withCert)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "temporal.api.workflowservice.v1.WorkflowService"})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health check with the dev-user certificate: %v, %v", resp.GetStatus(), err)
		}
		_, err = workflowservice.NewWorkflowServiceClient(conn).GetSystemInfo(ctx, &workflowservice.GetSystemInfoRequest{})
		wantOK(t, "GetSystemInfo with the dev-user certificate and no token", err)
	})

	dialTLS := func(t *testing.T, hp headersProvider) client.Client {
		c, err := client.NewLazyClient(client.Options{HostPort: addr, Namespace: "default", HeadersProvider: hp,
			Logger: quietLogger{}, ConnectionOptions: client.ConnectionOptions{TLS: withCert}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}

	t.Run("certificate and token", func(t *testing.T) {
		reader := dialTLS(t, newTokens(key, "default:read"))
		_, err := reader.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
		wantOK(t, "DescribeNamespace with the certificate and a default:read token", err)
		_, err = reader.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("tls-denied"), TaskQueue: "idle"}, Greet, "x")
		wantDenied(t, "StartWorkflowExecution with the certificate and a default:read token", err)

		tq := runWorker(t, dialTLS(t, newTokens(key, "default:read", "default:write")))
		run, err := dialTLS(t, newTokens(key, "default:read", "default:write")).ExecuteWorkflow(ctx,
			client.StartWorkflowOptions{ID: randomName("tls-greet"), TaskQueue: tq}, Greet, "TLS")
		wantOK(t, "StartWorkflowExecution with the certificate and a write token", err)
		var got string
		wantOK(t, "workflow result", run.Get(ctx, &got))
		if got != "Hello, TLS!" {
			t.Errorf("result %q", got)
		}
	})

	// Temporal serves the internal-frontend's HTTP port (where the history
	// service sends Nexus requests) with the frontend's TLS settings, and
	// calls it with the internode ones: the operation completes only if both
	// are mTLS with the dev CA (devserver.devTLS.apply).
	t.Run("Nexus through the internal-frontend", func(t *testing.T) {
		admin := dialTLS(t, newTokens(key, "temporal-system:admin"))
		endpoint, handlerQueue := randomName("tls-nexus-ep"), randomName("tls-nexus-handler")
		_, err := admin.OperatorService().CreateNexusEndpoint(ctx, &operatorservice.CreateNexusEndpointRequest{Spec: &nexuspb.EndpointSpec{
			Name: endpoint,
			Target: &nexuspb.EndpointTarget{Variant: &nexuspb.EndpointTarget_Worker_{Worker: &nexuspb.EndpointTarget_Worker{
				Namespace: "default", TaskQueue: handlerQueue,
			}}},
		}})
		wantOK(t, "CreateNexusEndpoint", err)
		c := dialTLS(t, newTokens(key, "default:read", "default:write"))
		svc := nexus.NewService("e2e")
		if err := svc.Register(echoOperation); err != nil {
			t.Fatal(err)
		}
		handler := worker.New(c, handlerQueue, worker.Options{})
		handler.RegisterNexusService(svc)
		callerQueue := randomName("tls-nexus-caller")
		caller := worker.New(c, callerQueue, worker.Options{})
		caller.RegisterWorkflow(CallEcho)
		for _, w := range []worker.Worker{handler, caller} {
			if err := w.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(w.Stop)
		}
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("tls-nexus"), TaskQueue: callerQueue}, CallEcho, endpoint, "tls")
		wantOK(t, "StartWorkflowExecution", err)
		var got string
		wantOK(t, "workflow result", run.Get(ctx, &got))
		if got != "echo: tls" {
			t.Errorf("result %q, want %q", got, "echo: tls")
		}
	})

	t.Run("refused at the TLS layer", func(t *testing.T) {
		if err := handshake(addr, withCert); err != nil {
			t.Fatalf("the judge: the dev-user certificate's handshake failed: %v", err)
		}
		otherCA, _, err := devca.LoadOrCreate(filepath.Join(t.TempDir(), "other"))
		if err != nil {
			t.Fatal(err)
		}
		// The dev-user certificate's common name: only the issuer differs.
		stranger, err := otherCA.Issue(devca.Request{CommonName: devserver.UserCertCN})
		if err != nil {
			t.Fatal(err)
		}
		strangerCert, err := stranger.TLS()
		if err != nil {
			t.Fatal(err)
		}
		for name, cfg := range map[string]*tls.Config{
			"no certificate":              {RootCAs: roots},
			"a certificate of another CA": {RootCAs: roots, Certificates: []tls.Certificate{strangerCert}},
		} {
			err := handshake(addr, cfg)
			if err == nil {
				t.Errorf("%s: the handshake succeeded", name)
				continue
			}
			t.Logf("%s: %v", name, err)
			// Temporal's frontend hands the verified chain to the claim mapper;
			// a refused chain never reaches it: the alert is the TLS stack's.
			if !strings.Contains(err.Error(), "tls:") {
				t.Errorf("%s: %v, want a TLS alert", name, err)
			}
		}
	})

	t.Run("HTTP API", func(t *testing.T) {
		tok, err := key.Mint(devkey.Claims{Subject: "tls-http", Permissions: []string{"default:read"}})
		if err != nil {
			t.Fatal(err)
		}
		url := "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort)) + "/api/v1/namespaces/default/workflows"
		get := func(cfg *tls.Config) (int, error) {
			req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 20 * time.Second}
			resp, err := c.Do(req)
			if err != nil {
				return 0, err
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, resp.Body)
			return resp.StatusCode, nil
		}
		if code, err := get(withCert); err != nil || code != http.StatusOK {
			t.Errorf("HTTP API with the certificate and a default:read token: %d, %v; want 200", code, err)
		}
		if code, err := get(&tls.Config{RootCAs: roots}); err == nil {
			t.Errorf("HTTP API without a certificate: HTTP %d, want a refused handshake", code)
		}
	})

	t.Run("Web UI", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+net.JoinHostPort("127.0.0.1", strconv.Itoa(uiPort))+"/api/v1/namespaces", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"default"`) {
			t.Errorf("UI namespace list: HTTP %d %.300s; want 200 listing default", resp.StatusCode, body)
		}
	})
}

// handshake completes a TLS handshake with addr and reads once: with TLS
// 1.3 a server refusing the client's certificate says so after the client's
// handshake has finished, in an alert the first read returns.
func handshake(addr string, cfg *tls.Config) error {
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"h2"}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	// An HTTP/2 preface makes the server answer if it accepted us.
	if _, err := io.WriteString(conn, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"); err != nil {
		return err
	}
	buf := make([]byte, 1)
	if _, err = conn.Read(buf); err == nil {
		return nil // the server's first frame: accepted
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil // no alert: accepted
	}
	return err
}
