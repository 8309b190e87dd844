# METADATA
# title: Temporal default authorization
# description: |
#   Temporal's default authorizer (authorization.NewDefaultAuthorizer) written in Rego,
#   with extension points for custom rules in package temporal.custom, or in any
#   package one level below it (temporal.custom.<name>, one per bundle, so that
#   bundles with their own roots compose):
#   - deny, a set of reason strings (deny contains reason if ...): any reason
#     denies the call, whatever else allows it;
#   - allow, a boolean (allow if ...): true allows a call the default rules deny;
#   - namespace_roles, an object of sets (namespace_roles[ns] contains role if ...),
#     and system_roles, a set (system_roles contains role if ...): roles granted
#     to the caller (worker, read, write or admin), which the default rules count
#     exactly as the roles of the caller's token.
#   Time-bound access grants (temporal-opa grant) held by the caller are in
#   input.grants: an active one on the target namespace allows what its role (or
#   its list of APIs) allows, within the limits of package temporal.grants.
# related_resources:
#   - ref: https://docs.temporal.io/self-hosted-guide/security#authorizer-plugin
package temporal.authz

# METADATA
# title: Decision
# description: |
#   The decision on one Temporal API call: {"allow": bool, "reason": string}.
#   Custom deny reasons override everything; then the default rules; then the
#   caller's time-bound grants (the decision then names the grant in "grant");
#   then custom allow.
# entrypoint: true
decision := {"allow": false, "reason": concat("; ", sort(_custom_deny_reasons))} if {
	count(_custom_deny_reasons) > 0
} else := {"allow": true, "reason": "allowed by the default policy"} if {
	default_allow
} else := {"allow": true, "reason": _grant_reason(_grant), "grant": _grant.id} if {
	_grant
} else := {"allow": true, "reason": sprintf("allowed by a custom rule (%s)", [concat(", ", sort(_custom_allow_rules))])} if {
	count(_custom_allow_rules) > 0
} else := {"allow": false, "reason": _deny_reason}

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

