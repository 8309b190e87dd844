package grantsvc

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/config"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/grants"
)

type fakeAuthorizer struct{ fakeDecider }

func (*fakeAuthorizer) SetGrants([]grants.Grant)      {}
func (*fakeAuthorizer) RecordGrantEnded(grants.Grant) {}
func (a *fakeAuthorizer) DecideGrant(ctx context.Context, c *authorization.Claims, op string, g grants.Grant) (policy.GrantDecision, error) {
	return a.fakeDecider.DecideGrant(ctx, c, op, g)
}

func TestNewChecksConfig(t *testing.T) {
	az := &fakeAuthorizer{}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{HostPort: "127.0.0.1:1"}, "no authorizer"},
		{Config{Authorizer: az}, "no internal-frontend address"},
		{Config{Authorizer: az, HostPort: "127.0.0.1:1", PollInterval: -time.Second}, "poll_interval must not be negative"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v): %v, want %q", tc.cfg, err, tc.want)
		}
	}
	s, err := New(Config{Authorizer: az, HostPort: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Namespace() != DefaultNamespace || s.cfg.PollInterval != DefaultPollInterval || s.cfg.RequestTTL != DefaultRequestTTL || s.cfg.Retention != DefaultRetention {
		t.Fatalf("defaults %+v", s.cfg)
	}
	if err := s.Close(); err != nil { // never started
		t.Fatal(err)
	}
}

// A service that cannot reach the internal-frontend fails its start within
// the start timeout, and stops at once when closed.
func TestServiceStartFailsAndCloses(t *testing.T) {
	s, err := New(Config{Authorizer: &fakeAuthorizer{}, HostPort: "127.0.0.1:1", StartTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.WaitReady(ctx); err == nil || !strings.Contains(err.Error(), "dial the internal-frontend at 127.0.0.1:1") {
		t.Fatalf("WaitReady: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, _ = New(Config{Authorizer: &fakeAuthorizer{}, HostPort: "127.0.0.1:1"})
	s.Start()
	began := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if time.Since(began) > 10*time.Second {
		t.Fatalf("Close took %s", time.Since(began))
	}
	if err := s.WaitReady(ctx); err == nil || !strings.Contains(err.Error(), "stopped while starting") {
		t.Fatalf("WaitReady after Close: %v", err)
	}
}

func TestInternalFrontend(t *testing.T) {
	cfg := &config.Config{Services: map[string]config.Service{}}
	if _, _, ok, err := InternalFrontend(cfg, nil); ok || err != nil {
		t.Fatalf("no internal-frontend: ok %t err %v", ok, err)
	}
	for _, tc := range []struct {
		rpc       config.RPC
		broadcast string
		want      string
	}{
		{config.RPC{GRPCPort: 7236, BindOnLocalHost: true}, "10.0.0.1", "127.0.0.1:7236"},
		{config.RPC{GRPCPort: 7236, BindOnIP: "10.0.0.2"}, "10.0.0.1", "10.0.0.2:7236"},
		{config.RPC{GRPCPort: 7236, BindOnIP: "0.0.0.0"}, "10.0.0.1", "10.0.0.1:7236"},
		{config.RPC{GRPCPort: 7236, BindOnIP: "::"}, "", "127.0.0.1:7236"},
	} {
		cfg.Services["internal-frontend"] = config.Service{RPC: tc.rpc}
		cfg.Global.Membership.BroadcastAddress = tc.broadcast
		got, tlsCfg, ok, err := InternalFrontend(cfg, nil)
		if err != nil || !ok || got != tc.want || tlsCfg != nil {
			t.Errorf("%+v: %q %v %t %v, want %q", tc.rpc, got, tlsCfg, ok, err, tc.want)
		}
	}
	cfg.Services["internal-frontend"] = config.Service{}
	if _, _, _, err := InternalFrontend(cfg, nil); err == nil {
		t.Error("no grpcPort: no error")
	}
}
