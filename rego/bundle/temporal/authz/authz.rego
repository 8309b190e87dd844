# METADATA
# title: Temporal default authorization
# description: |
#   Temporal's default authorizer (authorization.NewDefaultAuthorizer) written in Rego,
#   with an extension point for custom rules in package temporal.custom:
#   - data.temporal.custom.deny, a set of reason strings (deny contains reason if ...):
#     any reason denies the call, whatever else allows it;
#   - data.temporal.custom.allow, a boolean (allow if ...): true allows a call the
#     default rules deny.
# related_resources:
#   - ref: https://docs.temporal.io/self-hosted-guide/security#authorizer-plugin
package temporal.authz

# METADATA
# title: Decision
# description: |
#   The decision on one Temporal API call: {"allow": bool, "reason": string}.
#   Custom deny reasons override everything; then the default rules; then custom allow.
# entrypoint: true
decision := {"allow": false, "reason": concat("; ", sort(_custom_deny_reasons))} if {
	count(_custom_deny_reasons) > 0
} else := {"allow": true, "reason": "allowed by the default policy"} if {
	default_allow
} else := {"allow": true, "reason": "allowed by a custom rule (data.temporal.custom.allow)"} if {
	data.temporal.custom.allow == true
} else := {"allow": false, "reason": _default_deny_reason}

# METADATA
# title: Default allow
# description: True when Temporal's default authorizer allows the call.
default default_allow := false

default_allow if input.target.health_check

# The roles of held_roles, each tested where it is found: cheaper than building the set.
default_allow if {
	input.target.scope in {"cluster", "namespace"}
	some role in input.claims.system
	_rank[role] >= _required_rank
}

default_allow if {
	input.target.scope == "namespace"
	some role in input.claims.namespaces[input.target.namespace]
	_rank[role] >= _required_rank
}

# METADATA
# title: Internal principal
# description: |
#   True for Temporal's own internal principal: the system worker calling through
#   internal-frontend (schedules, batch operations, namespace deletion). Custom deny
#   rules can exempt it: `not data.temporal.authz.internal_principal`.
internal_principal if input.claims.auth_type == "temporal"

# METADATA
# title: Held roles
# description: |
#   The roles that count for this call: system roles always, and the roles on the
#   target namespace (exact, case-sensitive match) for namespace-scoped APIs.
held_roles contains role if {
	some role in input.claims.system
}

held_roles contains role if {
	input.target.scope == "namespace"
	some role in input.claims.namespaces[input.target.namespace]
}

# METADATA
# title: Required role
# description: The role the API needs, as Temporal classifies it (read, write, else admin).
required_role := _role_name[_required_rank]

# The caller has claims (input.claims is not null). Tested through a field, not the
# whole object, so that the authorizer sees this policy reads only the roles and can
# share cached decisions between tokens that grant the same roles.
_has_claims if input.claims.system

# Temporal compares roles numerically (Role bits worker=1, read=2, write=4, admin=8), so
# the highest role held decides and worker alone is below read.
_rank := {"worker": 1, "read": 2, "write": 4, "admin": 8}

_role_name := {1: "worker", 2: "read", 4: "write", 8: "admin"}

_required_rank := 2 if {
	input.target.access == "read"
} else := 4 if {
	input.target.access == "write"
} else := 8

_custom_deny_reasons contains reason if {
	some reason in data.temporal.custom.deny
	is_string(reason)
}

_custom_deny_reasons contains "denied by a custom rule (data.temporal.custom.deny)" if {
	some reason in data.temporal.custom.deny
	not is_string(reason)
}

_highest_held := _role_name[max({_rank[role] | some role in held_roles})]

_default_deny_reason := sprintf("%s requires a token: the call carried no credentials", [input.target.method]) if {
	not _has_claims
} else := sprintf("unknown API %q is denied", [input.target.api]) if {
	not input.target.scope in {"cluster", "namespace"}
} else := sprintf("%s is a cluster API and requires %s on %s; caller has %s", [
	input.target.method,
	required_role,
	"temporal-system",
	_caller_roles_text,
]) if {
	input.target.scope == "cluster"
} else := sprintf("%s in namespace %q requires %s; caller has %s", [
	input.target.method,
	input.target.namespace,
	required_role,
	_caller_roles_text,
])

_caller_roles_text := _highest_held if {
	_highest_held
} else := "no role"
