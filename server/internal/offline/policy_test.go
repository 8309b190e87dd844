package offline

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io/fs"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/tester"
	"google.golang.org/grpc"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/source"
	"github.com/temporal-opa/temporal-opa/server/internal/cli"
	"github.com/temporal-opa/temporal-opa/server/internal/devkey"
	"github.com/temporal-opa/temporal-opa/server/internal/testutil"
)

// runCLI runs "temporal-opa args..." in-process, as main runs it: it returns
// what was written on stdout and stderr, and the exit status main would give.
func runCLI(stdin string, args ...string) (stdout, stderr string, status int) {
	var out, errOut bytes.Buffer
	env := cli.Env{Getenv: func(string) string { return "" }, Help: &out}
	name, rest, err := cli.Command(args, env)
	if err == nil {
		err = Policy(context.Background(), name, rest, env, strings.NewReader(stdin), &out, &errOut)
	}
	status = exitStatus(err, &errOut)
	return out.String(), errOut.String(), status
}

// exitStatus is main's mapping of a command's error to its exit status (and
// message on stderr).
func exitStatus(err error, stderr *bytes.Buffer) int {
	code, msg := cli.Exit(err)
	if msg != "" {
		stderr.WriteString(msg + "\n")
	}
	return code
}

// exampleBundles are the bundles of the repository's bundles/ directory.
func exampleBundles(t testing.TB) []string {
	t.Helper()
	dirs, err := filepath.Glob("../../../bundles/*/.manifest")
	if err != nil || len(dirs) < 4 {
		t.Fatalf("example bundles: %v %v", dirs, err)
	}
	for i, d := range dirs {
		dirs[i] = filepath.Dir(d)
	}
	return dirs
}

