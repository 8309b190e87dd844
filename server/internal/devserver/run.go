package devserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/template"
	"time"

	"go.temporal.io/server/common/log"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/temporal-opa/temporal-opa/server/internal/cli"
	"github.com/temporal-opa/temporal-opa/server/internal/devca"
	"github.com/temporal-opa/temporal-opa/server/internal/devkey"
	"github.com/temporal-opa/temporal-opa/server/internal/wiring"
)

// Subjects of the tokens start-dev prints.
const (
	AdminSubject = "dev-admin"
	UserSubject  = "dev-user"
)

// Run is "temporal-opa start-dev": it starts a dev server, prints how to use it on
// stdout and runs until ctx is done (Ctrl-C). Server logs go to stderr.
func Run(ctx context.Context, o cli.StartDev, stdout, stderr io.Writer) error {
	logger, level := newLogger(o.LogLevel, o.LogFormat, stderr)
	if level.Level() > zapcore.DebugLevel {
		// Once interrupted, services shutting down complain about each other: expected, and noise.
		stop := context.AfterFunc(ctx, func() { level.SetLevel(zapcore.FatalLevel) })
		defer stop()
	}
	// Policy activations and rejected bundles are logged at info and error:
	// show them even at the default level (warn).
	policyLevel := o.LogLevel
	if policyLevel == "warn" || policyLevel == "error" {
		policyLevel = "info"
	}
	policyLogger, _ := newLogger(policyLevel, o.LogFormat, stderr)
	var decisionLog io.Writer
	switch o.DecisionLog {
	case "":
	case "-":
		decisionLog = stdout
	default:
		f, err := os.OpenFile(o.DecisionLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return &Error{Msg: fmt.Sprintf("--decision-log %s: %v", o.DecisionLog, errors.Unwrap(err))}
		}
		defer f.Close()
		decisionLog = f
	}
	fmt.Fprintf(stdout, "Starting Temporal with OPA authorization on %s ...\n", dialAddr(joinHostPort(o.IP, o.Port)))
	s, err := Start(ctx, Options{
		IP:           o.IP,
		Port:         o.Port,
		HTTPPort:     o.HTTPPort,
		DBFilename:   o.DBFilename,
		Namespaces:   o.Namespaces,
		StateDir:     o.StateDir,
		Policy:       o.Policy,
		OPAConfig:    o.OPAConfig,
		DecisionLog:  decisionLog,
		MetricsPort:  o.MetricsPort,
		MetricsIP:    o.MetricsIP,
		DryRun:       o.DryRun,
		ShadowPolicy: o.ShadowPolicy,
		StatusAddr:   o.StatusAddr,
		AuthzFile:    o.AuthzFile,
		TLS:          o.TLS,
		UI:           uiOptions(o),
		Logger:       logger,
		PolicyLogger: policyLogger,
	})
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			fmt.Fprintln(stdout, "Interrupted.")
			return nil
		}
		return err
	}
	defer s.Stop()
	if err := printBanner(stdout, s, o); err != nil {
		return err
	}
	<-ctx.Done()
	fmt.Fprintln(stdout, "\nStopping ... (Ctrl-C again to exit at once)")
	if err := s.Stop(); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	fmt.Fprintln(stdout, "Stopped.")
	return nil
}

// uiOptions are the Web UI's options, nil with --headless.
func uiOptions(o cli.StartDev) *UIOptions {
	if o.Headless {
		return nil
	}
	return &UIOptions{IP: o.UIIP, Port: o.UIPort, ConfigFile: o.UIConfig, Permissions: o.UIPermissions,
		DevIdentityOnNetwork: o.UIDevIdentityOnNetwork}
}

// userPermissions is what the printed user token grants: read and write on every
// namespace start-dev created.
func userPermissions(namespaces []string) []string {
	var p []string
	for _, ns := range namespaces {
		p = append(p, ns+":read", ns+":write")
	}
	return p
}

