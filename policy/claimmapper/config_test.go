package claimmapper

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/server/common/config"
	"gopkg.in/yaml.v3"
)

func TestConfigYAML(t *testing.T) {
	const doc = `
issuer: https://keycloak.example.com/realms/temporal
skip_discovery: true
jwks_urls: [https://keycloak.example.com/realms/temporal/protocol/openid-connect/certs]
jwks_files: [/etc/temporal/jwks.json]
refresh_interval: 5m
refetch_min_interval: 30s
fetch_timeout: 3s
algorithms: [RS256, ES256]
audiences: [temporal-authz]
leeway: 30s
require_exp: false
max_token_size: 16384
permissions_claim: resource_access.temporal-authz.roles
permissions_format: space-separated
permissions_regex: '^(?P<namespace>[^:]+):(?P<role>\w+)$'
system_namespace_aliases: [system]
subject_claim: client_id
cache_size: 500
max_extension_bytes: 4096
`
	var c Config
	must(t, yaml.Unmarshal([]byte(doc), &c))
	must(t, c.Validate())
	f := false
	want := Config{
		Issuer: "https://keycloak.example.com/realms/temporal", SkipDiscovery: true,
		JWKSURLs:  []string{"https://keycloak.example.com/realms/temporal/protocol/openid-connect/certs"},
		JWKSFiles: []string{"/etc/temporal/jwks.json"}, RefreshInterval: 5 * time.Minute,
		RefetchMinInterval: 30 * time.Second, FetchTimeout: 3 * time.Second, Algorithms: []string{"RS256", "ES256"},
		Audiences: []string{"temporal-authz"}, Leeway: 30 * time.Second, RequireExp: &f, MaxTokenSize: 16384,
		PermissionsClaim: "resource_access.temporal-authz.roles", PermissionsFormat: FormatSpaceSeparated,
		PermissionsRegex: `^(?P<namespace>[^:]+):(?P<role>\w+)$`, SystemNamespaceAliases: []string{"system"},
		SubjectClaim: "client_id", CacheSize: 500, MaxExtensionBytes: 4096,
	}
	if !configEqual(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
}

func configEqual(a, b Config) bool {
	ra, rb := a.RequireExp, b.RequireExp
	a.RequireExp, b.RequireExp = nil, nil
	same := (ra == nil) == (rb == nil) && (ra == nil || *ra == *rb)
	return same && yamlString(a) == yamlString(b)
}

func yamlString(c Config) string {
	b, _ := yaml.Marshal(c)
	return string(b)
}

func TestConfigDefaults(t *testing.T) {
	c := Config{JWKSURLs: []string{"https://idp.example.com/jwks"}}
	c.ApplyDefaults()
	if c.RefreshInterval != DefaultRefreshInterval || c.RefetchMinInterval != DefaultRefetchMinInterval ||
		c.FetchTimeout != DefaultFetchTimeout || !slices.Equal(c.Algorithms, DefaultAlgorithms) ||
		c.RequireExp == nil || !*c.RequireExp || c.MaxTokenSize != DefaultMaxTokenSize ||
		c.PermissionsClaim != "permissions" || c.PermissionsFormat != FormatArray || c.SubjectClaim != "sub" ||
		c.CacheSize != DefaultCacheSize || c.MaxExtensionBytes != DefaultMaxExtensionBytes || c.Leeway != 0 {
		t.Errorf("defaults: %+v", c)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := func(c *Config) {}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string // substrings of the error; none = valid
	}{
		{name: "minimal valid", mutate: ok},
		{name: "no key source", mutate: func(c *Config) { c.JWKSURLs = nil }, want: []string{"issuer/jwks_urls/jwks_files", "no key source"}},
		{name: "issuer without discovery is not a source", mutate: func(c *Config) { c.JWKSURLs = nil; c.Issuer = "x"; c.SkipDiscovery = true }, want: []string{"no key source"}},
		{name: "issuer not a URL", mutate: func(c *Config) { c.Issuer = "idp" }, want: []string{"config issuer", "http(s) URL", "skip_discovery"}},
		{name: "non-URL issuer with skip_discovery", mutate: func(c *Config) { c.Issuer = "idp"; c.SkipDiscovery = true }},
		{name: "file URL in jwks_urls", mutate: func(c *Config) { c.JWKSURLs = []string{"file:///etc/jwks.json"} }, want: []string{"jwks_urls[0]", "use jwks_files"}},
		{name: "ftp URL", mutate: func(c *Config) { c.JWKSURLs = append(c.JWKSURLs, "ftp://x/jwks") }, want: []string{"jwks_urls[1]", "http(s)"}},
		{name: "secret in a bad URL is redacted", mutate: func(c *Config) { c.JWKSURLs = []string{"ldap://user:s3cret@host/x?token=s3cret"} }, want: []string{"jwks_urls[0]"}},
		{name: "empty file", mutate: func(c *Config) { c.JWKSFiles = []string{" "} }, want: []string{"jwks_files[0]"}},
		{name: "refresh too short", mutate: func(c *Config) { c.RefreshInterval = time.Millisecond }, want: []string{"refresh_interval", "at least 1s"}},
		{name: "negative refetch interval", mutate: func(c *Config) { c.RefetchMinInterval = -1 }, want: []string{"refetch_min_interval"}},
		{name: "negative fetch timeout", mutate: func(c *Config) { c.FetchTimeout = -1 }, want: []string{"fetch_timeout"}},
		{name: "alg none", mutate: func(c *Config) { c.Algorithms = []string{"RS256", "none"} }, want: []string{"algorithms[1]", "never accepted"}},
		{name: "HMAC", mutate: func(c *Config) { c.Algorithms = []string{"HS256"} }, want: []string{"algorithms[0]", "HMAC"}},
		{name: "unknown alg", mutate: func(c *Config) { c.Algorithms = []string{"rs256"} }, want: []string{"algorithms[0]", "unknown algorithm", "RS256"}},
		{name: "empty audience", mutate: func(c *Config) { c.Audiences = []string{""} }, want: []string{"audiences[0]"}},
		{name: "negative leeway", mutate: func(c *Config) { c.Leeway = -time.Second }, want: []string{"leeway"}},
		{name: "huge max token", mutate: func(c *Config) { c.MaxTokenSize = 1 << 30 }, want: []string{"max_token_size"}},
		{name: "bad claim path", mutate: func(c *Config) { c.PermissionsClaim = "a..b" }, want: []string{"permissions_claim", "empty segments"}},
		{name: "bad format", mutate: func(c *Config) { c.PermissionsFormat = "csv" }, want: []string{"permissions_format", `"array"`}},
		{name: "regex does not compile", mutate: func(c *Config) { c.PermissionsRegex = "(" }, want: []string{"permissions_regex", "does not compile"}},
		{name: "regex without groups", mutate: func(c *Config) { c.PermissionsRegex = `^(\w+):(\w+)$` }, want: []string{"permissions_regex", "namespace", "role"}},
		{name: "regex without role group", mutate: func(c *Config) { c.PermissionsRegex = `^(?P<namespace>\w+):\w+$` }, want: []string{"permissions_regex"}},
		{name: "alias with colon", mutate: func(c *Config) { c.SystemNamespaceAliases = []string{"sys:tem"} }, want: []string{"system_namespace_aliases[0]"}},
		{name: "subject path", mutate: func(c *Config) { c.SubjectClaim = ".sub" }, want: []string{"subject_claim"}},
		{name: "cache size", mutate: func(c *Config) { c.CacheSize = -2 }, want: []string{"cache_size"}},
		{name: "cache disabled", mutate: func(c *Config) { c.CacheSize = -1 }},
		{name: "extension bytes", mutate: func(c *Config) { c.MaxExtensionBytes = -1 }, want: []string{"max_extension_bytes"}},
		{name: "several errors at once", mutate: func(c *Config) { c.Leeway = -1; c.CacheSize = -5 }, want: []string{"leeway", "cache_size"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{JWKSURLs: []string{"https://idp.example.com/jwks"}}
			tc.mutate(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("valid, want an error mentioning %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error leaks a secret: %v", err)
			}
		})
	}
}

func TestFromTemporal(t *testing.T) {
	a := &config.Authorization{
		JWTKeyProvider: config.JWTKeyProvider{
			KeySourceURIs:   []string{"https://idp.example.com/jwks", " ", "file:///etc/temporal/jwks.json", "file://localhost/etc/other.json"},
			RefreshInterval: time.Minute,
		},
		PermissionsClaimName: "roles",
		PermissionsRegex:     `^(?P<role>\w+):(?P<namespace>\w+)$`,
		Audience:             "temporal",
		ClaimMapper:          "default",
	}
	c := FromTemporal(a)
	if !slices.Equal(c.JWKSURLs, []string{"https://idp.example.com/jwks"}) ||
		!slices.Equal(c.JWKSFiles, []string{"/etc/temporal/jwks.json", "/etc/other.json"}) ||
		c.RefreshInterval != time.Minute || c.PermissionsClaim != "roles" || c.PermissionsRegex != a.PermissionsRegex ||
		!slices.Equal(c.Audiences, []string{"temporal"}) {
		t.Errorf("FromTemporal: %+v", c)
	}
	// Our YAML overrides, field by field.
	must(t, yaml.Unmarshal([]byte("permissions_claim: permissions\nsystem_namespace_aliases: [system]\n"), &c))
	if c.PermissionsClaim != "permissions" || c.RefreshInterval != time.Minute || len(c.SystemNamespaceAliases) != 1 {
		t.Errorf("after overlay: %+v", c)
	}
	if got := FromTemporal(nil); !configEqual(got, Config{}) {
		t.Errorf("FromTemporal(nil) = %+v", got)
	}
}

// TestNewErrors: start-up failures name the source, never a secret.
func TestNewErrors(t *testing.T) {
	k := newTestKey(t, "k", "ES256")
	srv := newJWKSServer(t, k)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusInternalServerError)
	}))
	defer down.Close()
	notJWKS := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}`))
	}))
	defer notJWKS.Close()
	dir := t.TempDir()
	badFile := filepath.Join(dir, "bad.json")
	must(t, os.WriteFile(badFile, []byte("not json"), 0o600))

	secretURL := strings.Replace(down.URL, "http://", "http://user:s3cret@", 1) + "/jwks?access_token=s3cret"
	mismatched := newJWKSServer(t, k)
	mismatched.mu.Lock()
	mismatched.issuer = "https://someone-else.example.com"
	mismatched.mu.Unlock()

	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{name: "HTTP 500", cfg: Config{JWKSURLs: []string{secretURL}}, want: []string{"key source", down.URL[len("http://"):], "500"}},
		{name: "unreachable", cfg: Config{JWKSURLs: []string{"http://127.0.0.1:1/jwks"}}, want: []string{"key source http://127.0.0.1:1/jwks"}},
		{name: "only an HMAC key", cfg: Config{JWKSURLs: []string{notJWKS.URL}}, want: []string{"no usable signing keys"}},
		{name: "missing file", cfg: Config{JWKSFiles: []string{filepath.Join(dir, "missing.json")}}, want: []string{"missing.json"}},
		{name: "file not JSON", cfg: Config{JWKSFiles: []string{badFile}}, want: []string{"bad.json"}},
		{name: "one bad source among good ones", cfg: Config{JWKSURLs: []string{srv.JWKSURL(), down.URL}}, want: []string{down.URL}},
		{name: "discovery issuer mismatch", cfg: Config{Issuer: mismatched.Issuer()}, want: []string{"OIDC discovery", "someone-else", "not the configured issuer"}},
		{name: "discovery unreachable", cfg: Config{Issuer: "http://127.0.0.1:1/realms/x"}, want: []string{"OIDC discovery http://127.0.0.1:1/realms/x/.well-known/openid-configuration"}},
		{name: "invalid regex", cfg: Config{JWKSURLs: []string{srv.JWKSURL()}, PermissionsRegex: `(?P<namespace>x`}, want: []string{"permissions_regex"}},
		{name: "regex missing role", cfg: Config{JWKSURLs: []string{srv.JWKSURL()}, PermissionsRegex: `(?P<namespace>x)`}, want: []string{"permissions_regex", "role"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			m, err := New(ctx, tc.cfg)
			if err == nil {
				_ = m.Close()
				t.Fatal("New succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error leaks a secret: %v", err)
			}
		})
	}
}

// TestNewContextBoundsStartup: a key server that never answers does not hold New
// beyond ctx.
func TestNewContextBoundsStartup(t *testing.T) {
	block := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(block)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := New(ctx, Config{JWKSURLs: []string{slow.URL}})
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("New returned %v after %s, want a prompt error", err, time.Since(start))
	}
}

// TestFileSource: keys from a local file, re-read on refetch.
func TestFileSource(t *testing.T) {
	a := newTestKey(t, "file-a", "EdDSA")
	b := newTestKey(t, "file-b", "ES384")
	path := filepath.Join(t.TempDir(), "jwks.json")
	writeSet := func(keys ...*testKey) {
		srvSet := &jwksServer{}
		for _, k := range keys {
			srvSet.keys = append(srvSet.keys, k.pub)
		}
		rec := httptest.NewRecorder()
		srvSet.serveJWKS(rec, nil)
		must(t, os.WriteFile(path, rec.Body.Bytes(), 0o600))
	}
	writeSet(a)
	clock := newFakeClock()
	m := newTestMapper(t, Config{JWKSFiles: []string{path}}, WithClock(clock.Now))
	if _, err := m.GetClaims(authInfo(a.sign(t, claimsAt(clock.Now(), "x", nil), nil))); err != nil {
		t.Fatal(err)
	}
	writeSet(a, b)
	if _, err := m.GetClaims(authInfo(b.sign(t, claimsAt(clock.Now(), "x", nil), nil))); err != nil {
		t.Fatalf("key added to the file: %v", err)
	}
}
