package grantsvc

// This file is the client side of the grant service, used by `temporal-opa
// grant`: it speaks the protocol of protocol.go through the Go SDK, with the
// caller's own credentials (an API key, a client certificate or both), and
// turns the server's refusals into errors a person can act on. It decides
// nothing: the frontend checks and stamps every call, the policy decides.

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base32"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/grpc/codes"

	"github.com/temporal-opa/temporal-opa/policy/grants"
)

// DefaultAddress is the frontend the client dials when none is given, as the
// temporal CLI's.
const DefaultAddress = "127.0.0.1:7233"

// ClientOptions says how to reach the grant service and as whom.
type ClientOptions struct {
	// Address is the frontend's host:port; "" is DefaultAddress.
	Address string
	// Namespace is the namespace holding the grants; "" is DefaultNamespace.
	Namespace string
	// APIKey is the caller's token, sent as "Authorization: Bearer <token>";
	// "" sends none (a client certificate alone). It is never printed nor
	// part of an error.
	APIKey string
	// TLS, when set, makes the connection TLS.
	TLS *TLSOptions
}

// TLSOptions are the TLS settings of the connection, as the temporal CLI's
// --tls-* flags give them.
type TLSOptions struct {
	CAFile     string // PEM CA certificates that verify the server; "" = the system's roots
	CertFile   string // client certificate (PEM), with KeyFile; "" = none
	KeyFile    string
	ServerName string // the name the server's certificate must hold; "" = the address's host
}

// Config is the tls.Config of o; it reads the files and says which one is
// wrong when one is.
func (o *TLSOptions) Config() (*tls.Config, error) {
	cfg := &tls.Config{ServerName: o.ServerName, MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read the TLS CA file: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA file %s holds no PEM certificate", o.CAFile)
		}
		cfg.RootCAs = roots
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("a TLS client certificate needs its key: give both files or neither")
	}
	if o.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load the TLS client certificate %s and key %s: %w", o.CertFile, o.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// Client requests, approves, denies, revokes and lists grants. It holds no
// state besides the connection; it is safe for concurrent use.
type Client struct {
	c         client.Client
	address   string
	namespace string
	// Wait bounds how long Request and BreakGlass wait for the grant
	// workflow to record the grant (its memo) after the start.
	Wait time.Duration
	now  func() time.Time
}

// DefaultWait is Client.Wait when Dial sets it.
const DefaultWait = 10 * time.Second

// Dial connects to the grant service. A server that cannot be reached is a
// *ConnectError naming the address.
func Dial(ctx context.Context, o ClientOptions) (*Client, error) {
	if o.Address == "" {
		o.Address = DefaultAddress
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	opts := client.Options{
		HostPort:  o.Address,
		Namespace: o.Namespace,
		Identity:  "temporal-opa grant",
		Logger:    quietLogger{},
	}
	if o.TLS != nil {
		cfg, err := o.TLS.Config()
		if err != nil {
			return nil, err
		}
		opts.ConnectionOptions.TLS = cfg
	} else {
		// An API key turns TLS on in the SDK unless it is disabled: without
		// TLS options the connection is plain gRPC, as start-dev serves.
		opts.ConnectionOptions.TLSDisabled = true
	}
	if o.APIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(o.APIKey)
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, mapError("connect", "", o.Address, err)
	}
	return &Client{c: c, address: o.Address, namespace: o.Namespace, Wait: DefaultWait, now: time.Now}, nil
}

// Close closes the connection.
func (c *Client) Close() { c.c.Close() }

// Request is what a person asks for: the fields of a grant the client sets.
// The frontend sets the rest (times, state, requested by) from its clock and
// the verified caller.
type Request struct {
	// ID names the grant; "" generates one (NewID).
	ID string
	// Subject holds the grant; the zero Subject is the caller, filled in by
	// the server from the verified caller (the client never reads its own
	// token).
	Subject   grants.Subject
	Namespace string
	Role      string   // or APIs
	APIs      []string // or Role
	// NotBefore is when the grant starts; zero is at once (the server's clock).
	NotBefore time.Time
	Duration  time.Duration
	Reason    string
}

// Grant is r as the grant it asks for, with the times the client's clock
// gives (the server sets its own); breakGlass marks a break-glass grant.
func (r Request) Grant(now time.Time, breakGlass bool) grants.Grant {
	start := r.NotBefore
	if start.IsZero() {
		start = now
	}
	return grants.Grant{
		ID:         r.ID,
		Subject:    r.Subject,
		Namespace:  r.Namespace,
		Role:       r.Role,
		APIs:       r.APIs,
		NotBefore:  start.UTC(),
		Expires:    start.Add(r.Duration).UTC(),
		Reason:     r.Reason,
		BreakGlass: breakGlass,
	}
}

