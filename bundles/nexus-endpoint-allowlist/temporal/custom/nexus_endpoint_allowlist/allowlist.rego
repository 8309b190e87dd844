# METADATA
# title: Nexus endpoint allowlist
# description: |
#   Temporal Cloud's Nexus endpoint access policy for self-hosted Temporal: per
#   Nexus endpoint, the caller namespaces whose workflows may schedule
#   operations on it (data.temporal.custom.nexus_endpoint_allowlist.endpoints,
#   endpoint name to namespace names). An endpoint not listed allows no caller.
#   Checked where an operation is scheduled (the ScheduleNexusOperation
#   commands of RespondWorkflowTaskCompleted, StartNexusOperationExecution) and
#   again where Temporal dispatches it to the endpoint (DispatchByEndpoint),
#   whose caller namespace is the one in the link Temporal's history service
#   attaches. Every other call is decided by the default policy as before.
package temporal.custom.nexus_endpoint_allowlist

_wf := "temporal.api.workflowservice.v1.WorkflowService"

_nexus := "temporal.api.nexusservice.v1.NexusService"

# The endpoint Temporal uses for its own operations (commonnexus.SystemEndpoint):
# not a registered endpoint, and no name one can register (names match
# ^[a-zA-Z][a-zA-Z0-9-]*[a-zA-Z0-9]$).
_system_endpoint := "__temporal_system"

# METADATA
# scope: document
# title: Deny scheduling on endpoints that do not allow the caller namespace
# description: |
#   One reason per Nexus endpoint the call would schedule an operation on whose
#   allowlist does not include the caller namespace (the namespace of the call),
#   naming the command, the endpoint, the namespace and how to allow it.
deny contains reason if {
	input.target.service == _wf
	input.target.method == "RespondWorkflowTaskCompleted"
	some i
	endpoint := input.request.commands[i].schedule_nexus_operation_command_attributes.endpoint
	not _allows(endpoint, input.target.namespace)
	reason := sprintf("RespondWorkflowTaskCompleted in namespace %q schedules a Nexus operation (commands[%d]): %s", [
		input.target.namespace,
		i,
		_not_allowed_text(endpoint, input.target.namespace),
	])
}

# A standalone Nexus operation, started by a client in the caller namespace.
deny contains reason if {
	input.target.service == _wf
	input.target.method == "StartNexusOperationExecution"
	endpoint := input.request.endpoint
	not _allows(endpoint, input.target.namespace)
	reason := sprintf("StartNexusOperationExecution in namespace %q: %s", [
		input.target.namespace,
		_not_allowed_text(endpoint, input.target.namespace),
	])
}

# METADATA
# scope: rule
# title: Deny dispatching to an endpoint for a caller namespace it does not allow
# description: |
#   The dispatch of an operation's start to the endpoint (DispatchByEndpoint,
#   input.target.nexus_endpoint; input.target.namespace is the handler's
#   namespace, not the caller's). Temporal's history service makes it as the
#   internal principal, with one link to what scheduled the operation,
#   temporal:///namespaces/<caller namespace>/workflows/... (or
#   .../nexus-operations/... for a standalone operation): the caller namespace.
#   Catches operations scheduled before the allowlist changed, at their next
#   attempt. Cancellations are not checked.
deny contains reason if {
	_dispatch_start
	data.temporal.authz.internal_principal
	some caller in dispatch_callers
	not _allows(input.target.nexus_endpoint, caller)
	reason := sprintf("DispatchByEndpoint of a Nexus operation scheduled in namespace %q: %s", [
		caller,
		_not_allowed_text(input.target.nexus_endpoint, caller),
	])
}

deny contains reason if {
	_dispatch_start
	data.temporal.authz.internal_principal
	count(dispatch_callers) == 0
	reason := sprintf(
		"DispatchByEndpoint to Nexus endpoint %q is denied by the Nexus endpoint allowlist: the request names no caller namespace (no temporal:///namespaces/<namespace>/ link)",
		[input.target.nexus_endpoint],
	)
}

# Anyone else calling the endpoint directly (the Nexus HTTP API with a token):
# its links are its own claim, so there is no caller namespace to check.
deny contains reason if {
	_dispatch
	not data.temporal.authz.internal_principal
	reason := sprintf(
		"DispatchByEndpoint to Nexus endpoint %q by a caller other than Temporal's history service is denied by the Nexus endpoint allowlist: a direct call names no caller namespace the allowlist can trust; schedule the operation from a workflow in an allowed namespace",
		[input.target.nexus_endpoint],
	)
}

# METADATA
# title: Dispatch callers
# description: |
#   The caller namespaces of a dispatch to an endpoint: the namespace segment of
#   the start request's temporal:///namespaces/<namespace>/ links. A segment
#   with an escape (%) is not read: its name could not be compared exactly.
dispatch_callers contains ns if {
	_dispatch_start
	some i
	url := input.request.request.start_operation.links[i].url
	[_, ns] := regex.find_all_string_submatch_n(`^temporal:///namespaces/([^/?#%]+)/`, url, 1)[0]
}

_dispatch if {
	input.target.service == _nexus
	input.target.method == "DispatchByEndpoint"
}

# Starts only: a cancellation carries no links, and may stop what was started.
_dispatch_start if {
	_dispatch
	input.request.request.start_operation.operation
}

# METADATA
# title: Allowed caller namespaces
# description: The caller namespaces data.json lists for each endpoint (exact, case-sensitive names).
allowed_callers[endpoint] contains ns if {
	some endpoint, namespaces in data.temporal.custom.nexus_endpoint_allowlist.endpoints
	some ns in namespaces
	is_string(ns)
}

_allows(endpoint, _) if endpoint == _system_endpoint

_allows(endpoint, ns) if ns in allowed_callers[endpoint]

_not_allowed_text(endpoint, ns) := sprintf(
	"Nexus endpoint %q does not allow caller namespace %q (%s); to allow it, add %q to endpoints[%q] in data.temporal.custom.nexus_endpoint_allowlist (the bundle's data.json)",
	[endpoint, ns, _allowed_text(endpoint), ns, endpoint],
)

_allowed_text(endpoint) := sprintf("allowed: %s", [concat(", ", [sprintf("%q", [ns]) | some ns in sort(allowed_callers[endpoint])])]) if {
	count(allowed_callers[endpoint]) > 0
} else := "the endpoint is not in the allowlist: no caller namespace is allowed"
