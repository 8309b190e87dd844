// Package devserver is "temporal-opa start-dev": a secured single-process Temporal
// server for development and tests.
//
// One process runs the frontend (on --ip:--port), history, matching, worker and an
// internal-frontend bound to loopback, on SQLite (in memory unless a file is
// given). Every call to the public frontend is verified by the claim mapper
// against a dev signing key (package devkey) whose JWKS is served on a loopback
// port, and decided by the OPA policy. The server's own system worker reaches the
// internal-frontend, where Temporal gives it the internal principal (system admin),
// so system workflows run while unauthenticated callers of the public port are
// denied. Unless told otherwise it also serves Temporal's Web UI (package webui)
// against the frontend, acting as a dev identity or logging users in with OIDC.
//
// With --tls (Options.TLS) every port Temporal serves (the frontend's gRPC and
// HTTP API, the internal services, membership) requires a client certificate
// of a dev CA kept in the state directory (package devca); tokens keep
// working alongside certificates, and the Web UI presents a certificate of
// its own.
//
// [Start] starts a server and returns once it answers; [Run] is the command: it
// starts, prints the tokens and commands to use it, and stops on Ctrl-C.
package devserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/metrics"
	"go.temporal.io/server/temporal"
	"gopkg.in/yaml.v3"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
	"github.com/temporal-opa/temporal-opa/policy/source"
	"github.com/temporal-opa/temporal-opa/server/internal/authzconfig"
	"github.com/temporal-opa/temporal-opa/server/internal/cli"
	"github.com/temporal-opa/temporal-opa/server/internal/devkey"
	"github.com/temporal-opa/temporal-opa/server/internal/grantsvc"
	"github.com/temporal-opa/temporal-opa/server/internal/ports"
	"github.com/temporal-opa/temporal-opa/server/internal/webui"
	"github.com/temporal-opa/temporal-opa/server/internal/wiring"
)

// clusterName is the name of the single cluster.
const clusterName = "active"

// loopback is where every service but the frontend listens.
const loopback = "127.0.0.1"

// Options configure a dev server.
type Options struct {
	// IP and Port of the public frontend. Port 0 picks a free port.
	IP   string
	Port int
	// HTTPPort of the frontend's HTTP API (authorized like gRPC): 0 means
	// Port+cli.HTTPPortOffset (a free port when Port is 0), -1 disables it.
	HTTPPort int
	// DBFilename keeps state in a SQLite file; "" keeps it in memory.
	DBFilename string
	// Namespaces are created at start (idempotently).
	Namespaces []string
	// Key signs tokens and verifies them. Nil: loaded from (or created in) StateDir.
	Key      *devkey.Key
	StateDir string
	// Policy are bundle directories or tarballs layered on the embedded
	// default, each watched: a change on disk is activated without a restart.
	// One is the bundle "policy"; several are active together, each under
	// policy/<base name> (authzconfig.FileBundles).
	Policy []string
	// OPAConfig is a standard OPA configuration file: its bundles are layered on
	// the default (and Policy), its decision_logs section turns on decision logs.
	OPAConfig string
	// DecisionLog, when set, receives a console decision-log event (a JSON line)
	// for every call.
	DecisionLog io.Writer
	// MetricsPort serves Prometheus metrics (Temporal's and the policy's) at
	// http://MetricsIP:MetricsPort/metrics; 0: no metrics. MetricsIP defaults
	// to loopback, whatever IP is.
	MetricsPort int
	MetricsIP   string
	// DryRun evaluates and records every call, then allows it.
	DryRun bool
	// ShadowPolicy is a bundle decided beside the enforced policy without
	// changing any result; watched. "": none.
	ShadowPolicy string
	// StatusAddr is the host:port of the status endpoint (GET /status,
	// /healthz); port 0 picks a free one. "": no endpoint.
	StatusAddr string
	// Logger receives the server's logs. Nil: discarded.
	Logger log.Logger
	// PolicyLogger receives the policy's logs (activations, rejected bundles,
	// bundle sources) and the claim mapper's. Nil: Logger.
	PolicyLogger log.Logger
	// DynamicConfig adds dynamic config values (tests use it to speed things up).
	DynamicConfig dynamicconfig.StaticClient
	// AuthzFile is an authz settings file as "start --authz" reads it (jwt,
	// policy). Its jwt section, when it names a key source (issuer, jwks_urls,
	// jwks_files), verifies tokens of other issuers (an identity provider);
	// tokens of the dev key stay trusted. Without a key source its jwt
	// settings apply to the dev key's tokens. Its status section is not used
	// (see StatusAddr). Policy and policy.bundle cannot both be set.
	AuthzFile string
	// UI serves Temporal's Web UI when not nil.
	UI *UIOptions
	// TLS turns on mTLS (--tls): the frontend (gRPC and HTTP API) and the
	// services between them require client certificates of the dev CA in
	// StateDir (package devca), created on first use. Tokens keep working
	// alongside certificates.
	TLS bool
	// ReplaceAuth, when set, replaces temporal-opa's claim mapper and
	// authorizer on the public frontend with the server options it returns,
	// to compare temporal-opa with another authorization (the e2e package's
	// BenchmarkServerThroughput: none, Temporal's default). The options that
	// configure temporal-opa's policy or need it are refused with it. The
	// internal-frontend keeps Temporal's internal principal whatever it is.
	ReplaceAuth AuthReplacement
}

