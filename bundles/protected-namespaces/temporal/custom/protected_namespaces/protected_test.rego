package temporal.custom.protected_namespaces_test

import data.temporal.authz
import data.temporal.custom.protected_namespaces as protected

_wf := "temporal.api.workflowservice.v1.WorkflowService"

_target(method, namespace) := {
	"api": concat("", ["/", _wf, "/", method]),
	"service": _wf,
	"method": method,
	"namespace": namespace,
	"nexus_endpoint": "",
	"scope": "namespace",
	"access": _access[method],
	"health_check": false,
}

_access := {
	"TerminateWorkflowExecution": "write",
	"ResetWorkflowExecution": "write",
	"DeleteWorkflowExecution": "write",
	"StartBatchOperation": "write",
	"StopBatchOperation": "write",
	"DeleteSchedule": "write",
	"UpdateWorkflowExecutionOptions": "write",
	"TerminateActivityExecution": "write",
	"DeleteActivityExecution": "write",
	"TerminateNexusOperationExecution": "write",
	"DeleteNexusOperationExecution": "write",
	"StartWorkflowExecution": "write",
	"SignalWorkflowExecution": "write",
	"RequestCancelWorkflowExecution": "write",
	"DescribeWorkflowExecution": "read",
	"RegisterNamespace": "admin",
}

_claims(system, namespaces) := {
	"subject": "alice",
	"auth_type": "jwt",
	"system": system,
	"namespaces": namespaces,
	"jwt": {},
}

_internal := {"subject": "internal", "auth_type": "temporal", "system": ["admin"], "namespaces": {}, "jwt": {}}

_prod_writer := _claims([], {"production": ["write"], "staging": ["write"]})

_by_default := {"allow": true, "reason": "allowed by the default policy"}

_denied(reason) := {"allow": false, "reason": reason}

