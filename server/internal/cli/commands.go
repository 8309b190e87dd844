package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/temporal-opa/temporal-opa/server/internal/devca"
)

// StartDev is the command line of "temporal-opa start-dev".
type StartDev struct {
	IP           string        // frontend address
	Port         int           // frontend gRPC port
	HTTPPort     int           // frontend HTTP API port; 0 = Port+HTTPPortOffset, -1 = off
	DBFilename   string        // SQLite file; "" = in memory
	Namespaces   []string      // namespaces to create; always includes "default"
	StateDir     string        // where the dev signing key lives
	Policy       []string      // bundle directories or tarballs, each watched; none = embedded default
	OPAConfig    string        // OPA configuration file: remote bundles, decision logs
	DecisionLog  string        // console decision-log events to this file; "-" = stdout; "" = off
	MetricsPort  int           // Prometheus /metrics port; 0 = off
	MetricsIP    string        // IP of the /metrics port (default 127.0.0.1, whatever IP)
	DryRun       bool          // evaluate and record every call, then allow it
	ShadowPolicy string        // bundle decided beside the enforced policy; "" = none
	StatusAddr   string        // status endpoint host:port; "" = off (flag default: 127.0.0.1:Port+StatusPortOffset)
	LogLevel     string        // debug, info, warn, error
	LogFormat    string        // console or json
	TokenTTL     time.Duration // lifetime of the printed tokens
	AuthzFile    string        // authz settings as start takes them (jwt, policy; not status); the dev key stays trusted
	TLS          bool          // mTLS with the dev CA of StateDir: client certificates required

	// The Web UI.
	Headless               bool     // no Web UI
	UIIP                   string   // default 127.0.0.1, whatever IP
	UIPort                 int      // default Port+UIPortOffset
	UIConfig               string   // ui-server YAML config (OIDC login, codec, ...); "" = dev identity
	UIPermissions          []string // the dev identity's permissions when the UI has no OIDC login
	UIDevIdentityOnNetwork bool     // allow a non-loopback UIIP without OIDC login: everyone who reaches it acts with UIPermissions
}

// DefaultUIPermissions are the dev UI identity's permissions.
var DefaultUIPermissions = []string{"temporal-system:admin"}

