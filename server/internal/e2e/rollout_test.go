package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/temporal-opa/temporal-opa/server/internal/devserver"
	"github.com/temporal-opa/temporal-opa/server/internal/testutil"
	"github.com/temporal-opa/temporal-opa/server/internal/wiring"
)

// lockedBuffer collects console decision-log events.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) events(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	return decodeLines(t, l.b.Bytes())
}

// scrape returns the Prometheus samples of name whose labels include want,
// summed.
func scrape(t *testing.T, url, name string, want map[string]string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	sum := 0.0
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		labels, value, _ := strings.Cut(line[len(name)+1:], "} ")
		ok := true
		for k, v := range want {
			if !strings.Contains(","+labels+",", ","+k+`="`+v+`",`) {
				ok = false
			}
		}
		if ok {
			f, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("sample %q: %v", line, err)
			}
			sum += f
		}
	}
	return sum
}

// Dry-run with a denying bundle: the real SDK calls succeed, and the decision
// log and the metrics scraped from start-dev --metrics-port say deny, once per
// call made.
func TestDryRunRecordsDeniesAndMetrics(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	events := &lockedBuffer{}
	port := testutil.FreePort(t, "127.0.0.1")
	s, err := devserver.Start(ctx, devserver.Options{Namespaces: []string{"default"}, Key: srv.Key(), DryRun: true,
		MetricsPort: port, DecisionLog: events,
		Policy: []string{testutil.WriteFiles(t, map[string]string{
			".manifest":                   `{"roots": ["temporal/custom"]}`,
			"temporal/custom/freeze.rego": "package temporal.custom\n\ndeny contains \"the freeze denies listing\" if input.target.method == \"ListWorkflowExecutions\"\n",
		})}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if s.Report().Warning == "" || !strings.Contains(s.Report().Warning, "DRY RUN") {
		t.Fatalf("status warning %q", s.Report().Warning)
	}
	reader := dialAt(t, s.FrontendAddr(), "default", newTokens(s.Key(), "default:read"))
	const lists = 3
	for range lists {
		_, err := reader.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default"})
		wantOK(t, "ListWorkflowExecutions in dry run (the policy denies it)", err)
	}
	// Authentication is not the policy's: a bad token is still refused.
	_, err = dialAt(t, s.FrontendAddr(), "default", rawToken("Bearer not-a-jwt")).ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default"})
	wantDenied(t, "a bad token in dry run", err)

	metricsURL := s.MetricsURL()
	want := map[string]string{"operation": "ListWorkflowExecutions", "decision": "deny", "mode": "dry_run"}
	if got := scrape(t, metricsURL, "temporal_opa_decisions_total", want); got != lists {
		t.Fatalf("temporal_opa_decisions_total%v = %v, want %d", want, got, lists)
	}
	if got := scrape(t, metricsURL, "temporal_opa_tokens_refused_total", map[string]string{"code": "malformed_token"}); got != 1 {
		t.Fatalf("temporal_opa_tokens_refused_total{code=malformed_token} = %v, want 1", got)
	}
	if got := scrape(t, metricsURL, "temporal_opa_jwks_fetches_total", map[string]string{"result": "ok"}); got < 1 {
		t.Fatalf("temporal_opa_jwks_fetches_total{result=ok} = %v", got)
	}
	if got := scrape(t, metricsURL, "temporal_opa_bundle_loaded_total", map[string]string{"bundle": "policy"}); got != 1 {
		t.Fatalf("temporal_opa_bundle_loaded_total{bundle=policy} = %v, want 1", got)
	}
	// Temporal's own series are on the same endpoint.
	if got := scrape(t, metricsURL, "service_authorization_latency_milliseconds_count", nil); got == 0 {
		t.Fatal("Temporal's service_authorization_latency is not on the endpoint")
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	denies := 0
	for _, ev := range events.events(t) {
		c := ev["custom"].(map[string]any)
		if c["api"] == "ListWorkflowExecutions" && c["subject"] == "e2e-default:read" {
			if c["mode"] != "dry_run" || ev["result"].(map[string]any)["allow"] != false || !strings.HasPrefix(ev["result"].(map[string]any)["reason"].(string), "the freeze denies listing (decision ") {
				t.Fatalf("dry-run event: %v", ev)
			}
			denies++
		}
	}
	if denies != lists {
		t.Fatalf("%d dry-run deny events, want %d", denies, lists)
	}
}

// A shadow policy that denies terminate beside the enforced default: the calls
// succeed, each terminate is counted and logged as a disagreement carrying the
// enforced decision's id, and hot-reloading the shadow restarts its counts.
func TestShadowPolicyDisagreements(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	events := &lockedBuffer{}
	shadowDir := testutil.WriteFiles(t, map[string]string{
		".manifest":                 `{"roots": ["temporal/custom"], "revision": "candidate-1"}`,
		"temporal/custom/safe.rego": "package temporal.custom\n\ndeny contains \"terminate is reserved to admins\" if input.target.method == \"TerminateWorkflowExecution\"\n",
	})
	s, err := devserver.Start(ctx, devserver.Options{Namespaces: []string{"default"}, Key: srv.Key(), ShadowPolicy: shadowDir, DecisionLog: events})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	writer := dialAt(t, s.FrontendAddr(), "default", newTokens(s.Key(), "default:read", "default:write"))
	const terminates = 2
	for i := range terminates {
		id := randomName(fmt.Sprintf("shadowed-%d", i))
		_, err := writer.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: randomName("idle")}, Greet, "x")
		wantOK(t, "start", err)
		wantOK(t, "terminate (the shadow would deny it)", writer.TerminateWorkflow(ctx, id, "", "test"))
	}
	var report wiring.StatusReport
	testutil.Eventually(t, 30*time.Second, 20*time.Millisecond, "the shadow to count the terminations", func() bool {
		report = s.Report()
		return report.Shadow != nil && report.Shadow.Counters.AllowToDeny >= terminates
	})
	sc := report.Shadow.Counters
	if sc.AllowToDeny != terminates || sc.DenyToAllow != 0 || report.Shadow.Policy.Revisions["shadow"] != "candidate-1" || !report.Shadow.Source.OK {
		t.Fatalf("shadow status %+v", report.Shadow)
	}

	// Hot reload of the shadow: a new revision, counts from zero.
	if err := os.WriteFile(filepath.Join(shadowDir, ".manifest"), []byte(`{"roots": ["temporal/custom"], "revision": "candidate-2"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, 20*time.Millisecond, "the shadow bundle's reload (candidate-2)", func() bool {
		return s.Report().Shadow.Policy.Revisions["shadow"] == "candidate-2"
	})
	if c := s.Report().Shadow.Counters; c.AllowToDeny != 0 {
		t.Fatalf("counts after the reload: %+v", c)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	byID := map[string]map[string]any{}
	var shadowEvents []map[string]any
	for _, ev := range events.events(t) {
		byID[ev["decision_id"].(string)] = ev
		if ev["custom"].(map[string]any)["mode"] == "shadow" {
			shadowEvents = append(shadowEvents, ev)
		}
	}
	if len(shadowEvents) != terminates {
		t.Fatalf("%d shadow events, want %d", len(shadowEvents), terminates)
	}
	for _, ev := range shadowEvents {
		sh := ev["custom"].(map[string]any)["shadow"].(map[string]any)
		enforced := byID[sh["enforced_decision_id"].(string)]
		if enforced == nil || enforced["custom"].(map[string]any)["api"] != "TerminateWorkflowExecution" ||
			enforced["result"].(map[string]any)["allow"] != true || ev["result"].(map[string]any)["allow"] != false ||
			ev["bundles"].(map[string]any)["shadow"].(map[string]any)["revision"] != "candidate-1" {
			b, _ := json.Marshal(ev)
			t.Fatalf("shadow event %s; enforced %v", b, enforced)
		}
	}
}
