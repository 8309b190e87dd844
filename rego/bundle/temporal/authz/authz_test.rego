package temporal.authz_test

# The default policy's own tests pin its behaviour with no custom rules, so that
# they pass whatever bundle of custom rules `opa test` loads beside them.

import data.temporal.authz

_wf := "/temporal.api.workflowservice.v1.WorkflowService/"

_target(method, namespace, scope, access) := {
	"api": concat("", [_wf, method]),
	"service": "temporal.api.workflowservice.v1.WorkflowService",
	"method": method,
	"namespace": namespace,
	"nexus_endpoint": "",
	"scope": scope,
	"access": access,
	"health_check": method == "GetSystemInfo",
}

_claims(system, namespaces) := {
	"subject": "alice",
	"auth_type": "jwt",
	"system": system,
	"namespaces": namespaces,
	"jwt": {},
}

_start := _target("StartWorkflowExecution", "payments", "namespace", "write")

_describe := _target("DescribeWorkflowExecution", "payments", "namespace", "read")

_register := _target("RegisterNamespace", "payments", "namespace", "admin")

_list_namespaces := _target("ListNamespaces", "", "cluster", "read")

_system_info := _target("GetSystemInfo", "", "cluster", "read")

_health := {
	"api": "/grpc.health.v1.Health/Check",
	"service": "grpc.health.v1.Health",
	"method": "Check",
	"namespace": "",
	"nexus_endpoint": "",
	"scope": "unknown",
	"access": "unknown",
	"health_check": true,
}

_unknown := {
	"api": "/example.v1.Unknown/Do",
	"service": "example.v1.Unknown",
	"method": "Do",
	"namespace": "payments",
	"nexus_endpoint": "",
	"scope": "unknown",
	"access": "unknown",
	"health_check": false,
}

_internal := {
	"subject": "internal",
	"auth_type": "temporal",
	"system": ["admin"],
	"namespaces": {},
	"jwt": {},
}

_cases := {
	"health check without claims": {"claims": null, "target": _health, "allow": true},
	"GetSystemInfo without claims": {"claims": null, "target": _system_info, "allow": true},
	"no claims denied": {"claims": null, "target": _describe, "allow": false},
	"namespace reader reads": {"claims": _claims([], {"payments": ["read"]}), "target": _describe, "allow": true},
	"namespace reader cannot write": {"claims": _claims([], {"payments": ["read"]}), "target": _start, "allow": false},
	"namespace writer writes": {"claims": _claims([], {"payments": ["write"]}), "target": _start, "allow": true},
	"namespace writer cannot register": {"claims": _claims([], {"payments": ["write"]}), "target": _register, "allow": false},
	"namespace admin registers": {"claims": _claims([], {"payments": ["admin"]}), "target": _register, "allow": true},
	"worker alone grants nothing": {"claims": _claims([], {"payments": ["worker"]}), "target": _describe, "allow": false},
	"worker and read reads": {"claims": _claims([], {"payments": ["worker", "read"]}), "target": _describe, "allow": true},
	"roles on another namespace": {"claims": _claims([], {"orders": ["admin"]}), "target": _start, "allow": false},
	"namespace match is case-sensitive": {"claims": _claims([], {"Payments": ["admin"]}), "target": _start, "allow": false},
	"system writer writes anywhere": {"claims": _claims(["write"], {}), "target": _start, "allow": true},
	"system reader lists namespaces": {"claims": _claims(["read"], {}), "target": _list_namespaces, "allow": true},
	"namespace admin cannot list namespaces": {"claims": _claims([], {"payments": ["admin"]}), "target": _list_namespaces, "allow": false},
	"unknown API denied to system admin": {"claims": _claims(["admin"], {}), "target": _unknown, "allow": false},
	"internal principal allowed": {"claims": _internal, "target": _register, "allow": true},
}

# The default rules alone: data.temporal.custom is masked whole, since the
# example bundles' packages (temporal.custom.<name>) may be loaded beside these tests.
test_default_decisions[name] if {
	some name, tc in _cases
	d := authz.decision with input as {"claims": tc.claims, "target": tc.target}
		with data.temporal.custom as {}
	d.allow == tc.allow
	is_string(d.reason)
}

test_reason_names_required_and_held_role if {
	d := authz.decision with input as {"claims": _claims([], {"payments": ["read"]}), "target": _start}
		with data.temporal.custom as {}
	d == {"allow": false, "reason": `StartWorkflowExecution in namespace "payments" requires write; caller has read`}
}

test_reason_without_roles if {
	d := authz.decision with input as {"claims": _claims([], {}), "target": _start}
		with data.temporal.custom as {}
	d.reason == `StartWorkflowExecution in namespace "payments" requires write; caller has no role`
}

