package decisionlog_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/decisionlog"
)

// tee hands every event to each recorder.
type tee []*decisionlog.Logger

func (t tee) Record(e *policy.Event) {
	for _, l := range t {
		l.Record(e)
	}
}
func (tee) LogsDecisions() bool { return true }

// TestUploadPathIsConsolePath: the upload path (events encoded from the input
// value, uploaded by temporal-opa) logs exactly what OPA's plugin logs on the
// console for the same decisions: input with payloads and secrets erased,
// claims the policy does not read erased, over-long strings cut, and the same
// custom (erased, truncated), result, path, bundles and metrics. The privacy
// tests check the console; this keeps the service's events identical.
func TestUploadPathIsConsolePath(t *testing.T) {
	svc := newLogService(t)
	var out syncBuffer
	console, err := decisionlog.New(context.Background(), nil, decisionlog.Options{ForceConsole: true, Console: &out, ID: "same"})
	if err != nil {
		t.Fatal(err)
	}
	upload, err := decisionlog.New(context.Background(), []byte("services: {audit: {url: '"+svc.URL+"'}}\ndecision_logs: {service: audit}"), decisionlog.Options{ID: "same"})
	if err != nil {
		t.Fatal(err)
	}
	az, err := policy.NewAuthorizer(policy.Options{Recorder: tee{console, upload}}, loadBundles(t, "testdata/whole-request"))
	if err != nil {
		t.Fatal(err)
	}
	payload := &commonpb.Payloads{Payloads: []*commonpb.Payload{{Data: []byte(secretMarker)}}}
	long := strings.Repeat("é", 3000) // 6,000 bytes: cut
	withToken := writer("default")
	withToken.Extensions = verifiedBy("https://idp.example")
	calls := []struct {
		claims *authorization.Claims
		target *authorization.CallTarget
	}{
		{writer("default"), &authorization.CallTarget{APIName: apiList, Namespace: "default"}},
		{withToken, &authorization.CallTarget{APIName: apiList, Namespace: "default"}},
		{reader("default"), &authorization.CallTarget{APIName: apiStart, Namespace: "default",
			Request: &workflowservice.StartWorkflowExecutionRequest{Namespace: "default", WorkflowType: &commonpb.WorkflowType{Name: "payments.Charge"}, Input: payload}}},
		{writer("default"), &authorization.CallTarget{APIName: apiStart, Namespace: "default",
			Request: &workflowservice.StartWorkflowExecutionRequest{Namespace: "default", WorkflowType: &commonpb.WorkflowType{Name: long}, Input: payload}}},
		{&authorization.Claims{Subject: long, Namespaces: map[string]authorization.Role{"default": authorization.RoleWriter}}, &authorization.CallTarget{APIName: apiList, Namespace: "default"}},
		{nil, &authorization.CallTarget{APIName: apiHealth}},
	}
	for _, c := range calls {
		_, _ = az.Authorize(context.Background(), c.claims, c.target)
	}
	closeLogger(t, console)
	closeLogger(t, upload)
	uploaded := map[string]map[string]any{}
	for _, ev := range svc.received() {
		uploaded[ev["decision_id"].(string)] = ev
	}
	logged := events(t, out.String())
	if len(logged) != len(calls) || len(uploaded) != len(calls) {
		t.Fatalf("%d console events, %d uploaded, want %d each", len(logged), len(uploaded), len(calls))
	}
	var truncated, erased int
	for _, u := range uploaded {
		custom, _ := u["custom"].(map[string]any)
		if custom["truncated"] != nil {
			truncated++
		}
		if e, _ := custom["erased"].([]any); len(e) > 0 && strings.Join(stringsOf(e), " ") != "" && slicesContains(e, "/input/request/input") {
			erased++
		}
	}
	if truncated != 2 || erased != 2 {
		t.Fatalf("%d uploaded events with cut strings, %d with the payload erased: want 2 and 2", truncated, erased)
	}
	for _, c := range logged {
		u := uploaded[c["decision_id"].(string)]
		if u == nil {
			t.Fatalf("decision %v not uploaded", c["decision_id"])
		}
		for _, k := range []string{"input", "result", "custom", "path", "bundles", "metrics", "timestamp", "labels"} {
			if !reflect.DeepEqual(c[k], u[k]) {
				t.Errorf("decision %v: %s differs:\nconsole %v\nupload  %v", c["decision_id"], k, c[k], u[k])
			}
		}
		if strings.Contains(strings.Join(stringsOf(u), " "), secretMarker) {
			t.Errorf("decision %v: a payload was uploaded", c["decision_id"])
		}
	}
}

func slicesContains(list []any, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
