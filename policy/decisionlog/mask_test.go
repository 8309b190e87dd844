package decisionlog

import (
	"slices"
	"strings"
	"testing"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// reviewed are fields that look sensitive by name or type (see suspicious) and
// are kept in events on purpose, each with the reason.
var reviewed = map[protoreflect.FullName]string{
	"temporal.api.failure.v1.Failure.source":                             "the SDK that produced the failure (GoSDK, TypeScriptSDK)",
	"temporal.api.nexus.v1.StartOperationResponse.Async.operation_token": "names the operation; acting on it takes the caller's own credentials",
	"temporal.api.schedule.v1.ScheduleSpec.timezone_data":                "a time zone database entry",
	"temporal.api.failure.v1.NexusOperationFailureInfo.operation_token":  "the same token, in the failure of an operation",
}

// pagination and concurrency-control tokens: opaque server cursors, not
// credentials.
var serverTokens = []string{"next_page_token", "conflict_token", "long_poll_token", "page_token"}

// suspicious reports whether a field looks like it may carry a credential or
// user data, independently of what secret erases: a name that says so, opaque
// bytes, or free text in a failure.
func suspicious(fd protoreflect.FieldDescriptor) bool {
	name := string(fd.Name())
	for _, w := range []string{"header", "token", "secret", "password", "credential", "stack_trace", "signature", "private"} {
		if strings.Contains(name, w) {
			return !slices.Contains(serverTokens, name)
		}
	}
	if fd.Kind() == protoreflect.BytesKind {
		return true
	}
	msg := string(fd.ContainingMessage().FullName())
	if strings.HasSuffix(msg, ".Failure") && (fd.Kind() == protoreflect.StringKind || fd.IsMap()) {
		return true
	}
	return false
}

// TestEveryRequestFieldAudited walks every request message of WorkflowService
// and OperatorService as the erasure does (descending into every field it does
// not erase) and fails on a reachable field that looks sensitive but is neither
// erased nor reviewed: a new API field carrying headers, tokens, opaque data or
// failure text is caught here, not in an audit trail.
func TestEveryRequestFieldAudited(t *testing.T) {
	var services []protoreflect.ServiceDescriptor
	for _, f := range []protoreflect.FileDescriptor{
		workflowservice.File_temporal_api_workflowservice_v1_service_proto,
		operatorservice.File_temporal_api_operatorservice_v1_service_proto,
	} {
		for i := range f.Services().Len() {
			services = append(services, f.Services().Get(i))
		}
	}
	seen := map[protoreflect.FullName]bool{}
	erased := map[protoreflect.FullName]bool{}
	reached := map[protoreflect.FullName]bool{} // kept fields without a message type
	var walk func(md protoreflect.MessageDescriptor, path string)
	walk = func(md protoreflect.MessageDescriptor, path string) {
		if seen[md.FullName()] {
			return
		}
		seen[md.FullName()] = true
		for i := range md.Fields().Len() {
			fd := md.Fields().Get(i)
			p := path + "." + string(fd.Name())
			if secret(fd) {
				erased[fd.FullName()] = true
				continue
			}
			sub := fd.Message()
			if fd.IsMap() {
				sub = fd.MapValue().Message()
			}
			if sub != nil {
				walk(sub, p) // what a message holds is audited field by field
				continue
			}
			reached[fd.FullName()] = true
			if _, ok := reviewed[fd.FullName()]; !ok && suspicious(fd) {
				t.Errorf("%s (%s, reached at %s) looks sensitive but is kept in events: erase it in mask.go, or review it here", fd.FullName(), fd.Kind(), p)
			}
		}
	}
	methods := 0
	for _, s := range services {
		for i := range s.Methods().Len() {
			m := s.Methods().Get(i)
			methods++
			walk(m.Input(), string(m.Name()))
		}
	}
	if methods < 100 {
		t.Fatalf("walked %d methods: the services were not found", methods)
	}
	// What must be erased is reached, and the erasure's own names exist.
	for _, name := range []protoreflect.FullName{
		"temporal.api.common.v1.Callback.Nexus.header",
		"temporal.api.common.v1.Callback.Internal.data",
		"temporal.api.failure.v1.Failure.message",
		"temporal.api.failure.v1.Failure.stack_trace",
		"temporal.api.failure.v1.Failure.encoded_attributes",
		"temporal.api.command.v1.ScheduleNexusOperationCommandAttributes.nexus_header",
		"temporal.api.workflowservice.v1.StartNexusOperationExecutionRequest.nexus_header",
		"temporal.api.workflowservice.v1.RespondActivityTaskCompletedRequest.task_token",
		"temporal.api.workflowservice.v1.StartWorkflowExecutionRequest.input",
	} {
		if !erased[name] {
			t.Errorf("%s is not erased where requests carry it", name)
		}
	}
	for name := range reviewed {
		if !reached[name] {
			t.Errorf("reviewed names %s, which no request carries any more", name)
		}
	}
	for name := range secretFields {
		if _, err := protoregistry.GlobalFiles.FindDescriptorByName(name); err != nil {
			t.Errorf("secretFields names %s: %v", name, err)
		}
	}
	t.Logf("%d methods, %d message types walked, %d erased fields reached", methods, len(seen), len(erased))
}