var bannerTmpl = template.Must(template.New("banner").Parse(`
Temporal server with OPA authorization is ready.{{if .DryRun}}

  *** DRY RUN: NOTHING IS ENFORCED. Every call is evaluated and recorded, then allowed
  *** whatever the policy decides (bad tokens are still refused). Drop --dry-run to enforce.{{end}}

  Frontend:     {{.Addr}}{{if .Public}}   (listening on {{.Listen}}: reachable from the network)
  Membership:   {{.Membership}}   (Temporal binds the frontend's cluster-membership port with it: firewall it){{end}}{{if .UI}}
  Web UI:       {{.UI}}{{if .UIProvider}}   (users log in with {{.UIProvider}} and act with their own tokens){{else}}
                acts as {{.UISub}} with {{.UIPerms}}: anyone who reaches this port does{{if .UIPublic}}, and it listens on {{.UIListen}} (reachable from the network){{else}} (loopback only){{end}}{{end}}{{end}}{{if and .HTTP .TLS}}
  HTTP API:     https://{{.HTTP}}/api/v1/namespaces/default/workflows   (client certificate required; send the token as "Authorization: Bearer ...")
                curl --cacert {{.CA}} --cert {{.Cert}} --key {{.Key}} -H "Authorization: Bearer $TEMPORAL_API_KEY" https://{{.HTTP}}/api/v1/namespaces/default/workflows{{else if .HTTP}}
  HTTP API:     http://{{.HTTP}}/api/v1/namespaces/default/workflows   (send the token as "Authorization: Bearer ..."){{end}}{{if .TLS}}
  mTLS:         required on the frontend (gRPC and HTTP API) and between the services: client certificates of the dev CA
  CA:           {{.CA}}{{if .CACreated}} (created now){{end}}
  Server cert:  {{.ServerCert}} for {{.ServerNames}}{{if .ServerRenewed}} (issued now){{end}}{{if .Public}}; clients dialling another name add --tls-server-name localhost{{end}}
  Client cert:  {{.Cert}} and {{.Key}} (CN {{.CertCN}}, issued now, valid until {{.CertExpires}}){{end}}
  Namespaces:   {{.Namespaces}}
  Policy:       {{.Policy}}{{if .Grants}}
  Grants:       namespace {{.Grants}}: time-bound access, {{.Program}} grant request|approve|deny|revoke|list|break-glass (decided by the policy){{end}}{{if .DecisionLog}}
  Decision log: {{.DecisionLog}}{{end}}{{if .Shadow}}
  Shadow:       {{.Shadow}}, decided beside the policy on every call; disagreements in /status{{end}}{{if .Metrics}}
  Metrics:      {{.Metrics}}   (Prometheus: Temporal's series and temporal_opa_*){{end}}{{if .Status}}
  Status:       {{.Status}}   (active revisions, bundle sources, last error; /healthz){{end}}
  Signing key:  {{.KeyPath}}{{if .KeyCreated}} (created now){{end}}, kid {{.KeyID}}
  JWKS:         {{.JWKS}}
  Database:     {{.DB}}

System admin token (temporal-system:admin, sub {{.AdminSub}}, expires {{.Expires}}):
export TEMPORAL_OPA_ADMIN_TOKEN={{.AdminToken}}

Namespace token ({{.UserPerms}}, sub {{.UserSub}}, expires {{.Expires}}):
export TEMPORAL_API_KEY={{.UserToken}}

{{if .TLS}}Try it with the temporal CLI (the client certificate opens the connection; the token, when sent too, brings its permissions):
  temporal workflow list --address {{.Addr}} --tls-ca-path {{.CA}} --tls-cert-path {{.Cert}} --tls-key-path {{.Key}}
  temporal workflow list --address {{.Addr}} --namespace default --tls-ca-path {{.CA}} --tls-cert-path {{.Cert}} --tls-key-path {{.Key}} --api-key "$TEMPORAL_API_KEY"
  temporal operator namespace list --address {{.Addr}} --tls-ca-path {{.CA}} --tls-cert-path {{.Cert}} --tls-key-path {{.Key}} --api-key "$TEMPORAL_OPA_ADMIN_TOKEN"

More tokens:  {{.Program}} token --permissions default:read --ttl 1h{{if .StateDirFlag}} --state-dir {{.StateDir}}{{end}}
More certs:   {{.Program}} cert --cn alice --spiffe-id spiffe://dev.local/alice --ttl 24h --out .{{if .StateDirFlag}} --state-dir {{.StateDir}}{{end}}
Check a rule: {{.Program}} eval --permissions default:read --api StartWorkflowExecution --namespace default

Go SDK (mTLS with the dev-user certificate; API-key credentials add "Authorization: Bearer <token>"):
  cert, err := tls.LoadX509KeyPair("{{.Cert}}", "{{.Key}}")
  caPEM, err := os.ReadFile("{{.CA}}")
  roots := x509.NewCertPool()
  roots.AppendCertsFromPEM(caPEM)
  c, err := client.Dial(client.Options{
      HostPort:          "{{.Addr}}",
      Namespace:         "default",
      Credentials:       client.NewAPIKeyStaticCredentials(os.Getenv("TEMPORAL_API_KEY")),
      ConnectionOptions: client.ConnectionOptions{TLS: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots}},
  })
{{else}}Try it with the temporal CLI (--tls=false: an API key otherwise turns TLS on):
  temporal workflow list --address {{.Addr}} --namespace default --tls=false --api-key "$TEMPORAL_API_KEY"
  temporal operator namespace list --address {{.Addr}} --tls=false --api-key "$TEMPORAL_API_KEY"        # denied: needs temporal-system
  temporal operator namespace list --address {{.Addr}} --tls=false --api-key "$TEMPORAL_OPA_ADMIN_TOKEN" # allowed

More tokens:  {{.Program}} token --permissions default:read --ttl 1h{{if .StateDirFlag}} --state-dir {{.StateDir}}{{end}}
Check a rule: {{.Program}} eval --permissions default:read --api StartWorkflowExecution --namespace default

Go SDK (API-key credentials send "Authorization: Bearer <token>"; TLSDisabled because this server is plain gRPC):
  c, err := client.Dial(client.Options{
      HostPort:          "{{.Addr}}",
      Namespace:         "default",
      Credentials:       client.NewAPIKeyStaticCredentials(os.Getenv("TEMPORAL_API_KEY")),
      ConnectionOptions: client.ConnectionOptions{TLSDisabled: true},
  })
{{end}}  For a fresh token per call, set client.Options.HeadersProvider instead: its GetHeaders runs before every call.

Press Ctrl-C to stop.
`))

