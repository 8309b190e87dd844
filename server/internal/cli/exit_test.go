package cli

import (
	"errors"
	"fmt"
	"testing"
)

// reported is an ExitStatus whose command printed its result.
type reported struct{ code int }

func (r reported) Error() string  { return fmt.Sprintf("exit status %d", r.code) }
func (r reported) ExitCode() int  { return r.code }
func (r reported) Reported() bool { return true }

func TestExit(t *testing.T) {
	usage := &UsageError{Command: "eval", Msg: "eval: --api is required"}
	for _, tc := range []struct {
		name string
		err  error
		code int
		msg  string
	}{
		{"success", nil, 0, ""},
		{"help", ErrHelp, 0, ""},
		{"wrapped help", fmt.Errorf("parse: %w", ErrHelp), 0, ""},
		{"usage", usage, 2, "temporal-opa: eval: --api is required (see 'temporal-opa eval --help')"},
		{"wrapped usage", fmt.Errorf("x: %w", usage), 2, "temporal-opa: x: eval: --api is required (see 'temporal-opa eval --help')"},
		{"reported", reported{2}, 2, ""},
		{"wrapped reported", fmt.Errorf("policy test: %w", reported{1}), 1, ""},
		{"other", errors.New("bundle b: line one\n  line two"), 1, "temporal-opa: bundle b: line one; line two"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := Exit(tc.err)
			if code != tc.code || msg != tc.msg {
				t.Errorf("Exit(%v) = %d, %q; want %d, %q", tc.err, code, msg, tc.code, tc.msg)
			}
		})
	}
}
