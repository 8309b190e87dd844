package wiring

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
	"go.temporal.io/server/common/metrics"
	_ "go.temporal.io/server/common/persistence/sql/sqlplugin/mysql"      // MySQL persistence, as temporal-server
	_ "go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql" // PostgreSQL persistence
	_ "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"     // SQLite persistence
	"go.temporal.io/server/temporal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
	"github.com/temporal-opa/temporal-opa/server/internal/authzconfig"
	"github.com/temporal-opa/temporal-opa/server/internal/cli"
	"github.com/temporal-opa/temporal-opa/server/internal/grantsvc"
)

// LoadTemporalConfig loads Temporal's server configuration as temporal-server
// start does: one file, or a directory with <env>.yaml (and <env>_<zone>.yaml).
func LoadTemporalConfig(o cli.Start) (*config.Config, error) {
	var (
		cfg *config.Config
		err error
		src string
	)
	if o.ConfigFile != "" {
		src = o.ConfigFile
		cfg, err = config.Load(config.WithConfigFile(o.ConfigFile))
	} else {
		src = filepath.Join(o.ConfigDir, o.Env+".yaml")
		cfg, err = config.Load(config.WithConfigDir(o.ConfigDir), config.WithEnv(o.Env), config.WithZone(o.Zone))
	}
	if err != nil {
		if o.ConfigFrom == cli.EnvConfigFile {
			return nil, fmt.Errorf("load Temporal config %s (from %s): %w", src, cli.EnvConfigFile, err)
		}
		return nil, fmt.Errorf("load Temporal config %s: %w", src, err)
	}
	return cfg, nil
}

// Settings returns the authz settings for a Temporal config: the JWT settings of
// global.authorization, overridden by the authz file when one is given.
func Settings(cfg *config.Config, authzFile string) (authzconfig.File, error) {
	base := claimmapper.FromTemporal(&cfg.Global.Authorization)
	if authzFile == "" {
		f := authzconfig.File{JWT: base}
		if err := f.JWT.Validate(); err != nil {
			return f, fmt.Errorf("no JWT key source: set global.authorization.jwtKeyProvider.keySourceURIs in the Temporal config, "+
				"or jwt.jwks_urls / jwt.issuer in an --authz FILE (%v)", err)
		}
		return f, nil
	}
	f, err := authzconfig.Load(authzFile, base)
	if err != nil {
		return authzconfig.File{}, err
	}
	return *f, nil
}