func printBanner(w io.Writer, s *Server, o cli.StartDev) error {
	now := time.Now()
	admin, err := s.Key().Mint(devkey.Claims{Subject: AdminSubject, Permissions: []string{"temporal-system:admin"}, TTL: o.TokenTTL, Now: now})
	if err != nil {
		return err
	}
	perms := userPermissions(o.Namespaces)
	user, err := s.Key().Mint(devkey.Claims{Subject: UserSubject, Permissions: perms, TTL: o.TokenTTL, Now: now})
	if err != nil {
		return err
	}
	decisionLog := ""
	switch {
	case o.DecisionLog == "-":
		decisionLog = "standard output, one JSON line per call"
	case o.DecisionLog != "":
		decisionLog = o.DecisionLog + ", one JSON line per call"
	}
	if s.DecisionLogging() && o.OPAConfig != "" {
		if decisionLog != "" {
			decisionLog += "; "
		}
		decisionLog += "as configured in " + o.OPAConfig
	}
	db := "in memory (state is lost on exit; keep it with --db-filename FILE)"
	if o.DBFilename != "" {
		db = o.DBFilename
	}
	certFile, keyFile := s.UserCert()
	var caCreated, serverRenewed bool
	var certExpires, serverCert string
	if s.tls != nil {
		caCreated, serverRenewed, serverCert = s.tls.caCreated, s.tls.server.Renewed, s.tls.server.CertFile
		certExpires = now.Add(userCertTTL).Format(time.RFC3339)
	}
	return bannerTmpl.Execute(w, map[string]any{
		"TLS":           s.TLS(),
		"CA":            s.CAFile(),
		"CACreated":     caCreated,
		"Cert":          certFile,
		"Key":           keyFile,
		"CertCN":        UserCertCN,
		"ServerCert":    serverCert,
		"ServerNames":   strings.Join(devca.ServerHosts(o.IP), ", "),
		"ServerRenewed": serverRenewed,
		"CertExpires":   certExpires,
		"Addr":          dialAddr(s.FrontendAddr()),
		"Listen":        s.FrontendAddr(),
		"Membership":    s.membership,
		"UI":            s.UIURL(),
		"UIProvider":    s.uiProvider,
		"UISub":         uiSub(s),
		"UIPerms":       uiPerms(s),
		"UIPublic":      !o.Headless && !isLoopback(o.UIIP),
		"UIListen":      joinHostPort(o.UIIP, o.UIPort),
		"HTTP":          httpDial(s.HTTPAddr()),
		"Public":        !isLoopback(o.IP),
		"Namespaces":    strings.Join(o.Namespaces, ", "),
		"Policy":        s.PolicySources(),
		"Grants":        s.GrantsNamespace(),
		"DecisionLog":   decisionLog,
		"DryRun":        o.DryRun,
		"Shadow":        o.ShadowPolicy,
		"Metrics":       s.MetricsURL(),
		"Status":        s.StatusURL(),
		"KeyPath":       s.Key().Path(),
		"KeyCreated":    s.keyCreated,
		"KeyID":         s.Key().KeyID(),
		"JWKS":          s.JWKSURL(),
		"DB":            db,
		"AdminSub":      AdminSubject,
		"UserSub":       UserSubject,
		"UserPerms":     strings.Join(perms, ","),
		"Expires":       now.Add(o.TokenTTL).Format(time.RFC3339),
		"AdminToken":    admin,
		"UserToken":     user,
		"Program":       cli.Program,
		"StateDirFlag":  o.StateDir != cli.DefaultStateDir(os.Getenv),
		"StateDir":      o.StateDir,
	})
}

