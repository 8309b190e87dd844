package wiring

import (
	"context"
	"log/slog"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/authorization"
	"google.golang.org/grpc"

	"github.com/temporal-opa/temporal-opa/policy"
)

// FilterNamespaces returns a frontend interceptor, placed after Temporal's
// authorization interceptor, that trims what ListNamespaces returns to a caller
// without read on temporal-system: only the namespaces it holds read, write or
// admin on, from its token or granted by the policy's role rules
// (Authorizer.CallerRoles). The default policy lets only temporal-system
// readers list namespaces, so nothing changes for them; a policy that lets
// namespace users list namespaces (the ui-friendly-reads bundle does, so that
// the Web UI's namespace picker works) shows each of them its own namespaces,
// not every namespace's configuration. Calls without mapped claims (the policy
// allowed them without a token) are left as they are. When the role rules
// cannot be evaluated, only the token's roles count (fewer namespaces, never
// more).
func FilterNamespaces(az *policy.Authorizer, log *slog.Logger) grpc.UnaryServerInterceptor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err != nil || info.FullMethod != workflowservice.WorkflowService_ListNamespaces_FullMethodName {
			return resp, err
		}
		claims, _ := ctx.Value(authorization.MappedClaims).(*authorization.Claims)
		list, ok := resp.(*workflowservice.ListNamespacesResponse)
		if claims == nil || !ok {
			return resp, err
		}
		roles, rerr := az.CallerRoles(ctx, claims, &authorization.CallTarget{APIName: info.FullMethod, Request: req})
		if rerr != nil {
			log.Warn("ListNamespaces: the policy's role rules could not be evaluated; listing the namespaces of the token's roles only", "subject", claims.Subject, "error", rerr)
		}
		if roles.System >= authorization.RoleReader {
			return resp, err
		}
		out := &workflowservice.ListNamespacesResponse{NextPageToken: list.GetNextPageToken()}
		for _, ns := range list.GetNamespaces() {
			if roles.Namespaces[ns.GetNamespaceInfo().GetName()] >= authorization.RoleReader {
				out.Namespaces = append(out.Namespaces, ns)
			}
		}
		return out, nil
	}
}
