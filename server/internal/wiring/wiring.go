// Package wiring plugs temporal-opa's Authorizer (package policy) and ClaimMapper
// (package policy/claimmapper) into go.temporal.io/server, for both
// "temporal-opa start" (Temporal's own config directory, see [Run]) and
// "temporal-opa start-dev" (package devserver).
//
// [NewAuth] builds both from the settings of an authz file; [Auth.ServerOptions]
// gives the temporal.ServerOption values that install them. The ClaimMapper
// replaces Temporal's default JWT claim mapper on the public frontend only:
// Temporal gives the internal-frontend its own internal principal, which the
// default policy allows as system admin.
package wiring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/temporal"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
	"github.com/temporal-opa/temporal-opa/policy/source"
	"github.com/temporal-opa/temporal-opa/server/internal/authzconfig"
	"github.com/temporal-opa/temporal-opa/server/internal/cli"
)

// Auth is an Authorizer and a ClaimMapper ready to be installed in a server,
// with the bundle sources that feed the Authorizer.
type Auth struct {
	Authorizer  *policy.Authorizer
	ClaimMapper *claimmapper.Mapper
	// Policy describes the policy sources for people: "embedded default", the
	// watched bundle path, the OPA config's bundles.
	Policy string

	file  *source.File                   // policy.bundle, watched; nil when not set
	set   *source.Set                    // policy.opa_config's bundles; nil when not set
	extra map[string]*claimmapper.Mapper // TrustIssuer: issuer -> its own mapper
}

