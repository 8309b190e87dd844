// Package cli parses the command line of temporal-opa: which subcommand runs and
// the flags of each, into plain option structs that the packages doing the work
// (devserver, wiring, offline) take as input.
//
// It is kept free of the Temporal server so that its tests are cheap. Every
// error it returns is one line saying what was wrong and how to fix it; a
// *UsageError means the command line itself was wrong (exit status 2).
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Program is the name of the binary, used in messages.
const Program = "temporal-opa"

// UsageError is a bad command line: unknown subcommand or flag, or a bad flag
// value. Its message names the flag and says what is expected.
type UsageError struct {
	Command string // e.g. "start-dev" or "keys gen"; "" for the top level
	Msg     string
}

func (e *UsageError) Error() string {
	help := Program + " --help"
	if e.Command != "" {
		help = Program + " " + e.Command + " --help"
	}
	return e.Msg + " (see '" + help + "')"
}

// ErrHelp is returned by the parsers when -h or --help was given; the usage text
// has then been written to the help writer.
var ErrHelp = flag.ErrHelp

// Commands lists the subcommands in the order the usage text shows them.
var Commands = []struct{ Name, Summary string }{
	{"start-dev", "run a secured single-process Temporal dev server (SQLite, dev signing key, tokens printed)"},
	{"start", "run Temporal services from Temporal's own config directory, authorized by OPA"},
	{"token", "mint a JWT with the dev signing key"},
	{"cert", "issue a client certificate signed by the dev CA (start-dev --tls)"},
	{"keys gen", "create an ES256 signing key pair"},
	{"keys serve", "serve a signing key's public JWKS over HTTP"},
	{"eval", "decide one call offline and print the decision, reason and input document"},
	{"policy test", "run a policy bundle's Rego tests, layered on the default policy as the server does"},
	{"policy check", "make every check the server makes when it activates bundles (exit 0: it will)"},
	{"policy export", "write the embedded default policy and the input schema into a directory"},
	{"policy explain", "decide one call and show the rules that produced the decision, with a trace"},
	{"policy can-i", "list every Temporal API with the policy's decision for a caller"},
	{"grant request", "ask for time-bound access to a namespace, to be approved by someone else"},
	{"grant approve", "approve a requested grant (or a break-glass grant after the fact) as yourself"},
	{"grant deny", "refuse a requested grant"},
	{"grant revoke", "end a grant before its expiry"},
	{"grant list", "list pending, active and ended grants with the time left"},
	{"grant break-glass", "take time-bound access at once, without a second person (loud; approved after the fact)"},
}

// Usage is the top-level help text.
func Usage() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s is a Temporal server whose every API call is authorized by an OPA (Rego) policy.\n\n", Program)
	fmt.Fprintf(&b, "Usage:\n  %s <command> [flags]\n\nCommands:\n", Program)
	for _, c := range Commands {
		fmt.Fprintf(&b, "  %-17s %s\n", c.Name, c.Summary)
	}
	fmt.Fprintf(&b, "\nRun '%s <command> --help' for the flags of a command.\n", Program)
	return b.String()
}

// Command splits args (without the program name) into the subcommand name
// ("start-dev", "keys gen", ...) and its arguments. For "help", "-h", "--help"
// and no arguments at all it writes the usage text to env.Help and returns ErrHelp.
func Command(args []string, env Env) (name string, rest []string, err error) {
	help := func() (string, []string, error) {
		if env.Help != nil {
			_, _ = io.WriteString(env.Help, Usage())
		}
		return "", nil, ErrHelp
	}
	if len(args) == 0 {
		return help()
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		return help()
	case "keys", "policy", "grant":
		if len(args) < 2 || strings.HasPrefix(args[1], "-") {
			if len(args) >= 2 && isHelp(args[1]) {
				return help()
			}
			return "", nil, &UsageError{Msg: args[0] + " needs a subcommand: " + subcommands(args[0])}
		}
		name = args[0] + " " + args[1]
		rest = args[2:]
	default:
		name, rest = args[0], args[1:]
	}
	for _, c := range Commands {
		if c.Name == name {
			return name, rest, nil
		}
	}
	names := make([]string, len(Commands))
	for i, c := range Commands {
		names[i] = c.Name
	}
	return "", nil, &UsageError{Msg: fmt.Sprintf("unknown command %q; commands are: %s", name, strings.Join(names, ", "))}
}