_cases := {
	# Admins may make destructive calls in protected namespaces.
	"namespace admin terminates in production": {
		"claims": _claims([], {"production": ["admin"]}), "method": "TerminateWorkflowExecution", "namespace": "production",
		"want": _by_default,
	},
	"system admin resets in production": {
		"claims": _claims(["admin"], {}), "method": "ResetWorkflowExecution", "namespace": "production",
		"want": _by_default,
	},
	"system admin with namespace write starts a batch": {
		"claims": _claims(["admin"], {"payments-prod": ["write"]}), "method": "StartBatchOperation", "namespace": "payments-prod",
		"want": _by_default,
	},
	"internal principal deletes in production": {
		"claims": _internal, "method": "DeleteWorkflowExecution", "namespace": "production",
		"want": _by_default,
	},
	# Writers may not, with a reason naming the API, the namespace and the role required.
	"writer cannot terminate in production": {
		"claims": _prod_writer, "method": "TerminateWorkflowExecution", "namespace": "production",
		"want": _denied(`TerminateWorkflowExecution in protected namespace "production" requires admin on "production" or on temporal-system; caller has write`),
	},
	"writer cannot reset in production": {
		"claims": _prod_writer, "method": "ResetWorkflowExecution", "namespace": "production",
		"want": _denied(`ResetWorkflowExecution in protected namespace "production" requires admin on "production" or on temporal-system; caller has write`),
	},
	"writer cannot delete in payments-prod": {
		"claims": _claims([], {"payments-prod": ["write"]}), "method": "DeleteWorkflowExecution", "namespace": "payments-prod",
		"want": _denied(`DeleteWorkflowExecution in protected namespace "payments-prod" requires admin on "payments-prod" or on temporal-system; caller has write`),
	},
	"system writer cannot start a batch in production": {
		"claims": _claims(["write"], {}), "method": "StartBatchOperation", "namespace": "production",
		"want": _denied(`StartBatchOperation in protected namespace "production" requires admin on "production" or on temporal-system; caller has write`),
	},
	"writer cannot stop a batch in production": {
		"claims": _prod_writer, "method": "StopBatchOperation", "namespace": "production",
		"want": _denied(`StopBatchOperation in protected namespace "production" requires admin on "production" or on temporal-system; caller has write`),
	},
	"writer cannot delete a schedule in production": {
		"claims": _prod_writer, "method": "DeleteSchedule", "namespace": "production",
		"want": _denied(`DeleteSchedule in protected namespace "production" requires admin on "production" or on temporal-system; caller has write`),
	},
	"admin elsewhere cannot terminate in production": {
		"claims": _claims([], {"production": ["write"], "staging": ["admin"]}), "method": "TerminateWorkflowExecution", "namespace": "production",
		"want": _denied(`TerminateWorkflowExecution in protected namespace "production" requires admin on "production" or on temporal-system; caller has write`),
	},
	"reader is told the same": {
		"claims": _claims([], {"production": ["read"]}), "method": "TerminateWorkflowExecution", "namespace": "production",
		"want": _denied(`TerminateWorkflowExecution in protected namespace "production" requires admin on "production" or on temporal-system; caller has read`),
	},
	"caller without roles there": {
		"claims": _claims([], {"staging": ["admin"]}), "method": "TerminateWorkflowExecution", "namespace": "production",
		"want": _denied(`TerminateWorkflowExecution in protected namespace "production" requires admin on "production" or on temporal-system; caller has no role`),
	},
	"caller without credentials": {
		"claims": null, "method": "TerminateWorkflowExecution", "namespace": "production",
		"want": _denied(`TerminateWorkflowExecution in protected namespace "production" requires admin on "production" or on temporal-system; caller has no credentials`),
	},
	"namespace names are case-sensitive": {
		"claims": _claims([], {"Production": ["write"]}), "method": "TerminateWorkflowExecution", "namespace": "Production",
		"want": _by_default,
	},
	# Writers keep their other writes in protected namespaces.
	"writer starts in production": {"claims": _prod_writer, "method": "StartWorkflowExecution", "namespace": "production", "want": _by_default},
	"writer signals in production": {"claims": _prod_writer, "method": "SignalWorkflowExecution", "namespace": "production", "want": _by_default},
	"writer cancels in production": {"claims": _prod_writer, "method": "RequestCancelWorkflowExecution", "namespace": "production", "want": _by_default},
	# Other namespaces are unaffected.
	"writer terminates in staging": {"claims": _prod_writer, "method": "TerminateWorkflowExecution", "namespace": "staging", "want": _by_default},
	"writer starts a batch in staging": {"claims": _prod_writer, "method": "StartBatchOperation", "namespace": "staging", "want": _by_default},
	"reader still cannot terminate in staging": {
		"claims": _claims([], {"staging": ["read"]}), "method": "TerminateWorkflowExecution", "namespace": "staging",
		"want": _denied(`TerminateWorkflowExecution in namespace "staging" requires write; caller has read`),
	},
	"writer still cannot register a namespace": {
		"claims": _claims([], {"production": ["write"]}), "method": "RegisterNamespace", "namespace": "production",
		"want": _denied(`RegisterNamespace in namespace "production" requires admin; caller has write`),
	},
}

test_decisions[name] if {
	some name, tc in _cases
	got := authz.decision with input as {"claims": tc.claims, "target": _target(tc.method, tc.namespace)}
	got == tc.want
}

# Every admin-only API is denied to a writer and allowed to an admin of the namespace.
test_every_admin_only_api[method] if {
	some method in protected.admin_only_apis
	target := _target(method, "payments-prod")
	denied := authz.decision with input as {"claims": _claims([], {"payments-prod": ["write"]}), "target": target}
	denied == _denied(sprintf(
		`%s in protected namespace "payments-prod" requires admin on "payments-prod" or on temporal-system; caller has write`,
		[method],
	))
	allowed := authz.decision with input as {"claims": _claims([], {"payments-prod": ["admin"]}), "target": target}
	allowed == _by_default
}