// NewAuth builds the Authorizer (embedded default policy, with the bundle of
// settings.Policy.Bundle layered on it and watched, and the bundles of
// settings.Policy.OPA downloaded in the background) and the ClaimMapper
// (settings.JWT, whose key sources are fetched now: an unreachable one is an
// error). A bundle file that cannot be activated now is an error (a
// *PolicyError); remote bundles are waited for only with
// settings.Policy.RequireBundle, bounded by its timeout, and otherwise logged
// as pending. Close the result when done: it stops the sources.
func NewAuth(ctx context.Context, settings authzconfig.File, logger *slog.Logger) (_ *Auth, err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// The first load's errors are returned (and stop start-up): keep the
	// authorizer and the file source from also logging them as "previous
	// policy stays active".
	var quiet atomic.Bool
	quiet.Store(true)
	defer quiet.Store(false)
	gated := slog.New(gatedHandler{h: logger.Handler(), quiet: &quiet})
	opts := settings.Policy.Options
	opts.Logger = gated
	az, err := policy.NewAuthorizer(opts)
	if err != nil {
		return nil, err
	}
	a := &Auth{Authorizer: az}
	defer func() {
		if err != nil {
			_ = a.Close()
		}
	}()
	var desc []string
	if path := settings.Policy.Bundle; path != "" {
		a.file, err = source.NewFile(ctx, az, authzconfig.FileBundleName, path, source.Options{Logger: gated})
		if err != nil {
			return nil, &PolicyError{Path: path, Err: withoutSourcePrefix(err)}
		}
		desc = append(desc, path+" (watched)")
	}
	quiet.Store(false) // from here on, every activation and failure is logged as it happens
	if cfg := settings.Policy.OPA; cfg != nil {
		a.set, err = source.Open(ctx, az, cfg, source.Options{Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("policy.opa_config %s: %s", settings.Policy.OPAConfig, err)
		}
		desc = append(desc, "bundles "+strings.Join(cfg.Bundles(), ", ")+" of "+settings.Policy.OPAConfig)
		if settings.Policy.RequireBundle {
			if err := a.waitSources(ctx, settings.Policy.WaitTimeout()); err != nil {
				return nil, err
			}
		} else {
			for _, st := range a.set.Status() {
				if st.Activations == 0 {
					logger.Info("bundle not activated yet; the server starts without it and activates it once downloaded (policy.require_bundle: true waits for it)",
						"bundle", st.Name, "location", st.Location)
				}
			}
		}
	}
	if len(desc) == 0 {
		a.Policy = "embedded default"
	} else {
		a.Policy = strings.Join(desc, " and ") + ", layered on the embedded default"
	}
	a.ClaimMapper, err = claimmapper.New(ctx, settings.JWT, claimmapper.WithLogger(logger))
	if err != nil {
		return nil, err
	}
	return a, nil
}

// waitSources waits up to timeout for every remote source to activate a bundle.
func (a *Auth) waitSources(ctx context.Context, timeout time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := a.set.WaitReady(wctx)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var msgs []string
	for _, st := range a.set.Status() {
		if st.Activations > 0 {
			continue
		}
		m := fmt.Sprintf("bundle %s (%s)", st.Name, st.Location)
		if st.LastError != "" {
			m += ": last error: " + cli.OneLine(st.LastError)
		} else {
			m += ": nothing downloaded yet"
		}
		msgs = append(msgs, m)
	}
	return fmt.Errorf("policy.require_bundle: not every bundle was activated within %s (policy.require_bundle_timeout): %s",
		timeout, strings.Join(msgs, "; "))
}

// withoutSourcePrefix drops the file source's "bundle policy[ from PATH]: "
// prefix, which PolicyError says better.
func withoutSourcePrefix(err error) error {
	var ae *policy.ActivationError
	if errors.As(err, &ae) {
		return ae
	}
	msg, ok := strings.CutPrefix(err.Error(), "bundle "+authzconfig.FileBundleName+": ")
	if !ok {
		return err
	}
	return &prefixless{msg: msg, err: err}
}

type prefixless struct {
	msg string
	err error
}

func (p *prefixless) Error() string { return p.msg }
func (p *prefixless) Unwrap() error { return p.err }

// Sources are the status of every bundle source, the watched file first.
func (a *Auth) Sources() []source.Status {
	out := []source.Status{}
	if a.file != nil {
		out = append(out, a.file.Status())
	}
	if a.set != nil {
		out = append(out, a.set.Status()...)
	}
	return out
}

// gatedHandler drops records while quiet is set.
type gatedHandler struct {
	h     slog.Handler
	quiet *atomic.Bool
}

func (g gatedHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return !g.quiet.Load() && g.h.Enabled(ctx, l)
}

func (g gatedHandler) Handle(ctx context.Context, r slog.Record) error { return g.h.Handle(ctx, r) }

func (g gatedHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return gatedHandler{h: g.h.WithAttrs(as), quiet: g.quiet}
}

func (g gatedHandler) WithGroup(name string) slog.Handler {
	return gatedHandler{h: g.h.WithGroup(name), quiet: g.quiet}
}

// PolicyError is a policy bundle that could not be loaded or activated.
type PolicyError struct {
	Path string
	Err  error
}

func (e *PolicyError) Error() string { return fmt.Sprintf("policy bundle %s: %v", e.Path, e.Err) }

func (e *PolicyError) Unwrap() error { return e.Err }

// ServerOptions install the Authorizer, the ClaimMapper and FilterNamespaces. Put them after
// temporal.WithConfig: Temporal calls the claim mapper factory when the option is
// applied.
func (a *Auth) ServerOptions() []temporal.ServerOption {
	return []temporal.ServerOption{
		temporal.WithAuthorizer(a.Authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return a.claimMapper() }),
		temporal.WithChainedFrontendGrpcInterceptors(FilterNamespaces),
	}
}

// Close stops the bundle sources (the active policy stays) and the
// ClaimMapper's background key refresh.
func (a *Auth) Close() error {
	if a == nil {
		return nil
	}
	var errs []error
	if a.file != nil {
		errs = append(errs, a.file.Close())
		a.file = nil
	}
	if a.set != nil {
		errs = append(errs, a.set.Close())
		a.set = nil
	}
	if a.ClaimMapper != nil {
		errs = append(errs, a.ClaimMapper.Close())
	}
	for _, m := range a.extra {
		errs = append(errs, m.Close())
	}
	a.extra = nil
	return errors.Join(errs...)
}

// InterruptOn returns a channel for temporal.InterruptOn that is closed when ctx
// is done.
func InterruptOn(ctx context.Context) <-chan any {
	ch := make(chan any)
	go func() {
		<-ctx.Done()
		close(ch)
	}()
	return ch
}
