package claimmapper

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"go.temporal.io/server/common/authorization"
)

// testKey is a real private key with its public JWK.
type testKey struct {
	kid    string
	alg    string
	signer crypto.Signer
	pub    jwk.Key
}

func newTestKey(t testing.TB, kid, alg string) *testKey {
	t.Helper()
	var (
		s   crypto.Signer
		err error
	)
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		s, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		s, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		s, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		s, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "EdDSA":
		_, s, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("no test key for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	pub, err := jwk.FromRaw(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	must(t, pub.Set(jwk.KeyIDKey, kid))
	must(t, pub.Set(jwk.KeyUsageKey, "sig"))
	must(t, pub.Set(jwk.AlgorithmKey, jwa.SignatureAlgorithm(alg)))
	return &testKey{kid: kid, alg: alg, signer: s, pub: pub}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func seg(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// sign builds a compact JWS with header {alg, kid} plus extra (nil values delete).
func (k *testKey) sign(t testing.TB, claims map[string]any, extra map[string]any) string {
	t.Helper()
	hdr := map[string]any{"alg": k.alg, "kid": k.kid, "typ": "JWT"}
	for name, v := range extra {
		if v == nil {
			delete(hdr, name)
		} else {
			hdr[name] = v
		}
	}
	input := seg(hdr) + "." + seg(claims)
	return input + "." + k.signInput(t, input)
}

func (k *testKey) signInput(t testing.TB, input string) string {
	t.Helper()
	s, err := jws.NewSigner(jwa.SignatureAlgorithm(k.alg))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign([]byte(input), k.signer)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(sig)
}

// jwksServer serves a mutable JWKS (and optionally an OIDC discovery document).
type jwksServer struct {
	*httptest.Server
	mu     sync.Mutex
	keys   []jwk.Key
	status int // when not 0 and not 200, every JWKS request fails with it
	hits   atomic.Int64
	issuer string // discovery "issuer"; empty: the server's URL + /realms/test
}

func newJWKSServer(t testing.TB, keys ...*testKey) *jwksServer {
	t.Helper()
	s := startJWKSServer(keys...)
	t.Cleanup(s.Close)
	return s
}

// startJWKSServer starts a server the caller must close.
func startJWKSServer(keys ...*testKey) *jwksServer {
	s := unstartedJWKSServer(keys...)
	s.Start()
	return s
}

// newTLSJWKSServer is newJWKSServer over https, with a certificate of
// httptest's own CA.
func newTLSJWKSServer(t testing.TB, keys ...*testKey) *jwksServer {
	t.Helper()
	s := unstartedJWKSServer(keys...)
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are what some tests check
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func unstartedJWKSServer(keys ...*testKey) *jwksServer {
	s := &jwksServer{}
	for _, k := range keys {
		s.keys = append(s.keys, k.pub)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/jwks", s.serveJWKS)
	mux.HandleFunc("/realms/test/protocol/openid-connect/certs", s.serveJWKS)
	mux.HandleFunc("/realms/test/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		iss := s.Issuer()
		s.mu.Lock()
		if s.issuer != "" {
			iss = s.issuer
		}
		s.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":   iss,
			"jwks_uri": s.URL + "/realms/test/protocol/openid-connect/certs",
		})
	})
	s.Server = httptest.NewUnstartedServer(mux)
	return s
}

func (s *jwksServer) Issuer() string  { return s.URL + "/realms/test" }
func (s *jwksServer) JWKSURL() string { return s.URL + "/jwks" }

func (s *jwksServer) serveJWKS(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status != 0 && s.status != http.StatusOK {
		http.Error(w, "unavailable", s.status)
		return
	}
	set := jwk.NewSet()
	for _, k := range s.keys {
		_ = set.AddKey(k)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(set)
}

func (s *jwksServer) setKeys(keys ...*testKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = nil
	for _, k := range keys {
		s.keys = append(s.keys, k.pub)
	}
}

func (s *jwksServer) setStatus(code int) {
	s.mu.Lock()
	s.status = code
	s.mu.Unlock()
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestMapper(t testing.TB, cfg Config, opts ...Option) *Mapper {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := New(ctx, cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// claimsAt returns standard claims valid around now.
func claimsAt(now time.Time, sub string, perms any) map[string]any {
	c := map[string]any{
		"sub": sub,
		"iat": now.Add(-time.Minute).Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
	if perms != nil {
		c["permissions"] = perms
	}
	return c
}

func bearer(tok string) string { return "Bearer " + tok }

func authInfo(tok string) *authorization.AuthInfo {
	return &authorization.AuthInfo{AuthToken: bearer(tok)}
}

func containsToken(msg, tok string) bool {
	// The whole token, or any of its segments longer than a few characters.
	if strings.Contains(msg, tok) {
		return true
	}
	for _, s := range strings.Split(tok, ".") {
		if len(s) > 12 && strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
