package temporal.custom.keycloak_groups_test

import data.temporal.authz
import data.temporal.custom.keycloak_groups as groups

_wf := "temporal.api.workflowservice.v1.WorkflowService"

_keycloak := "https://keycloak.example/realms/temporal"

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

_start := _target("StartWorkflowExecution", "payments", "namespace", "write")

_describe := _target("DescribeWorkflowExecution", "payments", "namespace", "read")

_update_namespace := _target("UpdateNamespace", "payments", "namespace", "admin")

_list_namespaces := _target("ListNamespaces", "", "cluster", "read")

_register := _target("RegisterNamespace", "", "cluster", "admin")

# A Keycloak token without Temporal permissions: all its roles come from its groups.
_token(issuer, group_claim) := {
	"subject": "0b5e6f1a-alice",
	"issuer": issuer,
	"auth_type": "jwt",
	"system": [],
	"namespaces": {},
	"jwt": {"iss": issuer, "sub": "0b5e6f1a-alice", "groups": group_claim},
}

_alice(group_claim) := _token(_keycloak, group_claim)

_by_default := {"allow": true, "reason": "allowed by the default policy"}

_denied(reason) := {"allow": false, "reason": reason}

_start_needs_write(held) := _denied(sprintf(`StartWorkflowExecution in namespace "payments" requires write; caller has %s`, [held]))

_cases := {
	# Group names as Keycloak sends them with "Full group path" off and on.
	"developer starts": {"claims": _alice(["temporal-payments-devs"]), "target": _start, "want": _by_default},
	"developer by full path starts": {"claims": _alice(["/temporal-payments-devs"]), "target": _start, "want": _by_default},
	"groups claim as one string": {"claims": _alice("/temporal-payments-devs"), "target": _start, "want": _by_default},
	"developer cannot update the namespace": {
		"claims": _alice(["temporal-payments-devs"]), "target": _update_namespace,
		"want": _denied(`UpdateNamespace in namespace "payments" requires admin; caller has write`),
	},
	"viewer reads": {"claims": _alice(["temporal-payments-viewers"]), "target": _describe, "want": _by_default},
	"viewer cannot start": {"claims": _alice(["temporal-payments-viewers"]), "target": _start, "want": _start_needs_write("read")},
	"viewer and developer starts": {
		"claims": _alice(["/temporal-payments-viewers", "/temporal-payments-devs"]), "target": _start,
		"want": _by_default,
	},
	"on-call updates the namespace": {"claims": _alice(["temporal-payments-oncall"]), "target": _update_namespace, "want": _by_default},
	"platform admin registers namespaces": {"claims": _alice(["/temporal-platform-admins"]), "target": _register, "want": _by_default},
	"platform admin starts anywhere": {"claims": _alice(["temporal-platform-admins"]), "target": _start, "want": _by_default},
	"auditor lists namespaces": {"claims": _alice(["temporal-auditors"]), "target": _list_namespaces, "want": _by_default},
	"auditor cannot start": {"claims": _alice(["temporal-auditors"]), "target": _start, "want": _start_needs_write("read")},
	# Names match exactly: other groups, subgroups and case variants grant nothing.
	"unknown group": {"claims": _alice(["payments-team"]), "target": _start, "want": _start_needs_write("no role")},
	"a subgroup of the same name is another group": {
		"claims": _alice(["/acme/temporal-payments-devs"]), "target": _start,
		"want": _start_needs_write("no role"),
	},
	"case matters": {"claims": _alice(["Temporal-Payments-Devs"]), "target": _start, "want": _start_needs_write("no role")},
	"non-string groups are ignored": {"claims": _alice([7, {"name": "temporal-payments-devs"}]), "target": _start, "want": _start_needs_write("no role")},
	"no groups claim": {"claims": _alice(null), "target": _start, "want": _start_needs_write("no role")},
	"roles on another namespace": {
		"claims": _alice(["temporal-payments-devs"]), "target": _target("StartWorkflowExecution", "orders", "namespace", "write"),
		"want": _denied(`StartWorkflowExecution in namespace "orders" requires write; caller has no role`),
	},
	# The table is bound to its issuer.
	"groups from another issuer grant nothing": {
		"claims": _token("https://evil.example/realms/temporal", ["temporal-platform-admins"]), "target": _register,
		"want": _denied("RegisterNamespace is a cluster API and requires admin on temporal-system; caller has no role"),
	},
	"a token naming the issuer but verified without one grants nothing": {
		"claims": object.union(_alice(["temporal-platform-admins"]), {"issuer": ""}), "target": _register,
		"want": _denied("RegisterNamespace is a cluster API and requires admin on temporal-system; caller has no role"),
	},
	"no credentials": {"claims": null, "target": _start, "want": _denied("StartWorkflowExecution requires a token: the call carried no credentials")},
	# Token roles still count beside the groups'.
	"token role and group role": {
		"claims": object.union(_alice(["temporal-payments-viewers"]), {"namespaces": {"payments": ["write"]}}), "target": _start,
		"want": _by_default,
	},
}

test_decisions[name] if {
	some name, tc in _cases
	got := authz.decision with input as {"claims": tc.claims, "target": tc.target}
	got == tc.want
}

# The roles granted are listed with the rule that granted them.
test_granted_roles_name_the_rule if {
	inp := {"claims": _alice(["/temporal-payments-devs", "temporal-platform-admins"]), "target": _start}
	authz.granted_roles == {
		{"role": "write", "namespace": "payments", "rule": "data.temporal.custom.keycloak_groups.namespace_roles"},
		{"role": "admin", "namespace": "", "rule": "data.temporal.custom.keycloak_groups.system_roles"},
	} with input as inp
	groups.matched_groups == {"temporal-payments-devs", "temporal-platform-admins"} with input as inp
}

# A table key that is a full path matches that path only.
test_full_path_keys if {
	table := {"/acme/payments": {"namespaces": {"payments": ["write"]}}}
	groups.namespace_roles == {"payments": {"write"}} with input as {"claims": _alice(["/acme/payments"]), "target": _start}
		with data.temporal.custom.keycloak_groups.groups as table
	count(groups.namespace_roles) == 0 with input as {"claims": _alice(["payments", "/payments", "acme/payments"]), "target": _start}
		with data.temporal.custom.keycloak_groups.groups as table
}

# Entries of the table that are not role names grant nothing.
test_malformed_table_entries if {
	table := {"g": {"namespaces": {"payments": ["write", 4]}, "system": [8, "owner"]}}
	inp := {"claims": _alice(["g"]), "target": _start}
	groups.namespace_roles == {"payments": {"write"}} with input as inp with data.temporal.custom.keycloak_groups.groups as table
	groups.system_roles == {"owner"} with input as inp with data.temporal.custom.keycloak_groups.groups as table
	authz.held_roles == {"write"} with input as inp with data.temporal.custom.keycloak_groups.groups as table
}

# Several issuers may share the table.
test_issuers_from_data if {
	other := "https://sso.example/realms/temporal"
	got := authz.decision with input as {"claims": _token(other, ["temporal-payments-devs"]), "target": _start}
		with data.temporal.custom.keycloak_groups.issuers as [_keycloak, other]
	got == _by_default
}

# The shipped data.json.
test_data_json if {
	data.temporal.custom.keycloak_groups.issuers == [_keycloak]
	data.temporal.custom.keycloak_groups.groups["temporal-payments-devs"] == {"namespaces": {"payments": ["write"]}}
	data.temporal.custom.keycloak_groups.groups["temporal-platform-admins"] == {"system": ["admin"]}
}
