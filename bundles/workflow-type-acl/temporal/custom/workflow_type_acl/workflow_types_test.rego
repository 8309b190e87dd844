package temporal.custom.workflow_type_acl_test

import data.temporal.authz

_wf := "temporal.api.workflowservice.v1.WorkflowService"

_target(method, namespace) := {
	"api": concat("", ["/", _wf, "/", method]),
	"service": _wf,
	"method": method,
	"namespace": namespace,
	"nexus_endpoint": "",
	"scope": "namespace",
	"access": "write",
	"health_check": false,
}

# A caller with write on "default" and "orders", in the given groups.
_claims(groups) := _caller({"default": ["write"], "orders": ["write"]}, {"groups": groups})

_caller(namespaces, jwt) := {
	"subject": "alice",
	"auth_type": "jwt",
	"system": [],
	"namespaces": namespaces,
	"jwt": object.union({"iss": "https://keycloak.example/realms/temporal"}, jwt),
}

_payments := _claims(["payments-team"])

_platform := _claims(["platform"])

_internal := {"subject": "internal", "auth_type": "temporal", "system": ["admin"], "namespaces": {}, "jwt": {}}

# Requests as the server passes them: input.request (protojson with proto
# field names) and input.request_type (the message's full proto name).
_call(message, body) := {"request": body, "request_type": concat("", ["temporal.api.workflowservice.v1.", message])}

_start(type) := {
	"namespace": "default",
	"workflow_id": "order-42",
	"workflow_type": {"name": type},
	"task_queue": {"name": "payments"},
}

_multi_body(type) := {"namespace": "default", "operations": [
	{"start_workflow": _start(type)},
	{"update_workflow": {"namespace": "default", "request": {"input": {"name": "approve"}}}},
]}

_schedule_body(type) := {
	"namespace": "default",
	"schedule_id": "nightly",
	"schedule": {
		"spec": {"cron_string": ["0 2 * * *"]},
		"action": {"start_workflow": {
			"workflow_id": "nightly",
			"workflow_type": {"name": type},
			"task_queue": {"name": "payments"},
		}},
	},
}

# RespondWorkflowTaskCompleted, re-authorized as StartWorkflowExecution in each
# other namespace its start-child commands target.
_child_body := {"namespace": "orders", "commands": [
	{
		"command_type": "COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION",
		"start_child_workflow_execution_command_attributes": {
			"namespace": "default", "workflow_id": "c1",
			"workflow_type": {"name": "payments.Refund"},
		},
	},
	{
		"command_type": "COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION",
		"start_child_workflow_execution_command_attributes": {
			"namespace": "billing", "workflow_id": "c2",
			"workflow_type": {"name": "billing.Invoice"},
		},
	},
]}

_start_call(type) := _call("StartWorkflowExecutionRequest", _start(type))

_signal_with_start_call(type) := _call("SignalWithStartWorkflowExecutionRequest", object.union(_start(type), {"signal_name": "go"}))

_multi_call(type) := _call("ExecuteMultiOperationRequest", _multi_body(type))

_create_schedule_call(type) := _call("CreateScheduleRequest", _schedule_body(type))

_update_schedule_call(type) := _call("UpdateScheduleRequest", _schedule_body(type))

_child_call := _call("RespondWorkflowTaskCompletedRequest", _child_body)

_by_default := {"allow": true, "reason": "allowed by the default policy"}

_denied(reason) := {"allow": false, "reason": reason}

_not_payments(method, type) := _denied(sprintf(
	`%s of workflow type %q in namespace "default" is denied by the workflow-type ACL: the caller's groups allow only types starting with "payments."`,
	[method, type],
))

_no_grant(method, type) := _denied(sprintf(
	`%s of workflow type %q in namespace "default" is denied by the workflow-type ACL: no group of the caller is granted any workflow type (workflow_type_acl.prefixes_by_group)`,
	[method, type],
))

_unreadable(method) := _denied(sprintf(
	`%s in namespace "default" is denied by the workflow-type ACL: the workflow type cannot be read from the request (input.request)`,
	[method],
))

