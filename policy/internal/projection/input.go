package projection

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"go.temporal.io/server/common/api"
	"go.temporal.io/server/common/authorization"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// tokenClaimer is policy.TokenClaims: the Claims.Extensions of claim mappers
// that verify tokens. Its claims become input.claims.jwt; its cache key
// identifies the token in decision cache keys.
type tokenClaimer interface {
	TokenClaims() map[string]any
	CacheKey() string
}

// certificateClaimer is policy.CertificateClaims: the Claims.Extensions of a
// caller that presented a client certificate Temporal's TLS layer verified.
// Its claims become input.claims.tls.
type certificateClaimer interface {
	CertificateClaims() map[string]any
}

// certificateClaims are the verified client certificate's claims of ext; nil
// when the caller presented none.
func certificateClaims(ext any) map[string]any {
	if c, ok := ext.(certificateClaimer); ok {
		return c.CertificateClaims()
	}
	return nil
}

var (
	keyRequest     = ast.StringTerm("request")
	keyRequestType = ast.StringTerm("request_type")

	requestJSON = protojson.MarshalOptions{UseProtoNames: true}
)

// withRequest adds request (the whole request) and request_type to an input
// object when the call carries a proto request.
func withRequest(in ast.Object, req any) error {
	msg := requestMessage(req)
	if msg == nil {
		return nil
	}
	v, err := wholeMessage(msg.ProtoReflect())
	if err != nil {
		return err
	}
	in.Insert(keyRequest, ast.NewTerm(v))
	in.Insert(keyRequestType, ast.StringTerm(string(proto.MessageName(msg))))
	return nil
}

// roleNames lists the role bits of authorization.Role in rank order.
var roleNames = [...]struct {
	bit  authorization.Role
	name string
}{
	{authorization.RoleWorker, "worker"},
	{authorization.RoleReader, "read"},
	{authorization.RoleWriter, "write"},
	{authorization.RoleAdmin, "admin"},
}

var (
	keyClaims        = ast.StringTerm("claims")
	keyTarget        = ast.StringTerm("target")
	keySubject       = ast.StringTerm("subject")
	keyIssuer        = ast.StringTerm("issuer")
	keyAuthType      = ast.StringTerm("auth_type")
	keySystem        = ast.StringTerm("system")
	keyNamespaces    = ast.StringTerm("namespaces")
	keyJWT           = ast.StringTerm("jwt")
	keyTLS           = ast.StringTerm("tls")
	keyAPI           = ast.StringTerm("api")
	keyService       = ast.StringTerm("service")
	keyMethod        = ast.StringTerm("method")
	keyNamespace     = ast.StringTerm("namespace")
	keyNexusEndpoint = ast.StringTerm("nexus_endpoint")
	keyScope         = ast.StringTerm("scope")
	keyAccess        = ast.StringTerm("access")
	keyHealthCheck   = ast.StringTerm("health_check")
	keyGrants        = ast.StringTerm("grants")
)

// Grants are the caller's time-bound access grants that bear on one call, as
// input.grants holds them: an array of grant objects. Key identifies Value:
// calls whose Grants have the same Key see the same input.grants. A nil
// *Grants is no grant (an empty array, keyed as absent).
type Grants struct {
	Key   string
	Value *ast.Term // an array
}

var noGrants = ast.NewTerm(ast.NewArray())

func (g *Grants) term() *ast.Term {
	if g == nil || g.Value == nil {
		return noGrants
	}
	return g.Value
}

// JSON is an input document's JSON form.
func JSON(v ast.Value) (map[string]any, error) {
	doc, err := ast.JSON(v)
	if err != nil {
		return nil, err
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("input is %T, not an object", doc)
	}
	return m, nil
}

