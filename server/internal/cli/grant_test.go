package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func grantRequest(a []string, e Env) error { _, err := ParseGrantRequest(a, e, false); return err }
func grantBreakGlass(a []string, e Env) error {
	_, err := ParseGrantRequest(a, e, true)
	return err
}
func grantApprove(a []string, e Env) error { _, err := ParseGrantUpdate("approve", a, e); return err }
func grantDeny(a []string, e Env) error    { _, err := ParseGrantUpdate("deny", a, e); return err }
func grantRevoke(a []string, e Env) error  { _, err := ParseGrantUpdate("revoke", a, e); return err }
func grantList(a []string, e Env) error    { _, err := ParseGrantList(a, e); return err }

// req is a valid grant request command line with extra flags.
func req(extra ...string) []string {
	return append([]string{"--namespace", "payments", "--role", "write", "--duration", "2h", "--reason", "INC-1"}, extra...)
}

func TestParseGrantErrors(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "token")
	if err := os.WriteFile(keyFile, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []flagErrorCase{
		// grant request: what is asked for.
		{"request: no namespace", grantRequest, []string{"--role", "read", "--duration", "1h", "--reason", "x"},
			"grant request: --namespace is required: the namespace the access is for, e.g. --namespace payments"},
		{"request: no role or api", grantRequest, []string{"--namespace", "p", "--duration", "1h", "--reason", "x"},
			"grant request: give --role (worker, read, write or admin) or --api StartWorkflowExecution,...: what the grant allows"},
		{"request: role and api", grantRequest, req("--api", "StartWorkflowExecution"), "grant request: give --role or --api, not both"},
		{"request: empty api entry", grantRequest, req("--api", "A,,B"), `grant request: --api "A,,B": empty entry`},
		{"request: no duration", grantRequest, []string{"--namespace", "p", "--role", "read", "--reason", "x"},
			"grant request: --duration is required: how long the grant lasts, e.g. --duration 2h"},
		{"request: negative duration", grantRequest, req("--duration", "-1h"), "grant request: --duration -1h0m0s: must be positive, e.g. 2h or 30m"},
		{"request: not a duration", grantRequest, req("--duration", "2 hours"), `grant request: --duration "2 hours": not a duration; give one such as 2h, 30m or 1h30m`},
		{"request: no reason", grantRequest, []string{"--namespace", "p", "--role", "read", "--duration", "1h"},
			"grant request: --reason is required: the ticket or incident the access is for, e.g. --reason INC-1234"},
		{"request: blank reason", grantRequest, req("--reason", "  "),
			"grant request: --reason is required: the ticket or incident the access is for, e.g. --reason INC-1234"},
		{"request: subject and claim", grantRequest, req("--subject", "bob", "--claim", "groups=sre"),
			"grant request: give --subject or --claim, not both: one caller, or every caller with a claim"},
		{"request: issuer alone", grantRequest, req("--issuer", "https://idp"),
			"grant request: --issuer qualifies --subject or --claim; without them the grant is yours, with your token's issuer"},
		{"request: claim without =", grantRequest, req("--claim", "groups"), `grant request: --claim "groups": want NAME=VALUE, e.g. --claim groups=sre`},
		{"request: claim without name", grantRequest, req("--claim", "=sre"), `grant request: --claim "=sre": want NAME=VALUE, e.g. --claim groups=sre`},
		{"request: claim without value", grantRequest, req("--claim", "groups="), `grant request: --claim "groups=": want NAME=VALUE, e.g. --claim groups=sre`},
		{"request: bad not-before", grantRequest, req("--not-before", "tomorrow"),
			`grant request: --not-before "tomorrow": not an RFC 3339 time; give one such as 2026-12-06T18:00:00Z`},
		{"request: positional argument", grantRequest, req("payments"), `grant request: unexpected argument "payments" (all settings are --flags)`},
		{"request: unknown flag", grantRequest, req("--ttl", "1h"), "grant request: unknown flag --ttl"},
		{"break-glass: named as itself", grantBreakGlass, []string{"--namespace", "p", "--role", "admin", "--duration", "30m"},
			"grant break-glass: --reason is required: the ticket or incident the access is for, e.g. --reason INC-1234"},

		// The connection flags, the same for every grant command.
		{"api-key and api-key-file", grantList, []string{"--api-key", "t", "--api-key-file", keyFile}, "grant list: give --api-key or --api-key-file, not both"},
		{"empty api-key", grantList, []string{"--api-key", " "}, "grant list: --api-key is empty: give your token, or leave the flag out to call without one"},
		{"missing api-key-file", grantList, []string{"--api-key-file", filepath.Join(dir, "none")}, "grant list: --api-key-file " + filepath.Join(dir, "none") + ": no such file or directory"},
		{"bad address", grantList, []string{"--address", "localhost"}, `grant list: --address "localhost": address localhost: missing port in address; want HOST:PORT such as 127.0.0.1:7233`},
		{"missing CA", grantList, []string{"--tls-ca-path", filepath.Join(dir, "ca.pem")}, "grant list: --tls-ca-path " + filepath.Join(dir, "ca.pem") + ": no such file or directory"},
		{"cert without key", grantList, []string{"--tls-cert-path", keyFile},
			"grant list: --tls-cert-path and --tls-key-path go together: give both (a client certificate and its key) or neither"},
		{"tls=false with tls flags", grantList, []string{"--tls=false", "--tls-server-name", "x"}, "grant list: --tls=false and --tls-* flags contradict each other: drop one"},
		{"bad output", grantList, []string{"-o", "yaml"}, `grant list: --output "yaml": must be text or json`},
		{"empty grants namespace", grantList, []string{"--grants-namespace", ""},
			"grant list: --grants-namespace is empty: give the namespace of the grant service, or leave the flag out for temporal-opa-grants"},
		{"zero timeout", grantList, []string{"--timeout", "0s"}, "grant list: --timeout 0s: must be positive, e.g. 1h or 30m"},

		// approve, deny, revoke.
		{"approve: no id", grantApprove, nil, "grant approve: give the ID of the grant, as 'grant list' shows it, e.g. temporal-opa grant approve g-k3x9q2ma"},
		{"approve: two ids", grantApprove, []string{"g-1", "g-2"}, "grant approve: give one grant ID, not 2 (g-1 g-2)"},
		{"deny: no reason", grantDeny, []string{"g-1"}, "grant deny: --reason is required: say why you deny the grant"},
		{"revoke: no reason", grantRevoke, []string{"g-1", "--reason", ""}, "grant revoke: --reason is required: say why you revoke the grant"},
		{"revoke: unknown flag", grantRevoke, []string{"g-1", "--force"}, "grant revoke: unknown flag --force"},

		// list.
		{"list: bad state", grantList, []string{"--state", "pending"}, `grant list: --state "pending": must be one of requested, active, ended, all`},
		{"list: positional argument", grantList, []string{"g-1"}, `grant list: unexpected argument "g-1" (all settings are --flags)`},
	}
	checkFlagErrors(t, tests)
	if code, _ := Exit(grantList([]string{"--state", "x"}, testEnv(t))); code != 2 {
		t.Errorf("exit status %d for a bad command line, want 2", code)
	}
}

