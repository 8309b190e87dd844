package claimmapper

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/server/common/authorization"
)

// TestCachedClaims: a repeated token is served from the cache as a fresh *Claims that
// shares the Extensions value; mutating one answer does not affect the next.
func TestCachedClaims(t *testing.T) {
	clock := newFakeClock()
	k := newTestKey(t, "k", "ES256")
	srv := newJWKSServer(t, k)
	m := newTestMapper(t, Config{JWKSURLs: []string{srv.JWKSURL()}}, WithClock(clock.Now))
	tok := k.sign(t, claimsAt(clock.Now(), "alice", []any{"default:read", "temporal-system:worker"}), nil)

	first, err := m.GetClaims(authInfo(tok))
	must(t, err)
	first.Namespaces["default"] = authorization.RoleAdmin
	first.System = authorization.RoleAdmin
	first.Subject = "mallory"
	second, err := m.GetClaims(authInfo(tok))
	must(t, err)
	if second.Subject != "alice" || second.System != authorization.RoleWorker || second.Namespaces["default"] != authorization.RoleReader {
		t.Errorf("a caller's mutation leaked into the cache: %+v", second)
	}
	if second == first {
		t.Error("same *Claims returned twice")
	}
	if first.Extensions != second.Extensions {
		t.Error("Extensions not shared between calls for one token")
	}
	ext := second.Extensions.(*Token)
	sum := sha256.Sum256([]byte(tok))
	if ext.CacheKey() != hex.EncodeToString(sum[:]) || strings.Contains(tok, ext.CacheKey()) {
		t.Errorf("CacheKey = %q, want the hex SHA-256 of the token", ext.CacheKey())
	}
	if ext.TokenClaims()["sub"] != "alice" || ext.TokenClaims()["exp"] != float64(clock.Now().Add(time.Hour).Unix()) {
		t.Errorf("TokenClaims = %v", ext.TokenClaims())
	}
	if n := m.cache.len(); n != 1 {
		t.Errorf("cache holds %d entries, want 1", n)
	}
}

// TestCacheNeverPastExp: a cached token is refused as soon as its exp passes.
func TestCacheNeverPastExp(t *testing.T) {
	for _, leeway := range []time.Duration{0, 30 * time.Second} {
		t.Run("leeway "+leeway.String(), func(t *testing.T) {
			clock := newFakeClock()
			k := newTestKey(t, "k", "ES256")
			srv := newJWKSServer(t, k)
			m := newTestMapper(t, Config{JWKSURLs: []string{srv.JWKSURL()}, Leeway: leeway}, WithClock(clock.Now))
			c := claimsAt(clock.Now(), "alice", nil)
			c["exp"] = clock.Now().Add(10 * time.Second).Unix()
			tok := k.sign(t, c, nil)
			_, err := m.GetClaims(authInfo(tok))
			must(t, err)
			clock.Advance(9 * time.Second)
			_, err = m.GetClaims(authInfo(tok))
			must(t, err)
			clock.Advance(time.Second) // now == exp
			if m.cache.get(&[32]byte{}, clock.Now(), 0) != nil {
				t.Fatal("phantom entry")
			}
			sum := sha256.Sum256([]byte(tok))
			if v := m.cache.get(&sum, clock.Now(), m.keys.current.Load().gen); v != nil {
				t.Fatal("cache entry used at exp")
			}
			_, err = m.GetClaims(authInfo(tok))
			if leeway == 0 && !isCode(err, CodeTokenExpired) {
				t.Fatalf("at exp: %v, want token_expired", err)
			}
			if leeway > 0 {
				if err != nil {
					t.Fatalf("within leeway: %v", err)
				}
				if m.cache.len() != 0 {
					t.Error("a token past exp was cached")
				}
				clock.Advance(leeway)
				if _, err := m.GetClaims(authInfo(tok)); !isCode(err, CodeTokenExpired) {
					t.Fatalf("past leeway: %v", err)
				}
			}
		})
	}
}

