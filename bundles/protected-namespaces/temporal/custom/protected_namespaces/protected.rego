# METADATA
# title: Protected namespaces
# description: |
#   In the namespaces listed in data.temporal.custom.protected_namespaces.namespaces
#   (data.json), the calls that end, rewrite or erase executions and schedules
#   (terminate, reset, delete, batch operations, ...) require admin on that
#   namespace or on temporal-system. Temporal's default authorizer lets any
#   writer make them. Other namespaces, and every other call, are decided by
#   the default policy as before. Roles granted by role rules of other bundles
#   (namespace_roles, system_roles) count as token roles do: the caller's roles
#   are read from data.temporal.authz.held_roles.
package temporal.custom.protected_namespaces

# METADATA
# scope: document
# title: Deny destructive calls to non-admins
# description: |
#   One reason per denied call, naming the API, the namespace, the role required
#   and the caller's highest role there.
deny contains reason if {
	input.target.service == "temporal.api.workflowservice.v1.WorkflowService"
	input.target.method in admin_only_apis
	input.target.namespace in _protected
	not _is_admin
	reason := sprintf(
		"%s in protected namespace %q requires admin on %q or on temporal-system; caller has %s",
		[input.target.method, input.target.namespace, input.target.namespace, _caller_text],
	)
}

# The namespaces listed in data.json: exact, case-sensitive names, as Temporal
# matches them. Non-string entries are ignored.
_protected contains ns if {
	some ns in data.temporal.custom.protected_namespaces.namespaces
	is_string(ns)
}

# METADATA
# title: Admin-only APIs
# description: |
#   WorkflowService methods that require admin in a protected namespace
#   (Temporal classifies them all as write).
admin_only_apis := {
	# Named in issue 5: end, rewind or erase workflow executions.
	"TerminateWorkflowExecution",
	"ResetWorkflowExecution",
	"DeleteWorkflowExecution",
	# Batch operations run terminate, reset, delete, signal, cancel, ... on every
	# workflow a visibility query matches; stopping one is an admin decision too.
	"StartBatchOperation",
	"StopBatchOperation",
	# Deleting a schedule is irreversible and stops future runs.
	"DeleteSchedule",
	# Versioning overrides move running workflows to other worker code.
	"UpdateWorkflowExecutionOptions",
	# The same for standalone activities and Nexus operations.
	"TerminateActivityExecution",
	"DeleteActivityExecution",
	"TerminateNexusOperationExecution",
	"DeleteNexusOperationExecution",
}

# held_roles: the token's system roles and its roles on the target namespace,
# and the roles role rules grant there.
_is_admin if "admin" in data.temporal.authz.held_roles

_rank := {"worker": 1, "read": 2, "write": 4, "admin": 8}

_held_ranks contains _rank[role] if {
	some role in data.temporal.authz.held_roles
}

_caller_text := "no credentials" if {
	input.claims == null
} else := role if {
	some role, rank in _rank
	rank == max(_held_ranks)
} else := "no role"

# METADATA
# title: Deny request options that end executions to non-admins
# description: |
#   The same for calls that are not destructive by their API but by an option
#   of their request: a start that terminates the running workflow of the same
#   id, a schedule whose overlap policy terminates its running workflow. One
#   reason per such option, naming the API, the option and its effect.
deny contains reason if {
	input.target.service == "temporal.api.workflowservice.v1.WorkflowService"
	input.target.namespace in _protected
	not _is_admin
	some option in admin_only_options
	reason := sprintf(
		"%s with %s in protected namespace %q requires admin on %q or on temporal-system; caller has %s",
		[input.target.method, option, input.target.namespace, input.target.namespace, _caller_text],
	)
}

# METADATA
# title: Admin-only request options
# description: |
#   The options of this call's request that may end running executions, each
#   as "<field path> <value> (<effect>)". An option counts unless its value is
#   one known to keep running executions (an allow-list: a value added to the
#   API later counts). The request is read at fixed paths (input.request.x.y,
#   input.request.operations[i].start_workflow.z), never whole, so the server
#   keeps caching these decisions.
admin_only_options contains _option("workflow_id_conflict_policy", p) if {
	input.request_type in _pn_start_requests
	p := input.request.workflow_id_conflict_policy
	not p in _pn_conflict_keeps_running
}

admin_only_options contains _option("workflow_id_reuse_policy", p) if {
	input.request_type in _pn_start_requests
	p := input.request.workflow_id_reuse_policy
	not p in _pn_reuse_keeps_running
}

