package temporal.custom.nexus_endpoint_allowlist_test

import data.temporal.authz
import data.temporal.custom.nexus_endpoint_allowlist as allowlist

_wf := "temporal.api.workflowservice.v1.WorkflowService"

_nexus := "temporal.api.nexusservice.v1.NexusService"

_claims(system, namespaces) := {"subject": "alice", "auth_type": "jwt", "system": system, "namespaces": namespaces, "jwt": {}}

_internal := {"subject": "internal", "auth_type": "temporal", "system": ["admin"], "namespaces": {}, "jwt": {}}

_worker(ns) := _claims([], {ns: ["write"]})

_by_default := {"allow": true, "reason": "allowed by the default policy"}

_denied(reason) := {"allow": false, "reason": reason}

_target(service, method, namespace, endpoint) := {
	"api": concat("", ["/", service, "/", method]),
	"service": service,
	"method": method,
	"namespace": namespace,
	"nexus_endpoint": endpoint,
	"scope": "namespace",
	"access": "write",
	"health_check": false,
}

# RespondWorkflowTaskCompleted in namespace ns with these commands, as the
# server builds input.request (protojson, proto field names, enums by name).
_respond(claims, ns, commands) := {
	"claims": claims,
	"target": _target(_wf, "RespondWorkflowTaskCompleted", ns, ""),
	"request": {"identity": "worker-1", "commands": commands},
	"request_type": "temporal.api.workflowservice.v1.RespondWorkflowTaskCompletedRequest",
}

_schedule(endpoint) := {
	"command_type": "COMMAND_TYPE_SCHEDULE_NEXUS_OPERATION",
	"schedule_nexus_operation_command_attributes": {
		"endpoint": endpoint, "service": "payments-svc", "operation": "charge",
		"schedule_to_close_timeout": "60s",
	},
}

_timer := {"command_type": "COMMAND_TYPE_START_TIMER", "start_timer_command_attributes": {"timer_id": "1", "start_to_fire_timeout": "5s"}}

_child(ns) := {
	"command_type": "COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION",
	"start_child_workflow_execution_command_attributes": {"namespace": ns, "workflow_id": "child", "workflow_type": {"name": "Child"}},
}

_standalone(claims, ns, endpoint) := {
	"claims": claims,
	"target": _target(_wf, "StartNexusOperationExecution", ns, ""),
	"request": {"namespace": ns, "operation_id": "op-1", "endpoint": endpoint, "service": "payments-svc", "operation": "charge"},
	"request_type": "temporal.api.workflowservice.v1.StartNexusOperationExecutionRequest",
}

# The frontend's DispatchByEndpoint: the handler's namespace, the endpoint, and
# the matching request it is about to send (links as history sets them).
_dispatch(claims, endpoint, variant) := {
	"claims": claims,
	"target": _target(_nexus, "DispatchByEndpoint", "payments-handler", endpoint),
	"request": {
		"namespace_id": "3f1c2b8e-0000-4000-8000-000000000001",
		"task_queue": {"name": "payments-handler", "kind": "TASK_QUEUE_KIND_NORMAL"},
		"request": object.union({"scheduled_time": "2026-12-06T03:00:00Z", "endpoint": endpoint, "capabilities": {"temporal_failure_responses": true}}, variant),
	},
	"request_type": "temporal.server.api.matchingservice.v1.DispatchNexusTaskRequest",
}

_start(links) := {"start_operation": {
	"service": "payments-svc", "operation": "charge", "request_id": "req-1", "callback": "temporal://system",
	"callback_header": {"temporal-callback-token": "masked"}, "links": links,
}}

_cancel := {"cancel_operation": {"service": "payments-svc", "operation": "charge", "operation_token": "tok", "operation_id": "tok"}}

_workflow_link(ns) := {
	"url": sprintf("temporal:///namespaces/%s/workflows/caller-wf/9d3e/history?eventID=5&eventType=NexusOperationScheduled&referenceType=EventReference", [ns]),
	"type": "temporal.api.common.v1.Link.WorkflowEvent",
}

_operation_link(ns) := {
	"url": sprintf("temporal:///namespaces/%s/nexus-operations/op-1/7a1b/details", [ns]),
	"type": "temporal.api.common.v1.Link.NexusOperation",
}

_add_hint(ns, endpoint) := sprintf(
	"to allow it, add %q to endpoints[%q] in data.temporal.custom.nexus_endpoint_allowlist (the bundle's data.json)",
	[ns, endpoint],
)

_payments_refuses(ns) := sprintf(
	`Nexus endpoint "payments" does not allow caller namespace %q (allowed: "billing", "orders"); %s`,
	[ns, _add_hint(ns, "payments")],
)

