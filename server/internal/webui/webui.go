// Package webui serves Temporal's Web UI next to "temporal-opa start-dev", as
// "temporal server start-dev" does: it embeds Temporal's UI server
// (github.com/temporalio/ui-server/v2, the UI's assets included) and points it at
// the dev server's frontend, whose claim mapper and policy decide every call the
// UI makes.
//
// Who the UI acts as depends on its configuration:
//
//   - Without OIDC login (no --ui-config, or one whose auth.enabled is false),
//     the UI acts as a dev [Identity]: a token minted with the dev signing key
//     and renewed before it expires is added to every call the UI server makes
//     to the frontend, through ui-server's API middleware. Whoever reaches the
//     UI port acts with that identity's permissions, so it listens on loopback
//     unless told otherwise.
//   - With OIDC login (auth.enabled and a provider in the --ui-config file, the
//     ui-server's own YAML format), users log in with the identity provider and
//     the UI sends their own access token; nothing is injected.
//
// [Start] checks everything that would make ui-server fail (a port in use, a
// provider that cannot be discovered, an incomplete provider), then starts it
// and returns once it answers. The UI answers only requests whose Host is one
// of its own addresses (package hostcheck: no DNS rebinding).
package webui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/temporalio/ui-server/v2/server/api"
	"github.com/temporalio/ui-server/v2/server/auth"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	"github.com/temporalio/ui-server/v2/server/cors"
	"github.com/temporalio/ui-server/v2/server/csrf"
	"github.com/temporalio/ui-server/v2/server/headers"
	"github.com/temporalio/ui-server/v2/server/route"
	"github.com/temporalio/ui-server/v2/server/version"
	uiassets "github.com/temporalio/ui-server/v2/ui"
	"google.golang.org/grpc/metadata"
	"gopkg.in/yaml.v3"

	"github.com/temporal-opa/temporal-opa/server/internal/cli"
	"github.com/temporal-opa/temporal-opa/server/internal/devkey"
	"github.com/temporal-opa/temporal-opa/server/internal/hostcheck"
	"github.com/temporal-opa/temporal-opa/server/internal/ports"
)

// Version is the version of the embedded UI.
const Version = version.UIVersion

// Config is ui-server's configuration (its YAML keys: auth, codec, cors, ...).
type Config = uiconfig.Config

// TLSConfig is ui-server's client TLS configuration towards the frontend
// (its YAML key tls: caFile, certFile, keyFile, caData, ...).
type TLSConfig = uiconfig.TLS

// AuthProvider is one OIDC provider of Config.Auth.
type AuthProvider = uiconfig.AuthProvider

// Error is a configuration or start-up problem, with a message for the user.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

// Options configure a UI server.
type Options struct {
	// IP and Port to listen on.
	IP   string
	Port int
	// Frontend is the host:port of the Temporal frontend (gRPC) the UI calls.
	Frontend string
	// Config is the ui-server configuration read by LoadConfig (--ui-config);
	// nil means DefaultConfig. Its host, port and temporalGrpcAddress are set
	// from IP, Port and Frontend.
	Config *Config
	// ConfigFile names the file Config came from, for messages.
	ConfigFile string
	// Identity is injected into every call when the configuration has no OIDC
	// login. Nil: nothing is injected (calls without login are anonymous and
	// denied by the policy).
	Identity *Identity
	// TLS, when set, replaces the configuration's tls section: how the UI
	// server connects to the frontend (start-dev --tls: a client certificate
	// of the dev CA).
	TLS *TLSConfig
	// HTTPClient fetches the provider's discovery document at start; nil: a
	// client with a 10 s timeout.
	HTTPClient *http.Client
}

// Server is a running UI server.
type Server struct {
	srv  *http.Server
	url  string
	auth bool
	done chan struct{}
	once sync.Once
}

// DefaultConfig is the configuration of the dev UI: the UI enabled, plain-HTTP
// cookies (start-dev serves no TLS), no news fetched from the internet, the
// ui-server's request log off, namespace "default" first.
func DefaultConfig() *Config {
	return &Config{
		EnableUI:         true,
		HideLogs:         true,
		DisableNewsFetch: true,
		DefaultNamespace: "default",
		CORS:             uiconfig.CORS{CookieInsecure: true},
	}
}