test_reason_for_cluster_api if {
	d := authz.decision with input as {"claims": _claims([], {"payments": ["admin"]}), "target": _list_namespaces}
		with data.temporal.custom as {}
	d.reason == "ListNamespaces is a cluster API and requires read on temporal-system; caller has no role"
}

test_reason_without_credentials if {
	d := authz.decision with input as {"claims": null, "target": _start}
		with data.temporal.custom as {}
	d == {"allow": false, "reason": "StartWorkflowExecution requires a token: the call carried no credentials"}
}

test_reason_for_unknown_api if {
	d := authz.decision with input as {"claims": _claims(["admin"], {}), "target": _unknown}
		with data.temporal.custom as {}
	d.reason == `unknown API "/example.v1.Unknown/Do" is denied`
}

test_custom_deny_overrides_default_allow if {
	d := authz.decision with input as {"claims": _claims(["admin"], {}), "target": _start}
		with data.temporal.custom.deny as {"no starts today", "maintenance window"}
	d == {"allow": false, "reason": "maintenance window; no starts today"}
}

test_custom_deny_overrides_health_check if {
	d := authz.decision with input as {"claims": null, "target": _health}
		with data.temporal.custom.deny as {"closed"}
	not d.allow
}

test_custom_deny_non_string_reason_denies if {
	d := authz.decision with input as {"claims": _claims(["admin"], {}), "target": _start}
		with data.temporal.custom.deny as {{"msg": "x"}}
	not d.allow
}

test_custom_deny_empty_set_does_not_deny if {
	d := authz.decision with input as {"claims": _claims(["admin"], {}), "target": _start}
		with data.temporal.custom.deny as set()
	d.allow
}

test_custom_allow_grants_on_top if {
	d := authz.decision with input as {"claims": _claims([], {"payments": ["worker"]}), "target": _start}
		with data.temporal.custom.allow as true
	d == {"allow": true, "reason": "allowed by a custom rule (data.temporal.custom.allow)"}
}

test_custom_allow_not_true_does_not_grant if {
	d := authz.decision with input as {"claims": _claims([], {"payments": ["worker"]}), "target": _start}
		with data.temporal.custom.allow as "yes"
	not d.allow
}

test_internal_principal if {
	authz.internal_principal with input as {"claims": _internal, "target": _start}
	not authz.internal_principal with input as {"claims": _claims(["admin"], {}), "target": _start}
	not authz.internal_principal with input as {"claims": null, "target": _start}
}

# Roles granted by role rules count as token roles do: for the decision, the
# deny reason's held role and held_roles, and are listed with their rule.
_no_roles := _claims([], {})

test_namespace_role_grant_allows if {
	d := authz.decision with input as {"claims": _no_roles, "target": _start}
		with data.temporal.custom.namespace_roles as {"payments": {"write"}}
	d.allow
	d.reason == "allowed by the default policy"
	authz.granted_roles == {{"role": "write", "namespace": "payments", "rule": "data.temporal.custom.namespace_roles"}} with input as {"claims": _no_roles, "target": _start}
		with data.temporal.custom.namespace_roles as {"payments": {"write"}}
}

test_sub_package_grants_count_and_name_their_rule if {
	inp := {"claims": _no_roles, "target": _start}
	authz.decision.allow with input as inp with data.temporal.custom.groups.namespace_roles as {"payments": ["admin"]}
	authz.granted_roles == {{"role": "admin", "namespace": "payments", "rule": "data.temporal.custom.groups.namespace_roles"}} with input as inp
		with data.temporal.custom.groups.namespace_roles as {"payments": ["admin"]}
	authz.held_roles == {"admin"} with input as inp with data.temporal.custom.groups.namespace_roles as {"payments": ["admin"]}
}

test_grant_on_other_namespace_does_not_count if {
	d := authz.decision with input as {"claims": _no_roles, "target": _start}
		with data.temporal.custom.namespace_roles as {"orders": {"admin"}}
	not d.allow
	d.reason == "StartWorkflowExecution in namespace \"payments\" requires write; caller has no role"
}

test_granted_read_named_in_deny_reason if {
	d := authz.decision with input as {"claims": _claims(["worker"], {}), "target": _start}
		with data.temporal.custom.k8s.namespace_roles as {"payments": {"read"}}
	not d.allow
	d.reason == "StartWorkflowExecution in namespace \"payments\" requires write; caller has read"
}