// Check checks r as the frontend will (grants.Grant.Validate), so that a bad
// request fails before it is sent; the error says which field is wrong. A
// zero Subject passes: the server fills it with the caller.
func (r Request) Check(now time.Time) error {
	g := r.Grant(now, false)
	if g.ID == "" {
		g.ID = "g-check"
	}
	if g.Subject == (grants.Subject{}) {
		g.Subject.Subject = "caller"
	}
	if r.Duration <= 0 {
		return fmt.Errorf("duration %s: must be positive, e.g. 2h", r.Duration)
	}
	return g.Validate()
}

// idEncoding spells generated ids: lower-case base32, no padding.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID generates a grant id: "g-" and 8 random lower-case base32
// characters (40 bits), such as g-k3x9q2ma.
func NewID() (string, error) {
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate a grant id: %w", err)
	}
	return "g-" + idEncoding.EncodeToString(b[:]), nil
}

// Request asks for a grant, to be approved by someone else. It returns the
// grant as the grant workflow recorded it; when the workflow has not
// recorded it within c.Wait (or the caller may not read it), the grant as
// sent, with an empty State.
func (c *Client) Request(ctx context.Context, r Request) (*grants.Grant, error) {
	return c.start(ctx, r, false)
}

// BreakGlass asks for a grant active at once, without a second person; the
// policy bounds its duration and it asks for an approval after the fact.
// It returns as Request does.
func (c *Client) BreakGlass(ctx context.Context, r Request) (*grants.Grant, error) {
	return c.start(ctx, r, true)
}

func (c *Client) start(ctx context.Context, r Request, breakGlass bool) (*grants.Grant, error) {
	op := grants.OpRequest
	if breakGlass {
		op = grants.OpBreakGlass
	}
	if r.ID == "" {
		id, err := NewID()
		if err != nil {
			return nil, err
		}
		r.ID = id
	}
	if err := r.Check(c.now()); err != nil {
		return nil, fmt.Errorf("%s: %w", opName(op), err)
	}
	sent := r.Grant(c.now(), breakGlass)
	// The frontend sets the times from Duration and its clock: only a
	// NotBefore the caller chose is sent.
	in := RequestInput{Grant: sent, Duration: r.Duration.String()}
	in.Grant.NotBefore, in.Grant.Expires = time.Time{}, time.Time{}
	if !r.NotBefore.IsZero() {
		in.Grant.NotBefore = r.NotBefore.UTC()
	}
	_, err := c.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       WorkflowID(r.ID),
		TaskQueue:                                TaskQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}, WorkflowType, in)
	if err != nil {
		return nil, mapError(op, r.ID, c.address, err)
	}
	g := c.waitRecorded(ctx, r.ID)
	if g == nil {
		return &sent, nil // not recorded yet: the times are the client's estimate
	}
	return g, nil
}

