// Command temporal-opa is a Temporal server whose every API call is authorized by
// an OPA (Rego) policy. Run "temporal-opa --help" for its commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/temporal-opa/temporal-opa/server/internal/cli"
	"github.com/temporal-opa/temporal-opa/server/internal/devserver"
	"github.com/temporal-opa/temporal-opa/server/internal/grantcmd"
	"github.com/temporal-opa/temporal-opa/server/internal/offline"
	"github.com/temporal-opa/temporal-opa/server/internal/wiring"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }() // a second Ctrl-C kills at once
	code, msg := cli.Exit(run(ctx, cli.OSEnv(), os.Args[1:]))
	if msg != "" {
		fmt.Fprintln(os.Stderr, msg)
	}
	if code != 0 {
		os.Exit(code)
	}
}

func run(ctx context.Context, env cli.Env, args []string) error {
	name, args, err := cli.Command(args, env)
	if err != nil {
		return err
	}
	switch name {
	case "start-dev":
		return with(cli.ParseStartDev(args, env))(func(o cli.StartDev) error { return devserver.Run(ctx, o, os.Stdout, os.Stderr) })
	case "start":
		return with(cli.ParseStart(args, env))(func(o cli.Start) error { return wiring.Run(ctx, o) })
	case "token":
		return with(cli.ParseToken(args, env))(func(o cli.Token) error { return offline.Token(o, os.Stdout, os.Stderr) })
	case "cert":
		return with(cli.ParseCert(args, env))(func(o cli.Cert) error { return offline.Cert(o, os.Stdout) })
	case "keys gen":
		return with(cli.ParseKeysGen(args, env))(func(o cli.KeysGen) error { return offline.KeysGen(o, os.Stdout) })
	case "keys serve":
		return with(cli.ParseKeysServe(args, env))(func(o cli.KeysServe) error { return offline.KeysServe(ctx, o, os.Stdout) })
	case "eval":
		return with(cli.ParseEval(args, env))(func(o cli.Eval) error { return offline.Eval(ctx, o, os.Stdin, os.Stdout) })
	case "policy test", "policy check", "policy export", "policy explain", "policy can-i":
		return offline.Policy(ctx, name, args, env, os.Stdin, os.Stdout, os.Stderr)
	case "grant request", "grant approve", "grant deny", "grant revoke", "grant list", "grant break-glass":
		return grantcmd.Run(ctx, name, args, env, os.Stdout, os.Stderr)
	}
	return fmt.Errorf("command %q is not wired", name)
}

// with runs a command once its flags are parsed.
func with[T any](o T, err error) func(func(T) error) error {
	return func(run func(T) error) error {
		if err != nil {
			return err
		}
		return run(o)
	}
}
