package decisionlog_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	commandpb "go.temporal.io/api/command/v1"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/decisionlog"
)

const wfService = "/temporal.api.workflowservice.v1.WorkflowService/"

// at returns the value at a JSON pointer of doc (no escapes), and whether it is there.
func at(doc any, ptr string) (any, bool) {
	v := doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[tok]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func stringsOf(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		out = append(out, x.(string))
	}
	return out
}

// TestUserDataErased: Nexus headers, callback data, failure messages and stack
// traces (beside task tokens and payloads) never reach an event of a real
// request, wherever they sit in it; the fields around them do, and
// custom.erased names each.
func TestUserDataErased(t *testing.T) {
	const marker = "s3cr3t-user-d4t4"
	failure := func() *failurepb.Failure {
		return &failurepb.Failure{
			Message:    "card of " + marker + " declined",
			StackTrace: "at charge(" + marker + ")",
			Source:     "GoSDK",
			Cause:      &failurepb.Failure{Message: "caused by " + marker, Source: "GoSDK"},
		}
	}
	payload := &commonpb.Payload{Data: []byte(marker)}
	appFailure := failure()
	appFailure.EncodedAttributes = payload
	appFailure.FailureInfo = &failurepb.Failure_ApplicationFailureInfo{ApplicationFailureInfo: &failurepb.ApplicationFailureInfo{
		Type:    "PaymentDeclined",
		Details: &commonpb.Payloads{Payloads: []*commonpb.Payload{payload}},
	}}

	cases := []struct {
		name   string
		method string
		req    any
		erased []string
		kept   map[string]any
	}{
		{
			name:   "RespondWorkflowTaskFailed with a failure and its cause",
			method: "RespondWorkflowTaskFailed",
			req: &workflowservice.RespondWorkflowTaskFailedRequest{
				Namespace: "default", TaskToken: []byte(marker), Failure: failure(), Identity: "worker-1",
			},
			erased: []string{"/input/request/task_token", "/input/request/failure/message", "/input/request/failure/stack_trace", "/input/request/failure/cause/message"},
			kept:   map[string]any{"/input/request/identity": "worker-1", "/input/request/failure/source": "GoSDK", "/input/request/failure/cause/source": "GoSDK"},
		},
		{
			name:   "RespondActivityTaskFailed with an application failure",
			method: "RespondActivityTaskFailed",
			req:    &workflowservice.RespondActivityTaskFailedRequest{Namespace: "default", Failure: appFailure, Identity: "worker-1"},
			erased: []string{"/input/request/failure/message", "/input/request/failure/stack_trace", "/input/request/failure/encoded_attributes",
				"/input/request/failure/application_failure_info/details", "/input/request/failure/cause/message"},
			kept: map[string]any{"/input/request/failure/application_failure_info/type": "PaymentDeclined"},
		},
		{
			name:   "StartWorkflowExecution with completion callbacks",
			method: "StartWorkflowExecution",
			req: &workflowservice.StartWorkflowExecutionRequest{
				Namespace: "default", WorkflowId: "wf-1", WorkflowType: &commonpb.WorkflowType{Name: "Payroll"},
				TaskQueue: &taskqueuepb.TaskQueue{Name: "payroll"},
				CompletionCallbacks: []*commonpb.Callback{
					{Variant: &commonpb.Callback_Nexus_{Nexus: &commonpb.Callback_Nexus{
						Url: "https://callbacks.example/nexus", Header: map[string]string{"Authorization": "Bearer " + marker},
					}}},
					{Variant: &commonpb.Callback_Internal_{Internal: &commonpb.Callback_Internal{Data: []byte(marker)}}},
				},
			},
			erased: []string{"/input/request/completion_callbacks/0/nexus/header", "/input/request/completion_callbacks/1/internal/data"},
			kept:   map[string]any{"/input/request/completion_callbacks/0/nexus/url": "https://callbacks.example/nexus", "/input/request/workflow_id": "wf-1"},
		},
		{
			name:   "RespondWorkflowTaskCompleted scheduling a Nexus operation and failing",
			method: "RespondWorkflowTaskCompleted",
			req: &workflowservice.RespondWorkflowTaskCompletedRequest{
				Namespace: "default", Identity: "worker-1",
				Commands: []*commandpb.Command{
					{
						CommandType: enumspb.COMMAND_TYPE_SCHEDULE_NEXUS_OPERATION,
						Attributes: &commandpb.Command_ScheduleNexusOperationCommandAttributes{ScheduleNexusOperationCommandAttributes: &commandpb.ScheduleNexusOperationCommandAttributes{
							Endpoint: "payments", Service: "billing", Operation: "charge", Input: payload,
							NexusHeader: map[string]string{"authorization": "Bearer " + marker},
						}},
					},
					{
						CommandType: enumspb.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION,
						Attributes: &commandpb.Command_FailWorkflowExecutionCommandAttributes{FailWorkflowExecutionCommandAttributes: &commandpb.FailWorkflowExecutionCommandAttributes{
							Failure: failure(),
						}},
					},
				},
			},
			erased: []string{
				"/input/request/commands/0/schedule_nexus_operation_command_attributes/nexus_header",
				"/input/request/commands/0/schedule_nexus_operation_command_attributes/input",
				"/input/request/commands/1/fail_workflow_execution_command_attributes/failure/message",
				"/input/request/commands/1/fail_workflow_execution_command_attributes/failure/stack_trace",
			},
			kept: map[string]any{"/input/request/commands/0/schedule_nexus_operation_command_attributes/endpoint": "payments"},
		},
		{
			name:   "StartNexusOperationExecution with Nexus headers",
			method: "StartNexusOperationExecution",
			req: &workflowservice.StartNexusOperationExecutionRequest{
				Namespace: "default", Endpoint: "payments", NexusHeader: map[string]string{"authorization": marker},
			},
			erased: []string{"/input/request/nexus_header"},
			kept:   map[string]any{"/input/request/endpoint": "payments"},
		},
		{
			name:   "RegisterNamespace with a security token",
			method: "RegisterNamespace",
			req:    &workflowservice.RegisterNamespaceRequest{Namespace: "payments", SecurityToken: marker, Description: "payments team"},
			erased: []string{"/input/request/security_token"},
			kept:   map[string]any{"/input/request/description": "payments team"},
		},
	}
	var out syncBuffer
	// A policy that reads the request whole: input.request holds all of it.
	az, dl := newLogged(t, "", decisionlog.Options{ForceConsole: true, Console: &out}, "testdata/whole-request")
	for _, tc := range cases {
		_, _ = az.Authorize(context.Background(), writer("default"), &authorization.CallTarget{APIName: wfService + tc.method, Namespace: "default", Request: tc.req})
	}
	closeLogger(t, dl)
	evs := events(t, out.String())
	if len(evs) != len(cases) {
		t.Fatalf("%d events for %d calls", len(evs), len(cases))
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := evs[i]
			line, _ := json.Marshal(ev)
			for _, secret := range []string{marker, base64.RawStdEncoding.EncodeToString([]byte(marker))} {
				if strings.Contains(string(line), secret) {
					t.Errorf("event holds %q:\n%s", secret, line)
				}
			}
			erased := stringsOf(ev["custom"].(map[string]any)["erased"])
			for _, p := range tc.erased {
				if !slices.Contains(erased, p) {
					t.Errorf("custom.erased %v lacks %s", erased, p)
				}
				if _, ok := at(ev, p); ok {
					t.Errorf("%s is in the event", p)
				}
			}
			for p, want := range tc.kept {
				if got, _ := at(ev, p); got != want {
					t.Errorf("%s = %v, want %v (only user data is erased)", p, got, want)
				}
			}
		})
	}
}