// copyBundle copies the bundle directory src into a new temporary directory,
// alone, and returns its path there.
func copyBundle(t testing.TB, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

const customManifest = `{"roots": ["temporal/custom"], "revision": "r1"}`

// custom is a bundle of custom rules: a manifest rooted at temporal/custom and
// the given rules file.
func custom(rules string) map[string]string {
	return map[string]string{".manifest": customManifest, "temporal/custom/rules.rego": rules}
}

// Every example bundle, copied alone into a temporary directory (no checkout
// of this repository around it), passes check and test, explains a decision
// and lists the caller's APIs.
func TestPolicyCommandsOnExampleBundles(t *testing.T) {
	for _, src := range exampleBundles(t) {
		t.Run(filepath.Base(src), func(t *testing.T) {
			b := copyBundle(t, src)
			t.Chdir(filepath.Dir(b))
			name := filepath.Base(b)

			out, errOut, status := runCLI("", "policy", "check", name)
			if status != 0 || !strings.Contains(out, "ok: the server activates bundle policy from "+name) {
				t.Errorf("policy check: status %d\nstdout: %s\nstderr: %s", status, out, errOut)
			}
			out, errOut, status = runCLI("", "policy", "test", "--fail-on-empty", name)
			if status != 0 || !strings.HasPrefix(out, "PASS: ") {
				t.Errorf("policy test: status %d\nstdout: %s\nstderr: %s", status, out, errOut)
			}
			out, errOut, status = runCLI("", "policy", "test", "--threshold", "90", name)
			var report struct {
				Files    map[string]any `json:"files"`
				Coverage float64        `json:"coverage"`
			}
			if status != 0 || json.Unmarshal([]byte(out), &report) != nil || report.Coverage < 90 {
				t.Errorf("policy test --threshold 90: status %d\nstdout: %.300s\nstderr: %s", status, out, errOut)
			}
			for file := range report.Files {
				if !strings.HasPrefix(file, name+"/temporal/custom/") {
					t.Errorf("coverage reports %s, outside the bundle", file)
				}
			}
			t.Logf("coverage of %s: %.1f%% over %d files", name, report.Coverage, len(report.Files))

			out, errOut, status = runCLI("", "policy", "can-i", "--permissions", "default:write", "--format", "json", name)
			var services []CanIService
			if status != 0 || json.Unmarshal([]byte(out), &services) != nil || len(services) != 3 {
				t.Errorf("policy can-i: status %d\nstdout: %.300s\nstderr: %s", status, out, errOut)
			}
			out, errOut, status = runCLI("", "policy", "explain", "--permissions", "default:write", "--api", "StartWorkflowExecution", name)
			if status > 1 || !strings.Contains(out, "data.temporal.authz.decision") || !strings.Contains(out, "Trace (") {
				t.Errorf("policy explain: status %d\nstdout: %.500s\nstderr: %s", status, out, errOut)
			}
		})
	}
}

// serverError is the error the server's file source reports for the bundle at
// dir, activated under name: the code path of policy.bundle and start-dev
// --policy.
func serverError(t *testing.T, opts policy.Options, name, dir string) string {
	t.Helper()
	az, err := policy.NewAuthorizer(opts, nil)
	if err != nil {
		return err.Error() // start-up stops here
	}
	f, err := source.NewFile(context.Background(), az, name, dir, source.Options{})
	if err == nil {
		_ = f.Close()
		return ""
	}
	return err.Error()
}

// Each check the server makes when it activates a bundle fails once, and
// policy check reports it with exit status 1 and the server's own message.
func TestPolicyCheckRejects(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		args  []string // before the bundle
		named string   // NAME= given to the bundle
		want  string   // in the message
	}{
		{name: "parse error", files: custom("package temporal.custom\n\ndeny contains \"x\" if {\n"),
			want: "/temporal/custom/rules.rego:4: rego_parse_error: unexpected eof token"},
		{name: "compile error", files: custom("package temporal.custom\n\ndeny contains \"x\" if no_such_function(1)\n"),
			want: "/temporal/custom/rules.rego:3: rego_type_error: undefined function no_such_function"},
		{name: "strict mode", files: custom("package temporal.custom\n\ndeny contains \"x\" if {\n\tunused := 1\n\tinput.target.method == \"StartWorkflowExecution\"\n}\n"),
			want: "/temporal/custom/rules.rego:4: rego_compile_error: assigned var unused unused"},
		{name: "input schema", files: custom("package temporal.custom\n\ndeny contains \"x\" if input.claim.subject == \"mallory\"\n"),
			want: "/temporal/custom/rules.rego:3: rego_type_error: undefined ref: input.claim.subject"},
		{name: "deny shape", files: custom("package temporal.custom\n\ndeny := \"no\"\n"),
			want: "policy not activated (compile): bundle policy: /temporal/custom/rules.rego:3: data.temporal.custom.deny must be a set of reason strings; write it as: deny contains \"why\" if { ... }"},
		{name: "allow shape", files: custom("package temporal.custom\n\nallow := \"yes\"\n"),
			want: "bundle policy: /temporal/custom/rules.rego:3: data.temporal.custom.allow must be a boolean; write it as: allow if { ... }"},
		{name: "package outside roots", files: map[string]string{".manifest": customManifest, "temporal/other/rules.rego": "package temporal.other\n\nx := 1\n"},
			want: "manifest roots [temporal/custom] do not permit 'package temporal.other' in module '/temporal/other/rules.rego'"},
		{name: "roots cover the default", files: map[string]string{".manifest": `{"roots": ["temporal"]}`, "temporal/custom/rules.rego": "package temporal.custom\n\ndeny contains \"x\" if false\n"},
			want: "policy not activated (entrypoint): no rule defines the decision path data.temporal.authz.decision (a bundle's roots cover the default policy's [temporal/authz temporal/grants], so it replaces it: give a bundle of custom rules the roots [\"temporal/custom/<name>\"] (or [\"temporal/custom\"]) in its .manifest)"},
		{name: "no manifest", files: map[string]string{"temporal/custom/rules.rego": "package temporal.custom\n\ndeny contains \"x\" if false\n"},
			want: "no rule defines the decision path data.temporal.authz.decision (a bundle's roots cover the default policy's"},
		{name: "reserved name", files: custom("package temporal.custom\n"), named: "temporal-opa/default",
			want: "policy not activated (load): bundle name \"temporal-opa/default\" is reserved for the embedded default policy"},
		{name: "decision path", files: custom("package temporal.custom\n"), args: []string{"--decision-path", "data.acme.decision"},
			want: "policy not activated (entrypoint): no rule defines the decision path data.acme.decision"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := testutil.WriteFiles(t, tc.files)
			arg := dir
			name := "policy"
			if tc.named != "" {
				arg, name = tc.named+"="+dir, tc.named
			}
			out, errOut, status := runCLI("", append(append([]string{"policy", "check"}, tc.args...), arg)...)
			if status != 1 || out != "" || !strings.Contains(errOut, tc.want) {
				t.Fatalf("status %d, stdout %q\nstderr: %s\nwant status 1 and a message containing %q", status, out, errOut, tc.want)
			}
			var opts policy.Options
			if len(tc.args) == 2 {
				opts.DecisionPath = tc.args[1]
			}
			if srv := serverError(t, opts, name, dir); strings.TrimSpace(errOut) != srv && !(tc.name == "decision path" && strings.HasSuffix(strings.TrimSpace(errOut), srv)) {
				t.Errorf("policy check says\n%s\nthe server says\n%s", errOut, srv)
			}

			out, _, status = runCLI("", append(append([]string{"policy", "check", "--format", "json"}, tc.args...), arg)...)
			var res CheckResult
			if err := json.Unmarshal([]byte(out), &res); err != nil || status != 1 || res.OK || len(res.Errors) == 0 || res.Errors[0].Stage == "" {
				t.Errorf("--format json: status %d, %v\n%s", status, err, out)
			}
		})
	}
}

