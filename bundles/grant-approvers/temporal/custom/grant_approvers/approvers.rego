# METADATA
# title: Who approves time-bound grants
# description: |
#   Grant rules for a platform team: members of the approver group (sre) approve
#   and deny grants on every namespace, besides each namespace's admins; only the
#   on-call group breaks glass; admin is never granted on production namespaces;
#   and grants are shorter than the defaults (write 4h, admin 30m, break glass
#   30m, in data.json). The server never lets the requester or a holder of a
#   grant approve it, whatever these rules say.
package temporal.custom.grant_approvers

# METADATA
# title: Grant allow
# description: The approver group approves and denies grants on every namespace.
grant_allow if {
	input.operation in {"approve", "deny"}
	data.temporal.custom.grant_approvers.approver_group in _groups
	not input.caller.is_requester
	not input.caller.is_subject
}

# METADATA
# title: Grant deny
# description: Break glass is for the on-call group; admin is never granted on production namespaces.
grant_deny contains "break glass is for the on-call group: ask an admin of the namespace to approve a request instead" if {
	input.operation == "break_glass"
	not data.temporal.custom.grant_approvers.oncall_group in _groups
}

grant_deny contains sprintf("admin is never granted on production namespace %q: request write", [input.grant.namespace]) if {
	input.operation in {"request", "break_glass", "approve"}
	input.grant.role == "admin"
	input.grant.namespace in data.temporal.custom.grant_approvers.production
}

# The caller's groups, from the token's groups claim; none without one.
_groups := {g | some g in input.claims.jwt.groups}
