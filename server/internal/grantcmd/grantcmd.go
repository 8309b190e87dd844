// Package grantcmd runs "temporal-opa grant request|approve|deny|revoke|list|
// break-glass": the client of the grant service (package grantsvc) against a
// running server, with the caller's own token or certificate.
//
// It is apart from package offline, whose commands need no server and do
// not link the grant service. Each command takes the options parsed by
// package cli and writes the grant (text or JSON) to stdout; warnings go to
// stderr. A refusal by the server's policy ends the command with
// cli.ExitDenied and the server's reason; the token is never printed.
package grantcmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/temporal-opa/temporal-opa/policy/grants"
	"github.com/temporal-opa/temporal-opa/server/internal/cli"
	"github.com/temporal-opa/temporal-opa/server/internal/grantsvc"
)

// Run runs the grant command name ("grant request", ...) with its
// arguments; main and the tests call it.
func Run(ctx context.Context, name string, args []string, env cli.Env, stdout, stderr io.Writer) error {
	return run(ctx, name, args, env, stdout, stderr, time.Now)
}

// run is Run with the clock now.
func run(ctx context.Context, name string, args []string, env cli.Env, stdout, stderr io.Writer, now func() time.Time) error {
	switch name {
	case "grant request", "grant break-glass":
		o, err := cli.ParseGrantRequest(args, env, name == "grant break-glass")
		if err != nil {
			return err
		}
		return Request(ctx, o, stdout, stderr, now)
	case "grant approve", "grant deny", "grant revoke":
		o, err := cli.ParseGrantUpdate(strings.TrimPrefix(name, "grant "), args, env)
		if err != nil {
			return err
		}
		return Update(ctx, o, stdout, now)
	case "grant list":
		o, err := cli.ParseGrantList(args, env)
		if err != nil {
			return err
		}
		return List(ctx, o, stdout, now)
	}
	return fmt.Errorf("command %q is not a grant command", name)
}

// Denied ends a command the server's policy refused: exit status
// cli.ExitDenied, and the server's reason printed.
type Denied struct{ Err *grantsvc.DeniedError }

func (d Denied) Error() string { return d.Err.Error() }
func (d Denied) Unwrap() error { return d.Err }
func (Denied) ExitCode() int   { return cli.ExitDenied }
func (Denied) Reported() bool  { return false }

var _ cli.ExitStatus = Denied{}

// exit turns the client's errors into the command's: a refusal exits with
// cli.ExitDenied, a bad id is a bad command line.
func exit(cmd string, err error) error {
	var d *grantsvc.DeniedError
	var bad *grantsvc.InvalidIDError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &d):
		return Denied{Err: d}
	case errors.As(err, &bad):
		return &cli.UsageError{Command: cmd, Msg: cmd + ": " + bad.Error()}
	}
	return err
}

// RequestOf is the request the flags o ask for.
func RequestOf(o cli.GrantRequest) grantsvc.Request {
	r := grantsvc.Request{
		ID:        o.ID,
		Namespace: o.Namespace,
		Role:      o.Role,
		APIs:      o.APIs,
		NotBefore: o.NotBefore,
		Duration:  o.Duration,
		Reason:    o.Reason,
	}
	switch {
	case o.Subject != "":
		r.Subject = grants.Subject{Subject: o.Subject, Issuer: o.Issuer}
	case o.Claim != "":
		r.Subject = grants.Subject{Claim: o.Claim, Value: o.ClaimValue, Issuer: o.Issuer}
	}
	return r
}