// Compile errors come one by one in --format json, with OPA's code and the
// file, row and column, for CI annotations.
func TestPolicyCheckJSONLocations(t *testing.T) {
	dir := testutil.WriteFiles(t, custom("package temporal.custom\n\ndeny contains \"x\" if input.claim.subject == \"a\"\n\ndeny contains \"y\" if input.target.methd == \"b\"\n"))
	out, _, status := runCLI("", "policy", "check", "-f", "json", dir)
	var res CheckResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || status != 1 {
		t.Fatalf("status %d, %v\n%s", status, err, out)
	}
	var got []string
	for _, e := range res.Errors {
		if e.Location == nil || e.Stage != "compile" || e.Code != "rego_type_error" {
			t.Errorf("error %+v lacks stage, code or location", e)
			continue
		}
		got = append(got, e.Location.String())
	}
	if strings.Join(got, " ") != "/temporal/custom/rules.rego:3 /temporal/custom/rules.rego:5" {
		t.Errorf("locations %v, want rules.rego:3 and :5", got)
	}
}

// Two bundles are activated together, named as the server names them (an
// unnamed one as policy.bundle, "policy"; NAME=PATH by NAME), and their roots
// must not overlap.
func TestPolicyCheckSeveralBundles(t *testing.T) {
	rules := testutil.WriteFiles(t, map[string]string{
		".manifest":                  `{"roots": ["temporal/custom"], "metadata": {"name": "rules"}}`,
		"temporal/custom/rules.rego": "package temporal.custom\n\ndeny contains \"frozen\" if input.target.namespace in data.acme.frozen\n",
	})
	data := testutil.WriteFiles(t, map[string]string{
		".manifest":             `{"roots": ["acme/frozen"], "revision": "d7"}`,
		"acme/frozen/data.json": `["payments"]`,
	})
	out, errOut, status := runCLI("", "policy", "check", rules, "frozen="+data)
	if status != 0 || !strings.Contains(out, "bundle policy from "+rules+"; bundle frozen from "+data+` (revision "d7")`) {
		t.Errorf("status %d\nstdout: %s\nstderr: %s", status, out, errOut)
	}
	_, errOut, status = runCLI("", "policy", "check", rules, rules)
	if status != 1 || !strings.Contains(errOut, "is given twice") {
		t.Errorf("same bundle twice: status %d, stderr %s", status, errOut)
	}
	_, errOut, status = runCLI("", "policy", "check", "a="+rules, "b="+rules)
	if status != 1 || !strings.Contains(errOut, "overlapping roots") {
		t.Errorf("overlapping roots: status %d, stderr %s", status, errOut)
	}
}

// A bundle whose roots cover the default policy replaces it, and decides at
// its own decision path.
func TestPolicyCheckReplacementPolicy(t *testing.T) {
	dir := testutil.WriteFiles(t, map[string]string{
		".manifest":             `{"roots": ["acme"]}`,
		"acme/authz/authz.rego": "package acme.authz\n\ndecision := {\"allow\": input.claims != null, \"reason\": \"acme\"}\n",
	})
	out, errOut, status := runCLI("", "policy", "check", "--decision-path", "data.acme.authz.decision", dir)
	if status != 0 || !strings.Contains(out, "ok: the server activates bundle policy from "+dir+", layered on the embedded default policy, decision data.acme.authz.decision") {
		t.Errorf("status %d\nstdout: %s\nstderr: %s", status, out, errOut)
	}
}

// signedTarball writes an `opa build`-format tarball of files, signed with
// priv under keyID unless priv is empty, and returns its path.
func signedTarball(t *testing.T, files map[string]string, priv, keyID string) string {
	t.Helper()
	var m bundle.Manifest
	if err := json.Unmarshal([]byte(files[".manifest"]), &m); err != nil {
		t.Fatal(err)
	}
	b := bundle.Bundle{Manifest: m, Data: map[string]any{}}
	for name, content := range files {
		if strings.HasSuffix(name, ".rego") {
			b.Modules = append(b.Modules, bundle.ModuleFile{URL: "/" + name, Path: "/" + name, Raw: []byte(content)})
		}
	}
	if priv != "" {
		if err := b.GenerateSignature(bundle.NewSigningConfig(priv, "ES256", ""), keyID, false); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).Write(b); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bundle.tar.gz")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// --verification-key verifies signed bundles as the server verifies a bundle
// with a signing configuration.
func TestPolicyCheckSignatures(t *testing.T) {
	priv, pub := testutil.ECKeys(t)
	otherPriv, _ := testutil.ECKeys(t)
	dir := t.TempDir()
	pubFile := filepath.Join(dir, "release.pem")
	if err := os.WriteFile(pubFile, []byte(pub), 0o644); err != nil {
		t.Fatal(err)
	}
	files := custom("package temporal.custom\n\ndeny contains \"frozen\" if input.target.namespace == \"payments\"\n")
	verify := []string{"policy", "check", "--verification-key", pubFile, "--verification-key-id", "release", "--signing-alg", "ES256"}
	tests := []struct {
		name   string
		bundle string
		status int
		want   string
	}{
		{"signed with the key", signedTarball(t, files, priv, "release"), 0, "signature verified"},
		{"signed with another key", signedTarball(t, files, otherPriv, "release"), 1, "bundle policy: load bundle"},
		{"unsigned", signedTarball(t, files, "", ""), 1, "bundle missing .signatures.json file"},
	}
	rs256 := append(append([]string(nil), verify[:len(verify)-1]...), "RS256")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, status := runCLI("", append(verify, tc.bundle)...)
			if status != tc.status || !strings.Contains(out+errOut, tc.want) {
				t.Errorf("status %d, want %d\nstdout: %s\nstderr: %s\nwant %q", status, tc.status, out, errOut, tc.want)
			}
		})
	}
	t.Run("wrong algorithm", func(t *testing.T) {
		_, errOut, status := runCLI("", append(rs256, tests[0].bundle)...)
		if status != 1 || !strings.Contains(errOut, "bundle policy: load bundle") {
			t.Errorf("status %d, stderr %s", status, errOut)
		}
	})
}

