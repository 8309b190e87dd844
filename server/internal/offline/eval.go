package offline

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"google.golang.org/grpc/credentials"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	operatorservice "go.temporal.io/api/operatorservice/v1"
	workflowservice "go.temporal.io/api/workflowservice/v1"
	adminservice "go.temporal.io/server/api/adminservice/v1"
	"go.temporal.io/server/common/authorization"
	"google.golang.org/grpc"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
	"github.com/temporal-opa/temporal-opa/server/internal/authzconfig"
	"github.com/temporal-opa/temporal-opa/server/internal/cli"
	"github.com/temporal-opa/temporal-opa/server/internal/devkey"
)

// Denied is returned by Eval when the call is denied: main exits with status 1
// and prints nothing more, the decision having been printed.
type Denied struct{}

func (Denied) Error() string { return "denied" }

// Result is what eval prints: the decision, the reason and the input document.
type Result struct {
	Allow     bool              `json:"allow"`
	Reason    string            `json:"reason"`
	API       string            `json:"api"`
	Input     map[string]any    `json:"input"`
	Revisions map[string]string `json:"revisions,omitempty"`
	// GrantedRoles are the roles the policy's role rules granted the caller for the call.
	GrantedRoles []policy.Grant `json:"granted_roles,omitempty"`
	// Grant is the time-bound access grant (--grants) that allowed the call.
	Grant string `json:"grant,omitempty"`
	Error string `json:"error,omitempty"`
}

// Eval is "temporal-opa eval": it decides one call as the server would and prints
// the Result as JSON on w. It returns Denied when the call is denied.
func Eval(ctx context.Context, o cli.Eval, stdin io.Reader, w io.Writer) error {
	if len(o.Replay) > 0 {
		return Replay(ctx, o, stdin, w)
	}
	settings, err := loadSettings(o.AuthzFile)
	if err != nil {
		return err
	}
	if len(o.Policy) > 0 {
		settings.Policy.Bundle = o.Policy // named and activated as the server would
	}
	api, err := ResolveAPI(o.API)
	if err != nil {
		return err
	}
	az, done, err := authorizer(ctx, settings, nil)
	if err != nil {
		return err
	}
	defer done()
	if err := setGrants(az, o.Grants); err != nil {
		return err
	}

	res := Result{API: api}
	claims, err := evalClaims(ctx, o, settings, stdin)
	if err != nil {
		var te *claimmapper.TokenError
		if !errors.As(err, &te) {
			return err
		}
		// The server never reaches the authorizer with a refused token.
		res.Reason = `the claim mapper refused the token, so the server answers PermissionDenied "Request unauthorized."`
		res.Error = te.Error()
		return report(w, res)
	}
	target := &authorization.CallTarget{APIName: api, Namespace: o.Namespace}
	d, err := az.Decide(ctx, claims, target)
	res.Allow, res.Reason, res.Input, res.Revisions, res.GrantedRoles, res.Grant = d.Allow, d.Reason, d.Input, d.Revisions, d.GrantedRoles, d.Grant
	if err != nil {
		res.Error = err.Error()
	}
	return report(w, res)
}

func report(w io.Writer, res Result) error {
	return writeDecision(w, res, res.Allow)
}

// writeDecision prints v as indented JSON and returns Denied unless allow.
func writeDecision(w io.Writer, v any, allow bool) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	if !allow {
		return Denied{}
	}
	return nil
}

// evalClaims are the caller's claims: from --permissions directly, or from --token
// verified as the server verifies it.
func evalClaims(ctx context.Context, o cli.Eval, settings authzconfig.File, stdin io.Reader) (*authorization.Claims, error) {
	var cert *x509.Certificate
	if o.Cert != "" {
		var err error
		if cert, err = readCertificate(o.Cert); err != nil {
			return nil, err
		}
	}
	if o.Token == "" {
		if cert != nil && len(o.Permissions) == 0 && o.Claims == nil && o.Issuer == "" {
			// The certificate alone, as the server maps a caller that has
			// no token: its identity, no roles.
			return claimmapper.WithCertificates(noToken{}).GetClaims(withCertificate(&authorization.AuthInfo{}, cert))
		}
		if len(o.Permissions) == 0 && o.Claims == nil && o.Issuer == "" {
			return nil, nil // no token: Temporal passes nil claims
		}
		c := ClaimsFromPermissions(o.Subject, o.Permissions)
		if o.Claims != nil || o.Issuer != "" || cert != nil {
			g := givenClaims{claims: o.Claims, issuer: o.Issuer}
			if cert != nil {
				g.tls = claimmapper.CertificateClaims(cert)
			}
			c.Extensions = g
		}
		return c, nil
	}
	tok := o.Token
	if tok == "-" {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && line == "" {
			return nil, fmt.Errorf("--token -: read stdin: %w", err)
		}
		tok = line
	}
	tok = strings.TrimSpace(tok)
	tok = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(tok, "Bearer "), "bearer "))

	cfg := settings.JWT
	if o.AuthzFile == "" {
		// Verify with the dev key, as start-dev does.
		k, err := loadKey(o.KeyFile, o.StateDir)
		if err != nil {
			return nil, fmt.Errorf("verify --token: %w (or pass --authz FILE with the jwt settings of your server)", err)
		}
		jwks, err := k.JWKS()
		if err != nil {
			return nil, err
		}
		dir, err := os.MkdirTemp("", "temporal-opa-eval-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		file := filepath.Join(dir, "jwks.json")
		if err := os.WriteFile(file, jwks, 0o600); err != nil {
			return nil, err
		}
		cfg = claimmapper.Config{Issuer: devkey.Issuer, SkipDiscovery: true, JWKSFiles: []string{file}}
	}
	var m interface {
		authorization.ClaimMapper
		Close() error
	}
	var err error
	if len(cfg.Issuers) > 0 {
		m, err = claimmapper.NewIssuers(ctx, cfg) // the mapper of the token's issuer verifies it
	} else {
		m, err = claimmapper.New(ctx, cfg)
	}
	if err != nil {
		return nil, err
	}
	defer m.Close()
	ai := &authorization.AuthInfo{AuthToken: "Bearer " + tok}
	if cert == nil {
		return m.GetClaims(ai)
	}
	// The token on a connection presenting the certificate: bound tokens are
	// checked against it as the server checks them.
	return claimmapper.WithCertificates(m).GetClaims(withCertificate(ai, cert))
}

