package wiring

import (
	"context"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/authorization"
	"google.golang.org/grpc"
)

// FilterNamespaces is a frontend interceptor, placed after Temporal's
// authorization interceptor, that trims what ListNamespaces returns to a caller
// without read on temporal-system: only the namespaces it holds read, write or
// admin on. The default policy lets only temporal-system readers list
// namespaces, so nothing changes for them; a policy that lets namespace users
// list namespaces (the ui-friendly-reads bundle does, so that the Web UI's
// namespace picker works) shows each of them its own namespaces, not every
// namespace's configuration. Calls without mapped claims (the policy allowed
// them without a token) are left as they are.
func FilterNamespaces(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err != nil || info.FullMethod != workflowservice.WorkflowService_ListNamespaces_FullMethodName {
		return resp, err
	}
	claims, _ := ctx.Value(authorization.MappedClaims).(*authorization.Claims)
	list, ok := resp.(*workflowservice.ListNamespacesResponse)
	if claims == nil || !ok || claims.System >= authorization.RoleReader {
		return resp, err
	}
	out := &workflowservice.ListNamespacesResponse{NextPageToken: list.GetNextPageToken()}
	for _, ns := range list.GetNamespaces() {
		if claims.Namespaces[ns.GetNamespaceInfo().GetName()] >= authorization.RoleReader {
			out.Namespaces = append(out.Namespaces, ns)
		}
	}
	return out, nil
}
