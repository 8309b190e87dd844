package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
	"github.com/temporal-opa/temporal-opa/server/internal/authzconfig"
	"github.com/temporal-opa/temporal-opa/server/internal/devkey"
	"github.com/temporal-opa/temporal-opa/server/internal/devserver"
	"github.com/temporal-opa/temporal-opa/server/internal/testutil"
	"github.com/temporal-opa/temporal-opa/server/internal/wiring"
)

const (
	frozenRules = `package temporal.custom

deny contains "starts are frozen" if input.target.method == "StartWorkflowExecution"
`
	openRules = `package temporal.custom

deny contains "terminations are frozen" if input.target.method == "TerminateWorkflowExecution"
`
	brokenRules = `package temporal.custom

deny contains "oops" if {
	input.target.method ==
`
)

func revManifest(rev string) string {
	return fmt.Sprintf(`{"roots": ["temporal/custom"], "revision": %q, "rego_version": 1}`, rev)
}

// replaceFile writes data to a temporary file beside path and renames it over
// path, as editors and deployment tools do.
func replaceFile(t *testing.T, path, data string) {
	t.Helper()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmp.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Fatal(err)
	}
}

// getStatus reads the status endpoint.
func getStatus(t *testing.T, url string) wiring.StatusReport {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	var r wiring.StatusReport
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return r
}