// ParseStartDev parses the flags of start-dev.
func ParseStartDev(args []string, env Env) (StartDev, error) {
	var o StartDev
	f := newFlagSet("start-dev", "Run a secured single-process Temporal server for development: frontend, history, matching,\n"+
		"worker and internal-frontend, SQLite, a dev signing key whose JWKS is served on loopback, and\n"+
		"every call authorized by the OPA policy. Prints ready-to-use tokens once up.", env)
	f.StringVar(&o.IP, "ip", "127.0.0.1", "IP address the frontend listens on")
	f.IntVar(&o.Port, "port", 7233, "frontend gRPC port")
	f.IntVar(&o.HTTPPort, "http-port", 0, fmt.Sprintf("frontend HTTP API port, authorized like gRPC (default --port + %d; -1 disables it)", HTTPPortOffset))
	f.StringVar(&o.DBFilename, "db-filename", "", "SQLite file to keep state across restarts (default: in memory)")
	f.list(&o.Namespaces, "namespace", nil, "`NAME` of a namespace to create besides default; repeatable or comma-separated")
	f.StringVar(&o.StateDir, "state-dir", DefaultStateDir(env.getenv), "directory of the dev signing key, created on first start")
	f.list(&o.Policy, "policy", nil, "policy bundle `PATH` (directory or opa build tarball) layered on the embedded default policy; watched:\nchanges are activated without a restart; repeatable or comma-separated: bundles with distinct roots\nare active together, each under policy/<base name>")
	f.StringVar(&o.OPAConfig, "opa-config", "", "standard OPA configuration `FILE`: remote bundles (services, bundles, keys) and decision logs (decision_logs)")
	f.StringVar(&o.DecisionLog, "decision-log", "", "write a decision-log event (JSON line) for every call to `PATH`, or - for stdout")
	f.IntVar(&o.MetricsPort, "metrics-port", 0, "serve Prometheus metrics (Temporal's and the policy's) at http://<--metrics-ip>:`PORT`/metrics (default: off)")
	f.StringVar(&o.MetricsIP, "metrics-ip", "127.0.0.1", "IP address the metrics port listens on")
	f.BoolVar(&o.DryRun, "dry-run", false, "evaluate and record every call, then allow it whatever the policy decides: NOTHING IS ENFORCED (bad tokens are still refused)")
	f.StringVar(&o.ShadowPolicy, "shadow-policy", "", "bundle `PATH` decided beside the enforced policy on every call, never changing a result; disagreements are counted and logged; watched")
	f.StringVar(&o.StatusAddr, "status-addr", "", fmt.Sprintf("`HOST:PORT` of the status endpoint (GET /status, /healthz) (default 127.0.0.1:<--port + %d>; -1 disables it)", StatusPortOffset))
	f.StringVar(&o.LogLevel, "log-level", "warn", "server log level: debug, info, warn or error")
	f.StringVar(&o.LogFormat, "log-format", "console", "server log format: console or json")
	f.DurationVar(&o.TokenTTL, "token-ttl", 24*time.Hour, "lifetime of the tokens printed at start")
	f.StringVar(&o.AuthzFile, "authz", "", "temporal-opa settings `FILE` as start takes them (its jwt and policy sections; the status\nendpoint is --status-addr), e.g. to trust an identity provider's tokens (jwt.issuer); tokens of\nthe dev signing key stay trusted")
	f.BoolVar(&o.TLS, "tls", false, "require mTLS: client certificates signed by the dev CA in --state-dir (created on first use;\nissue more with '"+Program+" cert'); tokens keep working alongside certificates")
	f.BoolVar(&o.Headless, "headless", false, "do not serve the Temporal Web UI")
	f.StringVar(&o.UIIP, "ui-ip", "127.0.0.1", "IP address the Web UI listens on (not --ip: without OIDC login the UI acts as its dev identity\nfor whoever reaches it; a non-loopback address needs --ui-config with auth enabled or\n--"+UIDevIdentityOnNetworkFlag+")")
	f.BoolVar(&o.UIDevIdentityOnNetwork, UIDevIdentityOnNetworkFlag, false, "INSECURE: serve the Web UI's dev identity (--ui-permissions, by default system admin) on a\nnon-loopback --ui-ip: EVERYONE WHO REACHES THE PORT ACTS WITH IT")
	f.IntVar(&o.UIPort, "ui-port", 0, fmt.Sprintf("Web UI port (default --port + %d)", UIPortOffset))
	f.StringVar(&o.UIConfig, "ui-config", "", "Temporal UI server config `FILE` (YAML: auth.enabled, auth.providers, codec, ...):\nwith auth enabled users log in with the identity provider and act with their own tokens")
	f.list(&o.UIPermissions, "ui-permissions", DefaultUIPermissions, "`LIST` of <namespace>:<permission> the Web UI acts with when it has no OIDC login\n(anyone who reaches the UI port acts with them)")
	if err := f.parse(args); err != nil {
		return o, err
	}
	if err := checkEnv(env); err != nil {
		return o, err
	}
	if err := checkIP(f, "ip", o.IP); err != nil {
		return o, err
	}
	if err := checkPort(f, "port", o.Port); err != nil {
		return o, err
	}
	if o.HTTPPort != 0 && o.HTTPPort != -1 {
		if err := checkPort(f, "http-port", o.HTTPPort); err != nil {
			return o, err
		}
	}
	if err := checkLog(f, o.LogLevel, o.LogFormat); err != nil {
		return o, err
	}
	if err := positiveDuration(f, "token-ttl", o.TokenTTL); err != nil {
		return o, err
	}
	if err := checkFilesExist(f, "policy", o.Policy); err != nil {
		return o, err
	}
	if err := checkFileExists(f, "opa-config", o.OPAConfig); err != nil {
		return o, err
	}
	if err := checkFileExists(f, "shadow-policy", o.ShadowPolicy); err != nil {
		return o, err
	}
	if o.MetricsPort != 0 {
		if err := checkPort(f, "metrics-port", o.MetricsPort); err != nil {
			return o, err
		}
	}
	if err := checkIP(f, "metrics-ip", o.MetricsIP); err != nil {
		return o, err
	}
	if err := o.statusAddr(f); err != nil {
		return o, err
	}
	if o.StateDir == "" {
		return o, f.errorf("--state-dir is empty: give a directory for the dev signing key")
	}
	if err := checkFileExists(f, "authz", o.AuthzFile); err != nil {
		return o, err
	}
	if err := o.webUI(f); err != nil {
		return o, err
	}
	ns := []string{"default"}
	for _, n := range o.Namespaces {
		if n == "temporal-system" {
			return o, f.errorf("--namespace temporal-system: that is the server's own namespace and always exists")
		}
		if !containsString(ns, n) {
			ns = append(ns, n)
		}
	}
	o.Namespaces = ns
	return o, nil
}

