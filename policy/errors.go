package policy

import (
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error codes of an [EvalError]. They are stable: match on them, not on messages.
const (
	CodeEvalError         = "eval_error"         // the policy raised an error
	CodeEvalTimeout       = "eval_timeout"       // the evaluation ran past Options.EvalTimeout or the caller's deadline
	CodeUndefinedDecision = "undefined_decision" // the decision path produced no value
	CodeInvalidDecision   = "invalid_decision"   // the decision is not {"allow": bool, "reason": string} or a bool
	CodeInvalidInput      = "invalid_input"      // the claims could not be turned into an input document
)

// EvalError is returned by [Authorizer.Authorize] with a deny decision when the
// policy could not decide. The call is denied; Code says why.
type EvalError struct {
	Code string
	Err  error
}

func (e *EvalError) Error() string {
	return fmt.Sprintf("policy %s: %v", e.Code, e.Err)
}

func (e *EvalError) Unwrap() error { return e.Err }

// GRPCStatus makes the error a PermissionDenied status where Temporal exposes
// authorizer errors to callers (dynamic config frontend.exposeAuthorizerErrors).
func (e *EvalError) GRPCStatus() *status.Status {
	return status.New(codes.PermissionDenied, "Request unauthorized: "+e.Error())
}

// ActivationError is returned when a policy cannot be activated. The previous
// policy stays active.
type ActivationError struct {
	Stage string // "load", "compile", "prepare", "entrypoint"
	Err   error
}

func (e *ActivationError) Error() string {
	return fmt.Sprintf("policy not activated (%s): %v", e.Stage, e.Err)
}

func (e *ActivationError) Unwrap() error { return e.Err }