// An AuthReplacement returns the server options that install a claim mapper
// and an authorizer in place of temporal-opa's, given the URL of the JWKS of
// the dev key (whose tokens they may verify) and the server's logger; stop,
// if not nil, releases what they hold once the server has stopped.
type AuthReplacement func(jwksURL string, logger log.Logger) (opts []temporal.ServerOption, stop func())

// checkReplaceAuth refuses, with ReplaceAuth, the options that configure
// temporal-opa's policy or need it (the status endpoint, the Web UI's dev
// identity).
func checkReplaceAuth(o Options) error {
	if o.ReplaceAuth == nil {
		return nil
	}
	for _, opt := range []struct {
		name string
		set  bool
	}{
		{"Policy", len(o.Policy) > 0}, {"OPAConfig", o.OPAConfig != ""}, {"DecisionLog", o.DecisionLog != nil},
		{"DryRun", o.DryRun}, {"ShadowPolicy", o.ShadowPolicy != ""}, {"StatusAddr", o.StatusAddr != ""},
		{"AuthzFile", o.AuthzFile != ""}, {"UI", o.UI != nil},
	} {
		if opt.set {
			return fmt.Errorf("devserver: ReplaceAuth cannot be combined with %s, which needs temporal-opa's authorization", opt.name)
		}
	}
	return nil
}

// UIOptions configure the Web UI of a dev server (package webui).
type UIOptions struct {
	// IP defaults to loopback, whatever the frontend's; Port 0 picks a free
	// port. Without OIDC login (ConfigFile with auth enabled) the UI acts as
	// the dev identity for whoever reaches it, so a non-loopback IP is refused
	// unless DevIdentityOnNetwork is set.
	IP   string
	Port int
	// DevIdentityOnNetwork allows serving the dev identity on a non-loopback
	// IP (--ui-insecure-dev-identity-on-network): everyone who reaches the
	// port then acts with Permissions.
	DevIdentityOnNetwork bool
	// ConfigFile is a ui-server YAML config (--ui-config). With auth enabled
	// in it, users log in with OIDC; otherwise the UI acts as the dev identity.
	ConfigFile string
	// Permissions of the dev identity (default temporal-system:admin).
	Permissions []string
	// Subject of the dev identity (default UISubject).
	Subject string
}

// UISubject is the subject of the dev UI's identity.
const UISubject = "dev-ui"

// Server is a running dev server.
type Server struct {
	temporal   temporal.Server
	jwks       *devkey.Server
	auth       *wiring.Auth
	status     *wiring.StatusServer
	stopAuth   func() // releases what Options.ReplaceAuth's options hold
	key        *devkey.Key
	keyCreated bool
	frontend   string
	http       string
	metrics    string          // host:port of /metrics, "" when off
	mh         metrics.Handler // stopped by the Temporal server, or by closeAux before it runs
	internal   string
	internalHT string // the internal-frontend's HTTP host:port (for Nexus: see serverConfig)
	membership string // the frontend's membership (ringpop) host:port, on the frontend's IP
	ui         *webui.Server
	uiIdentity *webui.Identity // nil when the UI logs users in with OIDC
	uiProvider string          // the OIDC provider's URL, when it does

	tls *devTLS // nil without Options.TLS
}

