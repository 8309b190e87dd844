package offline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/temporal-opa/temporal-opa/server/internal/cli"
	"github.com/temporal-opa/temporal-opa/server/internal/devkey"
	"github.com/temporal-opa/temporal-opa/server/internal/testutil"
)

func TestResolveAPI(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"StartWorkflowExecution", "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution", ""},
		{"AddSearchAttributes", "/temporal.api.operatorservice.v1.OperatorService/AddSearchAttributes", ""},
		{"Check", "/grpc.health.v1.Health/Check", ""},
		{"DescribeCluster", "/temporal.server.api.adminservice.v1.AdminService/DescribeCluster", ""},
		{"/temporal.server.api.adminservice.v1.AdminService/DescribeCluster", "/temporal.server.api.adminservice.v1.AdminService/DescribeCluster", ""},
		{"/x.Y/Unknown", "/x.Y/Unknown", ""},
		{"startworkflowexecution", "", "did you mean StartWorkflowExecution? (names are case-sensitive)"},
		{"SignalWith", "", "close ones: SignalWithStartWorkflowExecution"},
		{"Nope", "", "give a method such as StartWorkflowExecution"},
	}
	for _, tc := range tests {
		got, err := ResolveAPI(tc.in)
		if tc.err != "" {
			var ue *cli.UsageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ResolveAPI(%q) error %v, want a usage error containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ResolveAPI(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func stateDir(t *testing.T) (string, *devkey.Key) {
	t.Helper()
	dir := t.TempDir()
	k, _, err := devkey.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, k
}

func evalJSON(t *testing.T, o cli.Eval) (Result, error) {
	t.Helper()
	var out bytes.Buffer
	err := Eval(context.Background(), o, strings.NewReader(""), &out)
	var res Result
	if jerr := json.Unmarshal(out.Bytes(), &res); jerr != nil && err == nil {
		t.Fatalf("output is not JSON: %v\n%s", jerr, out.String())
	}
	return res, err
}

func TestEval(t *testing.T) {
	dir, key := stateDir(t)
	token := func(perms []string, ttl time.Duration) string {
		tok, err := key.Mint(devkey.Claims{Subject: "alice", Permissions: perms, TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	other, _ := devkey.Generate()
	foreign, _ := other.Mint(devkey.Claims{Subject: "mallory", Permissions: []string{"default:admin"}})
	bundle := testutil.WriteFiles(t, map[string]string{
		".manifest":                   `{"roots": ["temporal/custom"], "rego_version": 1}`,
		"temporal/custom/custom.rego": "package temporal.custom\n\ndeny contains \"no starts for alice\" if {\n\tinput.claims.subject == \"alice\"\n\tinput.target.method == \"StartWorkflowExecution\"\n}\n",
	})

	tests := []struct {
		name      string
		o         cli.Eval
		allow     bool
		reason    string // substring
		errSubstr string // in Result.Error
	}{
		{"read cannot start", cli.Eval{Permissions: []string{"default:read"}, Subject: "bob", API: "StartWorkflowExecution", Namespace: "default"},
			false, `StartWorkflowExecution in namespace "default" requires write; caller has read`, ""},
		{"write can start", cli.Eval{Permissions: []string{"default:write"}, Subject: "bob", API: "StartWorkflowExecution", Namespace: "default"},
			true, "", ""},
		{"no token gets GetSystemInfo", cli.Eval{Permissions: []string{}, API: "GetSystemInfo"}, true, "", ""},
		{"no token is denied the rest", cli.Eval{Permissions: []string{}, API: "ListWorkflowExecutions", Namespace: "default"}, false, "requires a token", ""},
		{"system admin lists namespaces", cli.Eval{Permissions: []string{"temporal-system:admin"}, Subject: "root", API: "ListNamespaces"}, true, "", ""},
		{"verified token", cli.Eval{Token: token([]string{"default:write"}, time.Hour), StateDir: dir, API: "StartWorkflowExecution", Namespace: "default"},
			true, "", ""},
		{"Bearer prefix accepted", cli.Eval{Token: "Bearer " + token([]string{"default:read"}, time.Hour), StateDir: dir, API: "StartWorkflowExecution", Namespace: "default"},
			false, "caller has read", ""},
		{"expired token", cli.Eval{Token: token([]string{"default:write"}, -time.Minute), StateDir: dir, API: "StartWorkflowExecution", Namespace: "default"},
			false, "claim mapper refused the token", "token_expired"},
		{"foreign key", cli.Eval{Token: foreign, StateDir: dir, API: "StartWorkflowExecution", Namespace: "default"},
			false, "claim mapper refused the token", "unknown_kid"},
		{"custom bundle deny", cli.Eval{Token: token([]string{"default:write"}, time.Hour), StateDir: dir, Policy: []string{bundle}, API: "StartWorkflowExecution", Namespace: "default"},
			false, "no starts for alice", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := evalJSON(t, tc.o)
			if tc.allow != (err == nil) || (!tc.allow && !errors.Is(err, Denied{})) {
				t.Errorf("err = %v, want allow=%v", err, tc.allow)
			}
			if res.Allow != tc.allow || !strings.Contains(res.Reason, tc.reason) || !strings.Contains(res.Error, tc.errSubstr) {
				t.Errorf("got allow=%v reason=%q error=%q; want allow=%v reason~%q error~%q", res.Allow, res.Reason, res.Error, tc.allow, tc.reason, tc.errSubstr)
			}
			if !strings.HasPrefix(res.API, "/") {
				t.Errorf("api %q is not a full name", res.API)
			}
			if res.Input != nil {
				if _, ok := res.Input["target"]; !ok {
					t.Errorf("input lacks target: %v", res.Input)
				}
			}
		})
	}
}

func TestEvalWithoutKey(t *testing.T) {
	_, err := evalJSON(t, cli.Eval{Token: "x.y.z", StateDir: t.TempDir(), API: "GetSystemInfo"})
	if err == nil || !strings.Contains(err.Error(), "no dev signing key in") || !strings.Contains(err.Error(), "--authz FILE") {
		t.Errorf("error %v, want advice on the missing key", err)
	}
}

func TestTokenPrintsTokenAloneOnLastLine(t *testing.T) {
	dir, key := stateDir(t)
	var out, notes bytes.Buffer
	err := Token(cli.Token{Permissions: []string{"system:admin"}, Subject: "me", TTL: time.Hour, StateDir: dir}, &out, &notes)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 1 || strings.Count(lines[0], ".") != 2 {
		t.Fatalf("stdout %q, want the token alone", out.String())
	}
	if !strings.Contains(notes.String(), "temporal-system:admin") {
		t.Errorf("notes %q, want a hint that the system scope is temporal-system", notes.String())
	}
	if strings.Contains(notes.String(), lines[0]) || strings.Contains(notes.String(), "PRIVATE") {
		t.Errorf("notes leak the token or key: %q", notes.String())
	}
	_ = key
}

func TestKeysGenNeverOverwrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.pem")
	var out bytes.Buffer
	if err := KeysGen(cli.KeysGen{KeyFile: path}, &out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "PRIVATE") || strings.Contains(out.String(), `"d"`) {
		t.Errorf("keys gen printed private material:\n%s", out.String())
	}
	before, _ := os.ReadFile(path)
	if err := KeysGen(cli.KeysGen{KeyFile: path}, &out); err == nil || !strings.Contains(err.Error(), "never overwritten") {
		t.Errorf("second keys gen: %v, want a refusal", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("key file changed")
	}
}

// eval --authz FILE with policy.opa_config decides with the remote bundles, as
// the server would.
func TestEvalWithOPAConfig(t *testing.T) {
	b := bundle.Bundle{
		Manifest: bundle.Manifest{Revision: "remote-1", Roots: &[]string{"temporal/custom"}},
		Data:     map[string]any{},
		Modules: []bundle.ModuleFile{{URL: "/temporal/custom/r.rego", Path: "/temporal/custom/r.rego",
			Raw: []byte("package temporal.custom\n\ndeny contains \"remote says no\" if input.target.method == \"StartWorkflowExecution\"\n")}},
	}
	var tarball bytes.Buffer
	if err := bundle.NewWriter(&tarball).Write(b); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(tarball.Bytes()) }))
	defer srv.Close()
	dir := t.TempDir()
	opa := filepath.Join(dir, "opa.yaml")
	authz := filepath.Join(dir, "authz.yaml")
	if err := os.WriteFile(opa, []byte("services:\n  s:\n    url: "+srv.URL+"\nbundles:\n  remote:\n    service: s\n    resource: b.tar.gz\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(authz, []byte("jwt:\n  jwks_urls: [https://idp.example/jwks.json]\npolicy:\n  opa_config: "+opa+"\n  require_bundle_timeout: 10s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := evalJSON(t, cli.Eval{AuthzFile: authz, Permissions: []string{"default:write"}, Subject: "bob", API: "StartWorkflowExecution", Namespace: "default"})
	if !errors.As(err, new(Denied)) || res.Allow || !strings.Contains(res.Reason, "remote says no") || res.Revisions["remote"] != "remote-1" {
		t.Errorf("got %+v, %v; want denied by the remote bundle at revision remote-1", res, err)
	}
}

// keys gen refuses a state directory others may write, as start-dev refuses
// the key in it: whoever writes the directory can replace the key.
func TestKeysGenRefusesWritableStateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := KeysGen(cli.KeysGen{StateDir: dir}, &out)
	if err == nil || !strings.Contains(err.Error(), "chmod 700 "+dir) {
		t.Fatalf("keys gen in a mode 0777 state directory: %v, want a refusal naming chmod 700", err)
	}
	if _, serr := os.Stat(filepath.Join(dir, devkey.KeyFileName)); serr == nil {
		t.Error("a key was written into the writable directory")
	}
}

// eval with several bundles (--policy twice, or a policy.bundle list in
// --authz) decides with all of them, named as the server names them.
func TestEvalSeveralBundles(t *testing.T) {
	dir := t.TempDir()
	write := func(pkg, rev, method string) string {
		return testutil.WriteFiles(t, map[string]string{
			".manifest":                          `{"roots": ["temporal/custom/` + pkg + `"], "revision": "` + rev + `"}`,
			"temporal/custom/" + pkg + "/r.rego": "package temporal.custom." + pkg + "\n\ndeny contains \"" + pkg + " says no\" if input.target.method == \"" + method + "\"\n",
		})
	}
	starts := write("starts", "s-1", "StartWorkflowExecution")
	signals := write("signals", "g-1", "SignalWorkflowExecution")
	authz := filepath.Join(dir, "authz.yaml")
	if err := os.WriteFile(authz, []byte("jwt:\n  jwks_urls: [https://idp.example/jwks.json]\npolicy:\n  bundle: ["+starts+", "+signals+"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{"policy/" + filepath.Base(starts): "s-1", "policy/" + filepath.Base(signals): "g-1"}
	for _, base := range []cli.Eval{{Policy: []string{starts, signals}}, {AuthzFile: authz}} {
		for api, want := range map[string]string{"StartWorkflowExecution": "starts says no", "SignalWorkflowExecution": "signals says no"} {
			o := base
			o.Permissions, o.Subject, o.API, o.Namespace = []string{"default:write"}, "bob", api, "default"
			res, err := evalJSON(t, o)
			if !errors.As(err, new(Denied)) || res.Reason != want {
				t.Errorf("%+v %s: %q, %v; want denied with %q", base, api, res.Reason, err, want)
			}
			for name, rev := range names {
				if res.Revisions[name] != rev {
					t.Errorf("%+v: revisions %v, want %s at %s", base, res.Revisions, name, rev)
				}
			}
		}
	}
}

func TestParseGrants(t *testing.T) {
	good := `{"id":"g-1","subject":{"subject":"dev-user"},"namespace":"payments","role":"write","not_before":"2026-12-06T10:00:00Z","expires":"2026-12-06T11:00:00Z","reason":"INC-9","state":"active","requested_by":{"subject":"dev-user"},"requested_at":"2026-12-06T10:00:00Z"}`
	cases := []struct {
		name, json, err string
		n               int
	}{
		{name: "an array of grants", json: "[" + good + "]", n: 1},
		{name: "grant list output", json: `[{"grant":` + good + `,"state":"active","time_left":"1h"}]`, n: 1},
		{name: "empty", json: "[]", n: 0},
		{name: "not an array", json: `{"id":"g-1"}`, err: "not a JSON array of grants"},
		{name: "an unknown field", json: `[{"id":"g-1","rol":"write"}]`, err: `entry 0: json: unknown field "rol"`},
		{name: "an invalid grant", json: `[{"id":"g-1"}]`, err: `entry 0 (grant "g-1"): subject: name a subject`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			gs, err := parseGrants([]byte(c.json))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || len(gs) != c.n {
				t.Fatalf("%d grants, %v", len(gs), err)
			}
		})
	}
}
