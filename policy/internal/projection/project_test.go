package projection

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	batchpb "go.temporal.io/api/batch/v1"
	commandpb "go.temporal.io/api/command/v1"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/authorization"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/temporal-opa/temporal-opa/policy/internal/jsonpointer"
)

// leafPointers lists the JSON pointers of every leaf of a JSON value below at,
// "*" for the elements of arrays: the reads of a policy that reads every field
// by a fixed path.
func leafPointers(v any, at string, out []string) []string {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			return append(out, at)
		}
		for k, e := range x {
			out = leafPointers(e, at+"/"+jsonpointer.Escape(k), out)
		}
		return out
	case []any:
		if len(x) == 0 {
			return append(out, at)
		}
		for _, e := range x {
			out = leafPointers(e, at+"/*", out)
		}
		return out
	}
	return append(out, at)
}

// TestProjectionEqualsProtoJSON: a request projected field by field (every
// populated field read by its path) is exactly input.request of the whole
// document, which is protojson with proto names: numbers of every kind as the
// same text (1000000, not 1e+06), enums by name, bytes in base64, 64-bit
// integers as strings, well-known types in their JSON form, maps and repeated
// fields.
func TestProjectionEqualsProtoJSON(t *testing.T) {
	payload := func(s string) *commonpb.Payload {
		return &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(s)}
	}
	tests := []struct {
		name string
		req  proto.Message
	}{
		{"start with every kind", &workflowservice.StartWorkflowExecutionRequest{
			Namespace:                "default",
			WorkflowId:               "w1",
			WorkflowType:             &commonpb.WorkflowType{Name: "payments.Charge"},
			TaskQueue:                &taskqueuepb.TaskQueue{Name: "q", Kind: enumspb.TASK_QUEUE_KIND_STICKY},
			Input:                    &commonpb.Payloads{Payloads: []*commonpb.Payload{payload(`"a"`), payload(`2`)}},
			WorkflowExecutionTimeout: durationpb.New(90 * time.Second),
			WorkflowRunTimeout:       durationpb.New(1500 * time.Millisecond),
			WorkflowIdReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING,
			WorkflowIdConflictPolicy: enumspb.WorkflowIdConflictPolicy(99), // unknown to this API version: a number
			RetryPolicy: &commonpb.RetryPolicy{
				InitialInterval:        durationpb.New(time.Second),
				BackoffCoefficient:     1e6,
				MaximumAttempts:        -3,
				NonRetryableErrorTypes: []string{"A", "B"},
			},
			Memo:                  &commonpb.Memo{Fields: map[string]*commonpb.Payload{"k": payload("v"), "k/2~": payload("w")}},
			Header:                &commonpb.Header{Fields: map[string]*commonpb.Payload{"tenant": payload("t1")}},
			RequestEagerExecution: true,
			WorkflowStartDelay:    durationpb.New(0),
			Priority:              &commonpb.Priority{PriorityKey: 3, FairnessKey: "f", FairnessWeight: 0.1},
			CompletionCallbacks: []*commonpb.Callback{{Variant: &commonpb.Callback_Nexus_{Nexus: &commonpb.Callback_Nexus{
				Url: "http://127.0.0.1/cb", Header: map[string]string{"a": "b"}}}}},
		}},
		{"doubles at protojson's notation bounds", &workflowservice.StartWorkflowExecutionRequest{
			Namespace: "default",
			RetryPolicy: &commonpb.RetryPolicy{BackoffCoefficient: 1e21, MaximumAttempts: math.MaxInt32,
				InitialInterval: durationpb.New(time.Nanosecond)},
		}},
		{"small and large doubles", &workflowservice.StartWorkflowExecutionRequest{
			RetryPolicy: &commonpb.RetryPolicy{BackoffCoefficient: 1e-7},
		}},
		{"doubles just inside the bounds", &workflowservice.StartWorkflowExecutionRequest{
			RetryPolicy: &commonpb.RetryPolicy{BackoffCoefficient: 123456789012345678901},
		}},
		{"negative small double", &workflowservice.StartWorkflowExecutionRequest{
			RetryPolicy: &commonpb.RetryPolicy{BackoffCoefficient: -0.000001},
		}},
		{"floats (32 bits) and 64-bit integers", &workflowservice.StartBatchOperationRequest{
			Namespace:              "default",
			JobId:                  "j",
			MaxOperationsPerSecond: 1e6,
			Executions:             []*commonpb.WorkflowExecution{{WorkflowId: "a"}, {WorkflowId: "b", RunId: "r"}},
			Operation: &workflowservice.StartBatchOperationRequest_TerminationOperation{TerminationOperation: &batchpb.BatchOperationTermination{
				Identity: "me"}},
		}},
		{"float below 1e-6", &workflowservice.StartBatchOperationRequest{MaxOperationsPerSecond: 1e-7}},
		{"float with a 32-bit rounding", &workflowservice.StartBatchOperationRequest{MaxOperationsPerSecond: 0.1}},
		{"timestamps and 64-bit integers", &workflowservice.GetWorkflowExecutionHistoryReverseRequest{
			Namespace: "default", MaximumPageSize: 7, NextPageToken: []byte{0, 1, 2, 255}}},
		{"repeated messages with oneofs", &workflowservice.RespondWorkflowTaskCompletedRequest{
			Namespace: "default",
			TaskToken: []byte("token"),
			Commands: []*commandpb.Command{
				{CommandType: enumspb.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION, Attributes: &commandpb.Command_StartChildWorkflowExecutionCommandAttributes{
					StartChildWorkflowExecutionCommandAttributes: &commandpb.StartChildWorkflowExecutionCommandAttributes{
						Namespace: "other", WorkflowType: &commonpb.WorkflowType{Name: "x"}, WorkflowRunTimeout: durationpb.New(time.Minute)}}},
				{CommandType: enumspb.COMMAND_TYPE_START_TIMER, Attributes: &commandpb.Command_StartTimerCommandAttributes{
					StartTimerCommandAttributes: &commandpb.StartTimerCommandAttributes{TimerId: "t", StartToFireTimeout: durationpb.New(time.Hour)}}},
			},
			StickyAttributes: &taskqueuepb.StickyExecutionAttributes{ScheduleToStartTimeout: durationpb.New(5 * time.Second)},
		}},
		{"timestamp", &workflowservice.ResetWorkflowExecutionRequest{Namespace: "default",
			WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: "w"}, WorkflowTaskFinishEventId: 1 << 60}},
		{"timestamp field", &workflowservice.UpdateWorkerBuildIdCompatibilityRequest{Namespace: "default", TaskQueue: "q"}},
		{"a timestamp value", &workflowservice.ListScheduleMatchingTimesRequest{Namespace: "default", ScheduleId: "s",
			StartTime: timestamppb.New(time.Unix(1700000000, 5)), EndTime: timestamppb.New(time.Unix(0, 0))}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target := &authorization.CallTarget{APIName: "/x.v1.S/M", Namespace: "default", Request: tc.req}
			whole, err := Whole(nil, target, nil, true)
			if err != nil {
				t.Fatal(err)
			}
			wantReq := whole.(ast.Object).Get(keyRequest)
			doc, err := ast.JSON(wantReq.Value)
			if err != nil {
				t.Fatal(err)
			}
			ptrs := leafPointers(doc, "/input/request", nil)
			r := &Reads{request: treeOfPointers("/input/request", ptrs)}
			in, err := r.Input(nil, target, nil)
			if err != nil {
				t.Fatal(err)
			}
			gotReq := in.(ast.Object).Get(keyRequest)
			if got, want := jsonText(t, gotReq.Value), jsonText(t, wantReq.Value); got != want {
				t.Errorf("projected by %q:\n%s\nprotojson:\n%s", ptrs, got, want)
			}
			// The key writer reads the same values: a key of this tree exists.
			if _, ok := r.Key(nil, nil, target, nil); !ok {
				t.Errorf("no key for a request read by fixed paths")
			}
		})
	}
}

