# METADATA
# title: Protected namespaces
# description: |
#   In the namespaces listed in data.temporal.custom.protected_namespaces
#   (data.json), the calls that end, rewrite or erase executions and schedules
#   (terminate, reset, delete, batch operations, ...) require admin on that
#   namespace or on temporal-system. Temporal's default authorizer lets any
#   writer make them. Other namespaces, and every other call, are decided by
#   the default policy as before.
package temporal.custom

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
	some ns in data.temporal.custom.protected_namespaces
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

_is_admin if "admin" in input.claims.system

_is_admin if "admin" in input.claims.namespaces[input.target.namespace]

_rank := {"worker": 1, "read": 2, "write": 4, "admin": 8}

_held_ranks contains _rank[role] if {
	some role in input.claims.system
}

_held_ranks contains _rank[role] if {
	some role in input.claims.namespaces[input.target.namespace]
}

_caller_text := "no credentials" if {
	input.claims == null
} else := role if {
	some role, rank in _rank
	rank == max(_held_ranks)
} else := "no role"