// TestAllowReasonRecorded: an allowed call's event says which rule allowed it,
// evaluated or from the cache, while the caller's result carries no reason
// (Temporal's allow has none).
func TestAllowReasonRecorded(t *testing.T) {
	custom := t.TempDir()
	writeFile(t, filepath.Join(custom, ".manifest"), `{"roots": ["temporal/custom"]}`)
	writeFile(t, filepath.Join(custom, "temporal/custom/allow.rego"), "package temporal.custom\n\nallow if input.claims.subject == \"auditor\"\n")
	auditor := &authorization.Claims{Subject: "auditor"}
	for _, tc := range []struct {
		name    string
		bundles []string
		claims  *authorization.Claims
		want    string
	}{
		{name: "default rules", claims: writer("default"), want: "allowed by the default policy"},
		{name: "custom rule", bundles: []string{custom}, claims: auditor, want: "allowed by a custom rule (data.temporal.custom.allow)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out syncBuffer
			az, dl := newLogged(t, "", decisionlog.Options{ForceConsole: true, Console: &out}, tc.bundles...)
			for range 2 { // evaluated, then cached
				res, err := az.Authorize(context.Background(), tc.claims, &authorization.CallTarget{APIName: apiStart, Namespace: "default"})
				if err != nil || res.Decision != authorization.DecisionAllow || res.Reason != "" {
					t.Fatalf("result %+v, %v: want an allow without a reason", res, err)
				}
			}
			closeLogger(t, dl)
			evs := events(t, out.String())
			if len(evs) != 2 {
				t.Fatalf("%d events", len(evs))
			}
			for i, ev := range evs {
				if got := ev["result"].(map[string]any)["reason"]; got != tc.want {
					t.Errorf("event %d (cached %v): result.reason = %q, want %q", i, ev["custom"].(map[string]any)["cached"], got, tc.want)
				}
			}
			if evs[1]["custom"].(map[string]any)["cached"] != true {
				t.Errorf("second decision not from the cache")
			}
		})
	}
}

