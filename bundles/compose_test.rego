# Tests of the example bundles together: run by `make test-rego` with the
# default policy and every bundle of bundles/ loaded at once
# (opa test rego/bundle bundles/*/ bundles/compose_test.rego --run compose_test),
# as a server with all of them active decides. Each bundle's own tests run with
# that bundle alone on the default policy.
package bundles.compose_test

import data.temporal.authz

_wf := "temporal.api.workflowservice.v1.WorkflowService"

_target(method, namespace, scope, access) := {
	"api": concat("", ["/", _wf, "/", method]),
	"service": _wf,
	"method": method,
	"namespace": namespace,
	"nexus_endpoint": "",
	"scope": scope,
	"access": access,
	"health_check": false,
}

_terminate(namespace) := _target("TerminateWorkflowExecution", namespace, "namespace", "write")

_keycloak := "https://keycloak.example/realms/temporal"

_cluster := "https://kubernetes.default.svc.cluster.local"

# A Keycloak token with no Temporal permissions, only groups (keycloak-groups).
_member(groups) := {
	"subject": "0b5e6f1a-alice",
	"issuer": _keycloak,
	"auth_type": "jwt",
	"system": [],
	"namespaces": {},
	"jwt": {"iss": _keycloak, "sub": "0b5e6f1a-alice", "groups": groups},
}

# A projected service-account token of payments/payments-worker (kubernetes-workers).
_pod := {
	"subject": "system:serviceaccount:payments:payments-worker",
	"issuer": _cluster,
	"auth_type": "jwt",
	"system": [],
	"namespaces": {},
	"jwt": {
		"iss": _cluster,
		"sub": "system:serviceaccount:payments:payments-worker",
		"kubernetes.io": {
			"namespace": "payments",
			"serviceaccount": {"name": "payments-worker", "uid": "5e0c1b7e"},
			"pod": {"name": "payments-worker-7d9f", "uid": "9a1c2d3e"},
		},
	},
}

_by_default := {"allow": true, "reason": "allowed by the default policy"}

_denied(reason) := {"allow": false, "reason": reason}

# keycloak-groups and protected-namespaces: with payments protected, a
# group-granted admin (temporal-payments-oncall) may terminate there, a
# group-granted write (temporal-payments-devs) may not, and the reason names it.
test_group_roles_in_a_protected_namespace if {
	admin := authz.decision with input as {"claims": _member(["/temporal-payments-oncall"]), "target": _terminate("payments")}
		with data.temporal.custom.protected_namespaces.namespaces as ["payments"]
	admin == _by_default

	writer := authz.decision with input as {"claims": _member(["/temporal-payments-devs"]), "target": _terminate("payments")}
		with data.temporal.custom.protected_namespaces.namespaces as ["payments"]
	writer == _denied(`TerminateWorkflowExecution in protected namespace "payments" requires admin on "payments" or on temporal-system; caller has write`)

	platform := authz.decision with input as {"claims": _member(["temporal-platform-admins"]), "target": _terminate("payments")}
		with data.temporal.custom.protected_namespaces.namespaces as ["payments"]
	platform == _by_default
}

# As shipped, payments is not protected: the group-granted write terminates.
test_group_write_terminates_where_unprotected if {
	got := authz.decision with input as {"claims": _member(["/temporal-payments-devs"]), "target": _terminate("payments")}
	got == _by_default
}

# kubernetes-workers and least-privilege-workers: the service account's
# granted worker role polls, and does nothing else.
test_pod_worker_role_polls if {
	poll := authz.decision with input as {"claims": _pod, "target": _target("PollWorkflowTaskQueue", "payments", "namespace", "write")}
	poll == {"allow": true, "reason": "allowed by a custom rule (data.temporal.custom.least_privilege_workers.allow)"}

	start := authz.decision with input as {"claims": _pod, "target": _target("StartWorkflowExecution", "payments", "namespace", "write")}
	start == _denied(`StartWorkflowExecution in namespace "payments" requires write; caller has worker`)
}

# keycloak-groups and ui-friendly-reads: a group-granted namespace role loads the UI.
test_group_reader_gets_ui_cluster_reads if {
	got := authz.decision with input as {"claims": _member(["temporal-payments-viewers"]), "target": _target("GetClusterInfo", "", "cluster", "read")}
	got == {"allow": true, "reason": "allowed by a custom rule (data.temporal.custom.ui_friendly_reads.allow)"}
}

# keycloak-groups and workflow-type-acl: roles from groups, workflow types
# from groups too, each table keyed by its own names.
test_group_roles_and_workflow_type_acl if {
	claims := object.union(_member(["/temporal-payments-devs", "payments-team"]), {"namespaces": {}})
	inp := {
		"claims": claims,
		"target": _target("StartWorkflowExecution", "default", "namespace", "write"),
		"request": {"workflow_type": {"name": "payments.Charge"}},
		"request_type": "temporal.api.workflowservice.v1.StartWorkflowExecutionRequest",
	}
	got := authz.decision with input as inp
		with data.temporal.custom.keycloak_groups.groups["temporal-payments-devs"] as {"namespaces": {"default": ["write"]}}
	got == _by_default
	other := authz.decision with input as object.union(inp, {"request": {"workflow_type": {"name": "billing.Invoice"}}})
		with data.temporal.custom.keycloak_groups.groups["temporal-payments-devs"] as {"namespaces": {"default": ["write"]}}
	other == _denied(`StartWorkflowExecution of workflow type "billing.Invoice" in namespace "default" is denied by the workflow-type ACL: the caller's groups allow only types starting with "payments."`)
}

# Each table is bound to its issuer: the groups claim of a cluster token grants
# nothing; the service account's role is listed with the rule that granted it.
test_tables_bound_to_their_issuers if {
	claims := object.union(_pod, {"jwt": {"groups": ["temporal-auditors"]}})
	grants := authz.all_granted_roles with input as {"claims": claims, "target": _target("ListNamespaces", "", "cluster", "read")}
	grants == {{"role": "worker", "namespace": "payments", "rule": "data.temporal.custom.kubernetes_workers.namespace_roles"}}
}
