package decisionlog_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
	commonpb "go.temporal.io/api/common/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/decisionlog"
)

const (
	apiStart     = "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution"
	apiList      = "/temporal.api.workflowservice.v1.WorkflowService/ListWorkflowExecutions"
	apiRespond   = "/temporal.api.workflowservice.v1.WorkflowService/RespondActivityTaskCompleted"
	apiHealth    = "/grpc.health.v1.Health/Check"
	secretMarker = "s3cr3t-payload-d4t4"
)

// syncBuffer is a bytes.Buffer safe for the logger's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// events parses console output: one JSON object per line.
func events(t *testing.T, out string) []map[string]any {
	t.Helper()
	var evs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("console line is not JSON: %v: %s", err, sc.Text())
		}
		if ev["msg"] == "Decision Log" {
			evs = append(evs, ev)
		}
	}
	return evs
}

func reader(ns string) *authorization.Claims {
	return &authorization.Claims{Subject: "alice", Namespaces: map[string]authorization.Role{ns: authorization.RoleReader}}
}

func writer(ns string) *authorization.Claims {
	return &authorization.Claims{Subject: "bob", Namespaces: map[string]authorization.Role{ns: authorization.RoleWriter}}
}

// newLogged returns an authorizer whose decisions go to a new Logger.
func newLogged(t *testing.T, cfg string, opts decisionlog.Options, bundles ...string) (*policy.Authorizer, *decisionlog.Logger) {
	t.Helper()
	dl, err := decisionlog.New(context.Background(), []byte(cfg), opts)
	if err != nil {
		t.Fatal(err)
	}
	az, err := policy.NewAuthorizer(policy.Options{Recorder: dl}, loadBundles(t, bundles...))
	if err != nil {
		t.Fatal(err)
	}
	return az, dl
}

// closeLogger flushes within a bound.
func closeLogger(t *testing.T, dl *decisionlog.Logger) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := dl.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestConsoleEvents(t *testing.T) {
	var out syncBuffer
	az, dl := newLogged(t, "", decisionlog.Options{ForceConsole: true, Console: &out})

	type call struct {
		name      string
		claims    *authorization.Claims
		api, ns   string
		allow     bool
		cached    bool
		wantError string
	}
	calls := []call{
		{name: "read allowed", claims: reader("default"), api: apiList, ns: "default", allow: true},
		{name: "read allowed again (cache)", claims: reader("default"), api: apiList, ns: "default", allow: true, cached: true},
		{name: "start denied", claims: reader("default"), api: apiStart, ns: "default"},
		{name: "start allowed", claims: writer("default"), api: apiStart, ns: "default", allow: true},
		{name: "no token denied", api: apiList, ns: "default"},
		{name: "health allowed", api: apiHealth, allow: true},
	}
	reasons := map[string]string{}
	for _, c := range calls {
		res, err := az.Authorize(context.Background(), c.claims, &authorization.CallTarget{APIName: c.api, Namespace: c.ns})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := res.Decision == authorization.DecisionAllow; got != c.allow {
			t.Fatalf("%s: allow = %v", c.name, got)
		}
		reasons[c.name] = res.Reason
	}
	closeLogger(t, dl)

	evs := events(t, out.String())
	if len(evs) != len(calls) {
		t.Fatalf("%d events for %d calls:\n%s", len(evs), len(calls), out.String())
	}
	ids := map[string]bool{}
	for i, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			ev := evs[i]
			id, _ := ev["decision_id"].(string)
			if len(id) != 36 || ids[id] {
				t.Fatalf("decision_id %q is not a fresh UUID", id)
			}
			ids[id] = true
			if ev["path"] != "temporal/authz/decision" || ev["type"] != "openpolicyagent.org/decision_logs" {
				t.Errorf("path %v, type %v", ev["path"], ev["type"])
			}
			res := ev["result"].(map[string]any)
			if res["allow"] != c.allow {
				t.Errorf("result.allow = %v, want %v", res["allow"], c.allow)
			}
			if !c.allow {
				if want := "(decision " + id + ")"; !strings.HasSuffix(reasons[c.name], want) || res["reason"] != reasons[c.name] {
					t.Errorf("caller's reason %q, event reason %q: want both ending with %s", reasons[c.name], res["reason"], want)
				}
			}
			custom := ev["custom"].(map[string]any)
			if custom["cached"] != c.cached || custom["mode"] != "enforce" || custom["namespace"] != c.ns {
				t.Errorf("custom = %v", custom)
			}
			if c.claims != nil && custom["subject"] != c.claims.Subject {
				t.Errorf("custom.subject = %v", custom["subject"])
			}
			in := ev["input"].(map[string]any)
			if in["target"].(map[string]any)["api"] != c.api {
				t.Errorf("input.target = %v", in["target"])
			}
			if _, ok := ev["bundles"].(map[string]any)["temporal-opa/default"]; !ok {
				t.Errorf("bundles = %v", ev["bundles"])
			}
			if _, ok := ev["metrics"].(map[string]any)["timer_server_handler_ns"]; !ok {
				t.Errorf("metrics = %v", ev["metrics"])
			}
			if _, ok := ev["metrics"].(map[string]any)["timer_rego_query_eval_ns"]; ok == c.cached {
				t.Errorf("metrics = %v: eval timer only when evaluated", ev["metrics"])
			}
			if labels := ev["labels"].(map[string]any); labels["id"] == "" || labels["version"] == "" {
				t.Errorf("labels = %v", labels)
			}
		})
	}
	st := dl.Status()
	if st.Recorded != uint64(len(calls)) || st.Logged != uint64(len(calls)) || st.Dropped != 0 || !st.Console {
		t.Errorf("status = %+v", st)
	}
}