// Error is a start-up failure with a message meant for the user as it is.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

// Start starts a dev server and returns once its frontend answers health checks.
// On error nothing is left running.
func Start(ctx context.Context, o Options) (_ *Server, err error) {
	if o.IP == "" {
		o.IP = loopback
	}
	if o.Logger == nil {
		o.Logger = log.NewNoopLogger()
	}
	if err := checkReplaceAuth(o); err != nil {
		return nil, err
	}
	s := &Server{}
	defer func() {
		if err != nil {
			s.closeAux()
		}
	}()

	// The signing key.
	s.key = o.Key
	if s.key == nil {
		s.key, s.keyCreated, err = devkey.LoadOrCreate(o.StateDir)
		if err != nil {
			return nil, err
		}
	}

	if o.TLS {
		if s.tls, err = prepareTLS(o.StateDir, o.IP); err != nil {
			return nil, err
		}
	}

	// Ports: the frontend's is the user's choice and must be free; the rest are picked.
	if o.Port == 0 {
		if o.Port, err = freePort(o.IP); err != nil {
			return nil, err
		}
		if o.HTTPPort == 0 {
			if o.HTTPPort, err = freePort(o.IP); err != nil {
				return nil, err
			}
		}
	} else if err := checkFree(o.IP, o.Port, "--port"); err != nil {
		return nil, err
	}
	if o.HTTPPort == 0 {
		if o.HTTPPort, err = cli.HTTPPortOffset.From(o.Port); err != nil {
			return nil, &Error{Msg: err.Error()}
		}
	}
	if o.HTTPPort > 0 {
		if err := checkFree(o.IP, o.HTTPPort, "--http-port (-1 disables the HTTP API)"); err != nil {
			return nil, err
		}
	}
	picked, err := ports.FreeLow(loopback, 10)
	if err != nil {
		return nil, err
	}
	uiCfg, err := prepareUI(ctx, &o)
	if err != nil {
		return nil, err
	}

	// JWKS on loopback, then the claim mapper and the authorizer. The settings
	// are temporal-opa's; with ReplaceAuth (checked above) they are the dev
	// key's alone, and unused.
	if s.jwks, err = devkey.ServeOwnHosts(joinHostPort(loopback, 0), s.key); err != nil {
		return nil, err
	}
	devJWT := claimmapper.Config{
		Issuer:        devkey.Issuer,
		SkipDiscovery: true,
		JWKSURLs:      []string{s.jwks.URL()},
	}
	settings, ownIssuer, err := loadSettings(o, devJWT)
	if err != nil {
		return nil, err
	}
	if o.OPAConfig != "" {
		settings.Policy.OPAConfig = o.OPAConfig
		if settings.Policy.OPA, err = source.LoadConfig(o.OPAConfig); err != nil {
			return nil, &Error{Msg: "--opa-config " + cli.OneLine(err.Error())}
		}
	}
	if o.DecisionLog != nil {
		settings.DecisionLogs.Console, settings.DecisionLogs.ForceConsole = o.DecisionLog, true
	}
	if o.DryRun {
		settings.Policy.Mode = policy.ModeDryRun
	}
	if o.ShadowPolicy != "" {
		settings.Policy.Shadow = o.ShadowPolicy
	}
	mh := metrics.NoopMetricsHandler
	if o.MetricsPort != 0 {
		if o.MetricsIP == "" {
			o.MetricsIP = loopback
		}
		if err := checkFree(o.MetricsIP, o.MetricsPort, "--metrics-port"); err != nil {
			return nil, err
		}
		s.metrics = joinHostPort(o.MetricsIP, o.MetricsPort)
		if mh, err = serveMetrics(o.Logger, s.metrics); err != nil {
			return nil, fmt.Errorf("--metrics-port %d: %w", o.MetricsPort, err)
		}
		s.mh = mh
	}
	var authOpts []temporal.ServerOption
	if o.ReplaceAuth != nil {
		authOpts, s.stopAuth = o.ReplaceAuth(s.jwks.URL(), o.Logger)
	} else {
		// start-dev always has an internal-frontend: grants are on unless
		// the authz file turns them off.
		if err := wiring.ResolveGrants(&settings, true); err != nil {
			return nil, err
		}
		if err := s.startOPA(ctx, o, settings, ownIssuer, devJWT, mh); err != nil {
			return nil, err
		}
		if settings.GrantsEnabled(false) {
			// The grants namespace is created with the others, in the store.
			if ns := wiring.GrantsNamespace(settings); !slices.Contains(o.Namespaces, ns) {
				o.Namespaces = append(slices.Clip(o.Namespaces), ns)
			}
		}
	}

	cfg, err := serverConfig(o, picked)
	if err != nil {
		return nil, err
	}
	if s.tls != nil {
		s.tls.apply(cfg)
	}
	if o.ReplaceAuth == nil {
		if settings.GrantsEnabled(false) {
			// The internal-frontend as `start` finds it: its address, and
			// the internode TLS settings with --tls.
			hostPort, tlsCfg, _, err := grantsvc.InternalFrontend(cfg, o.Logger)
			if err != nil {
				return nil, fmt.Errorf("grants: %w", err)
			}
			if err := s.auth.EnableGrants(hostPort, tlsCfg); err != nil {
				return nil, err
			}
		}
		// The last WithAuthorizer wins: the policy's, guarded (internalGuard).
		authOpts = append(s.auth.ServerOptions(), temporal.WithAuthorizer(internalGuard{s.auth.Authorizer}))
	}
	if err := setupDB(o, cfg); err != nil {
		return nil, err
	}
	allowedHosts, err := httpAllowedHosts(o)
	if err != nil {
		return nil, err
	}
	dc := dynamicconfig.StaticClient{
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): []dynamicconfig.ConstrainedValue{{Value: true}},
		dynamicconfig.FrontendHTTPAllowedHosts.Key():                []dynamicconfig.ConstrainedValue{{Value: allowedHosts}},
		// The principal of each call (the verified token's subject, or the
		// internal principal), as the authorizer returns it, is stamped on the
		// history events the call writes: a history says who started,
		// signalled or terminated a workflow. Temporal strips principal
		// headers callers send, so none can be forged.
		dynamicconfig.EnablePrincipalPropagation.Key(): []dynamicconfig.ConstrainedValue{{Value: true}},
	}
	for k, v := range o.DynamicConfig {
		if k == dynamicconfig.FrontendHTTPAllowedHosts.Key() {
			return nil, errors.New("devserver: DynamicConfig cannot set frontend.httpAllowedHosts: start-dev sets it to its own addresses")
		}
		dc[k] = v
	}
	opts := append([]temporal.ServerOption{
		temporal.WithConfig(cfg),
		temporal.ForServices(temporal.Services), // frontend, internal-frontend, history, matching, worker
		temporal.WithLogger(o.Logger),
		temporal.WithDynamicConfigClient(dc),
		temporal.WithCustomMetricsHandler(mh),
	}, authOpts...)
	srv, err := temporal.NewServer(opts...)
	if err != nil {
		return nil, fmt.Errorf("create Temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start Temporal server: %w", err)
	}
	s.temporal = srv
	s.mh = nil // the Temporal server stops it
	s.frontend = joinHostPort(o.IP, o.Port)
	s.membership = joinHostPort(o.IP, cfg.Services["frontend"].RPC.MembershipPort)
	if o.HTTPPort > 0 {
		s.http = joinHostPort(o.IP, o.HTTPPort)
	}
	s.internal = joinHostPort(loopback, cfg.Services["internal-frontend"].RPC.GRPCPort)
	s.internalHT = joinHostPort(loopback, cfg.Services["internal-frontend"].RPC.HTTPPort)

	readyCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for _, addr := range []string{dialAddr(s.frontend), s.internal} {
		if err := waitServing(readyCtx, addr, s.dialTLS()); err != nil {
			_ = s.Stop()
			return nil, fmt.Errorf("Temporal server did not become ready at %s: %w", addr, err)
		}
	}
	if g := s.grants(); g != nil {
		// The grants are loaded before Start returns.
		g.Start()
		if err := g.WaitReady(readyCtx); err != nil {
			_ = s.Stop()
			return nil, err
		}
	}
	if o.UI != nil {
		if err := s.startUI(readyCtx, o, uiCfg); err != nil {
			_ = s.Stop()
			return nil, err
		}
	}
	return s, nil
}