// waitRecorded describes the grant workflow until its memo holds the grant,
// for at most c.Wait; nil when it does not by then, or when the grant cannot
// be read (a policy that lets the caller request but not read grants): the
// start has succeeded, and failing now would invite a second request.
func (c *Client) waitRecorded(ctx context.Context, id string) *grants.Grant {
	ctx, cancel := context.WithTimeout(ctx, c.Wait)
	defer cancel()
	delay := 50 * time.Millisecond
	for {
		g, err := c.Get(ctx, id)
		switch {
		case err == nil && g.State != "":
			return g
		case err != nil && !errors.Is(err, errNoMemo) && !isNotFound(err):
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

var errNoMemo = errors.New("the grant workflow has not recorded the grant yet")

func isNotFound(err error) bool {
	var nf *NotFoundError
	return errors.As(err, &nf)
}

// Get is the grant with id, as its workflow records it
// (DescribeWorkflowExecution).
func (c *Client) Get(ctx context.Context, id string) (*grants.Grant, error) {
	if !grants.ValidID(id) {
		return nil, &InvalidIDError{ID: id}
	}
	resp, err := c.c.DescribeWorkflowExecution(ctx, WorkflowID(id), "")
	if err != nil {
		return nil, mapError("describe", id, c.address, err)
	}
	g, err := decodeMemo(resp.GetWorkflowExecutionInfo().GetMemo())
	if err != nil {
		return nil, fmt.Errorf("grant %s: %w", id, err)
	}
	return g, nil
}

// Approve makes the requested grant id active, or approves a break-glass
// grant after the fact; it returns the grant after the change.
func (c *Client) Approve(ctx context.Context, id, reason string) (*grants.Grant, error) {
	return c.update(ctx, UpdateApprove, id, reason)
}

// Deny refuses the requested grant id; it returns the grant after the change.
func (c *Client) Deny(ctx context.Context, id, reason string) (*grants.Grant, error) {
	return c.update(ctx, UpdateDeny, id, reason)
}

// Revoke ends the grant id before its expiry; it returns the grant after the
// change.
func (c *Client) Revoke(ctx context.Context, id, reason string) (*grants.Grant, error) {
	return c.update(ctx, UpdateRevoke, id, reason)
}

func (c *Client) update(ctx context.Context, name, id, reason string) (*grants.Grant, error) {
	if !grants.ValidID(id) {
		return nil, &InvalidIDError{ID: id}
	}
	if len(reason) > grants.MaxReasonBytes {
		return nil, fmt.Errorf("%s: reason: %d bytes, at most %d", opName(name), len(reason), grants.MaxReasonBytes)
	}
	// By and At are the frontend's: it overwrites them with the verified
	// caller and its clock.
	h, err := c.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   WorkflowID(id),
		UpdateName:   name,
		Args:         []any{UpdateInput{Reason: reason}},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return nil, mapError(name, id, c.address, err)
	}
	var g grants.Grant
	if err := h.Get(ctx, &g); err != nil {
		return nil, mapError(name, id, c.address, err)
	}
	return &g, nil
}

// List is every grant of the grants namespace (ListWorkflowExecutions, all
// pages), in the order Sort gives at the client's clock. A grant workflow
// whose memo does not hold a grant (just started, or unreadable) is listed
// with its id and an empty State.
func (c *Client) List(ctx context.Context) ([]grants.Grant, error) {
	var out []grants.Grant
	var token []byte
	for {
		resp, err := c.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace:     c.namespace,
			Query:         fmt.Sprintf("WorkflowType = '%s'", WorkflowType),
			NextPageToken: token,
		})
		if err != nil {
			return nil, mapError(grants.OpList, "", c.address, err)
		}
		for _, e := range resp.GetExecutions() {
			g, err := decodeMemo(e.GetMemo())
			if err != nil {
				g = &grants.Grant{ID: strings.TrimPrefix(e.GetExecution().GetWorkflowId(), WorkflowIDPrefix)}
			}
			out = append(out, *g)
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			break
		}
	}
	Sort(out, c.now())
	return out, nil
}

// AwaitsApproval reports whether g is a break-glass grant, active without a
// second person, still waiting for its approval after the fact.
func AwaitsApproval(g *grants.Grant, now time.Time) bool {
	return g.BreakGlass && g.ApprovedBy == nil && g.At(now) == grants.StateActive
}

// Sort orders grants for people at time now: first those waiting for an
// approval (requested, and break-glass grants awaiting theirs after the
// fact) by request time, then the active ones by expiry (soonest first),
// then the ended ones (denied, revoked, expired) most recent first, then
// those of unknown state by id.
func Sort(gs []grants.Grant, now time.Time) {
	group := func(g *grants.Grant) int {
		switch g.At(now) {
		case grants.StateRequested:
			return 0
		case grants.StateActive:
			if AwaitsApproval(g, now) {
				return 0
			}
			return 1
		case grants.StateDenied, grants.StateRevoked, grants.StateExpired:
			return 2
		}
		return 3
	}
	ended := func(g *grants.Grant) time.Time {
		if !g.EndedAt.IsZero() && g.EndedAt.Before(g.Expires) {
			return g.EndedAt
		}
		return g.Expires
	}
	slices.SortStableFunc(gs, func(a, b grants.Grant) int {
		ga, gb := group(&a), group(&b)
		if c := cmp.Compare(ga, gb); c != 0 {
			return c
		}
		var c int
		switch ga {
		case 0:
			c = a.RequestedAt.Compare(b.RequestedAt)
		case 1:
			c = a.Expires.Compare(b.Expires)
		case 2:
			c = ended(&b).Compare(ended(&a))
		}
		return cmp.Or(c, strings.Compare(a.ID, b.ID))
	})
}

