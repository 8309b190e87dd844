// Package offline implements the temporal-opa subcommands that need no running
// Temporal server: token, keys gen, keys serve, eval, and the commands of policy
// authors: policy test, check, export, explain and can-i.
//
// The policy commands decide, activate and check with package policy's own
// Authorizer, the code the server runs, so that "policy check passes" and "the
// server activates the bundle" cannot drift apart. The package does not link
// the Temporal server.
//
// Each takes the options parsed by package cli and writes its output to the given
// writer. Only token prints a token, and only because the user asked for one; no
// command prints a private key.
package offline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/temporal-opa/temporal-opa/server/internal/cli"
	"github.com/temporal-opa/temporal-opa/server/internal/devkey"
	"github.com/temporal-opa/temporal-opa/server/internal/ports"
)

// loadKey loads the key from --key or from --state-dir, with advice when missing.
func loadKey(keyFile, stateDir string) (*devkey.Key, error) {
	if keyFile != "" {
		return devkey.Load(keyFile)
	}
	k, err := devkey.Load(filepath.Join(stateDir, devkey.KeyFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no dev signing key in %s: run '%s start-dev' (which creates it) or '%s keys gen' first, or pass --state-dir or --key",
			stateDir, cli.Program, cli.Program)
	}
	return k, err
}

// Token is "temporal-opa token": it mints a token and prints it alone on the last
// line of w; notes go to notes (stderr).
func Token(o cli.Token, w, notes io.Writer) error {
	k, err := loadKey(o.KeyFile, o.StateDir)
	if err != nil {
		return err
	}
	for _, p := range o.Permissions {
		if ns, _, _ := strings.Cut(p, ":"); ns == "system" {
			fmt.Fprintf(notes, "note: %q grants nothing by default: Temporal's system scope is temporal-system (use temporal-system:%s, or list \"system\" in jwt.system_namespace_aliases)\n",
				p, strings.SplitN(p, ":", 2)[1])
		}
	}
	tok, err := k.Mint(devkey.Claims{Subject: o.Subject, Permissions: o.Permissions, TTL: o.TTL, Audience: o.Audience})
	if err != nil {
		return err
	}
	fmt.Fprintf(notes, "token for sub %q with %s, valid %s, signed by %s\n", o.Subject, strings.Join(o.Permissions, ","), o.TTL, k.Path())
	_, err = fmt.Fprintln(w, tok)
	return err
}

// KeysGen is "temporal-opa keys gen": it creates a key file and prints where it
// is and its public JWKS.
func KeysGen(o cli.KeysGen, w io.Writer) error {
	path := o.KeyFile
	if path == "" {
		if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
			return fmt.Errorf("create state directory %s: %w", o.StateDir, err)
		}
		if err := devkey.CheckStateDir(o.StateDir); err != nil {
			return err // start-dev would refuse the key it holds
		}
		path = filepath.Join(o.StateDir, devkey.KeyFileName)
	}
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s already exists; it is never overwritten (delete it first to replace the key, which invalidates every token it signed)", path)
	}
	k, err := devkey.Generate()
	if err != nil {
		return err
	}
	if err := k.Save(path); err != nil {
		return err
	}
	jwks, err := k.JWKS()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Created ES256 key %s (kid %s, mode 0600).\nPublic key set (serve it with '%s keys serve'):\n%s\n", path, k.KeyID(), cli.Program, jwks)
	return nil
}

// KeysServe is "temporal-opa keys serve": it serves the key's JWKS until ctx is done.
func KeysServe(ctx context.Context, o cli.KeysServe, w io.Writer) error {
	k, err := loadKey(o.KeyFile, o.StateDir)
	if err != nil {
		return err
	}
	s, err := devkey.Serve(o.Addr, k)
	if err != nil {
		if ports.InUse(err) {
			return fmt.Errorf("--addr %s is already in use: choose another address, e.g. --addr 127.0.0.1:0 for any free port", o.Addr)
		}
		return err
	}
	fmt.Fprintf(w, "Serving the JWKS of key %s (kid %s)\n  %s\n\nTemporal config:\n  global:\n    authorization:\n      jwtKeyProvider:\n        keySourceURIs: [%q]\n\nPress Ctrl-C to stop.\n",
		k.Path(), k.KeyID(), s.URL(), s.URL())
	select {
	case <-ctx.Done():
		return s.Close()
	case <-waitChan(s):
		return s.Wait()
	}
}

func waitChan(s *devkey.Server) <-chan struct{} {
	ch := make(chan struct{})
	go func() { _ = s.Wait(); close(ch) }()
	return ch
}