# The protected namespaces come from data.json and can be replaced without editing the policy.
test_namespaces_from_data if {
	data.temporal.custom.protected_namespaces.namespaces == ["production", "payments-prod"]
	got := authz.decision with input as {"claims": _prod_writer, "target": _target("TerminateWorkflowExecution", "production")}
		with data.temporal.custom.protected_namespaces.namespaces as ["staging"]
	got == _by_default
}

test_no_protected_namespaces_protects_nothing if {
	got := authz.decision with input as {"claims": _prod_writer, "target": _target("TerminateWorkflowExecution", "production")}
		with data.temporal.custom.protected_namespaces.namespaces as []
	got == _by_default
}

# Calls whose request options end running executions: input.request as the
# server builds it (protojson with proto field names, enums by name, unset
# fields absent) and input.request_type.
_call(method, namespace, claims, message, body) := {
	"claims": claims,
	"target": _target_any(method, namespace),
	"request": body,
	"request_type": concat("", ["temporal.api.workflowservice.v1.", message]),
}

_target_any(method, namespace) := {
	"api": concat("", ["/", _wf, "/", method]),
	"service": _wf,
	"method": method,
	"namespace": namespace,
	"nexus_endpoint": "",
	"scope": "namespace",
	"access": "write",
	"health_check": false,
}

_start(options) := object.union(
	{"namespace": "production", "workflow_id": "order-42", "workflow_type": {"name": "Order"}, "task_queue": {"name": "orders"}},
	options,
)

_terminate_existing := {"workflow_id_conflict_policy": "WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING"}

_terminate_if_running := {"workflow_id_reuse_policy": "WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING"}

_multi(starts) := {"namespace": "production", "operations": [op |
	some s in starts
	some op in [{"start_workflow": s}, {"update_workflow": {"namespace": "production", "request": {"input": {"name": "approve"}}}}]
]}

_schedule(overlap) := {
	"namespace": "production",
	"schedule_id": "nightly",
	"schedule": {
		"spec": {"cron_string": ["0 2 * * *"]},
		"action": {"start_workflow": {"workflow_id": "nightly", "workflow_type": {"name": "Report"}, "task_queue": {"name": "reports"}}},
		"policies": object.union({"catchup_window": "60s"}, overlap),
	},
}

_overlap(p) := {"overlap_policy": p}

_patch(patch) := {"namespace": "production", "schedule_id": "nightly", "patch": patch}

_backfill(overlap) := object.union({"start_time": "2026-01-01T00:00:00Z", "end_time": "2026-01-02T00:00:00Z"}, overlap)

_needs_admin(what) := _denied(sprintf(
	`%s in protected namespace "production" requires admin on "production" or on temporal-system; caller has write`,
	[what],
))

_ends_same_id := "(terminates the running workflow of the same id)"

_ends_schedule_run := "(terminates the schedule's running workflow)"

_unset_overlap := "SCHEDULE_OVERLAP_POLICY_UNSPECIFIED (unset: the schedule's own overlap policy applies, which may terminate its running workflow; give one other than SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER)"

_writer := _claims([], {"production": ["write"], "staging": ["write"]})

