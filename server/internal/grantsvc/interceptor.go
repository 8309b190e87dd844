package grantsvc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	updatepb "go.temporal.io/api/update/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/server/common/authorization"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/grants"
)

// Decider decides grant operations; *policy.Authorizer is one.
type Decider interface {
	DecideGrant(ctx context.Context, claims *authorization.Claims, op string, g grants.Grant) (policy.GrantDecision, error)
}

// Store reads a stored grant: the memo of the grant workflow wid, and the
// run it was read from. It returns a *serviceerror.NotFound when there is no
// such workflow.
type Store interface {
	Grant(ctx context.Context, wid string) (g grants.Grant, runID string, err error)
}

// Interceptor checks every call on the grants namespace from a caller other
// than Temporal's internal principal, on the frontend, after Temporal's
// authorization interceptor: requests and break glasses
// (StartWorkflowExecution), approvals, denials and revocations
// (UpdateWorkflowExecution) are decided by the policy and rebuilt from what
// the frontend checked and stamped (the verified caller, its clock); reads
// are decided as grants.OpList; every other call is refused.
type Interceptor struct {
	Namespace string
	Decider   Decider
	// Store reads stored grants; nil while the grant service starts (updates
	// are then refused as unavailable).
	Store func() Store
	// Applied, when set, receives the grant after each operation this
	// frontend served (Follower.Apply).
	Applied func(grants.Grant)
	Log     *slog.Logger
	Now     func() time.Time
}

const servicePrefix = "/temporal.api.workflowservice.v1.WorkflowService/"

// errOnlyGrant is the refusal of every call on the grants namespace outside the protocol.
var errOnlyGrant = denied("the grants namespace is changed only through `temporal-opa grant`")

// denied is a refusal: PermissionDenied, its reason in the message and in the
// details (as Temporal's authorization interceptor gives a policy's reason).
func denied(reason string) error {
	return serviceerror.NewPermissionDenied(reason, reason)
}

// Intercept is the grpc.UnaryServerInterceptor.
func (i *Interceptor) Intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	nr, ok := req.(interface{ GetNamespace() string })
	if !ok || nr.GetNamespace() != i.Namespace || i.Namespace == "" {
		return handler(ctx, req)
	}
	claims, _ := ctx.Value(authorization.MappedClaims).(*authorization.Claims)
	if claims != nil && claims.AuthType == authorization.InternalPrincipalType {
		return handler(ctx, req) // Temporal's own services and the grant worker
	}
	if claims == nil || claims.Subject == "" {
		return nil, denied("grant operations need a verified caller (a token or a client certificate)")
	}
	method, _ := strings.CutPrefix(info.FullMethod, servicePrefix)
	switch r := req.(type) {
	case *workflowservice.StartWorkflowExecutionRequest:
		return i.start(ctx, claims, r, handler)
	case *workflowservice.UpdateWorkflowExecutionRequest:
		return i.update(ctx, claims, r, handler)
	case *workflowservice.ListWorkflowExecutionsRequest:
		q, err := i.listQuery(ctx, claims, r.GetQuery(), method)
		if err != nil {
			return nil, err
		}
		out := &workflowservice.ListWorkflowExecutionsRequest{Namespace: r.GetNamespace(), PageSize: r.GetPageSize(), NextPageToken: r.GetNextPageToken(), Query: q}
		return handler(ctx, out)
	case *workflowservice.CountWorkflowExecutionsRequest:
		q, err := i.listQuery(ctx, claims, r.GetQuery(), method)
		if err != nil {
			return nil, err
		}
		return handler(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: r.GetNamespace(), Query: q})
	case *workflowservice.DescribeWorkflowExecutionRequest:
		if err := i.decideRead(ctx, claims, i.known(ctx, r.GetExecution().GetWorkflowId()), method); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	case *workflowservice.PollWorkflowExecutionUpdateRequest:
		if err := i.decideRead(ctx, claims, i.known(ctx, r.GetUpdateRef().GetWorkflowExecution().GetWorkflowId()), method); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
	return nil, errOnlyGrant
}

