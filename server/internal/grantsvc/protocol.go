package grantsvc

import (
	"time"

	"github.com/temporal-opa/temporal-opa/policy/grants"
)

// The wire protocol between `temporal-opa grant` (the client), the frontend
// (which checks and stamps every grant operation) and the grant workflow.
// Every grant is one workflow execution in the grants namespace; its state
// is the workflow's memo, which every frontend follows through visibility.
const (
	// DefaultNamespace is the namespace that holds the grants (grants.namespace).
	DefaultNamespace = "temporal-opa-grants"
	// WorkflowType is the grant workflow's type.
	WorkflowType = "temporalopa.Grant"
	// TaskQueue is the task queue of the grant workflow's worker.
	TaskQueue = "temporal-opa-grants"
	// WorkflowIDPrefix starts every grant workflow's id: the workflow of grant
	// g-1 is grant-g-1.
	WorkflowIDPrefix = "grant-"
	// MemoKey is the memo field holding the grant's current state (a
	// grants.Grant as JSON).
	MemoKey = "grant"

	// Updates of the grant workflow: each takes an UpdateInput and returns the
	// grant after the change.
	UpdateApprove = "approve"
	UpdateDeny    = "deny"
	UpdateRevoke  = "revoke"
)

// RequestInput is the grant workflow's input, sent by the client with
// StartWorkflowExecution for a request (Grant.BreakGlass false) or a break
// glass (Grant.BreakGlass true). The frontend rebuilds it before the workflow
// sees it: an empty Grant.Subject (no subject, no claim) is the verified
// caller itself ({Subject: caller's subject, Issuer: caller's issuer}), filled
// in before the checks (grants.Grant.Validate); it sets the id from the
// workflow id, the times from Duration and its own clock, the state, and
// RequestedBy/RequestedAt from the verified caller; whatever the client put in
// those fields is overwritten. The memo and every payload are the SDK's
// default JSON encoding.
type RequestInput struct {
	Grant grants.Grant `json:"grant"`
	// Duration is how long the grant lasts from its start (Grant.NotBefore, or
	// the request's time when that is zero), as time.ParseDuration reads it.
	Duration string `json:"duration"`
}

// UpdateInput is the argument of the approve, deny and revoke updates. The
// frontend sets By to the verified caller (the client's value is
// overwritten) and At to its clock.
type UpdateInput struct {
	By     grants.Identity `json:"by"`
	At     time.Time       `json:"at"`
	Reason string          `json:"reason,omitempty"`
}

// WorkflowID is the workflow id of the grant with id.
func WorkflowID(id string) string { return WorkflowIDPrefix + id }