// TestErrorEvent: a policy that cannot decide gives a denied call and an event
// with error {code, message}.
func TestErrorEvent(t *testing.T) {
	var out syncBuffer
	az, dl := newLogged(t, "", decisionlog.Options{ForceConsole: true, Console: &out}, "testdata/conflict")
	res, err := az.Authorize(context.Background(), writer("default"), &authorization.CallTarget{APIName: apiStart, Namespace: "default"})
	if err == nil || res.Decision != authorization.DecisionDeny {
		t.Fatalf("want a deny with an error, got %v %v", res, err)
	}
	closeLogger(t, dl)
	evs := events(t, out.String())
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	e, ok := evs[0]["custom"].(map[string]any)["error"].(map[string]any)
	if !ok || e["code"] != string(policy.CodeEvalError) || !strings.Contains(e["message"].(string), "conflict") {
		t.Fatalf("custom.error = %v", evs[0]["custom"])
	}
	if s, _ := evs[0]["error"].(string); !strings.HasPrefix(s, string(policy.CodeEvalError)+": ") {
		t.Fatalf("error = %v (OPA's console writes the error as a string)", evs[0]["error"])
	}
	if !strings.HasSuffix(res.Reason, "(decision "+evs[0]["decision_id"].(string)+")") {
		t.Fatalf("reason %q does not name the decision", res.Reason)
	}
}