// TestClaimsKeptAsRead: an event's input.claims.jwt holds only the claims the
// deciding policy reads, the others listed in custom.erased; keep_claims keeps
// them all.
func TestClaimsKeptAsRead(t *testing.T) {
	bundle := func(rule string) string {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, ".manifest"), `{"roots": ["temporal/custom"]}`)
		writeFile(t, filepath.Join(dir, "temporal/custom/rules.rego"), "package temporal.custom\n\n"+rule+"\n")
		return dir
	}
	claims := func() *authorization.Claims {
		return &authorization.Claims{Subject: "carol", Namespaces: map[string]authorization.Role{"default": authorization.RoleWriter},
			Extensions: map[string]any{
				"sub": "carol", "email": "carol@example.com", "name": "Carol Jones",
				"groups": []any{"payments-team", "ops"},
				"org":    map[string]any{"id": "acme", "name": "Acme Payroll"},
			}}
	}
	all := `{"email":"carol@example.com","groups":["payments-team","ops"],"name":"Carol Jones","org":{"id":"acme","name":"Acme Payroll"},"sub":"carol"}`
	for _, tc := range []struct {
		name       string
		bundle     string
		keepClaims bool
		want       string   // input.claims.jwt as JSON
		erased     []string // claims erased
	}{
		{name: "default policy reads no claim", want: `{}`,
			erased: []string{"/input/claims/jwt/email", "/input/claims/jwt/groups", "/input/claims/jwt/name", "/input/claims/jwt/org", "/input/claims/jwt/sub"}},
		{name: "workflow-type-acl reads groups", bundle: "../../bundles/workflow-type-acl", want: `{"groups":["payments-team","ops"]}`,
			erased: []string{"/input/claims/jwt/email", "/input/claims/jwt/name", "/input/claims/jwt/org", "/input/claims/jwt/sub"}},
		{name: "a nested claim", bundle: bundle(`deny contains "not acme" if input.claims.jwt.org.id != "acme"`), want: `{"org":{"id":"acme"}}`,
			erased: []string{"/input/claims/jwt/email", "/input/claims/jwt/groups", "/input/claims/jwt/name", "/input/claims/jwt/org/name", "/input/claims/jwt/sub"}},
		{name: "every element of a claim", bundle: bundle(`deny contains "ops" if input.claims.jwt.groups[_] == "banned"`), want: `{"groups":["payments-team","ops"]}`,
			erased: []string{"/input/claims/jwt/email", "/input/claims/jwt/name", "/input/claims/jwt/org", "/input/claims/jwt/sub"}},
		{name: "the token read whole", bundle: bundle(`deny contains "many claims" if count(input.claims.jwt) > 99`), want: all},
		{name: "keep_claims", keepClaims: true, want: all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out syncBuffer
			var bundles []string
			if tc.bundle != "" {
				bundles = append(bundles, tc.bundle)
			}
			az, dl := newLogged(t, "", decisionlog.Options{ForceConsole: true, Console: &out, KeepClaims: tc.keepClaims}, bundles...)
			start := &workflowservice.StartWorkflowExecutionRequest{Namespace: "default", WorkflowType: &commonpb.WorkflowType{Name: "payments.Charge"}}
			for range 2 { // evaluated, then cached
				_, _ = az.Authorize(context.Background(), claims(), &authorization.CallTarget{APIName: apiStart, Namespace: "default", Request: start})
			}
			closeLogger(t, dl)
			if st := dl.Status(); st.KeepClaims != tc.keepClaims || st.KeepPayloads {
				t.Errorf("status keep_claims %v keep_payloads %v", st.KeepClaims, st.KeepPayloads)
			}
			evs := events(t, out.String())
			if len(evs) != 2 {
				t.Fatalf("%d events", len(evs))
			}
			for i, ev := range evs {
				jwt, _ := at(ev, "/input/claims/jwt")
				got, _ := json.Marshal(jwt)
				if string(got) != tc.want {
					t.Errorf("event %d: input.claims.jwt = %s, want %s", i, got, tc.want)
				}
				var erased []string
				for _, p := range stringsOf((ev["custom"].(map[string]any)["erased"])) {
					if strings.HasPrefix(p, "/input/claims/") {
						erased = append(erased, p)
					}
				}
				slices.Sort(erased)
				if !slices.Equal(erased, tc.erased) {
					t.Errorf("event %d: claims erased %v, want %v", i, erased, tc.erased)
				}
			}
		})
	}
}

