package offline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
	"github.com/temporal-opa/temporal-opa/policy/source"
	"github.com/temporal-opa/temporal-opa/server/internal/authzconfig"
	"github.com/temporal-opa/temporal-opa/server/internal/cli"
)

// ExitError ends a command with exit status Code once it has written its
// output; main prints nothing more.
type ExitError struct{ Code int }

func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// loaded is one BUNDLE argument, read and named.
type loaded struct {
	name, path string
	b          *bundle.Bundle
}

// Policy runs the command "temporal-opa <name>" (name is "policy test",
// "policy check", ...) with its arguments; main and the tests call it.
func Policy(ctx context.Context, name string, args []string, env cli.Env, stdin io.Reader, stdout, stderr io.Writer) error {
	switch name {
	case "policy test":
		o, err := cli.ParsePolicyTest(args, env)
		if err != nil {
			return err
		}
		return PolicyTest(ctx, o, stdout, stderr)
	case "policy check":
		o, err := cli.ParsePolicyCheck(args, env)
		if err != nil {
			return err
		}
		return PolicyCheck(ctx, o, stdout, stderr)
	case "policy export":
		o, err := cli.ParsePolicyExport(args, env)
		if err != nil {
			return err
		}
		return PolicyExport(o, stdout)
	case "policy explain":
		o, err := cli.ParsePolicyExplain(args, env)
		if err != nil {
			return err
		}
		return PolicyExplain(ctx, o, stdin, stdout)
	case "policy can-i":
		o, err := cli.ParsePolicyCanI(args, env)
		if err != nil {
			return err
		}
		return PolicyCanI(ctx, o, stdin, stdout)
	}
	return fmt.Errorf("command %q is not a policy command", name)
}

// loadBundles reads the BUNDLE arguments and names them as the policy commands
// say: NAME=PATH by NAME; the others as the server names the paths of
// policy.bundle or --policy (authzconfig.FileBundles): a single bundle
// "policy", several policy/<base name>, so that revisions and messages read as
// the server's. A bundle that does not load is reported as the server's file
// source reports it: "bundle NAME: load bundle PATH: ...".
func loadBundles(args []cli.Bundle, opts policy.ReadOptions) ([]loaded, error) {
	var unnamed []string
	for _, a := range args {
		if a.Name == "" {
			unnamed = append(unnamed, a.Path)
		}
	}
	var fileNames []authzconfig.FileBundle
	if len(unnamed) > 0 {
		var err error
		if fileNames, err = authzconfig.FileBundles(unnamed); err != nil {
			return nil, fmt.Errorf("bundles: %w; or name them with NAME=PATH", err)
		}
	}
	out := make([]loaded, 0, len(args))
	seen := map[string]string{}
	for _, a := range args {
		name := a.Name
		if name == "" {
			name, fileNames = fileNames[0].Name, fileNames[1:]
		}
		b, err := policy.ReadBundle(a.Path, opts)
		if err != nil {
			return nil, fmt.Errorf("bundle %s: %w", name, err)
		}
		if other, dup := seen[name]; dup {
			return nil, fmt.Errorf("bundles %s and %s are both named %q: name them with NAME=PATH", other, a.Path, name)
		}
		seen[name] = a.Path
		out = append(out, loaded{name: name, path: a.Path, b: b})
	}
	return out, nil
}

func byName(ls []loaded) map[string]*bundle.Bundle {
	m := make(map[string]*bundle.Bundle, len(ls))
	for _, l := range ls {
		m[l.name] = l.b
	}
	return m
}

// describe names the bundles as the server's log does: "bundle policy from PATH".
func describe(ls []loaded) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.name + " from " + l.path
	}
	if len(parts) == 1 {
		return "bundle " + parts[0]
	}
	return "bundles " + strings.Join(parts, ", ")
}

// fileArgs are the bundles of policy.bundle as BUNDLE arguments, named as the
// server names them.
func fileArgs(fbs []authzconfig.FileBundle) []cli.Bundle {
	var args []cli.Bundle
	for _, fb := range fbs {
		args = append(args, cli.Bundle{Name: fb.Name, Path: fb.Path})
	}
	return args
}

// describeFiles is "policy bundle PATH", or "policy bundles PATH, PATH".
func describeFiles(fbs []authzconfig.FileBundle) string {
	paths := make([]string, len(fbs))
	for i, fb := range fbs {
		paths[i] = fb.Path
	}
	if len(paths) == 1 {
		return "policy bundle " + paths[0]
	}
	return "policy bundles " + strings.Join(paths, ", ")
}

// loadSettings reads the --authz file, if any.
func loadSettings(path string) (authzconfig.File, error) {
	if path == "" {
		return authzconfig.File{}, nil
	}
	f, err := authzconfig.Load(path, claimmapper.Config{})
	if err != nil {
		return authzconfig.File{}, err
	}
	return *f, nil
}

// authorizer builds the Authorizer that eval, policy explain and policy can-i
// decide with, as the server would: the policy options of settings; the given
// bundles, else settings' policy.bundle, activated as the server activates
// them; and the remote bundles of policy.opa_config, waited for. Call done when
// finished with it.
func authorizer(ctx context.Context, settings authzconfig.File, args []cli.Bundle) (az *policy.Authorizer, done func(), err error) {
	fbs, err := settings.Policy.Bundles()
	if err != nil {
		return nil, nil, err
	}
	az, err = settings.NewAuthorizer(settings.Policy.Options)
	if err != nil {
		var be *authzconfig.BundleError
		if settings.StartsWithBundle() && !errors.As(err, &be) {
			return nil, nil, fmt.Errorf("%s: %w", describeFiles(fbs), err)
		}
		return nil, nil, err
	}
	if len(args) == 0 {
		args = fileArgs(fbs)
	}
	if len(args) > 0 {
		ls, err := loadBundles(args, policy.ReadOptions{})
		if err != nil {
			return nil, nil, err
		}
		if err := az.SetBundles(ctx, byName(ls)); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", describe(ls), err)
		}
	}
	done = func() {}
	if cfg := settings.Policy.OPA; cfg != nil {
		// The remote bundles of the authz file, as the server would have them.
		set, err := source.Open(ctx, az, cfg, source.Options{})
		if err != nil {
			return nil, nil, fmt.Errorf("policy.opa_config %s: %w", settings.Policy.OPAConfig, err)
		}
		wctx, cancel := context.WithTimeout(ctx, settings.Policy.WaitTimeout())
		err = set.WaitReady(wctx)
		cancel()
		if err != nil {
			_ = set.Close()
			return nil, nil, fmt.Errorf("policy.opa_config %s: %s", settings.Policy.OPAConfig, cli.OneLine(err.Error()))
		}
		done = func() { _ = set.Close() }
	}
	return az, done, nil
}
