// Package policy decides Temporal API calls with OPA.
//
// An [Authorizer] implements Temporal's authorization.Authorizer. For every call it
// builds the input document (see [Input] and rego/input.schema.json) from the
// caller's claims and the call target, and evaluates a prepared Rego query, by
// default data.temporal.authz.decision of the embedded bundle in package rego,
// which gives exactly the decisions of Temporal's default authorizer.
//
// Custom rules come as OPA bundles. A bundle whose roots do not overlap the default
// policy's (temporal/authz), typically rooted at temporal/custom, is layered on the
// default: its data.temporal.custom.deny reasons deny any call, and
// data.temporal.custom.allow grants calls the default denies. A bundle whose roots
// cover temporal/authz replaces the default. Every activation compiles the bundles,
// type-checks them against the input schema, checks the decision path has rules,
// prepares the query and only then swaps it in atomically: requests in flight
// finish on the previous policy, and a bundle that fails any step leaves the
// previous policy active.
//
// [Check] makes every check of an activation without serving anything, for
// tools such as `temporal-opa policy check`; [Layer], [DefaultBundle] and
// [InputSchemas] let a test runner compile bundles exactly as activation does;
// [Authorizer.Explain] says which rules produced a decision.
//
// The Authorizer fails closed: an evaluation error, an undefined decision, a
// decision of the wrong shape or an evaluation timeout denies the call with a
// reason and an *EvalError. Decisions are cached per policy generation when they
// can be (the policy uses no non-deterministic built-in such as http.send or
// time.now_ns, and the caller is identified by a verified token digest or by
// claims without extensions).
package policy
