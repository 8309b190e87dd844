# METADATA
# title: Least-privilege workers
# description: |
#   The worker permission (<namespace>:worker, e.g. default:worker on a Keycloak
#   service account) grants exactly the calls a Temporal worker makes in that
#   namespace: poll, respond, heartbeat, and the few reads an SDK worker needs.
#   Temporal's default authorizer grants the worker role nothing (pollers need
#   write, which also lets them start, signal and terminate workflows).
#   Roles granted by role rules of other bundles (namespace_roles, system_roles)
#   count as token roles do: the caller's roles are read from
#   data.temporal.authz.held_roles.
#   Layered on the default policy: every other call is decided by it as before.
package temporal.custom.least_privilege_workers

# METADATA
# title: Allow worker calls
# description: |
#   True when the caller holds the worker role on the target namespace (or
#   temporal-system:worker, which like every system role counts in all
#   namespaces), from its token or granted by a role rule, and calls one of the
#   worker APIs of WorkflowService.
default allow := false

allow if {
	input.target.service == "temporal.api.workflowservice.v1.WorkflowService"
	input.target.scope == "namespace"
	input.target.method in worker_apis
	_holds_worker_role
}

# METADATA
# title: Worker APIs
# description: |
#   The WorkflowService methods a worker needs, by their names in Temporal's API
#   table (go.temporal.io/server v1.32.1, common/api/metadata.go). All are
#   namespace-scoped. GetSystemInfo and the gRPC health check are allowed to
#   everyone by the default policy and so are not listed.
worker_apis := {
	# Long polls for tasks.
	"PollWorkflowTaskQueue",
	"PollActivityTaskQueue",
	"PollNexusTaskQueue",
	# Workflow tasks and queries.
	"RespondWorkflowTaskCompleted",
	"RespondWorkflowTaskFailed",
	"RespondQueryTaskCompleted",
	"ResetStickyTaskQueue",
	# Workflow history pages beyond the first, which the poll response carries:
	# the SDK fetches them while replaying a long history (read-only).
	"GetWorkflowExecutionHistory",
	# Activity tasks, by task token and by id (async completion).
	"RespondActivityTaskCompleted",
	"RespondActivityTaskCompletedById",
	"RespondActivityTaskFailed",
	"RespondActivityTaskFailedById",
	"RespondActivityTaskCanceled",
	"RespondActivityTaskCanceledById",
	"RecordActivityTaskHeartbeat",
	"RecordActivityTaskHeartbeatById",
	# Nexus tasks.
	"RespondNexusTaskCompleted",
	"RespondNexusTaskFailed",
	# Worker lifecycle: start-up checks, heartbeats, graceful shutdown.
	"DescribeNamespace",
	"FetchWorkerConfig",
	"RecordWorkerHeartbeat",
	"ShutdownWorker",
}

# held_roles: the token's system roles and its roles on the target namespace,
# and the roles role rules grant there.
_holds_worker_role if "worker" in data.temporal.authz.held_roles
