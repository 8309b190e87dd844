package claimmapper

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
)

// temporalMapper builds Temporal's own default JWT claim mapper, exactly as the server
// does for claimMapper: default.
func temporalMapper(t testing.TB, cfg *config.Authorization) authorization.ClaimMapper {
	t.Helper()
	logger := log.NewNoopLogger()
	provider := authorization.NewDefaultTokenKeyProvider(cfg, logger)
	if cfg.JWTKeyProvider.RefreshInterval > 0 {
		t.Cleanup(provider.Close) // Close panics without a refresh ticker
	}
	return authorization.NewDefaultJWTClaimMapper(provider, cfg, logger)
}

// roles normalizes Namespaces: Temporal keeps a namespace with role 0 for an unknown
// permission, we never add one; both grant nothing.
func roles(ns map[string]authorization.Role) map[string]authorization.Role {
	out := map[string]authorization.Role{}
	for k, v := range ns {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// compatPermissionShapes are permission claim values Temporal's mapper accepts.
var compatPermissionShapes = map[string]any{
	"absent":                nil,
	"empty array":           []any{},
	"one read":              []any{"default:read"},
	"upper and mixed case":  []any{"default:READ", "default:Write", "other:AdMiN"},
	"system admin":          []any{"temporal-system:admin"},
	"system and namespaces": []any{"temporal-system:read", "ns1:worker", "ns1:write", "ns2:read"},
	"all roles one ns":      []any{"x:read", "x:write", "x:worker", "x:admin"},
	"split on first colon":  []any{"a:b:c", "ns:admin:extra", "ns2:read"},
	"unknown permission":    []any{"ns:owner", "ns:reader", "ns:", "default:read"},
	"no colon":              []any{"nocolon", "default:write"},
	"non-string entries":    []any{1.0, true, nil, map[string]any{"a": "b:read"}, []any{"x:admin"}, "ok:read"},
	"string not array":      "default:read",
	"number":                42.0,
	"object":                map[string]any{"default": "read"},
	"nested arrays":         []any{[]any{"default:admin"}},
	"unicode namespace":     []any{"日本:read", "my ns:write", "ns-with.dots:admin"},
	"namespace case":        []any{"Default:read", "default:worker"},
	"system name case":      []any{"TEMPORAL-SYSTEM:admin", "Temporal-System:read"},
	"system without alias":  []any{"system:admin"},
	"fullwidth permission":  []any{"ns:ＲＥＡＤ", "ns:write"},
	"duplicates":            []any{"ns:read", "ns:read", "temporal-system:worker", "temporal-system:worker"},
	"whitespace":            []any{" ns:read", "ns :write", "ns: admin", "ns2:read "},
	"many":                  manyPermissions(60),
}

func manyPermissions(n int) []any {
	var out []any
	perms := []string{"read", "write", "worker", "admin"}
	for i := range n {
		out = append(out, fmt.Sprintf("ns%d:%s", i%17, perms[i%4]))
	}
	return out
}

// TestCompatibilityWithTemporalDefaultMapper runs Temporal's default JWT claim mapper and
// ours, built from the same config.Authorization, on the same RS256 and ES256 tokens:
// both must accept, with the same Subject, System and Namespaces.
func TestCompatibilityWithTemporalDefaultMapper(t *testing.T) {
	rs := newTestKey(t, "rsa-1", "RS256")
	es := newTestKey(t, "ec-1", "ES256")
	srv := newJWKSServer(t, rs, es)

	configs := []struct {
		name  string
		cfg   config.Authorization
		claim string // where to put the permissions
		conv  func(string) string
	}{
		{name: "defaults", claim: "permissions", conv: func(s string) string { return s }},
		{name: "permissionsClaimName", cfg: config.Authorization{PermissionsClaimName: "temporal_roles"}, claim: "temporal_roles", conv: func(s string) string { return s }},
		{
			name:  "permissionsRegex",
			cfg:   config.Authorization{PermissionsRegex: `^(?P<role>\w+)@(?P<namespace>[\w-]+)$`},
			claim: "permissions",
			// ns:perm -> perm@ns, so the regex sees the same pairs
			conv: func(s string) string {
				ns, perm, ok := strings.Cut(s, ":")
				if !ok {
					return s
				}
				return perm + "@" + ns
			},
		},
		{name: "audience", cfg: config.Authorization{Audience: "temporal-api"}, claim: "permissions", conv: func(s string) string { return s }},
	}
	subjects := []string{"alice", "", "service-account-worker", "ünïcødé@example.com"}

	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			tcfg := c.cfg
			tcfg.ClaimMapper = "default"
			tcfg.JWTKeyProvider = config.JWTKeyProvider{KeySourceURIs: []string{srv.JWKSURL()}, RefreshInterval: time.Hour}
			theirs := temporalMapper(t, &tcfg)
			ours := newTestMapper(t, FromTemporal(&tcfg))

			i := 0
			for shape, perms := range compatPermissionShapes {
				for _, key := range []*testKey{rs, es} {
					sub := subjects[i%len(subjects)]
					i++
					now := time.Now()
					claims := claimsAt(now, sub, nil)
					if perms != nil {
						claims[c.claim] = convertPerms(perms, c.conv)
					}
					if tcfg.Audience != "" {
						claims["aud"] = []any{"other", tcfg.Audience}
					}
					tok := key.sign(t, claims, nil)
					ai := &authorization.AuthInfo{AuthToken: bearer(tok), Audience: tcfg.Audience}
					name := fmt.Sprintf("%s/%s", shape, key.alg)

					want, err := theirs.GetClaims(ai)
					if err != nil {
						t.Fatalf("%s: Temporal's mapper refused a corpus token: %v", name, err)
					}
					got, err := ours.GetClaims(ai)
					if err != nil {
						t.Fatalf("%s: ours refused a token Temporal accepts: %v", name, err)
					}
					if got.Subject != want.Subject || got.System != want.System || !maps.Equal(roles(got.Namespaces), roles(want.Namespaces)) || got.AuthType != want.AuthType {
						t.Errorf("%s: got subject=%q system=%v namespaces=%v type=%q, Temporal: subject=%q system=%v namespaces=%v type=%q",
							name, got.Subject, got.System, got.Namespaces, got.AuthType, want.Subject, want.System, want.Namespaces, want.AuthType)
					}
					// Second call: from our cache, same answer.
					again, err := ours.GetClaims(ai)
					if err != nil || again.System != got.System || !maps.Equal(again.Namespaces, got.Namespaces) {
						t.Errorf("%s: cached answer differs: %v, %v", name, again, err)
					}
				}
			}
		})
	}
}