// listQuery decides a list or a count (grants.OpList) and returns its
// query kept to the grant workflows.
func (i *Interceptor) listQuery(ctx context.Context, claims *authorization.Claims, query, method string) (string, error) {
	q, err := grantQuery(query)
	if err != nil {
		return "", err
	}
	if err := i.decideRead(ctx, claims, grants.Grant{}, method); err != nil {
		return "", err
	}
	return q, nil
}

// known is the stored grant of workflow wid for a read's decision, or a
// grant naming only its id when it cannot be read.
func (i *Interceptor) known(ctx context.Context, wid string) grants.Grant {
	id, ok := strings.CutPrefix(wid, WorkflowIDPrefix)
	if !ok {
		return grants.Grant{}
	}
	if st := i.store(); st != nil {
		if g, _, err := st.Grant(ctx, wid); err == nil {
			return g
		}
	}
	return grants.Grant{ID: id}
}

func (i *Interceptor) store() Store {
	if i.Store == nil {
		return nil
	}
	return i.Store()
}

func (i *Interceptor) now() time.Time {
	if i.Now != nil {
		return i.Now()
	}
	return time.Now()
}

func (i *Interceptor) log() *slog.Logger {
	if i.Log != nil {
		return i.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (i *Interceptor) decideRead(ctx context.Context, claims *authorization.Claims, g grants.Grant, method string) error {
	_, err := i.decide(ctx, claims, grants.OpList, g, method)
	return err
}

// decide asks the policy; a refusal, or a decision that failed, is a
// PermissionDenied with the policy's reason.
func (i *Interceptor) decide(ctx context.Context, claims *authorization.Claims, op string, g grants.Grant, method string) (policy.GrantDecision, error) {
	if i.Decider == nil {
		return policy.GrantDecision{}, denied("grant operations are not decided by this server")
	}
	d, err := i.Decider.DecideGrant(ctx, claims, op, g)
	if err != nil {
		i.log().Warn("grants: the grant decision failed; the operation is refused", "op", op, "grant", g.ID, "method", method,
			"subject", claims.Subject, "error", err)
		reason := d.Reason
		if reason == "" {
			reason = "the policy could not decide"
		}
		return d, denied(fmt.Sprintf("grant %s refused: %s", op, reason))
	}
	if !d.Allow {
		reason := d.Reason
		if reason == "" {
			reason = "the policy does not allow it"
		}
		return d, denied(fmt.Sprintf("grant %s refused: %s", op, reason))
	}
	return d, nil
}

var dc = converter.GetDefaultDataConverter()

// start decides and rebuilds a request or a break glass.
func (i *Interceptor) start(ctx context.Context, claims *authorization.Claims, r *workflowservice.StartWorkflowExecutionRequest, handler grpc.UnaryHandler) (any, error) {
	if r.GetWorkflowType().GetName() != WorkflowType || r.GetTaskQueue().GetName() != TaskQueue ||
		!strings.HasPrefix(r.GetWorkflowId(), WorkflowIDPrefix) {
		return nil, errOnlyGrant
	}
	id := strings.TrimPrefix(r.GetWorkflowId(), WorkflowIDPrefix)
	if !grants.ValidID(id) {
		return nil, status.Errorf(codes.InvalidArgument, "grant id %q: use 1-63 lower-case letters, digits and dashes", id)
	}
	ps := r.GetInput().GetPayloads()
	if len(ps) != 1 {
		return nil, status.Errorf(codes.InvalidArgument, "a grant request takes one argument (RequestInput), got %d", len(ps))
	}
	var in RequestInput
	if err := dc.FromPayload(ps[0], &in); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "a grant request's argument is not a RequestInput: %v", err)
	}
	g, err := i.requested(claims, id, in)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	op := grants.OpRequest
	if g.BreakGlass {
		op = grants.OpBreakGlass
	}
	if _, err := i.decide(ctx, claims, op, g, "StartWorkflowExecution"); err != nil {
		return nil, err
	}
	input, err := dc.ToPayloads(RequestInput{Grant: g, Duration: in.Duration})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode the grant request: %v", err)
	}
	memo, err := dc.ToPayload(g)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode the grant: %v", err)
	}
	requestID := r.GetRequestId()
	if requestID == "" || len(requestID) > 255 {
		requestID = randomID()
	}
	out := &workflowservice.StartWorkflowExecutionRequest{
		Namespace:             r.GetNamespace(),
		WorkflowId:            WorkflowID(g.ID),
		WorkflowType:          &commonpb.WorkflowType{Name: WorkflowType},
		TaskQueue:             &taskqueuepb.TaskQueue{Name: TaskQueue, Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
		Input:                 input,
		Memo:                  &commonpb.Memo{Fields: map[string]*commonpb.Payload{MemoKey: memo}},
		WorkflowIdReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		RequestId:             requestID,
		Identity:              "temporal-opa grant: " + g.RequestedBy.String(),
	}
	resp, err := handler(ctx, out)
	if err != nil {
		return resp, err // WorkflowExecutionAlreadyStarted: a grant with this id exists
	}
	if g.BreakGlass {
		i.log().Warn("BREAK GLASS: a grant is active at once, without a second person; approve it after the fact",
			"grant", g.ID, "subject", g.Subject.String(), "access", g.Access(), "expires", g.Expires, "requested_by", g.RequestedBy.String(), "reason", g.Reason)
	} else {
		i.log().Info("grants: grant requested", "grant", g.ID, "subject", g.Subject.String(), "access", g.Access(),
			"requested_by", g.RequestedBy.String())
	}
	if i.Applied != nil {
		i.Applied(g)
	}
	return resp, nil
}