// TestSecretsErased: task tokens and payloads never reach an event; other
// request fields do.
func TestSecretsErased(t *testing.T) {
	start := &workflowservice.StartWorkflowExecutionRequest{
		Namespace:    "default",
		WorkflowId:   "wf-1",
		WorkflowType: &commonpb.WorkflowType{Name: "Payroll"},
		TaskQueue:    &taskqueuepb.TaskQueue{Name: "payroll"},
		Input:        &commonpb.Payloads{Payloads: []*commonpb.Payload{{Data: []byte(secretMarker)}}},
		Memo:         &commonpb.Memo{Fields: map[string]*commonpb.Payload{"m": {Data: []byte(secretMarker)}}},
		Header:       &commonpb.Header{Fields: map[string]*commonpb.Payload{"h": {Data: []byte(secretMarker)}}},
	}
	respond := &workflowservice.RespondActivityTaskCompletedRequest{
		Namespace: "default",
		TaskToken: []byte(secretMarker),
		Result:    &commonpb.Payloads{Payloads: []*commonpb.Payload{{Data: []byte(secretMarker)}}},
		Identity:  "worker-1",
	}
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep payloads %v", keep), func(t *testing.T) {
			var out syncBuffer
			// A policy that reads the request whole: input.request holds all of it.
			az, dl := newLogged(t, "", decisionlog.Options{ForceConsole: true, Console: &out, KeepPayloads: keep}, "testdata/whole-request")
			for _, tc := range []struct {
				api string
				req any
			}{{apiStart, start}, {apiRespond, respond}} {
				_, _ = az.Authorize(context.Background(), writer("default"), &authorization.CallTarget{APIName: tc.api, Namespace: "default", Request: tc.req})
			}
			closeLogger(t, dl)
			text := out.String()
			evs := events(t, text)
			if len(evs) != 2 {
				t.Fatalf("%d events", len(evs))
			}
			secretB64 := "czNjcjN0LXBheWxvYWQtZDR0NA" // base64 of the marker, as protojson writes bytes
			leaked := strings.Contains(text, secretMarker) || strings.Contains(text, secretB64)
			if leaked != keep {
				t.Fatalf("secret in events = %v with KeepPayloads %v:\n%s", leaked, keep, text)
			}
			req := evs[0]["input"].(map[string]any)["request"].(map[string]any)
			if req["workflow_id"] != "wf-1" || req["workflow_type"].(map[string]any)["name"] != "Payroll" {
				t.Errorf("request fields the policy reads are missing: %v", req)
			}
			if !keep {
				got := fmt.Sprint(evs[0]["custom"].(map[string]any)["erased"], evs[1]["custom"].(map[string]any)["erased"])
				for _, p := range []string{"/input/request/input", "/input/request/memo", "/input/request/header", "/input/request/task_token", "/input/request/result"} {
					if !strings.Contains(got, p) {
						t.Errorf("custom.erased %s lacks %s", got, p)
					}
				}
			}
		})
	}
}

// TestRequestFieldsAsRead: with a policy that reads request fields by path
// (workflow-type-acl), an event's input.request holds only those fields, and
// custom.request_paths names them, cached decisions included.
func TestRequestFieldsAsRead(t *testing.T) {
	var out syncBuffer
	az, dl := newLogged(t, "", decisionlog.Options{ForceConsole: true, Console: &out, KeepPayloads: true}, "../../bundles/workflow-type-acl")
	start := &workflowservice.StartWorkflowExecutionRequest{
		Namespace:    "default",
		WorkflowId:   "wf-1",
		WorkflowType: &commonpb.WorkflowType{Name: "payments.Charge"},
		TaskQueue:    &taskqueuepb.TaskQueue{Name: "payroll"},
		Input:        &commonpb.Payloads{Payloads: []*commonpb.Payload{{Data: []byte(secretMarker)}}},
	}
	for range 2 { // evaluated, then cached
		_, _ = az.Authorize(context.Background(), writer("default"), &authorization.CallTarget{APIName: apiStart, Namespace: "default", Request: start})
	}
	closeLogger(t, dl)
	evs := events(t, out.String())
	if len(evs) != 2 {
		t.Fatalf("%d events", len(evs))
	}
	for i, ev := range evs {
		req, _ := ev["input"].(map[string]any)["request"].(map[string]any)
		if fmt.Sprint(req) != "map[workflow_type:map[name:payments.Charge]]" {
			t.Errorf("event %d: input.request = %v, want only the workflow type", i, req)
		}
		paths := fmt.Sprint(ev["custom"].(map[string]any)["request_paths"])
		if !strings.Contains(paths, "/input/request/workflow_type/name") || !strings.Contains(paths, "/input/request/commands/*/start_child_workflow_execution_command_attributes/namespace") {
			t.Errorf("event %d: custom.request_paths = %s", i, paths)
		}
	}
	if evs[1]["custom"].(map[string]any)["cached"] != true {
		t.Errorf("second event not cached: %v", evs[1]["custom"])
	}
}

