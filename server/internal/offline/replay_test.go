package offline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/temporal-opa/temporal-opa/server/internal/cli"
	"github.com/temporal-opa/temporal-opa/server/internal/offline"
	"github.com/temporal-opa/temporal-opa/server/internal/testutil"
)

// recordedEvents are console events as the server writes them: a write-role
// start (allowed, its workflow type erased from the request by a mask), a
// start recorded by a policy that read only its workflow_id, and a read-role
// list.
const recordedEvents = `{"decision_id":"d1","input":{"claims":{"subject":"svc","auth_type":"jwt","system":[],"namespaces":{"default":["write"]},"jwt":{}},"target":{"api":"/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution","service":"temporal.api.workflowservice.v1.WorkflowService","method":"StartWorkflowExecution","namespace":"default","nexus_endpoint":"","scope":"namespace","access":"write","health_check":false},"request":{"namespace":"default"},"request_type":"temporal.api.workflowservice.v1.StartWorkflowExecutionRequest"},"result":{"allow":true,"reason":""},"custom":{"api":"StartWorkflowExecution","namespace":"default","subject":"svc","erased":["/input/request/workflow_type"]}}
{"decision_id":"d3","input":{"claims":{"subject":"svc","auth_type":"jwt","system":[],"namespaces":{"default":["write"]},"jwt":{}},"target":{"api":"/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution","service":"temporal.api.workflowservice.v1.WorkflowService","method":"StartWorkflowExecution","namespace":"default","nexus_endpoint":"","scope":"namespace","access":"write","health_check":false},"request":{"workflow_id":"wf-7"},"request_type":"temporal.api.workflowservice.v1.StartWorkflowExecutionRequest"},"result":{"allow":true,"reason":""},"custom":{"api":"StartWorkflowExecution","namespace":"default","subject":"svc","request_paths":["/input/request/workflow_id"]}}
{"decision_id":"d2","input":{"claims":{"subject":"ann","auth_type":"jwt","system":[],"namespaces":{"default":["read"]},"jwt":{}},"target":{"api":"/temporal.api.workflowservice.v1.WorkflowService/ListWorkflowExecutions","service":"temporal.api.workflowservice.v1.WorkflowService","method":"ListWorkflowExecutions","namespace":"default","nexus_endpoint":"","scope":"namespace","access":"read","health_check":false}},"result":{"allow":true,"reason":""},"custom":{"api":"ListWorkflowExecutions","namespace":"default","subject":"ann"}}
`

func TestReplay(t *testing.T) {
	events := filepath.Join(testutil.WriteFiles(t, map[string]string{"e.jsonl": recordedEvents}), "e.jsonl")
	manifest := `{"roots": ["temporal/custom"]}`
	cases := []struct {
		name                            string
		rules                           string // temporal/custom module; "" = no --policy
		wantErr                         error
		replayed, changed, unreplayable int
	}{
		{name: "default policy: nothing changes", replayed: 3},
		{name: "deny list: one change", rules: "package temporal.custom\n\ndeny contains \"no lists\" if input.target.method == \"ListWorkflowExecutions\"\n",
			wantErr: offline.Changed{}, replayed: 3, changed: 1},
		{name: "reads a request field that was not recorded: not replayable", rules: "package temporal.custom\n\ndeny contains \"queue\" if input.request.task_queue.name == \"X\"\n",
			replayed: 1, unreplayable: 2},
		{name: "reads only recorded request fields", rules: "package temporal.custom\n\ndeny contains \"id\" if input.request.workflow_id == \"X\"\n",
			replayed: 2, unreplayable: 1},
		{name: "reads an erased field: not replayable", rules: "package temporal.custom\n\ndeny contains \"type\" if input.request.workflow_type.name == \"X\"\n",
			replayed: 0, unreplayable: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := cli.Eval{Replay: []string{events}, Format: "json"}
			if tc.rules != "" {
				o.Policy = []string{testutil.WriteFiles(t, map[string]string{".manifest": manifest, "temporal/custom/r.rego": tc.rules})}
			}
			var out bytes.Buffer
			err := offline.Eval(context.Background(), o, nil, &out)
			if (tc.wantErr == nil) != (err == nil) || (tc.wantErr != nil && !errors.As(err, new(offline.Changed))) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			var rep offline.ReplayReport
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Replayed != tc.replayed || rep.Changed != tc.changed || rep.NotReplayable != tc.unreplayable {
				t.Fatalf("report %s", out.String())
			}
		})
	}
	// Why the start is not replayable: the field was erased. The list is, but
	// its input has no request: not replayable either.
	var out bytes.Buffer
	pol := testutil.WriteFiles(t, map[string]string{".manifest": manifest, "temporal/custom/r.rego": cases[4].rules})
	_ = offline.Eval(context.Background(), cli.Eval{Replay: []string{events}, Policy: []string{pol}}, nil, &out)
	for _, want := range []string{"StartWorkflowExecution: the candidate reads /input/request/workflow_type, which was erased", "ListWorkflowExecutions: the candidate reads input.request, which was not recorded"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestReplayBadInput(t *testing.T) {
	dir := testutil.WriteFiles(t, map[string]string{
		"empty.jsonl":                `{"msg": "not an event"}`,
		"garbage.jsonl":              "Starting ...\n",
		"bad/.manifest":              `{"roots": ["temporal/custom"]}`,
		"bad/temporal/custom/r.rego": "package temporal.custom\n\ndeny := 1\n",
		"e.jsonl":                    recordedEvents,
	})
	for _, tc := range []struct {
		name, events, policy, want string
	}{
		{"no events", "empty.jsonl", "", "no decision-log events found (1 other JSON values skipped)"},
		{"not JSON", "garbage.jsonl", "", "not a JSON decision-log event or batch"},
		{"bad candidate", "e.jsonl", "bad", "data.temporal.custom.deny must be a set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := cli.Eval{Replay: []string{filepath.Join(dir, tc.events)}}
			if tc.policy != "" {
				o.Policy = []string{filepath.Join(dir, tc.policy)}
			}
			err := offline.Eval(context.Background(), o, nil, &bytes.Buffer{})
			var ie *offline.InputError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want an InputError with %q", err, tc.want)
			}
		})
	}
}