// startOPA builds temporal-opa's claim mapper and authorizer (s.auth) from
// settings, and the status endpoint when asked.
func (s *Server) startOPA(ctx context.Context, o Options, settings authzconfig.File, ownIssuer bool, devJWT claimmapper.Config, mh metrics.Handler) error {
	var err error
	if o.PolicyLogger == nil {
		o.PolicyLogger = o.Logger
	}
	policyLog := log.NewSlogLogger(o.PolicyLogger)
	if s.auth, err = wiring.NewAuth(ctx, settings, policyLog, mh); err != nil {
		var pe *wiring.PolicyError
		if errors.As(err, &pe) {
			paths := pe.Paths
			if pe.Path != "" {
				paths = []string{pe.Path}
			}
			flag := "--policy " + strings.Join(paths, " --policy ")
			switch {
			case pe.Path != "" && pe.Path == o.ShadowPolicy && !slices.Contains(o.Policy, o.ShadowPolicy):
				flag = "--shadow-policy " + o.ShadowPolicy
			case len(o.Policy) == 0 && len(paths) == 1:
				flag = "--authz " + o.AuthzFile + ": policy.bundle " + paths[0]
			case len(o.Policy) == 0:
				flag = "--authz " + o.AuthzFile + ": policy.bundle [" + strings.Join(paths, ", ") + "]"
			}
			return &Error{Msg: fmt.Sprintf("%s: %s", flag, cli.OneLine(pe.Err.Error()))}
		}
		if o.AuthzFile != "" {
			return fmt.Errorf("--authz %s: %w", o.AuthzFile, err)
		}
		return err
	}
	if ownIssuer {
		// The file's jwt section verifies the identity provider's tokens; the
		// dev key's keep their own mapper.
		dev, err := claimmapper.New(ctx, devJWT, claimmapper.WithLogger(policyLog))
		if err != nil {
			return err
		}
		s.auth.TrustIssuer(devkey.Issuer, dev)
	}
	if o.StatusAddr != "" {
		if s.status, err = wiring.ServeStatus(o.StatusAddr, s.auth, true); err != nil {
			return &Error{Msg: fmt.Sprintf("--status-addr %s: %v: choose another with --status-addr HOST:PORT, or disable it with --status-addr -1", o.StatusAddr, err)}
		}
	}
	return nil
}