default_allow if {
	input.target.scope in {"cluster", "namespace"}
	some grant in granted_roles
	_rank[grant.role] >= _required_rank
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

held_roles contains grant.role if {
	some grant in granted_roles
}

held_roles contains grant.role if {
	some grant in grants_in_effect
	grant.role != ""
}

# METADATA
# title: Grants in effect
# description: |
#   The caller's time-bound access grants that count for this call: active
#   (from not_before until expires, as the server saw the clock for this call),
#   on the target namespace, for a namespace-scoped API, and within the limits
#   of the grant policy (data.temporal.grants.within_limits: the maximum
#   duration of its role, checked at use as at approval).
grants_in_effect contains grant if {
	_has_claims
	input.target.scope == "namespace"
	some grant in input.grants
	grant.state == "active"
	grant.namespace == input.target.namespace
	data.temporal.grants.within_limits(grant)
}

# METADATA
# title: Granted roles
# description: |
#   The roles the custom role rules grant the caller that count for this call, as
#   held_roles counts token roles: system roles always, and the target namespace's
#   roles for namespace-scoped APIs. Each is {"role", "namespace" ("" for a
#   system role), "rule"}: rule names the rule that granted it. Only worker, read,
#   write and admin count, and only for a caller with claims (a token or a
#   verified certificate): a call without credentials holds no role.
granted_roles contains {"role": role, "namespace": "", "rule": rule} if {
	some [rule, role] in _system_grants
}

granted_roles contains {"role": role, "namespace": ns, "rule": rule} if {
	input.target.scope == "namespace"
	ns := input.target.namespace
	some [rule, role] in _namespace_grants(ns)
}

# METADATA
# title: All granted roles
# description: |
#   Every role the custom role rules grant the caller, on every namespace and on
#   the cluster, whatever the call (entries as in granted_roles). The server lists
#   namespaces with it; it is not part of any decision.
all_granted_roles contains {"role": role, "namespace": "", "rule": rule} if {
	some [rule, role] in _system_grants
}

all_granted_roles contains {"role": role, "namespace": ns, "rule": "data.temporal.custom.namespace_roles"} if {
	_has_claims
	some ns, roles in data.temporal.custom.namespace_roles
	is_string(ns)
	some role in roles
	_rank[role]
}

all_granted_roles contains {"role": role, "namespace": ns, "rule": sprintf("data.temporal.custom.%s.namespace_roles", [pkg])} if {
	_has_claims
	some pkg, ns
	some role in data.temporal.custom[pkg].namespace_roles[ns]
	not pkg in _reserved
	is_string(ns)
	_rank[role]
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

_custom_deny_reasons contains reason if {
	some pkg
	some reason in data.temporal.custom[pkg].deny
	not pkg in _reserved
	is_string(reason)
}

_custom_deny_reasons contains sprintf("denied by a custom rule (data.temporal.custom.%s.deny)", [pkg]) if {
	some pkg
	some reason in data.temporal.custom[pkg].deny
	not pkg in _reserved
	not is_string(reason)
}

_custom_allow_rules contains "data.temporal.custom.allow" if {
	data.temporal.custom.allow == true
}

_custom_allow_rules contains sprintf("data.temporal.custom.%s.allow", [pkg]) if {
	some pkg
	data.temporal.custom[pkg].allow == true
	not pkg in _reserved
}

# The extension points' names: in package temporal.custom they are rules, not
# packages of rules (data.temporal.custom.deny.deny is not a rule).
_reserved := {"deny", "allow", "namespace_roles", "system_roles", "grant_deny", "grant_allow", "grant_max_duration"}

# [rule, role] pairs of the system roles the role rules grant.
_system_grants contains ["data.temporal.custom.system_roles", role] if {
	_has_claims
	some role in data.temporal.custom.system_roles
	_rank[role]
}

_system_grants contains [sprintf("data.temporal.custom.%s.system_roles", [pkg]), role] if {
	_has_claims
	some pkg
	some role in data.temporal.custom[pkg].system_roles
	not pkg in _reserved
	_rank[role]
}

# [rule, role] pairs of the roles the role rules grant on namespace ns.
_namespace_grants(ns) := {["data.temporal.custom.namespace_roles", role] |
	_has_claims
	some role in data.temporal.custom.namespace_roles[ns]
	_rank[role]
} | {[sprintf("data.temporal.custom.%s.namespace_roles", [pkg]), role] |
	_has_claims
	some pkg
	some role in data.temporal.custom[pkg].namespace_roles[ns]
	not pkg in _reserved
	_rank[role]
}

_highest_held := _role_name[max({_rank[role] | some role in held_roles})]

_default_deny_reason := sprintf("%s requires a token: the call carried no credentials", [input.target.method]) if {
	not _has_claims
} else := sprintf("unknown API %q is denied", [input.target.api]) if {
	not input.target.scope in {"cluster", "namespace"}
} else := sprintf("%s is a cluster API and requires %s on %s; %s has %s", [
	input.target.method,
	required_role,
	"temporal-system",
	_caller,
	_caller_roles_text,
]) if {
	input.target.scope == "cluster"
} else := sprintf("%s in namespace %q requires %s; %s has %s", [
	input.target.method,
	input.target.namespace,
	required_role,
	_caller,
	_caller_roles_text,
])

# Who is denied: a caller identified by its client certificate alone is named
# by it (its SPIFFE ID, else its common name), read from input.claims.tls so
# that token callers, who have none, still share cached decisions.
_caller := sprintf("caller %s (client certificate)", [input.claims.tls.spiffe_id]) if {
	input.claims.auth_type == "tls"
	input.claims.tls.spiffe_id != ""
} else := sprintf("caller CN=%s (client certificate)", [input.claims.tls.subject.common_name]) if {
	input.claims.auth_type == "tls"
} else := "caller"

# The grant in effect that allows the call: the first by id among those that do.
_grant := grant if {
	ids := {grant.id |
		some grant in grants_in_effect
		_grant_allows(grant)
	}
	count(ids) > 0
	some grant in grants_in_effect
	grant.id == min(ids)
}

_grant_allows(grant) if _rank[grant.role] >= _required_rank

_grant_allows(grant) if input.target.method in grant.apis

_grant_reason(grant) := sprintf("allowed by grant %s (%s on %q until %s, %s)", [
	grant.id,
	_grant_access(grant),
	grant.namespace,
	grant.expires,
	_grant_approval(grant),
])

_grant_access(grant) := grant.role if {
	grant.role != ""
} else := concat(", ", grant.apis)

_grant_approval(grant) := sprintf("approved by %s", [grant.approved_by.subject]) if {
	not grant.break_glass
	grant.approved_by.subject
} else := sprintf("break glass, approved after the fact by %s", [grant.approved_by.subject]) if {
	grant.approved_by.subject
} else := "break glass, not approved yet"

_deny_reason := concat("; ", array.concat([_default_deny_reason], sort(_grant_notes))) if {
	count(_grant_notes) > 0
} else := _default_deny_reason

# What the caller's grants on the target namespace did not give, for the deny reason.
_grant_notes contains sprintf("grant %s (%s on %q) expired at %s", [g.id, _grant_access(g), g.namespace, g.expires]) if {
	some g in _target_grants
	g.state == "expired"
}

_grant_notes contains sprintf("grant %s (%s on %q) was revoked", [g.id, _grant_access(g), g.namespace]) if {
	some g in _target_grants
	g.state == "revoked"
}

_grant_notes contains sprintf("grant %s (%s on %q) awaits approval", [g.id, _grant_access(g), g.namespace]) if {
	some g in _target_grants
	g.state == "requested"
}

_grant_notes contains sprintf("grant %s (%s on %q) starts at %s", [g.id, _grant_access(g), g.namespace, g.not_before]) if {
	some g in _target_grants
	g.state == "scheduled"
}

_grant_notes contains sprintf("grant %s (%s on %q) is not honoured: it is longer than the grant policy allows", [g.id, _grant_access(g), g.namespace]) if {
	some g in _target_grants
	g.state == "active"
	not data.temporal.grants.within_limits(g)
}

_target_grants contains grant if {
	_has_claims
	input.target.scope == "namespace"
	some grant in input.grants
	grant.namespace == input.target.namespace
}

_caller_roles_text := _highest_held if {
	_highest_held
} else := "no role"
