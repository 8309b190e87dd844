package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/temporal-opa/temporal-opa/server/internal/devkey"
	"github.com/temporal-opa/temporal-opa/server/internal/devserver"
	"github.com/temporal-opa/temporal-opa/server/internal/testutil"
)

// browserDir holds the browser scripts (Playwright driving Debian's chromium,
// and an oidc-provider IdP) and, after `make browser-deps`, their node_modules.
func browserDir(t *testing.T) string {
	return repoPath(t, "server/internal/e2e/testdata/browser")
}

// needBrowser skips the test when the browser or the Node packages are not
// installed: `make browser-deps` (part of `make test`) installs them with apt
// and npm, and says so when it cannot.
func needBrowser(t *testing.T) string {
	t.Helper()
	dir := browserDir(t)
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("browser test skipped: %s is not installed (`make browser-deps` installs Debian's chromium with apt-get; it could not here)", chromium)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("browser test skipped: node is not installed (Node.js 20 or later runs the Playwright scripts)")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		t.Skipf("browser test skipped: %s/node_modules is missing (`make browser-deps` runs npm ci there; it could not here)", dir)
	}
	return dir
}

// browserOut is where a browser script writes its screenshots (one per step)
// and report, under $TEMPORAL_OPA_BROWSER_OUT (default $TMPDIR/temporal-opa-browser).
// It is removed when the test passes, unless TEMPORAL_OPA_BROWSER_KEEP is set,
// and kept and named in the log when it fails.
func browserOut(t *testing.T) string {
	t.Helper()
	base := os.Getenv("TEMPORAL_OPA_BROWSER_OUT")
	if base == "" {
		base = filepath.Join(os.TempDir(), "temporal-opa-browser")
	}
	dir := filepath.Join(base, fmt.Sprintf("%s-%s", t.Name(), time.Now().Format("20060102-150405")))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("TEMPORAL_OPA_BROWSER_KEEP") != "" {
			t.Logf("screenshots, page HTML and API responses of the browser steps: %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return dir
}

// runScript runs `node script` in the browser directory with env and fails the
// test, with the script's output, when it fails.
func runScript(t *testing.T, ctx context.Context, script string, env map[string]string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Dir = browserDir(t)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("node %s (%s):\n%s", script, time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("node %s: %v", script, err)
	}
}

// The dev UI acts as its dev identity, through the claim mapper and the policy:
// with --ui-permissions default:read it lists default's workflows, and the
// cluster API GetClusterInfo and a terminate are denied with the policy's reason.
// No browser needed: these are the HTTP calls the UI makes.
func TestWebUIDevIdentityIsAuthorized(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	s, err := devserver.Start(ctx, devserver.Options{
		Namespaces: []string{"default"}, Key: srv.Key(),
		UI: &devserver.UIOptions{Permissions: []string{"default:read"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	if s.UIIdentity() == nil || s.UIIdentity().Subject() != devserver.UISubject {
		t.Fatalf("UI identity %v, want subject %s", s.UIIdentity(), devserver.UISubject)
	}
	writer := dialAt(t, s.FrontendAddr(), "default", newTokens(s.Key(), "default:read", "default:write"))
	id := randomName("ui-idle")
	_, err = writer.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: randomName("idle")}, Greet, "x")
	wantOK(t, "start", err)
	// Visibility is updated after the start returns: wait until the writer
	// lists the workflow, so that the UI's list below can only miss it for
	// a reason of its own.
	testutil.Eventually(t, 30*time.Second, 20*time.Millisecond, "the started workflow in the visibility store", func() bool {
		resp, err := writer.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default", Query: "WorkflowId = '" + id + "'"})
		return err == nil && len(resp.GetExecutions()) == 1
	})

	for _, tc := range []struct {
		name, method, path string
		wantStatus         int
		want               string
	}{
		{"list workflows", http.MethodGet, "/api/v1/namespaces/default/workflows", 200, id},
		{"cluster info needs temporal-system", http.MethodGet, "/api/v1/cluster-info", 403,
			"GetClusterInfo is a cluster API and requires read on temporal-system"},
		{"terminate needs write", http.MethodPost, "/api/v1/namespaces/default/workflows/" + id + "/terminate", 403,
			`TerminateWorkflowExecution in namespace \"default\" requires write; caller has read`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(ctx, tc.method, s.UIURL()+tc.path, strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if tc.method != http.MethodGet {
				// The UI sends the CSRF cookie's value back; do the same.
				tok := csrfToken(t, ctx, s.UIURL())
				req.Header.Set("X-CSRF-Token", tok)
				req.AddCookie(&http.Cookie{Name: "_csrf", Value: tok})
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus || !strings.Contains(string(body), tc.want) {
				t.Errorf("%s %s: %d %s\nwant %d and %q in the body", tc.method, tc.path, resp.StatusCode, body, tc.wantStatus, tc.want)
			}
		})
	}
}

// csrfToken gets the UI server's CSRF cookie, as the UI's first page load does.
func csrfToken(t *testing.T, ctx context.Context, ui string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ui+"/api/v1/settings", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "_csrf" {
			return c.Value
		}
	}
	t.Fatal("the UI server set no _csrf cookie")
	return ""
}

// Dev mode in a real browser: the UI loads, lists the namespaces, shows a
// workflow an SDK client ran and its detail page, with no failed API call.
func TestWebUIDevModeInBrowser(t *testing.T) {
	needBrowser(t)
	out := browserOut(t)
	ctx := ctxFor(t, 3*time.Minute)
	s, err := devserver.Start(ctx, devserver.Options{
		Namespaces: []string{"default", "other"}, Key: srv.Key(),
		UI: &devserver.UIOptions{},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })

	c := dialAt(t, s.FrontendAddr(), "default", newTokens(s.Key(), "default:read", "default:write"))
	tq := runWorker(t, c)
	id := randomName("ui-dev")
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: tq}, Greet, "browser")
	wantOK(t, "start", err)
	wantOK(t, "result", run.Get(ctx, nil))

	runScript(t, ctx, "dev.mjs", map[string]string{
		"UI_URL": s.UIURL(), "WORKFLOW_ID": id, "WORKFLOW_TYPE": "Greet", "NAMESPACES": "default,other", "OUT_DIR": out,
	})
}

// A namespace user (the dev UI with --ui-permissions default:read) in a real
// browser: sent to the login page by the default policy, working in default
// with the ui-friendly-reads bundle.
func TestWebUINamespaceUserInBrowser(t *testing.T) {
	needBrowser(t)
	for _, bundle := range []string{"none", "ui-friendly-reads"} {
		t.Run(bundle, func(t *testing.T) {
			out := browserOut(t)
			ctx := ctxFor(t, 2*time.Minute)
			o := devserver.Options{Namespaces: []string{"default"}, Key: srv.Key(),
				UI: &devserver.UIOptions{Permissions: []string{"default:read"}}}
			if bundle != "none" {
				o.Policy = []string{repoPath(t, "bundles/"+bundle)}
			}
			s, err := devserver.Start(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Stop() })
			c := dialAt(t, s.FrontendAddr(), "default", newTokens(s.Key(), "default:read", "default:write"))
			id := randomName("ui-reader")
			_, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: randomName("idle")}, Greet, "x")
			wantOK(t, "start", err)
			runScript(t, ctx, "reader.mjs", map[string]string{"UI_URL": s.UIURL(), "WORKFLOW_ID": id, "BUNDLE": bundle, "OUT_DIR": out})
		})
	}
}

