package wiring

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
	"github.com/temporal-opa/temporal-opa/policy/source"
	"github.com/temporal-opa/temporal-opa/server/internal/authzconfig"
	"github.com/temporal-opa/temporal-opa/server/internal/devkey"
)

// records keeps what a slog.Logger logs.
type records struct {
	mu   sync.Mutex
	list []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, rec.Clone())
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// at returns the messages logged at level that contain s.
func (r *records) at(level slog.Level, s string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.list {
		if rec.Level == level && strings.Contains(rec.Message, s) {
			out = append(out, rec.Message)
		}
	}
	return out
}

// A remote bundle still missing at start-up with policy.require_bundle false
// is a warning (the server then decides calls without its rules), logged
// once, naming the bundle, however many downloads fail after it.
func TestPendingBundleIsWarnedOnce(t *testing.T) {
	var fetches atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		http.Error(w, "no such bundle", http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	key, err := devkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := key.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksFile, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	opa, err := source.ParseConfig([]byte(fmt.Sprintf(`{
		"services": {"bundles": {"url": %q}},
		"bundles": {"authz": {"service": "bundles", "resource": "authz.tar.gz", "polling": {"min_delay_seconds": 1, "max_delay_seconds": 1}}}
	}`, srv.URL)))
	if err != nil {
		t.Fatal(err)
	}
	const pending = "bundle authz not activated yet"
	tests := []struct {
		name     string
		require  bool
		wantErr  string
		wantWarn int
	}{
		{"require_bundle false: one warning", false, "", 1},
		{"require_bundle true: start-up fails instead", true, "policy.require_bundle: not every bundle was activated within 1s", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			settings := authzconfig.File{
				JWT: claimmapper.Config{Issuer: devkey.Issuer, SkipDiscovery: true, JWKSFiles: []string{jwksFile}, Audiences: []string{"temporal"}},
				Policy: authzconfig.Policy{OPA: opa, OPAConfig: "opa.yaml", RequireBundle: tc.require,
					RequireBundleTimeout: time.Second},
			}
			logs := &records{}
			began := time.Now()
			a, err := NewAuth(context.Background(), settings, slog.New(logs), nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("NewAuth: error %v, want %q", err, tc.wantErr)
				}
			} else {
				if err != nil {
					t.Fatalf("NewAuth: %v", err)
				}
				t.Cleanup(func() { _ = a.Close() })
				// More downloads fail after start-up: none is warned again.
				for seen := fetches.Load(); fetches.Load() < seen+3; {
					if time.Since(began) > 30*time.Second {
						t.Fatalf("%d downloads in 30s, want 3 more", fetches.Load()-seen)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			warned := logs.at(slog.LevelWarn, pending)
			if len(warned) != tc.wantWarn {
				t.Fatalf("warnings %q, want %d containing %q (all records: %d)", warned, tc.wantWarn, pending, len(logs.list))
			}
			if len(logs.at(slog.LevelInfo, "not activated yet")) != 0 {
				t.Error("the pending bundle is also logged at Info")
			}
			if tc.wantWarn > 0 && !strings.Contains(warned[0], "set policy.require_bundle: true to make start-up wait for it") {
				t.Errorf("warning %q does not say how to wait for the bundle", warned[0])
			}
		})
	}
}