// TestOperatorMaskAndDrop: system.log rules of an activated bundle mask and drop
// events as in OPA; a bundle whose rules do not compile is rejected.
func TestOperatorMaskAndDrop(t *testing.T) {
	var out syncBuffer
	// Every claim kept (the default policy reads none): the mask erases the email.
	az, dl := newLogged(t, "", decisionlog.Options{ForceConsole: true, Console: &out, KeepClaims: true}, "testdata/masks")
	claims := &authorization.Claims{Subject: "carol", Namespaces: map[string]authorization.Role{"default": authorization.RoleReader},
		Extensions: map[string]any{"email": "carol@example.com", "sub": "carol"}}
	for _, api := range []string{apiList, apiHealth} {
		_, _ = az.Authorize(context.Background(), claims, &authorization.CallTarget{APIName: api, Namespace: "default"})
	}
	closeLogger(t, dl)
	evs := events(t, out.String())
	if len(evs) != 1 {
		t.Fatalf("want the health check dropped, got %d events:\n%s", len(evs), out.String())
	}
	if strings.Contains(out.String(), "carol@example.com") {
		t.Fatalf("masked email logged:\n%s", out.String())
	}
	jwt := evs[0]["input"].(map[string]any)["claims"].(map[string]any)["jwt"].(map[string]any)
	if jwt["sub"] != "carol" {
		t.Errorf("input.claims.jwt = %v: only the email is masked", jwt)
	}

	// A system.log module that does not compile rejects the bundle.
	bad := t.TempDir()
	writeFile(t, filepath.Join(bad, ".manifest"), `{"roots": ["temporal/custom", "system/log"]}`)
	writeFile(t, filepath.Join(bad, "system/log/log.rego"), "package system.log\n\nmask contains x if { x := undefined_fn(1) }\n")
	b, err := policy.LoadBundle(bad)
	if err != nil {
		t.Fatal(err)
	}
	err = az.SetBundle(context.Background(), "masks", b)
	if err == nil || !strings.Contains(err.Error(), "data.system") {
		t.Fatalf("want a rejected bundle, got %v", err)
	}
}

