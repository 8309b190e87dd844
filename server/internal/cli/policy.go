package cli

import (
	"errors"
	"flag"
	"os"
	"strings"
	"time"
)

// Bundle is one BUNDLE argument of the policy commands: a directory or `opa
// build` tarball, optionally named (NAME=PATH).
type Bundle struct {
	Name string // "" when not given: see the commands' help
	Path string
}

// bundleHelp explains the BUNDLE arguments in every policy command's help.
const bundleHelp = "BUNDLE is a bundle directory or `opa build` tarball, layered on the embedded default policy as\n" +
	"the server layers it. One bundle is activated as the server activates policy.bundle, under the name\n" +
	"\"policy\"; several as the server names several policy.bundle paths, policy/<base name of the path>.\n" +
	"NAME=PATH names one as policy.opa_config's bundles are named."

// PolicyTest is the command line of "temporal-opa policy test".
type PolicyTest struct {
	Bundles     []Bundle
	Coverage    bool
	Threshold   float64
	Run         string
	Verbose     bool
	Format      string // pretty or json
	FailOnEmpty bool
	Timeout     time.Duration
}

// ParsePolicyTest parses the command line of policy test.
func ParsePolicyTest(args []string, env Env) (PolicyTest, error) {
	var o PolicyTest
	f := newFlagSet("policy test", "Run the Rego tests (test_* rules, *_test.rego) of the bundles, layered on the embedded default\n"+
		"policy exactly as the server activates them, with input type-checked against the input schema:\n"+
		"`opa test` for temporal-opa policies, with no checkout of temporal-opa. Coverage covers the\n"+
		"bundles' files only.\n"+bundleHelp+"\n"+
		"Exit status: 0 all tests pass, 2 a test failed or coverage is below --threshold, 1 the bundles\n"+
		"do not load or compile (or no test ran, with --fail-on-empty).", env)
	f.args = "BUNDLE..."
	f.BoolVar(&o.Coverage, "coverage", false, "report coverage of the bundles' files (as JSON, as opa test --coverage)")
	f.BoolVar(&o.Coverage, "c", false, "short for --coverage")
	f.Float64Var(&o.Threshold, "threshold", 0, "fail (exit 2) when coverage is below this `PERCENT`; implies --coverage")
	f.StringVar(&o.Run, "run", "", "run only the tests whose names match this `REGEX`")
	f.StringVar(&o.Run, "r", "", "short for --run")
	f.BoolVar(&o.Verbose, "verbose", false, "print every test, and the notes and failures of failed tests")
	f.BoolVar(&o.Verbose, "v", false, "short for --verbose")
	f.format(&o.Format, "output")
	f.BoolVar(&o.FailOnEmpty, "fail-on-empty", false, "exit 1 when no test ran")
	f.DurationVar(&o.Timeout, "timeout", 5*time.Second, "time limit of each test")
	bundles, err := f.parseArgs(args)
	if err != nil {
		return o, err
	}
	if o.Bundles, err = bundleArgs(f, bundles); err != nil {
		return o, err
	}
	if o.Threshold < 0 || o.Threshold > 100 {
		return o, f.errorf("--threshold %v: must be a percentage between 0 and 100", o.Threshold)
	}
	if o.Threshold > 0 {
		o.Coverage = true
	}
	if err := checkFormat(f, &o.Format); err != nil {
		return o, err
	}
	if err := positiveDuration(f, "timeout", o.Timeout); err != nil {
		return o, err
	}
	return o, nil
}

// PolicyCheck is the command line of "temporal-opa policy check".
type PolicyCheck struct {
	Bundles           []Bundle
	Format            string
	DecisionPath      string
	VerificationKey   string // PEM public key file; "" = signatures are not verified
	VerificationKeyID string
	SigningAlg        string
	Scope             string
	ExcludeFiles      []string
}