// LoadConfig reads a ui-server configuration file (the YAML format of
// temporalio/ui-server: auth.enabled, auth.providers, codec, cors, ...) on top of
// DefaultConfig. It is read strictly: an unknown key is an error. The keys
// host, port and temporalGrpcAddress belong to start-dev (--ui-ip, --ui-port,
// and the frontend's address) and are refused.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Msg: fmt.Sprintf("--ui-config %s: %v", path, unwrapPath(err))}
	}
	var own struct {
		Host    *string `yaml:"host"`
		Port    *int    `yaml:"port"`
		Address *string `yaml:"temporalGrpcAddress"`
	}
	if err := yaml.Unmarshal(data, &own); err != nil {
		return nil, &Error{Msg: fmt.Sprintf("--ui-config %s: %s", path, cli.OneLine(err.Error()))}
	}
	switch {
	case own.Host != nil:
		return nil, &Error{Msg: fmt.Sprintf("--ui-config %s: host is set by start-dev: remove it and use --ui-ip", path)}
	case own.Port != nil:
		return nil, &Error{Msg: fmt.Sprintf("--ui-config %s: port is set by start-dev: remove it and use --ui-port", path)}
	case own.Address != nil:
		return nil, &Error{Msg: fmt.Sprintf("--ui-config %s: temporalGrpcAddress is set by start-dev (its own frontend): remove it", path)}
	}
	cfg := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, &Error{Msg: fmt.Sprintf("--ui-config %s: %s (the keys are those of Temporal's UI server config, e.g. auth.providers[0].providerUrl)", path, cli.OneLine(err.Error()))}
	}
	return cfg, nil
}

// AuthEnabled reports whether cfg logs users in with OIDC.
func AuthEnabled(cfg *Config) bool { return cfg != nil && cfg.Auth.Enabled }

// Start checks the options, starts the UI server and returns once it answers
// on its port. ctx bounds the checks and the wait.
func Start(ctx context.Context, o Options) (*Server, error) {
	cfg := o.Config
	if cfg == nil {
		cfg = DefaultConfig()
	}
	c := *cfg // the caller's copy is left alone
	c.Host = bracketIPv6(o.IP)
	c.Port = o.Port
	c.TemporalGRPCAddress = o.Frontend
	if o.TLS != nil {
		c.TLS = *o.TLS
	}
	if err := CheckConfig(ctx, &c, o.ConfigFile, o.HTTPClient); err != nil {
		return nil, err
	}
	if err := CheckPort(o.IP, o.Port); err != nil {
		return nil, err
	}

	mws := []api.Middleware{}
	if len(c.ForwardHeaders) > 0 {
		mws = append(mws, headers.WithForwardHeaders(c.ForwardHeaders))
	}
	if !c.Auth.Enabled && o.Identity != nil {
		mws = append(mws, inject(o.Identity))
	}
	e, err := newEcho(&c, mws)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(o.IP, strconv.Itoa(o.Port)))
	if err != nil {
		return nil, &Error{Msg: fmt.Sprintf("cannot listen on %s for the Web UI: %v (--ui-ip, --ui-port)", net.JoinHostPort(o.IP, strconv.Itoa(o.Port)), err)}
	}
	// Only requests that name this server reach the UI: a page of another
	// site whose name was made to resolve to this address (DNS rebinding)
	// would otherwise be same-origin with the UI and act as its identity.
	// With OIDC login, the host of the provider's callback URL is the UI's
	// name too (users are sent back there).
	hosts, err := hostcheck.Hosts(ln.Addr().String())
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	if c.Auth.Enabled && len(c.Auth.Providers) > 0 {
		if u, err := url.Parse(c.Auth.Providers[0].CallbackURL); err == nil && u.Host != "" {
			hosts = append(hosts, strings.ToLower(u.Host))
		}
	}
	h := hostcheck.Handler(e, hosts)
	s := &Server{
		srv:  &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second},
		url:  "http://" + net.JoinHostPort(dialHost(o.IP), strconv.Itoa(o.Port)),
		auth: c.Auth.Enabled,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln) // returns when stopped
	}()
	if err := waitHealthy(ctx, s.url+"/healthz", s.done); err != nil {
		s.Stop()
		return nil, fmt.Errorf("Web UI did not start on %s: %w", s.url, err)
	}
	return s, nil
}

