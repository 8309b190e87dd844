package claimmapper

import (
	"strings"
	"testing"
	"time"

	"go.temporal.io/server/common/authorization"
)

// max_lifetime refuses tokens that live longer than it: exp - iat, or
// exp - now without iat, past the leeway; and tokens without exp.
func TestMaxLifetime(t *testing.T) {
	clock := newFakeClock()
	now := clock.Now()
	key := newTestKey(t, "k1", "ES256")
	srv := newJWKSServer(t, key)
	noExpOK := false
	m := newTestMapper(t, Config{
		JWKSURLs:      []string{srv.JWKSURL()},
		SkipDiscovery: true,
		MaxLifetime:   time.Hour,
		Leeway:        time.Minute,
		RequireExp:    &noExpOK,
	}, WithClock(clock.Now))
	token := func(iat, exp time.Duration) string {
		c := map[string]any{"sub": "system:serviceaccount:payments:worker", "permissions": []any{"payments:worker"}}
		if iat != 0 {
			c["iat"] = now.Add(iat).Unix()
		}
		if exp != 0 {
			c["exp"] = now.Add(exp).Unix()
		}
		return bearer(key.sign(t, c, nil))
	}
	tests := []struct {
		name   string
		auth   string
		wantIn string // "" = accepted
	}{
		{"short-lived, like a projected service-account token", token(-10*time.Minute, 50*time.Minute), ""},
		{"exactly the limit", token(-time.Minute, 59*time.Minute), ""},
		{"within the leeway", token(-time.Minute, 59*time.Minute+30*time.Second), ""},
		{"a day-long token", token(-time.Minute, 24*time.Hour), "exp - iat is 24h1m0s, above max_lifetime 1h0m0s"},
		{"issued long ago, expiring soon", token(-23*time.Hour, 10*time.Minute), "exp - iat is 23h10m0s"},
		{"no iat, expiring within the limit", token(0, 30*time.Minute), ""},
		{"no iat, expiring later", token(0, 3*time.Hour), "exp - now is 3h0m0s"},
		{"no exp", token(-time.Minute, 0), "no exp claim, and max_lifetime is 1h0m0s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.GetClaims(&authorization.AuthInfo{AuthToken: tc.auth})
			if tc.wantIn == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !isCode(err, CodeLifetimeTooLong) || !strings.Contains(err.Error(), tc.wantIn) {
				t.Fatalf("got %v, want %s containing %q", err, CodeLifetimeTooLong, tc.wantIn)
			}
		})
	}
	if err := (&Config{JWKSURLs: []string{srv.JWKSURL()}, MaxLifetime: -time.Minute}).Validate(); err == nil || !strings.Contains(err.Error(), "max_lifetime") {
		t.Errorf("a negative max_lifetime: %v, want an error naming max_lifetime", err)
	}
}
