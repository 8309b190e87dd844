package cli

import "errors"

// An ExitStatus is an error that chooses how the process ends: its exit
// status, and whether the command has already told the user everything (a
// decision, a report, test results), in which case nothing more is printed.
// Commands return one, wrapped or not, instead of main knowing their error
// types.
type ExitStatus interface {
	error
	ExitCode() int
	Reported() bool
}

// ExitCode is 2: the command line was wrong.
func (e *UsageError) ExitCode() int { return 2 }

// Reported is false: the message says what to fix.
func (e *UsageError) Reported() bool { return false }

// Exit is how the process ends once a command returned err: the exit status,
// and the line to print on stderr ("" for none). nil and ErrHelp exit with 0;
// an ExitStatus in err's chain sets the status and says whether to print; any
// other error exits with 1. A printed error is one line (OneLine), after the
// program's name.
func Exit(err error) (code int, msg string) {
	if err == nil || errors.Is(err, ErrHelp) {
		return 0, ""
	}
	code = 1
	var st ExitStatus
	if errors.As(err, &st) {
		if st.Reported() {
			return st.ExitCode(), ""
		}
		code = st.ExitCode()
	}
	return code, Program + ": " + OneLine(err.Error())
}
