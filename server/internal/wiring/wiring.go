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
	"fmt"
	"log/slog"
	"sync/atomic"

	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/temporal"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
	"github.com/temporal-opa/temporal-opa/server/internal/authzconfig"
)

// Auth is an Authorizer and a ClaimMapper ready to be installed in a server.
type Auth struct {
	Authorizer  *policy.Authorizer
	ClaimMapper *claimmapper.Mapper
	// Policy describes the active policy for people: "embedded default" or the bundle path.
	Policy string
}

// NewAuth builds the Authorizer (embedded default policy, with settings.Policy.Bundle
// layered on it when set) and the ClaimMapper (settings.JWT, whose key sources are
// fetched now: an unreachable one is an error). Close the result when done.
func NewAuth(ctx context.Context, settings authzconfig.File, logger *slog.Logger) (*Auth, error) {
	// The first activation's errors are returned (and stop start-up): keep the
	// authorizer from also logging them as "previous policy stays active".
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var quiet atomic.Bool
	quiet.Store(true)
	defer quiet.Store(false)
	opts := settings.Policy.Options
	opts.Logger = slog.New(gatedHandler{h: logger.Handler(), quiet: &quiet})
	az, err := policy.NewAuthorizer(opts)
	if err != nil {
		return nil, err
	}
	desc := "embedded default"
	if path := settings.Policy.Bundle; path != "" {
		b, err := policy.LoadBundle(path)
		if err != nil {
			return nil, &PolicyError{Path: path, Err: err}
		}
		if err := az.Activate(ctx, b); err != nil {
			return nil, &PolicyError{Path: path, Err: err}
		}
		desc = path + " (layered on the embedded default)"
	}
	cm, err := claimmapper.New(ctx, settings.JWT, claimmapper.WithLogger(logger))
	if err != nil {
		return nil, err
	}
	return &Auth{Authorizer: az, ClaimMapper: cm, Policy: desc}, nil
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

// ServerOptions install the Authorizer and the ClaimMapper. Put them after
// temporal.WithConfig: Temporal calls the claim mapper factory when the option is
// applied.
func (a *Auth) ServerOptions() []temporal.ServerOption {
	return []temporal.ServerOption{
		temporal.WithAuthorizer(a.Authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return a.ClaimMapper }),
	}
}

// Close stops the ClaimMapper's background key refresh.
func (a *Auth) Close() error {
	if a == nil || a.ClaimMapper == nil {
		return nil
	}
	return a.ClaimMapper.Close()
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