_cases := {
	# A group may start the types with its prefixes.
	"payments starts payments.Charge": {
		"claims": _payments, "method": "StartWorkflowExecution", "call": _start_call("payments.Charge"),
		"want": _by_default,
	},
	"payments signal-with-starts payments.Charge": {
		"claims": _payments, "method": "SignalWithStartWorkflowExecution",
		"call": _signal_with_start_call("payments.Charge"),
		"want": _by_default,
	},
	"payments update-with-starts payments.Charge": {
		"claims": _payments, "method": "ExecuteMultiOperation", "call": _multi_call("payments.Charge"),
		"want": _by_default,
	},
	"payments schedules payments.Settle": {
		"claims": _payments, "method": "CreateSchedule", "call": _create_schedule_call("payments.Settle"),
		"want": _by_default,
	},
	"payments updates a schedule to payments.Settle": {
		"claims": _payments, "method": "UpdateSchedule", "call": _update_schedule_call("payments.Settle"),
		"want": _by_default,
	},
	"platform starts anything": {
		"claims": _platform, "method": "StartWorkflowExecution", "call": _start_call("billing.Invoice"),
		"want": _by_default,
	},
	"one of several groups suffices": {
		"claims": _claims(["engineering", "payments-team"]), "method": "StartWorkflowExecution",
		"call": _start_call("payments.Charge"),
		"want": _by_default,
	},
	"a single-string groups claim": {
		"claims": _claims("payments-team"), "method": "StartWorkflowExecution", "call": _start_call("payments.Charge"),
		"want": _by_default,
	},
	# And nothing else, with a reason naming the workflow type.
	"payments cannot start billing.Invoice": {
		"claims": _payments, "method": "StartWorkflowExecution", "call": _start_call("billing.Invoice"),
		"want": _not_payments("StartWorkflowExecution", "billing.Invoice"),
	},
	"prefix match is case-sensitive": {
		"claims": _payments, "method": "StartWorkflowExecution", "call": _start_call("Payments.Charge"),
		"want": _not_payments("StartWorkflowExecution", "Payments.Charge"),
	},
	"payments cannot signal-with-start billing.Invoice": {
		"claims": _payments, "method": "SignalWithStartWorkflowExecution", "call": _signal_with_start_call("billing.Invoice"),
		"want": _not_payments("SignalWithStartWorkflowExecution", "billing.Invoice"),
	},
	"payments cannot update-with-start billing.Invoice": {
		"claims": _payments, "method": "ExecuteMultiOperation", "call": _multi_call("billing.Invoice"),
		"want": _not_payments("ExecuteMultiOperation", "billing.Invoice"),
	},
	"payments cannot schedule billing.Invoice": {
		"claims": _payments, "method": "CreateSchedule", "call": _create_schedule_call("billing.Invoice"),
		"want": _not_payments("CreateSchedule", "billing.Invoice"),
	},
	"payments cannot switch a schedule to billing.Invoice": {
		"claims": _payments, "method": "UpdateSchedule", "call": _update_schedule_call("billing.Invoice"),
		"want": _not_payments("UpdateSchedule", "billing.Invoice"),
	},
	"unknown group is denied": {
		"claims": _claims(["marketing"]), "method": "StartWorkflowExecution", "call": _start_call("payments.Charge"),
		"want": _no_grant("StartWorkflowExecution", "payments.Charge"),
	},
	"no groups claim is denied": {
		"claims": _caller({"default": ["write"]}, {}), "method": "StartWorkflowExecution",
		"call": _start_call("payments.Charge"),
		"want": _no_grant("StartWorkflowExecution", "payments.Charge"),
	},
	# Fail closed when the workflow type cannot be read.
	"platform without a request is denied": {
		"claims": _platform, "method": "StartWorkflowExecution",
		"want": _unreadable("StartWorkflowExecution"),
	},
	"request without request_type is denied": {
		"claims": _platform, "method": "StartWorkflowExecution", "call": {"request": _start("payments.Charge")},
		"want": _unreadable("StartWorkflowExecution"),
	},
	"request of another type is denied": {
		"claims": _platform, "method": "StartWorkflowExecution",
		"call": _call("DescribeWorkflowExecutionRequest", {"namespace": "default", "workflow_type": {"name": "payments.Charge"}}),
		"want": _unreadable("StartWorkflowExecution"),
	},
	"empty request is denied": {
		"claims": _platform, "method": "StartWorkflowExecution", "call": _call("StartWorkflowExecutionRequest", {}),
		"want": _unreadable("StartWorkflowExecution"),
	},
	"non-string workflow type is denied": {
		"claims": _platform, "method": "StartWorkflowExecution", "call": _call("StartWorkflowExecutionRequest", {"workflow_type": {"name": 7}}),
		"want": _unreadable("StartWorkflowExecution"),
	},
	"schedule without a start_workflow action is denied": {
		"claims": _platform, "method": "CreateSchedule", "call": _call("CreateScheduleRequest", {"schedule": {"action": {}}}),
		"want": _unreadable("CreateSchedule"),
	},
	"multi-operation without a start is denied": {
		"claims": _platform, "method": "ExecuteMultiOperation",
		"call": _call("ExecuteMultiOperationRequest", {"operations": [{"update_workflow": {"namespace": "default"}}]}),
		"want": _unreadable("ExecuteMultiOperation"),
	},
	"multi-operation start without a type is denied": {
		"claims": _platform, "method": "ExecuteMultiOperation",
		"call": _call("ExecuteMultiOperationRequest", {"operations": [{"start_workflow": {"workflow_id": "x"}}]}),
		"want": _unreadable("ExecuteMultiOperation"),
	},
	# Cross-namespace child workflows: the start-child commands targeting this namespace.
	"payments worker starts a payments child in default": {
		"claims": _payments, "method": "StartWorkflowExecution", "call": _child_call,
		"want": _by_default,
	},
	"marketing worker cannot start a payments child in default": {
		"claims": _claims(["marketing"]), "method": "StartWorkflowExecution", "call": _child_call,
		"want": _no_grant("StartWorkflowExecution", "payments.Refund"),
	},
	"child command without a workflow type is denied": {
		"claims": _platform, "method": "StartWorkflowExecution",
		"call": _call("RespondWorkflowTaskCompletedRequest", {"commands": [{"start_child_workflow_execution_command_attributes": {"namespace": "default", "workflow_id": "c3"}}]}),
		"want": _unreadable("StartWorkflowExecution"),
	},
	# Roles still apply, and the rest is the default policy's.
	"reader in platform still cannot start": {
		"claims": _caller({"default": ["read"]}, {"groups": ["platform"]}), "method": "StartWorkflowExecution",
		"call": _start_call("payments.Charge"),
		"want": _denied(`StartWorkflowExecution in namespace "default" requires write; caller has read`),
	},
	"other APIs are not governed": {
		"claims": _claims([]), "method": "SignalWorkflowExecution",
		"want": _by_default,
	},
	"namespaces without the ACL are not governed": {
		"claims": _claims([]), "method": "StartWorkflowExecution", "namespace": "orders",
		"call": _call("StartWorkflowExecutionRequest", object.union(_start("billing.Invoice"), {"namespace": "orders"})),
		"want": _by_default,
	},
	"the internal principal is not governed": {
		"claims": _internal, "method": "StartWorkflowExecution", "call": _start_call("billing.Invoice"),
		"want": _by_default,
	},
	"no credentials is denied by the ACL first": {
		"claims": null, "method": "StartWorkflowExecution", "call": _start_call("payments.Charge"),
		"want": _no_grant("StartWorkflowExecution", "payments.Charge"),
	},
}

test_decisions[name] if {
	some name, tc in _cases
	target := _target(tc.method, object.get(tc, "namespace", "default"))
	call := object.get(tc, "call", {})
	got := authz.decision with input as object.union({"claims": tc.claims, "target": target}, call)
	got == tc.want
}

# "*" in workflow_type_acl.namespaces puts every namespace under the ACL.
test_all_namespaces if {
	got := authz.decision with input as {
		"claims": _payments,
		"target": _target("StartWorkflowExecution", "orders"),
		"request": object.union(_start("billing.Invoice"), {"namespace": "orders"}),
		"request_type": "temporal.api.workflowservice.v1.StartWorkflowExecutionRequest",
	}
		with data.temporal.custom.workflow_type_acl.namespaces as ["*"]
	got == _denied(`StartWorkflowExecution of workflow type "billing.Invoice" in namespace "orders" is denied by the workflow-type ACL: the caller's groups allow only types starting with "payments."`)
}

# The shipped data.json governs the namespace "default" only.
test_data_json if {
	data.temporal.custom.workflow_type_acl.namespaces == ["default"]
	data.temporal.custom.workflow_type_acl.prefixes_by_group == {"payments-team": ["payments."], "platform": [""]}
}