// noToken maps a call without a token to claims without roles, as the
// server's claim mappers do.
type noToken struct{}

func (noToken) GetClaims(*authorization.AuthInfo) (*authorization.Claims, error) {
	return &authorization.Claims{AuthType: "jwt"}, nil
}

// withCertificate puts cert on ai as the client certificate Temporal's TLS
// layer verified: --cert stands for a certificate the frontend accepted.
func withCertificate(ai *authorization.AuthInfo, cert *x509.Certificate) *authorization.AuthInfo {
	ai.TLSSubject = &cert.Subject
	ai.TLSConnection = &credentials.TLSInfo{State: tls.ConnectionState{
		PeerCertificates: []*x509.Certificate{cert},
		VerifiedChains:   [][]*x509.Certificate{{cert}},
	}}
	return ai
}

// readCertificate reads the first certificate of a PEM file.
func readCertificate(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &InputError{Err: fmt.Errorf("--cert: %w", err)}
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, &InputError{Err: fmt.Errorf("--cert %s: no PEM CERTIFICATE block; give the client certificate in PEM (the key is not needed)", path)}
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, &InputError{Err: fmt.Errorf("--cert %s: %w", path, err)}
		}
		return cert, nil
	}
}

// givenClaims are the token claims and issuer of --claims and --issuer, as
// the claim mapper's Claims.Extensions carries a verified token's.
type givenClaims struct {
	claims map[string]any
	issuer string
	tls    map[string]any // --cert's certificate
}

func (g givenClaims) CertificateClaims() map[string]any { return g.tls }

func (g givenClaims) TokenClaims() map[string]any { return g.claims }
func (g givenClaims) CacheKey() string            { return "" }
func (g givenClaims) Issuer() string              { return g.issuer }

// ClaimsFromPermissions builds claims as the claim mapper would from a token whose
// permissions claim holds perms ("<namespace>:<permission>"; temporal-system is
// the system scope).
func ClaimsFromPermissions(subject string, perms []string) *authorization.Claims {
	c := &authorization.Claims{Subject: subject, AuthType: "jwt"}
	for _, p := range perms {
		ns, perm, ok := strings.Cut(p, ":")
		if !ok {
			continue
		}
		var r authorization.Role
		switch strings.ToLower(perm) {
		case "read":
			r = authorization.RoleReader
		case "write":
			r = authorization.RoleWriter
		case "worker":
			r = authorization.RoleWorker
		case "admin":
			r = authorization.RoleAdmin
		}
		if ns == claimmapper.SystemNamespace {
			c.System |= r
			continue
		}
		if c.Namespaces == nil {
			c.Namespaces = map[string]authorization.Role{}
		}
		c.Namespaces[ns] |= r
	}
	return c
}

// services whose methods a bare --api name may refer to, in order of preference.
var services = []grpc.ServiceDesc{
	workflowservice.WorkflowService_ServiceDesc,
	operatorservice.OperatorService_ServiceDesc,
	adminservice.AdminService_ServiceDesc,
}

// ResolveAPI turns a bare method name (StartWorkflowExecution) into its full gRPC
// name, looking in WorkflowService, then OperatorService, then AdminService (so
// AddSearchAttributes is OperatorService's); a full name (starting with "/") is returned as it is, known or not, so
// that policies can be checked against unknown APIs too.
func ResolveAPI(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return name, nil
	}
	if name == "Check" || name == "grpc.health.v1.Health/Check" {
		return "/grpc.health.v1.Health/Check", nil
	}
	var all []string
	for _, sd := range services {
		for _, m := range sd.Methods {
			full := "/" + sd.ServiceName + "/" + m.MethodName
			if m.MethodName == name {
				return full, nil
			}
			all = append(all, m.MethodName)
		}
		for _, st := range sd.Streams {
			if st.StreamName == name {
				return "/" + sd.ServiceName + "/" + st.StreamName, nil
			}
		}
	}
	for _, m := range all {
		if strings.EqualFold(m, name) {
			return "", apiErr("--api %s: no such method; did you mean %s? (names are case-sensitive)", name, m)
		}
	}
	var near []string
	for _, m := range all {
		if strings.Contains(strings.ToLower(m), strings.ToLower(name)) {
			near = append(near, m)
		}
	}
	slices.Sort(near)
	if len(near) > 0 && len(near) <= 8 {
		return "", apiErr("--api %s: no WorkflowService, OperatorService or AdminService method has this name; close ones: %s", name, strings.Join(near, ", "))
	}
	return "", apiErr("--api %s: no WorkflowService, OperatorService or AdminService method has this name; "+
		"give a method such as StartWorkflowExecution, or a full gRPC name such as /temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution", name)
}

func apiErr(format string, a ...any) error {
	return &cli.UsageError{Command: "eval", Msg: "eval: " + fmt.Sprintf(format, a...)}
}