_unlisted_refuses(endpoint, ns) := sprintf(
	`Nexus endpoint %q does not allow caller namespace %q (the endpoint is not in the allowlist: no caller namespace is allowed); %s`,
	[endpoint, ns, _add_hint(ns, endpoint)],
)

_no_caller := `DispatchByEndpoint to Nexus endpoint "payments" is denied by the Nexus endpoint allowlist: the request names no caller namespace (no temporal:///namespaces/<namespace>/ link)`

_direct := `DispatchByEndpoint to Nexus endpoint "payments" by a caller other than Temporal's history service is denied by the Nexus endpoint allowlist: a direct call names no caller namespace the allowlist can trust; schedule the operation from a workflow in an allowed namespace`

_cases := {
	# Where a workflow schedules the operation: its workflow task's commands.
	"orders schedules on payments": {
		"input": _respond(_worker("orders"), "orders", [_timer, _schedule("payments")]),
		"want": _by_default,
	},
	"billing schedules on payments": {
		"input": _respond(_worker("billing"), "billing", [_schedule("payments")]),
		"want": _by_default,
	},
	"shipping schedules on payments": {
		"input": _respond(_worker("shipping"), "shipping", [_timer, _schedule("payments")]),
		"want": _denied(concat("", [`RespondWorkflowTaskCompleted in namespace "shipping" schedules a Nexus operation (commands[1]): `, _payments_refuses("shipping")])),
	},
	"orders schedules on an endpoint not listed": {
		"input": _respond(_worker("orders"), "orders", [_schedule("ledger")]),
		"want": _denied(concat("", [`RespondWorkflowTaskCompleted in namespace "orders" schedules a Nexus operation (commands[0]): `, _unlisted_refuses("ledger", "orders")])),
	},
	"one reason per refused command": {
		"input": _respond(_worker("billing"), "billing", [_schedule("inventory"), _schedule("payments"), _schedule("ledger")]),
		"want": _denied(concat("; ", [
			concat("", [`RespondWorkflowTaskCompleted in namespace "billing" schedules a Nexus operation (commands[0]): `, `Nexus endpoint "inventory" does not allow caller namespace "billing" (allowed: "orders"); `, _add_hint("billing", "inventory")]),
			concat("", [`RespondWorkflowTaskCompleted in namespace "billing" schedules a Nexus operation (commands[2]): `, _unlisted_refuses("ledger", "billing")]),
		])),
	},
	"names match exactly": {
		"input": _respond(_worker("Orders"), "Orders", [_schedule("payments")]),
		"want": _denied(concat("", [`RespondWorkflowTaskCompleted in namespace "Orders" schedules a Nexus operation (commands[0]): `, _payments_refuses("Orders")])),
	},
	"the internal principal's workflows are checked too": {
		"input": _respond(_internal, "shipping", [_schedule("payments")]),
		"want": _denied(concat("", [`RespondWorkflowTaskCompleted in namespace "shipping" schedules a Nexus operation (commands[0]): `, _payments_refuses("shipping")])),
	},
	"Temporal's system endpoint is not an endpoint of the list": {
		"input": _respond(_worker("shipping"), "shipping", [_schedule("__temporal_system")]),
		"want": _by_default,
	},
	"workflow tasks without Nexus commands": {
		"input": _respond(_worker("shipping"), "shipping", [_timer, _child("shipping")]),
		"want": _by_default,
	},
	# system.enableCrossNamespaceCommands: the same request authorized again as
	# StartWorkflowExecution in the child's namespace, where the caller namespace
	# is not the target's: not checked there (it was in the workflow's own).
	"cross-namespace child authorized again": {
		"input": object.union(
			_respond(_worker("shipping"), "shipping", [_child("orders"), _schedule("payments")]),
			{"claims": _claims([], {"shipping": ["write"], "orders": ["write"]}), "target": _target(_wf, "StartWorkflowExecution", "orders", "")},
		),
		"want": _by_default,
	},
	"roles still apply first": {
		"input": _respond(_claims([], {"orders": ["read"]}), "orders", [_schedule("payments")]),
		"want": _denied(`RespondWorkflowTaskCompleted in namespace "orders" requires write; caller has read`),
	},
	"offline eval without a request": {
		"input": {"claims": _worker("shipping"), "target": _target(_wf, "RespondWorkflowTaskCompleted", "shipping", "")},
		"want": _by_default,
	},
	# Standalone operations, started by a client.
	"standalone operation from orders": {
		"input": _standalone(_worker("orders"), "orders", "payments"),
		"want": _by_default,
	},
	"standalone operation from shipping": {
		"input": _standalone(_worker("shipping"), "shipping", "payments"),
		"want": _denied(concat("", [`StartNexusOperationExecution in namespace "shipping": `, _payments_refuses("shipping")])),
	},
	# Where Temporal dispatches it: the internal principal (history through
	# internal-frontend) with the caller's link.
	"dispatch of an operation scheduled in orders": {
		"input": _dispatch(_internal, "payments", _start([_workflow_link("orders")])),
		"want": _by_default,
	},
	"dispatch of an operation scheduled in shipping": {
		"input": _dispatch(_internal, "payments", _start([_workflow_link("shipping")])),
		"want": _denied(concat("", [`DispatchByEndpoint of a Nexus operation scheduled in namespace "shipping": `, _payments_refuses("shipping")])),
	},
	"dispatch to an endpoint not listed": {
		"input": _dispatch(_internal, "ledger", _start([_workflow_link("orders")])),
		"want": _denied(concat("", [`DispatchByEndpoint of a Nexus operation scheduled in namespace "orders": `, _unlisted_refuses("ledger", "orders")])),
	},
	"dispatch of a standalone operation from billing": {
		"input": _dispatch(_internal, "payments", _start([_operation_link("billing")])),
		"want": _by_default,
	},
	"dispatch of a standalone operation from shipping": {
		"input": _dispatch(_internal, "payments", _start([_operation_link("shipping")])),
		"want": _denied(concat("", [`DispatchByEndpoint of a Nexus operation scheduled in namespace "shipping": `, _payments_refuses("shipping")])),
	},
	"every caller link counts": {
		"input": _dispatch(_internal, "payments", _start([_workflow_link("orders"), _workflow_link("shipping")])),
		"want": _denied(concat("", [`DispatchByEndpoint of a Nexus operation scheduled in namespace "shipping": `, _payments_refuses("shipping")])),
	},
	"dispatch without links": {
		"input": _dispatch(_internal, "payments", _start([])),
		"want": _denied(_no_caller),
	},
	"dispatch with links of other kinds only": {
		"input": _dispatch(_internal, "payments", _start([{"url": "https://example.com/namespaces/orders/x", "type": "x"}])),
		"want": _denied(_no_caller),
	},
	"an escaped namespace is not read": {
		"input": _dispatch(_internal, "payments", _start([_workflow_link("ord%65rs")])),
		"want": _denied(_no_caller),
	},
	"cancellations are not checked": {
		"input": _dispatch(_internal, "payments", _cancel),
		"want": _by_default,
	},
	# Direct calls to the endpoint: no caller namespace to trust.
	"direct start by a writer of the handler namespace": {
		"input": _dispatch(_worker("payments-handler"), "payments", _start([_workflow_link("orders")])),
		"want": _denied(_direct),
	},
	"direct cancel by a writer of the handler namespace": {
		"input": _dispatch(_worker("payments-handler"), "payments", _cancel),
		"want": _denied(_direct),
	},
	"direct start without credentials": {
		"input": object.union(_dispatch(null, "payments", _start([_workflow_link("orders")])), {"claims": null}),
		"want": _denied(_direct),
	},
	# Other calls are unaffected.
	"dispatch by namespace and task queue": {
		"input": object.union(
			_dispatch(_worker("payments-handler"), "", _start([])),
			{"target": _target(_nexus, "DispatchByNamespaceAndTaskQueue", "payments-handler", "")},
		),
		"want": _by_default,
	},
}