// requested is the grant of a request as the frontend stamps it: the
// client's fields that say what is asked for (no subject: the caller), the
// id of the workflow, the times from Duration and the frontend's clock, the
// state, and the verified requester.
func (i *Interceptor) requested(claims *authorization.Claims, id string, in RequestInput) (grants.Grant, error) {
	c := in.Grant
	now := i.now().UTC().Truncate(time.Millisecond)
	d, err := time.ParseDuration(in.Duration)
	if err != nil || d <= 0 {
		return grants.Grant{}, fmt.Errorf("duration %q: give a positive duration such as 2h or 30m", in.Duration)
	}
	start := c.NotBefore.UTC()
	if start.Before(now) {
		start = now
	}
	by := grants.IdentityOf(claims)
	subject := c.Subject
	if subject == (grants.Subject{}) {
		// No subject: the grant is for the caller.
		subject = grants.Subject{Subject: by.Subject, Issuer: by.Issuer}
	}
	g := grants.Grant{
		ID: id, Subject: subject, Namespace: c.Namespace, Role: c.Role, APIs: c.APIs,
		NotBefore: start, Expires: start.Add(d), Reason: c.Reason, BreakGlass: c.BreakGlass,
		State:       grants.StateRequested,
		RequestedBy: by, RequestedAt: now,
	}
	if g.BreakGlass {
		g.State = grants.StateActive
	}
	if g.RequestedBy.Subject == "" {
		return g, errors.New("the caller has no verified subject")
	}
	for name, v := range map[string]string{"subject": subject.Subject, "subject issuer": subject.Issuer, "subject claim": subject.Claim,
		"subject value": subject.Value, "namespace": g.Namespace} {
		if len(v) > maxFieldBytes {
			return g, fmt.Errorf("%s: %d bytes, at most %d", name, len(v), maxFieldBytes)
		}
	}
	if err := g.Validate(); err != nil {
		return g, fmt.Errorf("grant request: %w", err)
	}
	return g, nil
}

// maxFieldBytes bounds the subject's fields and the namespace of a request.
const maxFieldBytes = 1024

var updateOps = map[string]string{UpdateApprove: grants.OpApprove, UpdateDeny: grants.OpDeny, UpdateRevoke: grants.OpRevoke}