// statusAddr resolves --status-addr: unset means 127.0.0.1:<port+20>, -1 or
// "" means off.
func (o *StartDev) statusAddr(f *flagSet) error {
	set := false
	f.Visit(func(fl *flag.Flag) { set = set || fl.Name == "status-addr" })
	switch {
	case !set:
		port, err := StatusPortOffset.From(o.Port)
		if err != nil {
			return f.errorf("%v", err)
		}
		o.StatusAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	case o.StatusAddr == "-1" || o.StatusAddr == "":
		o.StatusAddr = ""
	default:
		_, port, err := net.SplitHostPort(o.StatusAddr)
		if p, perr := strconv.Atoi(port); err != nil || perr != nil || p < 0 || p > 65535 {
			return f.errorf("--status-addr %q: want HOST:PORT such as 127.0.0.1:7253, or -1 to disable it", o.StatusAddr)
		}
	}
	return nil
}

// webUI checks and resolves the Web UI flags.
func (o *StartDev) webUI(f *flagSet) error {
	set := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if o.Headless {
		for _, name := range []string{"ui-ip", "ui-port", "ui-config", "ui-permissions", UIDevIdentityOnNetworkFlag} {
			if set[name] {
				return f.errorf("--%s has no effect with --headless: drop one of them", name)
			}
		}
		o.UIIP, o.UIPermissions = "", nil
		return nil
	}
	if err := checkIP(f, "ui-ip", o.UIIP); err != nil {
		return err
	}
	if o.UIPort == 0 {
		port, err := UIPortOffset.From(o.Port)
		if err != nil {
			return f.errorf("%v", err)
		}
		o.UIPort = port
	} else if err := checkPort(f, "ui-port", o.UIPort); err != nil {
		return err
	}
	if err := checkFileExists(f, "ui-config", o.UIConfig); err != nil {
		return err
	}
	if len(o.UIPermissions) == 0 {
		return f.errorf("--ui-permissions is empty: give e.g. default:read, or --headless to run without the UI")
	}
	if err := checkPermissions(f, "ui-permissions", o.UIPermissions); err != nil {
		return err
	}
	// With --ui-config, whether users log in with OIDC is known once the file
	// is read: start-dev checks it then (devserver.CheckUIExposure).
	if o.UIConfig == "" && !o.UIDevIdentityOnNetwork && !IsLoopback(o.UIIP) {
		return f.errorf("%s", UIExposureMessage(o.UIIP, o.UIPermissions))
	}
	return nil
}

// UIDevIdentityOnNetworkFlag is the flag that serves the Web UI's dev identity
// on a non-loopback address.
const UIDevIdentityOnNetworkFlag = "ui-insecure-dev-identity-on-network"

// UIExposureMessage is the error for a Web UI that would serve its dev
// identity (perms) on the non-loopback ip.
func UIExposureMessage(ip string, perms []string) string {
	return fmt.Sprintf("--ui-ip %s is not a loopback address, and the Web UI acts as its dev identity (%s) for whoever reaches it: "+
		"keep it on loopback (drop --ui-ip), log users in with OIDC (--ui-config FILE with auth.enabled: true), "+
		"or, to give everyone who reaches the port those permissions, add --%s",
		ip, strings.Join(perms, ","), UIDevIdentityOnNetworkFlag)
}

// IsLoopback reports whether ip is a loopback address (or "localhost").
func IsLoopback(ip string) bool {
	parsed := net.ParseIP(ip)
	return ip == "localhost" || (parsed != nil && parsed.IsLoopback())
}

func checkLog(f *flagSet, level, format string) error {
	switch level {
	case "debug", "info", "warn", "error":
	default:
		return f.errorf("--log-level %q: must be debug, info, warn or error", level)
	}
	switch format {
	case "console", "json":
	default:
		return f.errorf("--log-format %q: must be console or json", format)
	}
	return nil
}

