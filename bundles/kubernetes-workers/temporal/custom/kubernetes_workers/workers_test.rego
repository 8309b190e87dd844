package temporal.custom.kubernetes_workers_test

import data.temporal.authz
import data.temporal.custom.kubernetes_workers as k8s

_wf := "temporal.api.workflowservice.v1.WorkflowService"

_cluster := "https://kubernetes.default.svc.cluster.local"

_target(method, namespace, access) := {
	"api": concat("", ["/", _wf, "/", method]),
	"service": _wf,
	"method": method,
	"namespace": namespace,
	"nexus_endpoint": "",
	"scope": "namespace",
	"access": access,
	"health_check": false,
}

_poll := _target("PollWorkflowTaskQueue", "payments", "write")

_describe := _target("DescribeNamespace", "payments", "read")

# The claims of a projected service-account token of pod payments-worker-7d9f.
_k8s_claims(namespace, name) := {
	"namespace": namespace,
	"serviceaccount": {"name": name, "uid": "5e0c1b7e-2f0a-4c47-9d7e-0a3d1f0c9b11"},
	"pod": {"name": "payments-worker-7d9f", "uid": "9a1c2d3e-1111-4222-8333-944455566677"},
}

_token(issuer, sub, kubernetes_io) := {
	"subject": sub,
	"issuer": issuer,
	"auth_type": "jwt",
	"system": [],
	"namespaces": {},
	"jwt": {
		"iss": issuer,
		"sub": sub,
		"aud": ["temporal"],
		"kubernetes.io": kubernetes_io,
	},
}

_worker := _token(_cluster, "system:serviceaccount:payments:payments-worker", _k8s_claims("payments", "payments-worker"))

_by_default := {"allow": true, "reason": "allowed by the default policy"}

_denied(reason) := {"allow": false, "reason": reason}

# PollWorkflowTaskQueue needs write under the default policy: the worker role
# alone shows in the reason (least-privilege-workers grants it the poll).
_poll_denied(held) := _denied(sprintf(`PollWorkflowTaskQueue in namespace "payments" requires write; caller has %s`, [held]))

_cases := {
	"service account gets its role": {"claims": _worker, "target": _poll, "want": _poll_denied("worker")},
	"forged sub from another issuer gets nothing": {
		"claims": _token("https://evil.example", "system:serviceaccount:payments:payments-worker", _k8s_claims("payments", "payments-worker")),
		"target": _poll, "want": _poll_denied("no role"),
	},
	"a key source without issuer gets nothing": {
		"claims": object.union(_worker, {"issuer": ""}),
		"target": _poll, "want": _poll_denied("no role"),
	},
	"sub and kubernetes.io disagree on the name": {
		"claims": _token(_cluster, "system:serviceaccount:payments:payments-worker", _k8s_claims("payments", "default")),
		"target": _poll, "want": _poll_denied("no role"),
	},
	"sub and kubernetes.io disagree on the namespace": {
		"claims": _token(_cluster, "system:serviceaccount:payments:payments-worker", _k8s_claims("orders", "payments-worker")),
		"target": _poll, "want": _poll_denied("no role"),
	},
	"no kubernetes.io claims": {
		"claims": _token(_cluster, "system:serviceaccount:payments:payments-worker", null),
		"target": _poll, "want": _poll_denied("no role"),
	},
	"not a service account": {
		"claims": _token(_cluster, "payments/payments-worker", _k8s_claims("payments", "payments-worker")),
		"target": _poll, "want": _poll_denied("no role"),
	},
	"service account not in the table": {
		"claims": _token(_cluster, "system:serviceaccount:payments:default", _k8s_claims("payments", "default")),
		"target": _poll, "want": _poll_denied("no role"),
	},
	"roles on its own namespace only": {
		"claims": _worker, "target": _target("PollWorkflowTaskQueue", "orders", "write"),
		"want": _denied(`PollWorkflowTaskQueue in namespace "orders" requires write; caller has no role`),
	},
	"no credentials": {"claims": null, "target": _poll, "want": _denied("PollWorkflowTaskQueue requires a token: the call carried no credentials")},
}

test_decisions[name] if {
	some name, tc in _cases
	got := authz.decision with input as {"claims": tc.claims, "target": tc.target}
	got == tc.want
}

test_granted_roles_name_the_rule if {
	inp := {"claims": _worker, "target": _poll}
	k8s.service_account == "payments/payments-worker" with input as inp
	authz.granted_roles == {{"role": "worker", "namespace": "payments", "rule": "data.temporal.custom.kubernetes_workers.namespace_roles"}} with input as inp
	authz.held_roles == {"worker"} with input as inp
}

# A table entry with write lets the worker poll under the default policy alone;
# entries that are not role names grant nothing.
test_table_from_data if {
	table := {"payments/payments-worker": {"payments": ["write", 4, "owner"]}}
	inp := {"claims": _worker, "target": _poll}
	got := authz.decision with input as inp with data.temporal.custom.kubernetes_workers.service_accounts as table
	got == _by_default
	k8s.namespace_roles == {"payments": {"write", "owner"}} with input as inp
		with data.temporal.custom.kubernetes_workers.service_accounts as table
	authz.held_roles == {"write"} with input as inp with data.temporal.custom.kubernetes_workers.service_accounts as table
	read := authz.decision with input as {"claims": _worker, "target": _describe}
		with data.temporal.custom.kubernetes_workers.service_accounts as {"payments/payments-worker": {"payments": ["read"]}}
	read == _by_default
}

# Several clusters: each listed issuer is trusted for the whole table.
test_issuers_from_data if {
	other := "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE"
	claims := object.union(_worker, {"issuer": other, "jwt": {"iss": other}})
	k8s.service_account == "payments/payments-worker" with input as {"claims": claims, "target": _poll}
		with data.temporal.custom.kubernetes_workers.issuers as [_cluster, other]
	not k8s.service_account with input as {"claims": claims, "target": _poll}
}

# No system roles, whatever the table says.
test_no_system_roles if {
	register := object.union(_target("RegisterNamespace", "", "admin"), {"scope": "cluster"})
	count(authz.granted_roles) == 0 with input as {"claims": _worker, "target": register}
	authz.all_granted_roles == {{"role": "worker", "namespace": "payments", "rule": "data.temporal.custom.kubernetes_workers.namespace_roles"}} with input as {"claims": _worker, "target": register}
}

test_data_json if {
	data.temporal.custom.kubernetes_workers.issuers == [_cluster]
	data.temporal.custom.kubernetes_workers.service_accounts["payments/payments-worker"] == {"payments": ["worker"]}
}
