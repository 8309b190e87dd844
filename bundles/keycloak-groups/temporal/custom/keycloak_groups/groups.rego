# METADATA
# title: Keycloak groups
# description: |
#   Roles from Keycloak group membership: the verified token's groups claim
#   (input.claims.jwt.groups, an array of strings or one string, as Keycloak's
#   "Group Membership" mapper sends it) is looked up in the group table of
#   data.temporal.custom.keycloak_groups.groups (data.json), which grants
#   namespace roles and system roles. The table is bound to the issuers of
#   data.temporal.custom.keycloak_groups.issuers: only a token verified by one
#   of them (input.claims.issuer, the configured issuer that verified it)
#   gains anything; the same groups in a token of another issuer grant nothing.
#   Groups match by name with "Full group path" off ("temporal-payments-devs")
#   and on ("/temporal-payments-devs"); a table key starting with "/" is a full
#   path and matches only that path ("/org/temporal-payments-devs").
#   The default policy counts the roles granted here exactly as the roles of
#   the caller's token.
package temporal.custom.keycloak_groups

# METADATA
# title: Namespace roles from groups
# description: |
#   The roles the caller's groups grant on each namespace: the union over every
#   matched group of its "namespaces" entry ({"payments": ["write"]}).
namespace_roles[ns] contains role if {
	some group in matched_groups
	some ns, roles in data.temporal.custom.keycloak_groups.groups[group].namespaces
	some role in roles
	is_string(role)
}

# METADATA
# title: System roles from groups
# description: |
#   The roles the caller's groups grant on the cluster (as temporal-system:<role>
#   in a token): the union over every matched group of its "system" entry.
system_roles contains role if {
	some group in matched_groups
	some role in data.temporal.custom.keycloak_groups.groups[group].system
	is_string(role)
}

# METADATA
# title: Matched groups
# description: |
#   The keys of the group table that the caller's groups match, when the token
#   was verified by a trusted issuer; empty otherwise.
matched_groups contains key if {
	_trusted_issuer
	some group in _caller_groups
	some key in _keys_for(group)
}

# The configured issuer that verified the token, listed in data.json. The
# internal principal and a call without a token have the issuer "".
_trusted_issuer if {
	input.claims.issuer != ""
	input.claims.issuer in data.temporal.custom.keycloak_groups.issuers
}

_caller_groups contains group if {
	some group in input.claims.jwt.groups
	is_string(group)
}

_caller_groups contains input.claims.jwt.groups if is_string(input.claims.jwt.groups)

# A group name, or a full path, matches its own table key; the full path of a
# top-level group ("/name") matches the key "name" too.
_keys_for(group) := {key |
	some key in [group, trim_prefix(group, "/")]
	_top_level_or_exact(group, key)
	data.temporal.custom.keycloak_groups.groups[key]
}

_top_level_or_exact(group, key) if group == key

_top_level_or_exact(group, key) if {
	group == concat("", ["/", key])
	not contains(key, "/")
}
