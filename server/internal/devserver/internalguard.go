package devserver

import (
	"context"

	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/service/frontend/configs"
)

// internalGuard is the authorizer start-dev gives Temporal: the policy's, except
// that Temporal's internal principal may not dispatch Nexus tasks by namespace
// and task queue.
//
// The internal-frontend's HTTP port serves Temporal's Nexus routes beside its
// HTTP API (see serverConfig), and every caller there is the internal
// principal. Its HTTP API refuses browsers (frontend.httpAllowedHosts), but the
// Nexus routes answer any Host, so a web page could POST (no-cors, text/plain)
// to /namespaces/default/task-queues/<queue>/nexus-services/<service>/<operation>
// and run a worker's Nexus operation with a guessed queue name. Temporal's own
// services never call that route in a single cluster (history dispatches by
// endpoint id, which a page cannot know: TestNexusOperationThroughWorkerEndpoint;
// it is for forwarding to another cluster), so it is denied to the internal
// principal; on the public frontend the policy decides it as before.
type internalGuard struct{ authorization.Authorizer }

func (g internalGuard) Authorize(ctx context.Context, c *authorization.Claims, t *authorization.CallTarget) (authorization.Result, error) {
	if c != nil && c.AuthType == authorization.InternalPrincipalType && t != nil &&
		t.APIName == configs.DispatchNexusTaskByNamespaceAndTaskQueueAPIName {
		return authorization.Result{Decision: authorization.DecisionDeny,
			Reason: "start-dev: the internal-frontend does not dispatch Nexus tasks by namespace and task queue; call the frontend with a token"}, nil
	}
	return g.Authorizer.Authorize(ctx, c, t)
}