// TestQueueFullDropsAndCounts: when the queue is full, events are dropped and
// counted, and the call is not delayed.
func TestQueueFullDropsAndCounts(t *testing.T) {
	block := make(chan struct{})
	w := writerFunc(func(p []byte) (int, error) { <-block; return len(p), nil })
	az, dl := newLogged(t, "", decisionlog.Options{ForceConsole: true, Console: w, QueueSize: 4})
	const calls = 200
	start := time.Now()
	for range calls {
		if _, err := az.Authorize(context.Background(), reader("default"), &authorization.CallTarget{APIName: apiList, Namespace: "default"}); err != nil {
			t.Fatal(err)
		}
	}
	took := time.Since(start)
	st := dl.Status()
	if st.Dropped == 0 || st.Recorded+st.Dropped != calls || st.Recorded > 4+1 {
		t.Fatalf("status %+v after %d calls with a blocked sink", st, calls)
	}
	t.Logf("%d calls with a blocked sink took %s; %d dropped", calls, took, st.Dropped)
	close(block)
	closeLogger(t, dl)
	if st := dl.Status(); st.Logged != st.Recorded {
		t.Fatalf("after close: %+v", st)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// logService is an httptest decision-log service that keeps the events of the
// gzip batches it receives.
type logService struct {
	*httptest.Server
	mu     sync.Mutex
	events []map[string]any
	auth   []string
	fail   bool
}

func newLogService(t *testing.T) *logService {
	s := &logService{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.fail {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path != "/logs" || r.Header.Get("Content-Encoding") != "gzip" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var batch []map[string]any
		if err := json.NewDecoder(zr).Decode(&batch); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.events = append(s.events, batch...)
		s.auth = append(s.auth, r.Header.Get("Authorization"))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *logService) received() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.events...)
}

// TestServiceUploadAndFlush: events go to a service in OPA's gzip batches with
// its credentials; Close flushes what is buffered; a service that is down
// delays no call.
func TestServiceUploadAndFlush(t *testing.T) {
	svc := newLogService(t)
	cfg := fmt.Sprintf(`
services:
  audit:
    url: %s
    credentials:
      bearer:
        token: service-credential-xyz
decision_logs:
  service: audit
  reporting:
    min_delay_seconds: 300
    max_delay_seconds: 600
labels:
  cluster: test
`, svc.URL)
	svc.fail = true
	az, dl := newLogged(t, cfg, decisionlog.Options{})
	const calls = 50
	for i := range calls {
		c := reader("default")
		if i%2 == 1 {
			c = writer("default")
		}
		_, _ = az.Authorize(context.Background(), c, &authorization.CallTarget{APIName: apiStart, Namespace: "default"})
	}
	svc.mu.Lock()
	svc.fail = false
	svc.mu.Unlock()
	closeLogger(t, dl) // delays of 5-10 minutes: only Close's flush uploads
	evs := svc.received()
	if len(evs) != calls {
		t.Fatalf("service received %d events, want %d", len(evs), calls)
	}
	allowed := 0
	for _, ev := range evs {
		if ev["result"].(map[string]any)["allow"] == true {
			allowed++
		}
		if ev["labels"].(map[string]any)["cluster"] != "test" {
			t.Fatalf("labels = %v", ev["labels"])
		}
	}
	if allowed != calls/2 {
		t.Fatalf("%d allowed of %d", allowed, calls)
	}
	if svc.auth[0] != "Bearer service-credential-xyz" {
		t.Fatalf("upload without the service's credentials")
	}
	if st := dl.Status(); st.Service != "audit" || st.Console {
		t.Fatalf("status %+v", st)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name, cfg, want string
	}{
		{"no section", "services: {a: {url: 'http://127.0.0.1:1'}}", "no decision_logs section"},
		{"nothing to log to", "decision_logs: {console: false}", "nothing to log to"},
		{"unknown service", "services: {a: {url: 'http://127.0.0.1:1'}}\ndecision_logs: {service: b}", `invalid service name "b"`},
		{"custom plugin", "decision_logs: {plugin: mine}", `"mine"`},
		{"bad buffer", "decision_logs: {console: true, reporting: {buffer_type: ring}}", `invalid buffer type "ring"`},
		{"not yaml", "decision_logs: [", "not YAML or JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decisionlog.New(context.Background(), []byte(tc.cfg), decisionlog.Options{})
			var ce *decisionlog.ConfigError
			if err == nil || !strings.Contains(err.Error(), tc.want) || !asConfigError(err, &ce) {
				t.Fatalf("error %v, want a ConfigError containing %q", err, tc.want)
			}
		})
	}
}

func asConfigError(err error, target **decisionlog.ConfigError) bool {
	ce, ok := err.(*decisionlog.ConfigError)
	*target = ce
	return ok
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// loadBundles loads the bundles at paths, each named by its directory.
func loadBundles(t *testing.T, paths ...string) map[string]*bundle.Bundle {
	t.Helper()
	out := map[string]*bundle.Bundle{}
	for _, p := range paths {
		b, err := policy.LoadBundle(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

// verifiedBy is the Claims.Extensions of a token verified by issuer, as
// package claimmapper's Token gives it.
type verifiedBy string

func (v verifiedBy) TokenClaims() map[string]any {
	return map[string]any{"iss": string(v), "email": "w@example"}
}
func (v verifiedBy) CacheKey() string { return "k-" + string(v) }
func (v verifiedBy) Issuer() string   { return string(v) }

// An event names the configured issuer that verified the caller's token, in
// custom.issuer and input.claims.issuer; a call without one has neither.
func TestIssuerRecorded(t *testing.T) {
	var out syncBuffer
	az, dl := newLogged(t, "", decisionlog.Options{ForceConsole: true, Console: &out})
	claims := writer("default")
	claims.Extensions = verifiedBy("https://k8s.example")
	for _, c := range []*authorization.Claims{claims, writer("default")} {
		if _, err := az.Authorize(context.Background(), c, &authorization.CallTarget{APIName: apiStart, Namespace: "default"}); err != nil {
			t.Fatal(err)
		}
	}
	closeLogger(t, dl)
	evs := events(t, out.String())
	if len(evs) != 2 {
		t.Fatalf("%d events", len(evs))
	}
	for i, want := range []string{"https://k8s.example", ""} {
		custom, _ := evs[i]["custom"].(map[string]any)
		if got, _ := custom["issuer"].(string); got != want {
			t.Errorf("event %d: custom.issuer %q, want %q", i, got, want)
		}
		in, _ := evs[i]["input"].(map[string]any)
		cl, _ := in["claims"].(map[string]any)
		if got, _ := cl["issuer"].(string); got != want {
			t.Errorf("event %d: input.claims.issuer %q, want %q", i, got, want)
		}
	}
}

// An event lists the roles the policy's role rules granted for the call, with
// the rule of each; the issuer's email claim, which the rule reads, is kept.
func TestGrantedRolesRecorded(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		".manifest": `{"roots": ["temporal/custom/people"]}`,
		"temporal/custom/people/people.rego": `package temporal.custom.people

namespace_roles["default"] contains "write" if input.claims.jwt.email == "w@example"

system_roles contains "read" if input.claims.issuer == "https://idp.example"
`,
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out syncBuffer
	az, dl := newLogged(t, "", decisionlog.Options{ForceConsole: true, Console: &out}, dir)
	claims := &authorization.Claims{Subject: "w", AuthType: "jwt", Extensions: verifiedBy("https://idp.example")}
	for range 2 { // the second from the cache
		if res, err := az.Authorize(context.Background(), claims, &authorization.CallTarget{APIName: apiStart, Namespace: "default"}); err != nil || res.Decision != authorization.DecisionAllow {
			t.Fatal(res, err)
		}
	}
	closeLogger(t, dl)
	evs := events(t, out.String())
	if len(evs) != 2 {
		t.Fatalf("%d events", len(evs))
	}
	want := `[{"namespace":"","role":"read","rule":"data.temporal.custom.people.system_roles"},{"namespace":"default","role":"write","rule":"data.temporal.custom.people.namespace_roles"}]`
	for i, ev := range evs {
		custom, _ := ev["custom"].(map[string]any)
		got, _ := json.Marshal(custom["granted_roles"])
		if string(got) != want {
			t.Errorf("event %d (cached %v): custom.granted_roles %s, want %s", i, custom["cached"], got, want)
		}
	}
}

// certCaller is the Claims.Extensions of a caller identified by a verified
// client certificate alone.
type certCaller map[string]any

func (certCaller) TokenClaims() map[string]any         { return nil }
func (certCaller) CacheKey() string                    { return "x509" }
func (c certCaller) CertificateClaims() map[string]any { return c }

// An event names the caller's verified client certificate in custom.tls.
func TestCertificateRecorded(t *testing.T) {
	var out syncBuffer
	az, dl := newLogged(t, "", decisionlog.Options{ForceConsole: true, Console: &out})
	cert := certCaller{
		"subject": map[string]any{"common_name": "w", "string": "CN=w,O=Payments"}, "issuer": map[string]any{"string": "CN=ca"},
		"spiffe_id": "spiffe://prod.example/ns/payments/sa/worker", "uris": []any{"spiffe://prod.example/ns/payments/sa/worker"},
		"dns_names": []any{}, "serial": "2a", "fingerprint_sha256": "ab12", "not_after": "2027-01-01T00:00:00Z",
	}
	claims := &authorization.Claims{Subject: "spiffe://prod.example/ns/payments/sa/worker", AuthType: "tls", Extensions: cert}
	if _, err := az.Authorize(context.Background(), claims, &authorization.CallTarget{APIName: apiStart, Namespace: "payments"}); err != nil {
		t.Fatal(err)
	}
	closeLogger(t, dl)
	evs := events(t, out.String())
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	custom, _ := evs[0]["custom"].(map[string]any)
	got, _ := json.Marshal(custom["tls"])
	want := `{"fingerprint_sha256":"ab12","issuer":"CN=ca","not_after":"2027-01-01T00:00:00Z","serial":"2a","spiffe_id":"spiffe://prod.example/ns/payments/sa/worker","subject":"CN=w,O=Payments","uris":["spiffe://prod.example/ns/payments/sa/worker"]}`
	if string(got) != want {
		t.Errorf("custom.tls %s\nwant %s", got, want)
	}
}