// TestCacheBoundedAndDisabled: the cache never exceeds its size; -1 disables it.
func TestCacheBoundedAndDisabled(t *testing.T) {
	k := newTestKey(t, "k", "ES256")
	srv := newJWKSServer(t, k)
	now := time.Now()
	toks := make([]string, 200)
	for i := range toks {
		toks[i] = k.sign(t, claimsAt(now, "user"+strings.Repeat("x", i), []any{"default:read"}), nil)
	}
	m := newTestMapper(t, Config{JWKSURLs: []string{srv.JWKSURL()}, CacheSize: 32})
	for _, tok := range toks {
		_, err := m.GetClaims(authInfo(tok))
		must(t, err)
	}
	if n, limit := m.cache.len(), 32+cacheShards; n > limit || n == 0 {
		t.Errorf("cache holds %d entries, want 1..%d", n, limit)
	}
	off := newTestMapper(t, Config{JWKSURLs: []string{srv.JWKSURL()}, CacheSize: -1})
	if off.cache != nil {
		t.Fatal("cache_size -1 still has a cache")
	}
	for range 2 {
		if c, err := off.GetClaims(authInfo(toks[0])); err != nil || c.Namespaces["default"] != authorization.RoleReader {
			t.Fatalf("without cache: %+v %v", c, err)
		}
	}
}

// TestAudienceFromAuthInfo: Temporal's audience getter (AuthInfo.Audience) is checked on
// every call, cached or not.
func TestAudienceFromAuthInfo(t *testing.T) {
	k := newTestKey(t, "k", "RS256")
	srv := newJWKSServer(t, k)
	m := newTestMapper(t, Config{JWKSURLs: []string{srv.JWKSURL()}})
	c := claimsAt(time.Now(), "alice", nil)
	c["aud"] = []any{"temporal", "account"}
	tok := k.sign(t, c, nil)
	noAud := k.sign(t, claimsAt(time.Now(), "alice", nil), nil)
	tests := []struct {
		name, tok, audience string
		ok                  bool
	}{
		{"no audience required", tok, "", true},
		{"matching", tok, "temporal", true},
		{"matching again (cached)", tok, "account", true},
		{"not in aud (cached token)", tok, "billing", false},
		{"token without aud", noAud, "temporal", false},
		{"token without aud, none required", noAud, "", true},
		{"blank audience requires nothing (as Temporal)", noAud, "  ", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.GetClaims(&authorization.AuthInfo{AuthToken: bearer(tc.tok), Audience: tc.audience})
			if tc.ok && err != nil {
				t.Fatal(err)
			}
			if !tc.ok && !isCode(err, CodeInvalidAudience) {
				t.Fatalf("got %v, want invalid_audience", err)
			}
		})
	}
}

// TestPermissionShapes covers dotted paths, URL-named claims, the space-separated format,
// permissions_regex and the subject claim.
func TestPermissionShapes(t *testing.T) {
	k := newTestKey(t, "k", "ES256")
	srv := newJWKSServer(t, k)
	R, W, A, K := authorization.RoleReader, authorization.RoleWriter, authorization.RoleAdmin, authorization.RoleWorker
	tests := []struct {
		name    string
		cfg     Config
		claims  map[string]any
		subject string
		system  authorization.Role
		ns      map[string]authorization.Role
	}{
		{name: "nested path", cfg: Config{PermissionsClaim: "ext.permissions"},
			claims: map[string]any{"ext": map[string]any{"permissions": []any{"a:read", "temporal-system:admin"}}},
			system: A, ns: map[string]authorization.Role{"a": R}},
		{name: "nested path through a non-object", cfg: Config{PermissionsClaim: "ext.permissions"},
			claims: map[string]any{"ext": []any{"a:read"}}},
		{name: "URL-named claim with dots", cfg: Config{PermissionsClaim: "https://example.com/temporal.permissions"},
			claims: map[string]any{"https://example.com/temporal.permissions": []any{"a:write"}}, ns: map[string]authorization.Role{"a": W}},
		{name: "space-separated string", cfg: Config{PermissionsClaim: "scope", PermissionsFormat: FormatSpaceSeparated},
			claims: map[string]any{"scope": "openid  a:read\tb:worker profile temporal-system:read"},
			system: R, ns: map[string]authorization.Role{"a": R, "b": K}},
		{name: "space-separated still reads arrays", cfg: Config{PermissionsFormat: FormatSpaceSeparated},
			claims: map[string]any{"permissions": []any{"a:read"}}, ns: map[string]authorization.Role{"a": R}},
		{name: "array format ignores a string", claims: map[string]any{"permissions": "a:read"}},
		{name: "regex", cfg: Config{PermissionsRegex: `^(?P<role>\w+)\.(?P<namespace>.+)$`},
			claims: map[string]any{"permissions": []any{"admin.orders", "read.temporal-system", "orders:read"}},
			system: R, ns: map[string]authorization.Role{"orders": A}},
		{name: "aliases", cfg: Config{SystemNamespaceAliases: []string{"system", "cluster"}},
			claims: map[string]any{"permissions": []any{"system:read", "cluster:write", "temporal-system:worker"}}, system: R | W | K},
		{name: "subject from client_id", cfg: Config{SubjectClaim: "client_id"},
			claims: map[string]any{"client_id": "worker-1"}, subject: "worker-1"},
		{name: "subject from nested claim", cfg: Config{SubjectClaim: "ext.user"},
			claims: map[string]any{"ext": map[string]any{"user": "u1"}}, subject: "u1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.JWKSURLs = []string{srv.JWKSURL()}
			m := newTestMapper(t, cfg)
			c := claimsAt(time.Now(), "alice", nil)
			maps.Copy(c, tc.claims)
			got, err := m.GetClaims(authInfo(k.sign(t, c, nil)))
			must(t, err)
			wantSub := tc.subject
			if wantSub == "" {
				wantSub = "alice"
			}
			if got.Subject != wantSub || got.System != tc.system || !maps.Equal(roles(got.Namespaces), roles(tc.ns)) {
				t.Errorf("got %q %v %v, want %q %v %v", got.Subject, got.System, got.Namespaces, wantSub, tc.system, tc.ns)
			}
		})
	}
}

