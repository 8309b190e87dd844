package temporal.custom.grant_approvers_test

import data.temporal.grants

_claims(subject, groups, namespaces) := {
	"subject": subject,
	"issuer": "https://idp.example",
	"auth_type": "jwt",
	"system": [],
	"namespaces": namespaces,
	"jwt": {"sub": subject, "groups": groups},
}

_target := {
	"api": "temporal-opa/grants/op", "service": "", "method": "op", "namespace": "payments-prod",
	"nexus_endpoint": "", "scope": "namespace", "access": "admin", "health_check": false,
}

_grant(extra) := object.union(
	{
		"id": "g-1",
		"subject": {"subject": "rita", "issuer": "", "claim": "", "value": ""},
		"namespace": "payments-prod",
		"role": "write",
		"apis": [],
		"not_before": "2026-12-06T10:00:00Z",
		"expires": "2026-12-06T12:00:00Z",
		"duration_ns": 7200000000000,
		"reason": "INC-42",
		"break_glass": false,
		"requested_by": {"subject": "rita", "issuer": ""},
		"approved_by": null,
		"state": "requested",
	},
	extra,
)

_input(op, claims, grant, requester) := {
	"operation": op,
	"claims": claims,
	"target": _target,
	"grants": [],
	"grant": grant,
	"caller": {"subject": claims.subject, "issuer": claims.issuer, "is_requester": requester, "is_subject": requester},
}

_rita := _claims("rita", ["payments"], {"payments-prod": ["read"]})

_sam := _claims("sam", ["sre"], {})

_otto := _claims("otto", ["oncall"], {"payments-prod": ["read"]})

test_cases[note] if {
	some note, tc in {
		"an sre approves on any namespace": {"input": _input("approve", _sam, _grant({}), false), "allow": true},
		"an sre denies on any namespace": {"input": _input("deny", _sam, _grant({}), false), "allow": true},
		"someone outside sre without admin cannot approve": {"input": _input("approve", _claims("max", ["dev"], {}), _grant({}), false), "allow": false},
		"an sre cannot approve a request of their own": {"input": _input("approve", _sam, _grant({}), true), "allow": false},
		"write is limited to four hours": {"input": _input("request", _rita, _grant({"duration_ns": 18000000000000}), true), "allow": false},
		"on call breaks glass": {"input": _input("break_glass", _otto, _grant({"state": "active", "break_glass": true, "duration_ns": 1200000000000, "subject": {"subject": "otto", "issuer": "", "claim": "", "value": ""}}), true), "allow": true},
		"others do not break glass": {"input": _input("break_glass", _rita, _grant({"state": "active", "break_glass": true, "duration_ns": 1200000000000}), true), "allow": false},
		"no admin on production": {"input": _input("request", _rita, _grant({"role": "admin", "duration_ns": 600000000000}), true), "allow": false},
		"admin elsewhere, within 30 minutes": {"input": _input("request", _rita, _grant({"role": "admin", "namespace": "payments", "duration_ns": 1200000000000}), true), "allow": true},
	}
	d := grants.decision with input as tc.input
	d.allow == tc.allow
}

test_reasons if {
	d := grants.decision with input as _input("break_glass", _rita, _grant({"state": "active", "break_glass": true, "duration_ns": 1200000000000}), true)
	d.reason == "break glass is for the on-call group: ask an admin of the namespace to approve a request instead"
	e := grants.decision with input as _input("request", _rita, _grant({"role": "admin", "duration_ns": 600000000000}), true)
	e.reason == `admin is never granted on production namespace "payments-prod": request write`
	f := grants.decision with input as _input("request", _rita, _grant({"duration_ns": 18000000000000}), true)
	f.reason == "grant g-1 would last 5h00m; the longest write-role grant the policy allows is 4h00m"
}