// newEcho builds ui-server's HTTP handler as its server.NewServer does
// (ui-server v2.55.0: the same middleware, routes and embedded assets, and the
// same API middleware it adds itself), so that start-dev owns the listener
// and the handler in front of it, which ui-server's own Start does not allow.
func newEcho(c *Config, mws []api.Middleware) (*echo.Echo, error) {
	mws = append(mws, headers.WithForwardHeaders([]string{auth.AuthorizationExtrasHeader, "Caller-Type"}))
	cfgProvider, err := uiconfig.NewConfigProviderWithRefresh(c)
	if err != nil {
		return nil, fmt.Errorf("Web UI config: %w", err)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	if !c.HideLogs {
		e.Use(middleware.Logger())
	}
	e.Use(middleware.Recover())
	e.Use(middleware.Gzip())
	e.Use(cors.CORSMiddleware(cors.CORSConfig{
		AllowHeaders: []string{
			echo.HeaderOrigin, echo.HeaderContentType, echo.HeaderAccept,
			echo.HeaderXCSRFToken, echo.HeaderAuthorization, auth.AuthorizationExtrasHeader,
			"Caller-Type",
		},
		AllowCredentials: true,
		ConfigProvider:   cfgProvider,
	}))
	e.Use(middleware.Secure())
	csrfCookieSecure := !c.CORS.CookieInsecure
	e.Use(csrf.EnsureTokenCookie(csrfCookieSecure))
	e.Use(middleware.CSRFWithConfig(csrf.MiddlewareConfig(cfgProvider, csrfCookieSecure)))
	e.Pre(route.PublicPath(c.PublicPath))
	route.SetHealthRoute(e)
	if err := route.SetAPIRoutes(e, cfgProvider, mws); err != nil {
		return nil, fmt.Errorf("Web UI: %w", err)
	}
	route.SetAuthRoutes(e, cfgProvider)
	if c.EnableUI {
		var assets fs.FS
		if c.UIAssetPath != "" {
			assets = os.DirFS(c.UIAssetPath)
		} else {
			if assets, err = uiassets.Assets(); err != nil {
				return nil, fmt.Errorf("Web UI assets: %w", err)
			}
			dir := "local"
			if c.CloudUI {
				dir = "cloud"
			}
			if assets, err = fs.Sub(assets, dir); err != nil {
				return nil, fmt.Errorf("Web UI assets: %w", err)
			}
		}
		if err := route.SetUIRoutes(e, c.PublicPath, assets, cfgProvider); err != nil {
			return nil, fmt.Errorf("Web UI: %w", err)
		}
		route.SetRenderRoute(e, "/")
	}
	return e, nil
}

// URL is the UI's address, e.g. http://127.0.0.1:8233.
func (s *Server) URL() string { return s.url }

// AuthEnabled reports whether users log in with OIDC.
func (s *Server) AuthEnabled() bool { return s.auth }

// Stop stops the UI server and waits until it has stopped listening.
func (s *Server) Stop() {
	s.once.Do(func() {
		_ = s.srv.Close()
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
		}
	})
}

// inject adds "authorization: Bearer <token>" of id to every call the UI server
// makes to the frontend. A request that brings its own Authorization header is
// forwarded with it first, and Temporal reads the first value.
func inject(id *Identity) api.Middleware {
	return func(echo.Context) runtime.ServeMuxOption {
		return runtime.WithMetadata(func(context.Context, *http.Request) metadata.MD {
			tok, err := id.Token()
			if err != nil {
				return nil // no token: the call is anonymous and denied (fail closed)
			}
			return metadata.Pairs("authorization", "Bearer "+tok)
		})
	}
}

// CheckConfig checks what ui-server checks at start, where a failure exits the
// process or leaves the UI unusable: with auth enabled, a provider present and
// complete, a callback URL in http(s), the provider's discovery document
// reachable with the expected issuer. file names the config for messages;
// client fetches the discovery document (nil: a client with a 10 s timeout).
// Start calls it; call it earlier to fail before anything else starts.
func CheckConfig(ctx context.Context, c *Config, file string, client *http.Client) error {
	src := "--ui-config " + file
	if file == "" {
		src = "UI config"
	}
	if c.TemporalGRPCAddress == "" {
		c2 := *c
		c2.TemporalGRPCAddress = "set-by-start"
		c = &c2
	}
	if err := c.Validate(); err != nil {
		return &Error{Msg: fmt.Sprintf("%s: %v", src, err)}
	}
	if !c.Auth.Enabled {
		return nil
	}
	return checkProvider(ctx, client, c, src)
}

