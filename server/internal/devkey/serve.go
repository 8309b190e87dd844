package devkey

import (
	"context"
	"crypto"
	_ "crypto/sha256" // registers SHA-256 for key thumbprints
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/temporal-opa/temporal-opa/server/internal/hostcheck"
)

const cryptoSHA256 = crypto.SHA256

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// JWKSPath is the path at which Handler and Server serve the key set.
const JWKSPath = "/.well-known/jwks.json"

// Handler serves the key's JWKS at JWKSPath (and at /jwks.json, as Temporal's
// samples use), and 404 elsewhere.
func Handler(k *Key) (http.Handler, error) {
	body, err := k.JWKS()
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	serve := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(body)
	}
	mux.HandleFunc("GET "+JWKSPath, serve)
	mux.HandleFunc("GET /jwks.json", serve)
	return mux, nil
}

// Server serves a key's JWKS over HTTP until Close.
type Server struct {
	ln   net.Listener
	http *http.Server
	done chan error
}

// Serve listens on addr (e.g. "127.0.0.1:0" for a free loopback port) and serves
// the key's JWKS in the background, whatever the request's Host (a remote
// server may fetch it by any name).
func Serve(addr string, k *Key) (*Server, error) { return serve(addr, k, false) }

// ServeOwnHosts is Serve answering only requests whose Host is one of the
// listener's own addresses (package hostcheck: no DNS rebinding), as start-dev
// serves its JWKS to its own claim mapper.
func ServeOwnHosts(addr string, k *Key) (*Server, error) { return serve(addr, k, true) }

func serve(addr string, k *Key, ownHosts bool) (*Server, error) {
	h, err := Handler(k)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("serve JWKS: %w", err)
	}
	if ownHosts {
		if h, err = hostcheck.Wrap(h, ln.Addr().String()); err != nil {
			_ = ln.Close()
			return nil, err
		}
	}
	s := &Server{
		ln:   ln,
		http: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second},
		done: make(chan error, 1),
	}
	go func() { s.done <- s.http.Serve(ln) }()
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL returns the JWKS URL, e.g. http://127.0.0.1:41234/.well-known/jwks.json.
func (s *Server) URL() string { return "http://" + s.Addr() + JWKSPath }

// Wait blocks until the server stops and returns why (nil after Close).
func (s *Server) Wait() error {
	err := <-s.done
	s.done <- err
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the server.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.http.Shutdown(ctx)
}
