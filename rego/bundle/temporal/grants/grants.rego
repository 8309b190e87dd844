# METADATA
# title: Time-bound access grants
# description: |
#   Who may request, approve, deny, revoke and break glass on time-bound access
#   grants (temporal-opa grant), and how long a grant may last. The server asks
#   data.temporal.grants.decision for every grant operation, with input.operation,
#   input.grant (the grant as requested or as stored), input.caller (the
#   caller's verified subject and issuer, whether it requested the grant or
#   would hold it) and the caller's claims, with
#   input.target on the grant's namespace, so that data.temporal.authz.held_roles
#   are the caller's standing roles there (its token's and the role rules'; never
#   other grants). Whatever the policy decides, the server never lets the
#   requester or a holder of a grant approve or deny it (four eyes).
#
#   Extension points, in package temporal.custom or one level below it
#   (temporal.custom.<name>), as for calls:
#   - grant_deny, a set of reason strings: any reason refuses the operation;
#   - grant_allow, a boolean: true allows an operation the default rules refuse;
#   - grant_max_duration, an object of duration strings by role (worker, read,
#     write, admin), "apis" (grants of API lists) and "break_glass": the longest
#     grant each may give. Where several bundles set one, the shortest wins.
package temporal.grants

# METADATA
# title: Grant decision
# description: |
#   The decision on one grant operation: {"allow": bool, "reason": string}.
#   Custom grant_deny reasons and the limits refuse whatever else allows; then
#   the default rules; then custom grant_allow.
# entrypoint: true
decision := {"allow": false, "reason": concat("; ", sort(_refusals))} if {
	count(_refusals) > 0
} else := {"allow": true, "reason": _default_reason} if {
	_default_allow
} else := {"allow": true, "reason": sprintf("allowed by a custom rule (%s)", [concat(", ", sort(_custom_allow_rules))])} if {
	count(_custom_allow_rules) > 0
} else := {"allow": false, "reason": _default_deny_reason}

# METADATA
# title: Maximum durations
# description: |
#   The longest grant of each kind, in nanoseconds: the roles, "apis" and
#   "break_glass". Defaults: worker and read 24h, write 8h, admin 1h, apis 8h,
#   break glass 1h; grant_max_duration rules lower or raise them.
max_duration_ns[kind] := ns if {
	some kind, _ in _default_max
	ns := _max_ns(kind)
}

_default_max := {
	"worker": "24h",
	"read": "24h",
	"write": "8h",
	"admin": "1h",
	"apis": "8h",
	"break_glass": "1h",
}

_max_ns(kind) := min(_custom_max[kind]) if {
	count(_custom_max[kind]) > 0
} else := time.parse_duration_ns(_default_max[kind])

_custom_max[kind] contains time.parse_duration_ns(d) if {
	some kind, d in data.temporal.custom.grant_max_duration
	is_string(d)
}

_custom_max[kind] contains time.parse_duration_ns(d) if {
	some pkg
	some kind, d in data.temporal.custom[pkg].grant_max_duration
	not pkg in _reserved
	is_string(d)
}

# METADATA
# title: Within limits
# description: |
#   True when grant lasts no longer than the policy allows its kind (and, for a
#   break-glass grant, no longer than break glass allows). Checked when a grant
#   is requested and approved, and again at every use
#   (data.temporal.authz.grants_in_effect).
within_limits(grant) if {
	grant.duration_ns <= _limit_ns(grant)
}

_limit_ns(grant) := min({max_duration_ns[_kind(grant)], max_duration_ns.break_glass}) if {
	grant.break_glass
} else := max_duration_ns[_kind(grant)]

_kind(grant) := grant.role if {
	grant.role != ""
} else := "apis"

_reserved := {"deny", "allow", "namespace_roles", "system_roles", "grant_deny", "grant_allow", "grant_max_duration"}

_refusals contains reason if {
	some reason in _custom_deny_reasons
}

_refusals contains sprintf("grant %s would last %s; the longest %s grant the policy allows is %s", [
	input.grant.id,
	_duration_text(input.grant.duration_ns),
	_kind_text(input.grant),
	_duration_text(_limit_ns(input.grant)),
]) if {
	input.operation in {"request", "break_glass", "approve"}
	not within_limits(input.grant)
}