func TestParseGrantRequest(t *testing.T) {
	o, err := ParseGrantRequest([]string{"--namespace", "payments", "--api", "StartWorkflowExecution,SignalWorkflowExecution", "--api", "TerminateWorkflowExecution",
		"--duration", "90m", "--reason", "INC-1", "--claim", "realm_access.roles=sre", "--issuer", "https://idp", "--not-before", "2026-12-06T18:00:00+01:00",
		"--id", "g-mine", "-o", "json", "--tls-ca-path", os.DevNull}, testEnv(t), false)
	if err != nil {
		t.Fatal(err)
	}
	want := GrantRequest{
		GrantConn: GrantConn{Address: "127.0.0.1:7233", TLS: true, TLSCAPath: os.DevNull, GrantsNamespace: "temporal-opa-grants", Output: "json", Timeout: 30 * time.Second},
		ID:        "g-mine", Namespace: "payments", APIs: []string{"StartWorkflowExecution", "SignalWorkflowExecution", "TerminateWorkflowExecution"},
		Duration: 90 * time.Minute, Reason: "INC-1", Claim: "realm_access.roles", ClaimValue: "sre", Issuer: "https://idp",
		NotBefore: time.Date(2026, 12, 6, 17, 0, 0, 0, time.UTC),
	}
	if !o.NotBefore.Equal(want.NotBefore) {
		t.Errorf("not before %s, want %s", o.NotBefore, want.NotBefore)
	}
	o.NotBefore = want.NotBefore
	if !reflect.DeepEqual(o, want) {
		t.Errorf("got  %+v\nwant %+v", o, want)
	}
	bg, err := ParseGrantRequest(req(), testEnv(t), true)
	if err != nil || !bg.BreakGlass || bg.TLS || bg.Subject != "" {
		t.Errorf("break-glass: %+v, %v", bg, err)
	}
}