// ParsePolicyCheck parses the command line of policy check.
func ParsePolicyCheck(args []string, env Env) (PolicyCheck, error) {
	var o PolicyCheck
	f := newFlagSet("policy check", "Make every check the server makes when it activates the bundles (load, custom rule shapes,\n"+
		"roots and layering, reserved names, compilation in strict mode, input schema type-check, decision\n"+
		"path) with the server's own code, and print its errors as the server logs them (file:line).\n"+
		"With --verification-key, signed bundles are verified as the server verifies a bundle with a\n"+
		"signing configuration.\n"+bundleHelp+"\n"+
		"Exit status: 0 the server activates these bundles, 1 it rejects them, 2 bad flags.", env)
	f.args = "BUNDLE..."
	f.format(&o.Format, "output")
	f.StringVar(&o.DecisionPath, "decision-path", "", "the decision rule, as policy.decision_path (default data.temporal.authz.decision)")
	f.StringVar(&o.VerificationKey, "verification-key", "", "PEM `FILE` of the public key that verifies the bundles' signatures (.signatures.json)")
	f.StringVar(&o.VerificationKeyID, "verification-key-id", "default", "`NAME` of the key, as the signature's keyid and the keys section of the OPA config name it")
	f.StringVar(&o.SigningAlg, "signing-alg", "RS256", "signature `ALGORITHM` (RS256, ES256, PS256, ...)")
	f.StringVar(&o.Scope, "scope", "", "scope the signature must have")
	f.list(&o.ExcludeFiles, "exclude-files-verify", nil, "`FILE`s left out of signature verification")
	bundles, err := f.parseArgs(args)
	if err != nil {
		return o, err
	}
	if o.Bundles, err = bundleArgs(f, bundles); err != nil {
		return o, err
	}
	if err := checkFormat(f, &o.Format); err != nil {
		return o, err
	}
	if o.VerificationKey != "" {
		info, err := os.Stat(o.VerificationKey)
		if err != nil {
			return o, checkFileExists(f, "verification-key", o.VerificationKey)
		}
		if info.IsDir() {
			return o, f.errorf("--verification-key %s: is a directory; give the PEM file of the public key", o.VerificationKey)
		}
	}
	return o, nil
}

// PolicyExport is the command line of "temporal-opa policy export".
type PolicyExport struct {
	Dir string
}

// ParsePolicyExport parses the command line of policy export.
func ParsePolicyExport(args []string, env Env) (PolicyExport, error) {
	var o PolicyExport
	f := newFlagSet("policy export", "Write the embedded default policy bundle (.manifest, temporal/authz/authz.rego) and the input\n"+
		"schema (input.schema.json) into DIR, so that `opa test DIR my-bundle`, `opa check --strict\n"+
		"--schema DIR/input.schema.json DIR my-bundle`, editors and linters work with no checkout of\n"+
		"temporal-opa. DIR is created if needed; the files written are replaced, others are left alone.", env)
	f.args = "DIR"
	dirs, err := f.parseArgs(args)
	if err != nil {
		return o, err
	}
	if len(dirs) != 1 {
		return o, f.errorf("give one DIR to write into, e.g. %s policy export .temporal-opa", Program)
	}
	o.Dir = dirs[0]
	return o, nil
}

// PolicyExplain is the command line of "temporal-opa policy explain".
type PolicyExplain struct {
	Eval    // the call and the caller, as eval takes them
	Bundles []Bundle
	Format  string
	Request string // file holding the request message as JSON ("-": stdin)
}

// ParsePolicyExplain parses the command line of policy explain.
func ParsePolicyExplain(args []string, env Env) (PolicyExplain, error) {
	var o PolicyExplain
	f := newFlagSet("policy explain", "Decide one call as eval does and say why: the rules that produced the decision, with their\n"+
		"file:line and values, and OPA's trace of the evaluation trimmed to the decision's package and\n"+
		"package temporal.custom.\n"+bundleHelp+" Without BUNDLE, the policy of --authz, else the\n"+
		"embedded default alone.\n"+
		"Exit status: 0 allowed, 1 denied, 2 bad flags.", env)
	f.args = "[BUNDLE...]"
	o.callerFlags(f, true)
	f.StringVar(&o.Request, "request", "", "`FILE` holding the request message as JSON (proto field names, as input.request shows it); - reads stdin")
	f.format(&o.Format, "output")
	var err error
	if o.Bundles, err = o.parseCaller(f, args, env, true); err != nil {
		return o, err
	}
	if o.Request == "-" && o.Token == "-" {
		return o, f.errorf("--request - and --token - both read stdin; give one of them as a file")
	}
	if o.Request != "-" {
		if err := checkFileExists(f, "request", o.Request); err != nil {
			return o, err
		}
	}
	return o, checkFormat(f, &o.Format)
}