// TemporalServices are the service names "start --service" accepts.
var TemporalServices = []string{"frontend", "internal-frontend", "history", "matching", "worker"}

// The environment variables of "temporal-opa start": the first two are those of
// Temporal's server image (temporal-server start reads them, and Temporal's Helm
// chart sets them in every server pod), the third is temporal-opa's own. A flag
// given on the command line wins over its variable.
const (
	EnvConfigFile = "TEMPORAL_SERVER_CONFIG_FILE_PATH" // --config-file
	EnvServices   = "TEMPORAL_SERVICES"                // --service, comma-separated
	EnvAuthzFile  = "TEMPORAL_OPA_AUTHZ_FILE"          // --authz
)

// Start is the command line of "temporal-opa start".
type Start struct {
	ConfigDir  string   // Temporal config directory (as temporal-server --config)
	Env        string   // Temporal environment (development.yaml, production.yaml, ...)
	Zone       string   // availability zone
	ConfigFile string   // a single config file instead of ConfigDir/Env/Zone
	Services   []string // services to start
	AuthzFile  string   // temporal-opa's own settings (jwt, policy)

	// Where each setting came from, for the start-up log and error messages:
	// a flag ("--config-file"), an environment variable (EnvConfigFile) or
	// "default".
	ConfigFrom, ServicesFrom, AuthzFrom string
}

// ParseStart parses the flags of start. Settings whose flags are not given come
// from EnvConfigFile, EnvServices and EnvAuthzFile, as in Temporal's server image.
func ParseStart(args []string, env Env) (Start, error) {
	var o Start
	f := newFlagSet("start", "Run Temporal services from Temporal's own configuration (persistence, TLS, cluster settings),\n"+
		"with every call authorized by the OPA policy. global.authorization's JWT settings keep their\n"+
		"meaning; temporal-opa's own settings come from --authz.\n\n"+
		"Without flags it reads the environment of Temporal's server image and Helm chart: the config file\n"+
		"from "+EnvConfigFile+" (a '# enable-template' file is rendered as Temporal renders it), the\n"+
		"services from "+EnvServices+" (comma-separated) and the authz file from "+EnvAuthzFile+".\n"+
		"A flag wins over its variable.", env)
	f.StringVar(&o.ConfigDir, "config", "config", "Temporal config `DIR` (as temporal-server --config)")
	f.StringVar(&o.Env, "env", "development", "Temporal config environment: loads DIR/<env>.yaml")
	f.StringVar(&o.Zone, "zone", "", "availability zone: also loads DIR/<env>_<zone>.yaml")
	f.StringVar(&o.ConfigFile, "config-file", "", "a single Temporal config `FILE` instead of --config/--env/--zone (env "+EnvConfigFile+")")
	f.list(&o.Services, "service", []string{"frontend", "history", "matching", "worker"},
		"`NAME` of a service to start, repeatable: "+strings.Join(TemporalServices, ", ")+" (env "+EnvServices+", comma-separated)")
	f.StringVar(&o.AuthzFile, "authz", "", "temporal-opa settings `FILE` (YAML: jwt, policy, status) (env "+EnvAuthzFile+")")
	if err := f.parse(args); err != nil {
		return o, err
	}
	if err := checkEnv(env); err != nil {
		return o, err
	}
	set := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if set["config-file"] && (set["config"] || set["env"] || set["zone"]) {
		return o, f.errorf("--config-file cannot be combined with --config, --env or --zone")
	}

	switch v := strings.TrimSpace(env.getenv(EnvConfigFile)); {
	case set["config-file"]:
		o.ConfigFrom = "--config-file"
	case set["config"] || set["env"] || set["zone"]:
		o.ConfigFrom = "--config"
	case v != "":
		o.ConfigFile, o.ConfigFrom = v, EnvConfigFile
	default:
		o.ConfigFrom = "default"
	}
	switch v := strings.TrimSpace(env.getenv(EnvServices)); {
	case set["service"]:
		o.ServicesFrom = "--service"
	case v != "":
		o.Services, o.ServicesFrom = nil, EnvServices
		for s := range strings.SplitSeq(v, ",") {
			if s = strings.TrimSpace(s); s == "" {
				return o, f.errorf("%s=%q: empty entry; want a comma-separated list of %s", EnvServices, v, strings.Join(TemporalServices, ", "))
			}
			o.Services = append(o.Services, s)
		}
	default:
		o.ServicesFrom = "default"
	}
	switch v := strings.TrimSpace(env.getenv(EnvAuthzFile)); {
	case set["authz"]:
		o.AuthzFrom = "--authz"
	case v != "":
		o.AuthzFile, o.AuthzFrom = v, EnvAuthzFile
	default:
		o.AuthzFrom = "default"
	}

	for _, s := range o.Services {
		if !containsString(TemporalServices, s) {
			if o.ServicesFrom == EnvServices {
				return o, f.errorf("%s=%q: %q is not a Temporal service; choose from %s", EnvServices, env.getenv(EnvServices), s, strings.Join(TemporalServices, ", "))
			}
			return o, f.errorf("--service %q: not a Temporal service; choose from %s", s, strings.Join(TemporalServices, ", "))
		}
	}
	if err := o.checkFile(f, "authz", o.AuthzFile, o.AuthzFrom, "temporal-opa's settings file (jwt, policy, status)"); err != nil {
		return o, err
	}
	if err := o.checkFile(f, "config-file", o.ConfigFile, o.ConfigFrom, "Temporal's config file (Temporal's Helm chart mounts /etc/temporal/config/config_template.yaml)"); err != nil {
		return o, err
	}
	if o.ConfigFile == "" {
		if err := checkFileExists(f, "config", o.ConfigDir); err != nil {
			return o, f.errorf("--config %s: no such directory; give Temporal's config directory (as temporal-server start --config), --config-file FILE or set %s", o.ConfigDir, EnvConfigFile)
		}
	}
	return o, nil
}