func TestGrantConnEnvironment(t *testing.T) {
	env := func(vars map[string]string) Env {
		return Env{Getenv: func(k string) string { return vars[k] }}
	}
	vars := map[string]string{EnvTemporalAddress: "temporal.example:7233", EnvTemporalAPIKey: " env-token\n"}
	tests := []struct {
		name     string
		args     []string
		wantAddr string
		wantKey  string
		wantFile string
	}{
		{"from the environment", nil, "temporal.example:7233", "env-token", ""},
		{"flags win", []string{"--address", "127.0.0.1:1", "--api-key", "flag-token"}, "127.0.0.1:1", "flag-token", ""},
		{"a key file replaces the variable", []string{"--api-key-file", os.DevNull}, "temporal.example:7233", "", os.DevNull},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseGrantList(tc.args, env(vars))
			if err != nil {
				t.Fatal(err)
			}
			if o.Address != tc.wantAddr || o.APIKey != tc.wantKey || o.APIKeyFile != tc.wantFile {
				t.Errorf("address %q key %q file %q; want %q %q %q", o.Address, o.APIKey, o.APIKeyFile, tc.wantAddr, tc.wantKey, tc.wantFile)
			}
		})
	}
}

func TestGrantHelpHidesTheToken(t *testing.T) {
	var help bytes.Buffer
	e := Env{Getenv: func(k string) string {
		if k == EnvTemporalAPIKey {
			return "secret-token"
		}
		return ""
	}, Help: &help}
	for _, name := range []string{"request", "break-glass", "approve", "deny", "revoke", "list"} {
		help.Reset()
		var err error
		switch name {
		case "request", "break-glass":
			_, err = ParseGrantRequest([]string{"--help"}, e, name == "break-glass")
		case "list":
			_, err = ParseGrantList([]string{"--help"}, e)
		default:
			_, err = ParseGrantUpdate(name, []string{"--help"}, e)
		}
		if !errors.Is(err, ErrHelp) {
			t.Fatalf("%s --help: %v", name, err)
		}
		if strings.Contains(help.String(), "secret-token") || !strings.Contains(help.String(), "--api-key TOKEN") ||
			!strings.Contains(help.String(), "3 refused by the server's policy") {
			t.Errorf("%s --help:\n%s", name, help.String())
		}
	}
}

func TestGrantCommands(t *testing.T) {
	for _, sub := range []string{"request", "approve", "deny", "revoke", "list", "break-glass"} {
		name, rest, err := Command([]string{"grant", sub, "g-1"}, Env{})
		if err != nil || name != "grant "+sub || len(rest) != 1 {
			t.Errorf("grant %s: %q %q %v", sub, name, rest, err)
		}
	}
	_, _, err := Command([]string{"grant"}, Env{})
	if err == nil || !strings.Contains(err.Error(), "grant needs a subcommand: 'grant request', 'grant approve', 'grant deny', 'grant revoke', 'grant list' or 'grant break-glass'") {
		t.Errorf("grant alone: %v", err)
	}
	if !strings.Contains(Usage(), "  grant break-glass take time-bound access at once") {
		t.Errorf("usage:\n%s", Usage())
	}
}
