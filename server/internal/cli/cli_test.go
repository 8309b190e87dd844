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

func testEnv(t *testing.T) Env {
	t.Helper()
	return Env{Getenv: func(k string) string {
		if k == "HOME" {
			return "/home/u"
		}
		return ""
	}}
}

func TestCommand(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantName string
		wantRest []string
		wantErr  string // substring; "help" for ErrHelp
	}{
		{name: "no args prints help", args: nil, wantErr: "help"},
		{name: "help", args: []string{"help"}, wantErr: "help"},
		{name: "--help", args: []string{"--help"}, wantErr: "help"},
		{name: "start-dev", args: []string{"start-dev", "--port", "1"}, wantName: "start-dev", wantRest: []string{"--port", "1"}},
		{name: "keys gen", args: []string{"keys", "gen", "--key", "k"}, wantName: "keys gen", wantRest: []string{"--key", "k"}},
		{name: "keys alone", args: []string{"keys"}, wantErr: "keys needs a subcommand: 'keys gen' or 'keys serve'"},
		{name: "keys unknown", args: []string{"keys", "rotate"}, wantErr: `unknown command "keys rotate"`},
		{name: "unknown", args: []string{"serve"}, wantErr: `unknown command "serve"; commands are: start-dev, start, token`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var help bytes.Buffer
			name, rest, err := Command(tc.args, Env{Help: &help})
			switch {
			case tc.wantErr == "help":
				if !errors.Is(err, ErrHelp) || !strings.Contains(help.String(), "Commands:") {
					t.Fatalf("got %v, help %q; want ErrHelp and usage", err, help.String())
				}
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tc.wantErr)
				}
				var ue *UsageError
				if !errors.As(err, &ue) {
					t.Fatalf("error %T is not a *UsageError", err)
				}
			default:
				if err != nil || name != tc.wantName || !reflect.DeepEqual(rest, tc.wantRest) {
					t.Fatalf("got %q %q %v, want %q %q", name, rest, err, tc.wantName, tc.wantRest)
				}
			}
		})
	}
}

// flagErrorCase is one bad command line and the message it must give.
type flagErrorCase struct {
	name  string
	parse func([]string, Env) error
	args  []string
	want  string // the whole message, before the "(see ...)" hint
}

func startDev(a []string, e Env) error  { _, err := ParseStartDev(a, e); return err }
func start(a []string, e Env) error     { _, err := ParseStart(a, e); return err }
func token(a []string, e Env) error     { _, err := ParseToken(a, e); return err }
func keysServe(a []string, e Env) error { _, err := ParseKeysServe(a, e); return err }
func eval(a []string, e Env) error      { _, err := ParseEval(a, e); return err }

func TestFlagErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []flagErrorCase{
		{"unknown flag", startDev, []string{"--prot", "7233"}, "start-dev: unknown flag --prot"},
		{"bad int", startDev, []string{"--port", "seven"}, `start-dev: --port "seven": parse error`},
		{"port range", startDev, []string{"--port", "70000"}, "start-dev: --port 70000: must be a TCP port between 1 and 65535"},
		{"missing value", startDev, []string{"--port"}, "start-dev: flag --port needs a value"},
		{"bad ip", startDev, []string{"--ip", "localhost:7233"}, `start-dev: --ip "localhost:7233": must be an IP address such as 127.0.0.1 or 0.0.0.0`},
		{"positional", startDev, []string{"now"}, `start-dev: unexpected argument "now" (all settings are --flags)`},
		{"missing policy", startDev, []string{"--policy", filepath.Join(dir, "nope")}, "start-dev: --policy " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{"log level", startDev, []string{"--log-level", "loud"}, `start-dev: --log-level "loud": must be debug, info, warn or error`},
		{"system namespace", startDev, []string{"--namespace", "temporal-system"}, "start-dev: --namespace temporal-system: that is the server's own namespace and always exists"},
		{"bad ttl", startDev, []string{"--token-ttl", "1d"}, `start-dev: --token-ttl "1d": parse error`},
		{"negative ttl", startDev, []string{"--token-ttl", "-1h"}, "start-dev: --token-ttl -1h0m0s: must be positive, e.g. 1h or 30m"},
		{"bad status addr", startDev, []string{"--status-addr", "7253"}, `start-dev: --status-addr "7253": want HOST:PORT such as 127.0.0.1:7253, or -1 to disable it`},
		{"no room for status", startDev, []string{"--port", "65530"}, "start-dev: --port 65530 leaves no room for the status endpoint on port+20: set --status-addr, or --status-addr -1 to disable it"},
		{"empty namespace", startDev, []string{"--namespace", "a,,b"}, `start-dev: --namespace "a,,b": empty entry`},
		{"missing opa config", startDev, []string{"--opa-config", filepath.Join(dir, "opa.yaml")}, "start-dev: --opa-config " + filepath.Join(dir, "opa.yaml") + ": no such file or directory"},
		{"replay with a call", eval, []string{"--replay", "-", "--api", "StartWorkflowExecution"}, "eval: --replay decides recorded calls: drop --api, --token and --permissions"},
		{"claims not an object", eval, []string{"--api", "StartWorkflowExecution", "--permissions", "default:read", "--claims", `["payments-devs"]`}, `eval: --claims "[\"payments-devs\"]": not a JSON object; give the claims as '{"groups": ["payments-devs"]}'`},
		{"claims with a token", eval, []string{"--api", "StartWorkflowExecution", "--token", "x.y.z", "--claims", `{}`}, "eval: --claims and --issuer describe the token of --permissions; a --token has its own claims and issuer, and --permissions none has no token"},
		{"replay format", eval, []string{"--replay", "-", "--format", "yaml"}, `eval: --format "yaml": must be pretty or json`},
		{"missing replay file", eval, []string{"--replay", filepath.Join(dir, "ev.jsonl")}, "eval: --replay " + filepath.Join(dir, "ev.jsonl") + ": no such file or directory"},
		{"no room for the UI", startDev, []string{"--port", "65000", "--status-addr", "-1"}, "start-dev: --port 65000 leaves no room for the Web UI on port+1000: set --ui-port, or --headless to run without the UI"},
		{"headless with UI flag", startDev, []string{"--headless", "--ui-port", "9000"}, "start-dev: --ui-port has no effect with --headless: drop one of them"},
		{"bad ui ip", startDev, []string{"--ui-ip", "::1:x"}, `start-dev: --ui-ip "::1:x": must be an IP address such as 127.0.0.1 or 0.0.0.0`},
		{"dev identity on all addresses", startDev, []string{"--ip", "0.0.0.0", "--ui-ip", "0.0.0.0"}, "start-dev: --ui-ip 0.0.0.0 is not a loopback address, and the Web UI acts as its dev identity (temporal-system:admin) for whoever reaches it: keep it on loopback (drop --ui-ip), log users in with OIDC (--ui-config FILE with auth.enabled: true), or, to give everyone who reaches the port those permissions, add --ui-insecure-dev-identity-on-network"},
		{"dev identity on a lan address", startDev, []string{"--ui-ip", "192.0.2.10", "--ui-permissions", "default:read"}, "start-dev: --ui-ip 192.0.2.10 is not a loopback address, and the Web UI acts as its dev identity (default:read) for whoever reaches it: keep it on loopback (drop --ui-ip), log users in with OIDC (--ui-config FILE with auth.enabled: true), or, to give everyone who reaches the port those permissions, add --ui-insecure-dev-identity-on-network"},
		{"insecure flag with headless", startDev, []string{"--headless", "--ui-insecure-dev-identity-on-network"}, "start-dev: --ui-insecure-dev-identity-on-network has no effect with --headless: drop one of them"},
		{"bad metrics ip", startDev, []string{"--metrics-ip", "127.0.0.1:9090"}, `start-dev: --metrics-ip "127.0.0.1:9090": must be an IP address such as 127.0.0.1 or 0.0.0.0`},
		{"bad ui port", startDev, []string{"--ui-port", "70000"}, "start-dev: --ui-port 70000: must be a TCP port between 1 and 65535"},
		{"bad ui permission", startDev, []string{"--ui-permissions", "admin"}, `start-dev: --ui-permissions "admin": each entry must be <namespace>:<permission>, e.g. default:read or temporal-system:admin`},
		{"missing ui config", startDev, []string{"--ui-config", filepath.Join(dir, "ui.yaml")}, "start-dev: --ui-config " + filepath.Join(dir, "ui.yaml") + ": no such file or directory"},
		{"missing authz", startDev, []string{"--authz", filepath.Join(dir, "authz.yaml")}, "start-dev: --authz " + filepath.Join(dir, "authz.yaml") + ": no such file or directory"},
		{"missing one of several policies", startDev, []string{"--policy", dir, "--policy", filepath.Join(dir, "nope")}, "start-dev: --policy " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{"policy twice", startDev, []string{"--policy", dir + "," + dir + "/"}, "start-dev: --policy " + dir + "/ is given twice: give each once"},
		{"empty policy entry", startDev, []string{"--policy", dir + ","}, `start-dev: --policy "` + dir + `,": empty entry`},
		{"missing eval policy", eval, []string{"--api", "X", "--permissions", "none", "--policy", dir + "," + filepath.Join(dir, "nope")}, "eval: --policy " + filepath.Join(dir, "nope") + ": no such file or directory"},

		{"unknown service", start, []string{"--config", dir, "--service", "ui"}, `start: --service "ui": not a Temporal service; choose from frontend, internal-frontend, history, matching, worker`},
		{"config-file with config", start, []string{"--config-file", "x.yaml", "--config", dir}, "start: --config-file cannot be combined with --config, --env or --zone"},
		{"missing config dir", start, []string{"--config", filepath.Join(dir, "cfg")}, "start: --config " + filepath.Join(dir, "cfg") + ": no such directory; give Temporal's config directory (as temporal-server start --config), --config-file FILE or set TEMPORAL_SERVER_CONFIG_FILE_PATH"},
		{"missing authz", start, []string{"--config", dir, "--authz", "authz.yaml"}, "start: --authz authz.yaml: no such file or directory"},

		{"no permissions", token, nil, "token: --permissions is required, e.g. --permissions default:read,default:write"},
		{"permission without colon", token, []string{"--permissions", "default"}, `token: --permissions "default": each entry must be <namespace>:<permission>, e.g. default:read or temporal-system:admin`},
		{"unknown permission", token, []string{"--permissions", "default:rw"}, `token: --permissions "default:rw": permission "rw" is not one of read, write, worker, admin`},
		{"bad ttl", token, []string{"--permissions", "default:read", "--ttl", "forever"}, `token: --ttl "forever": parse error`},

		{"bad addr", keysServe, []string{"--addr", "7280"}, `keys serve: --addr "7280": address 7280: missing port in address; want HOST:PORT such as 127.0.0.1:7280`},

		{"no api", eval, []string{"--permissions", "default:read"}, "eval: --api is required, e.g. --api StartWorkflowExecution"},
		{"no caller", eval, []string{"--api", "StartWorkflowExecution"}, "eval: give the caller as --token JWT, --permissions default:read and/or --claims '{\"groups\": [...]}' (a token's permissions and other claims), or --permissions none for no token"},
		{"both callers", eval, []string{"--api", "X", "--token", "t", "--permissions", "default:read"}, "eval: give --token or --permissions, not both"},
	}
	checkFlagErrors(t, tests)
}

func TestHelp(t *testing.T) {
	var help bytes.Buffer
	_, err := ParseStartDev([]string{"--help"}, Env{Help: &help})
	if !errors.Is(err, ErrHelp) {
		t.Fatalf("err = %v, want ErrHelp", err)
	}
	for _, want := range []string{"--port int", "--policy PATH", "(default 7233)", "--namespace"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, help.String())
		}
	}
}