// TestExtensionsBounded: a payload over max_extension_bytes exposes only registered claims.
func TestExtensionsBounded(t *testing.T) {
	k := newTestKey(t, "k", "ES256")
	srv := newJWKSServer(t, k)
	m := newTestMapper(t, Config{JWKSURLs: []string{srv.JWKSURL()}, MaxExtensionBytes: 512, SubjectClaim: "client_id"})
	c := claimsAt(time.Now(), "alice", []any{"default:read"})
	c["client_id"] = "svc"
	c["azp"] = "svc"
	c["big"] = strings.Repeat("x", 1000)
	got, err := m.GetClaims(authInfo(k.sign(t, c, nil)))
	must(t, err)
	tc := got.Extensions.(*Token).TokenClaims()
	if _, ok := tc["big"]; ok {
		t.Error("large claim exposed")
	}
	if tc["client_id"] != "svc" || tc["sub"] != "alice" || tc["exp"] == nil || got.Namespaces["default"] != authorization.RoleReader {
		t.Errorf("registered claims or roles lost: %v %+v", tc, got)
	}
	small := claimsAt(time.Now(), "alice", nil)
	small["client_id"], small["team"] = "svc", "blue"
	got, err = m.GetClaims(authInfo(k.sign(t, small, nil)))
	must(t, err)
	if got.Extensions.(*Token).TokenClaims()["team"] != "blue" {
		t.Error("small payload not exposed whole")
	}
}