// Run is "temporal-opa start": it runs the requested Temporal services with the
// policy's Authorizer and the ClaimMapper until ctx is done.
func Run(ctx context.Context, o cli.Start) error {
	cfg, err := LoadTemporalConfig(o)
	if err != nil {
		return err
	}
	settings, err := Settings(cfg, o.AuthzFile)
	if err != nil {
		return err
	}
	_, hasIFE := cfg.Services["internal-frontend"]
	if err := ResolveGrants(&settings, hasIFE); err != nil {
		if o.AuthzFile != "" {
			return fmt.Errorf("%s: %w", o.AuthzFile, err)
		}
		return err
	}
	for _, name := range o.Services {
		if _, ok := cfg.Services[name]; !ok {
			from := "--service " + name
			if o.ServicesFrom == cli.EnvServices {
				from = cli.EnvServices + " " + name
			}
			return fmt.Errorf("%s: the Temporal config has no services.%s section", from, name)
		}
	}
	if err := CheckPorts(cfg, o.Services); err != nil {
		return err
	}
	logger := log.NewZapLogger(log.BuildZapLogger(cfg.Log).WithOptions(zap.WithFatalHook(FatalHook{Command: "start", W: os.Stderr})))
	slogger := log.NewSlogLogger(logger)
	logger.Info("temporal-opa: settings", configTags(o)...)

	a := cfg.Global.Authorization
	if a.Authorizer != "" || a.ClaimMapper != "" {
		logger.Info("global.authorization.authorizer and claimMapper are ignored: temporal-opa's policy authorizer and claim mapper are used",
			tag.NewStringTag("authorizer", a.Authorizer), tag.NewStringTag("claimMapper", a.ClaimMapper))
	}
	if _, ok := cfg.Services["internal-frontend"]; !ok && slices.Contains(o.Services, "worker") {
		logger.Warn("no internal-frontend service in the Temporal config: the system worker will call the public frontend " +
			"without a token and be denied, so system workflows (namespace deletion, schedules, batch) fail. " +
			"Add services.internal-frontend (bound to loopback or protected by internode mTLS) and run it with --service internal-frontend.")
	}

	// One metrics handler for Temporal's series and the policy's, built once
	// from global.metrics (building it starts the Prometheus listener).
	mh, err := metrics.MetricsHandlerFromConfig(logger, cfg.Global.Metrics)
	if err != nil {
		return fmt.Errorf("global.metrics: %w", err)
	}
	auth, err := NewAuth(ctx, settings, slogger, mh)
	if err != nil {
		return err
	}
	defer auth.Close()
	if settings.GrantsEnabled(false) && slices.Contains(o.Services, "frontend") {
		hostPort, tlsCfg, _, err := grantsvc.InternalFrontend(cfg, logger)
		if err != nil {
			return fmt.Errorf("grants: the internal-frontend's address: %w", err)
		}
		if err := auth.EnableGrants(hostPort, tlsCfg); err != nil {
			return err
		}
	}
	if addr := settings.Status.Address; addr != "" {
		st, err := ServeStatus(addr, auth)
		if err != nil {
			return fmt.Errorf("%s: status.address %s: %v", o.AuthzFile, addr, err)
		}
		defer st.Close()
		logger.Info("temporal-opa: status endpoint listening", tag.NewStringTag("url", st.URL()))
	}

	opts := append([]temporal.ServerOption{
		temporal.ForServices(o.Services),
		temporal.WithConfig(cfg),
		temporal.WithLogger(logger),
		temporal.InterruptOn(InterruptOn(ctx)),
		temporal.WithCustomMetricsHandler(mh),
	}, auth.ServerOptions()...)
	s, err := temporal.NewServer(opts...)
	if err != nil {
		return fmt.Errorf("create Temporal server: %w", err)
	}
	logger.Info("temporal-opa: starting", tag.NewStringsTag("services", o.Services), tag.NewStringTag("policy", auth.Policy))
	if auth.Grants != nil {
		// The server's Start blocks: the grant service waits for the
		// internal-frontend in the background (bounded), then follows the grants.
		logger.Info("temporal-opa: grants enabled", tag.NewStringTag("namespace", auth.Grants.Namespace()))
		auth.Grants.Start()
		// Stop the worker and the follower as the server begins to stop,
		// not after (their calls would fail meanwhile).
		g, stopped := auth.Grants, make(chan struct{})
		defer close(stopped)
		go func() {
			select {
			case <-ctx.Done():
			case <-stopped:
			}
			_ = g.Close()
		}()
	}
	if err := s.Start(); err != nil { // blocks until ctx is done
		return fmt.Errorf("run Temporal server: %w", err)
	}
	return nil
}

// configTags say which config file, services and authz file start uses, and
// where each came from (flag, environment variable or default).
func configTags(o cli.Start) []tag.Tag {
	config := o.ConfigFile
	if config == "" {
		config = filepath.Join(o.ConfigDir, o.Env+".yaml")
	}
	authz := o.AuthzFile
	if authz == "" {
		authz = "(none: global.authorization alone)"
	}
	return []tag.Tag{
		tag.NewStringTag("config", config), tag.NewStringTag("config-from", o.ConfigFrom),
		tag.NewStringsTag("services", o.Services), tag.NewStringTag("services-from", o.ServicesFrom),
		tag.NewStringTag("authz", authz), tag.NewStringTag("authz-from", o.AuthzFrom),
	}
}

// FatalHook ends a fatal log of the Temporal server (it exits the process on
// some start-up failures, such as a port taken) with one readable line.
type FatalHook struct {
	Command string
	W       io.Writer
}

// OnWrite implements zapcore.CheckWriteHook.
func (h FatalHook) OnWrite(e *zapcore.CheckedEntry, fields []zapcore.Field) {
	msg := e.Message
	for _, f := range fields {
		if err, ok := f.Interface.(error); ok && f.Key == "error" {
			msg += ": " + err.Error()
		}
	}
	fmt.Fprintf(h.W, "%s: %s: the Temporal server stopped: %s\n", cli.Program, h.Command, msg)
	os.Exit(1)
}
