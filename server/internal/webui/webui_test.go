package webui

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/temporal-opa/temporal-opa/server/internal/devkey"
	"github.com/temporal-opa/temporal-opa/server/internal/testutil"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ui.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		wantErr string
		check   func(t *testing.T, got *Config)
	}{
		{name: "empty file keeps the dev defaults", content: "", check: func(t *testing.T, c *Config) {
			if !c.EnableUI || !c.CORS.CookieInsecure || !c.DisableNewsFetch || c.DefaultNamespace != "default" || c.Auth.Enabled {
				t.Errorf("defaults lost: %+v", c)
			}
		}},
		{name: "oidc provider", content: "auth:\n  enabled: true\n  providers:\n    - providerUrl: http://idp\n      clientId: ui\n      callbackUrl: http://localhost:8233/auth/sso/callback\n      scopes: [openid]\ncodec:\n  endpoint: http://codec\n",
			check: func(t *testing.T, c *Config) {
				if !AuthEnabled(c) || c.Auth.Providers[0].ClientID != "ui" || c.Codec.Endpoint != "http://codec" || !c.EnableUI {
					t.Errorf("got %+v", c)
				}
			}},
		{name: "file overrides a default", content: "defaultNamespace: orders\n", check: func(t *testing.T, c *Config) {
			if c.DefaultNamespace != "orders" {
				t.Errorf("defaultNamespace %q", c.DefaultNamespace)
			}
		}},
		{name: "unknown key", content: "auth:\n  enabeld: true\n", wantErr: "field enabeld not found"},
		{name: "host is start-dev's", content: "host: 0.0.0.0\n", wantErr: "host is set by start-dev: remove it and use --ui-ip"},
		{name: "port is start-dev's", content: "port: 8080\n", wantErr: "port is set by start-dev: remove it and use --ui-port"},
		{name: "address is start-dev's", content: "temporalGrpcAddress: x:7233\n", wantErr: "temporalGrpcAddress is set by start-dev"},
		{name: "not yaml", content: "auth: [\n", wantErr: "--ui-config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.content)
			got, err := LoadConfig(path)
			if tc.wantErr != "" {
				var ue *Error
				if !errors.As(err, &ue) || !strings.Contains(ue.Msg, tc.wantErr) || !strings.Contains(ue.Msg, path) {
					t.Fatalf("error %v, want an *Error naming %s and containing %q", err, path, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, got)
		})
	}
}

func TestIdentityRenewsBeforeExpiry(t *testing.T) {
	key, err := devkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	id := NewIdentity(key, "dev-ui", []string{"default:read"}, time.Hour, func() time.Time { return now })
	first, err := id.Token()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		advance time.Duration
		renewed bool
	}{
		{"fresh token reused", 10 * time.Minute, false},
		{"still more than a third left", 29 * time.Minute, false},
		{"less than a third left: renewed", 11 * time.Minute, true},
	} {
		now = now.Add(tc.advance)
		tok, err := id.Token()
		if err != nil {
			t.Fatal(err)
		}
		if renewed := tok != first; renewed != tc.renewed {
			t.Errorf("%s: renewed %v, want %v", tc.name, renewed, tc.renewed)
		}
		first = tok
	}
	claims := verify(t, key, first, now)
	if claims.Subject() != "dev-ui" || !claims.Expiration().Equal(now.Add(time.Hour)) {
		t.Errorf("sub %q exp %s, want dev-ui and %s", claims.Subject(), claims.Expiration(), now.Add(time.Hour))
	}
}

func verify(t *testing.T, key *devkey.Key, tok string, now time.Time) jwt.Token {
	t.Helper()
	parsed, err := jwt.Parse([]byte(tok), jwt.WithKey(jwa.ES256, key.Public()), jwt.WithClock(jwt.ClockFunc(func() time.Time { return now })))
	if err != nil {
		t.Fatalf("token does not verify with the dev key: %v", err)
	}
	return parsed
}

// frontend records the authorization metadata of GetClusterInfo calls.
type frontend struct {
	workflowservice.UnimplementedWorkflowServiceServer
	mu   sync.Mutex
	auth [][]string
}

func (f *frontend) GetClusterInfo(ctx context.Context, _ *workflowservice.GetClusterInfoRequest) (*workflowservice.GetClusterInfoResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.auth = append(f.auth, md.Get("authorization"))
	f.mu.Unlock()
	return &workflowservice.GetClusterInfoResponse{ClusterName: "fake"}, nil
}

func startFrontend(t *testing.T) (*frontend, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &frontend{}
	gs := grpc.NewServer()
	workflowservice.RegisterWorkflowServiceServer(gs, f)
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	return f, ln.Addr().String()
}

