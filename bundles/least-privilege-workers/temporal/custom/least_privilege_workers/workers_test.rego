package temporal.custom.least_privilege_workers_test

import data.temporal.authz
import data.temporal.custom.least_privilege_workers as workers

_wf := "temporal.api.workflowservice.v1.WorkflowService"

# Scope and access of the methods used below, as in Temporal's API table.
_meta := {
	"PollWorkflowTaskQueue": ["namespace", "write"],
	"PollActivityTaskQueue": ["namespace", "write"],
	"PollNexusTaskQueue": ["namespace", "write"],
	"RespondWorkflowTaskCompleted": ["namespace", "write"],
	"RespondQueryTaskCompleted": ["namespace", "write"],
	"RespondActivityTaskCompleted": ["namespace", "write"],
	"RespondActivityTaskFailedById": ["namespace", "write"],
	"RecordActivityTaskHeartbeat": ["namespace", "write"],
	"RecordActivityTaskHeartbeatById": ["namespace", "write"],
	"RespondNexusTaskFailed": ["namespace", "write"],
	"ShutdownWorker": ["namespace", "write"],
	"DescribeNamespace": ["namespace", "read"],
	"FetchWorkerConfig": ["namespace", "read"],
	"GetWorkflowExecutionHistory": ["namespace", "read"],
	"GetSystemInfo": ["cluster", "read"],
	"StartWorkflowExecution": ["namespace", "write"],
	"SignalWorkflowExecution": ["namespace", "write"],
	"TerminateWorkflowExecution": ["namespace", "write"],
	"ListWorkflowExecutions": ["namespace", "read"],
	"DescribeWorkflowExecution": ["namespace", "read"],
	"UpdateWorkerConfig": ["namespace", "write"],
	"ListNamespaces": ["cluster", "read"],
}

_target(method, namespace) := {
	"api": concat("", ["/", _wf, "/", method]),
	"service": _wf,
	"method": method,
	"namespace": namespace,
	"nexus_endpoint": "",
	"scope": _meta[method][0],
	"access": _meta[method][1],
	"health_check": method == "GetSystemInfo",
}

_claims(system, namespaces) := {
	"subject": "svc-orders-worker",
	"auth_type": "jwt",
	"system": system,
	"namespaces": namespaces,
	"jwt": {},
}

_worker := _claims([], {"default": ["worker"]})

_by_custom := {"allow": true, "reason": "allowed by a custom rule (data.temporal.custom.least_privilege_workers.allow)"}

_by_default := {"allow": true, "reason": "allowed by the default policy"}

_denied(reason) := {"allow": false, "reason": reason}