func TestParseStartDevDefaults(t *testing.T) {
	o, err := ParseStartDev([]string{"--namespace", "payments", "--namespace", "default,orders"}, testEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	want := StartDev{
		IP: "127.0.0.1", Port: 7233, Namespaces: []string{"default", "payments", "orders"},
		StateDir: "/home/u/.local/state/temporal-opa", LogLevel: "warn", LogFormat: "console", TokenTTL: 24 * time.Hour,
		StatusAddr: "127.0.0.1:7253", MetricsIP: "127.0.0.1",
		UIIP: "127.0.0.1", UIPort: 8233, UIPermissions: []string{"temporal-system:admin"},
	}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("got  %+v\nwant %+v", o, want)
	}
}

// --policy is repeatable and comma-separated, in order; --shadow-policy stays one path.
func TestParseStartDevPolicies(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c.tar.gz")
	for _, p := range []string{a, b, c} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, nil},
		{[]string{"--policy", a}, []string{a}},
		{[]string{"--policy", a, "--policy", b}, []string{a, b}},
		{[]string{"--policy", a + "," + b, "--policy", c}, []string{a, b, c}},
	} {
		o, err := ParseStartDev(tc.args, testEnv(t))
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if !reflect.DeepEqual(o.Policy, tc.want) {
			t.Errorf("%q: policy %q, want %q", tc.args, o.Policy, tc.want)
		}
		e, err := ParseEval(append([]string{"--api", "X", "--permissions", "none"}, tc.args...), testEnv(t))
		if err != nil || !reflect.DeepEqual(e.Policy, tc.want) {
			t.Errorf("eval %q: policy %q (%v), want %q", tc.args, e.Policy, err, tc.want)
		}
	}
	if _, err := ParseStartDev([]string{"--shadow-policy", a + "," + b}, testEnv(t)); err == nil || !strings.Contains(err.Error(), "--shadow-policy "+a+","+b+": no such file or directory") {
		t.Errorf("--shadow-policy with two paths: %v, want it taken as one path", err)
	}
}

