package claimmapper

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/server/common/authorization"
)

// gate lets a request through to h only with the bearer token it expects now,
// as a Kubernetes API server guards its issuer's discovery and key set, and
// records the Authorization values it saw.
type gate struct {
	h    http.Handler
	mu   sync.Mutex
	want string
	seen []string
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	got := r.Header.Get("Authorization")
	g.seen = append(g.seen, got)
	ok := got == "Bearer "+g.want
	g.mu.Unlock()
	if !ok {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	g.h.ServeHTTP(w, r)
}

func (g *gate) expect(tok string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.want = tok
}

func (g *gate) last() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.seen[len(g.seen)-1]
}

// fetch_token_file: discovery and key-set fetches carry the file's token,
// read again for every fetch (the kubelet rotates it), over https.
func TestFetchTokenFile(t *testing.T) {
	key := newTestKey(t, "k1", "ES256")
	rotated := newTestKey(t, "k2", "ES256")
	keys := unstartedJWKSServer(key)
	g := &gate{h: keys.Config.Handler, want: "token-1"}
	srv := httptest.NewTLSServer(g)
	t.Cleanup(srv.Close)
	keys.Server = srv // the discovery document names this server's key set
	tokenFile := filepath.Join(t.TempDir(), "token")
	write := func(tok string) {
		if err := os.WriteFile(tokenFile, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("token-1")
	cfg := Config{Issuer: keys.Issuer(), FetchTokenFile: tokenFile, RefetchMinInterval: time.Millisecond}
	ctx := context.Background()

	if _, err := New(ctx, Config{Issuer: keys.Issuer()}, WithHTTPClient(srv.Client())); err == nil {
		t.Fatal("without fetch_token_file the guarded issuer was read")
	}
	m, err := New(ctx, cfg, WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatalf("New with fetch_token_file: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	if got := g.last(); got != "Bearer token-1" {
		t.Errorf("fetches sent %q, want the file's token", got)
	}
	claims := withIss(claimsAt(time.Now(), "system:serviceaccount:payments:worker", []any{"payments:worker"}), keys.Issuer())
	if _, err := m.GetClaims(&authorization.AuthInfo{AuthToken: bearer(key.sign(t, claims, nil))}); err != nil {
		t.Fatalf("a token of the guarded issuer: %v", err)
	}

	// The kubelet rotates the token and the issuer its key: the refetch that
	// an unknown kid starts reads the new token.
	write("token-2")
	g.expect("token-2")
	keys.setKeys(key, rotated)
	time.Sleep(5 * time.Millisecond)
	if _, err := m.GetClaims(&authorization.AuthInfo{AuthToken: bearer(rotated.sign(t, claims, nil))}); err != nil {
		t.Fatalf("a token signed with the rotated key: %v", err)
	}
	if got := g.last(); got != "Bearer token-2" {
		t.Errorf("the refetch sent %q, want the rotated token", got)
	}
}

// The token never goes over plain http to another host, nor to the target of
// a redirect to another host; errors name the file, never the token.
func TestFetchTokenNotLeaked(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, url, wantErr string
	}{
		{"https", "https://kubernetes.default.svc/openid/v1/jwks", ""},
		{"plain http to loopback", "http://127.0.0.1:6443/openid/v1/jwks", ""},
		{"plain http to localhost", "http://localhost:6443/openid/v1/jwks", ""},
		{"plain http to another host", "http://kubernetes.default.svc/openid/v1/jwks", "not sending its token over plain http to kubernetes.default.svc: use https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := fetchToken(tokenFile, u)
			if tc.wantErr == "" {
				if err != nil || tok != "s3cret-token" {
					t.Fatalf("got %q, %v", tok, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("got %v, want an error containing %q and not the token", err, tc.wantErr)
			}
		})
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := fetchToken(empty, &url.URL{Scheme: "https", Host: "a.example"}); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("an empty token file: %v", err)
	}

	// localhost redirects the key-set fetch to 127.0.0.1: another host, which
	// must not get the token.
	var mu sync.Mutex
	var seen []string
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		http.Error(w, "no", http.StatusNotFound)
	}))
	t.Cleanup(target.Close)
	redirect := httptest.NewServer(http.RedirectHandler(target.URL+"/jwks", http.StatusFound))
	t.Cleanup(redirect.Close)
	ru, _ := url.Parse(redirect.URL)
	_, _, err := httpGet(context.Background(), &http.Client{}, "http://localhost:"+ru.Port()+"/jwks", tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != "" {
		t.Errorf("the redirect target saw Authorization %q, want none", seen)
	}
}