// update decides and rebuilds an approval, a denial or a revocation.
func (i *Interceptor) update(ctx context.Context, claims *authorization.Claims, r *workflowservice.UpdateWorkflowExecutionRequest, handler grpc.UnaryHandler) (any, error) {
	wid := r.GetWorkflowExecution().GetWorkflowId()
	name := r.GetRequest().GetInput().GetName()
	op, ok := updateOps[name]
	if !ok || !strings.HasPrefix(wid, WorkflowIDPrefix) {
		return nil, errOnlyGrant
	}
	var in UpdateInput
	switch ps := r.GetRequest().GetInput().GetArgs().GetPayloads(); len(ps) {
	case 0:
	case 1:
		if err := dc.FromPayload(ps[0], &in); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "the %s update's argument is not an UpdateInput: %v", name, err)
		}
	default:
		return nil, status.Errorf(codes.InvalidArgument, "the %s update takes one argument (UpdateInput), got %d", name, len(ps))
	}
	if len(in.Reason) > grants.MaxReasonBytes {
		return nil, status.Errorf(codes.InvalidArgument, "reason: %d bytes, at most %d", len(in.Reason), grants.MaxReasonBytes)
	}
	st := i.store()
	if st == nil {
		return nil, status.Error(codes.Unavailable, "the grant service is starting: try again in a few seconds")
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	stored, runID, err := st.Grant(rctx, wid)
	cancel()
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return nil, status.Errorf(codes.NotFound, "no grant %s", strings.TrimPrefix(wid, WorkflowIDPrefix))
		}
		i.log().Warn("grants: reading a grant failed", "workflow_id", wid, "error", err)
		return nil, status.Error(codes.Unavailable, "the grant could not be read: try again")
	}
	by := grants.IdentityOf(claims)
	// Four eyes is DecideGrant's first check, whatever the policy says, and
	// the refusal is recorded like every decision; the workflow checks it again.
	if _, err := i.decide(ctx, claims, op, stored, "UpdateWorkflowExecution"); err != nil {
		return nil, err
	}
	args, err := dc.ToPayloads(UpdateInput{By: by, At: i.now().UTC().Truncate(time.Millisecond), Reason: in.Reason})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode the update: %v", err)
	}
	updateID := r.GetRequest().GetMeta().GetUpdateId()
	if updateID == "" || len(updateID) > 255 {
		updateID = randomID()
	}
	out := &workflowservice.UpdateWorkflowExecutionRequest{
		Namespace:         r.GetNamespace(),
		WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: wid, RunId: runID},
		WaitPolicy:        r.GetWaitPolicy(),
		Request: &updatepb.Request{
			Meta:  &updatepb.Meta{UpdateId: updateID, Identity: "temporal-opa grant: " + by.String()},
			Input: &updatepb.Input{Name: name, Args: args},
		},
	}
	resp, err := handler(ctx, out)
	if err != nil {
		return resp, err
	}
	if ur, ok := resp.(*workflowservice.UpdateWorkflowExecutionResponse); ok && i.Applied != nil {
		if ps := ur.GetOutcome().GetSuccess().GetPayloads(); len(ps) == 1 {
			var g grants.Grant
			if err := dc.FromPayload(ps[0], &g); err == nil && g.ID == stored.ID {
				i.Applied(g)
			}
		}
	}
	i.log().Info("grants: grant "+name, "grant", stored.ID, "by", by.String())
	return resp, nil
}

// grantQuery restricts a visibility query to the grant workflows. The
// caller's query is kept inside parentheses, after a check that it cannot
// close them.
func grantQuery(q string) (string, error) {
	base := "WorkflowType = '" + WorkflowType + "'"
	if strings.TrimSpace(q) == "" {
		return base, nil
	}
	if !balanced(q) {
		return "", status.Error(codes.InvalidArgument, "query: unbalanced quotes or parentheses")
	}
	if strings.Contains(strings.ToLower(q), "order by") {
		return "", status.Error(codes.InvalidArgument, "query: ORDER BY is not supported on the grants namespace")
	}
	return base + " AND (" + q + ")", nil
}

// balanced reports whether every quote (', ", `) of q is closed and its
// parentheses, outside quotes, are balanced.
func balanced(q string) bool {
	depth := 0
	var quote rune
	escaped := false
	for _, c := range q {
		switch {
		case quote != 0:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == quote:
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth < 0 {
				return false
			}
		}
	}
	return quote == 0 && depth == 0
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