# ExecuteMultiOperation (update-with-start): the start of each operation.
admin_only_options contains _option(sprintf("operations[%d].start_workflow.workflow_id_conflict_policy", [i]), p) if {
	input.request_type == "temporal.api.workflowservice.v1.ExecuteMultiOperationRequest"
	some i
	p := input.request.operations[i].start_workflow.workflow_id_conflict_policy
	not p in _pn_conflict_keeps_running
}

admin_only_options contains _option(sprintf("operations[%d].start_workflow.workflow_id_reuse_policy", [i]), p) if {
	input.request_type == "temporal.api.workflowservice.v1.ExecuteMultiOperationRequest"
	some i
	p := input.request.operations[i].start_workflow.workflow_id_reuse_policy
	not p in _pn_reuse_keeps_running
}

# CreateSchedule, UpdateSchedule: the schedule's overlap policy (unset: SKIP).
admin_only_options contains _option("schedule.policies.overlap_policy", p) if {
	input.request_type in {
		"temporal.api.workflowservice.v1.CreateScheduleRequest",
		"temporal.api.workflowservice.v1.UpdateScheduleRequest",
	}
	p := input.request.schedule.policies.overlap_policy
	not p in _pn_overlap_keeps_running
}

# CreateSchedule's first trigger and backfills: unset, they take the overlap
# policy of the schedule created, checked above.
admin_only_options contains _option("initial_patch.trigger_immediately.overlap_policy", p) if {
	input.request_type == "temporal.api.workflowservice.v1.CreateScheduleRequest"
	p := input.request.initial_patch.trigger_immediately.overlap_policy
	not p in _pn_overlap_keeps_running
}

admin_only_options contains _option(sprintf("initial_patch.backfill_request[%d].overlap_policy", [i]), p) if {
	input.request_type == "temporal.api.workflowservice.v1.CreateScheduleRequest"
	some i
	p := input.request.initial_patch.backfill_request[i].overlap_policy
	not p in _pn_overlap_keeps_running
}

# PatchSchedule's trigger and backfills: unset, they take the existing
# schedule's overlap policy, which the request does not show (it may be
# TERMINATE_OTHER), so they count unless given a policy that keeps running
# workflows.
admin_only_options contains _option("patch.trigger_immediately.overlap_policy", p) if {
	input.request_type == "temporal.api.workflowservice.v1.PatchScheduleRequest"
	trigger := input.request.patch.trigger_immediately
	p := object.get(trigger, "overlap_policy", _pn_unset)
	not p in _pn_overlap_keeps_running
}

admin_only_options contains _option(sprintf("patch.backfill_request[%d].overlap_policy", [i]), p) if {
	input.request_type == "temporal.api.workflowservice.v1.PatchScheduleRequest"
	some i
	backfill := input.request.patch.backfill_request[i]
	p := object.get(backfill, "overlap_policy", _pn_unset)
	not p in _pn_overlap_keeps_running
}

_pn_start_requests := {
	"temporal.api.workflowservice.v1.StartWorkflowExecutionRequest",
	"temporal.api.workflowservice.v1.SignalWithStartWorkflowExecutionRequest",
}

# Enum values as input.request has them (protojson names; unset is absent).
_pn_conflict_keeps_running := {"WORKFLOW_ID_CONFLICT_POLICY_FAIL", "WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING"}

_pn_reuse_keeps_running := {
	"WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE",
	"WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY",
	"WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE",
}

# CANCEL_OTHER only requests cancellation, which the workflow may refuse, as
# RequestCancelWorkflowExecution (write) does.
_pn_overlap_keeps_running := {
	"SCHEDULE_OVERLAP_POLICY_SKIP",
	"SCHEDULE_OVERLAP_POLICY_BUFFER_ONE",
	"SCHEDULE_OVERLAP_POLICY_BUFFER_ALL",
	"SCHEDULE_OVERLAP_POLICY_CANCEL_OTHER",
	"SCHEDULE_OVERLAP_POLICY_ALLOW_ALL",
}

_pn_unset := "SCHEDULE_OVERLAP_POLICY_UNSPECIFIED"

_pn_effects := {
	"WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING": "terminates the running workflow of the same id",
	"WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING": "terminates the running workflow of the same id",
	"SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER": "terminates the schedule's running workflow",
	_pn_unset: "unset: the schedule's own overlap policy applies, which may terminate its running workflow; give one other than SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER",
}

_option(path, value) := sprintf("%s %v (%s)", [path, value, effect]) if {
	effect := _pn_effects[value]
} else := sprintf("%s %v (not a value known to keep running executions)", [path, value])
