package temporal.authz_grants_test

# Calls under time-bound access grants (input.grants).

import data.temporal.authz

_wf := "/temporal.api.workflowservice.v1.WorkflowService/"

_target(method, namespace, access) := {
	"api": concat("", [_wf, method]),
	"service": "temporal.api.workflowservice.v1.WorkflowService",
	"method": method,
	"namespace": namespace,
	"nexus_endpoint": "",
	"scope": "namespace",
	"access": access,
	"health_check": false,
}

_reader := {
	"subject": "rita",
	"auth_type": "jwt",
	"system": [],
	"namespaces": {"payments": ["read"]},
	"jwt": {},
}

_start := _target("StartWorkflowExecution", "payments", "write")

_start_billing := _target("StartWorkflowExecution", "billing", "write")

_signal := _target("SignalWorkflowExecution", "payments", "write")

_register := _target("UpdateNamespace", "payments", "admin")

_grant(id, state, extra) := object.union(
	{
		"id": id,
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
		"approved_by": {"subject": "ada", "issuer": ""},
		"state": state,
	},
	extra,
)

test_decisions[note] if {
	some note, tc in {
		"an active write grant allows a start": {
			"target": _start, "grants": [_grant("g-1", "active", {})],
			"allow": true, "grant": "g-1",
			"reason": `allowed by grant g-1 (write on "payments" until 2026-12-06T10:02:00Z, approved by ada)`,
		},
		"the standing role decides first": {
			"target": _target("DescribeWorkflowExecution", "payments", "read"), "grants": [_grant("g-1", "active", {})],
			"allow": true, "reason": "allowed by the default policy",
		},
		"a write grant does not give admin": {
			"target": _register, "grants": [_grant("g-1", "active", {})],
			"allow": false, "reason": `UpdateNamespace in namespace "payments" requires admin; caller has write`,
		},
		"an expired grant is named": {
			"target": _start, "grants": [_grant("g-1", "expired", {})],
			"allow": false, "reason": `StartWorkflowExecution in namespace "payments" requires write; caller has read; grant g-1 (write on "payments") expired at 2026-12-06T10:02:00Z`,
		},
		"a revoked grant is named": {
			"target": _start, "grants": [_grant("g-1", "revoked", {})],
			"allow": false, "reason": `StartWorkflowExecution in namespace "payments" requires write; caller has read; grant g-1 (write on "payments") was revoked`,
		},
		"a requested grant is named": {
			"target": _start, "grants": [_grant("g-1", "requested", {"approved_by": null})],
			"allow": false, "reason": `StartWorkflowExecution in namespace "payments" requires write; caller has read; grant g-1 (write on "payments") awaits approval`,
		},
		"a scheduled grant is named": {
			"target": _start, "grants": [_grant("g-1", "scheduled", {})],
			"allow": false, "reason": `StartWorkflowExecution in namespace "payments" requires write; caller has read; grant g-1 (write on "payments") starts at 2026-12-06T10:00:00Z`,
		},
		"a grant on another namespace does nothing": {
			"target": _start_billing, "grants": [_grant("g-1", "active", {})],
			"allow": false, "reason": `StartWorkflowExecution in namespace "billing" requires write; caller has no role`,
		},
		"a grant longer than the policy allows is not honoured": {
			"target": _start, "grants": [_grant("g-1", "active", {"duration_ns": 32400000000000})],
			"allow": false, "reason": `StartWorkflowExecution in namespace "payments" requires write; caller has read; grant g-1 (write on "payments") is not honoured: it is longer than the grant policy allows`,
		},
		"an API grant allows its APIs": {
			"target": _signal, "grants": [_grant("g-2", "active", {"role": "", "apis": ["SignalWorkflowExecution"]})],
			"allow": true, "grant": "g-2",
			"reason": `allowed by grant g-2 (SignalWorkflowExecution on "payments" until 2026-12-06T10:02:00Z, approved by ada)`,
		},
		"an API grant allows nothing else": {
			"target": _start, "grants": [_grant("g-2", "active", {"role": "", "apis": ["SignalWorkflowExecution"]})],
			"allow": false, "reason": `StartWorkflowExecution in namespace "payments" requires write; caller has read`,
		},
		"break glass not approved yet says so": {
			"target": _start, "grants": [_grant("g-3", "active", {"break_glass": true, "approved_by": null, "duration_ns": 1800000000000})],
			"allow": true, "grant": "g-3",
			"reason": `allowed by grant g-3 (write on "payments" until 2026-12-06T10:02:00Z, break glass, not approved yet)`,
		},
		"break glass approved after the fact says so": {
			"target": _start, "grants": [_grant("g-3", "active", {"break_glass": true, "duration_ns": 1800000000000})],
			"allow": true, "grant": "g-3",
			"reason": `allowed by grant g-3 (write on "payments" until 2026-12-06T10:02:00Z, break glass, approved after the fact by ada)`,
		},
		"break glass longer than an hour is not honoured": {
			"target": _start, "grants": [_grant("g-3", "active", {"break_glass": true, "duration_ns": 7200000000000})],
			"allow": false, "reason": `StartWorkflowExecution in namespace "payments" requires write; caller has read; grant g-3 (write on "payments") is not honoured: it is longer than the grant policy allows`,
		},
		"the first grant by id names the decision": {
			"target": _start, "grants": [_grant("g-9", "active", {}), _grant("g-5", "active", {"role": "admin", "duration_ns": 600000000000})],
			"allow": true, "grant": "g-5",
			"reason": `allowed by grant g-5 (admin on "payments" until 2026-12-06T10:02:00Z, approved by ada)`,
		},
	}
	d := authz.decision with input as {"claims": _reader, "target": tc.target, "grants": tc.grants} with data.temporal.custom as {}
	d.allow == tc.allow
	d.reason == tc.reason
	object.get(d, "grant", "") == object.get(tc, "grant", "")
}

test_no_claims_no_grant if {
	d := authz.decision with input as {"claims": null, "target": _start, "grants": [_grant("g-1", "active", {})]} with data.temporal.custom as {}
	not d.allow
	d.reason == "StartWorkflowExecution requires a token: the call carried no credentials"
}

test_grant_roles_are_held if {
	roles := authz.held_roles with input as {"claims": _reader, "target": _start, "grants": [_grant("g-1", "active", {})]} with data.temporal.custom as {}
	roles == {"read", "write"}
}

test_inactive_grant_roles_are_not_held if {
	every state in ["expired", "revoked", "requested", "scheduled"] {
		roles := authz.held_roles with input as {"claims": _reader, "target": _start, "grants": [_grant("g-1", state, {})]} with data.temporal.custom as {}
		roles == {"read"}
	}
}