_option_cases := {
	# Starts that terminate the running workflow of the same id.
	"writer starts with TERMINATE_EXISTING": {
		"call": _call("StartWorkflowExecution", "production", _writer, "StartWorkflowExecutionRequest", _start(_terminate_existing)),
		"want": _needs_admin(concat(" ", ["StartWorkflowExecution with workflow_id_conflict_policy WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING", _ends_same_id])),
	},
	"writer starts with TERMINATE_IF_RUNNING": {
		"call": _call("StartWorkflowExecution", "production", _writer, "StartWorkflowExecutionRequest", _start(_terminate_if_running)),
		"want": _needs_admin(concat(" ", ["StartWorkflowExecution with workflow_id_reuse_policy WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING", _ends_same_id])),
	},
	"writer signals-with-start with TERMINATE_EXISTING": {
		"call": _call("SignalWithStartWorkflowExecution", "production", _writer, "SignalWithStartWorkflowExecutionRequest", object.union(_start(_terminate_existing), {"signal_name": "go"})),
		"want": _needs_admin(concat(" ", ["SignalWithStartWorkflowExecution with workflow_id_conflict_policy WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING", _ends_same_id])),
	},
	"writer signals-with-start with TERMINATE_IF_RUNNING": {
		"call": _call("SignalWithStartWorkflowExecution", "production", _writer, "SignalWithStartWorkflowExecutionRequest", _start(_terminate_if_running)),
		"want": _needs_admin(concat(" ", ["SignalWithStartWorkflowExecution with workflow_id_reuse_policy WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING", _ends_same_id])),
	},
	"writer's update-with-start with TERMINATE_EXISTING": {
		"call": _call("ExecuteMultiOperation", "production", _writer, "ExecuteMultiOperationRequest", _multi([_start(_terminate_existing)])),
		"want": _needs_admin(concat(" ", ["ExecuteMultiOperation with operations[0].start_workflow.workflow_id_conflict_policy WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING", _ends_same_id])),
	},
	"writer's update-with-start with TERMINATE_IF_RUNNING in its second start": {
		"call": _call("ExecuteMultiOperation", "production", _writer, "ExecuteMultiOperationRequest", _multi([_start({}), _start(_terminate_if_running)])),
		"want": _needs_admin(concat(" ", ["ExecuteMultiOperation with operations[2].start_workflow.workflow_id_reuse_policy WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING", _ends_same_id])),
	},
	"a reuse policy that keeps running does not excuse TERMINATE_EXISTING": {
		"call": _call("StartWorkflowExecution", "production", _writer, "StartWorkflowExecutionRequest", _start(object.union(_terminate_existing, {"workflow_id_reuse_policy": "WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE"}))),
		"want": _needs_admin(concat(" ", ["StartWorkflowExecution with workflow_id_conflict_policy WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING", _ends_same_id])),
	},
	"two options give two reasons": {
		"call": _call("StartWorkflowExecution", "production", _writer, "StartWorkflowExecutionRequest", _start(object.union(_terminate_existing, _terminate_if_running))),
		"want": _denied(concat("; ", [
		sprintf(`StartWorkflowExecution with %s %s in protected namespace "production" requires admin on "production" or on temporal-system; caller has write`, [option, _ends_same_id]) |
			some option in ["workflow_id_conflict_policy WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING", "workflow_id_reuse_policy WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING"]
		])),
	},
	"a value added to the API later counts (fail closed)": {
		"call": _call("StartWorkflowExecution", "production", _writer, "StartWorkflowExecutionRequest", _start({"workflow_id_conflict_policy": 7})),
		"want": _needs_admin("StartWorkflowExecution with workflow_id_conflict_policy 7 (not a value known to keep running executions)"),
	},
	# Schedules whose overlap policy terminates their running workflow.
	"writer creates a TERMINATE_OTHER schedule": {
		"call": _call("CreateSchedule", "production", _writer, "CreateScheduleRequest", _schedule(_overlap("SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER"))),
		"want": _needs_admin(concat(" ", ["CreateSchedule with schedule.policies.overlap_policy SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER", _ends_schedule_run])),
	},
	"writer updates a schedule to TERMINATE_OTHER": {
		"call": _call("UpdateSchedule", "production", _writer, "UpdateScheduleRequest", _schedule(_overlap("SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER"))),
		"want": _needs_admin(concat(" ", ["UpdateSchedule with schedule.policies.overlap_policy SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER", _ends_schedule_run])),
	},
	"writer creates a schedule triggered at once with TERMINATE_OTHER": {
		"call": _call("CreateSchedule", "production", _writer, "CreateScheduleRequest", object.union(_schedule({}), {"initial_patch": {"trigger_immediately": _overlap("SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER")}})),
		"want": _needs_admin(concat(" ", ["CreateSchedule with initial_patch.trigger_immediately.overlap_policy SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER", _ends_schedule_run])),
	},
	"writer creates a schedule backfilled with TERMINATE_OTHER": {
		"call": _call("CreateSchedule", "production", _writer, "CreateScheduleRequest", object.union(_schedule({}), {"initial_patch": {"backfill_request": [_backfill({}), _backfill(_overlap("SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER"))]}})),
		"want": _needs_admin(concat(" ", ["CreateSchedule with initial_patch.backfill_request[1].overlap_policy SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER", _ends_schedule_run])),
	},
	"writer triggers a schedule with TERMINATE_OTHER": {
		"call": _call("PatchSchedule", "production", _writer, "PatchScheduleRequest", _patch({"trigger_immediately": _overlap("SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER")})),
		"want": _needs_admin(concat(" ", ["PatchSchedule with patch.trigger_immediately.overlap_policy SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER", _ends_schedule_run])),
	},
	"writer triggers a schedule with its own overlap policy": {
		"call": _call("PatchSchedule", "production", _writer, "PatchScheduleRequest", _patch({"trigger_immediately": {}})),
		"want": _needs_admin(concat(" ", ["PatchSchedule with patch.trigger_immediately.overlap_policy", _unset_overlap])),
	},
	"writer backfills a schedule with TERMINATE_OTHER": {
		"call": _call("PatchSchedule", "production", _writer, "PatchScheduleRequest", _patch({"backfill_request": [_backfill(_overlap("SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER"))]})),
		"want": _needs_admin(concat(" ", ["PatchSchedule with patch.backfill_request[0].overlap_policy SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER", _ends_schedule_run])),
	},
	"writer backfills a schedule with its own overlap policy": {
		"call": _call("PatchSchedule", "production", _writer, "PatchScheduleRequest", _patch({"backfill_request": [_backfill(_overlap("SCHEDULE_OVERLAP_POLICY_ALLOW_ALL")), _backfill({})]})),
		"want": _needs_admin(concat(" ", ["PatchSchedule with patch.backfill_request[1].overlap_policy", _unset_overlap])),
	},
	# Admins may; so may the internal principal (the scheduler and batch worker).
	"namespace admin starts with TERMINATE_EXISTING": {
		"call": _call("StartWorkflowExecution", "production", _claims([], {"production": ["admin"]}), "StartWorkflowExecutionRequest", _start(_terminate_existing)),
		"want": _by_default,
	},
	"system admin triggers with TERMINATE_OTHER": {
		"call": _call("PatchSchedule", "production", _claims(["admin"], {}), "PatchScheduleRequest", _patch({"trigger_immediately": _overlap("SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER")})),
		"want": _by_default,
	},
	"internal principal starts with TERMINATE_IF_RUNNING": {
		"call": _call("StartWorkflowExecution", "production", _internal, "StartWorkflowExecutionRequest", _start(_terminate_if_running)),
		"want": _by_default,
	},
	# Options that keep running executions stay with writers.
	"writer starts with defaults": {
		"call": _call("StartWorkflowExecution", "production", _writer, "StartWorkflowExecutionRequest", _start({})),
		"want": _by_default,
	},
	"writer starts with FAIL and REJECT_DUPLICATE": {
		"call": _call("StartWorkflowExecution", "production", _writer, "StartWorkflowExecutionRequest", _start({"workflow_id_conflict_policy": "WORKFLOW_ID_CONFLICT_POLICY_FAIL", "workflow_id_reuse_policy": "WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE"})),
		"want": _by_default,
	},
	"writer signals-with-start with USE_EXISTING": {
		"call": _call("SignalWithStartWorkflowExecution", "production", _writer, "SignalWithStartWorkflowExecutionRequest", _start({"workflow_id_conflict_policy": "WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING"})),
		"want": _by_default,
	},
	"writer's update-with-start with USE_EXISTING": {
		"call": _call("ExecuteMultiOperation", "production", _writer, "ExecuteMultiOperationRequest", _multi([_start({"workflow_id_conflict_policy": "WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING", "workflow_id_reuse_policy": "WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY"})])),
		"want": _by_default,
	},
	"writer creates a schedule without an overlap policy, triggered and backfilled": {
		"call": _call("CreateSchedule", "production", _writer, "CreateScheduleRequest", object.union(_schedule({}), {"initial_patch": {"trigger_immediately": {}, "backfill_request": [_backfill({})]}})),
		"want": _by_default,
	},
	"writer updates a schedule to CANCEL_OTHER": {
		"call": _call("UpdateSchedule", "production", _writer, "UpdateScheduleRequest", _schedule(_overlap("SCHEDULE_OVERLAP_POLICY_CANCEL_OTHER"))),
		"want": _by_default,
	},
	"writer triggers and backfills with BUFFER_ONE and SKIP": {
		"call": _call("PatchSchedule", "production", _writer, "PatchScheduleRequest", _patch({"trigger_immediately": _overlap("SCHEDULE_OVERLAP_POLICY_BUFFER_ONE"), "backfill_request": [_backfill(_overlap("SCHEDULE_OVERLAP_POLICY_SKIP"))]})),
		"want": _by_default,
	},
	"writer pauses a schedule": {
		"call": _call("PatchSchedule", "production", _writer, "PatchScheduleRequest", _patch({"pause": "maintenance"})),
		"want": _by_default,
	},
	"writer's start without a request (offline eval)": {
		"call": {"claims": _writer, "target": _target_any("StartWorkflowExecution", "production")},
		"want": _by_default,
	},
	# Other namespaces are unaffected.
	"writer starts with TERMINATE_EXISTING in staging": {
		"call": _call("StartWorkflowExecution", "staging", _writer, "StartWorkflowExecutionRequest", _start(_terminate_existing)),
		"want": _by_default,
	},
	"writer triggers with TERMINATE_OTHER in staging": {
		"call": _call("PatchSchedule", "staging", _writer, "PatchScheduleRequest", _patch({"trigger_immediately": _overlap("SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER")})),
		"want": _by_default,
	},
	# Roles still apply first: a reader is told about the option, and is denied anyway.
	"reader starts with TERMINATE_EXISTING": {
		"call": _call("StartWorkflowExecution", "production", _claims([], {"production": ["read"]}), "StartWorkflowExecutionRequest", _start(_terminate_existing)),
		"want": _denied(concat(" ", [
			"StartWorkflowExecution with workflow_id_conflict_policy WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING", _ends_same_id,
			`in protected namespace "production" requires admin on "production" or on temporal-system; caller has read`,
		])),
	},
}

test_request_options[name] if {
	some name, tc in _option_cases
	got := authz.decision with input as tc.call
	got == tc.want
}

# Roles granted by role rules of other bundles count as the token's: a granted
# admin on the namespace or on temporal-system may terminate, a granted write
# is denied with the reason naming it.
test_granted_roles_count if {
	inp := {"claims": _claims([], {}), "target": _target("TerminateWorkflowExecution", "production")}
	ns_admin := authz.decision with input as inp with data.temporal.custom.groups.namespace_roles as {"production": {"admin"}}
	ns_admin == _by_default
	sys_admin := authz.decision with input as inp with data.temporal.custom.groups.system_roles as {"admin"}
	sys_admin == _by_default
	writer := authz.decision with input as inp with data.temporal.custom.groups.namespace_roles as {"production": {"write"}}
	writer == _denied(`TerminateWorkflowExecution in protected namespace "production" requires admin on "production" or on temporal-system; caller has write`)
	elsewhere := authz.decision with input as inp with data.temporal.custom.groups.namespace_roles as {"staging": {"admin"}}
	elsewhere == _denied(`TerminateWorkflowExecution in protected namespace "production" requires admin on "production" or on temporal-system; caller has no role`)
}
