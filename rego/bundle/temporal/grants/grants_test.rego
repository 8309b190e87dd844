package temporal.grants_test

import data.temporal.grants

_claims(subject, namespaces) := {
	"subject": subject,
	"auth_type": "jwt",
	"system": [],
	"namespaces": namespaces,
	"jwt": {},
}

_reader := _claims("rita", {"payments": ["read"]})

_admin := _claims("ada", {"payments": ["admin"]})

_stranger := _claims("sam", {"billing": ["admin"]})

_target := {
	"api": "temporal-opa/grants/op",
	"service": "",
	"method": "op",
	"namespace": "payments",
	"nexus_endpoint": "",
	"scope": "namespace",
	"access": "admin",
	"health_check": false,
}

_grant(extra) := object.union(
	{
		"id": "g-1",
		"subject": {"subject": "rita", "issuer": "", "claim": "", "value": ""},
		"namespace": "payments",
		"role": "write",
		"apis": [],
		"not_before": "2026-12-06T10:00:00Z",
		"expires": "2026-12-06T10:02:00Z",
		"duration_ns": 120000000000,
		"reason": "INC-42",
		"break_glass": false,
		"requested_by": {"subject": "rita", "issuer": ""},
		"approved_by": null,
		"state": "requested",
	},
	extra,
)

_hours(n) := n * 3600000000000

_input(op, claims, grant, requester, subject) := {
	"operation": op,
	"claims": claims,
	"target": _target,
	"grants": [],
	"grant": grant,
	"caller": {"subject": claims.subject, "issuer": "", "is_requester": requester, "is_subject": subject},
}

test_operations[note] if {
	some note, tc in {
		"a reader requests write for two minutes": {
			"input": _input("request", _reader, _grant({}), true, true),
			"allow": true, "reason": "request allowed by the default grant policy",
		},
		"a request over the maximum is refused": {
			"input": _input("request", _reader, _grant({"duration_ns": _hours(9)}), true, true),
			"allow": false, "reason": "grant g-1 would last 9h00m; the longest write-role grant the policy allows is 8h00m",
		},
		"an admin request over an hour is refused": {
			"input": _input("request", _reader, _grant({"role": "admin", "duration_ns": _hours(2)}), true, true),
			"allow": false, "reason": "grant g-1 would last 2h00m; the longest admin-role grant the policy allows is 1h00m",
		},
		"an API-list request over the maximum is refused": {
			"input": _input("request", _reader, _grant({"role": "", "apis": ["SignalWorkflowExecution"], "duration_ns": _hours(9)}), true, true),
			"allow": false, "reason": "grant g-1 would last 9h00m; the longest API-list grant the policy allows is 8h00m",
		},
		"a request without a subject is refused": {
			"input": _input("request", _claims("", {}), _grant({}), false, false),
			"allow": false, "reason": "request needs a caller with a verified subject",
		},
		"an admin of the namespace approves": {
			"input": _input("approve", _admin, _grant({}), false, false),
			"allow": true, "reason": "approve allowed by the default grant policy",
		},
		"the requester cannot approve": {
			"input": _input("approve", _claims("rita", {"payments": ["admin"]}), _grant({}), true, true),
			"allow": false,
			"reason": `approve on a grant for namespace "payments" requires admin there, and a caller who neither requested the grant nor would hold it; caller has admin`,
		},
		"the holder cannot approve": {
			"input": _input("approve", _admin, _grant({"requested_by": {"subject": "mo", "issuer": ""}}), false, true),
			"allow": false,
			"reason": `approve on a grant for namespace "payments" requires admin there, and a caller who neither requested the grant nor would hold it; caller has admin`,
		},
		"an admin of another namespace cannot approve": {
			"input": _input("approve", _stranger, _grant({}), false, false),
			"allow": false,
			"reason": `approve on a grant for namespace "payments" requires admin there, and a caller who neither requested the grant nor would hold it; caller has no role`,
		},
		"a system admin approves": {
			"input": _input("approve", object.union(_claims("root", {}), {"system": ["admin"]}), _grant({}), false, false),
			"allow": true, "reason": "approve allowed by the default grant policy",
		},
		"an expired grant cannot be approved": {
			"input": _input("approve", _admin, _grant({"state": "expired"}), false, false),
			"allow": false, "reason": "grant g-1 is expired: only a requested grant, or a break-glass grant awaiting approval, can be approved",
		},
		"an approved grant cannot be approved again": {
			"input": _input("approve", _admin, _grant({"state": "active", "approved_by": {"subject": "bo", "issuer": ""}}), false, false),
			"allow": false, "reason": "grant g-1 is active: only a requested grant, or a break-glass grant awaiting approval, can be approved",
		},
		"approval over the maximum is refused": {
			"input": _input("approve", _admin, _grant({"duration_ns": _hours(10)}), false, false),
			"allow": false, "reason": "grant g-1 would last 10h00m; the longest write-role grant the policy allows is 8h00m",
		},
		"a break-glass grant is approved after the fact": {
			"input": _input("approve", _admin, _grant({"state": "active", "break_glass": true, "duration_ns": _hours(1)}), false, false),
			"allow": true, "reason": "approve allowed by the default grant policy",
		},
		"an admin denies": {
			"input": _input("deny", _admin, _grant({}), false, false),
			"allow": true, "reason": "deny allowed by the default grant policy",
		},
		"an active grant cannot be denied": {
			"input": _input("deny", _admin, _grant({"state": "active"}), false, false),
			"allow": false, "reason": "grant g-1 is active: only a requested grant can be denied",
		},
		"the holder revokes": {
			"input": _input("revoke", _reader, _grant({"state": "active"}), true, true),
			"allow": true, "reason": "revoke allowed by the default grant policy",
		},
		"an admin revokes": {
			"input": _input("revoke", _admin, _grant({"state": "active"}), false, false),
			"allow": true, "reason": "revoke allowed by the default grant policy",
		},
		"a stranger cannot revoke": {
			"input": _input("revoke", _stranger, _grant({"state": "active"}), false, false),
			"allow": false, "reason": `revoking grant g-1 requires its requester, its holder or an admin of namespace "payments"`,
		},
		"a revoked grant cannot be revoked": {
			"input": _input("revoke", _admin, _grant({"state": "revoked"}), false, false),
			"allow": false, "reason": "grant g-1 is revoked: only a requested or active grant can be revoked",
		},
		"a reader breaks glass to write for half an hour": {
			"input": _input("break_glass", _reader, _grant({"state": "active", "break_glass": true, "duration_ns": _hours(1) / 2}), true, true),
			"allow": true, "reason": "break_glass allowed by the default grant policy",
		},
		"break glass over an hour is refused": {
			"input": _input("break_glass", _reader, _grant({"state": "active", "break_glass": true, "duration_ns": _hours(2)}), true, true),
			"allow": false, "reason": "grant g-1 would last 2h00m; the longest break-glass write-role grant the policy allows is 1h00m",
		},
		"break glass to admin is refused": {
			"input": _input("break_glass", _reader, _grant({"role": "admin", "state": "active", "break_glass": true, "duration_ns": _hours(1) / 2}), true, true),
			"allow": false,
			"reason": `break glass on namespace "payments" requires a role there already (break glass raises it, for yourself alone, up to write); caller has read`,
		},
		"break glass without a role is refused": {
			"input": _input("break_glass", _stranger, _grant({"state": "active", "break_glass": true, "duration_ns": _hours(1) / 2}), true, true),
			"allow": false,
			"reason": `break glass on namespace "payments" requires a role there already (break glass raises it, for yourself alone, up to write); caller has no role`,
		},
		"break glass for someone else is refused": {
			"input": _input("break_glass", _reader, _grant({"state": "active", "break_glass": true, "duration_ns": _hours(1) / 2}), true, false),
			"allow": false,
			"reason": `break glass on namespace "payments" requires a role there already (break glass raises it, for yourself alone, up to write); caller has read`,
		},
		"break glass for a group one is in is refused": {
			"input": _input("break_glass", _reader, _grant({"state": "active", "break_glass": true, "duration_ns": _hours(1) / 2, "subject": {"subject": "", "issuer": "", "claim": "groups", "value": "payments"}}), true, true),
			"allow": false,
			"reason": `break glass on namespace "payments" requires a role there already (break glass raises it, for yourself alone, up to write); caller has read`,
		},
		"anyone with a subject lists": {
			"input": _input("list", _stranger, _grant({}), false, false),
			"allow": true, "reason": "list allowed by the default grant policy",
		},
	}
	d := grants.decision with input as tc.input with data.temporal.custom as {}
	d.allow == tc.allow
	d.reason == tc.reason
}