// The dev UI adds its identity's token to every call it makes to the frontend;
// a UI without identity adds nothing.
func TestStartInjectsIdentity(t *testing.T) {
	key, err := devkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		identity *Identity
		want     int // authorization values the frontend sees
	}{
		{"dev identity", NewIdentity(key, "dev-ui", []string{"temporal-system:admin"}, 0, nil), 1},
		{"no identity", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, addr := startFrontend(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := Start(ctx, Options{IP: "127.0.0.1", Port: testutil.FreePort(t, "127.0.0.1"), Frontend: addr, Identity: tc.identity})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Stop()
			for range 2 {
				resp, err := http.Get(s.URL() + "/api/v1/cluster-info")
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(body), "fake") {
					t.Fatalf("cluster-info: %d %s", resp.StatusCode, body)
				}
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			for _, got := range f.auth {
				if len(got) != tc.want {
					t.Fatalf("frontend saw authorization %q, want %d value(s)", got, tc.want)
				}
				if tc.want == 1 {
					tok, ok := strings.CutPrefix(got[0], "Bearer ")
					if !ok {
						t.Fatalf("authorization %q is not a bearer token", got[0])
					}
					if sub := verify(t, key, tok, time.Now()).Subject(); sub != "dev-ui" {
						t.Errorf("sub %q, want dev-ui", sub)
					}
				}
			}
		})
	}
}

// Start refuses what would make ui-server exit the process, with the key to fix.
func TestStartChecks(t *testing.T) {
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": "http://elsewhere"})
	}))
	defer idp.Close()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	oidc := func(providerURL, callback string) *Config {
		c := DefaultConfig()
		c.Auth.Enabled = true
		c.Auth.Providers = []AuthProvider{{ProviderURL: providerURL, ClientID: "ui", CallbackURL: callback}}
		return c
	}
	for _, tc := range []struct {
		name string
		port int
		cfg  *Config
		want string
	}{
		{"port in use", busyPort, nil, "port " + strconv.Itoa(busyPort) + " on 127.0.0.1 is already in use"},
		{"no provider", 0, func() *Config { c := DefaultConfig(); c.Auth.Enabled = true; return c }(), "auth.providers is empty"},
		{"incomplete provider", 0, oidc(idp.URL, ""), "auth callback url is not set"},
		{"callback not http", 0, oidc(idp.URL, "ftp://x/auth/sso/callback"), "callbackUrl"},
		{"issuer mismatch", 0, oidc(idp.URL, "http://localhost:1/auth/sso/callback"), `the provider's issuer is "http://elsewhere"`},
		{"provider down", 0, oidc("http://127.0.0.1:1", "http://localhost:1/auth/sso/callback"), "OIDC discovery failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := tc.port
			if port == 0 {
				port = testutil.FreePort(t, "127.0.0.1")
			}
			_, err := Start(context.Background(), Options{IP: "127.0.0.1", Port: port, Frontend: "127.0.0.1:1", Config: tc.cfg, ConfigFile: "ui.yaml"})
			var ue *Error
			if !errors.As(err, &ue) || !strings.Contains(ue.Msg, tc.want) {
				t.Fatalf("error %v, want an *Error containing %q", err, tc.want)
			}
		})
	}
}

// The UI answers only requests that name it: a page whose own name was made
// to resolve to the UI's address (DNS rebinding) is same-origin with it and
// would act as the dev identity.
func TestStartRefusesForeignHost(t *testing.T) {
	key, err := devkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	f, addr := startFrontend(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	port := testutil.FreePort(t, "127.0.0.1")
	s, err := Start(ctx, Options{IP: "127.0.0.1", Port: port, Frontend: addr,
		Identity: NewIdentity(key, "dev-ui", []string{"temporal-system:admin"}, 0, nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	p := strconv.Itoa(port)
	for _, tc := range []struct {
		name     string
		host     string
		wantCode int
	}{
		{"own address", "127.0.0.1:" + p, http.StatusOK},
		{"localhost", "localhost:" + p, http.StatusOK},
		{"rebinding name", "evil.example:" + p, http.StatusMisdirectedRequest},
		{"rebinding name, no port", "evil.example", http.StatusMisdirectedRequest},
		{"another port", "127.0.0.1:1", http.StatusMisdirectedRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.mu.Lock()
			before := len(f.auth)
			f.mu.Unlock()
			req, err := http.NewRequest(http.MethodGet, s.URL()+"/api/v1/cluster-info", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tc.host
			req.Header.Set("Sec-Fetch-Site", "same-origin")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("Host %s: %d %s, want %d", tc.host, resp.StatusCode, body, tc.wantCode)
			}
			f.mu.Lock()
			calls := len(f.auth) - before
			f.mu.Unlock()
			if tc.wantCode != http.StatusOK && calls != 0 {
				t.Errorf("Host %s: the frontend was called %d times with the UI's identity", tc.host, calls)
			}
		})
	}
}
