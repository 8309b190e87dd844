package claimmapper

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"go.temporal.io/server/common/authorization"
)

// TestKeyRotation runs against a live JWKS server: a token of a new key is accepted
// once the key is published (unknown kid -> refetch), and refused once the key is
// removed and the set refetched, even though it was cached.
func TestKeyRotation(t *testing.T) {
	clock := newFakeClock()
	old := newTestKey(t, "2026-01", "RS256")
	next := newTestKey(t, "2026-02", "ES256")
	srv := newJWKSServer(t, old)
	m := newTestMapper(t, Config{JWKSURLs: []string{srv.JWKSURL()}, RefetchMinInterval: 30 * time.Second}, WithClock(clock.Now))

	get := func(k *testKey) error {
		_, err := m.GetClaims(&authorization.AuthInfo{AuthToken: bearer(k.sign(t, claimsAt(clock.Now(), "worker", []any{"orders:write"}), nil))})
		return err
	}
	nextTok := next.sign(t, claimsAt(clock.Now(), "worker", []any{"orders:write"}), nil)
	getNext := func() (*authorization.Claims, error) {
		return m.GetClaims(&authorization.AuthInfo{AuthToken: bearer(nextTok)})
	}

	steps := []struct {
		name    string
		do      func()
		check   func() error
		wantErr ErrorCode
	}{
		{name: "old key accepted", check: func() error { return get(old) }},
		{name: "new key not yet published", check: func() error { _, err := getNext(); return err }, wantErr: CodeUnknownKID},
		{name: "published but refetch rate limited", do: func() { srv.setKeys(old, next) }, check: func() error { _, err := getNext(); return err }, wantErr: CodeUnknownKID},
		{name: "published, refetch allowed: accepted", do: func() { clock.Advance(31 * time.Second) }, check: func() error { _, err := getNext(); return err }},
		{name: "accepted again from cache", check: func() error { _, err := getNext(); return err }},
		{name: "old key retired, still known until a refetch", do: func() { srv.setKeys(next) }, check: func() error { return get(old) }},
		{name: "key server down: refetch fails, last good keys kept", do: func() {
			srv.setStatus(http.StatusServiceUnavailable)
			clock.Advance(31 * time.Second)
			_ = get(newTestKey(t, "bogus", "ES256")) // triggers the refetch
		}, check: func() error { return get(old) }},
		{name: "new key removed: refetch then refused although cached", do: func() {
			srv.setStatus(http.StatusOK)
			srv.setKeys(old)
			clock.Advance(31 * time.Second)
			_ = get(newTestKey(t, "bogus2", "ES256")) // triggers the refetch that sees the removal
		}, check: func() error { _, err := getNext(); return err }, wantErr: CodeUnknownKID},
		{name: "old key back", check: func() error { return get(old) }},
	}
	for _, s := range steps {
		if s.do != nil {
			s.do()
		}
		err := s.check()
		if s.wantErr == "" && err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if s.wantErr != "" && !isCode(err, s.wantErr) {
			t.Fatalf("%s: got %v, want %s", s.name, err, s.wantErr)
		}
	}
}

// TestUnknownKIDFloodIsRateLimited: many concurrent tokens with bogus kids cause one
// fetch of the key server, not one each.
func TestUnknownKIDFloodIsRateLimited(t *testing.T) {
	clock := newFakeClock()
	k := newTestKey(t, "k", "ES256")
	srv := newJWKSServer(t, k)
	m := newTestMapper(t, Config{JWKSURLs: []string{srv.JWKSURL()}}, WithClock(clock.Now))
	start := srv.hits.Load()

	var wg sync.WaitGroup
	for i := range 200 {
		bogus := &testKey{kid: "bogus-" + string(rune('a'+i%26)) + time.Duration(i).String(), alg: k.alg, signer: k.signer}
		tok := bogus.sign(t, claimsAt(clock.Now(), "mallory", nil), nil)
		wg.Go(func() {
			if _, err := m.GetClaims(&authorization.AuthInfo{AuthToken: bearer(tok)}); !isCode(err, CodeUnknownKID) {
				t.Errorf("bogus kid: %v", err)
			}
		})
	}
	wg.Wait()
	if got := srv.hits.Load() - start; got != 1 {
		t.Errorf("key server fetched %d times for 200 bogus kids, want 1", got)
	}
	clock.Advance(DefaultRefetchMinInterval + time.Second)
	bogus := &testKey{kid: "later", alg: k.alg, signer: k.signer}
	_, _ = m.GetClaims(&authorization.AuthInfo{AuthToken: bearer(bogus.sign(t, claimsAt(clock.Now(), "mallory", nil), nil))})
	if got := srv.hits.Load() - start; got != 2 {
		t.Errorf("after the interval: %d fetches, want 2", got)
	}
}

// TestBackgroundRefresh: jwk.Cache refreshes the set on its own at refresh_interval;
// a removed key stops verifying without any refetch trigger.
func TestBackgroundRefresh(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a real refresh")
	}
	a := newTestKey(t, "a", "ES256")
	b := newTestKey(t, "b", "ES256")
	srv := newJWKSServer(t, a, b)
	m := newTestMapper(t, Config{JWKSURLs: []string{srv.JWKSURL()}, RefreshInterval: time.Second})
	tok := b.sign(t, claimsAt(time.Now(), "alice", []any{"default:read"}), nil)
	if _, err := m.GetClaims(&authorization.AuthInfo{AuthToken: bearer(tok)}); err != nil {
		t.Fatal(err)
	}
	srv.setKeys(a)
	deadline := time.Now().Add(15 * time.Second)
	for {
		// Stay away from the unknown-kid refetch: b's kid is known until the refresh.
		if m.keys.current.Load().byKID["b"] == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the background refresh did not drop the removed key within 15s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := m.GetClaims(&authorization.AuthInfo{AuthToken: bearer(tok)}); !isCode(err, CodeUnknownKID) {
		t.Fatalf("token of the removed key: %v", err)
	}
}
