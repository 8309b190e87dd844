package cli

// The command lines of "temporal-opa grant request|approve|deny|revoke|list|
// break-glass": the client of the grant service. The connection flags are
// the temporal CLI's (--address, --api-key, --tls-*), so that a person who
// runs `temporal` runs these the same way. What a grant may hold (its id, its
// role, its API names) is checked by the command against package grants, as
// the server checks it; the parsers here check the command line itself.

import (
	"flag"
	"fmt"
	"strings"
	"time"
)

// Environment variables the grant commands read, as the temporal CLI does.
const (
	EnvTemporalAddress = "TEMPORAL_ADDRESS"
	EnvTemporalAPIKey  = "TEMPORAL_API_KEY"
)

// ExitDenied is the exit status of a grant command the server refused (its
// policy denied the operation): distinct from 1 (any other failure) and 2 (a
// bad command line), so that scripts can tell a refusal from an outage.
const ExitDenied = 3

// Output formats of the grant commands' --output, as the temporal CLI's.
const (
	OutputText = "text"
	OutputJSON = "json"
)

// Grant states --state of grant list selects.
var GrantListStates = []string{"requested", "active", "ended", "all"}

// GrantConn is how a grant command reaches the server and as whom. Only the
// command reads APIKeyFile; APIKey is never printed (not even as a flag's
// default in --help).
type GrantConn struct {
	Address         string
	APIKey          string // from --api-key, else $TEMPORAL_API_KEY
	APIKeyFile      string // instead of APIKey: a file holding the token
	TLS             bool   // TLS: --tls, or any --tls-* flag
	TLSCAPath       string
	TLSCertPath     string
	TLSKeyPath      string
	TLSServerName   string
	GrantsNamespace string
	Output          string // text or json
	Timeout         time.Duration
}

// connFlags defines the flags of GrantConn.
func (c *GrantConn) connFlags(f *flagSet) {
	addr := f.env.getenv(EnvTemporalAddress)
	if addr == "" {
		addr = "127.0.0.1:7233"
	}
	f.StringVar(&c.Address, "address", addr, "`HOST:PORT` of the Temporal frontend (env "+EnvTemporalAddress+")")
	f.StringVar(&c.APIKey, "api-key", "", "your `TOKEN`, sent as \"Authorization: Bearer\" as the temporal CLI's --api-key (default $"+EnvTemporalAPIKey+");\nprefer the variable or --api-key-file, which other users cannot see in the process list")
	f.StringVar(&c.APIKeyFile, "api-key-file", "", "`FILE` holding your token, instead of --api-key")
	f.BoolVar(&c.TLS, "tls", false, "connect with TLS (the system's roots unless --tls-ca-path); implied by every --tls-* flag")
	f.StringVar(&c.TLSCAPath, "tls-ca-path", "", "PEM `FILE` of the CA that verifies the server (start-dev --tls: its dev CA)")
	f.StringVar(&c.TLSCertPath, "tls-cert-path", "", "client certificate `FILE` (PEM), with --tls-key-path")
	f.StringVar(&c.TLSKeyPath, "tls-key-path", "", "client key `FILE` (PEM), with --tls-cert-path")
	f.StringVar(&c.TLSServerName, "tls-server-name", "", "`NAME` the server's certificate must hold, when it is not the host of --address")
	f.StringVar(&c.GrantsNamespace, "grants-namespace", "temporal-opa-grants", "`NAMESPACE` of the grant service (the server's grants.namespace)")
	f.StringVar(&c.Output, "output", OutputText, "output `FORMAT`: "+OutputText+" or "+OutputJSON)
	f.StringVar(&c.Output, "o", OutputText, "short for --output `FORMAT`")
	f.DurationVar(&c.Timeout, "timeout", 30*time.Second, "`DURATION` the command may take at most")
}

// parse parses the command line of a grant command and checks the flags of
// connFlags; with positional, it returns the positional arguments (which are
// refused otherwise).
func (c *GrantConn) parse(f *flagSet, args []string, positional bool) ([]string, error) {
	var pos []string
	var err error
	if positional {
		pos, err = f.parseArgs(args)
	} else {
		err = f.parse(args)
	}
	if err != nil {
		return nil, err
	}
	if err := checkEnv(f.env); err != nil {
		return nil, err
	}
	return pos, c.check(f)
}