// newLogger builds the server's logger on w. A fatal log (Temporal exits the
// process on some start-up failures, such as a port taken by another process)
// ends with one readable line.
func newLogger(level, format string, w io.Writer) (log.Logger, zap.AtomicLevel) {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	var encoder zapcore.Encoder
	if format == "json" {
		encoder = zapcore.NewJSONEncoder(enc)
	} else {
		enc.EncodeLevel = zapcore.CapitalLevelEncoder
		encoder = zapcore.NewConsoleEncoder(enc)
	}
	lvl, err := zap.ParseAtomicLevel(level)
	if err != nil {
		lvl = zap.NewAtomicLevelAt(zapcore.WarnLevel)
	}
	core := zapcore.NewCore(encoder, zapcore.AddSync(w), lvl)
	zl := zap.New(core, zap.WithFatalHook(wiring.FatalHook{Command: "start-dev", W: w}), zap.AddCaller(), zap.AddCallerSkip(1))
	return log.NewZapLogger(zl), lvl
}

func uiSub(s *Server) string {
	if id := s.UIIdentity(); id != nil {
		return id.Subject()
	}
	return ""
}

func uiPerms(s *Server) string {
	if id := s.UIIdentity(); id != nil {
		return strings.Join(id.Permissions(), ",")
	}
	return ""
}