// checkProvider checks the OIDC provider of an auth-enabled config.
func checkProvider(ctx context.Context, client *http.Client, c *Config, src string) error {
	if len(c.Auth.Providers) == 0 {
		return &Error{Msg: src + ": auth.enabled is true but auth.providers is empty: add a provider (providerUrl, clientId, clientSecret, callbackUrl, scopes) or set auth.enabled: false"}
	}
	p := c.Auth.Providers[0]
	if u, err := url.Parse(p.CallbackURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &Error{Msg: fmt.Sprintf("%s: auth.providers[0].callbackUrl %q: want an http(s) URL ending in /auth/sso/callback", src, p.CallbackURL)}
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	wellKnown := strings.TrimSuffix(p.ProviderURL, "/") + "/.well-known/openid-configuration"
	fail := func(format string, args ...any) error {
		return &Error{Msg: fmt.Sprintf("%s: auth.providers[0].providerUrl %s: %s", src, p.ProviderURL, fmt.Sprintf(format, args...))}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, wellKnown, nil)
	if err != nil {
		return fail("not a URL: %v", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fail("OIDC discovery failed (the identity provider must be up before the UI starts): %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fail("OIDC discovery: reading %s: %v", wellKnown, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fail("OIDC discovery: GET %s answered %s", wellKnown, resp.Status)
	}
	var doc struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return fail("OIDC discovery: %s is not JSON: %v", wellKnown, err)
	}
	want := p.ProviderURL
	if p.IssuerUrl != "" {
		want = p.IssuerUrl
	}
	if doc.Issuer != want {
		return fail("the provider's issuer is %q: set providerUrl to exactly that, or issuerUrl when they differ", doc.Issuer)
	}
	return nil
}

// CheckPort reports a clear error, naming the flag to change, when ip:port
// cannot be listened on.
func CheckPort(ip string, port int) error {
	err := ports.Check(ip, port)
	switch {
	case err == nil:
		return nil
	case ports.InUse(err):
		return &Error{Msg: fmt.Sprintf("port %d on %s is already in use (another Temporal UI?): choose another with --ui-port, or --headless to run without the UI", port, ip)}
	case ports.NotLocal(err):
		return &Error{Msg: fmt.Sprintf("--ui-ip %s is not an address of this machine: use 127.0.0.1, 0.0.0.0 or one of its addresses", ip)}
	}
	return &Error{Msg: fmt.Sprintf("cannot listen on %s for the Web UI: %v (--ui-ip, --ui-port)", net.JoinHostPort(ip, strconv.Itoa(port)), err)}
}

// waitHealthy polls url until it answers 200, done is closed, or ctx ends.
func waitHealthy(ctx context.Context, url string, done <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("GET %s: %s", url, resp.Status)
		} else {
			last = err
		}
		select {
		case <-done:
			return errors.New("the UI server stopped")
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Identity is the dev UI's identity: a token minted with the dev signing key,
// renewed when a third of its lifetime is left. It is safe for concurrent use.
type Identity struct {
	key   *devkey.Key
	sub   string
	perms []string
	ttl   time.Duration
	now   func() time.Time

	mu  sync.Mutex
	tok string
	exp time.Time
}

// DefaultIdentityTTL is the lifetime of each token of an Identity.
const DefaultIdentityTTL = time.Hour

// NewIdentity returns the identity sub with perms ("<namespace>:<role>"),
// whose tokens live ttl (0: DefaultIdentityTTL). now is the clock (nil: time.Now).
func NewIdentity(key *devkey.Key, sub string, perms []string, ttl time.Duration, now func() time.Time) *Identity {
	if ttl <= 0 {
		ttl = DefaultIdentityTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Identity{key: key, sub: sub, perms: append([]string(nil), perms...), ttl: ttl, now: now}
}

// Subject is the identity's "sub".
func (i *Identity) Subject() string { return i.sub }

// Permissions are the identity's permissions.
func (i *Identity) Permissions() []string { return append([]string(nil), i.perms...) }

// Token returns a valid token, minting a new one when the current one has less
// than a third of its lifetime left.
func (i *Identity) Token() (string, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	now := i.now()
	if i.tok != "" && i.exp.Sub(now) > i.ttl/3 {
		return i.tok, nil
	}
	tok, err := i.key.Mint(devkey.Claims{Subject: i.sub, Permissions: i.perms, TTL: i.ttl, Now: now})
	if err != nil {
		return "", fmt.Errorf("mint the Web UI's dev token: %w", err)
	}
	i.tok, i.exp = tok, now.Add(i.ttl)
	return tok, nil
}

func bracketIPv6(ip string) string {
	if strings.Contains(ip, ":") && !strings.HasPrefix(ip, "[") {
		return "[" + ip + "]"
	}
	return ip
}

// dialHost is the host a browser uses for a listen IP (0.0.0.0 -> 127.0.0.1).
func dialHost(ip string) string {
	if parsed := net.ParseIP(ip); parsed != nil && parsed.IsUnspecified() {
		if parsed.To4() != nil {
			return "127.0.0.1"
		}
		return "::1"
	}
	return ip
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
