package temporal.custom.ui_friendly_reads_test

import data.temporal.authz

_wf := "temporal.api.workflowservice.v1.WorkflowService"

_op := "temporal.api.operatorservice.v1.OperatorService"

_admin := "temporal.server.api.adminservice.v1.AdminService"

_target(service, method, scope, access) := {
	"api": concat("", ["/", service, "/", method]),
	"service": service,
	"method": method,
	"namespace": "",
	"nexus_endpoint": "",
	"scope": scope,
	"access": access,
	"health_check": method == "GetSystemInfo",
}

_cluster_info := _target(_wf, "GetClusterInfo", "cluster", "read")

_search_attributes := _target(_wf, "GetSearchAttributes", "cluster", "read")

_list_namespaces := _target(_wf, "ListNamespaces", "cluster", "read")

_list_clusters := _target(_op, "ListClusters", "cluster", "admin")

_list_nexus_endpoints := _target(_op, "ListNexusEndpoints", "cluster", "admin")

_admin_describe_cluster := _target(_admin, "DescribeCluster", "cluster", "admin")

_start := object.union(_target(_wf, "StartWorkflowExecution", "namespace", "write"), {"namespace": "orders"})

_claims(system, namespaces) := {
	"subject": "alice",
	"auth_type": "jwt",
	"system": system,
	"namespaces": namespaces,
	"jwt": {},
}

_reader := _claims([], {"orders": ["read"]})

_ns_admin := _claims([], {"orders": ["admin"]})

_by_custom := {"allow": true, "reason": "allowed by a custom rule (data.temporal.custom.ui_friendly_reads.allow)"}

_by_default := {"allow": true, "reason": "allowed by the default policy"}

_denied(reason) := {"allow": false, "reason": reason}

_cases := {
	# Namespace users get the UI's cluster reads.
	"namespace reader gets cluster info": {"claims": _reader, "target": _cluster_info, "want": _by_custom},
	"namespace reader gets search attributes": {"claims": _reader, "target": _search_attributes, "want": _by_custom},
	"namespace writer gets cluster info": {"claims": _claims([], {"orders": ["write"]}), "target": _cluster_info, "want": _by_custom},
	"namespace admin gets search attributes": {"claims": _ns_admin, "target": _search_attributes, "want": _by_custom},
	"reader of one of several namespaces": {
		"claims": _claims([], {"orders": ["worker"], "payments": ["read"]}), "target": _cluster_info,
		"want": _by_custom,
	},
	# With list_namespaces false, ListNamespaces stays with temporal-system.
	"namespace admin cannot list namespaces": {
		"claims": _ns_admin, "target": _list_namespaces,
		"want": _denied("ListNamespaces is a cluster API and requires read on temporal-system; caller has no role"),
	},
	# Only read-or-higher on a namespace counts.
	"worker only gets nothing": {
		"claims": _claims([], {"orders": ["worker"]}), "target": _cluster_info,
		"want": _denied("GetClusterInfo is a cluster API and requires read on temporal-system; caller has no role"),
	},
	"no roles gets nothing": {
		"claims": _claims([], {}), "target": _search_attributes,
		"want": _denied("GetSearchAttributes is a cluster API and requires read on temporal-system; caller has no role"),
	},
	"no credentials gets nothing": {
		"claims": null, "target": _cluster_info,
		"want": _denied("GetClusterInfo requires a token: the call carried no credentials"),
	},
	# Nothing else cluster-level.
	"namespace admin cannot list clusters": {
		"claims": _ns_admin, "target": _list_clusters,
		"want": _denied("ListClusters is a cluster API and requires admin on temporal-system; caller has no role"),
	},
	"namespace admin cannot list nexus endpoints": {
		"claims": _ns_admin, "target": _list_nexus_endpoints,
		"want": _denied("ListNexusEndpoints is a cluster API and requires admin on temporal-system; caller has no role"),
	},
	"namespace admin cannot call AdminService": {
		"claims": _ns_admin, "target": _admin_describe_cluster,
		"want": _denied("DescribeCluster is a cluster API and requires admin on temporal-system; caller has no role"),
	},
	# The default policy decides everything else as before.
	"system reader gets cluster info": {"claims": _claims(["read"], {}), "target": _cluster_info, "want": _by_default},
	"system reader lists namespaces": {"claims": _claims(["read"], {}), "target": _list_namespaces, "want": _by_default},
	"GetSystemInfo needs no grant": {"claims": null, "target": _target(_wf, "GetSystemInfo", "cluster", "read"), "want": _by_default},
	"namespace reader still cannot start": {
		"claims": _reader, "target": _start,
		"want": _denied(`StartWorkflowExecution in namespace "orders" requires write; caller has read`),
	},
	"namespace writer still starts": {"claims": _claims([], {"orders": ["write"]}), "target": _start, "want": _by_default},
}

test_decisions[name] if {
	some name, tc in _cases
	got := authz.decision with input as {"claims": tc.claims, "target": tc.target}
		with data.temporal.custom.ui_friendly_reads.list_namespaces as false
	got == tc.want
}

# With list_namespaces enabled in data.json, namespace users may list namespaces too.
_list_enabled_cases := {
	"namespace reader lists namespaces": {"claims": _reader, "want": _by_custom},
	"worker only still cannot list namespaces": {
		"claims": _claims([], {"orders": ["worker"]}),
		"want": _denied("ListNamespaces is a cluster API and requires read on temporal-system; caller has no role"),
	},
}

test_list_namespaces_enabled[name] if {
	some name, tc in _list_enabled_cases
	got := authz.decision with input as {"claims": tc.claims, "target": _list_namespaces}
		with data.temporal.custom.ui_friendly_reads.list_namespaces as true
	got == tc.want
}

# The shipped data.json lets namespace users list namespaces: the Web UI's
# namespace picker needs it, and temporal-opa's frontend trims the answer to the
# namespaces the caller holds a role on (wiring.FilterNamespaces).
test_data_json_default if {
	data.temporal.custom.ui_friendly_reads.list_namespaces == true
}

# Roles granted on a namespace by a role rule of another bundle count as the
# token's: read or higher gets the UI's cluster reads, worker does not.
test_granted_namespace_roles_count if {
	no_roles := _claims([], {})
	got := authz.decision with input as {"claims": no_roles, "target": _cluster_info}
		with data.temporal.custom.groups.namespace_roles as {"orders": {"read"}}
	got == _by_custom
	listed := authz.decision with input as {"claims": no_roles, "target": _list_namespaces}
		with data.temporal.custom.groups.namespace_roles as {"orders": {"write"}}
		with data.temporal.custom.ui_friendly_reads.list_namespaces as true
	listed == _by_custom
	worker := authz.decision with input as {"claims": no_roles, "target": _cluster_info}
		with data.temporal.custom.groups.namespace_roles as {"orders": {"worker"}}
	worker == _denied("GetClusterInfo is a cluster API and requires read on temporal-system; caller has no role")
	no_creds := authz.decision with input as {"claims": null, "target": _cluster_info}
		with data.temporal.custom.groups.namespace_roles as {"orders": {"read"}}
	no_creds == _denied("GetClusterInfo requires a token: the call carried no credentials")
}

# A system role granted by a role rule is decided by the default rules.
test_granted_system_role_by_default if {
	got := authz.decision with input as {"claims": _claims([], {}), "target": _search_attributes}
		with data.temporal.custom.groups.system_roles as {"read"}
	got == _by_default
}