_refusals contains sprintf("grant %s is %s: only a requested grant, or a break-glass grant awaiting approval, can be approved", [
	input.grant.id,
	input.grant.state,
]) if {
	input.operation == "approve"
	not _approvable
}

_refusals contains sprintf("grant %s is %s: only a requested grant can be denied", [input.grant.id, input.grant.state]) if {
	input.operation == "deny"
	input.grant.state != "requested"
}

_refusals contains sprintf("grant %s is %s: only a requested or active grant can be revoked", [input.grant.id, input.grant.state]) if {
	input.operation == "revoke"
	not input.grant.state in {"requested", "active"}
}

_approvable if input.grant.state == "requested"

_approvable if {
	input.grant.state == "active"
	input.grant.break_glass
	not input.grant.approved_by.subject
}

_custom_deny_reasons contains reason if {
	some reason in data.temporal.custom.grant_deny
	is_string(reason)
}

_custom_deny_reasons contains reason if {
	some pkg
	some reason in data.temporal.custom[pkg].grant_deny
	not pkg in _reserved
	is_string(reason)
}

_custom_allow_rules contains "data.temporal.custom.grant_allow" if {
	data.temporal.custom.grant_allow == true
}

_custom_allow_rules contains sprintf("data.temporal.custom.%s.grant_allow", [pkg]) if {
	some pkg
	data.temporal.custom[pkg].grant_allow == true
	not pkg in _reserved
}

# Default rules. Any caller with a verified subject may request a grant and list
# grants; admins of the grant's namespace approve and deny (never their own
# request, nor a grant they would hold); the requester, the holder and those
# admins revoke; a caller who already holds a role on the namespace may break
# glass for itself (not for a group it is in), up to write.
default _default_allow := false

_default_allow if {
	input.operation in {"request", "list"}
	_has_subject
}

_default_allow if {
	input.operation in {"approve", "deny"}
	_namespace_admin
	not input.caller.is_requester
	not input.caller.is_subject
}

_default_allow if {
	input.operation == "revoke"
	_may_revoke
}

_default_allow if {
	input.operation == "break_glass"
	_has_subject
	count(data.temporal.authz.held_roles) > 0
	input.caller.is_subject
	input.grant.subject.claim == "" # for the caller alone, never for a whole group
	_kind(input.grant) in {"worker", "read", "write", "apis"}
}

_may_revoke if input.caller.is_requester

_may_revoke if input.caller.is_subject

_may_revoke if _namespace_admin

_namespace_admin if "admin" in data.temporal.authz.held_roles

# Read from input.caller, not input.claims: the call path's decision cache
# keys decisions by the claims any rule reads, and this is no call's business.
_has_subject if input.caller.subject != ""

_default_reason := sprintf("%s allowed by the default grant policy", [input.operation])

_default_deny_reason := sprintf("%s needs a caller with a verified subject", [input.operation]) if {
	not _has_subject
} else := sprintf("%s on a grant for namespace %q requires admin there, and a caller who neither requested the grant nor would hold it; caller has %s", [
	input.operation,
	input.grant.namespace,
	_roles_text,
]) if {
	input.operation in {"approve", "deny"}
} else := sprintf("revoking grant %s requires its requester, its holder or an admin of namespace %q", [
	input.grant.id,
	input.grant.namespace,
]) if {
	input.operation == "revoke"
} else := sprintf("break glass on namespace %q requires a role there already (break glass raises it, for yourself alone, up to write); caller has %s", [
	input.grant.namespace,
	_roles_text,
]) if {
	input.operation == "break_glass"
} else := sprintf("%s is not allowed by the grant policy", [input.operation])

_roles_text := concat(", ", sort(data.temporal.authz.held_roles)) if {
	count(data.temporal.authz.held_roles) > 0
} else := "no role"

_kind_text(grant) := sprintf("%s-role", [grant.role]) if {
	grant.role != ""
	not grant.break_glass
} else := sprintf("break-glass %s-role", [grant.role]) if {
	grant.role != ""
} else := "API-list"

_duration_text(ns) := sprintf("%dh%02dm", [h, m]) if {
	h := floor(ns / 3600000000000)
	m := floor((ns - (h * 3600000000000)) / 60000000000)
}
