package wiring

import (
	"context"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/authorization"
)

// grantsAuthorizer is the authorizer the server gets when grants are on: the
// policy's, except that the grant service's own calls (Temporal's internal
// principal, through the internal-frontend, on the grants namespace: the
// follower's list every poll interval, the worker's polls and completions)
// are allowed without evaluating the policy. They are the service's
// mechanics, not decisions: evaluated, a policy that restricts listing or
// polling would stop grants from working, and the decision log would hold an
// event per frontend per poll. Every call on the grants namespace by a caller
// other than the internal principal is decided as before (by the policy and
// the grant service's interceptor), except the cross-namespace commands of
// other namespaces' workflows aimed at it (a child workflow, a signal, a
// cancellation), which are denied.
type grantsAuthorizer struct {
	authorization.Authorizer
	namespace string
}

func (g grantsAuthorizer) Authorize(ctx context.Context, c *authorization.Claims, t *authorization.CallTarget) (authorization.Result, error) {
	if g.namespace != "" && c != nil && c.AuthType == authorization.InternalPrincipalType && t != nil && t.Namespace == g.namespace {
		return authorization.Result{Decision: authorization.DecisionAllow,
			Principal: &commonpb.Principal{Type: c.AuthType, Name: c.Subject}}, nil
	}
	if g.namespace != "" && t != nil && t.Namespace == g.namespace {
		if _, ok := t.Request.(*workflowservice.RespondWorkflowTaskCompletedRequest); ok {
			// A command of a workflow of another namespace aimed at the grants
			// namespace (system.enableCrossNamespaceCommands): a child grant
			// workflow would skip the grant service's checks.
			return authorization.Result{Decision: authorization.DecisionDeny,
				Reason: "the grants namespace is changed only through `temporal-opa grant`, not by workflows of other namespaces"}, nil
		}
	}
	return g.Authorizer.Authorize(ctx, c, t)
}

// ServerAuthorizer is the authorizer to install in the server: the policy's,
// with the grant service's own calls allowed without it when grants are on
// (see grantsAuthorizer).
func (a *Auth) ServerAuthorizer() authorization.Authorizer {
	if a.Grants == nil {
		return a.Authorizer
	}
	return grantsAuthorizer{Authorizer: a.Authorizer, namespace: a.Grants.Namespace()}
}