test_system_role_grant if {
	inp := {"claims": _no_roles, "target": _list_namespaces}
	authz.decision.allow with input as inp with data.temporal.custom.ops.system_roles as {"read"}
	not authz.decision.allow with input as inp with data.temporal.custom.ops.system_roles as {"worker"}
	authz.granted_roles == {{"role": "read", "namespace": "", "rule": "data.temporal.custom.ops.system_roles"}} with input as inp
		with data.temporal.custom.ops.system_roles as {"read"}
	authz.decision.allow with input as inp with data.temporal.custom.system_roles as {"admin"}
}

test_grants_need_claims if {
	inp := {"claims": null, "target": _describe}
	not authz.decision.allow with input as inp with data.temporal.custom.system_roles as {"admin"}
	not authz.decision.allow with input as inp with data.temporal.custom.namespace_roles as {"payments": {"admin"}}
	count(authz.granted_roles) == 0 with input as inp with data.temporal.custom.x.system_roles as {"admin"}
}

test_unknown_role_names_ignored if {
	inp := {"claims": _no_roles, "target": _describe}
	not authz.decision.allow with input as inp with data.temporal.custom.namespace_roles as {"payments": {"Read", "owner", 2}}
	count(authz.granted_roles) == 0 with input as inp with data.temporal.custom.namespace_roles as {"payments": {"Read", "owner", 2}}
}

test_reserved_names_are_not_packages if {
	# data.temporal.custom.namespace_roles.namespace_roles is the roles on a
	# namespace named "namespace_roles", not a package's rule.
	inp := {"claims": _no_roles, "target": _target("StartWorkflowExecution", "namespace_roles", "namespace", "write")}
	grants := authz.granted_roles with input as inp with data.temporal.custom.namespace_roles as {"namespace_roles": {"write"}}
	grants == {{"role": "write", "namespace": "namespace_roles", "rule": "data.temporal.custom.namespace_roles"}}
}

test_all_granted_roles_lists_every_namespace if {
	inp := {"claims": _no_roles, "target": _list_namespaces}
	grants_all := authz.all_granted_roles with input as inp
		with data.temporal.custom.namespace_roles as {"payments": {"read"}}
		with data.temporal.custom.k8s.namespace_roles as {"orders": {"worker"}, "payments": {"bogus"}}
		with data.temporal.custom.k8s.system_roles as {"read"}
	grants_all == {
		{"role": "read", "namespace": "payments", "rule": "data.temporal.custom.namespace_roles"},
		{"role": "worker", "namespace": "orders", "rule": "data.temporal.custom.k8s.namespace_roles"},
		{"role": "read", "namespace": "", "rule": "data.temporal.custom.k8s.system_roles"},
	}
	count(authz.granted_roles) == 1 with input as inp
		with data.temporal.custom.namespace_roles as {"payments": {"read"}}
		with data.temporal.custom.k8s.namespace_roles as {"orders": {"worker"}}
		with data.temporal.custom.k8s.system_roles as {"read"}
}

test_sub_package_deny_and_allow if {
	deny := authz.decision with input as {"claims": _claims(["admin"], {}), "target": _start}
		with data.temporal.custom.a.deny as {"no starts today"}
		with data.temporal.custom.b.deny as {7}
	deny == {"allow": false, "reason": "denied by a custom rule (data.temporal.custom.b.deny); no starts today"}
	allow := authz.decision with input as {"claims": _no_roles, "target": _start}
		with data.temporal.custom.b.allow as true
		with data.temporal.custom.a.allow as true
	allow == {"allow": true, "reason": "allowed by a custom rule (data.temporal.custom.a.allow, data.temporal.custom.b.allow)"}
	not authz.decision.allow with input as {"claims": _no_roles, "target": _start} with data.temporal.custom.a.allow as "yes"
}

# A caller identified by its client certificate alone is named in the reason.
test_reason_names_certificate_caller if {
	svid := object.union(_no_roles, {"auth_type": "tls", "subject": "spiffe://prod.example/ns/payments/sa/worker", "tls": {
		"spiffe_id": "spiffe://prod.example/ns/payments/sa/worker",
		"subject": {"common_name": "worker"},
	}})
	d := authz.decision with input as {"claims": svid, "target": _start}
	d.reason == "StartWorkflowExecution in namespace \"payments\" requires write; caller spiffe://prod.example/ns/payments/sa/worker (client certificate) has no role"
	cn := object.union(svid, {"subject": "ci-bot", "tls": {"spiffe_id": "", "subject": {"common_name": "ci-bot"}}})
	c := authz.decision with input as {"claims": cn, "target": _list_namespaces}
	c.reason == "ListNamespaces is a cluster API and requires read on temporal-system; caller CN=ci-bot (client certificate) has no role"
}