func TestParseStartDevStatusAddr(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--port", "9000"}, "127.0.0.1:9020"},
		{[]string{"--status-addr", "-1"}, ""},
		{[]string{"--status-addr", ""}, ""},
		{[]string{"--status-addr", "127.0.0.1:0"}, "127.0.0.1:0"},
		{[]string{"--status-addr", "[::1]:8080"}, "[::1]:8080"},
	} {
		o, err := ParseStartDev(tc.args, testEnv(t))
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if o.StatusAddr != tc.want {
			t.Errorf("%q: status addr %q, want %q", tc.args, o.StatusAddr, tc.want)
		}
	}
}

func TestParseStartServicesReplaceDefault(t *testing.T) {
	o, err := ParseStart([]string{"--config", t.TempDir(), "--service", "frontend", "--service", "internal-frontend"}, testEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"frontend", "internal-frontend"}; !reflect.DeepEqual(o.Services, want) {
		t.Errorf("services %q, want %q", o.Services, want)
	}
	o, err = ParseStart([]string{"--config", t.TempDir()}, testEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"frontend", "history", "matching", "worker"}; !reflect.DeepEqual(o.Services, want) {
		t.Errorf("default services %q, want %q", o.Services, want)
	}
}

func TestParseEvalNone(t *testing.T) {
	o, err := ParseEval([]string{"--api", "GetSystemInfo", "--permissions", "none"}, testEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	if o.Permissions == nil || len(o.Permissions) != 0 {
		t.Errorf("permissions %q, want empty non-nil (no token)", o.Permissions)
	}
}

func TestDefaultStateDir(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"TEMPORAL_OPA_STATE_DIR": "/s", "XDG_STATE_HOME": "/x", "HOME": "/h"}, "/s"},
		{map[string]string{"XDG_STATE_HOME": "/x", "HOME": "/h"}, "/x/temporal-opa"},
		{map[string]string{"HOME": "/h"}, "/h/.local/state/temporal-opa"},
		{map[string]string{}, ".temporal-opa"},
	}
	for _, tc := range tests {
		if got := DefaultStateDir(env(tc.vars)); got != tc.want {
			t.Errorf("DefaultStateDir(%v) = %q, want %q", tc.vars, got, tc.want)
		}
	}
}

func TestOneLine(t *testing.T) {
	in := "policy not activated (compile): 1 error occurred: /temporal/custom/custom.rego:4: rego_type_error: undefined ref: input.target.metod\n" +
		"\tinput.target.metod\n\t             ^\n\t             have: \"metod\"\n\t             want (one of): [\"method\" \"namespace\"]"
	want := `policy not activated (compile): 1 error occurred: /temporal/custom/custom.rego:4: rego_type_error: undefined ref: input.target.metod; have: "metod"; want (one of): ["method" "namespace"]`
	if got := OneLine(in); got != want {
		t.Errorf("OneLine\n got: %s\nwant: %s", got, want)
	}
	if got := OneLine("plain"); got != "plain" {
		t.Errorf("OneLine(plain) = %q", got)
	}
}