// checkFile is checkFileExists for a setting that may come from a variable.
func (o Start) checkFile(f *flagSet, flagName, path, from, what string) error {
	if path == "" || !strings.HasPrefix(from, "TEMPORAL_") {
		return checkFileExists(f, flagName, path)
	}
	if _, err := os.Stat(path); err != nil {
		reason := "no such file"
		if !errors.Is(err, os.ErrNotExist) {
			reason = errors.Unwrap(err).Error()
		}
		return f.errorf("%s=%s: %s; set it to %s, or give --%s", from, path, reason, what, flagName)
	}
	return nil
}

// Token is the command line of "temporal-opa token".
type Token struct {
	Permissions []string
	Subject     string
	TTL         time.Duration
	StateDir    string
	KeyFile     string // overrides StateDir
	Audience    []string
}

// ParseToken parses the flags of token.
func ParseToken(args []string, env Env) (Token, error) {
	var o Token
	f := newFlagSet("token", "Mint a JWT signed with the dev signing key (the one start-dev uses). The token is printed\n"+
		"alone on the last line, e.g.: TOKEN=$("+Program+" token --permissions default:read | tail -1)", env)
	f.list(&o.Permissions, "permissions", nil, "`LIST` of <namespace>:<permission>, comma-separated, e.g. default:read,default:write\n(permissions: read, write, worker, admin; the system scope is temporal-system)")
	f.StringVar(&o.Subject, "sub", "dev-user", "subject (sub claim)")
	f.DurationVar(&o.TTL, "ttl", time.Hour, "lifetime of the token")
	f.StringVar(&o.StateDir, "state-dir", DefaultStateDir(env.getenv), "directory of the dev signing key")
	f.StringVar(&o.KeyFile, "key", "", "signing key `FILE` (PEM) instead of the one in --state-dir")
	f.list(&o.Audience, "aud", nil, "`AUDIENCE` (aud claim), repeatable")
	if err := f.parse(args); err != nil {
		return o, err
	}
	if err := checkEnv(env); err != nil {
		return o, err
	}
	if len(o.Permissions) == 0 {
		return o, f.errorf("--permissions is required, e.g. --permissions default:read,default:write")
	}
	if err := checkPermissions(f, "permissions", o.Permissions); err != nil {
		return o, err
	}
	if o.Subject == "" {
		return o, f.errorf("--sub is empty")
	}
	if err := positiveDuration(f, "ttl", o.TTL); err != nil {
		return o, err
	}
	if err := checkFileExists(f, "key", o.KeyFile); err != nil {
		return o, err
	}
	return o, nil
}