// grants is the grant service, or nil when grants are off.
func (s *Server) grants() *grantsvc.Service {
	if s.auth == nil {
		return nil
	}
	return s.auth.Grants
}

// GrantsNamespace is the namespace of the grants, or "" when grants are off.
func (s *Server) GrantsNamespace() string {
	if g := s.grants(); g != nil {
		return g.Namespace()
	}
	return ""
}

// MetricsURL is the Prometheus endpoint, or "" when metrics are off.
func (s *Server) MetricsURL() string {
	if s.metrics == "" {
		return ""
	}
	return "http://" + dialAddr(s.metrics) + "/metrics"
}

// DecisionLogging reports whether decisions are logged.
func (s *Server) DecisionLogging() bool { return s.auth != nil && s.auth.DecisionLog != nil }

// Report is the status document of the server's policy (as GET /status serves it);
// empty with Options.ReplaceAuth.
func (s *Server) Report() wiring.StatusReport {
	if s.auth == nil {
		return wiring.StatusReport{}
	}
	return s.auth.Report()
}

// prepareUI fills in the UI's defaults, reads its config file and checks its
// port, so that a mistake stops start-up before the Temporal server starts.
func prepareUI(ctx context.Context, o *Options) (*webui.Config, error) {
	if o.UI == nil {
		return nil, nil
	}
	u := *o.UI
	o.UI = &u
	if u.IP == "" {
		u.IP = loopback
	}
	if len(u.Permissions) == 0 {
		u.Permissions = cli.DefaultUIPermissions
	}
	if u.Subject == "" {
		u.Subject = UISubject
	}
	var cfg *webui.Config
	if u.ConfigFile != "" {
		var err error
		if cfg, err = webui.LoadConfig(u.ConfigFile); err != nil {
			return nil, err
		}
		if err := webui.CheckConfig(ctx, cfg, u.ConfigFile, nil); err != nil {
			return nil, err
		}
	}
	if err := CheckUIExposure(u.IP, u.Permissions, webui.AuthEnabled(cfg), u.DevIdentityOnNetwork); err != nil {
		return nil, err
	}
	if u.Port == 0 {
		p, err := freePort(u.IP)
		if err != nil {
			return nil, err
		}
		u.Port = p
	} else if err := webui.CheckPort(u.IP, u.Port); err != nil {
		return nil, err
	}
	return cfg, nil
}