// subcommands lists the subcommands of group, quoted: 'keys gen' or 'keys serve'.
func subcommands(group string) string {
	var names []string
	for _, c := range Commands {
		if strings.HasPrefix(c.Name, group+" ") {
			names = append(names, "'"+c.Name+"'")
		}
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

func isHelp(s string) bool { return s == "-h" || s == "-help" || s == "--help" }

// Env is what the parsers read from the process environment: variables and the
// working directory (for defaults), and where --help output goes.
type Env struct {
	Getenv func(string) string
	// Environ lists the variables as KEY=value; nil skips the check of
	// unknown TEMPORAL_OPA_* variables (see checkEnv).
	Environ func() []string
	Help    io.Writer

	// flagSets, when set, receives every flag set a parser defines (with its
	// description and positional synopsis), for the reference documentation
	// (docs/reference/commands.md, generated by TestCommandsReference).
	flagSets func(fs *flag.FlagSet, what, args string)
}

// OSEnv is the environment of the running process.
func OSEnv() Env { return Env{Getenv: os.Getenv, Environ: os.Environ, Help: os.Stdout} }

func (e Env) getenv(k string) string {
	if e.Getenv == nil {
		return ""
	}
	return e.Getenv(k)
}

// DefaultStateDir is where start-dev keeps its signing key unless --state-dir
// says otherwise: $TEMPORAL_OPA_STATE_DIR, else $XDG_STATE_HOME/temporal-opa, else
// $HOME/.local/state/temporal-opa, else ./.temporal-opa.
func DefaultStateDir(getenv func(string) string) string {
	if d := getenv(EnvStateDir); d != "" {
		return d
	}
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "temporal-opa")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "state", "temporal-opa")
	}
	return ".temporal-opa"
}

// flagSet is a flag.FlagSet that reports errors as *UsageError and help as ErrHelp.
type flagSet struct {
	*flag.FlagSet
	cmd  string
	env  Env
	args string // positional synopsis for usage, usually ""
	what string // one-line description
}

func newFlagSet(cmd, what string, env Env) *flagSet {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flagSet{FlagSet: fs, cmd: cmd, env: env, what: what}
}

func (f *flagSet) usage() string {
	var b strings.Builder
	synopsis := "[flags]"
	if f.args != "" {
		synopsis += " " + f.args
	}
	fmt.Fprintf(&b, "%s\n\nUsage:\n  %s %s %s\n\nFlags:\n", f.what, Program, f.cmd, synopsis)
	f.VisitAll(func(fl *flag.Flag) {
		name, usage := flag.UnquoteUsage(fl)
		dashes := "--"
		if len(fl.Name) == 1 {
			dashes = "-"
		}
		fmt.Fprintf(&b, "  %s%s", dashes, fl.Name)
		if name != "" {
			fmt.Fprintf(&b, " %s", name)
		}
		fmt.Fprintf(&b, "\n        %s", strings.ReplaceAll(usage, "\n", "\n        "))
		if fl.DefValue != "" && fl.DefValue != "0" && fl.DefValue != "0s" && fl.DefValue != "false" && fl.DefValue != "[]" {
			fmt.Fprintf(&b, " (default %s)", fl.DefValue)
		}
		b.WriteString("\n")
	})
	return b.String()
}

// help writes the usage text to the help writer (and hands the flag set to
// the documentation's hook) and returns ErrHelp.
func (f *flagSet) help() error {
	if f.env.Help != nil {
		_, _ = io.WriteString(f.env.Help, f.usage())
	}
	if f.env.flagSets != nil {
		f.env.flagSets(f.FlagSet, f.what, f.args)
	}
	return ErrHelp
}

func (f *flagSet) errorf(format string, a ...any) error {
	return &UsageError{Command: f.cmd, Msg: fmt.Sprintf(f.cmd+": "+format, a...)}
}

// parse parses args; positional arguments are refused.
func (f *flagSet) parse(args []string) error {
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return f.help()
		}
		return f.errorf("%s", rewordFlagError(err))
	}
	if f.NArg() > 0 {
		return f.errorf("unexpected argument %q (all settings are --flags)", f.Arg(0))
	}
	return nil
}

