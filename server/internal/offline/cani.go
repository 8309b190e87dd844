package offline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"go.temporal.io/server/common/api"
	"go.temporal.io/server/common/authorization"
	"google.golang.org/grpc"

	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
	"github.com/temporal-opa/temporal-opa/server/internal/cli"
)

// CanIService is one service of the policy can-i answer.
type CanIService struct {
	Service string      `json:"service"` // e.g. temporal.api.workflowservice.v1.WorkflowService
	Allowed int         `json:"allowed"` // how many of its APIs the caller may call
	APIs    []CanIEntry `json:"apis"`
}

// CanIEntry is the decision on one API.
type CanIEntry struct {
	Method    string `json:"method"`
	API       string `json:"api"`
	Scope     string `json:"scope"`     // namespace or cluster, as Temporal classifies it
	Access    string `json:"access"`    // read, write or admin
	Namespace string `json:"namespace"` // the namespace it was decided in; "" for cluster APIs
	Allow     bool   `json:"allow"`
	Reason    string `json:"reason,omitempty"`
	Error     string `json:"error,omitempty"` // the policy could not decide
}

// canIServices maps --service names to the generated service descriptors.
var canIServices = map[string]grpc.ServiceDesc{
	"workflow": services[0],
	"operator": services[1],
	"admin":    services[2],
}

// PolicyCanI is "temporal-opa policy can-i": every API of WorkflowService,
// OperatorService and AdminService (their gRPC descriptors, classified by the
// server's own API table) decided for one caller, grouped by service.
// Namespace-scoped APIs are decided in o.Namespace, cluster APIs with no
// namespace, as the frontend does.
func PolicyCanI(ctx context.Context, o cli.PolicyCanI, stdin io.Reader, w io.Writer) error {
	settings, err := loadSettings(o.AuthzFile)
	if err != nil {
		return err
	}
	az, done, err := authorizer(ctx, settings, o.Bundles)
	if err != nil {
		return err
	}
	defer done()
	if err := setGrants(az, o.Grants); err != nil {
		return err
	}
	claims, err := evalClaims(ctx, o.Eval, settings, stdin)
	if err != nil {
		var te *claimmapper.TokenError
		if errors.As(err, &te) {
			return fmt.Errorf(`the claim mapper refuses the token, so the server answers every call with PermissionDenied "Request unauthorized.": %w`, te)
		}
		return err
	}
	var out []CanIService
	for _, sd := range services {
		if len(o.Services) > 0 && !selected(o.Services, sd) {
			continue
		}
		s := CanIService{Service: sd.ServiceName}
		var names []string
		for _, m := range sd.Methods {
			names = append(names, m.MethodName)
		}
		for _, st := range sd.Streams {
			names = append(names, st.StreamName)
		}
		for _, name := range names {
			full := "/" + sd.ServiceName + "/" + name
			md := api.GetMethodMetadata(full)
			e := CanIEntry{Method: name, API: full}
			if md.Scope != api.ScopeCluster {
				e.Namespace = o.Namespace
			}
			d, err := az.Decide(ctx, claims, &authorization.CallTarget{APIName: full, Namespace: e.Namespace})
			e.Allow, e.Reason = d.Allow, d.Reason
			if t, ok := d.Input["target"].(map[string]any); ok {
				e.Scope, _ = t["scope"].(string)
				e.Access, _ = t["access"].(string)
			}
			if err != nil {
				e.Error = err.Error()
			}
			if e.Allow {
				s.Allowed++
			}
			s.APIs = append(s.APIs, e)
		}
		out = append(out, s)
	}
	if o.Format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Fprintf(w, "Caller: %s; namespace APIs decided in %q, cluster APIs with no namespace.\n", caller(o.Eval, claims), o.Namespace)
	if roles, err := az.CallerRoles(ctx, claims, nil); err != nil {
		fmt.Fprintf(w, "Roles granted by the policy: unknown, its role rules failed: %v\n", err)
	} else if len(roles.Granted) > 0 {
		var granted []string
		for _, g := range roles.Granted {
			granted = append(granted, g.String())
		}
		fmt.Fprintf(w, "Roles granted by the policy: %s\n", strings.Join(granted, ", "))
	}
	for _, s := range out {
		fmt.Fprintf(w, "\n%s: %d of %d allowed\n", s.Service, s.Allowed, len(s.APIs))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, e := range s.APIs {
			if e.Allow {
				fmt.Fprintf(tw, "  allow\t%s\t%s\t%s\n", e.Method, e.Scope, e.Access)
			} else {
				fmt.Fprintf(tw, "  deny\t%s\t%s\t%s\t%s\n", e.Method, e.Scope, e.Access, e.Reason)
			}
		}
		_ = tw.Flush()
	}
	return nil
}

func selected(names []string, sd grpc.ServiceDesc) bool {
	for _, n := range names {
		if canIServices[n].ServiceName == sd.ServiceName {
			return true
		}
	}
	return false
}

// caller describes the caller in one line, without the token.
func caller(o cli.Eval, c *authorization.Claims) string {
	if c == nil {
		return "no token"
	}
	var roles []string
	if c.System != 0 {
		roles = append(roles, "temporal-system:"+roleText(c.System))
	}
	for ns, r := range c.Namespaces {
		roles = append(roles, ns+":"+roleText(r))
	}
	if len(roles) == 0 {
		roles = []string{"no roles"}
	}
	slices.Sort(roles)
	how := "--permissions"
	switch {
	case o.Token != "" && o.Cert != "":
		how = "verified token, client certificate"
	case o.Token != "":
		how = "verified token"
	case o.Cert != "" && c.AuthType == "tls":
		how = "client certificate"
	case o.Cert != "":
		how = "--permissions, client certificate"
	}
	return fmt.Sprintf("sub %q (%s) with %s", c.Subject, how, strings.Join(roles, ", "))
}

func roleText(r authorization.Role) string {
	var names []string
	for _, x := range []struct {
		bit  authorization.Role
		name string
	}{{authorization.RoleWorker, "worker"}, {authorization.RoleReader, "read"}, {authorization.RoleWriter, "write"}, {authorization.RoleAdmin, "admin"}} {
		if r&x.bit != 0 {
			names = append(names, x.name)
		}
	}
	return strings.Join(names, "+")
}