// Whole builds the whole input document of a call, as `temporal-opa eval`
// shows it: input.claims.jwt with every claim, and input.request (the whole
// request, when the target carries one) when request is true.
func Whole(claims *authorization.Claims, target *authorization.CallTarget, g *Grants, request bool) (ast.Value, error) {
	c, err := claimsValue(claims, true)
	if err != nil {
		return nil, err
	}
	in := ast.NewObject(
		[2]*ast.Term{keyClaims, ast.NewTerm(c)},
		[2]*ast.Term{keyTarget, ast.NewTerm(targetValue(target))},
		[2]*ast.Term{keyGrants, g.term()},
	)
	if request && target != nil {
		if err := withRequest(in, target.Request); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// WholeWithJWT is Whole (without input.request) for claims that are not nil,
// with jwt as input.claims.jwt (nil: left out) instead of every claim of the
// token: for the decision logger, which keeps only the claims the policy
// read and computes them once per token.
func WholeWithJWT(claims *authorization.Claims, target *authorization.CallTarget, g *Grants, jwt ast.Value) (ast.Value, error) {
	c, err := claimsWithJWT(claims, jwt)
	if err != nil {
		return nil, err
	}
	return ast.NewObject(
		[2]*ast.Term{keyClaims, ast.NewTerm(c)},
		[2]*ast.Term{keyTarget, ast.NewTerm(targetValue(target))},
		[2]*ast.Term{keyGrants, g.term()},
	), nil
}

func targetValue(t *authorization.CallTarget) ast.Value {
	if t == nil {
		t = &authorization.CallTarget{}
	}
	a := apiTermsOf(t.APIName)
	return ast.NewObject(
		[2]*ast.Term{keyAPI, a.api},
		[2]*ast.Term{keyService, a.service},
		[2]*ast.Term{keyMethod, a.method},
		[2]*ast.Term{keyNamespace, ast.StringTerm(t.Namespace)},
		[2]*ast.Term{keyNexusEndpoint, ast.StringTerm(t.NexusEndpointName)},
		[2]*ast.Term{keyScope, a.scope},
		[2]*ast.Term{keyAccess, a.access},
		[2]*ast.Term{keyHealthCheck, a.healthCheck},
	)
}

// apiTerms are the input.target values that follow from the API name alone.
type apiTerms struct {
	api, service, method, scope, access, healthCheck *ast.Term
}

// apiTermsCache holds the apiTerms of the APIs seen, up to maxCachedAPIs (the
// frontend's APIs number a few hundred); OPA values are never modified once built.
var (
	apiTermsCache sync.Map // API name to *apiTerms
	cachedAPIs    atomic.Int64
)

const maxCachedAPIs = 4096

func apiTermsOf(name string) *apiTerms {
	if a, ok := apiTermsCache.Load(name); ok {
		return a.(*apiTerms)
	}
	md := api.GetMethodMetadata(name)
	a := &apiTerms{
		api:         ast.StringTerm(name),
		service:     ast.StringTerm(strings.Trim(api.ServiceName(name), "/")),
		method:      ast.StringTerm(api.MethodName(name)),
		scope:       ast.StringTerm(scopeName(md.Scope)),
		access:      ast.StringTerm(accessName(md.Access)),
		healthCheck: ast.BooleanTerm(authorization.IsHealthCheckAPI(name)),
	}
	if cachedAPIs.Load() < maxCachedAPIs {
		if _, loaded := apiTermsCache.LoadOrStore(name, a); !loaded {
			cachedAPIs.Add(1)
		}
	}
	return a
}

func scopeName(s api.Scope) string {
	switch s {
	case api.ScopeNamespace:
		return "namespace"
	case api.ScopeCluster:
		return "cluster"
	default:
		return "unknown"
	}
}

func accessName(a api.Access) string {
	switch a {
	case api.AccessReadOnly:
		return "read"
	case api.AccessWrite:
		return "write"
	case api.AccessAdmin:
		return "admin"
	default:
		return "unknown"
	}
}

func claimsValue(c *authorization.Claims, withJWT bool) (ast.Value, error) {
	if c == nil {
		return ast.Null{}, nil
	}
	var jwt ast.Value = ast.NewObject()
	if withJWT {
		var err error
		if jwt, err = extensionsValue(c.Extensions); err != nil {
			return nil, err
		}
	}
	return claimsWithJWT(c, jwt)
}

// claimsWithJWT is input.claims of c (not nil) with jwt as input.claims.jwt;
// a nil jwt leaves the key out.
func claimsWithJWT(c *authorization.Claims, jwt ast.Value) (ast.Value, error) {
	obj := ast.NewObject(
		[2]*ast.Term{keySubject, ast.StringTerm(c.Subject)},
		[2]*ast.Term{keyIssuer, ast.StringTerm(IssuerOf(c.Extensions))},
		[2]*ast.Term{keyAuthType, ast.StringTerm(c.AuthType)},
		[2]*ast.Term{keySystem, ast.NewTerm(rolesValue(c.System))},
		[2]*ast.Term{keyNamespaces, ast.NewTerm(namespacesValue(c.Namespaces))},
	)
	if jwt != nil {
		obj.Insert(keyJWT, ast.NewTerm(jwt))
	}
	if tls := certificateClaims(c.Extensions); tls != nil {
		v, err := JSONValue(tls)
		if err != nil {
			return nil, fmt.Errorf("certificate claims: %w", err)
		}
		obj.Insert(keyTLS, ast.NewTerm(v))
	}
	return obj, nil
}

// rolesValue lists the known role bits of r by name. Unknown bits grant nothing.
func rolesValue(r authorization.Role) ast.Value {
	return roleValues[r&roleMask]
}

const roleMask = authorization.RoleWorker | authorization.RoleReader | authorization.RoleWriter | authorization.RoleAdmin

// roleValues are the role lists of every combination of known role bits, built
// once: OPA values are never modified once built.
var roleValues = func() (out [roleMask + 1]ast.Value) {
	for r := range out {
		terms := make([]*ast.Term, 0, len(roleNames))
		for _, rn := range roleNames {
			if authorization.Role(r)&rn.bit != 0 {
				terms = append(terms, ast.StringTerm(rn.name))
			}
		}
		out[r] = ast.NewArray(terms...)
	}
	return out
}()

func extensionsValue(ext any) (ast.Value, error) {
	var claims map[string]any
	switch e := ext.(type) {
	case tokenClaimer:
		claims = e.TokenClaims()
	case map[string]any:
		claims = e
	}
	if claims == nil {
		return ast.NewObject(), nil
	}
	v, err := JSONValue(claims)
	if err != nil {
		return nil, fmt.Errorf("token claims: %w", err)
	}
	return v, nil
}

// JSONValue converts JSON-decoded values to OPA values. Integral numbers, such as
// exp and iat, stay integers (1795423527, not 1.795423527e+09) wherever they are printed.
func JSONValue(x any) (ast.Value, error) {
	switch v := x.(type) {
	case nil:
		return ast.Null{}, nil
	case bool:
		return ast.Boolean(v), nil
	case string:
		return ast.String(v), nil
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return ast.Number(strconv.FormatInt(int64(v), 10)), nil
		}
		return ast.InterfaceToValue(v)
	case []any:
		terms := make([]*ast.Term, len(v))
		for i, e := range v {
			ev, err := JSONValue(e)
			if err != nil {
				return nil, err
			}
			terms[i] = ast.NewTerm(ev)
		}
		return ast.NewArray(terms...), nil
	case map[string]any:
		obj := ast.NewObject()
		for k, e := range v {
			ev, err := JSONValue(e)
			if err != nil {
				return nil, err
			}
			obj.Insert(ast.StringTerm(k), ast.NewTerm(ev))
		}
		return obj, nil
	default:
		return ast.InterfaceToValue(v)
	}
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// issuerer is implemented by the Claims.Extensions of claim mappers that know
// which configured issuer verified the token (package claimmapper's Token).
type issuerer interface{ Issuer() string }

// IssuerOf is the configured issuer that verified the call's token, from its
// Claims.Extensions; "" when there is none (no token, the internal principal,
// a mapper without a configured issuer).
func IssuerOf(ext any) string {
	if i, ok := ext.(issuerer); ok {
		return i.Issuer()
	}
	return ""
}