// TestLongValuesBounded: a megabyte workflow type (caller-controlled) denied by
// workflow-type-acl yields a bounded reason and bounded event values, cut on
// character boundaries and marked.
func TestLongValuesBounded(t *testing.T) {
	name := strings.Repeat("é", 1<<19) // 1 MiB of two-byte characters
	subject := strings.Repeat("s", 1<<20)
	var out syncBuffer
	az, dl := newLogged(t, "", decisionlog.Options{ForceConsole: true, Console: &out}, "../../bundles/workflow-type-acl")
	claims := &authorization.Claims{Subject: subject, Namespaces: map[string]authorization.Role{"default": authorization.RoleWriter}}
	start := &workflowservice.StartWorkflowExecutionRequest{Namespace: "default", WorkflowType: &commonpb.WorkflowType{Name: name}}
	var reasons []string
	for range 2 { // the same call again (a key this long is not cached)
		res, err := az.Authorize(context.Background(), claims, &authorization.CallTarget{APIName: apiStart, Namespace: "default", Request: start})
		if err != nil || res.Decision != authorization.DecisionDeny {
			t.Fatalf("%+v %v: want a deny", res, err)
		}
		reasons = append(reasons, res.Reason)
	}
	closeLogger(t, dl)
	if n := len(out.String()); n > 64<<10 {
		t.Fatalf("%d bytes of console output for two calls", n)
	}
	evs := events(t, out.String())
	if len(evs) != 2 {
		t.Fatalf("%d events", len(evs))
	}
	for i, ev := range evs {
		id := ev["decision_id"].(string)
		reason := reasons[i]
		if len(reason) > policy.MaxReasonBytes+len(" (decision )")+len(id) || !utf8.ValidString(reason) ||
			!strings.Contains(reason, "…(truncated, ") || !strings.HasSuffix(reason, "(decision "+id+")") {
			t.Errorf("call %d: reason of %d bytes (valid UTF-8 %v): %.80q...%q", i, len(reason), utf8.ValidString(reason), reason, reason[max(0, len(reason)-80):])
		}
		if got := ev["result"].(map[string]any)["reason"]; got != reason {
			t.Errorf("event %d: result.reason is not the caller's", i)
		}
		got, _ := at(ev, "/input/request/workflow_type/name")
		s, _ := got.(string)
		if len(s) > decisionlog.MaxValueBytes || !utf8.ValidString(s) || !strings.HasSuffix(s, fmt.Sprintf("…(truncated, %d bytes)", len(name))) || !strings.HasPrefix(s, "éé") {
			t.Errorf("event %d: workflow type of %d bytes: %.40q...%q", i, len(s), s, s[max(0, len(s)-40):])
		}
		custom := ev["custom"].(map[string]any)
		if subj, _ := custom["subject"].(string); len(subj) > decisionlog.MaxValueBytes {
			t.Errorf("event %d: custom.subject of %d bytes", i, len(subj))
		}
		truncated := stringsOf((custom["truncated"]))
		for _, p := range []string{"/input/request/workflow_type/name", "/input/claims/subject"} {
			if !slices.Contains(truncated, p) {
				t.Errorf("event %d: custom.truncated %v lacks %s", i, truncated, p)
			}
		}
	}
}
