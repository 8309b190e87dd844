package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/bundle"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/authorization"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/temporal-opa/temporal-opa/policy"
)

// terminatingValues are the enum values of Temporal's API that make a call
// end running executions other than through TerminateWorkflowExecution.
var terminatingValues = map[protoreflect.FullName]protoreflect.Name{
	enumspb.WorkflowIdConflictPolicy(0).Descriptor().FullName(): "WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING",
	enumspb.WorkflowIdReusePolicy(0).Descriptor().FullName():    "WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING",
	enumspb.ScheduleOverlapPolicy(0).Descriptor().FullName():    "SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER",
}

// notTerminating are the request fields of those enum types that the server
// does not let end a running execution, each with the reason. Keep
// bundles/protected-namespaces/README.md in step.
var notTerminating = map[string]string{
	// A child workflow is started with conflict policy FAIL whatever the
	// command says (history's transfer task), so TERMINATE_IF_RUNNING cannot
	// end a running workflow; TERMINATE_EXISTING cannot be given at all.
	"RespondWorkflowTaskCompleted commands[].start_child_workflow_execution_command_attributes.workflow_id_reuse_policy": "children start with conflict policy FAIL",
	// The scheduler starts each action with a reuse policy of its own (and
	// ids made unique by the nominal time): these fields are not used.
	"CreateSchedule schedule.action.start_workflow.workflow_id_reuse_policy": "the scheduler sets its own",
	"UpdateSchedule schedule.action.start_workflow.workflow_id_reuse_policy": "the scheduler sets its own",
}

// Every field of every WorkflowService request whose enum value ends running
// executions (TERMINATE_EXISTING, TERMINATE_IF_RUNNING, TERMINATE_OTHER),
// found through the proto descriptors so that fields added to the API later
// are found too, is denied to a writer in a protected namespace by the
// protected-namespaces bundle, or is listed in notTerminating with the reason.
func TestProtectedNamespacesCoverEveryTerminatingField(t *testing.T) {
	b, err := policy.LoadBundle(repoPath(t, "bundles/protected-namespaces"))
	if err != nil {
		t.Fatal(err)
	}
	az, err := policy.NewAuthorizer(policy.Options{}, map[string]*bundle.Bundle{"policy": b})
	if err != nil {
		t.Fatal(err)
	}
	writer := &authorization.Claims{Subject: "writer", Namespaces: map[string]authorization.Role{"production": authorization.RoleWriter}}
	admin := &authorization.Claims{Subject: "admin", Namespaces: map[string]authorization.Role{"production": authorization.RoleAdmin}}
	svc := workflowservice.File_temporal_api_workflowservice_v1_service_proto.Services().ByName("WorkflowService")
	var found []string
	for i := range svc.Methods().Len() {
		m := svc.Methods().Get(i)
		for _, path := range terminatingFields(m.Input(), nil, nil) {
			name := fmt.Sprintf("%s %s", m.Name(), pathString(path))
			found = append(found, name)
			t.Run(name, func(t *testing.T) {
				mt, err := protoregistry.GlobalTypes.FindMessageByName(m.Input().FullName())
				if err != nil {
					t.Fatal(err)
				}
				req := mt.New()
				if ns := m.Input().Fields().ByName("namespace"); ns != nil {
					req.Set(ns, protoreflect.ValueOfString("production"))
				}
				setPath(req, path)
				target := &authorization.CallTarget{APIName: "/temporal.api.workflowservice.v1.WorkflowService/" + string(m.Name()),
					Namespace: "production", Request: req.Interface()}
				d, err := az.Decide(context.Background(), writer, target)
				if err != nil {
					t.Fatal(err)
				}
				if why, ok := notTerminating[name]; ok {
					if !d.Allow && !strings.Contains(d.Reason, "in protected namespace") {
						t.Errorf("denied for another reason: %s", d.Reason)
					}
					t.Logf("not terminating (%s): %v", why, d.Allow)
					return
				}
				if d.Allow {
					t.Fatalf("a writer's %s is allowed in protected namespace production: it ends running executions; require admin for it in bundles/protected-namespaces (or list it in notTerminating with the reason)", name)
				}
				if !strings.Contains(d.Reason, `in protected namespace "production" requires admin`) {
					t.Errorf("denied with %q, want the bundle's reason", d.Reason)
				}
				if d, err := az.Decide(context.Background(), admin, target); err != nil || !d.Allow {
					t.Errorf("admin: %+v, %v; want allowed", d, err)
				}
			})
		}
	}
	// The walk finds the fields it must (a broken walk would pass vacuously).
	for _, want := range []string{
		"StartWorkflowExecution workflow_id_conflict_policy",
		"SignalWithStartWorkflowExecution workflow_id_reuse_policy",
		"ExecuteMultiOperation operations[].start_workflow.workflow_id_conflict_policy",
		"PatchSchedule patch.backfill_request[].overlap_policy",
	} {
		if !slices.Contains(found, want) {
			t.Errorf("the walk did not find %s; found %q", want, found)
		}
	}
	for name := range notTerminating {
		if !slices.Contains(found, name) {
			t.Errorf("notTerminating lists %s, which the API no longer has", name)
		}
	}
}

// terminatingFields returns the paths below md to enum fields of the types in
// terminatingValues, without entering a message type twice on one path.
func terminatingFields(md protoreflect.MessageDescriptor, prefix []protoreflect.FieldDescriptor, seen []protoreflect.FullName) [][]protoreflect.FieldDescriptor {
	if slices.Contains(seen, md.FullName()) || len(prefix) > 8 {
		return nil
	}
	seen = append(seen, md.FullName())
	var out [][]protoreflect.FieldDescriptor
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		path := append(slices.Clone(prefix), fd)
		switch {
		case fd.IsMap():
			continue
		case fd.Kind() == protoreflect.EnumKind && !fd.IsList():
			if _, ok := terminatingValues[fd.Enum().FullName()]; ok {
				out = append(out, path)
			}
		case fd.Kind() == protoreflect.MessageKind:
			out = append(out, terminatingFields(fd.Message(), path, seen)...)
		}
	}
	return out
}

func pathString(path []protoreflect.FieldDescriptor) string {
	var parts []string
	for _, fd := range path {
		s := string(fd.Name())
		if fd.IsList() {
			s += "[]"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ".")
}

// setPath sets the enum at the end of path to its terminating value, making
// the messages on the way (one element of each list).
func setPath(m protoreflect.Message, path []protoreflect.FieldDescriptor) {
	cur := m
	for _, fd := range path[:len(path)-1] {
		if fd.IsList() {
			l := cur.Mutable(fd).List()
			e := l.NewElement()
			l.Append(e)
			cur = e.Message()
			continue
		}
		cur = cur.Mutable(fd).Message()
	}
	last := path[len(path)-1]
	v := last.Enum().Values().ByName(terminatingValues[last.Enum().FullName()])
	cur.Set(last, protoreflect.ValueOfEnum(v.Number()))
}
