package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A TEMPORAL_OPA_* variable that is set but unknown stops every command that
// reads such variables, naming it; known ones and those of the repository's
// tests do not.
func TestUnknownEnvironmentVariables(t *testing.T) {
	config := filepath.Join(t.TempDir(), "temporal.yaml")
	if err := os.WriteFile(config, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	parsers := map[string]func(Env) error{
		"start-dev":  func(e Env) error { _, err := ParseStartDev(nil, e); return err },
		"start":      func(e Env) error { _, err := ParseStart([]string{"--config-file", config}, e); return err },
		"token":      func(e Env) error { _, err := ParseToken([]string{"--permissions", "default:read"}, e); return err },
		"keys gen":   func(e Env) error { _, err := ParseKeysGen(nil, e); return err },
		"keys serve": func(e Env) error { _, err := ParseKeysServe(nil, e); return err },
		"eval": func(e Env) error {
			_, err := ParseEval([]string{"--api", "GetSystemInfo", "--permissions", "none"}, e)
			return err
		},
		"policy explain": func(e Env) error {
			_, err := ParsePolicyExplain([]string{"--api", "GetSystemInfo", "--permissions", "none"}, e)
			return err
		},
		"policy can-i": func(e Env) error { _, err := ParsePolicyCanI([]string{"--permissions", "none"}, e); return err },
	}
	tests := []struct {
		name string
		vars []string
		want []string // substrings of the error; nil: no error
	}{
		{"none set", []string{"HOME=/home/u", "PATH=/bin"}, nil},
		{"known ones", []string{"TEMPORAL_OPA_STATE_DIR=/s", "TEMPORAL_OPA_ADMIN_TOKEN=eyJ", "TEMPORAL_SERVICES=frontend"}, nil},
		{"the tests' own", []string{"TEMPORAL_OPA_BIN=/x/temporal-opa", "TEMPORAL_OPA_BENCH_DURATION=20s", "TEMPORAL_OPA_E2E_LOG=debug", "TEMPORAL_OPA_BROWSER_KEEP=1"}, nil},
		{"typo of the authz file", []string{"TEMPORAL_OPA_AUTHZ_FLIE=/etc/temporal-opa/authz.yaml"}, []string{
			"environment variable TEMPORAL_OPA_AUTHZ_FLIE is set but not known to temporal-opa (did you mean TEMPORAL_OPA_AUTHZ_FILE?): unset or rename it",
			"the variables it knows are TEMPORAL_OPA_AUTHZ_FILE (--authz of start), TEMPORAL_OPA_STATE_DIR (the default --state-dir)",
		}},
		{"its value is not shown", []string{"TEMPORAL_OPA_TOKEN=secret-token"}, []string{"environment variable TEMPORAL_OPA_TOKEN is set"}},
		{"two unknown, sorted", []string{"TEMPORAL_OPA_Z=1", "TEMPORAL_OPA_STATEDIR=/s"}, []string{
			"environment variables TEMPORAL_OPA_STATEDIR, TEMPORAL_OPA_Z are set", "(did you mean TEMPORAL_OPA_STATE_DIR?)"}},
		{"a test prefix alone is not a test variable", []string{"TEMPORAL_OPA_BINARY=/x"}, []string{"TEMPORAL_OPA_BINARY is set"}},
		{"other prefixes are not ours", []string{"TEMPORAL_OPAQUE=1", "XTEMPORAL_OPA_X=1"}, nil},
	}
	for _, tc := range tests {
		for cmd, parse := range parsers {
			t.Run(tc.name+"/"+cmd, func(t *testing.T) {
				env := testEnv(t)
				env.Environ = func() []string { return tc.vars }
				err := parse(env)
				if tc.want == nil {
					if err != nil {
						t.Fatalf("error %v, want none", err)
					}
					return
				}
				if err == nil {
					t.Fatal("no error, want one naming the variable")
				}
				var ue *UsageError
				if errors.As(err, &ue) {
					t.Errorf("error %T is a usage error (exit status 2); want exit status 1", err)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q, want it to contain %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error shows a variable's value: %q", err)
				}
			})
		}
	}
	// The commands that read no TEMPORAL_OPA_* variable do not look.
	env := testEnv(t)
	env.Environ = func() []string { return []string{"TEMPORAL_OPA_AUTHZ_FLIE=x"} }
	if _, err := ParsePolicyExport([]string{t.TempDir()}, env); err != nil {
		t.Errorf("policy export: %v, want no check", err)
	}
}
