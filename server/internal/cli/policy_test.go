package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParsePolicyArguments(t *testing.T) {
	dir := t.TempDir()
	b := filepath.Join(dir, "my-policy")
	if err := os.Mkdir(b, 0o755); err != nil {
		t.Fatal(err)
	}
	eq := filepath.Join(dir, "a=b")
	if err := os.Mkdir(eq, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want PolicyTest
	}{
		{"flags after the bundle", []string{b, "--threshold", "80", "-v"},
			PolicyTest{Bundles: []Bundle{{Path: b}}, Coverage: true, Threshold: 80, Verbose: true}},
		{"flags around bundles", []string{"-r", "x", b, "-c", "acme=" + b},
			PolicyTest{Bundles: []Bundle{{Path: b}, {Name: "acme", Path: b}}, Run: "x", Coverage: true}},
		{"a path with = is a path", []string{eq}, PolicyTest{Bundles: []Bundle{{Path: eq}}}},
		{"after -- all is a bundle", []string{"-f", "json", "--", b}, PolicyTest{Bundles: []Bundle{{Path: b}}, Format: "json"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePolicyTest(tc.args, testEnv(t))
			if err != nil {
				t.Fatal(err)
			}
			if tc.want.Format == "" {
				tc.want.Format = "pretty"
			}
			got.Timeout = 0
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestPolicyFlagErrors(t *testing.T) {
	dir := t.TempDir()
	check := func(a []string, e Env) error { _, err := ParsePolicyCheck(a, e); return err }
	test := func(a []string, e Env) error { _, err := ParsePolicyTest(a, e); return err }
	export := func(a []string, e Env) error { _, err := ParsePolicyExport(a, e); return err }
	explain := func(a []string, e Env) error { _, err := ParsePolicyExplain(a, e); return err }
	canI := func(a []string, e Env) error { _, err := ParsePolicyCanI(a, e); return err }
	tests := []flagErrorCase{
		{"no bundle", check, nil, "policy check: give at least one BUNDLE: a bundle directory or opa build tarball"},
		{"missing bundle", check, []string{filepath.Join(dir, "nope")}, "policy check: BUNDLE " + filepath.Join(dir, "nope") + ": no such file or directory; give a bundle directory or opa build tarball"},
		{"missing named bundle", check, []string{"acme=" + filepath.Join(dir, "nope")}, "policy check: BUNDLE " + filepath.Join(dir, "nope") + ": no such file or directory; give a bundle directory or opa build tarball"},
		{"missing key", check, []string{"--verification-key", filepath.Join(dir, "k.pem"), dir}, "policy check: --verification-key " + filepath.Join(dir, "k.pem") + ": no such file or directory"},
		{"key is a directory", check, []string{"--verification-key", dir, dir}, "policy check: --verification-key " + dir + ": is a directory; give the PEM file of the public key"},
		{"bad format", check, []string{"--format", "yaml", dir}, `policy check: --format "yaml": must be pretty or json`},
		{"threshold", test, []string{"--threshold", "-1", dir}, "policy test: --threshold -1: must be a percentage between 0 and 100"},
		{"unknown flag", test, []string{"--bench", dir}, "policy test: unknown flag --bench"},
		{"export without dir", export, nil, "policy export: give one DIR to write into, e.g. temporal-opa policy export .temporal-opa"},
		{"explain without api", explain, []string{"--permissions", "default:read"}, "policy explain: --api is required, e.g. --api StartWorkflowExecution"},
		{"explain without caller", explain, []string{"--api", "X"}, "policy explain: give the caller as --token JWT, --permissions default:read and/or --claims '{\"groups\": [...]}' (a token's permissions and other claims), or --permissions none for no token"},
		{"explain stdin twice", explain, []string{"--api", "X", "--token", "-", "--request", "-"}, "policy explain: --request - and --token - both read stdin; give one of them as a file"},
		{"can-i service", canI, []string{"--permissions", "default:read", "--service", "history"}, `policy can-i: --service "history": must be workflow, operator or admin`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.parse(tc.args, testEnv(t))
			var ue *UsageError
			if !errors.As(err, &ue) || ue.Msg != tc.want {
				t.Fatalf("error %v, want a *UsageError %q", err, tc.want)
			}
		})
	}
}

func TestPolicyHelp(t *testing.T) {
	var help bytes.Buffer
	_, err := ParsePolicyTest([]string{"--help"}, Env{Help: &help})
	if !errors.Is(err, ErrHelp) {
		t.Fatalf("err = %v, want ErrHelp", err)
	}
	for _, want := range []string{"temporal-opa policy test [flags] BUNDLE...", "--threshold PERCENT", "  -v\n", "Exit status: 0 all tests pass"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, help.String())
		}
	}
	_, _, err = Command([]string{"policy"}, Env{})
	if err == nil || !strings.Contains(err.Error(), "policy needs a subcommand: 'policy test', 'policy check', 'policy export', 'policy explain' or 'policy can-i'") {
		t.Errorf("policy alone: %v", err)
	}
}