// TestConcurrentUse exercises GetClaims from many goroutines while keys change (run with -race).
func TestConcurrentUse(t *testing.T) {
	clock := newFakeClock()
	a := newTestKey(t, "a", "ES256")
	b := newTestKey(t, "b", "EdDSA")
	srv := newJWKSServer(t, a, b)
	m := newTestMapper(t, Config{JWKSURLs: []string{srv.JWKSURL()}, CacheSize: 64, RefetchMinInterval: time.Nanosecond}, WithClock(clock.Now))
	var toks []string
	for i := range 20 {
		k := a
		if i%2 == 1 {
			k = b
		}
		toks = append(toks, k.sign(t, claimsAt(clock.Now(), "u", []any{"ns:read"}), nil))
	}
	bogus := (&testKey{kid: "bogus", alg: "ES256", signer: a.signer}).sign(t, claimsAt(clock.Now(), "u", nil), nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 300 {
				tok := toks[(g*7+i)%len(toks)]
				if i%50 == 0 {
					clock.Advance(time.Millisecond)
					tok = bogus // refetch: the set changes when srv's keys do
				}
				c, err := m.GetClaims(authInfo(tok))
				if err == nil {
					c.Namespaces["ns"] = authorization.RoleAdmin // callers may mutate
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 20 {
			if i%2 == 0 {
				srv.setKeys(a)
			} else {
				srv.setKeys(a, b)
			}
			time.Sleep(time.Millisecond)
		}
	})
	wg.Wait()
	srv.setKeys(a, b)
	clock.Advance(time.Second) // past the refetch interval
	_, _ = m.GetClaims(authInfo(bogus))
	for _, tok := range toks {
		c, err := m.GetClaims(authInfo(tok))
		if err != nil || c.Namespaces["ns"] != authorization.RoleReader {
			t.Fatalf("after the storm: %+v %v", c, err)
		}
	}
}

// TestClose: Close is idempotent and GetClaims keeps working with the last keys.
func TestClose(t *testing.T) {
	k := newTestKey(t, "k", "ES256")
	srv := newJWKSServer(t, k)
	m := newTestMapper(t, Config{JWKSURLs: []string{srv.JWKSURL()}})
	must(t, m.Close())
	must(t, m.Close())
	if _, err := m.GetClaims(authInfo(k.sign(t, claimsAt(time.Now(), "a", nil), nil))); err != nil {
		t.Fatal(err)
	}
}

// TestCacheDroppedOnKeyChange: a change of the key set empties the cache, and an entry
// verified with an older generation (stored after the change) is never used.
func TestCacheDroppedOnKeyChange(t *testing.T) {
	clock := newFakeClock()
	a := newTestKey(t, "a", "ES256")
	b := newTestKey(t, "b", "ES256")
	srv := newJWKSServer(t, a)
	m := newTestMapper(t, Config{JWKSURLs: []string{srv.JWKSURL()}}, WithClock(clock.Now))
	tok := a.sign(t, claimsAt(clock.Now(), "alice", nil), nil)
	_, err := m.GetClaims(authInfo(tok))
	must(t, err)
	gen := m.keys.current.Load().gen
	if m.cache.len() != 1 {
		t.Fatalf("cache holds %d entries, want 1", m.cache.len())
	}
	srv.setKeys(a, b)
	_, err = m.GetClaims(authInfo(b.sign(t, claimsAt(clock.Now(), "bob", nil), nil))) // unknown kid: refetch
	must(t, err)
	if m.keys.current.Load().gen == gen {
		t.Fatal("generation unchanged after the key set changed")
	}
	if _, err := m.GetClaims(authInfo(tok)); err != nil || m.cache.len() != 2 {
		t.Fatalf("after the change: %v, %d entries (want the old entry dropped, then both re-added)", err, m.cache.len())
	}
	// An unchanged refetch keeps the generation (and the cache).
	gen = m.keys.current.Load().gen
	clock.Advance(time.Minute)
	_, _ = m.GetClaims(authInfo((&testKey{kid: "zz", alg: "ES256", signer: a.signer}).sign(t, claimsAt(clock.Now(), "x", nil), nil)))
	if m.keys.current.Load().gen != gen || m.cache.len() != 2 {
		t.Errorf("refetch of the same keys: gen %d -> %d, %d entries", gen, m.keys.current.Load().gen, m.cache.len())
	}

	c := newTokenCache(16, DefaultCacheBytes)
	k := [32]byte{1}
	c.put(&k, &verified{gen: 1, expires: clock.Now().Add(time.Hour)}, 700)
	if c.get(&k, clock.Now(), 2) != nil {
		t.Error("entry of generation 1 used with generation 2")
	}
	if c.len() != 0 {
		t.Error("stale entry not removed")
	}
}

// TestTokenCacheBounds: the verified-token cache stays within its entries and
// its bytes, evicting the least recently used tokens first.
func TestTokenCacheBounds(t *testing.T) {
	exp := time.Now().Add(time.Hour)
	tests := []struct {
		name             string
		entries, bytes   int
		tokenLen, tokens int
		wantMaxEntries   int
	}{
		{"entries bound", 32, DefaultCacheBytes, 700, 1000, 32},
		{"bytes bound", 10000, 16 * (2*4000 + nodeOverhead) * 3, 4000, 1000, 16 * 3},
		{"token larger than a shard's bytes is not cached", 10000, 16 * 1024, 4000, 10, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newTokenCache(tc.entries, tc.bytes)
			for i := range tc.tokens {
				k := [32]byte{byte(i), byte(i >> 8), 7}
				c.put(&k, &verified{gen: 1, expires: exp}, tc.tokenLen)
			}
			entries, bytes := c.stats()
			if entries > tc.wantMaxEntries || bytes > tc.bytes || tc.wantMaxEntries > 0 && entries < tc.wantMaxEntries/2 {
				t.Fatalf("%d entries, %d bytes; want at most %d entries and %d bytes", entries, bytes, tc.wantMaxEntries, tc.bytes)
			}
			if tc.wantMaxEntries == 0 {
				return
			}
			// The most recent token is kept; the first one was evicted.
			last := [32]byte{byte(tc.tokens - 1), byte((tc.tokens - 1) >> 8), 7}
			if c.get(&last, time.Now(), 1) == nil {
				t.Error("the most recently added token was evicted")
			}
			if first := ([32]byte{0, 0, 7}); c.get(&first, time.Now(), 1) != nil {
				t.Error("the least recently used token is still cached")
			}
		})
	}
}
