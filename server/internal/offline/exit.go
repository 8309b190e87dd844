package offline

import "github.com/temporal-opa/temporal-opa/server/internal/cli"

// The errors of the offline commands are cli.ExitStatus values: main ends the
// process as each says, knowing none of them.
var (
	_ cli.ExitStatus = Denied{}
	_ cli.ExitStatus = Changed{}
	_ cli.ExitStatus = ExitError{}
	_ cli.ExitStatus = (*InputError)(nil)
)

// ExitCode is 1: the call was denied.
func (Denied) ExitCode() int { return 1 }

// Reported is true: eval printed the decision.
func (Denied) Reported() bool { return true }

// ExitCode is 1: a replayed decision changed.
func (Changed) ExitCode() int { return 1 }

// Reported is true: replay printed the report.
func (Changed) Reported() bool { return true }

// ExitCode is the command's own status.
func (e ExitError) ExitCode() int { return e.Code }

// Reported is true: the command printed why.
func (e ExitError) Reported() bool { return true }

// ExitCode is 2: the input cannot be used.
func (e *InputError) ExitCode() int { return 2 }

// Reported is false: the message says what is wrong with the input.
func (e *InputError) Reported() bool { return false }