// Cert is the command line of "temporal-opa cert".
type Cert struct {
	CommonName string
	SPIFFEID   string // the single URI SAN; "" = none
	DNSNames   []string
	Emails     []string
	TTL        time.Duration
	StateDir   string // where the dev CA lives
	CertFile   string // where the certificate is written
	KeyFile    string // where its key is written (mode 0600)
}

// ParseCert parses the flags of cert.
func ParseCert(args []string, env Env) (Cert, error) {
	var o Cert
	var out string
	f := newFlagSet("cert", "Issue a client certificate (ECDSA P-256, client authentication) signed by the dev CA that\n"+
		"start-dev --tls created in --state-dir, and print how to use it.", env)
	f.StringVar(&o.CommonName, "cn", "", "`NAME`: the certificate's subject common name (required)")
	f.StringVar(&o.SPIFFEID, "spiffe-id", "", "`URI` spiffe://trust-domain/path set as the certificate's single URI SAN")
	f.list(&o.DNSNames, "dns", nil, "`NAMES` set as DNS SANs, comma-separated or repeated")
	f.list(&o.Emails, "email", nil, "`ADDRESSES` set as email SANs, comma-separated or repeated")
	f.DurationVar(&o.TTL, "ttl", 24*time.Hour, "lifetime of the certificate")
	f.StringVar(&o.StateDir, "state-dir", DefaultStateDir(env.getenv), "directory of the dev CA")
	f.StringVar(&out, "out", "", "`DIR` to write <cn>.pem and <cn>-key.pem into (default: the current directory)")
	f.StringVar(&o.CertFile, "cert-file", "", "`FILE` to write the certificate to, instead of --out")
	f.StringVar(&o.KeyFile, "key-file", "", "`FILE` to write the private key to (mode 0600), instead of --out")
	if err := f.parse(args); err != nil {
		return o, err
	}
	if err := checkEnv(env); err != nil {
		return o, err
	}
	if o.CommonName == "" {
		return o, f.errorf("--cn is required, e.g. --cn alice")
	}
	if o.SPIFFEID != "" {
		if _, err := devca.CheckSPIFFEID(o.SPIFFEID); err != nil {
			return o, f.errorf("--spiffe-id: %v", err)
		}
	}
	for _, d := range o.DNSNames {
		if d == "" || strings.ContainsAny(d, " /:@") {
			return o, f.errorf("--dns %q: not a DNS name", d)
		}
	}
	for _, e := range o.Emails {
		if at := strings.LastIndex(e, "@"); at <= 0 || at == len(e)-1 || strings.ContainsAny(e, " <>") {
			return o, f.errorf("--email %q: not an email address", e)
		}
	}
	if err := positiveDuration(f, "ttl", o.TTL); err != nil {
		return o, err
	}
	if o.StateDir == "" {
		return o, f.errorf("--state-dir is empty: give the directory of the dev CA")
	}
	switch {
	case (o.CertFile == "") != (o.KeyFile == ""):
		return o, f.errorf("--cert-file and --key-file go together: give both, or --out DIR")
	case o.CertFile != "" && out != "":
		return o, f.errorf("--out and --cert-file/--key-file both say where to write: keep one")
	case o.CertFile != "" && o.CertFile == o.KeyFile:
		return o, f.errorf("--cert-file and --key-file name the same file %s", o.CertFile)
	case o.CertFile == "":
		if out == "" {
			out = "."
		}
		name := certFileName(o.CommonName)
		o.CertFile, o.KeyFile = filepath.Join(out, name+".pem"), filepath.Join(out, name+"-key.pem")
	}
	return o, nil
}

// certFileName is a common name made safe as a file name: every character
// other than letters, digits, '.', '-' and '_' becomes '_'.
func certFileName(cn string) string {
	b := []byte(cn)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	if b[0] == '.' {
		b[0] = '_'
	}
	return string(b)
}

// KeysGen is the command line of "temporal-opa keys gen".
type KeysGen struct {
	StateDir string
	KeyFile  string // overrides StateDir
}

// ParseKeysGen parses the flags of keys gen.
func ParseKeysGen(args []string, env Env) (KeysGen, error) {
	var o KeysGen
	f := newFlagSet("keys gen", "Create an ES256 key pair (PEM, mode 0600) and print its public JWKS. An existing key is never\noverwritten.", env)
	f.StringVar(&o.StateDir, "state-dir", DefaultStateDir(env.getenv), "directory to create the key in")
	f.StringVar(&o.KeyFile, "key", "", "key `FILE` to create instead of the one in --state-dir")
	if err := f.parse(args); err != nil {
		return o, err
	}
	if err := checkEnv(env); err != nil {
		return o, err
	}
	return o, nil
}

