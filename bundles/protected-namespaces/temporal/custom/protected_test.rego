package temporal.custom_test

import data.temporal.authz
import data.temporal.custom

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
	some method in custom.admin_only_apis
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
	data.temporal.custom.protected_namespaces == ["production", "payments-prod"]
	got := authz.decision with input as {"claims": _prod_writer, "target": _target("TerminateWorkflowExecution", "production")}
		with data.temporal.custom.protected_namespaces as ["staging"]
	got == _by_default
}

test_no_protected_namespaces_protects_nothing if {
	got := authz.decision with input as {"claims": _prod_writer, "target": _target("TerminateWorkflowExecution", "production")}
		with data.temporal.custom.protected_namespaces as []
	got == _by_default
}
