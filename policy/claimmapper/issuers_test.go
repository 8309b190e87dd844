package claimmapper

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/config"
)

func newTestIssuers(t testing.TB, cfg Config, opts ...Option) *Router {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := NewIssuers(ctx, cfg, opts...)
	if err != nil {
		t.Fatalf("NewIssuers: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func withIss(c map[string]any, iss string) map[string]any {
	c["iss"] = iss
	return c
}

// TestIssuersBindKeysToIssuer: two issuers, each with its own key source and
// claim settings; a token is verified only with the keys of the issuer it names.
func TestIssuersBindKeysToIssuer(t *testing.T) {
	keyA := newTestKey(t, "a-1", "RS256")
	keyB := newTestKey(t, "b-1", "ES256")
	srvA := newJWKSServer(t, keyA) // OIDC discovery
	srvB := newJWKSServer(t, keyB)
	issA, issB := srvA.Issuer(), "spiffe://b.example"
	r := newTestIssuers(t, Config{
		Audiences: []string{"temporal"}, // a default for every entry
		Issuers: []Config{
			{Issuer: issA},
			{Issuer: issB, SkipDiscovery: true, JWKSURLs: []string{srvB.JWKSURL()},
				Audiences: []string{"spiffe://b.example/temporal"}, PermissionsClaim: "roles", SubjectClaim: "client_id"},
		},
	})
	now := time.Now()
	a := func(perms any) map[string]any {
		c := withIss(claimsAt(now, "alice", perms), issA)
		c["aud"] = "temporal"
		return c
	}
	b := func(roles any) map[string]any {
		c := withIss(claimsAt(now, "ignored", nil), issB)
		c["aud"] = "spiffe://b.example/temporal"
		c["client_id"] = "worker-b"
		c["roles"] = roles
		return c
	}
	unknown := withIss(claimsAt(now, "mallory", []any{"temporal-system:admin"}), "https://evil.example")

	tests := []struct {
		name     string
		auth     string
		wantCode ErrorCode // "" = accepted
		wantSub  string
		wantNS   map[string]authorization.Role
		wantIn   string // in the error message
	}{
		{name: "issuer A with A's key", auth: bearer(keyA.sign(t, a([]any{"payments:write"}), nil)),
			wantSub: "alice", wantNS: map[string]authorization.Role{"payments": authorization.RoleWriter}},
		{name: "issuer B with B's key and B's claim settings", auth: bearer(keyB.sign(t, b([]any{"orders:worker"}), nil)),
			wantSub: "worker-b", wantNS: map[string]authorization.Role{"orders": authorization.RoleWorker}},
		{name: "A's key claiming issuer B", auth: bearer(keyA.sign(t, b([]any{"orders:admin"}), nil)), wantCode: CodeUnknownKID},
		{name: "A's key with B's kid claiming issuer B", auth: bearer(keyA.sign(t, b([]any{"orders:admin"}), map[string]any{"kid": "b-1", "alg": "RS256"})), wantCode: CodeKeyMismatch},
		{name: "B's key claiming issuer A", auth: bearer(keyB.sign(t, a([]any{"payments:admin"}), nil)), wantCode: CodeUnknownKID},
		{name: "issuer B without B's audience", auth: bearer(keyB.sign(t, func() map[string]any { c := b(nil); c["aud"] = "temporal"; return c }(), nil)), wantCode: CodeInvalidAudience},
		{name: "issuer A inherits the default audience", auth: bearer(keyA.sign(t, func() map[string]any { c := a(nil); c["aud"] = "other"; return c }(), nil)), wantCode: CodeInvalidAudience},
		{name: "unlisted issuer named in the reason", auth: bearer(keyA.sign(t, unknown, nil)), wantCode: CodeUnknownIssuer, wantIn: `"https://evil.example"`},
		{name: "no iss", auth: bearer(keyA.sign(t, claimsAt(now, "alice", []any{"payments:write"}), nil)), wantCode: CodeUnknownIssuer, wantIn: "no readable iss"},
		{name: "iss not a string", auth: bearer(keyA.sign(t, withIssAny(claimsAt(now, "alice", nil), 7), nil)), wantCode: CodeUnknownIssuer},
		{name: "not a JWS", auth: "Bearer not-a-token", wantCode: CodeUnknownIssuer},
		{name: "not bearer", auth: "Basic dXNlcjpwYXNz", wantCode: CodeInvalidAuthHeader},
		{name: "no token: claims without roles", auth: ""},
		{name: "long unlisted issuer named in full", auth: bearer(keyA.sign(t, withIss(claimsAt(now, "m", nil), "https://login.example.com/realms/a-rather-long-realm-name/protocol"), nil)),
			wantCode: CodeUnknownIssuer, wantIn: `"https://login.example.com/realms/a-rather-long-realm-name/protocol" is not one of jwt.issuers`},
		{name: "too large for every issuer", auth: bearer(strings.Repeat("a", DefaultMaxTokenSize)), wantCode: CodeTokenTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.GetClaims(&authorization.AuthInfo{AuthToken: tc.auth})
			if tc.wantCode != "" {
				if !isCode(err, tc.wantCode) {
					t.Fatalf("got %v, want code %s", err, tc.wantCode)
				}
				if tc.wantIn != "" && !strings.Contains(err.Error(), tc.wantIn) {
					t.Errorf("error %q does not contain %s", err, tc.wantIn)
				}
				if _, raw, _ := strings.Cut(tc.auth, " "); raw != "" && containsToken(err.Error(), raw) {
					t.Errorf("error echoes the token: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if got.Subject != tc.wantSub || !maps.Equal(roles(got.Namespaces), roles(tc.wantNS)) || got.System != 0 {
				t.Errorf("got subject=%q system=%v namespaces=%v, want %q %v", got.Subject, got.System, got.Namespaces, tc.wantSub, tc.wantNS)
			}
			// The configured issuer that verified it (input.claims.issuer) is the token's iss.
			tok, _ := got.Extensions.(*Token)
			if tc.auth != "" && (tok == nil || tok.Issuer() == "" || tok.Issuer() != tok.TokenClaims()["iss"]) {
				t.Errorf("verifying issuer %v, want the token's iss", got.Extensions)
			}
		})
	}
}

func withIssAny(c map[string]any, iss any) map[string]any {
	c["iss"] = iss
	return c
}

// TestIssuersVersusTemporalKeyMerge: Temporal's default mapper merges the keys of
// every source into one set and checks no iss, so a token signed by issuer A's
// key but claiming issuer B is accepted; ours refuses it.
func TestIssuersVersusTemporalKeyMerge(t *testing.T) {
	keyA := newTestKey(t, "a-1", "RS256")
	keyB := newTestKey(t, "b-1", "RS256")
	srvA, srvB := newJWKSServer(t, keyA), newJWKSServer(t, keyB)
	issA, issB := "https://a.example", "https://b.example"
	theirs := temporalMapper(t, &config.Authorization{ClaimMapper: "default", JWTKeyProvider: config.JWTKeyProvider{
		KeySourceURIs: []string{srvA.JWKSURL(), srvB.JWKSURL()}, RefreshInterval: time.Hour}})
	ours := newTestIssuers(t, Config{Issuers: []Config{
		{Issuer: issA, SkipDiscovery: true, JWKSURLs: []string{srvA.JWKSURL()}},
		{Issuer: issB, SkipDiscovery: true, JWKSURLs: []string{srvB.JWKSURL()}},
	}})
	now := time.Now()
	tests := []struct {
		name     string
		tok      string
		wantCode ErrorCode // ours; "" = accepted. Temporal's accepts every case.
	}{
		{name: "A's key, iss A", tok: keyA.sign(t, withIss(claimsAt(now, "alice", []any{"payments:admin"}), issA), nil)},
		{name: "B's key, iss B", tok: keyB.sign(t, withIss(claimsAt(now, "bob", []any{"payments:admin"}), issB), nil)},
		{name: "A's key, iss B", tok: keyA.sign(t, withIss(claimsAt(now, "mallory", []any{"payments:admin"}), issB), nil), wantCode: CodeUnknownKID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ai := authInfo(tc.tok)
			c, err := theirs.GetClaims(ai)
			if err != nil || c.Namespaces["payments"] != authorization.RoleAdmin {
				t.Fatalf("Temporal's default mapper: claims=%+v err=%v, want payments admin", c, err)
			}
			_, err = ours.GetClaims(ai)
			if tc.wantCode == "" {
				if err != nil {
					t.Fatalf("ours refused: %v", err)
				}
			} else if !isCode(err, tc.wantCode) {
				t.Fatalf("ours: got %v, want %s", err, tc.wantCode)
			}
		})
	}
}

// TestTokensWithoutKID: a token without kid is verified when exactly one key of
// the set fits its algorithm (JWT-SVIDs may omit kid), and refused otherwise.
func TestTokensWithoutKID(t *testing.T) {
	rs1 := newTestKey(t, "rs-1", "RS256")
	rs2 := newTestKey(t, "rs-2", "RS256")
	es := newTestKey(t, "es-1", "ES256")
	noKID := newTestKey(t, "", "ES256")
	must(t, noKID.pub.Remove(jwk.KeyIDKey))
	now := time.Now()
	claims := claimsAt(now, "spiffe://example.org/worker", []any{"default:worker"})
	unkid := map[string]any{"kid": nil}

	tests := []struct {
		name     string
		keys     []*testKey
		tok      string
		wantCode ErrorCode // "" = accepted
		wantIn   string
	}{
		{name: "one RSA key", keys: []*testKey{rs1}, tok: rs1.sign(t, claims, unkid)},
		{name: "one key of the right type among others", keys: []*testKey{rs1, rs2, es}, tok: es.sign(t, claims, unkid)},
		{name: "a JWK without kid", keys: []*testKey{noKID, rs1}, tok: noKID.sign(t, claims, unkid)},
		{name: "two keys of the right type", keys: []*testKey{rs1, rs2}, tok: rs1.sign(t, claims, unkid), wantCode: CodeMissingKID, wantIn: "2 keys for alg RS256"},
		{name: "no key of the right type", keys: []*testKey{rs1}, tok: es.sign(t, claims, unkid), wantCode: CodeMissingKID, wantIn: "0 keys for alg ES256"},
		{name: "the single key did not sign it", keys: []*testKey{rs1}, tok: rs2.sign(t, claims, unkid), wantCode: CodeBadSignature},
		{name: "a kid never matches a key without kid", keys: []*testKey{noKID}, tok: noKID.sign(t, claims, map[string]any{"kid": "es-1"}), wantCode: CodeUnknownKID},
		{name: "an empty kid is no kid", keys: []*testKey{rs1}, tok: rs1.sign(t, claims, map[string]any{"kid": ""})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newJWKSServer(t, tc.keys...)
			m := newTestMapper(t, Config{JWKSURLs: []string{srv.JWKSURL()}})
			got, err := m.GetClaims(authInfo(tc.tok))
			if tc.wantCode != "" {
				if !isCode(err, tc.wantCode) {
					t.Fatalf("got %v, want code %s", err, tc.wantCode)
				}
				if tc.wantIn != "" && !strings.Contains(err.Error(), tc.wantIn) {
					t.Errorf("error %q does not contain %q", err, tc.wantIn)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if got.Namespaces["default"] != authorization.RoleWorker {
				t.Errorf("got namespaces %v, want default worker", got.Namespaces)
			}
		})
	}
}

// TestIssuersConfigErrors: every mistake in issuers is reported with its key.
func TestIssuersConfigErrors(t *testing.T) {
	entry := func(iss string) Config {
		return Config{Issuer: iss, SkipDiscovery: true, JWKSFiles: []string{"/keys.json"}}
	}
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{name: "issuer beside issuers", cfg: Config{Issuer: "https://a.example", Issuers: []Config{entry("https://b.example")}},
			want: []string{"config issuers: set issuer, skip_discovery, jwks_urls and jwks_files in each entry"}},
		{name: "key source beside issuers", cfg: Config{JWKSURLs: []string{"https://a.example/jwks"}, Issuers: []Config{entry("https://b.example")}},
			want: []string{"config issuers: set issuer"}},
		{name: "entry without issuer", cfg: Config{Issuers: []Config{entry("https://a.example"), {JWKSFiles: []string{"/k.json"}}}},
			want: []string{"config issuers[1].issuer: want the issuer"}},
		{name: "issuer listed twice", cfg: Config{Issuers: []Config{entry("https://a.example"), entry("https://a.example")}},
			want: []string{`config issuers[1].issuer: "https://a.example" is listed twice (also issuers[0])`}},
		{name: "nested issuers", cfg: Config{Issuers: []Config{{Issuer: "x", Issuers: []Config{entry("y")}}}},
			want: []string{"config issuers[0].issuers: an entry cannot list issuers"}},
		{name: "entry setting invalid", cfg: Config{Issuers: []Config{entry("https://a.example"), func() Config { c := entry("b"); c.Audiences = []string{""}; return c }()}},
			want: []string{"config issuers[1].audiences[0]: want an audience"}},
		{name: "entry without key source", cfg: Config{Issuers: []Config{{Issuer: "b", SkipDiscovery: true}}},
			want: []string{"config issuers[0].issuer/jwks_urls/jwks_files: no key source"}},
		{name: "invalid default applies to entries", cfg: Config{Leeway: -time.Second, Issuers: []Config{entry("b")}},
			want: []string{"config leeway:", "config issuers[0].leeway:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if err == nil {
				t.Fatal("valid, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if _, nerr := NewIssuers(context.Background(), tc.cfg); nerr == nil {
				t.Error("NewIssuers accepted it")
			}
		})
	}
	if err := (&Config{Issuers: []Config{entry("https://a.example"), entry("spiffe://b")}}).Validate(); err != nil {
		t.Errorf("valid issuers refused: %v", err)
	}
	if _, err := New(context.Background(), Config{Issuers: []Config{entry("a")}}); err == nil || !strings.Contains(err.Error(), "use NewIssuers") {
		t.Errorf("New with issuers: %v, want an error pointing at NewIssuers", err)
	}
	if _, err := NewIssuers(context.Background(), Config{JWKSFiles: []string{"/k.json"}}); err == nil {
		t.Errorf("NewIssuers without issuers: %v, want an error", err)
	}
}

// TestRouterWithFallback: NewRouter and With route listed issuers to their
// mapper and everything else to the fallback (start-dev's trusted dev issuer).
func TestRouterWithFallback(t *testing.T) {
	keyA := newTestKey(t, "a-1", "ES256")
	keyDev := newTestKey(t, "dev-1", "ES256")
	srvA, srvDev := newJWKSServer(t, keyA), newJWKSServer(t, keyDev)
	a := newTestMapper(t, Config{Issuer: "https://a.example", SkipDiscovery: true, JWKSURLs: []string{srvA.JWKSURL()}})
	dev := newTestMapper(t, Config{Issuer: "dev", SkipDiscovery: true, JWKSURLs: []string{srvDev.JWKSURL()}})
	only := newTestIssuers(t, Config{Issuers: []Config{{Issuer: "https://a.example", SkipDiscovery: true, JWKSURLs: []string{srvA.JWKSURL()}}}})
	now := time.Now()
	tokA := keyA.sign(t, withIss(claimsAt(now, "alice", []any{"default:read"}), "https://a.example"), nil)
	tokDev := keyDev.sign(t, withIss(claimsAt(now, "dev", []any{"default:admin"}), "dev"), nil)
	tokDevAsA := keyDev.sign(t, withIss(claimsAt(now, "dev", []any{"default:admin"}), "https://a.example"), nil)
	tests := []struct {
		name     string
		r        *Router
		tok      string
		wantCode ErrorCode
	}{
		{name: "fallback verifies its issuer", r: NewRouter(map[string]authorization.ClaimMapper{"dev": dev}, a), tok: tokA},
		{name: "routed issuer", r: NewRouter(map[string]authorization.ClaimMapper{"dev": dev}, a), tok: tokDev},
		{name: "fallback refuses a foreign key", r: NewRouter(map[string]authorization.ClaimMapper{"dev": dev}, a), tok: tokDevAsA, wantCode: CodeUnknownKID},
		{name: "issuers with a trusted issuer", r: only.With(map[string]authorization.ClaimMapper{"dev": dev}), tok: tokDev},
		{name: "issuers still verify their own", r: only.With(map[string]authorization.ClaimMapper{"dev": dev}), tok: tokA},
		{name: "issuers without the trusted issuer", r: only, tok: tokDev, wantCode: CodeUnknownIssuer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.r.GetClaims(authInfo(tc.tok))
			if tc.wantCode == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tc.wantCode != "" && !isCode(err, tc.wantCode) {
				t.Fatalf("got %v, want %s", err, tc.wantCode)
			}
		})
	}
}

// TestCAFile: ca_file trusts a private CA for discovery and JWKS over https,
// per issuer; without it the same issuer is refused at start-up.
func TestCAFile(t *testing.T) {
	key := newTestKey(t, "k-1", "ES256")
	srv := newTLSJWKSServer(t, key)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	must(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	notPEM := filepath.Join(dir, "not.pem")
	must(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))
	otherCA := filepath.Join(dir, "other.pem")
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "another CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	must(t, err)
	must(t, os.WriteFile(otherCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))

	tests := []struct {
		name    string
		caFile  string
		wantErr string // "" = starts and verifies a token
	}{
		{name: "private CA", caFile: caFile},
		{name: "no ca_file", wantErr: "certificate"},
		{name: "another CA", caFile: otherCA, wantErr: "certificate"},
		{name: "not PEM", caFile: notPEM, wantErr: "holds no PEM certificate"},
		{name: "missing file", caFile: filepath.Join(dir, "missing.pem"), wantErr: "ca_file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r, err := NewIssuers(ctx, Config{Issuers: []Config{{Issuer: srv.Issuer(), CAFile: tc.caFile}}})
			if tc.wantErr != "" {
				if err == nil {
					_ = r.Close()
					t.Fatalf("started, want an error containing %q", tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewIssuers: %v", err)
			}
			t.Cleanup(func() { _ = r.Close() })
			tok := key.sign(t, withIss(claimsAt(time.Now(), "alice", []any{"default:read"}), srv.Issuer()), nil)
			if _, err := r.GetClaims(authInfo(tok)); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
}

// TestIssuersStartUpNamesTheFailingIssuer: an issuer whose keys cannot be
// loaded stops NewIssuers, naming the entry.
func TestIssuersStartUpNamesTheFailingIssuer(t *testing.T) {
	good := newJWKSServer(t, newTestKey(t, "k-1", "ES256"))
	down := startJWKSServer()
	down.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := NewIssuers(ctx, Config{Issuers: []Config{
		{Issuer: "https://good.example", SkipDiscovery: true, JWKSURLs: []string{good.JWKSURL()}},
		{Issuer: "https://down.example", SkipDiscovery: true, JWKSURLs: []string{down.JWKSURL()}},
	}})
	if err == nil || !strings.Contains(err.Error(), "issuers[1] (https://down.example)") || !strings.Contains(err.Error(), down.JWKSURL()) {
		t.Fatalf("got %v, want an error naming issuers[1] and its key source", err)
	}
}