test_custom_max_duration_lowers_and_shortest_wins if {
	d := grants.decision with input as _input("request", _reader, _grant({"duration_ns": _hours(3)}), true, true)
		with data.temporal.custom as {"ops": {"grant_max_duration": {"write": "4h"}}, "sec": {"grant_max_duration": {"write": "2h"}}}
	not d.allow
	d.reason == "grant g-1 would last 3h00m; the longest write-role grant the policy allows is 2h00m"
}

test_custom_max_duration_raises if {
	d := grants.decision with input as _input("request", _reader, _grant({"duration_ns": _hours(12)}), true, true)
		with data.temporal.custom as {"grant_max_duration": {"write": "12h"}}
	d.allow
}

test_custom_grant_deny_refuses if {
	d := grants.decision with input as _input("approve", _admin, _grant({}), false, false)
		with data.temporal.custom as {"cab": {"grant_deny": {"write grants on payments need a change ticket"}}}
	not d.allow
	d.reason == "write grants on payments need a change ticket"
}

test_custom_grant_allow_allows if {
	d := grants.decision with input as _input("approve", _stranger, _grant({}), false, false)
		with data.temporal.custom as {"sre": {"grant_allow": true}}
	d.allow
	d.reason == "allowed by a custom rule (data.temporal.custom.sre.grant_allow)"
}

test_custom_grant_allow_at_top_level if {
	d := grants.decision with input as _input("approve", _stranger, _grant({}), false, false)
		with data.temporal.custom as {"grant_allow": true, "grant_deny": {1}}
	d.allow
}

test_custom_deny_at_top_level if {
	d := grants.decision with input as _input("request", _reader, _grant({}), true, true)
		with data.temporal.custom as {"grant_deny": {"no requests during the freeze"}}
	d.reason == "no requests during the freeze"
}

test_within_limits if {
	grants.within_limits(_grant({})) with data.temporal.custom as {}
	not grants.within_limits(_grant({"duration_ns": _hours(9)})) with data.temporal.custom as {}
	grants.within_limits(_grant({"role": "", "apis": ["SignalWorkflowExecution"], "duration_ns": _hours(8)})) with data.temporal.custom as {}
	not grants.within_limits(_grant({"role": "", "apis": ["SignalWorkflowExecution"], "duration_ns": _hours(9)})) with data.temporal.custom as {}
}

test_max_durations if {
	grants.max_duration_ns with data.temporal.custom as {} == {
		"worker": _hours(24), "read": _hours(24), "write": _hours(8),
		"admin": _hours(1), "apis": _hours(8), "break_glass": _hours(1),
	}
}

test_unknown_operation if {
	d := grants.decision with input as _input("frobnicate", _admin, _grant({}), false, false) with data.temporal.custom as {}
	not d.allow
	d.reason == "frobnicate is not allowed by the grant policy"
}