// check validates the flags of connFlags once parsed.
func (c *GrantConn) check(f *flagSet) error {
	if c.APIKey == "" && c.APIKeyFile == "" {
		c.APIKey = strings.TrimSpace(f.env.getenv(EnvTemporalAPIKey))
	}
	set := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	switch {
	case set["api-key"] && set["api-key-file"]:
		return f.errorf("give --api-key or --api-key-file, not both")
	case set["api-key"] && strings.TrimSpace(c.APIKey) == "":
		return f.errorf("--api-key is empty: give your token, or leave the flag out to call without one")
	}
	c.APIKey = strings.TrimSpace(c.APIKey)
	if err := checkFileExists(f, "api-key-file", c.APIKeyFile); err != nil {
		return err
	}
	if _, _, err := splitHostPort(c.Address); err != nil {
		return f.errorf("--address %q: %v; want HOST:PORT such as 127.0.0.1:7233", c.Address, err)
	}
	for _, p := range []struct{ name, path string }{{"tls-ca-path", c.TLSCAPath}, {"tls-cert-path", c.TLSCertPath}, {"tls-key-path", c.TLSKeyPath}} {
		if err := checkFileExists(f, p.name, p.path); err != nil {
			return err
		}
	}
	if (c.TLSCertPath == "") != (c.TLSKeyPath == "") {
		return f.errorf("--tls-cert-path and --tls-key-path go together: give both (a client certificate and its key) or neither")
	}
	if c.TLSCAPath != "" || c.TLSCertPath != "" || c.TLSServerName != "" {
		if set["tls"] && !c.TLS {
			return f.errorf("--tls=false and --tls-* flags contradict each other: drop one")
		}
		c.TLS = true
	}
	if c.GrantsNamespace == "" {
		return f.errorf("--grants-namespace is empty: give the namespace of the grant service, or leave the flag out for temporal-opa-grants")
	}
	switch c.Output {
	case OutputText, OutputJSON:
	default:
		return f.errorf("--output %q: must be %s or %s", c.Output, OutputText, OutputJSON)
	}
	return positiveDuration(f, "timeout", c.Timeout)
}

// grantEnvHelp closes the help of every grant command.
const grantEnvHelp = "\n\nEnvironment: " + EnvTemporalAddress + " and " + EnvTemporalAPIKey + " as the temporal CLI reads them.\n" +
	"Exit status: 0 done, 1 failed (the server could not be reached, ...), 2 bad flags, 3 refused by the server's policy."

// GrantRequest is the command line of "temporal-opa grant request" and
// "temporal-opa grant break-glass".
type GrantRequest struct {
	GrantConn
	BreakGlass bool
	ID         string // "" = generated
	Namespace  string
	Role       string
	APIs       []string
	Duration   time.Duration
	Reason     string
	// Subject, or Claim and ClaimValue (a group), hold the grant; none of
	// them: the caller, filled in by the server.
	Subject    string
	Claim      string
	ClaimValue string
	Issuer     string
	NotBefore  time.Time // zero = at once
}

// ParseGrantRequest parses the flags of grant request, or of grant
// break-glass when breakGlass.
func ParseGrantRequest(args []string, env Env, breakGlass bool) (GrantRequest, error) {
	o := GrantRequest{BreakGlass: breakGlass}
	cmd, what := "grant request", "Ask for time-bound access to a namespace: a role or a list of APIs, from --not-before (default\n"+
		"now) for --duration. The grant is active once someone else approves it ('grant approve ID'); who\n"+
		"may approve, and how long each role may be granted, is the server's policy."
	if breakGlass {
		cmd, what = "grant break-glass", "Take time-bound access at once, without a second person, for an emergency. The policy allows it\n"+
			"to few callers and for a short time; it is loud (a warning, a metric, an alertable decision-log\n"+
			"event), and asks for an approval after the fact ('grant approve ID')."
	}
	f := newFlagSet(cmd, what+grantEnvHelp, env)
	o.connFlags(f)
	f.StringVar(&o.Namespace, "namespace", "", "`NAMESPACE` the access is for (required)")
	f.StringVar(&o.Role, "role", "", "`ROLE` to grant: worker, read, write or admin (or --api)")
	f.list(&o.APIs, "api", nil, "instead of --role: an `API` to allow, such as StartWorkflowExecution; repeatable or comma-separated")
	f.Func("duration", "`DURATION` of the grant from its start, e.g. 2h or 30m (required)", func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("not a duration; give one such as 2h, 30m or 1h30m")
		}
		o.Duration = d
		return nil
	})
	f.StringVar(&o.Reason, "reason", "", "`TEXT`: the ticket or incident the access is for (required)")
	f.StringVar(&o.Subject, "subject", "", "`SUBJECT` to hold the grant, as the server names callers (a token's sub, a SPIFFE ID);\ndefault: you, as the server verifies your token or certificate")
	var claim string
	f.StringVar(&claim, "claim", "", "instead of --subject: every caller whose token claim `NAME=VALUE` holds, e.g. groups=sre")
	f.StringVar(&o.Issuer, "issuer", "", "with --subject or --claim: the `URL` of the issuer whose tokens hold the grant")
	var notBefore string
	f.StringVar(&notBefore, "not-before", "", "`TIME` the grant starts, RFC 3339 (2026-12-06T18:00:00Z); default now")
	f.StringVar(&o.ID, "id", "", "`ID` of the grant (lower-case letters, digits, dashes); default a generated one such as g-k3x9q2ma")
	if _, err := o.parse(f, args, false); err != nil {
		return o, err
	}
	switch {
	case o.Namespace == "":
		return o, f.errorf("--namespace is required: the namespace the access is for, e.g. --namespace payments")
	case o.Role == "" && len(o.APIs) == 0:
		return o, f.errorf("give --role (worker, read, write or admin) or --api StartWorkflowExecution,...: what the grant allows")
	case o.Role != "" && len(o.APIs) > 0:
		return o, f.errorf("give --role or --api, not both")
	case o.Duration == 0:
		return o, f.errorf("--duration is required: how long the grant lasts, e.g. --duration 2h")
	case o.Duration < 0:
		return o, f.errorf("--duration %s: must be positive, e.g. 2h or 30m", o.Duration)
	case strings.TrimSpace(o.Reason) == "":
		return o, f.errorf("--reason is required: the ticket or incident the access is for, e.g. --reason INC-1234")
	case o.Subject != "" && claim != "":
		return o, f.errorf("give --subject or --claim, not both: one caller, or every caller with a claim")
	case o.Issuer != "" && o.Subject == "" && claim == "":
		return o, f.errorf("--issuer qualifies --subject or --claim; without them the grant is yours, with your token's issuer")
	}
	if claim != "" {
		name, value, ok := strings.Cut(claim, "=")
		if !ok || strings.TrimSpace(name) == "" || value == "" {
			return o, f.errorf("--claim %q: want NAME=VALUE, e.g. --claim groups=sre", claim)
		}
		o.Claim, o.ClaimValue = strings.TrimSpace(name), value
	}
	if notBefore != "" {
		t, err := time.Parse(time.RFC3339, notBefore)
		if err != nil {
			return o, f.errorf("--not-before %q: not an RFC 3339 time; give one such as 2026-12-06T18:00:00Z", notBefore)
		}
		o.NotBefore = t
	}
	return o, nil
}

