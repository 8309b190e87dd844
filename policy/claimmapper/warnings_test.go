package claimmapper

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

const (
	warnAudiences = "claimmapper: config audiences is empty, so a token's aud is not checked"
	warnPlainHTTP = "over plain http from a host that is not loopback"
)

func TestConfigWarnings(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings, one per warning, in order
	}{
		{"https issuer with audiences", Config{Issuer: "https://idp.example/realms/t", Audiences: []string{"temporal"}}, nil},
		{"https issuer without audiences", Config{Issuer: "https://idp.example/realms/t"}, []string{warnAudiences}},
		{"http issuer discovery", Config{Issuer: "http://idp.example/realms/t", Audiences: []string{"temporal"}}, []string{
			"claimmapper: config issuer http://idp.example/realms/t fetches the OIDC discovery document (and so the key set's URL) " + warnPlainHTTP}},
		{"http issuer without discovery fetches nothing", Config{Issuer: "http://idp.example/realms/t", SkipDiscovery: true,
			JWKSURLs: []string{"https://idp.example/jwks"}, Audiences: []string{"temporal"}}, nil},
		{"http JWKS URL, credentials and query hidden", Config{JWKSURLs: []string{"https://a.example/jwks", "http://user:secret@10.0.0.7:8080/jwks?sig=secret"},
			Audiences: []string{"temporal"}}, []string{
			"claimmapper: config jwks_urls[1] http://10.0.0.7:8080/jwks?REDACTED fetches the token signing keys " + warnPlainHTTP + ": anyone on the network path can substitute the keys and forge tokens; use https"}},
		{"http JWKS URL and no audiences", Config{JWKSURLs: []string{"http://idp.example/jwks"}}, []string{"config jwks_urls[0] http://idp.example/jwks", warnAudiences}},
		{"upper-case scheme", Config{JWKSURLs: []string{"HTTP://idp.example/jwks"}, Audiences: []string{"a"}}, []string{"config jwks_urls[0]"}},
		{"loopback http JWKS (start-dev's own key)", Config{Issuer: "temporal-opa-dev", SkipDiscovery: true, JWKSURLs: []string{"http://127.0.0.1:41234/.well-known/jwks.json"}}, nil},
		{"localhost and IPv6 loopback", Config{JWKSURLs: []string{"http://localhost:7280/jwks.json", "http://[::1]:7280/jwks.json"}}, nil},
		{"loopback discovery", Config{Issuer: "http://127.0.0.1:8080/realms/t"}, nil},
		{"loopback and remote: audiences matter", Config{JWKSURLs: []string{"http://127.0.0.1:7280/jwks.json", "https://idp.example/jwks"}}, []string{warnAudiences}},
		{"key files without audiences", Config{JWKSFiles: []string{"/etc/temporal-opa/jwks.json"}}, []string{warnAudiences}},
		{"a host named like loopback is not", Config{JWKSURLs: []string{"http://127.0.0.1.nip.io/jwks"}, Audiences: []string{"a"}}, []string{"config jwks_urls[0] http://127.0.0.1.nip.io/jwks"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.cfg.Warnings()
			if len(got) != len(tc.want) {
				t.Fatalf("warnings %q, want %d matching %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("warning %d: %q, want it to contain %q", i, got[i], w)
				}
				if strings.Contains(got[i], "secret") {
					t.Errorf("warning %d leaks a credential: %q", i, got[i])
				}
			}
		})
	}
}

// captured records what a slog.Logger logs.
type captured struct {
	mu      sync.Mutex
	records []slog.Record
}

func (c *captured) Enabled(context.Context, slog.Level) bool { return true }
func (c *captured) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.records = append(c.records, r)
	return nil
}
func (c *captured) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *captured) WithGroup(string) slog.Handler      { return c }

func (c *captured) warnings() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, r := range c.records {
		if r.Level == slog.LevelWarn {
			out = append(out, r.Message)
		}
	}
	return out
}

// New logs the warnings at start-up, including one for a jwks_uri that OIDC
// discovery returns over plain http, through the logger it is given.
func TestNewLogsWarnings(t *testing.T) {
	key := newTestKey(t, "k1", "ES256")
	mux := http.NewServeMux()
	mux.HandleFunc("/realms/t/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": "http://idp.example/realms/t", "jwks_uri": "http://keys.example/jwks"})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		set := jwk.NewSet()
		_ = set.AddKey(key.pub)
		_ = json.NewEncoder(w).Encode(set)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	target, _ := url.Parse(srv.URL)
	// Every host (idp.example, keys.example) is answered by srv.
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.URL.Host = target.Host
		return http.DefaultTransport.RoundTrip(r)
	})}
	file := filepath.Join(t.TempDir(), "jwks.json")
	set := jwk.NewSet()
	must(t, set.AddKey(key.pub))
	raw, err := json.Marshal(set)
	must(t, err)
	must(t, os.WriteFile(file, raw, 0o600))

	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"http discovery and discovered http jwks_uri, no audiences", Config{Issuer: "http://idp.example/realms/t"}, []string{
			"claimmapper: config issuer http://idp.example/realms/t fetches the OIDC discovery document",
			warnAudiences,
			"claimmapper: issuer discovery's jwks_uri http://keys.example/jwks fetches the token signing keys " + warnPlainHTTP,
		}},
		{"key file with audiences", Config{JWKSFiles: []string{file}, Audiences: []string{"temporal"}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs := &captured{}
			newTestMapper(t, tc.cfg, WithHTTPClient(client), WithLogger(slog.New(logs)))
			got := logs.warnings()
			if len(got) != len(tc.want) || !slices.EqualFunc(got, tc.want, strings.HasPrefix) {
				t.Errorf("logged warnings %q, want %q", got, tc.want)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