// rewordFlagError turns the flag package's messages ("flag provided but not
// defined: -x") into ones naming the flag as users type it ("--x").
func rewordFlagError(err error) string {
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "flag provided but not defined: -"):
		return "unknown flag --" + strings.TrimPrefix(msg, "flag provided but not defined: -")
	case strings.HasPrefix(msg, "flag needs an argument: -"):
		return "flag --" + strings.TrimPrefix(msg, "flag needs an argument: -") + " needs a value"
	case strings.HasPrefix(msg, "invalid value "):
		// invalid value "x" for flag -port: <reason>
		rest := strings.TrimPrefix(msg, "invalid value ")
		val, after, ok := strings.Cut(rest, " for flag -")
		if !ok {
			return msg
		}
		name, reason, _ := strings.Cut(after, ": ")
		return fmt.Sprintf("--%s %s: %s", name, val, reason)
	}
	return msg
}

// listFlag is a repeatable flag that also splits on commas.
type listFlag struct {
	vals  *[]string
	set   bool
	reset bool // drop defaults on first Set
}

func (l *listFlag) String() string {
	if l.vals == nil {
		return ""
	}
	return strings.Join(*l.vals, ",")
}

func (l *listFlag) Set(s string) error {
	if !l.set && l.reset {
		*l.vals = nil
	}
	l.set = true
	for p := range strings.SplitSeq(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			return errors.New("empty entry")
		}
		*l.vals = append(*l.vals, p)
	}
	return nil
}

func (f *flagSet) list(p *[]string, name string, defaults []string, usage string) {
	*p = slices.Clone(defaults)
	f.Var(&listFlag{vals: p, reset: len(defaults) > 0}, name, usage)
}

// durationError explains a bad duration.
func positiveDuration(f *flagSet, name string, d time.Duration) error {
	if d <= 0 {
		return f.errorf("--%s %s: must be positive, e.g. 1h or 30m", name, d)
	}
	return nil
}

func checkPort(f *flagSet, name string, p int) error {
	if p < 1 || p > 65535 {
		return f.errorf("--%s %d: must be a TCP port between 1 and 65535", name, p)
	}
	return nil
}

func checkIP(f *flagSet, name, ip string) error {
	if net.ParseIP(ip) == nil && ip != "localhost" {
		return f.errorf("--%s %q: must be an IP address such as 127.0.0.1 or 0.0.0.0", name, ip)
	}
	return nil
}

// checkPermissions validates "<namespace>:<permission>" entries.
func checkPermissions(f *flagSet, name string, perms []string) error {
	for _, p := range perms {
		ns, perm, ok := strings.Cut(p, ":")
		if !ok || ns == "" || perm == "" {
			return f.errorf("--%s %q: each entry must be <namespace>:<permission>, e.g. default:read or temporal-system:admin", name, p)
		}
		switch strings.ToLower(perm) {
		case "read", "write", "worker", "admin":
		default:
			return f.errorf("--%s %q: permission %q is not one of read, write, worker, admin", name, p, perm)
		}
	}
	return nil
}

func checkFileExists(f *flagSet, name, path string) error {
	if path == "" {
		return nil
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return f.errorf("--%s %s: no such file or directory", name, path)
		}
		return f.errorf("--%s %s: %v", name, path, errors.Unwrap(err))
	}
	return nil
}

// checkFilesExist is checkFileExists for each path of a list flag, refusing
// one given twice.
func checkFilesExist(f *flagSet, name string, paths []string) error {
	seen := map[string]bool{}
	for _, p := range paths {
		if seen[filepath.Clean(p)] {
			return f.errorf("--%s %s is given twice: give each once", name, p)
		}
		seen[filepath.Clean(p)] = true
		if err := checkFileExists(f, name, p); err != nil {
			return err
		}
	}
	return nil
}

// OneLine flattens a multi-line error message (OPA's compile errors echo the
// source line and a caret under it) into one line: the echo and the caret are
// dropped and the remaining lines joined with "; ".
func OneLine(msg string) string {
	lines := strings.Split(strings.TrimSpace(msg), "\n")
	var keep []string
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.Trim(l, "^ \t") == "" {
			continue
		}
		if i+1 < len(lines) && i > 0 && strings.Trim(strings.TrimSpace(lines[i+1]), "^ \t") == "" && strings.TrimSpace(lines[i+1]) != "" {
			continue // a source line echoed above a caret
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "; ")
}