// decodeMemo reads the grant of a grant workflow's memo.
func decodeMemo(m *commonpb.Memo) (*grants.Grant, error) {
	p, ok := m.GetFields()[MemoKey]
	if !ok {
		return nil, errNoMemo
	}
	var g grants.Grant
	if err := converter.GetDefaultDataConverter().FromPayload(p, &g); err != nil {
		return nil, fmt.Errorf("memo %q does not hold a grant: %w", MemoKey, err)
	}
	return &g, nil
}

// DeniedError is the server's refusal of an operation (gRPC
// PermissionDenied): the policy's reason, verbatim.
type DeniedError struct {
	Op     string // request, break_glass, approve, deny, revoke, list, connect
	ID     string // the grant, when the operation names one
	Reason string // the server's message, verbatim
}

func (e *DeniedError) Error() string {
	if e.Op == "connect" {
		return "the server refused the connection: " + e.Reason + " (check your token: --api-key, --api-key-file or TEMPORAL_API_KEY, or your client certificate)"
	}
	what := opName(e.Op)
	if e.ID != "" {
		what += " grant " + e.ID
	}
	return what + ": denied by the server: " + e.Reason
}

// NotFoundError says there is no grant with the id (or no grants namespace).
type NotFoundError struct {
	ID  string // "" when the namespace is missing
	Msg string // the whole message
}

func (e *NotFoundError) Error() string { return e.Msg }

// InvalidIDError is an id that cannot name a grant.
type InvalidIDError struct{ ID string }

func (e *InvalidIDError) Error() string {
	return fmt.Sprintf("grant id %q: an id is 1-63 lower-case letters, digits and dashes, as 'grant list' shows it (e.g. g-k3x9q2ma)", e.ID)
}

// ConnectError is a server that cannot be reached at Address.
type ConnectError struct {
	Address string
	Err     error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("cannot reach the Temporal frontend at %s: %v (check --address or TEMPORAL_ADDRESS, that the server runs, and the --tls flags for a TLS server)",
		e.Address, e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// opName names an operation in messages.
func opName(op string) string {
	if op == grants.OpBreakGlass {
		return "break-glass"
	}
	return op
}

// mapError turns what the server answered op (on the grant id, "" for none)
// into an error a person can act on; errors it does not know are wrapped
// with the operation.
func mapError(op, id, address string, err error) error {
	var (
		denied  *serviceerror.PermissionDenied
		nf      *serviceerror.NotFound
		nsnf    *serviceerror.NamespaceNotFound
		started *serviceerror.WorkflowExecutionAlreadyStarted
		appErr  *temporal.ApplicationError
		timeout *client.WorkflowUpdateServiceTimeoutOrCanceledError
	)
	what := opName(op)
	if id != "" {
		what += " grant " + id
	}
	switch {
	case errors.As(err, &denied):
		reason := denied.Message
		if reason == "" {
			reason = denied.Reason
		}
		return &DeniedError{Op: op, ID: id, Reason: reason}
	case serviceerror.ToStatus(err).Code() == codes.Unauthenticated:
		return &DeniedError{Op: op, ID: id, Reason: serviceerror.ToStatus(err).Message()}
	case errors.As(err, &nsnf):
		return &NotFoundError{Msg: fmt.Sprintf("%s: the server at %s has no grants namespace: %s (is the grant service on? give --grants-namespace if it is another)", what, address, nsnf.Message)}
	case errors.As(err, &nf):
		if id == "" {
			return fmt.Errorf("%s: %w", what, err)
		}
		if strings.Contains(nf.Message, "already completed") {
			return &NotFoundError{ID: id, Msg: fmt.Sprintf("grant %s has ended: there is nothing to %s (see 'grant list')", id, opName(op))}
		}
		return &NotFoundError{ID: id, Msg: "no grant " + id}
	case errors.As(err, &started):
		return fmt.Errorf("%s: grant %s already exists: give another --id, or none to have one generated", what, id)
	case errors.As(err, &appErr):
		// The grant workflow refused the update (a grant no longer
		// requested, ...): its message says why.
		return fmt.Errorf("%s: %s", what, appErr.Message())
	case errors.As(err, &timeout):
		return fmt.Errorf("%s: no answer from the grant service in time (is its worker running?): %w", what, err)
	}
	if op == "connect" || serviceerror.ToStatus(err).Code() == codes.Unavailable {
		return &ConnectError{Address: address, Err: err}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// quietLogger drops the SDK's log lines: the command reports errors itself.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}

var _ log.Logger = quietLogger{}
