package wiring

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/decisionlog"
	"github.com/temporal-opa/temporal-opa/policy/shadow"
	"github.com/temporal-opa/temporal-opa/policy/source"
	"github.com/temporal-opa/temporal-opa/server/internal/hostcheck"
	"github.com/temporal-opa/temporal-opa/server/internal/ports"
)

// StatusReport is the document GET /status serves.
type StatusReport struct {
	// Policy is the active policy: generation, bundle revisions, activation
	// and failure counts, the last rejected bundle's error.
	Policy policy.Status `json:"policy"`
	// Sources are the bundle sources: the watched policy.bundle (named
	// "policy") and the bundles of policy.opa_config.
	Sources []source.Status `json:"sources"`
	// Ready is true when every source has activated a bundle.
	Ready bool `json:"ready"`
	// DecisionLogs counts the decision-log events (recorded, logged, dropped
	// when the queue was full...); absent when decisions are not logged.
	DecisionLogs *decisionlog.Status `json:"decision_logs,omitempty"`
	// Shadow is the shadow policy: its own activation status, its bundle
	// source and what it compared since its last activation; absent when none.
	Shadow *ShadowReport `json:"shadow,omitempty"`
	// Warning says what an operator must know at a glance (dry-run).
	Warning string `json:"warning,omitempty"`
}

// ShadowReport is the shadow part of a StatusReport.
type ShadowReport struct {
	Policy   policy.Status   `json:"policy"`
	Source   source.Status   `json:"source"`
	Counters shadow.Counters `json:"since_activation"`
}

// Report is the current StatusReport.
func (a *Auth) Report() StatusReport {
	r := StatusReport{Policy: a.Authorizer.Status(), Sources: a.Sources(), Ready: true}
	if dl := a.DecisionLog; dl != nil {
		st := dl.Status()
		r.DecisionLogs = &st
	}
	if a.Shadow != nil {
		r.Shadow = &ShadowReport{Policy: a.Shadow.Authorizer().Status(), Counters: a.Shadow.Counters()}
		if a.shadowFile != nil {
			r.Shadow.Source = a.shadowFile.Status()
		}
	}
	if r.Policy.Mode == policy.ModeDryRun {
		r.Warning = "DRY RUN: policy.mode is dry_run, nothing is enforced: every call is allowed whatever the policy decides"
	}
	for _, s := range r.Sources {
		if s.Activations == 0 {
			r.Ready = false
		}
	}
	return r
}

// StatusServer serves the status of an Auth over HTTP: GET /status (a
// StatusReport as JSON) and GET /healthz ("ok"). It shows no tokens, keys or
// credentials: source locations are paths and service URLs.
type StatusServer struct {
	srv  *http.Server
	addr string
	done chan struct{}
}

// ServeStatus listens on addr (host:port; port 0 picks one) and serves a's
// status until Close. Its errors do not repeat addr.
//
// With ownHostsOnly (start-dev) it answers only requests whose Host is one of
// the listener's own addresses (package hostcheck: no DNS rebinding).
func ServeStatus(addr string, a *Auth, ownHostsOnly ...bool) (*StatusServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if ports.InUse(err) {
			return nil, errors.New("port already in use")
		}
		return nil, fmt.Errorf("cannot listen: %w", errors.Unwrap(err))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(a.Report())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	var h http.Handler = mux
	if len(ownHostsOnly) > 0 && ownHostsOnly[0] {
		if h, err = hostcheck.Wrap(mux, ln.Addr().String()); err != nil {
			_ = ln.Close()
			return nil, err
		}
	}
	s := &StatusServer{
		srv:  &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second},
		addr: ln.Addr().String(),
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// Addr is the host:port the server listens on.
func (s *StatusServer) Addr() string { return s.addr }

// URL is the status document's URL.
func (s *StatusServer) URL() string { return "http://" + s.addr + "/status" }

// Close stops the server and waits for it.
func (s *StatusServer) Close() error {
	if s == nil {
		return nil
	}
	err := s.srv.Close()
	<-s.done
	return err
}