// PolicyCanI is the command line of "temporal-opa policy can-i".
type PolicyCanI struct {
	Eval     // the caller, as eval takes it (API unused)
	Bundles  []Bundle
	Format   string
	Services []string // services to list; nil = all
}

// ParsePolicyCanI parses the command line of policy can-i.
func ParsePolicyCanI(args []string, env Env) (PolicyCanI, error) {
	var o PolicyCanI
	f := newFlagSet("policy can-i", "List every Temporal API (WorkflowService, OperatorService, AdminService, from the server's own\n"+
		"API table) with the policy's decision for the caller: allowed or denied, and why. Namespace APIs\n"+
		"are decided in --namespace, cluster APIs with no namespace, as the frontend does.\n"+bundleHelp+
		" Without BUNDLE, the policy of --authz, else the embedded default alone.", env)
	f.args = "[BUNDLE...]"
	o.callerFlags(f, false)
	f.list(&o.Services, "service", nil, "list only these `SERVICE`s: workflow, operator, admin (repeatable)")
	f.format(&o.Format, "output")
	var err error
	if o.Bundles, err = o.parseCaller(f, args, env, false); err != nil {
		return o, err
	}
	for _, s := range o.Services {
		if !containsString([]string{"workflow", "operator", "admin"}, s) {
			return o, f.errorf("--service %q: must be workflow, operator or admin", s)
		}
	}
	return o, checkFormat(f, &o.Format)
}

// parseCaller parses the command line of a command that decides for a caller
// (callerFlags) with the policy of optional BUNDLE arguments, which it returns.
func (o *Eval) parseCaller(f *flagSet, args []string, env Env, api bool) ([]Bundle, error) {
	bundles, err := f.parseArgs(args)
	if err != nil {
		return nil, err
	}
	if err := checkEnv(env); err != nil {
		return nil, err
	}
	out, err := optionalBundleArgs(f, bundles)
	if err != nil {
		return nil, err
	}
	if err := o.checkCaller(f, api); err != nil {
		return nil, err
	}
	return out, checkFileExists(f, "grants", o.Grants)
}

// parseArgs parses flags and positional arguments in any order, as opa's
// commands do; everything after "--" is positional.
func (f *flagSet) parseArgs(args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, f.help()
			}
			return nil, f.errorf("%s", rewordFlagError(err))
		}
		rest := f.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if i := len(args) - len(rest) - 1; i >= 0 && args[i] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// bundleArgs checks one or more BUNDLE arguments.
func bundleArgs(f *flagSet, args []string) ([]Bundle, error) {
	if len(args) == 0 {
		return nil, f.errorf("give at least one BUNDLE: a bundle directory or opa build tarball")
	}
	return optionalBundleArgs(f, args)
}

// optionalBundleArgs checks BUNDLE arguments: PATH, or NAME=PATH when PATH
// exists and the whole argument does not.
func optionalBundleArgs(f *flagSet, args []string) ([]Bundle, error) {
	var out []Bundle
	for _, a := range args {
		if _, err := os.Stat(a); err == nil {
			out = append(out, Bundle{Path: a})
			continue
		}
		name, path, ok := strings.Cut(a, "=")
		if ok && name != "" && path != "" {
			if _, err := os.Stat(path); err == nil {
				out = append(out, Bundle{Name: name, Path: path})
				continue
			}
			a = path
		}
		return nil, f.errorf("BUNDLE %s: no such file or directory; give a bundle directory or opa build tarball", a)
	}
	return out, nil
}

// Output formats of --format, the same for every command that has it.
const (
	FormatPretty = "pretty"
	FormatJSON   = "json"
)

// format defines --format and its short form -f; what is what it formats.
func (f *flagSet) format(p *string, what string) {
	f.StringVar(p, "format", FormatPretty, what+" `FORMAT`: "+FormatPretty+" or "+FormatJSON)
	f.StringVar(p, "f", FormatPretty, "short for --format")
}

// checkFormat checks --format. "text", which eval --replay took before the
// commands agreed on pretty, is read as pretty.
func checkFormat(f *flagSet, format *string) error {
	switch *format {
	case FormatPretty, FormatJSON:
	case "text":
		*format = FormatPretty
	default:
		return f.errorf("--format %q: must be %s or %s", *format, FormatPretty, FormatJSON)
	}
	return nil
}
