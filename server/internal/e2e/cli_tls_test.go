package e2e

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/temporal-opa/temporal-opa/server/internal/devca"
	"github.com/temporal-opa/temporal-opa/server/internal/devserver"
	"github.com/temporal-opa/temporal-opa/server/internal/testutil"
)

// temporalCLI is the temporal CLI binary (make cli-deps builds it into
// .ci/bin; make test passes its path as TEMPORAL_CLI).
func temporalCLI(t *testing.T) string {
	t.Helper()
	path := os.Getenv("TEMPORAL_CLI")
	if path == "" {
		t.Skip("TEMPORAL_CLI is not set: run the end-to-end tests with make test, or make cli-deps and TEMPORAL_CLI=$PWD/.ci/bin/temporal")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("TEMPORAL_CLI=%s: %v (make cli-deps builds it)", path, err)
	}
	return path
}

// TestTemporalCLIWithClientCertificates drives the real temporal CLI against
// `start-dev --tls` with the certificates of the dev CA, and no token: the
// certificate is the caller's identity, and a role rule on its SPIFFE ID
// grants it write in default. The CLI starts and lists a workflow with it; a
// certificate no rule grants anything is denied by the policy; a client
// without a certificate is refused by the TLS handshake.
func TestTemporalCLIWithClientCertificates(t *testing.T) {
	cli := temporalCLI(t)
	ctx := ctxFor(t, 3*time.Minute)
	state := t.TempDir()
	bundle := testutil.WriteFiles(t, map[string]string{
		".manifest": `{"roots": ["temporal/custom/svids"], "revision": "svids-1"}`,
		"temporal/custom/svids/svids.rego": `package temporal.custom.svids

namespace_roles["default"] contains "write" if input.claims.tls.spiffe_id == "spiffe://dev.example/ns/default/sa/cli"
`,
	})
	ports := testutil.FreePorts(t, "127.0.0.1", 3)
	startDevChild(t, "--tls", "--port", strconv.Itoa(ports[0]), "--http-port", strconv.Itoa(ports[1]), "--headless",
		"--status-addr", "-1", "--state-dir", state, "--log-level", "error", "--policy", bundle)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))

	ca, err := devca.Load(state)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Issue(devca.Request{CommonName: "cli", SPIFFEID: "spiffe://dev.example/ns/default/sa/cli", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cli.pem"), filepath.Join(dir, "cli-key.pem")
	if err := devca.WritePair(certFile, keyFile, pair); err != nil {
		t.Fatal(err)
	}
	run := func(cert, key string, args ...string) (string, error) {
		full := append([]string{}, args...)
		full = append(full, "--address", addr, "--tls-ca-path", ca.CertPath(), "--command-timeout", "20s")
		if cert != "" {
			full = append(full, "--tls-cert-path", cert, "--tls-key-path", key)
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(cctx, cli, full...)
		cmd.Env = append(os.Environ(), "TEMPORAL_CONFIG_FILE="+filepath.Join(dir, "no-config.toml"), "HOME="+dir)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := run(certFile, keyFile, "workflow", "start", "--namespace", "default", "--task-queue", "cli-q", "--type", "Hello", "--workflow-id", "cli-wf")
	if err != nil {
		t.Fatalf("temporal workflow start with the granted certificate: %v\n%s", err, out)
	}
	out, err = run(certFile, keyFile, "workflow", "describe", "--namespace", "default", "--workflow-id", "cli-wf")
	if err != nil || !strings.Contains(out, "cli-wf") {
		t.Fatalf("temporal workflow describe with the granted certificate: %v\n%s", err, out)
	}

	// The dev-user certificate start-dev issues: a verified identity with no rule granting it anything.
	userCert, userKey := filepath.Join(state, devserver.UserCertFile), filepath.Join(state, devserver.UserKeyFile)
	out, err = run(userCert, userKey, "workflow", "start", "--namespace", "default", "--task-queue", "cli-q", "--type", "Hello", "--workflow-id", "cli-wf-2")
	if err == nil || !strings.Contains(out, "Request unauthorized") {
		t.Fatalf("temporal workflow start with a certificate no rule grants: %v\n%s", err, out)
	}

	// Refused by the handshake, before any claim mapper or policy: the CLI
	// reports a transport failure (TLS 1.3 shows the server's alert as a
	// broken connection), never the policy's PermissionDenied.
	out, err = run("", "", "workflow", "list", "--namespace", "default")
	if err == nil || strings.Contains(out, "cli-wf") || strings.Contains(out, "Request unauthorized") || !strings.Contains(out, "failed reaching server") {
		t.Fatalf("temporal workflow list without a client certificate: %v\n%s", err, out)
	}
}