// jsonText is a value's JSON text with object keys sorted and numbers as
// their OPA text (1e+06 and 1000000 differ).
func jsonText(t *testing.T, v ast.Value) string {
	t.Helper()
	x, err := ast.JSON(v)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestFormatFloatIsProtoJSON compares formatFloat with protojson's own
// output over a range of magnitudes, both widths.
func TestFormatFloatIsProtoJSON(t *testing.T) {
	values := []float64{0, 1, -1, 0.1, 1.5, 1e6, 1e-6, 9.99e-7, 1e-7, 1e20, 1e21, 1.5e21, 123456789, 1.0 / 3, -2.5e-10, math.MaxFloat64, math.SmallestNonzeroFloat64, math.MaxFloat32}
	for _, f := range values {
		m := &commonpb.RetryPolicy{BackoffCoefficient: f}
		b, err := requestJSON.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]json.Number
		dec := json.NewDecoder(bytesReader(b))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			t.Fatal(err)
		}
		want := string(doc["backoff_coefficient"])
		if f == 0 {
			want = "0" // omitted by protojson; formatFloat's own zero
		}
		if got := formatFloat(f, 64); got != want {
			t.Errorf("double %v: formatFloat %q, protojson %q", f, got, want)
		}
		f32 := float32(f)
		if math.IsInf(float64(f32), 0) {
			continue
		}
		bm := &workflowservice.StartBatchOperationRequest{MaxOperationsPerSecond: f32}
		b, err = requestJSON.Marshal(bm)
		if err != nil {
			t.Fatal(err)
		}
		doc = nil
		dec = json.NewDecoder(bytesReader(b))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			t.Fatal(err)
		}
		want = string(doc["max_operations_per_second"])
		if f32 == 0 {
			want = "0"
		}
		if got := formatFloat(float64(f32), 32); got != want {
			t.Errorf("float %v: formatFloat %q, protojson %q", f32, got, want)
		}
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