// startUI starts the Web UI against the running frontend.
func (s *Server) startUI(ctx context.Context, o Options, cfg *webui.Config) error {
	if !webui.AuthEnabled(cfg) {
		s.uiIdentity = webui.NewIdentity(s.key, o.UI.Subject, o.UI.Permissions, 0, nil)
	} else {
		s.uiProvider = cfg.Auth.Providers[0].ProviderURL
	}
	ui, err := webui.Start(ctx, webui.Options{
		IP:         o.UI.IP,
		Port:       o.UI.Port,
		Frontend:   dialAddr(s.frontend),
		Config:     cfg,
		ConfigFile: o.UI.ConfigFile,
		Identity:   s.uiIdentity,
		TLS:        s.uiTLS(),
	})
	if err != nil {
		var ue *webui.Error
		if errors.As(err, &ue) {
			return &Error{Msg: ue.Msg}
		}
		return err
	}
	s.ui = ui
	return nil
}

// loadSettings builds the authz settings: the dev key's alone, or those of
// o.AuthzFile. ownIssuer reports that the file names its own key source (or
// jwt.issuers), whose mapper then replaces the dev key's (which start keeps
// through TrustIssuer).
func loadSettings(o Options, devJWT claimmapper.Config) (_ authzconfig.File, ownIssuer bool, err error) {
	settings := authzconfig.File{JWT: devJWT}
	if o.AuthzFile != "" {
		data, err := os.ReadFile(o.AuthzFile)
		if err != nil {
			return settings, false, &Error{Msg: fmt.Sprintf("--authz %s: %v", o.AuthzFile, errors.Unwrap(err))}
		}
		var peek struct {
			JWT map[string]any `yaml:"jwt"`
		}
		_ = yaml.Unmarshal(data, &peek) // syntax errors are reported by Parse, with their line
		base := devJWT
		for _, k := range []string{"issuer", "jwks_urls", "jwks_files", "issuers"} {
			if _, ok := peek.JWT[k]; ok {
				base, ownIssuer = claimmapper.Config{}, true
			}
		}
		f, err := authzconfig.Parse(o.AuthzFile, data, base)
		if err != nil {
			return settings, false, &Error{Msg: cli.OneLine(err.Error())}
		}
		settings = *f
	}
	if len(o.Policy) > 0 {
		if len(settings.Policy.Bundle) > 0 {
			return settings, false, &Error{Msg: fmt.Sprintf("--policy %s and policy.bundle of --authz %s both name bundles: keep one of them (either can list several)", strings.Join(o.Policy, ","), o.AuthzFile)}
		}
		if _, err := authzconfig.FileBundles(o.Policy); err != nil {
			return settings, false, &Error{Msg: "--policy: " + err.Error()}
		}
		settings.Policy.Bundle = o.Policy
	}
	return settings, ownIssuer, nil
}

// PolicySources describes where the active policy comes from, as the
// authorizer was built (the embedded default, --policy or the authz file's
// policy.bundle, the OPA config's bundles); "" before it is.
func (s *Server) PolicySources() string {
	if s.auth == nil {
		return ""
	}
	return s.auth.PolicySources
}

// FrontendAddr is the public frontend's host:port.
func (s *Server) FrontendAddr() string { return s.frontend }

// HTTPAddr is the frontend's HTTP API host:port, or "" when disabled.
func (s *Server) HTTPAddr() string { return s.http }

