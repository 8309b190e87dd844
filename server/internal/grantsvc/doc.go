// Package grantsvc runs time-bound access grants (package policy/grants) on
// Temporal itself: each grant is a workflow in the grants namespace, with
// request, approval, denial and revocation as calls checked by the frontend
// and decided by the policy, expiry as the workflow's timer, and every
// frontend following the active grants through visibility.
//
// The parts, all in the process that runs the frontend:
//
//   - protocol.go: the wire protocol shared with `temporal-opa grant` (the
//     client): the workflow type, task queue, workflow ids, memo key, updates
//     and their arguments.
//   - [Interceptor] (interceptor.go): a frontend interceptor, after Temporal's
//     authorization interceptor. Every call on the grants namespace by a caller
//     other than Temporal's internal principal is a grant operation or
//     refused: a StartWorkflowExecution is a request or a break glass, checked,
//     stamped with the verified caller and the frontend's clock, decided by
//     the policy (Authorizer.DecideGrant) and rebuilt from scratch; an
//     UpdateWorkflowExecution approve, deny or revoke is decided on the stored
//     grant and its argument overwritten with the verified caller; reads
//     (List, Count, Describe, PollWorkflowExecutionUpdate) are decided as
//     grants.OpList, lists kept to the grant workflows.
//   - [Workflows] (workflow.go): the grant workflow, one per grant, its state
//     in its memo; its update validators check states and four eyes again.
//   - [Follower] (follower.go): lists the running grant workflows every poll
//     interval and gives them, with the grants ended within the last hour, to
//     Authorizer.SetGrants; an operation this frontend served applies at once.
//   - [Service] (service.go): the SDK client of the internal-frontend (where
//     the service is Temporal's internal principal), the grants namespace
//     (registered when missing), the worker of the grant workflows and the
//     follower, started in the background once the server starts.
//
// Everything fails closed: before the first load no grant is honoured, a
// grant operation whose decision fails is refused, a poll that fails keeps
// the last grants (which still end at their expiry, by the authorizer's clock).
package grantsvc
