package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/temporal-opa/temporal-opa/server/internal/cli"
	"github.com/temporal-opa/temporal-opa/server/internal/devserver"
	"github.com/temporal-opa/temporal-opa/server/internal/offline"
	"github.com/temporal-opa/temporal-opa/server/internal/testutil"
)

// requestBundle reads input.request (so that events carry it), denying the
// workflow type Forbidden.
var requestBundle = map[string]string{
	".manifest": `{"roots": ["temporal/custom"], "revision": "req-1", "metadata": {"name": "request-rules"}}`,
	"temporal/custom/types.rego": `package temporal.custom

deny contains "workflow type Forbidden may not be started" if {
	input.target.method == "StartWorkflowExecution"
	input.request.workflow_type.name == "Forbidden"
}
`,
}

// collector is a decision-log service: it keeps the events of OPA's gzip batches.
type collector struct {
	mu     sync.Mutex
	events []map[string]any
	raw    bytes.Buffer // every batch, decompressed
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	batch, body, err := readLogBatch(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.events = append(c.events, batch...)
	c.raw.Write(body)
	c.raw.WriteByte('\n')
	c.mu.Unlock()
}

// readLogBatch reads an upload of OPA's decision-log protocol: a gzip'd JSON
// array of events. body is the array's JSON.
func readLogBatch(r *http.Request) (batch []map[string]any, body []byte, err error) {
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		return nil, nil, err
	}
	if body, err = io.ReadAll(zr); err != nil {
		return nil, nil, err
	}
	if err := json.Unmarshal(body, &batch); err != nil {
		return nil, nil, err
	}
	return batch, body, nil
}