// policy test: opa test's output and exit status, over the bundle's own files.
func TestPolicyTest(t *testing.T) {
	rules := "package temporal.custom\n\ndeny contains \"no terminate\" if input.target.method == \"TerminateWorkflowExecution\"\n\n" +
		"deny contains \"never\" if input.target.method == \"NoSuchMethod\"\n"
	passing := "package temporal.custom_test\n\nimport data.temporal.authz.decision\n\n" +
		"test_terminate_denied if {\n\tnot decision.allow with input as {\"claims\": null, \"target\": {\"method\": \"TerminateWorkflowExecution\"}}\n}\n\n" +
		"test_default_still_applies if {\n\td := decision with input as {\"claims\": {\"subject\": \"a\", \"auth_type\": \"jwt\", \"system\": [], \"namespaces\": {\"default\": [\"read\"]}, \"jwt\": {}}, \"target\": {\"method\": \"DescribeNamespace\", \"scope\": \"namespace\", \"access\": \"read\", \"namespace\": \"default\", \"health_check\": false}}\n\td.allow\n}\n"
	failing := "package temporal.custom_test\n\nimport data.temporal.authz.decision\n\ntest_wrong if {\n\tdecision.allow with input as {\"claims\": null, \"target\": {\"method\": \"TerminateWorkflowExecution\"}}\n}\n"
	typo := "package temporal.custom_test\n\ntest_typo if {\n\tinput.claim.subject == \"a\"\n}\n"
	bundle := func(tests string) string {
		files := custom(rules)
		if tests != "" {
			files["temporal/custom/rules_test.rego"] = tests
		}
		return testutil.WriteFiles(t, files)
	}
	pass, fail := bundle(passing), bundle(failing)

	cases := []struct {
		name   string
		args   []string
		status int
		stdout string // substring
		stderr string // substring
	}{
		{"pass", []string{pass}, 0, "PASS: 2/2", ""},
		{"verbose", []string{"-v", pass}, 0, "data.temporal.custom_test.test_terminate_denied: PASS", ""},
		{"run filter", []string{"--run", "default_still", pass}, 0, "PASS: 1/1", ""},
		{"json", []string{"--format", "json", pass}, 0, `"name": "test_default_still_applies"`, ""},
		{"fail", []string{fail}, 2, "FAIL: 1/1", ""},
		{"fail shows the file", []string{fail}, 2, fail + "/temporal/custom/rules_test.rego:", ""},
		{"coverage", []string{"--coverage", pass}, 0, `"coverage": `, ""},
		{"threshold met", []string{"--threshold", "50", pass}, 0, `"covered_lines"`, ""},
		{"threshold not met", []string{"--threshold", "100", pass}, 2, "", "Code coverage threshold not met: got 85.71 instead of 100.00"},
		{"no tests", []string{bundle("")}, 0, "", ""},
		{"no tests, fail on empty", []string{"--fail-on-empty", bundle("")}, 1, "", "no tests were run"},
		{"type error in a test", []string{bundle(typo)}, 1, "", "rules_test.rego:4: rego_type_error: undefined ref: input.claim.subject"},
		{"bad flag", []string{"--threshold", "101", pass}, 2, "", "policy test: --threshold 101: must be a percentage between 0 and 100"},
		{"no bundle", nil, 2, "", "policy test: give at least one BUNDLE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, status := runCLI("", append([]string{"policy", "test"}, tc.args...)...)
			if status != tc.status || !strings.Contains(out, tc.stdout) || !strings.Contains(errOut, tc.stderr) {
				t.Errorf("status %d (want %d)\nstdout: %.2000s\nstderr: %s\nwant stdout ~%q stderr ~%q", status, tc.status, out, errOut, tc.stdout, tc.stderr)
			}
		})
	}

	// Coverage counts the bundle's files only: the default policy's lines
	// count for nothing, and its files are not listed.
	out, _, _ := runCLI("", "policy", "test", "--coverage", pass)
	var report struct {
		Files map[string]json.RawMessage `json:"files"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatal(err)
	}
	if len(report.Files) != 2 || report.Files[pass+"/temporal/custom/rules.rego"] == nil || report.Files[pass+"/temporal/custom/rules_test.rego"] == nil {
		t.Errorf("coverage files %v, want the bundle's rules.rego and rules_test.rego", mapKeys(report.Files))
	}
}

func mapKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// policy export writes what `opa test DIR my-bundle` and `opa check --schema`
// need. Here OPA's own tester and loader run on it in-process; the Makefile
// runs the opa binary.
func TestPolicyExport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "temporal-opa")
	out, errOut, status := runCLI("", "policy", "export", dir)
	if status != 0 || !strings.Contains(out, "wrote "+filepath.Join(dir, "input.schema.json")) {
		t.Fatalf("status %d\nstdout: %s\nstderr: %s", status, out, errOut)
	}
	for _, f := range []string{".manifest", "temporal/authz/authz.rego", "input.schema.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("export lacks %s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "temporal/authz/authz_test.rego")); err == nil {
		t.Error("export wrote the default policy's tests")
	}

	// opa test DIR my-bundle
	b := copyBundle(t, "../../../bundles/protected-namespaces")
	ch, err := tester.Run(context.Background(), dir, b)
	if err != nil {
		t.Fatal(err)
	}
	passed := 0
	for _, r := range ch {
		if !r.Pass() {
			t.Errorf("opa test %s %s: %s", dir, b, r)
		}
		passed++
	}
	if passed == 0 {
		t.Error("opa test ran no test")
	}

	// opa check --strict --schema DIR/input.schema.json DIR my-bundle, with a typo
	typo := testutil.WriteFiles(t, custom("package temporal.custom\n\ndeny contains \"x\" if input.claim.subject == \"a\"\n"))
	schemas, err := loader.Schemas(filepath.Join(dir, "input.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		bundle string
		want   string
	}{{b, ""}, {typo, "undefined ref: input.claim.subject"}} {
		res, err := loader.NewFileLoader().WithRegoVersion(ast.RegoV1).Filtered([]string{dir, tc.bundle}, func(_ string, info fs.FileInfo, _ int) bool {
			return !info.IsDir() && !strings.HasSuffix(info.Name(), ".rego")
		})
		if err != nil {
			t.Fatal(err)
		}
		c := ast.NewCompiler().WithStrict(true).WithSchemas(schemas).WithUseTypeCheckAnnotations(true)
		c.Compile(res.ParsedModules())
		if got := c.Errors.Error(); (tc.want == "") != !c.Failed() || !strings.Contains(got, tc.want) {
			t.Errorf("opa check of %s: %v, want %q", tc.bundle, c.Errors, tc.want)
		}
	}

	_, errOut, status = runCLI("", "policy", "export")
	if status != 2 || !strings.Contains(errOut, "give one DIR") {
		t.Errorf("export without DIR: status %d, %s", status, errOut)
	}
}

// policy explain: the decision, the rules that produced it and the trace.
func TestPolicyExplain(t *testing.T) {
	b := copyBundle(t, "../../../bundles/protected-namespaces")
	tests := []struct {
		name   string
		args   []string
		status int
		want   []string
	}{
		{"custom deny", []string{"--permissions", "production:write", "--api", "TerminateWorkflowExecution", "--namespace", "production", b}, 1, []string{
			`denied: TerminateWorkflowExecution in protected namespace "production" requires admin on "production" or on temporal-system; caller has write`,
			`/temporal/custom/protected_namespaces/protected.rego:20  data.temporal.custom.protected_namespaces.deny`,
			`/temporal/authz/authz.rego:30                            data.temporal.authz.decision`,
			"| | | Enter data.temporal.custom.protected_namespaces.deny",
		}},
		{"default allow", []string{"--permissions", "production:write", "--api", "StartWorkflowExecution", "--namespace", "production", b}, 0, []string{
			"allowed: allowed by the default policy",
			"data.temporal.authz.default_allow     true",
			"/temporal/authz/authz.rego:32",
		}},
		{"default deny, no bundle", []string{"--permissions", "default:read", "--api", "StartWorkflowExecution"}, 1, []string{
			`denied: StartWorkflowExecution in namespace "default" requires write; caller has read`,
			`data.temporal.authz.required_role`,
		}},
		{"no token", []string{"--permissions", "none", "--api", "ListNamespaces", "--namespace", ""}, 1, []string{
			"denied: ListNamespaces requires a token: the call carried no credentials",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, status := runCLI("", append([]string{"policy", "explain"}, tc.args...)...)
			if status != tc.status {
				t.Errorf("status %d, want %d; stderr %s", status, tc.status, errOut)
			}
			for _, w := range tc.want {
				// Columns are aligned to the longest entry: compare with runs of spaces as one.
				if !strings.Contains(squashSpaces(out), squashSpaces(w)) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "Redo ") || strings.Contains(out, "Index ") {
				t.Errorf("trace not trimmed:\n%s", out)
			}
		})
	}

	// --format json and --request: a rule on input.request sees the request.
	acl := copyBundle(t, "../../../bundles/workflow-type-acl")
	req := filepath.Join(t.TempDir(), "start.json")
	if err := os.WriteFile(req, []byte(`{"namespace": "default", "workflow_id": "w1", "workflow_type": {"name": "billing.Charge"}, "task_queue": {"name": "q"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, status := runCLI("", "policy", "explain", "-f", "json", "--permissions", "default:write", "--api", "StartWorkflowExecution", "--request", req, acl)
	var ex Explanation
	if err := json.Unmarshal([]byte(out), &ex); err != nil {
		t.Fatalf("%v\n%s\n%s", err, out, errOut)
	}
	request, _ := ex.Input["request"].(map[string]any)
	wt, _ := request["workflow_type"].(map[string]any)
	if wt["name"] != "billing.Charge" || len(ex.Rules) == 0 || len(ex.Trace) == 0 || (status == 0) != ex.Allow {
		t.Errorf("status %d, explanation %+v", status, ex)
	}
	t.Logf("workflow-type-acl on billing.Charge: allow=%v reason=%q", ex.Allow, ex.Reason)
}

// policy can-i: every API of the three services, decided for the caller.
func TestPolicyCanI(t *testing.T) {
	out, errOut, status := runCLI("", "policy", "can-i", "--permissions", "default:read", "-f", "json")
	var answer []CanIService
	if err := json.Unmarshal([]byte(out), &answer); err != nil || status != 0 {
		t.Fatalf("status %d, %v\n%s", status, err, errOut)
	}
	decided := map[string]CanIEntry{}
	for _, s := range answer {
		n := 0
		for _, e := range s.APIs {
			decided[e.API] = e
			if e.Allow {
				n++
			}
		}
		if n != s.Allowed {
			t.Errorf("%s: allowed %d, counted %d", s.Service, s.Allowed, n)
		}
	}
	var descs []grpc.ServiceDesc
	for _, name := range []string{"workflow", "operator", "admin"} {
		descs = append(descs, canIServices[name])
	}
	total := 0
	for _, sd := range descs {
		total += len(sd.Methods) + len(sd.Streams)
	}
	if len(decided) != total || total < 150 {
		t.Errorf("decided %d APIs, the service descriptors have %d", len(decided), total)
	}
	wf := "/temporal.api.workflowservice.v1.WorkflowService/"
	for api, want := range map[string]bool{
		wf + "DescribeWorkflowExecution":                                    true,
		wf + "StartWorkflowExecution":                                       false,
		wf + "ListNamespaces":                                               false, // cluster API: needs a system role
		"/temporal.server.api.adminservice.v1.AdminService/DescribeCluster": false,
	} {
		if e := decided[api]; e.Allow != want || (!want && e.Reason == "") {
			t.Errorf("%s: %+v, want allow=%v", api, e, want)
		}
	}
	if e := decided[wf+"ListNamespaces"]; e.Namespace != "" || e.Scope != "cluster" {
		t.Errorf("ListNamespaces decided as %+v; want a cluster API with no namespace", e)
	}

	// A verified token says the same as the permissions it carries; a token
	// the claim mapper refuses is an error, as every call would be refused.
	dir, key := stateDir(t)
	tok, err := key.Mint(devkey.Claims{Subject: "ci", Permissions: []string{"default:read"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	fromToken, errOut, status := runCLI("", "policy", "can-i", "--token", tok, "--state-dir", dir, "-f", "json")
	if status != 0 || fromToken != out {
		t.Errorf("can-i --token: status %d, stderr %s; the answer differs from --permissions default:read", status, errOut)
	}
	expired, _ := key.Mint(devkey.Claims{Subject: "ci", Permissions: []string{"default:read"}, TTL: -time.Minute})
	_, errOut, status = runCLI("", "policy", "can-i", "--token", expired, "--state-dir", dir)
	if status != 1 || !strings.Contains(errOut, "the claim mapper refuses the token") || strings.Contains(errOut, expired) {
		t.Errorf("can-i with an expired token: status %d, stderr %s", status, errOut)
	}

	// A bundle changes the answer: ui-friendly-reads lets namespace readers
	// read the cluster's info.
	b := copyBundle(t, "../../../bundles/ui-friendly-reads")
	out, _, _ = runCLI("", "policy", "can-i", "--permissions", "default:read", "--service", "workflow", b)
	if !strings.Contains(out, "temporal.api.workflowservice.v1.WorkflowService: ") ||
		!regexpLine(out, `^  allow\s+GetClusterInfo\s+cluster\s+read`) || strings.Contains(out, "OperatorService") {
		t.Errorf("can-i with ui-friendly-reads:\n%s", out)
	}
}

// regexpLine reports whether a line of out matches re.
func regexpLine(out, re string) bool {
	return regexp.MustCompile("(?m)" + re).MatchString(out)
}

// policy check notes, with file:line, where a policy defeats the decision
// cache: the bundle is still activated (status 0).
func TestPolicyCheckNotesCacheDefeat(t *testing.T) {
	tests := []struct {
		name  string
		rules string
		want  []string // notes, in order; none for a cacheable policy
	}{
		{name: "request fields by path", rules: "package temporal.custom\n\ndeny contains \"x\" if input.request.workflow_type.name == \"a\"\n"},
		{name: "whole request and the clock", rules: "package temporal.custom\n\ndeny contains \"x\" if count(input.request) > 3\n\ndeny contains \"y\" if time.now_ns() < 0\n",
			want: []string{
				"/temporal/custom/rules.rego:3: input.request reads the whole request: decisions of this policy are not cached",
				"/temporal/custom/rules.rego:5: time.now_ns gives results that vary between calls: decisions of this policy are not cached",
			}},
		{name: "with input", rules: "package temporal.custom\n\n_admin if \"admin\" in input.claims.system\n\ndeny contains \"x\" if _admin with input.claims.system as []\n",
			want: []string{"/temporal/custom/rules.rego:5: `with input` replaces the input document"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := testutil.WriteFiles(t, custom(tc.rules))
			out, errOut, status := runCLI("", "policy", "check", dir)
			if status != 0 {
				t.Fatalf("status %d\nstdout: %s\nstderr: %s", status, out, errOut)
			}
			var notes []string
			for _, l := range strings.Split(out, "\n") {
				if n, ok := strings.CutPrefix(l, "note: "); ok {
					notes = append(notes, n)
				}
			}
			if len(notes) != len(tc.want) {
				t.Fatalf("notes %q, want %d notes like %q", notes, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(notes[i], w) {
					t.Errorf("note %d is %q, want it to start with %q", i, notes[i], w)
				}
			}
			out, _, _ = runCLI("", "policy", "check", "--format", "json", dir)
			var res CheckResult
			if err := json.Unmarshal([]byte(out), &res); err != nil || !res.OK || len(res.Notes) != len(tc.want) || res.DecisionCache != (len(tc.want) == 0) {
				t.Errorf("--format json: %v, %+v", err, res)
			}
		})
	}
}

// squashSpaces replaces each run of spaces in s with one space.
func squashSpaces(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == ' ' }), " ")
}

// The example bundles compose: each has its own root temporal/custom/<name>,
// and the server activates all of them at once.
func TestPolicyCheckExampleBundlesTogether(t *testing.T) {
	bundles := exampleBundles(t)
	out, errOut, status := runCLI("", append([]string{"policy", "check"}, bundles...)...)
	if status != 0 {
		t.Fatalf("policy check of every example bundle: status %d\nstdout: %s\nstderr: %s", status, out, errOut)
	}
	for _, b := range bundles {
		name := filepath.Base(b)
		if !strings.Contains(out, name) {
			t.Errorf("policy check does not name bundle %s:\n%s", name, out)
		}
	}
}

// eval, policy explain and policy can-i decide with the roles a policy's role
// rules grant from the token claims of --claims and the issuer of --issuer,
// and show which rule granted which role.
func TestOfflineToolsShowGrantedRoles(t *testing.T) {
	b := testutil.WriteFiles(t, map[string]string{
		".manifest": `{"roots": ["temporal/custom/groups"]}`,
		"temporal/custom/groups/groups.rego": `package temporal.custom.groups

namespace_roles[ns] contains role if {
	input.claims.issuer == "https://idp.example"
	some group in input.claims.jwt.groups
	some grant in data.temporal.custom.groups.table[group]
	[ns, role] := split(grant, ":")
}
`,
		"temporal/custom/groups/data.json": `{"table": {"payments-devs": ["payments:write"]}}`,
	})
	caller := []string{"--permissions", "default:read", "--claims", `{"groups": ["payments-devs"]}`, "--issuer", "https://idp.example", "--namespace", "payments"}
	tests := []struct {
		name   string
		args   []string
		status int
		want   []string
	}{
		{"eval", append([]string{"eval", "--api", "StartWorkflowExecution", "--policy", b}, caller...), 0,
			[]string{`"allow": true`, `"granted_roles": [`, `"rule": "data.temporal.custom.groups.namespace_roles"`}},
		{"explain", append([]string{"policy", "explain", "--api", "StartWorkflowExecution", b}, caller...), 0,
			[]string{"allowed: allowed by the default policy", "granted by the policy: payments:write (data.temporal.custom.groups.namespace_roles)"}},
		{"can-i, a token with groups and no permissions", []string{"policy", "can-i", "--service", "workflow", "--claims", `{"groups": ["payments-devs"]}`, "--issuer", "https://idp.example", "--namespace", "payments", b}, 0,
			[]string{`Caller: sub "dev-user" (--permissions) with no roles`, "Roles granted by the policy: payments:write", `RegisterNamespace in namespace "payments" requires admin; caller has write`}},
		{"explain, another issuer", []string{"policy", "explain", "--api", "StartWorkflowExecution", "--permissions", "default:read", "--claims", `{"groups": ["payments-devs"]}`, "--issuer", "https://other.example", "--namespace", "payments", b}, 1,
			[]string{`denied: StartWorkflowExecution in namespace "payments" requires write; caller has no role`}},
		{"can-i", append([]string{"policy", "can-i", "--service", "workflow", b}, caller...), 0,
			[]string{"Roles granted by the policy: payments:write (data.temporal.custom.groups.namespace_roles)", "allow StartWorkflowExecution", `RegisterNamespace in namespace "payments" requires admin; caller has write`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut string
			var status int
			if tc.args[0] == "eval" {
				var buf bytes.Buffer
				o, err := cli.ParseEval(tc.args[1:], cli.Env{Getenv: func(string) string { return "" }})
				if err == nil {
					err = Eval(context.Background(), o, strings.NewReader(""), &buf)
				}
				var errBuf bytes.Buffer
				out, status, errOut = buf.String(), exitStatus(err, &errBuf), errBuf.String()
			} else {
				out, errOut, status = runCLI("", tc.args...)
			}
			if status != tc.status {
				t.Errorf("status %d, want %d; stderr %s", status, tc.status, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(squashSpaces(out), squashSpaces(w)) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// keycloak-groups and protected-namespaces together, as policy explain decides
// with a token's groups (--claims) and issuer (--issuer): a group-granted admin
// terminates in a protected namespace, a group-granted write does not, and a
// token of another issuer gets no role from its groups.
func TestPolicyExplainGroupRolesInProtectedNamespace(t *testing.T) {
	groups := copyBundle(t, "../../../bundles/keycloak-groups")
	protected := copyBundle(t, "../../../bundles/protected-namespaces")
	if err := os.WriteFile(filepath.Join(protected, "temporal/custom/protected_namespaces/data.json"), []byte(`{"namespaces": ["payments"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	const keycloak = "https://keycloak.example/realms/temporal"
	tests := []struct {
		name, group, issuer string
		status              int
		want                []string
	}{
		{"group admin", "/temporal-payments-oncall", keycloak, 0, []string{
			"allowed: allowed by the default policy",
			"granted by the policy: payments:admin (data.temporal.custom.keycloak_groups.namespace_roles)",
		}},
		{"group writer", "/temporal-payments-devs", keycloak, 1, []string{
			`denied: TerminateWorkflowExecution in protected namespace "payments" requires admin on "payments" or on temporal-system; caller has write`,
		}},
		{"another issuer", "temporal-platform-admins", "https://evil.example", 1, []string{
			`denied: TerminateWorkflowExecution in protected namespace "payments" requires admin on "payments" or on temporal-system; caller has no role`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, status := runCLI("", "policy", "explain", "--permissions", "other:read", "--claims", `{"groups": ["`+tc.group+`"]}`,
				"--issuer", tc.issuer, "--api", "TerminateWorkflowExecution", "--namespace", "payments", groups, protected)
			if status != tc.status {
				t.Errorf("status %d, want %d; stderr %s", status, tc.status, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// --cert: the caller presents a client certificate, alone (its identity,
// roles only from role rules) or with a token.
func TestOfflineToolsWithCertificate(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spiffe, _ := url.Parse("spiffe://prod.example/ns/payments/sa/worker")
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "payments-worker"}, URIs: []*url.URL{spiffe},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	b := testutil.WriteFiles(t, map[string]string{
		".manifest": `{"roots": ["temporal/custom/svids"]}`,
		"temporal/custom/svids/svids.rego": `package temporal.custom.svids

namespace_roles["payments"] contains "write" if input.claims.tls.spiffe_id == "spiffe://prod.example/ns/payments/sa/worker"
`,
		"worker.pem": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		"bad.pem":    "not a certificate",
	})
	cert := filepath.Join(b, "worker.pem")
	tests := []struct {
		name   string
		args   []string
		status int
		want   []string
	}{
		{"certificate alone", []string{"policy", "explain", "--api", "StartWorkflowExecution", "--namespace", "payments", "--cert", cert, b}, 0,
			[]string{"allowed: allowed by the default policy", "granted by the policy: payments:write (data.temporal.custom.svids.namespace_roles)"}},
		{"certificate alone, other namespace", []string{"policy", "explain", "--api", "StartWorkflowExecution", "--namespace", "orders", "--cert", cert, b}, 1,
			[]string{`denied: StartWorkflowExecution in namespace "orders" requires write; caller spiffe://prod.example/ns/payments/sa/worker (client certificate) has no role`}},
		{"can-i names the certificate", []string{"policy", "can-i", "--service", "workflow", "--namespace", "payments", "--cert", cert, b}, 0,
			[]string{`Caller: sub "spiffe://prod.example/ns/payments/sa/worker" (client certificate) with no roles`, "Roles granted by the policy: payments:write"}},
		{"not a certificate", []string{"policy", "explain", "--api", "StartWorkflowExecution", "--cert", filepath.Join(b, "bad.pem"), b}, 2,
			nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, status := runCLI("", tc.args...)
			if status != tc.status {
				t.Errorf("status %d, want %d; stderr %s", status, tc.status, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(squashSpaces(out), squashSpaces(w)) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if tc.want == nil && !strings.Contains(errOut, "no PEM CERTIFICATE block; give the client certificate in PEM") {
				t.Errorf("stderr %q", errOut)
			}
		})
	}
}
