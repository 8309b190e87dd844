package wiring

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
	namespacepb "go.temporal.io/api/namespace/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/authorization"
	"google.golang.org/grpc"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/grants"
	"github.com/temporal-opa/temporal-opa/server/internal/testutil"
)

// groupClaims are the Claims.Extensions of a token with a groups claim.
type groupClaims []any

func (g groupClaims) TokenClaims() map[string]any { return map[string]any{"groups": []any(g)} }
func (g groupClaims) CacheKey() string            { return "" }

// ListNamespaces shows a caller the namespaces it holds a role on, from its
// token or granted by the policy's role rules; temporal-system readers, and
// calls without claims, see every namespace.
func TestFilterNamespaces(t *testing.T) {
	dir := testutil.WriteFiles(t, map[string]string{
		".manifest": `{"roots": ["temporal/custom/groups"]}`,
		"temporal/custom/groups/groups.rego": `package temporal.custom.groups

namespace_roles["payments"] contains "read" if "payments-viewers" in input.claims.jwt.groups

namespace_roles["orders"] contains "worker" if "payments-viewers" in input.claims.jwt.groups

system_roles contains "read" if "platform" in input.claims.jwt.groups
`,
	})
	b, err := policy.LoadBundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	az, err := policy.NewAuthorizer(policy.Options{}, map[string]*bundle.Bundle{"groups": b})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	az.SetGrants([]grants.Grant{{ID: "g-1", Subject: grants.Subject{Subject: "g"}, Namespace: "billing", Role: "write", State: grants.StateActive,
		NotBefore: now.Add(-time.Minute), Expires: now.Add(time.Hour), Reason: "INC-1", RequestedBy: grants.Identity{Subject: "g"}},
		{ID: "g-2", Subject: grants.Subject{Subject: "g"}, Namespace: "orders", Role: "write", State: grants.StateActive,
			NotBefore: now.Add(-time.Hour), Expires: now.Add(-time.Minute), Reason: "INC-0", RequestedBy: grants.Identity{Subject: "g"}}})
	all := &workflowservice.ListNamespacesResponse{NextPageToken: []byte("next")}
	for _, name := range []string{"billing", "orders", "payments", "temporal-system"} {
		all.Namespaces = append(all.Namespaces, &workflowservice.DescribeNamespaceResponse{NamespaceInfo: &namespacepb.NamespaceInfo{Name: name}})
	}
	filter := FilterNamespaces(az, nil)
	info := &grpc.UnaryServerInfo{FullMethod: workflowservice.WorkflowService_ListNamespaces_FullMethodName}
	tests := []struct {
		name   string
		claims *authorization.Claims
		want   []string
	}{
		{"granted read on payments; worker on orders does not list it", &authorization.Claims{Subject: "v", Extensions: groupClaims{"payments-viewers"}}, []string{"payments"}},
		{"token role and granted role", &authorization.Claims{Subject: "w", Namespaces: map[string]authorization.Role{"billing": authorization.RoleWriter}, Extensions: groupClaims{"payments-viewers"}}, []string{"billing", "payments"}},
		{"granted system read sees all", &authorization.Claims{Subject: "p", Extensions: groupClaims{"platform"}}, []string{"billing", "orders", "payments", "temporal-system"}},
		{"token system read sees all", &authorization.Claims{Subject: "s", System: authorization.RoleReader}, []string{"billing", "orders", "payments", "temporal-system"}},
		{"no role sees none", &authorization.Claims{Subject: "n", Extensions: groupClaims{"other"}}, nil},
		{"a time-bound grant lists its namespace; an expired one does not", &authorization.Claims{Subject: "g"}, []string{"billing"}},
		{"no claims: untouched", nil, []string{"billing", "orders", "payments", "temporal-system"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.claims != nil {
				tc.claims.AuthType = "jwt"
				ctx = context.WithValue(ctx, authorization.MappedClaims, tc.claims)
			}
			resp, err := filter(ctx, &workflowservice.ListNamespacesRequest{}, info, func(context.Context, any) (any, error) { return all, nil })
			if err != nil {
				t.Fatal(err)
			}
			list := resp.(*workflowservice.ListNamespacesResponse)
			var got []string
			for _, ns := range list.GetNamespaces() {
				got = append(got, ns.GetNamespaceInfo().GetName())
			}
			if !slices.Equal(got, tc.want) || string(list.GetNextPageToken()) != "next" {
				t.Errorf("listed %v (page token %q), want %v", got, list.GetNextPageToken(), tc.want)
			}
		})
	}
}