// idp runs idp.mjs (oidc-provider) and returns its issuer.
func startIdP(t *testing.T, ctx context.Context, redirect string, users map[string][]string) string {
	t.Helper()
	u, _ := json.Marshal(users)
	cmd := exec.Command("node", "idp.mjs")
	cmd.Dir = browserDir(t)
	cmd.Env = append(os.Environ(), "REDIRECT_URI="+redirect, "USERS="+string(u))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if iss, ok := strings.CutPrefix(sc.Text(), "ISSUER "); ok {
				lines <- iss
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case iss := <-lines:
		return iss
	case <-ctx.Done():
		t.Fatalf("idp.mjs did not start: %v; stderr:\n%s", ctx.Err(), stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("idp.mjs printed no ISSUER line in 30s; stderr:\n%s", stderr.String())
	}
	return ""
}

// OIDC login in a real browser against start-dev --authz (the IdP's issuer) and
// --ui-config (ui-server's OIDC settings), with the ui-friendly-reads bundle
// that namespace users need: each user acts with their own access token.
func TestWebUIOIDCInBrowser(t *testing.T) {
	needBrowser(t)
	out := browserOut(t)
	ctx := ctxFor(t, 4*time.Minute)

	uiPort := testutil.FreePort(t, "127.0.0.1")
	ui := "http://localhost:" + strconv.Itoa(uiPort)
	issuer := startIdP(t, ctx, ui+"/auth/sso/callback", map[string][]string{
		"reader": {"default:read"},
		"writer": {"default:read", "default:write"},
		"other":  {"other:read", "other:write"},
	})
	files := testutil.WriteFiles(t, map[string]string{
		"authz.yaml": fmt.Sprintf("jwt:\n  issuer: %s\n  audiences: [temporal]\npolicy:\n  bundle: %s\n",
			issuer, repoPath(t, "bundles/ui-friendly-reads")),
		"ui.yaml": fmt.Sprintf(`auth:
  enabled: true
  providers:
    - label: test IdP
      type: oidc
      providerUrl: %s
      clientId: temporal-ui
      clientSecret: temporal-ui-secret
      callbackUrl: %s/auth/sso/callback
      scopes: [openid, profile, email, offline_access]
`, issuer, ui),
	})
	s, err := devserver.Start(ctx, devserver.Options{
		Namespaces: []string{"default", "other"}, Key: srv.Key(),
		AuthzFile: filepath.Join(files, "authz.yaml"),
		UI:        &devserver.UIOptions{IP: "127.0.0.1", Port: uiPort, ConfigFile: filepath.Join(files, "ui.yaml")},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	if s.UIIdentity() != nil {
		t.Fatal("the OIDC UI has a dev identity; it must inject nothing")
	}

	// Workflows started with dev-key tokens: the dev key stays trusted next to the IdP.
	start := func(ns string) string {
		c := dialAt(t, s.FrontendAddr(), ns, newTokens(s.Key(), ns+":read", ns+":write"))
		id := randomName("ui-oidc-" + ns)
		_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: randomName("idle")}, Greet, "x")
		wantOK(t, "start in "+ns, err)
		return id
	}
	id, otherID := start("default"), start("other")

	runScript(t, ctx, "oidc.mjs", map[string]string{
		"UI_URL": ui, "WORKFLOW_ID": id, "OTHER_WORKFLOW_ID": otherID, "OUT_DIR": out,
	})

	// The writer's terminate reached the server.
	c := dialAt(t, s.FrontendAddr(), "default", newTokens(s.Key(), "default:read"))
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	wantOK(t, "describe", err)
	if st := desc.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED {
		t.Errorf("status %s after the writer's terminate, want TERMINATED", st)
	}
}

// start-dev --authz with the identity provider's settings trusts its tokens and
// the dev key's, each verified only by its own keys.
func TestStartDevAuthzKeepsDevKey(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	idp, err := devkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := idp.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	const issuer = "https://idp.example/realms/temporal"
	files := testutil.WriteFiles(t, map[string]string{
		"jwks.json":  string(jwks),
		"authz.yaml": "jwt:\n  issuer: " + issuer + "\n  skip_discovery: true\n  jwks_files: [JWKS]\n",
	})
	authz := filepath.Join(files, "authz.yaml")
	data, _ := os.ReadFile(authz)
	if err := os.WriteFile(authz, []byte(strings.Replace(string(data), "JWKS", filepath.Join(files, "jwks.json"), 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := devserver.Start(ctx, devserver.Options{Namespaces: []string{"default"}, Key: srv.Key(), AuthzFile: authz})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	for _, tc := range []struct {
		name   string
		key    *devkey.Key
		issuer string
		ok     bool
	}{
		{"identity provider's token", idp, issuer, true},
		{"dev key's token", s.Key(), "", true},
		{"other key claiming the dev issuer", idp, devkey.Issuer, false},
		{"dev key claiming the provider's issuer", s.Key(), issuer, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := tc.key.Mint(devkey.Claims{Subject: "u", Permissions: []string{"default:read"}, Issuer: tc.issuer, TTL: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			c := dialAt(t, s.FrontendAddr(), "default", rawToken("Bearer "+tok))
			_, err = c.WorkflowService().ListWorkflowExecutions(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default"})
			if tc.ok {
				wantOK(t, "ListWorkflowExecutions", err)
			} else {
				wantDenied(t, "ListWorkflowExecutions", err)
			}
		})
	}
}