_cases := {
	# The worker role grants the worker APIs in its namespace.
	"worker polls workflow tasks": {"claims": _worker, "method": "PollWorkflowTaskQueue", "want": _by_custom},
	"worker polls activity tasks": {"claims": _worker, "method": "PollActivityTaskQueue", "want": _by_custom},
	"worker polls nexus tasks": {"claims": _worker, "method": "PollNexusTaskQueue", "want": _by_custom},
	"worker completes a workflow task": {"claims": _worker, "method": "RespondWorkflowTaskCompleted", "want": _by_custom},
	"worker answers a query": {"claims": _worker, "method": "RespondQueryTaskCompleted", "want": _by_custom},
	"worker completes an activity": {"claims": _worker, "method": "RespondActivityTaskCompleted", "want": _by_custom},
	"worker fails an activity by id": {"claims": _worker, "method": "RespondActivityTaskFailedById", "want": _by_custom},
	"worker heartbeats an activity": {"claims": _worker, "method": "RecordActivityTaskHeartbeat", "want": _by_custom},
	"worker heartbeats an activity by id": {"claims": _worker, "method": "RecordActivityTaskHeartbeatById", "want": _by_custom},
	"worker fails a nexus task": {"claims": _worker, "method": "RespondNexusTaskFailed", "want": _by_custom},
	"worker shuts down": {"claims": _worker, "method": "ShutdownWorker", "want": _by_custom},
	"worker describes its namespace": {"claims": _worker, "method": "DescribeNamespace", "want": _by_custom},
	"worker fetches its config": {"claims": _worker, "method": "FetchWorkerConfig", "want": _by_custom},
	"worker pages a long history": {"claims": _worker, "method": "GetWorkflowExecutionHistory", "want": _by_custom},
	"worker gets system info": {"claims": _worker, "method": "GetSystemInfo", "namespace": "", "want": _by_default},
	"system worker polls any namespace": {"claims": _claims(["worker"], {}), "method": "PollActivityTaskQueue", "namespace": "orders", "want": _by_custom},
	# And nothing else.
	"worker cannot start": {
		"claims": _worker, "method": "StartWorkflowExecution",
		"want": _denied(`StartWorkflowExecution in namespace "default" requires write; caller has worker`),
	},
	"worker cannot signal": {
		"claims": _worker, "method": "SignalWorkflowExecution",
		"want": _denied(`SignalWorkflowExecution in namespace "default" requires write; caller has worker`),
	},
	"worker cannot terminate": {
		"claims": _worker, "method": "TerminateWorkflowExecution",
		"want": _denied(`TerminateWorkflowExecution in namespace "default" requires write; caller has worker`),
	},
	"worker cannot list workflows": {
		"claims": _worker, "method": "ListWorkflowExecutions",
		"want": _denied(`ListWorkflowExecutions in namespace "default" requires read; caller has worker`),
	},
	"worker cannot describe a workflow": {
		"claims": _worker, "method": "DescribeWorkflowExecution",
		"want": _denied(`DescribeWorkflowExecution in namespace "default" requires read; caller has worker`),
	},
	"worker cannot change worker config": {
		"claims": _worker, "method": "UpdateWorkerConfig",
		"want": _denied(`UpdateWorkerConfig in namespace "default" requires write; caller has worker`),
	},
	"worker cannot list namespaces": {
		"claims": _worker, "method": "ListNamespaces", "namespace": "",
		"want": _denied("ListNamespaces is a cluster API and requires read on temporal-system; caller has no role"),
	},
	"worker of another namespace cannot poll": {
		"claims": _worker, "method": "PollWorkflowTaskQueue", "namespace": "payments",
		"want": _denied(`PollWorkflowTaskQueue in namespace "payments" requires write; caller has no role`),
	},
	"namespace match is case-sensitive": {
		"claims": _worker, "method": "PollWorkflowTaskQueue", "namespace": "Default",
		"want": _denied(`PollWorkflowTaskQueue in namespace "Default" requires write; caller has no role`),
	},
	"no credentials cannot poll": {
		"claims": null, "method": "PollWorkflowTaskQueue",
		"want": _denied("PollWorkflowTaskQueue requires a token: the call carried no credentials"),
	},
	# Other roles are decided by the default policy, as before.
	"reader still cannot poll": {
		"claims": _claims([], {"default": ["read"]}), "method": "PollWorkflowTaskQueue",
		"want": _denied(`PollWorkflowTaskQueue in namespace "default" requires write; caller has read`),
	},
	"reader still lists": {"claims": _claims([], {"default": ["read"]}), "method": "ListWorkflowExecutions", "want": _by_default},
	"writer still polls": {"claims": _claims([], {"default": ["write"]}), "method": "PollWorkflowTaskQueue", "want": _by_default},
	"writer still starts": {"claims": _claims([], {"default": ["write"]}), "method": "StartWorkflowExecution", "want": _by_default},
	"worker and reader lists": {"claims": _claims([], {"default": ["worker", "read"]}), "method": "ListWorkflowExecutions", "want": _by_default},
	"worker and reader polls": {"claims": _claims([], {"default": ["worker", "read"]}), "method": "PollWorkflowTaskQueue", "want": _by_custom},
}

test_decisions[name] if {
	some name, tc in _cases
	ns := object.get(tc, "namespace", "default")
	got := authz.decision with input as {"claims": tc.claims, "target": _target(tc.method, ns)}
	got == tc.want
}

# Every listed API, whatever its access in Temporal's table, is granted to a worker.
test_every_worker_api_allowed[method] if {
	some method in workers.worker_apis
	some access in ["read", "write"]
	target := object.union(_target("PollWorkflowTaskQueue", "default"), {
		"api": concat("", ["/", _wf, "/", method]),
		"method": method,
		"access": access,
	})
	got := authz.decision with input as {"claims": _worker, "target": target}
	got == _by_custom
}

# A method of the same name on another service is not a worker API.
test_other_service_not_granted if {
	target := object.union(_target("PollWorkflowTaskQueue", "default"), {
		"api": "/temporal.api.operatorservice.v1.OperatorService/PollWorkflowTaskQueue",
		"service": "temporal.api.operatorservice.v1.OperatorService",
		"scope": "unknown",
		"access": "unknown",
	})
	got := authz.decision with input as {"claims": _worker, "target": target}
	got == _denied(`unknown API "/temporal.api.operatorservice.v1.OperatorService/PollWorkflowTaskQueue" is denied`)
}

# A worker role granted by a role rule of another bundle counts as the token's:
# on the target namespace, and as a system role in every namespace.
test_granted_worker_role_counts if {
	no_roles := _claims([], {})
	poll := {"claims": no_roles, "target": _target("PollWorkflowTaskQueue", "default")}
	got := authz.decision with input as poll with data.temporal.custom.groups.namespace_roles as {"default": {"worker"}}
	got == _by_custom
	other := authz.decision with input as poll with data.temporal.custom.groups.namespace_roles as {"orders": {"worker"}}
	other == _denied(`PollWorkflowTaskQueue in namespace "default" requires write; caller has no role`)
	system := authz.decision with input as poll with data.temporal.custom.groups.system_roles as {"worker"}
	system == _by_custom
	start := authz.decision with input as {"claims": no_roles, "target": _target("StartWorkflowExecution", "default")}
		with data.temporal.custom.groups.namespace_roles as {"default": {"worker"}}
	start == _denied(`StartWorkflowExecution in namespace "default" requires write; caller has worker`)
}