test_decisions[name] if {
	some name, tc in _cases
	got := authz.decision with input as tc.input
	got == tc.want
}

test_allowed_callers_from_data if {
	allowlist.allowed_callers == {"payments": {"orders", "billing"}, "inventory": {"orders"}}
}

# The list is data: replaced without touching the policy; non-string entries ignored.
test_endpoints_from_data if {
	call := _respond(_worker("shipping"), "shipping", [_schedule("payments")])
	allowed := authz.decision with input as call
		with data.temporal.custom.nexus_endpoint_allowlist.endpoints as {"payments": ["shipping", 7]}
	allowed == _by_default
	denied := authz.decision with input as call
		with data.temporal.custom.nexus_endpoint_allowlist.endpoints as {"payments": [7, null]}
	denied == _denied(concat("", [`RespondWorkflowTaskCompleted in namespace "shipping" schedules a Nexus operation (commands[0]): `, _unlisted_refuses("payments", "shipping")]))
}

test_empty_allowlist_allows_no_caller if {
	call := _dispatch(_internal, "payments", _start([_workflow_link("orders")]))
	got := authz.decision with input as call with data.temporal.custom.nexus_endpoint_allowlist.endpoints as {}
	got == _denied(concat("", [`DispatchByEndpoint of a Nexus operation scheduled in namespace "orders": `, _unlisted_refuses("payments", "orders")]))
}