// GrantUpdate is the command line of "temporal-opa grant approve", "grant
// deny" and "grant revoke".
type GrantUpdate struct {
	GrantConn
	Op     string // approve, deny or revoke
	ID     string
	Reason string
}

// ParseGrantUpdate parses the command line of grant approve, deny or revoke
// (op). The reason is required to deny or revoke.
func ParseGrantUpdate(op string, args []string, env Env) (GrantUpdate, error) {
	o := GrantUpdate{Op: op}
	var what string
	switch op {
	case "approve":
		what = "Approve a requested grant, which becomes active at its start, or a break-glass grant after the\n" +
			"fact. You approve as yourself (your token or certificate); the policy decides whether you may: not\n" +
			"for a grant you requested or hold."
	case "deny":
		what = "Refuse a requested grant: it never becomes active."
	case "revoke":
		what = "End a grant before its expiry: calls it allowed are denied from now on."
	default:
		return o, &UsageError{Msg: fmt.Sprintf("unknown grant operation %q", op)}
	}
	f := newFlagSet("grant "+op, what+grantEnvHelp, env)
	f.args = "ID"
	o.connFlags(f)
	reasonHelp := "`TEXT`: why (recorded with the grant and in the decision log)"
	if op != "approve" {
		reasonHelp += " (required)"
	}
	f.StringVar(&o.Reason, "reason", "", reasonHelp)
	ids, err := o.parse(f, args, true)
	if err != nil {
		return o, err
	}
	switch {
	case len(ids) == 0:
		return o, f.errorf("give the ID of the grant, as 'grant list' shows it, e.g. %s grant %s g-k3x9q2ma", Program, op)
	case len(ids) > 1:
		return o, f.errorf("give one grant ID, not %d (%s)", len(ids), strings.Join(ids, " "))
	case op != "approve" && strings.TrimSpace(o.Reason) == "":
		return o, f.errorf("--reason is required: say why you %s the grant", op)
	}
	o.ID = ids[0]
	return o, nil
}

// GrantList is the command line of "temporal-opa grant list".
type GrantList struct {
	GrantConn
	State string // requested, active, ended or all
}

// ParseGrantList parses the flags of grant list.
func ParseGrantList(args []string, env Env) (GrantList, error) {
	var o GrantList
	f := newFlagSet("grant list", "List the grants: those waiting for an approval first (requests, and break-glass grants awaiting\n"+
		"theirs after the fact), then the active ones by expiry, then the ended ones, with the time left."+grantEnvHelp, env)
	o.connFlags(f)
	f.StringVar(&o.State, "state", "all", "list only the grants in `STATE`: "+strings.Join(GrantListStates, ", "))
	if _, err := o.parse(f, args, false); err != nil {
		return o, err
	}
	if !containsString(GrantListStates, o.State) {
		return o, f.errorf("--state %q: must be one of %s", o.State, strings.Join(GrantListStates, ", "))
	}
	return o, nil
}
