# METADATA
# title: UI-friendly cluster reads
# description: |
#   A caller with read, write or admin on at least one namespace may call the
#   cluster-scoped read APIs the Temporal Web UI needs on every page load
#   (GetClusterInfo, GetSearchAttributes, ListNamespaces). Temporal's default
#   authorizer gives them only to temporal-system roles, so namespace-scoped
#   users get 403s. ListNamespaces is granted while
#   data.temporal.custom.ui_friendly_reads.list_namespaces is true (as shipped):
#   temporal-opa's frontend then answers such a caller with only the namespaces
#   it holds a role on, not other namespaces' data (a plain Temporal server
#   would return every namespace: set it to false there).
#   Roles on namespaces granted by role rules of other bundles
#   (data.temporal.authz.all_granted_roles) count as the token's roles do.
#   Layered on the default policy: every other call is decided by it as before.
package temporal.custom.ui_friendly_reads

# METADATA
# title: Allow UI cluster reads
# description: |
#   True for a cluster read API of WorkflowService listed in ui_cluster_reads,
#   called by a caller with read or higher on some namespace, from its token
#   or granted by a role rule. Nothing else
#   cluster-level is granted: not OperatorService, not AdminService.
default allow := false

allow if {
	input.target.service == "temporal.api.workflowservice.v1.WorkflowService"
	input.target.scope == "cluster"
	input.target.access == "read"
	input.target.method in ui_cluster_reads
	_reads_some_namespace
}

# METADATA
# title: UI cluster reads
# description: |
#   The cluster-scoped WorkflowService read APIs granted to namespace users.
#   GetClusterInfo: server version and capabilities (the UI's version banner).
#   GetSearchAttributes: search attribute names and types (the workflow list filters).
#   ListNamespaces: while enabled in data.json (see the package description).
#   GetSystemInfo needs no grant: the default policy allows it to everyone.
ui_cluster_reads := {"GetClusterInfo", "GetSearchAttributes"} | _list_namespaces

_list_namespaces := {"ListNamespaces"} if {
	data.temporal.custom.ui_friendly_reads.list_namespaces == true
} else := set()

_reads_some_namespace if {
	some roles in input.claims.namespaces
	some role in roles
	role in _reader_roles
}

# A role a role rule grants on some namespace (the namespace of a system role
# grant is "": a system role already allows these calls by the default rules).
_reads_some_namespace if {
	some grant in data.temporal.authz.all_granted_roles
	grant.namespace != ""
	grant.role in _reader_roles
}

_reader_roles := {"read", "write", "admin"}