// waitStatus polls the status endpoint until cond holds, for at most d, and
// returns how long it took.
func waitStatus(t *testing.T, url string, d time.Duration, what string, cond func(wiring.StatusReport) bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		r := getStatus(t, url)
		if cond(r) {
			return time.Since(start)
		}
		if time.Since(start) > d {
			b, _ := json.MarshalIndent(r, "", "  ")
			t.Fatalf("%s: not seen within %s; status:\n%s", what, d, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var fileLine = regexp.MustCompile(`custom\.rego:\d+`)

// start-dev --policy DIR: the bundle is watched. A new revision written on disk
// is activated without a restart and the same client's next call sees it; a
// broken revision is rejected, the last good policy stays, and /status shows
// the error with file and line.
func TestStartDevHotReload(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	dir := testutil.WriteFiles(t, map[string]string{
		".manifest":                   revManifest("v1-frozen"),
		"temporal/custom/custom.rego": frozenRules,
	})
	rego, manifest := filepath.Join(dir, "temporal/custom/custom.rego"), filepath.Join(dir, ".manifest")
	s, err := devserver.Start(ctx, devserver.Options{Namespaces: []string{"default"}, Key: srv.Key(), Policy: []string{dir}, StatusAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	url := s.StatusURL()
	if url == "" {
		t.Fatal("no status URL")
	}

	c, err := client.NewLazyClient(client.Options{HostPort: s.FrontendAddr(), Namespace: "default",
		HeadersProvider: newTokens(s.Key(), "default:read", "default:write"), Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	start := func() error {
		_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("reload"), TaskQueue: randomName("idle")}, Greet, "x")
		return err
	}

	st := getStatus(t, url)
	if st.Policy.Revisions["policy"] != "v1-frozen" || len(st.Sources) != 1 || !st.Sources[0].OK || !st.Ready {
		t.Fatalf("status at start: %+v", st)
	}
	wantDenied(t, "StartWorkflowExecution under v1-frozen", start(), "starts are frozen")

	// A new revision: rules first, manifest last (renamed into place).
	gen := st.Policy.Generation
	written := time.Now()
	replaceFile(t, rego, openRules)
	replaceFile(t, manifest, revManifest("v2-open"))
	waitStatus(t, url, 10*time.Second, "revision v2-open active", func(r wiring.StatusReport) bool {
		return r.Policy.Revisions["policy"] == "v2-open"
	})
	latency := time.Since(written)
	t.Logf("reload latency (last write to activation seen in /status): %s", latency.Round(time.Millisecond))
	st = getStatus(t, url)
	if st.Policy.Generation <= gen || st.Sources[0].Revision != "v2-open" {
		t.Errorf("after the reload: %+v", st)
	}
	wantOK(t, "StartWorkflowExecution under v2-open (same client, no restart)", start())

	// A broken revision: rejected, the last good policy stays, the error is in status.
	replaceFile(t, rego, brokenRules)
	replaceFile(t, manifest, revManifest("v3-broken"))
	waitStatus(t, url, 10*time.Second, "broken bundle reported", func(r wiring.StatusReport) bool {
		return len(r.Sources) == 1 && r.Sources[0].Failures > 0 && fileLine.MatchString(r.Sources[0].LastError)
	})
	st = getStatus(t, url)
	if st.Policy.Revisions["policy"] != "v2-open" || st.Sources[0].OK || st.Sources[0].Revision != "v2-open" {
		t.Errorf("after the broken bundle: policy %+v, source %+v; want v2-open active and the source not OK", st.Policy, st.Sources[0])
	}
	t.Logf("rejected: %s", st.Sources[0].LastError)
	wantOK(t, "StartWorkflowExecution after the broken bundle (last good policy)", start())

	resp, err := http.Get(strings.TrimSuffix(url, "/status") + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("/healthz: %s %q", resp.Status, body)
	}

	// Stop ends the watch and the status endpoint: no goroutine left behind.
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<22)
	stacks := string(buf[:runtime.Stack(buf, true)])
	for _, leak := range []string{"policy/source.(*File).run", "wiring.ServeStatus"} {
		if strings.Contains(stacks, leak) {
			t.Errorf("a goroutine in %s is still running after Stop", leak)
		}
	}
	if _, err := http.Get(url); err == nil {
		t.Errorf("status endpoint still answers after Stop")
	}
}

// policy.require_bundle: start-up waits for every bundle of policy.opa_config
// and fails, naming the bundle and its last error, when one never activates;
// without it, start-up goes on with the embedded default and status shows the
// bundle pending.
func TestRequireBundle(t *testing.T) {
	bundles := testutil.NewBundleServer(t, "right-token", []byte("unused"))
	dir := testutil.WriteFiles(t, map[string]string{"opa.yaml": fmt.Sprintf(`services:
  bundles:
    url: %s
    credentials:
      bearer:
        token: wrong-token
bundles:
  remote:
    service: bundles
    resource: /temporal/authz.tar.gz
    polling:
      min_delay_seconds: 1
      max_delay_seconds: 2
`, bundles.URL)})
	authz := func(require string) authzconfig.File {
		path := filepath.Join(dir, "authz-"+require+".yaml")
		yml := "jwt:\n  jwks_urls: [" + srv.JWKSURL() + "]\n  issuer: " + devkey.Issuer + "\n  skip_discovery: true\n" +
			"policy:\n  opa_config: " + filepath.Join(dir, "opa.yaml") + "\n  require_bundle: " + require + "\n  require_bundle_timeout: 1500ms\n"
		if err := os.WriteFile(path, []byte(yml), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := authzconfig.Load(path, claimmapper.Config{})
		if err != nil {
			t.Fatal(err)
		}
		return *f
	}
	ctx := ctxFor(t, time.Minute)

	began := time.Now()
	a, err := wiring.NewAuth(ctx, authz("true"), nil, nil)
	if err == nil {
		_ = a.Close()
		t.Fatal("NewAuth succeeded, want a require_bundle error")
	}
	for _, want := range []string{"policy.require_bundle", "1.5s", "bundle remote (" + bundles.URL, "last error", "Unauthorized"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "wrong-token") {
		t.Errorf("error spans lines or shows the token: %q", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("NewAuth returned after %s, want about the 1.5s timeout", d)
	}

	a, err = wiring.NewAuth(ctx, authz("false"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	r := a.Report()
	if r.Ready || len(r.Sources) != 1 || r.Sources[0].Activations != 0 || len(r.Policy.Revisions) != 1 {
		t.Errorf("without require_bundle: %+v, want the embedded default alone and the bundle pending", r)
	}
}

// A bundle that replaces the default policy under its own decision path
// (policy.decision_path) starts the server, and the file source then watches it
// under the same name.
func TestCustomDecisionPathBundle(t *testing.T) {
	dir := testutil.WriteFiles(t, map[string]string{
		"bundle/.manifest": `{"roots": ["acme"], "revision": "acme-1"}`,
		"bundle/acme/authz.rego": `package acme

decision := {"allow": input.target.method == "GetSystemInfo", "reason": "acme allows only GetSystemInfo"}
`,
	})
	path := filepath.Join(dir, "authz.yaml")
	yml := "jwt:\n  jwks_urls: [" + srv.JWKSURL() + "]\n  issuer: " + devkey.Issuer + "\n  skip_discovery: true\n" +
		"policy:\n  bundle: " + filepath.Join(dir, "bundle") + "\n  decision_path: data.acme.decision\n"
	if err := os.WriteFile(path, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := authzconfig.Load(path, claimmapper.Config{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := wiring.NewAuth(ctxFor(t, time.Minute), *f, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	r := a.Report()
	if r.Policy.Revisions["policy"] != "acme-1" || len(r.Policy.Revisions) != 2 || !r.Ready {
		t.Fatalf("report %+v, want the acme bundle under the name policy (once), beside the unused default", r.Policy)
	}
	claims := &authorization.Claims{Subject: "x", System: authorization.RoleAdmin}
	for api, want := range map[string]authorization.Decision{
		"/temporal.api.workflowservice.v1.WorkflowService/GetSystemInfo":  authorization.DecisionAllow,
		"/temporal.api.workflowservice.v1.WorkflowService/ListNamespaces": authorization.DecisionDeny,
	} {
		res, err := a.Authorizer.Authorize(context.Background(), claims, &authorization.CallTarget{APIName: api})
		if err != nil || res.Decision != want {
			t.Errorf("%s: %v %v, want %v", api, res.Decision, err, want)
		}
	}
}
