package policy

import (
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorCode says why the policy could not decide a call (an [EvalError]). The
// codes are stable: match on them, not on messages.
type ErrorCode string

// Error codes of an [EvalError].
const (
	CodeEvalError         ErrorCode = "eval_error"         // the policy raised an error
	CodeEvalTimeout       ErrorCode = "eval_timeout"       // the evaluation ran past Options.EvalTimeout or the caller's deadline
	CodeUndefinedDecision ErrorCode = "undefined_decision" // the decision path produced no value
	CodeInvalidDecision   ErrorCode = "invalid_decision"   // the decision is not {"allow": bool, "reason": string} or a bool
	CodeInvalidInput      ErrorCode = "invalid_input"      // the claims could not be turned into an input document
)

// EvalError is returned by [Authorizer.Authorize] with a deny decision when the
// policy could not decide. The call is denied; Code says why.
type EvalError struct {
	Code ErrorCode
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

// Stage is the step of an activation that failed (an [ActivationError]).
type Stage string

// Stages of an [ActivationError].
const (
	StageLoad       Stage = "load"       // a bundle is missing, unnamed or reserved, or its roots conflict
	StageCompile    Stage = "compile"    // the modules do not compile (strict mode, the input schema, rule shapes)
	StageEntrypoint Stage = "entrypoint" // no rule defines the decision path
)

// ActivationError is returned when a policy cannot be activated. The previous
// policy stays active.
type ActivationError struct {
	Stage Stage
	Err   error
}

func (e *ActivationError) Error() string {
	return fmt.Sprintf("policy not activated (%s): %v", e.Stage, e.Err)
}

func (e *ActivationError) Unwrap() error { return e.Err }