// KeysServe is the command line of "temporal-opa keys serve".
type KeysServe struct {
	StateDir string
	KeyFile  string
	Addr     string
}

// ParseKeysServe parses the flags of keys serve.
func ParseKeysServe(args []string, env Env) (KeysServe, error) {
	var o KeysServe
	f := newFlagSet("keys serve", "Serve a signing key's public JWKS over HTTP at /.well-known/jwks.json (and /jwks.json), for\n"+
		"global.authorization.jwtKeyProvider.keySourceURIs or the jwt.jwks_urls of --authz. Ctrl-C stops.", env)
	f.StringVar(&o.StateDir, "state-dir", DefaultStateDir(env.getenv), "directory of the key")
	f.StringVar(&o.KeyFile, "key", "", "key `FILE` instead of the one in --state-dir")
	f.StringVar(&o.Addr, "addr", "127.0.0.1:7280", "`HOST:PORT` to listen on (port 0 picks a free one)")
	if err := f.parse(args); err != nil {
		return o, err
	}
	if err := checkEnv(env); err != nil {
		return o, err
	}
	if _, _, err := splitHostPort(o.Addr); err != nil {
		return o, f.errorf("--addr %q: %v; want HOST:PORT such as 127.0.0.1:7280", o.Addr, err)
	}
	if err := checkFileExists(f, "key", o.KeyFile); err != nil {
		return o, err
	}
	return o, nil
}

// Eval is the command line of "temporal-opa eval".
type Eval struct {
	Token       string   // a JWT; verified with the dev key or --authz's jwt settings
	Permissions []string // instead of Token: claims built from these
	Subject     string
	Claims      map[string]any // with Permissions: the token's own claims (input.claims.jwt), from --claims
	Issuer      string         // with Permissions: the issuer that verified the token (input.claims.issuer)
	Cert        string         // a client certificate (PEM) the caller presents, alone or with a token
	Grants      string         // a JSON file of time-bound grants the server would honour
	API         string         // full API name or bare method name
	Namespace   string
	Policy      []string // bundle paths
	AuthzFile   string   // jwt and policy settings as start uses them
	StateDir    string
	KeyFile     string
	Replay      []string // decision-log files to replay ("-" = stdin) instead of one call
	Format      string   // replay report: pretty or json
}

// ParseEval parses the flags of eval.
func ParseEval(args []string, env Env) (Eval, error) {
	var o Eval
	f := newFlagSet("eval", "Decide one Temporal API call offline, with the same policy the server runs, and print the\n"+
		"decision, the reason and the input document the policy saw, as JSON. No server needed.\nExit status: 0 allowed, 1 denied, 2 bad flags.\n\n"+
		"With --replay EVENTS, decide every decision of a decision log again with --policy (layered on the\n"+
		"embedded default) and report those that changed. Exit status: 0 nothing changed, 1 something\n"+
		"changed, 2 bad input.", env)
	o.callerFlags(f, true)
	f.list(&o.Policy, "policy", nil, "policy bundle `PATH` layered on the embedded default; repeatable or comma-separated, as start-dev's")
	f.list(&o.Replay, "replay", nil, "decision-log `EVENTS` to decide again instead of one call: console JSON lines or uploaded batches, gzip or not; repeatable; - reads stdin")
	f.format(&o.Format, "replay report")
	if err := f.parse(args); err != nil {
		return o, err
	}
	if err := checkEnv(env); err != nil {
		return o, err
	}
	if len(o.Replay) > 0 {
		switch {
		case o.API != "" || o.Token != "" || len(o.Permissions) > 0:
			return o, f.errorf("--replay decides recorded calls: drop --api, --token and --permissions")
		}
		if err := checkFormat(f, &o.Format); err != nil {
			return o, err
		}
		for _, r := range o.Replay {
			if r != "-" {
				if err := checkFileExists(f, "replay", r); err != nil {
					return o, err
				}
			}
		}
		if err := checkFilesExist(f, "policy", o.Policy); err != nil {
			return o, err
		}
		return o, checkFileExists(f, "authz", o.AuthzFile)
	}
	if err := o.checkCaller(f, true); err != nil {
		return o, err
	}
	if err := checkFilesExist(f, "policy", o.Policy); err != nil {
		return o, err
	}
	return o, checkFileExists(f, "grants", o.Grants)
}