// TestDecisionLogsOfRealCalls: real SDK calls through start-dev --opa-config
// (a decision-log service) and --decision-log (a console file) produce one event
// per call in both sinks; the decision id of a denied call's reason is among
// them; no token, signature, bearer string, task token or payload is in any
// event; and replaying the recorded events against a bundle that denies one API
// reports exactly the recorded calls of that API.
func TestDecisionLogsOfRealCalls(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	col := &collector{}
	svc := httptest.NewServer(col)
	defer svc.Close()
	dir := t.TempDir()
	opaConfig := filepath.Join(dir, "opa.yaml")
	if err := os.WriteFile(opaConfig, []byte(fmt.Sprintf(`services:
  audit:
    url: %s
decision_logs:
  service: audit
  reporting:
    min_delay_seconds: 1
    max_delay_seconds: 2
labels:
  environment: e2e
`, svc.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	consolePath := filepath.Join(dir, "decisions.jsonl")
	console, err := os.Create(consolePath)
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close()

	s, err := devserver.Start(ctx, devserver.Options{Namespaces: []string{"default"}, Key: srv.Key(),
		Policy: []string{testutil.WriteFiles(t, requestBundle)}, OPAConfig: opaConfig, DecisionLog: console})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = s.Stop()
		}
	}()

	// Tokens of the run, to look for in the events.
	var minted []string
	var mintedMu sync.Mutex
	record := func(p *tokens) headersProvider {
		return hpFunc(func(ctx context.Context) (map[string]string, error) {
			h, err := p.GetHeaders(ctx)
			if err == nil {
				mintedMu.Lock()
				minted = append(minted, strings.TrimPrefix(h["Authorization"], "Bearer "))
				mintedMu.Unlock()
			}
			return h, err
		})
	}
	writerTokens := newTokens(s.Key(), "default:read", "default:write")
	writer := dialAt(t, s.FrontendAddr(), "default", record(writerTokens))
	reader := dialAt(t, s.FrontendAddr(), "default", record(newTokens(s.Key(), "default:read")))

	const marker = "payload-marker-7f3a9c"
	tq := runWorker(t, writer)
	run, err := writer.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("logged"), TaskQueue: tq}, Greet, marker)
	wantOK(t, "StartWorkflowExecution", err)
	var out string
	wantOK(t, "workflow result", run.Get(ctx, &out))
	const lists = 3
	for range lists {
		_, err = reader.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default"})
		wantOK(t, "ListWorkflowExecutions with read", err)
	}
	_, err = reader.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("denied"), TaskQueue: tq}, Greet, marker)
	wantDenied(t, "StartWorkflowExecution with read", err, "requires write", "(decision ")
	var pd *serviceerror.PermissionDenied
	errors.As(err, &pd)
	deniedID := pd.Reason[strings.LastIndex(pd.Reason, "(decision ")+len("(decision ") : len(pd.Reason)-1]
	_, err = writer.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("forbidden"), TaskQueue: tq}, "Forbidden", marker)
	wantDenied(t, "StartWorkflowExecution of Forbidden", err, "workflow type Forbidden may not be started")

	// Stopping flushes both sinks.
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	consoleText, err := os.ReadFile(consolePath)
	if err != nil {
		t.Fatal(err)
	}
	consoleEvents := decodeLines(t, consoleText)
	col.mu.Lock()
	uploaded, uploadedText := col.events, col.raw.String()
	col.mu.Unlock()
	if len(uploaded) == 0 || len(uploaded) != len(consoleEvents) {
		t.Fatalf("%d events uploaded, %d on the console: want the same, more than 0", len(uploaded), len(consoleEvents))
	}
	t.Logf("%d decisions logged to the service and to the console", len(uploaded))

	byID := map[string]map[string]any{}
	apis := map[string]int{}
	for _, ev := range uploaded {
		byID[ev["decision_id"].(string)] = ev
		custom := ev["custom"].(map[string]any)
		if custom["subject"] != "internal" {
			apis[custom["api"].(string)]++
		}
		if ev["labels"].(map[string]any)["environment"] != "e2e" || ev["bundles"].(map[string]any)["policy"].(map[string]any)["revision"] != "req-1" {
			t.Fatalf("labels or bundles missing: %v", ev)
		}
	}
	denied := byID[deniedID]
	if denied == nil {
		t.Fatalf("the denied call's decision %s is not among the %d events", deniedID, len(uploaded))
	}
	if res := denied["result"].(map[string]any); res["allow"] != false || !strings.Contains(res["reason"].(string), "requires write") ||
		denied["custom"].(map[string]any)["subject"] != "e2e-default:read" {
		t.Fatalf("denied event: %v", denied)
	}
	if apis["ListWorkflowExecutions"] < lists || apis["StartWorkflowExecution"] < 3 || apis["PollWorkflowTaskQueue"] == 0 || apis["RespondActivityTaskCompleted"] == 0 {
		t.Fatalf("events by API (callers with tokens): %v", apis)
	}

	// Nothing secret in either sink.
	for sink, text := range map[string]string{"console": string(consoleText), "service": uploadedText} {
		if strings.Contains(text, "Bearer") {
			t.Errorf("%s events contain a bearer string", sink)
		}
		for _, tok := range minted {
			parts := strings.Split(tok, ".")
			if strings.Contains(text, tok) || strings.Contains(text, parts[2]) || strings.Contains(text, parts[2][:16]) {
				t.Fatalf("%s events contain a token or its signature", sink)
			}
		}
		for _, enc := range []string{marker, base64.StdEncoding.EncodeToString([]byte(`"` + marker + `"`))} {
			if strings.Contains(text, enc) {
				t.Errorf("%s events contain the workflow payload (%q)", sink, enc)
			}
		}
		if strings.Contains(text, `"task_token"`) {
			t.Errorf("%s events contain a task token", sink)
		}
	}
	if len(minted) < 5 {
		t.Fatalf("only %d tokens minted", len(minted))
	}
	// The request was logged (the policy reads it), without its payloads.
	sawRequest := false
	for _, ev := range uploaded {
		in := ev["input"].(map[string]any)
		if req, ok := in["request"].(map[string]any); ok && ev["custom"].(map[string]any)["api"] == "StartWorkflowExecution" {
			if wt, _ := req["workflow_type"].(map[string]any); wt != nil && wt["name"] == "Greet" {
				sawRequest = true
			}
		}
	}
	if !sawRequest {
		t.Error("no StartWorkflowExecution event carries input.request.workflow_type")
	}

	// Replay the console file against the next version of the bundle, which
	// also denies listing: exactly the allowed list calls change.
	next := map[string]string{"temporal/custom/no_list.rego": `package temporal.custom

deny contains "listing is disabled" if input.target.method == "ListWorkflowExecutions"
`}
	for name, content := range requestBundle {
		next[name] = content
	}
	candidate := testutil.WriteFiles(t, next)
	wantChanged := 0
	for _, ev := range consoleEvents {
		if ev["custom"].(map[string]any)["api"] == "ListWorkflowExecutions" && ev["result"].(map[string]any)["allow"] == true {
			wantChanged++
		}
	}
	var rep bytes.Buffer
	err = offline.Eval(ctx, cli.Eval{Replay: []string{consolePath}, Policy: []string{candidate}, Format: "json"}, nil, &rep)
	if !errors.As(err, new(offline.Changed)) {
		t.Fatalf("replay: %v, want Changed", err)
	}
	var report offline.ReplayReport
	if err := json.Unmarshal(rep.Bytes(), &report); err != nil {
		t.Fatal(err)
	}
	if report.Replayed != len(consoleEvents) || report.Changed != wantChanged || len(report.Changes) != 1 ||
		report.Changes[0].API != "ListWorkflowExecutions" || report.Changes[0].To != "deny" || report.Changes[0].Reason != "listing is disabled" {
		t.Fatalf("replay report: %s\nwant %d events replayed, %d ListWorkflowExecutions changed to deny", rep.String(), len(consoleEvents), wantChanged)
	}
	// The same events, as the service received them (a gzip batch), against the
	// recording policy itself: nothing changes.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(uploadedText))
	_ = zw.Close()
	batches := filepath.Join(dir, "batches.json.gz")
	if err := os.WriteFile(batches, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	rep.Reset()
	if err := offline.Eval(ctx, cli.Eval{Replay: []string{batches}, Policy: []string{testutil.WriteFiles(t, requestBundle)}}, nil, &rep); err != nil {
		t.Fatalf("replay against the recording policy: %v\n%s", err, rep.String())
	}
	if !strings.Contains(rep.String(), fmt.Sprintf("Replayed %d decisions", len(uploaded))) {
		t.Fatalf("report: %s", rep.String())
	}
}

type hpFunc func(context.Context) (map[string]string, error)

func (f hpFunc) GetHeaders(ctx context.Context) (map[string]string, error) { return f(ctx) }

func decodeLines(t *testing.T, data []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var ev map[string]any
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatalf("console line is not JSON: %v: %s", err, line)
		}
		out = append(out, ev)
	}
	return out
}
