package offline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/open-policy-agent/opa/v1/topdown"
	"go.temporal.io/server/common/authorization"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
	"github.com/temporal-opa/temporal-opa/server/internal/cli"
)

// Explanation is what policy explain prints with --format json: eval's Result,
// the rules that produced the decision and the trimmed trace, one line each.
type Explanation struct {
	Result
	Rules []policy.RuleHit `json:"rules"`
	Trace []string         `json:"trace"`
}

// PolicyExplain is "temporal-opa policy explain": it decides one call as eval
// does and prints the rules that produced the decision and OPA's trace of the
// evaluation, trimmed to the decision's package and package temporal.custom.
// It returns Denied when the call is denied.
func PolicyExplain(ctx context.Context, o cli.PolicyExplain, stdin io.Reader, w io.Writer) error {
	settings, err := loadSettings(o.AuthzFile)
	if err != nil {
		return err
	}
	api, err := ResolveAPI(o.API)
	if err != nil {
		return err
	}
	target := &authorization.CallTarget{APIName: api, Namespace: o.Namespace}
	if o.Request != "" {
		if target.Request, err = readRequest(api, o.Request, stdin); err != nil {
			return err
		}
	}
	az, done, err := authorizer(ctx, settings, o.Bundles)
	if err != nil {
		return err
	}
	defer done()
	if err := setGrants(az, o.Grants); err != nil {
		return err
	}

	ex := Explanation{Result: Result{API: api}}
	claims, err := evalClaims(ctx, o.Eval, settings, stdin)
	if err != nil {
		var te *claimmapper.TokenError
		if !errors.As(err, &te) {
			return err
		}
		ex.Reason = `the claim mapper refused the token, so the server answers PermissionDenied "Request unauthorized."`
		ex.Error = te.Error()
		return reportExplain(w, o.Format, ex, nil)
	}
	pe, err := az.Explain(ctx, claims, target)
	ex.Allow, ex.Reason, ex.Input, ex.Revisions, ex.Rules, ex.GrantedRoles, ex.Grant = pe.Allow, pe.Reason, pe.Input, pe.Revisions, pe.Rules, pe.GrantedRoles, pe.Grant
	if err != nil {
		ex.Error = err.Error()
	}
	var trace bytes.Buffer
	topdown.PrettyTraceWithLocation(&trace, pe.Trace)
	ex.Trace = strings.Split(strings.TrimRight(trace.String(), "\n"), "\n")
	return reportExplain(w, o.Format, ex, trace.Bytes())
}

func reportExplain(w io.Writer, format string, ex Explanation, trace []byte) error {
	if format == "json" {
		return writeDecision(w, ex, ex.Allow)
	}
	verdict := "denied"
	if ex.Allow {
		verdict = "allowed"
	}
	fmt.Fprintf(w, "%s: %s\n", verdict, ex.Reason)
	fmt.Fprintf(w, "api: %s\n", ex.API)
	if ex.Error != "" {
		fmt.Fprintf(w, "error: %s\n", ex.Error)
	}
	for _, g := range ex.GrantedRoles {
		fmt.Fprintf(w, "granted by the policy: %s\n", g)
	}
	if ex.Grant != "" {
		fmt.Fprintf(w, "allowed under time-bound grant: %s\n", ex.Grant)
	}
	if len(ex.Rules) > 0 {
		fmt.Fprintf(w, "\nRules that produced a value (file:line, rule, value):\n")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, r := range ex.Rules {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", r.Location, r.Rule, shortJSON(r.Value))
		}
		_ = tw.Flush()
	}
	if len(trace) > 0 {
		fmt.Fprintf(w, "\nTrace (the decision's package and package temporal.custom):\n")
		_, _ = w.Write(trace)
	}
	if !ex.Allow {
		return Denied{}
	}
	return nil
}

// shortJSON renders a value on one line, cut to 100 characters.
func shortJSON(v any) string {
	if v == nil {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := string(b)
	if len(s) > 100 {
		s = s[:97] + "..."
	}
	return s
}

// readRequest reads the request message of api from a JSON file (proto field
// names or JSON names, as protojson reads them; "-" is stdin).
func readRequest(api, path string, stdin io.Reader) (proto.Message, error) {
	svc, method, ok := strings.Cut(strings.TrimPrefix(api, "/"), "/")
	if !ok {
		return nil, fmt.Errorf("--request: %s is not a gRPC method, so it has no request message", api)
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
	sd, isSvc := d.(protoreflect.ServiceDescriptor)
	if err != nil || !isSvc || sd.Methods().ByName(protoreflect.Name(method)) == nil {
		return nil, fmt.Errorf("--request: %s is not a known gRPC method, so its request type is unknown", api)
	}
	in := sd.Methods().ByName(protoreflect.Name(method)).Input()
	mt, err := protoregistry.GlobalTypes.FindMessageByName(in.FullName())
	if err != nil {
		return nil, fmt.Errorf("--request: %s: %w", in.FullName(), err)
	}
	var data []byte
	if path == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("--request %s: %w", path, err)
	}
	msg := mt.New().Interface()
	if err := protojson.Unmarshal(data, msg); err != nil {
		return nil, fmt.Errorf("--request %s: not a %s in JSON: %w", path, in.FullName(), err)
	}
	return msg, nil
}