func TestParseStartDevWebUI(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args      []string
		wantIP    string
		wantPort  int
		wantPerms []string
		headless  bool
	}{
		{"port follows the frontend, ip stays on loopback", []string{"--ip", "0.0.0.0", "--port", "9000"}, "127.0.0.1", 10000, []string{"temporal-system:admin"}, false},
		{"dev identity on the network, asked for", []string{"--ui-ip", "0.0.0.0", "--ui-insecure-dev-identity-on-network"}, "0.0.0.0", 8233, []string{"temporal-system:admin"}, false},
		{"ipv6 loopback", []string{"--ui-ip", "::1"}, "::1", 8233, []string{"temporal-system:admin"}, false},
		{"own ip and port", []string{"--ui-ip", "127.0.0.2", "--ui-port", "8080"}, "127.0.0.2", 8080, []string{"temporal-system:admin"}, false},
		{"permissions", []string{"--ui-permissions", "default:read,orders:write"}, "127.0.0.1", 8233, []string{"default:read", "orders:write"}, false},
		{"headless", []string{"--headless"}, "", 0, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseStartDev(tc.args, testEnv(t))
			if err != nil {
				t.Fatal(err)
			}
			if o.UIIP != tc.wantIP || o.UIPort != tc.wantPort || o.Headless != tc.headless || !reflect.DeepEqual(o.UIPermissions, tc.wantPerms) {
				t.Errorf("got ui-ip %q ui-port %d headless %v perms %q, want %q %d %v %q",
					o.UIIP, o.UIPort, o.Headless, o.UIPermissions, tc.wantIP, tc.wantPort, tc.headless, tc.wantPerms)
			}
		})
	}
}

// --ip exposes the frontend only: the UI and the metrics port stay on loopback
// unless their own flags say otherwise.
func TestParseStartDevListeners(t *testing.T) {
	for _, tc := range []struct {
		name                string
		args                []string
		wantUIIP, wantMetIP string
	}{
		{"defaults", nil, "127.0.0.1", "127.0.0.1"},
		{"frontend on all addresses", []string{"--ip", "0.0.0.0", "--metrics-port", "9090"}, "127.0.0.1", "127.0.0.1"},
		{"frontend on a lan address", []string{"--ip", "192.0.2.10"}, "127.0.0.1", "127.0.0.1"},
		{"metrics on the network, asked for", []string{"--ip", "0.0.0.0", "--metrics-ip", "0.0.0.0", "--metrics-port", "9090"}, "127.0.0.1", "0.0.0.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseStartDev(tc.args, testEnv(t))
			if err != nil {
				t.Fatal(err)
			}
			if o.UIIP != tc.wantUIIP || o.MetricsIP != tc.wantMetIP {
				t.Errorf("ui-ip %q metrics-ip %q, want %q %q", o.UIIP, o.MetricsIP, tc.wantUIIP, tc.wantMetIP)
			}
		})
	}
	// With --ui-config the file decides (OIDC login injects nothing): start-dev
	// checks it once read, so the command line passes.
	ui := filepath.Join(t.TempDir(), "ui.yaml")
	if err := os.WriteFile(ui, []byte("auth:\n  enabled: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseStartDev([]string{"--ui-ip", "0.0.0.0", "--ui-config", ui}, testEnv(t)); err != nil {
		t.Errorf("--ui-ip 0.0.0.0 --ui-config: %v", err)
	}
}

