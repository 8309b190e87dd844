# METADATA
# title: Workflow-type ACL
# description: |
#   In the namespaces listed in data.temporal.custom.workflow_type_acl.namespaces
#   ("*" for all), a caller may start only workflow types whose name starts with
#   a prefix granted to one of its groups (the verified token's groups claim,
#   input.claims.jwt.groups) in workflow_type_acl.prefixes_by_group. The prefix
#   "" grants every type. Applies to StartWorkflowExecution,
#   SignalWithStartWorkflowExecution, ExecuteMultiOperation, CreateSchedule and
#   UpdateSchedule, and reads the workflow type from input.request (the request
#   body as protojson with proto field names) by its type, input.request_type.
#   Fail closed: a call whose workflow type cannot be read, e.g. with no
#   input.request, is denied.
#   Roles still apply: the default policy decides who may start at all.
package temporal.custom.workflow_type_acl

_wf := "temporal.api.workflowservice.v1.WorkflowService"

# METADATA
# title: ACL APIs
# description: The WorkflowService methods that start workflows or define what a schedule starts.
acl_apis := {
	"StartWorkflowExecution",
	"SignalWithStartWorkflowExecution",
	"ExecuteMultiOperation",
	"CreateSchedule",
	"UpdateSchedule",
}

# METADATA
# scope: document
# title: Deny workflow types outside the caller's prefixes
# description: |
#   One reason per workflow type the call would start that no group of the
#   caller allows, naming the API, the type, the namespace and what the caller
#   may start; and one reason when the workflow type cannot be read.
deny contains reason if {
	_governed
	some name in workflow_types
	is_string(name)
	not _allowed(name)
	reason := sprintf("%s of workflow type %q in namespace %q is denied by the workflow-type ACL: %s", [
		input.target.method,
		name,
		input.target.namespace,
		_allowed_text,
	])
}

deny contains reason if {
	_governed
	_unreadable
	reason := sprintf(
		"%s in namespace %q is denied by the workflow-type ACL: the workflow type cannot be read from the request (input.request)",
		[input.target.method, input.target.namespace],
	)
}

# METADATA
# title: Workflow types
# description: |
#   The workflow type names the call would start, as found in input.request;
#   null for a start whose workflow_type.name is missing. The request is read
#   by fixed paths (not passed whole to a function), so that the authorizer
#   builds and caches decisions by those fields alone.
#   StartWorkflowExecutionRequest, SignalWithStartWorkflowExecutionRequest:
#   the request itself (input.request.workflow_type.name).
workflow_types contains _start_type if {
	input.request_type in {
		"temporal.api.workflowservice.v1.StartWorkflowExecutionRequest",
		"temporal.api.workflowservice.v1.SignalWithStartWorkflowExecutionRequest",
	}
}

# StartWorkflowExecution authorized again for a cross-namespace child workflow
# (system.enableCrossNamespaceCommands): the request is the worker's
# RespondWorkflowTaskCompletedRequest; its start-child commands that target this
# namespace.
workflow_types contains _child_type(i) if {
	input.request_type == "temporal.api.workflowservice.v1.RespondWorkflowTaskCompletedRequest"
	some i
	input.request.commands[i].start_child_workflow_execution_command_attributes.namespace == input.target.namespace
}

# ExecuteMultiOperationRequest (update-with-start): operations[_].start_workflow.
workflow_types contains object.get(operation.start_workflow, ["workflow_type", "name"], null) if {
	input.request_type == "temporal.api.workflowservice.v1.ExecuteMultiOperationRequest"
	some operation in input.request.operations
}

# CreateScheduleRequest, UpdateScheduleRequest: schedule.action.start_workflow.
# A schedule without that action has no readable type, and so is denied.
workflow_types contains _schedule_type if {
	input.request_type in {
		"temporal.api.workflowservice.v1.CreateScheduleRequest",
		"temporal.api.workflowservice.v1.UpdateScheduleRequest",
	}
}

_start_type := name if {
	name := input.request.workflow_type.name
} else := null

_child_type(i) := name if {
	name := input.request.commands[i].start_child_workflow_execution_command_attributes.workflow_type.name
} else := null

_schedule_type := name if {
	name := input.request.schedule.action.start_workflow.workflow_type.name
} else := null

# METADATA
# title: Caller's groups
# description: The caller's groups from the token's groups claim (an array of strings, or one string).
caller_groups contains group if {
	some group in input.claims.jwt.groups
	is_string(group)
}

caller_groups contains input.claims.jwt.groups if is_string(input.claims.jwt.groups)

# METADATA
# title: Allowed prefixes
# description: The workflow type prefixes the caller's groups grant.
allowed_prefixes contains prefix if {
	some group in caller_groups
	some prefix in data.temporal.custom.workflow_type_acl.prefixes_by_group[group]
	is_string(prefix)
}

_governed if {
	input.target.service == _wf
	input.target.method in acl_apis
	_acl_namespace
	not _internal_principal
}

_acl_namespace if input.target.namespace in data.temporal.custom.workflow_type_acl.namespaces

_acl_namespace if "*" in data.temporal.custom.workflow_type_acl.namespaces

# Temporal's own internal principal (internal-frontend), e.g. the scheduler
# starting a schedule's workflows: what a schedule starts was checked at
# CreateSchedule and UpdateSchedule.
_internal_principal if {
	input.claims.auth_type == "temporal"
	input.claims.subject == "internal"
}

_unreadable if count(workflow_types) == 0

_unreadable if {
	some name in workflow_types
	not is_string(name)
}

_allowed(name) if {
	some prefix in allowed_prefixes
	startswith(name, prefix)
}

_allowed_text := sprintf("the caller's groups allow only types starting with %s", [
	concat(", ", [sprintf("%q", [prefix]) | some prefix in sort(allowed_prefixes)]),
]) if {
	count(allowed_prefixes) > 0
} else := "no group of the caller is granted any workflow type (workflow_type_acl.prefixes_by_group)"