// callerFlags defines the flags that say who calls (and, with api, which API):
// those of eval, shared by policy explain and policy can-i.
func (o *Eval) callerFlags(f *flagSet, api bool) {
	f.StringVar(&o.Token, "token", "", "caller's `JWT` (verified with the dev key, or with --authz's jwt settings); '-' reads stdin")
	f.list(&o.Permissions, "permissions", nil, "instead of --token: the caller's `LIST` of <namespace>:<permission>; \"none\" for a call with no token")
	f.StringVar(&o.Subject, "sub", "dev-user", "subject when --permissions is used")
	f.Func("claims", "instead of --token, alone or with --permissions: the token's own claims as a JSON `OBJECT` (input.claims.jwt), e.g.\n'{\"groups\": [\"payments-devs\"]}', for rules that read them (role rules, attribute rules)", func(v string) error {
		dec := json.NewDecoder(strings.NewReader(v))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
			return fmt.Errorf("not a JSON object; give the claims as '{\"groups\": [\"payments-devs\"]}'")
		}
		o.Claims = m
		return nil
	})
	f.StringVar(&o.Issuer, "issuer", "", "with --permissions or --claims: the `URL` of the issuer that verified the token (input.claims.issuer),\nfor rules bound to an issuer")
	f.StringVar(&o.Cert, "cert", "", "client certificate `FILE` (PEM) the caller presents, as the frontend's TLS layer verified it: alone\n(input.claims.tls, no roles of its own), or with --token (a certificate-bound token is checked against it)\nor --permissions")
	f.StringVar(&o.Grants, "grants", "", "time-bound access grants `FILE` the server would honour now (JSON: the output of\n`temporal-opa grant list -o json`, or an array of grants), for calls made under a grant")
	if api {
		f.StringVar(&o.API, "api", "", "`API` called: a method name such as StartWorkflowExecution, or a full name such as\n/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution")
	}
	f.StringVar(&o.Namespace, "namespace", "default", "target namespace (empty for cluster-scoped APIs)")
	f.StringVar(&o.AuthzFile, "authz", "", "temporal-opa settings `FILE` as given to start (jwt and policy sections)")
	f.StringVar(&o.StateDir, "state-dir", DefaultStateDir(f.env.getenv), "directory of the dev signing key that verifies --token")
	f.StringVar(&o.KeyFile, "key", "", "signing key `FILE` that verifies --token instead of the one in --state-dir")
}

// checkCaller validates the flags of callerFlags.
func (o *Eval) checkCaller(f *flagSet, api bool) error {
	switch {
	case api && o.API == "":
		return f.errorf("--api is required, e.g. --api StartWorkflowExecution")
	case o.Token != "" && len(o.Permissions) > 0:
		return f.errorf("give --token or --permissions, not both")
	case o.Token == "" && len(o.Permissions) == 0 && o.Claims == nil && o.Issuer == "" && o.Cert == "":
		return f.errorf("give the caller as --token JWT, --permissions default:read and/or --claims '{\"groups\": [...]}' (a token's permissions and other claims), or --permissions none for no token")
	}
	if (o.Claims != nil || o.Issuer != "") && (o.Token != "" || len(o.Permissions) == 1 && o.Permissions[0] == "none") {
		return f.errorf("--claims and --issuer describe the token of --permissions; a --token has its own claims and issuer, and --permissions none has no token")
	}
	if len(o.Permissions) == 1 && o.Permissions[0] == "none" {
		o.Permissions = []string{}
	} else if err := checkPermissions(f, "permissions", o.Permissions); err != nil {
		return err
	}
	if strings.ContainsAny(o.API, " \t") {
		return f.errorf("--api %q: an API name has no spaces", o.API)
	}
	if err := checkFileExists(f, "authz", o.AuthzFile); err != nil {
		return err
	}
	if err := checkFileExists(f, "cert", o.Cert); err != nil {
		return err
	}
	return checkFileExists(f, "key", o.KeyFile)
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func splitHostPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	var p int
	if _, err := fmt.Sscanf(port, "%d", &p); err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number between 0 and 65535", port)
	}
	return host, p, nil
}