// InternalFrontendAddr is the internal-frontend's loopback host:port. Whoever
// reaches it is system admin (with Options.TLS, whoever presents a
// certificate of the dev CA).
func (s *Server) InternalFrontendAddr() string { return s.internal }

// InternalFrontendHTTPAddr is the internal-frontend's HTTP host:port, on
// loopback: Temporal's history service sends Nexus requests there.
func (s *Server) InternalFrontendHTTPAddr() string { return s.internalHT }

// UIURL is the Web UI's address, or "" without a UI.
func (s *Server) UIURL() string {
	if s.ui == nil {
		return ""
	}
	return s.ui.URL()
}

// UIIdentity is the identity the Web UI acts as, or nil when it logs users in
// with OIDC (or there is no UI).
func (s *Server) UIIdentity() *webui.Identity { return s.uiIdentity }

// TLS reports whether the server requires client certificates (Options.TLS).
func (s *Server) TLS() bool { return s.tls != nil }

// CAFile is the dev CA's certificate file (PEM), or "" without TLS.
func (s *Server) CAFile() string {
	if s.tls == nil {
		return ""
	}
	return s.tls.ca.CertPath()
}

// UserCert is the client certificate and key files issued at start for the
// banner's commands (CN UserCertCN), or "" without TLS.
func (s *Server) UserCert() (certFile, keyFile string) {
	if s.tls == nil {
		return "", ""
	}
	return s.tls.userCert, s.tls.userKey
}

func (s *Server) dialTLS() *tls.Config {
	if s.tls == nil {
		return nil
	}
	return s.tls.dial
}

func (s *Server) uiTLS() *webui.TLSConfig {
	if s.tls == nil {
		return nil
	}
	return s.tls.uiTLS()
}

// Key is the dev signing key the server trusts.
func (s *Server) Key() *devkey.Key { return s.key }

// JWKSURL is where the key set is served.
func (s *Server) JWKSURL() string { return s.jwks.URL() }

// Authorizer is the server's authorizer; nil with Options.ReplaceAuth.
func (s *Server) Authorizer() *policy.Authorizer {
	if s.auth == nil {
		return nil
	}
	return s.auth.Authorizer
}

// StatusURL is the URL of the status document (GET), or "" when disabled.
func (s *Server) StatusURL() string {
	if s.status == nil {
		return ""
	}
	return "http://" + dialAddr(s.status.Addr()) + "/status"
}

// Status is what the status endpoint serves (see Report).
func (s *Server) Status() wiring.StatusReport { return s.Report() }

// Stop stops the Web UI, the Temporal server, the status endpoint, the policy's bundle
// sources, the JWKS server and the claim mapper (or what Options.ReplaceAuth's
// options hold).
func (s *Server) Stop() error {
	var err error
	if s.ui != nil {
		s.ui.Stop()
		s.ui = nil
	}
	if g := s.grants(); g != nil {
		// Before the server: its worker and follower call it.
		err = g.Close()
	}
	if s.temporal != nil {
		err = errors.Join(err, s.temporal.Stop())
		s.temporal = nil
	}
	return errors.Join(err, s.closeAux())
}

func (s *Server) closeAux() error {
	var errs []error
	if s.mh != nil {
		s.mh.Stop(log.NewNoopLogger())
		s.mh = nil
	}
	if s.status != nil {
		errs = append(errs, s.status.Close())
		s.status = nil
	}
	if s.auth != nil {
		errs = append(errs, s.auth.Close())
		s.auth = nil
	}
	if s.stopAuth != nil {
		s.stopAuth()
		s.stopAuth = nil
	}
	if s.jwks != nil {
		errs = append(errs, s.jwks.Close())
		s.jwks = nil
	}
	return errors.Join(errs...)
}

// CheckUIExposure refuses to serve the dev identity on a non-loopback IP
// unless allowed: without OIDC login (authEnabled) the UI acts with its
// identity's permissions for whoever reaches it.
func CheckUIExposure(ip string, perms []string, authEnabled, allowed bool) error {
	if authEnabled || allowed || isLoopback(ip) {
		return nil
	}
	return &Error{Msg: cli.UIExposureMessage(ip, perms)}
}