// start reads the variables of Temporal's server image (and Helm chart) when the
// matching flags are not given; a flag wins over its variable.
func TestParseStartEnvironment(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config_template.yaml")
	authz := filepath.Join(dir, "authz.yaml")
	other := filepath.Join(dir, "other.yaml")
	for _, f := range []string{cfg, authz, other} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	chart := map[string]string{EnvConfigFile: cfg, EnvServices: "frontend", EnvAuthzFile: authz}
	tests := []struct {
		name    string
		args    []string
		vars    map[string]string
		want    Start // only the fields compared below
		wantErr string
	}{
		{name: "chart environment alone", vars: chart, want: Start{ConfigFile: cfg, Services: []string{"frontend"}, AuthzFile: authz,
			ConfigFrom: EnvConfigFile, ServicesFrom: EnvServices, AuthzFrom: EnvAuthzFile}},
		{name: "comma list with spaces", vars: map[string]string{EnvConfigFile: cfg, EnvServices: " history, matching ,worker"},
			want: Start{ConfigFile: cfg, Services: []string{"history", "matching", "worker"}, ConfigFrom: EnvConfigFile, ServicesFrom: EnvServices, AuthzFrom: "default"}},
		{name: "flags win", args: []string{"--config-file", other, "--service", "history", "--authz", other}, vars: chart,
			want: Start{ConfigFile: other, Services: []string{"history"}, AuthzFile: other, ConfigFrom: "--config-file", ServicesFrom: "--service", AuthzFrom: "--authz"}},
		{name: "--config wins over the config file variable", args: []string{"--config", dir}, vars: chart,
			want: Start{ConfigDir: dir, Services: []string{"frontend"}, AuthzFile: authz, ConfigFrom: "--config", ServicesFrom: EnvServices, AuthzFrom: EnvAuthzFile}},
		{name: "no flags, no variables", args: []string{"--config", dir},
			want: Start{ConfigDir: dir, Services: []string{"frontend", "history", "matching", "worker"}, ConfigFrom: "--config", ServicesFrom: "default", AuthzFrom: "default"}},
		{name: "empty variables are unset", args: []string{"--config-file", cfg}, vars: map[string]string{EnvServices: " ", EnvAuthzFile: ""},
			want: Start{ConfigFile: cfg, Services: []string{"frontend", "history", "matching", "worker"}, ConfigFrom: "--config-file", ServicesFrom: "default", AuthzFrom: "default"}},

		{name: "missing config file", vars: map[string]string{EnvConfigFile: filepath.Join(dir, "nope.yaml")},
			wantErr: "start: " + EnvConfigFile + "=" + filepath.Join(dir, "nope.yaml") + ": no such file; set it to Temporal's config file (Temporal's Helm chart mounts /etc/temporal/config/config_template.yaml), or give --config-file"},
		{name: "missing authz file", vars: map[string]string{EnvConfigFile: cfg, EnvAuthzFile: "/etc/temporal-opa/authz.yaml"},
			wantErr: "start: " + EnvAuthzFile + "=/etc/temporal-opa/authz.yaml: no such file; set it to temporal-opa's settings file (jwt, policy, status), or give --authz"},
		{name: "unknown service", vars: map[string]string{EnvConfigFile: cfg, EnvServices: "frontend,web"},
			wantErr: `start: TEMPORAL_SERVICES="frontend,web": "web" is not a Temporal service; choose from frontend, internal-frontend, history, matching, worker`},
		{name: "empty service", vars: map[string]string{EnvConfigFile: cfg, EnvServices: "frontend,,history"},
			wantErr: `start: TEMPORAL_SERVICES="frontend,,history": empty entry; want a comma-separated list of frontend, internal-frontend, history, matching, worker`},
		{name: "no config anywhere", vars: map[string]string{EnvServices: "frontend"},
			wantErr: "start: --config config: no such directory; give Temporal's config directory (as temporal-server start --config), --config-file FILE or set " + EnvConfigFile},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Chdir(dir) // no ./config here
			o, err := ParseStart(tc.args, Env{Getenv: func(k string) string { return tc.vars[k] }})
			if tc.wantErr != "" {
				var ue *UsageError
				if !errors.As(err, &ue) || ue.Msg != tc.wantErr {
					t.Fatalf("error %v\nwant %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want.ConfigDir == "" {
				tc.want.ConfigDir = "config"
			}
			got := Start{ConfigDir: o.ConfigDir, ConfigFile: o.ConfigFile, Services: o.Services, AuthzFile: o.AuthzFile,
				ConfigFrom: o.ConfigFrom, ServicesFrom: o.ServicesFrom, AuthzFrom: o.AuthzFrom}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// checkFlagErrors runs the cases: each must be a one-line *UsageError with
// the message of the case, pointing at --help.
func checkFlagErrors(t *testing.T, tests []flagErrorCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.parse(tc.args, testEnv(t))
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("error %v (%T), want a *UsageError", err, err)
			}
			if ue.Msg != tc.want {
				t.Errorf("message\n got: %s\nwant: %s", ue.Msg, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("message has several lines: %q", err.Error())
			}
			if !strings.HasSuffix(err.Error(), "--help')") {
				t.Errorf("message %q does not point at --help", err.Error())
			}
		})
	}
}