// CheckRequest checks the request of o as the server will (a bad id, role,
// API name, ...), as a bad command line naming the flag.
func CheckRequest(o cli.GrantRequest, now time.Time) error {
	cmd := "grant request"
	if o.BreakGlass {
		cmd = "grant break-glass"
	}
	usage := func(format string, a ...any) error {
		return &cli.UsageError{Command: cmd, Msg: cmd + ": " + fmt.Sprintf(format, a...)}
	}
	if o.ID != "" && !grants.ValidID(o.ID) {
		return usage("--id %q: use 1-63 lower-case letters, digits and dashes, starting with a letter or digit", o.ID)
	}
	if o.Role != "" && !contains(grants.Roles, o.Role) {
		return usage("--role %q: must be one of %s", o.Role, strings.Join(grants.Roles, ", "))
	}
	if len(o.APIs) > grants.MaxAPIs {
		return usage("--api: %d APIs, at most %d", len(o.APIs), grants.MaxAPIs)
	}
	if o.Duration > grants.MaxDuration {
		return usage("--duration %s: longer than any grant may be (%s); the policy's maximum for the role is shorter", o.Duration, grants.MaxDuration)
	}
	if len(o.Reason) > grants.MaxReasonBytes {
		return usage("--reason: %d bytes, at most %d", len(o.Reason), grants.MaxReasonBytes)
	}
	if !o.NotBefore.IsZero() && !o.NotBefore.Add(o.Duration).After(now) {
		return usage("--not-before %s with --duration %s ends in the past: give a later start", o.NotBefore.Format(time.RFC3339), o.Duration)
	}
	if err := RequestOf(o).Check(now); err != nil {
		// The remaining checks are the grant's own (API names, a claim).
		return usage("%s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// dial connects with the flags of c.
func dial(ctx context.Context, c cli.GrantConn) (*grantsvc.Client, error) {
	key := c.APIKey
	if c.APIKeyFile != "" {
		b, err := os.ReadFile(c.APIKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--api-key-file: %w", err)
		}
		key = strings.TrimSpace(string(b))
		if key == "" {
			return nil, fmt.Errorf("--api-key-file %s is empty: it should hold your token", c.APIKeyFile)
		}
		if strings.ContainsFunc(key, unicode.IsSpace) {
			return nil, fmt.Errorf("--api-key-file %s holds more than one token (it has spaces or several lines): it should hold your token alone", c.APIKeyFile)
		}
	}
	o := grantsvc.ClientOptions{Address: c.Address, Namespace: c.GrantsNamespace, APIKey: key}
	if c.TLS {
		o.TLS = &grantsvc.TLSOptions{CAFile: c.TLSCAPath, CertFile: c.TLSCertPath, KeyFile: c.TLSKeyPath, ServerName: c.TLSServerName}
	}
	return grantsvc.Dial(ctx, o)
}

// connect dials with the flags of conn, under its timeout, for the command
// cmd; done closes the connection.
func connect(ctx context.Context, conn cli.GrantConn, cmd string) (_ context.Context, _ *grantsvc.Client, done func(), _ error) {
	ctx, cancel := context.WithTimeout(ctx, conn.Timeout)
	c, err := dial(ctx, conn)
	if err != nil {
		cancel()
		return nil, nil, nil, exit(cmd, err)
	}
	return ctx, c, func() { c.Close(); cancel() }, nil
}

// Request is "grant request" and "grant break-glass".
func Request(ctx context.Context, o cli.GrantRequest, stdout, stderr io.Writer, now func() time.Time) error {
	cmd := "grant request"
	if o.BreakGlass {
		cmd = "grant break-glass"
	}
	if err := CheckRequest(o, now()); err != nil {
		return err
	}
	ctx, c, done, err := connect(ctx, o.GrantConn, cmd)
	if err != nil {
		return err
	}
	defer done()
	r := RequestOf(o)
	var g *grants.Grant
	if o.BreakGlass {
		g, err = c.BreakGlass(ctx, r)
	} else {
		g, err = c.Request(ctx, r)
	}
	if err != nil {
		return exit(cmd, err)
	}
	if o.BreakGlass {
		fmt.Fprintf(stderr, "WARNING: break glass: grant %s gives %s without a second person; it is logged and alerted on, and needs an approval after the fact: %s grant approve %s\n",
			clean(g.ID), clean(g.Access()), cli.Program, clean(g.ID))
	}
	if err := printGrant(stdout, o.Output, g, now()); err != nil {
		return err
	}
	if o.Output == cli.OutputText && !o.BreakGlass {
		_, err = fmt.Fprintf(stdout, "\nAsk an approver to run: %s grant approve %s\n", cli.Program, clean(g.ID))
	}
	return err
}

// Update is "grant approve", "grant deny" and "grant revoke".
func Update(ctx context.Context, o cli.GrantUpdate, stdout io.Writer, now func() time.Time) error {
	cmd := "grant " + o.Op
	if !grants.ValidID(o.ID) {
		return exit(cmd, &grantsvc.InvalidIDError{ID: o.ID})
	}
	ctx, c, done, err := connect(ctx, o.GrantConn, cmd)
	if err != nil {
		return err
	}
	defer done()
	var g *grants.Grant
	switch o.Op {
	case "approve":
		g, err = c.Approve(ctx, o.ID, o.Reason)
	case "deny":
		g, err = c.Deny(ctx, o.ID, o.Reason)
	case "revoke":
		g, err = c.Revoke(ctx, o.ID, o.Reason)
	default:
		return fmt.Errorf("unknown grant operation %q", o.Op)
	}
	if err != nil {
		return exit(cmd, err)
	}
	return printGrant(stdout, o.Output, g, now())
}

// List is "grant list".
func List(ctx context.Context, o cli.GrantList, stdout io.Writer, now func() time.Time) error {
	ctx, c, done, err := connect(ctx, o.GrantConn, "grant list")
	if err != nil {
		return err
	}
	defer done()
	gs, err := c.List(ctx)
	if err != nil {
		return exit("grant list", err)
	}
	t := now()
	grantsvc.Sort(gs, t) // at the command's clock, as the times it prints
	gs = Filter(gs, o.State, t)
	if o.Output == cli.OutputJSON {
		return writeJSON(stdout, listJSON(gs, t))
	}
	return WriteTable(stdout, gs, o.State, t)
}

// Filter keeps the grants in state (requested, active, ended or all) at now.
func Filter(gs []grants.Grant, state string, now time.Time) []grants.Grant {
	if state == "all" || state == "" {
		return gs
	}
	var out []grants.Grant
	for _, g := range gs {
		s := g.At(now)
		keep := false
		switch state {
		case "requested":
			keep = s == grants.StateRequested
		case "active":
			keep = s == grants.StateActive
		case "ended":
			keep = s == grants.StateDenied || s == grants.StateRevoked || s == grants.StateExpired
		}
		if keep {
			out = append(out, g)
		}
	}
	return out
}

// ListEntry is one grant of grant list --output json: the grant as
// recorded, with its state and time left at the time of the listing.
type ListEntry struct {
	Grant            grants.Grant `json:"grant"`
	State            grants.State `json:"state"` // at the time of the listing: an active grant past its expiry is expired
	TimeLeft         string       `json:"time_left"`
	AwaitingApproval bool         `json:"awaiting_approval,omitempty"` // break glass, not approved yet
}

func listJSON(gs []grants.Grant, now time.Time) []ListEntry {
	out := make([]ListEntry, 0, len(gs))
	for i := range gs {
		g := &gs[i]
		out = append(out, ListEntry{Grant: *g, State: g.At(now), TimeLeft: TimeLeft(g, now), AwaitingApproval: grantsvc.AwaitsApproval(g, now)})
	}
	return out
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// WriteTable prints grants as grant list's table at time now; state is the
// --state filter, named when nothing is listed.
func WriteTable(w io.Writer, gs []grants.Grant, state string, now time.Time) error {
	if len(gs) == 0 {
		if state == "all" || state == "" {
			_, err := fmt.Fprintln(w, "No grants.")
			return err
		}
		_, err := fmt.Fprintf(w, "No %s grants.\n", state)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tSUBJECT\tACCESS\tSTARTS\tEXPIRES\tTIME LEFT\tREQUESTED BY\tAPPROVED BY\tREASON")
	var awaiting []string
	for i := range gs {
		g := &gs[i]
		state := string(g.At(now))
		if state == "" {
			state = "unknown"
		}
		approved := "-"
		switch {
		case grantsvc.AwaitsApproval(g, now):
			approved = "AWAITING (break glass)"
			awaiting = append(awaiting, clean(g.ID))
		case g.ApprovedBy != nil:
			approved = g.ApprovedBy.Subject
		}
		if g.BreakGlass && !grantsvc.AwaitsApproval(g, now) {
			state += " (break glass)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			cell(g.ID), cell(state), cell(subject(g)), cell(access(g)), when(g.NotBefore, now), when(g.Expires, now),
			TimeLeft(g, now), cell(g.RequestedBy.Subject), cell(approved), cell(truncate(g.Reason, 40)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(awaiting) > 0 {
		_, err := fmt.Fprintf(w, "\nBreak glass awaiting approval after the fact: %s (%s grant approve ID)\n", strings.Join(awaiting, ", "), cli.Program)
		return err
	}
	return nil
}

func access(g *grants.Grant) string {
	if g.Namespace == "" && g.Role == "" && len(g.APIs) == 0 {
		return ""
	}
	return g.Access()
}

func subject(g *grants.Grant) string {
	if g.Subject == (grants.Subject{}) {
		return ""
	}
	return g.Subject.String()
}

// cell is s for a table cell: clean, and "-" when empty.
func cell(s string) string {
	s = clean(s)
	if s == "" {
		return "-"
	}
	return s
}

// when is t in the table: minutes, in now's time zone; "-" when unset.
func when(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(now.Location()).Format("2006-01-02 15:04 MST")
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// clean makes text from the server safe to print: control characters (a
// newline in a reason, a terminal escape) become spaces.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// TimeLeft says how long g has at time now, for people: "1h59m" while it is
// (or would be, once approved) in effect, "starts in 10m" before its start,
// "expired 3m ago" after its expiry, "revoked 5m ago" or "denied" once ended.
func TimeLeft(g *grants.Grant, now time.Time) string {
	switch g.At(now) {
	case grants.StateDenied:
		return "denied"
	case grants.StateRevoked:
		if g.EndedAt.IsZero() {
			return "revoked"
		}
		return "revoked " + Short(now.Sub(g.EndedAt)) + " ago"
	case grants.StateExpired:
		if g.Expires.IsZero() {
			return "expired"
		}
		return "expired " + Short(now.Sub(g.Expires)) + " ago"
	case grants.StateActive, grants.StateRequested:
		if now.Before(g.NotBefore) {
			return "starts in " + Short(g.NotBefore.Sub(now))
		}
		return Short(g.Expires.Sub(now))
	}
	return "-"
}

// Short is d for people, truncated to two units: 45s, 3m, 1h59m, 2h, 3d4h.
// A negative d is read as its absolute value.
func Short(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 24*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	}
	days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
	if h == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%dh", days, h)
}

// printGrant prints one grant: a readable block, or JSON.
func printGrant(w io.Writer, output string, g *grants.Grant, now time.Time) error {
	if output == cli.OutputJSON {
		return writeJSON(w, g)
	}
	return WriteGrant(w, g, now)
}

// WriteGrant prints g as one readable block at time now.
func WriteGrant(w io.Writer, g *grants.Grant, now time.Time) error {
	var b strings.Builder
	state := string(g.At(now))
	switch {
	case g.State == "":
		state = "sent; the grant service has not recorded it yet (see 'grant list')"
	case grantsvc.AwaitsApproval(g, now):
		state += ", break glass: awaiting approval after the fact"
	case g.At(now) == grants.StateRequested:
		state += ", waiting for approval"
	case g.BreakGlass:
		state += ", break glass"
	}
	fmt.Fprintf(&b, "Grant %s: %s\n", clean(g.ID), clean(state))
	line := func(k, v string) { fmt.Fprintf(&b, "  %-13s %s\n", k+":", clean(v)) }
	if s := subject(g); s != "" {
		line("subject", s)
	} else {
		line("subject", "you (the server fills in the verified caller)")
	}
	line("access", access(g))
	if !g.NotBefore.IsZero() {
		line("starts", stamp(g.NotBefore, now))
	}
	if !g.Expires.IsZero() {
		line("expires", stamp(g.Expires, now))
	}
	if g.State != "" {
		line("time left", TimeLeft(g, now))
	}
	line("reason", g.Reason)
	if g.RequestedBy.Subject != "" {
		line("requested by", who(g.RequestedBy, g.RequestedAt, now))
	}
	if g.ApprovedBy != nil {
		line("approved by", who(*g.ApprovedBy, g.ApprovedAt, now))
	}
	if g.EndedBy != nil {
		verb := "ended by"
		switch g.State {
		case grants.StateDenied:
			verb = "denied by"
		case grants.StateRevoked:
			verb = "revoked by"
		}
		line(verb, who(*g.EndedBy, g.EndedAt, now))
	}
	if g.EndReason != "" {
		line("why", g.EndReason)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func stamp(t, now time.Time) string {
	return t.In(now.Location()).Format(time.RFC3339)
}

func who(id grants.Identity, at, now time.Time) string {
	s := id.String()
	if !at.IsZero() {
		s += " at " + stamp(at, now)
	}
	return s
}
