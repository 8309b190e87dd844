package policy_test

import (
	"context"
	"fmt"
	"testing"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/api/adminservice/v1"
	"go.temporal.io/server/common/authorization"
	frontendconfigs "go.temporal.io/server/service/frontend/configs"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/temporal-opa/temporal-opa/policy"
)

// methodNames lists the full method names of a generated gRPC service: its unary
// methods and its streams.
func methodNames(desc grpc.ServiceDesc) []string {
	var names []string
	for _, m := range desc.Methods {
		names = append(names, "/"+desc.ServiceName+"/"+m.MethodName)
	}
	for _, s := range desc.Streams {
		names = append(names, "/"+desc.ServiceName+"/"+s.StreamName)
	}
	return names
}

// parityAPIs is every API the parity test decides: all of WorkflowService and
// OperatorService, a sample of AdminService, the Nexus dispatch and other
// non-gRPC API names the frontend authorizes, health checks and an unknown API.
func parityAPIs(t *testing.T) []string {
	t.Helper()
	apis := methodNames(workflowservice.WorkflowService_ServiceDesc)
	apis = append(apis, methodNames(operatorservice.OperatorService_ServiceDesc)...)
	admin := methodNames(adminservice.AdminService_ServiceDesc)
	for i := 0; i < len(admin); i += 7 {
		apis = append(apis, admin[i])
	}
	apis = append(apis,
		frontendconfigs.DispatchNexusTaskByNamespaceAndTaskQueueAPIName,
		frontendconfigs.DispatchNexusTaskByEndpointAPIName,
		frontendconfigs.CompleteNexusOperation,
		frontendconfigs.OpenAPIV2APIName,
		frontendconfigs.OpenAPIV3APIName,
		frontendconfigs.PollWorkflowHistoryAPIName,
		frontendconfigs.PollActivityExecutionAPIName,
		healthpb.Health_Check_FullMethodName,
		"/temporal.api.workflowservice.v1.WorkflowService/NoSuchMethod",
		"/example.v1.Unknown/Do",
		"",
	)
	if len(apis) < 150 {
		t.Fatalf("only %d APIs enumerated from the service descriptors; expected the full WorkflowService and OperatorService", len(apis))
	}
	return apis
}

// parityClaims is nil claims, every system role 0-15 with every role 0-15 on the
// target namespace, roles only on another namespace, roles on a differently-cased
// namespace, and Temporal's internal principal.
func parityClaims(target string) []*authorization.Claims {
	out := []*authorization.Claims{nil, {System: authorization.RoleAdmin, Subject: authorization.InternalPrincipalName, AuthType: authorization.InternalPrincipalType}}
	for s := authorization.Role(0); s < 16; s++ {
		for n := authorization.Role(0); n < 16; n++ {
			out = append(out,
				&authorization.Claims{Subject: "alice", AuthType: "jwt", System: s, Namespaces: map[string]authorization.Role{target: n}},
				&authorization.Claims{Subject: "bob", AuthType: "jwt", System: s, Namespaces: map[string]authorization.Role{"other-" + target: n}},
			)
			if n > 0 {
				out = append(out, &authorization.Claims{Subject: "carol", AuthType: "jwt", System: s, Namespaces: map[string]authorization.Role{"PAYMENTS": n}})
			}
		}
	}
	return out
}

// TestParityWithTemporalDefaultAuthorizer compares the embedded policy with
// authorization.NewDefaultAuthorizer on every case; no difference is allowed.
func TestParityWithTemporalDefaultAuthorizer(t *testing.T) {
	ctx := context.Background()
	for _, cache := range []struct {
		name string
		size int
	}{{"uncached", -1}, {"cached", 0}} {
		t.Run(cache.name, func(t *testing.T) {
			ours, err := policy.NewAuthorizer(policy.Options{DecisionCacheSize: cache.size}, nil)
			if err != nil {
				t.Fatal(err)
			}
			theirs := authorization.NewDefaultAuthorizer()
			compared, diffs, allowed := 0, 0, 0
			for _, api := range parityAPIs(t) {
				for _, ns := range []string{"payments", ""} {
					target := &authorization.CallTarget{APIName: api, Namespace: ns}
					for _, claims := range parityClaims("payments") {
						want, err := theirs.Authorize(ctx, claims, target)
						if err != nil {
							t.Fatal(err)
						}
						got, err := ours.Authorize(ctx, claims, target)
						if err != nil {
							t.Fatalf("%s %q %s: %v", api, ns, describe(claims), err)
						}
						compared++
						if got.Decision == authorization.DecisionAllow {
							allowed++
						}
						if got.Decision != want.Decision || principal(got) != principal(want) {
							diffs++
							if diffs <= 20 {
								t.Errorf("%s namespace %q claims %s: got %v principal %s (reason %q), Temporal's default gives %v principal %s",
									api, ns, describe(claims), got.Decision, principal(got), got.Reason, want.Decision, principal(want))
							}
						}
						if got.Decision == authorization.DecisionDeny && got.Reason == "" {
							t.Errorf("%s %q %s: denied without a reason", api, ns, describe(claims))
						}
					}
				}
			}
			t.Logf("compared %d decisions with Temporal's default authorizer (%d allowed, %d denied): %d differences", compared, allowed, compared-allowed, diffs)
			fmt.Printf("parity (%s): compared %d decisions with Temporal's default authorizer, %d differences\n", cache.name, compared, diffs)
			if diffs > 0 {
				t.Fatalf("%d differences", diffs)
			}
		})
	}
}

func principal(r authorization.Result) string {
	if r.Principal == nil {
		return "<nil>"
	}
	return r.Principal.GetType() + "/" + r.Principal.GetName()
}

func describe(c *authorization.Claims) string {
	if c == nil {
		return "<nil>"
	}
	return fmt.Sprintf("{sub %s system %d namespaces %v}", c.Subject, c.System, c.Namespaces)
}