func convertPerms(v any, conv func(string) string) any {
	switch p := v.(type) {
	case []any:
		out := make([]any, len(p))
		for i, e := range p {
			if s, ok := e.(string); ok {
				out[i] = conv(s)
			} else {
				out[i] = e
			}
		}
		return out
	case string:
		return conv(p)
	}
	return v
}

// TestDeliberateDifferencesFromTemporal pins where ours decides differently from
// Temporal's default mapper, and how each stricter default is relaxed.
func TestDeliberateDifferencesFromTemporal(t *testing.T) {
	rs := newTestKey(t, "rsa-1", "RS256")
	ps := newTestKey(t, "ps-1", "PS256")
	ed := newTestKey(t, "ed-1", "EdDSA")
	srv := newJWKSServer(t, rs, ps, ed)
	tcfg := config.Authorization{ClaimMapper: "default", JWTKeyProvider: config.JWTKeyProvider{KeySourceURIs: []string{srv.JWKSURL()}, RefreshInterval: time.Hour}}
	theirs := temporalMapper(t, &tcfg)
	now := time.Now()

	noExp := claimsAt(now, "alice", []any{"default:read"})
	delete(noExp, "exp")

	tests := []struct {
		name       string
		tok        string
		cfg        func(*Config)
		theirsOK   bool
		wantCode   ErrorCode // "" = accepted
		wantSystem authorization.Role
		wantNS     map[string]authorization.Role
	}{
		{name: "no exp refused by default", tok: rs.sign(t, noExp, nil), theirsOK: true, wantCode: CodeMissingExp},
		{name: "no exp accepted with require_exp false", tok: rs.sign(t, noExp, nil), theirsOK: true,
			cfg: func(c *Config) { f := false; c.RequireExp = &f }, wantNS: map[string]authorization.Role{"default": authorization.RoleReader}},
		{name: "empty namespace never grants", tok: rs.sign(t, claimsAt(now, "alice", []any{":admin", "default:read"}), nil), theirsOK: true,
			wantNS: map[string]authorization.Role{"default": authorization.RoleReader}},
		{name: "system alias", tok: rs.sign(t, claimsAt(now, "alice", []any{"system:admin"}), nil), theirsOK: true,
			cfg: func(c *Config) { c.SystemNamespaceAliases = []string{"system"} }, wantSystem: authorization.RoleAdmin},
		{name: "PS256 accepted", tok: ps.sign(t, claimsAt(now, "alice", []any{"default:read"}), nil),
			wantNS: map[string]authorization.Role{"default": authorization.RoleReader}},
		{name: "EdDSA accepted", tok: ed.sign(t, claimsAt(now, "alice", []any{"default:write"}), nil),
			wantNS: map[string]authorization.Role{"default": authorization.RoleWriter}},
		{name: "iss checked when configured", tok: rs.sign(t, claimsAt(now, "alice", nil), nil), theirsOK: true,
			cfg: func(c *Config) { c.Issuer = "https://idp.example.com"; c.SkipDiscovery = true }, wantCode: CodeInvalidIssuer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := FromTemporal(&tcfg)
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			ours := newTestMapper(t, cfg)
			ai := &authorization.AuthInfo{AuthToken: bearer(tc.tok)}
			if _, err := theirs.GetClaims(ai); (err == nil) != tc.theirsOK {
				t.Errorf("Temporal's mapper: err=%v, want accepted=%v", err, tc.theirsOK)
			}
			got, err := ours.GetClaims(ai)
			if tc.wantCode != "" {
				if !isCode(err, tc.wantCode) {
					t.Fatalf("got %v, want code %s", err, tc.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if got.System != tc.wantSystem || !maps.Equal(roles(got.Namespaces), roles(tc.wantNS)) {
				t.Errorf("got system=%v namespaces=%v, want %v %v", got.System, got.Namespaces, tc.wantSystem, tc.wantNS)
			}
		})
	}
}
