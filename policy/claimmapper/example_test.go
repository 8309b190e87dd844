package claimmapper_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/config"
	"gopkg.in/yaml.v3"

	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
)

// identityProvider stands for an OIDC provider: a key pair, a JWKS endpoint and a
// token signer.
type identityProvider struct {
	srv *httptest.Server
	key jwk.Key
}

func newIdentityProvider() *identityProvider {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key, _ := jwk.FromRaw(priv)
	_ = key.Set(jwk.KeyIDKey, "key-1")
	_ = key.Set(jwk.AlgorithmKey, jwa.ES256)
	pub, _ := key.PublicKey()
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(set)
	}))
	return &identityProvider{srv: srv, key: key}
}

func (p *identityProvider) token(claims map[string]any, ttl time.Duration) string {
	tok := jwt.New()
	_ = tok.Set(jwt.IssuedAtKey, time.Now())
	_ = tok.Set(jwt.ExpirationKey, time.Now().Add(ttl))
	for k, v := range claims {
		_ = tok.Set(k, v)
	}
	signed, _ := jwt.Sign(tok, jwt.WithKey(jwa.ES256, p.key))
	return string(signed)
}

// A Mapper verifies a bearer token against the provider's keys and maps its
// permissions to Temporal roles.
func ExampleNew() {
	idp := newIdentityProvider()
	defer idp.srv.Close()

	m, err := claimmapper.New(context.Background(), claimmapper.Config{
		JWKSURLs:               []string{idp.srv.URL},
		SystemNamespaceAliases: []string{"system"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()

	tok := idp.token(map[string]any{
		"sub":         "worker-1",
		"permissions": []string{"orders:read", "orders:write", "system:read", "billing:owner"},
	}, time.Hour)
	claims, err := m.GetClaims(&authorization.AuthInfo{AuthToken: "Bearer " + tok})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("subject:", claims.Subject)
	fmt.Println("system reader:", claims.System == authorization.RoleReader)
	fmt.Println("orders reader+writer:", claims.Namespaces["orders"] == authorization.RoleReader|authorization.RoleWriter)
	fmt.Println("billing (unknown permission):", claims.Namespaces["billing"])
	ext := claims.Extensions.(interface{ TokenClaims() map[string]any })
	fmt.Println("sub for policies:", ext.TokenClaims()["sub"])
	// Output:
	// subject: worker-1
	// system reader: true
	// orders reader+writer: true
	// billing (unknown permission): 0
	// sub for policies: worker-1
}

// Refused tokens give a *TokenError whose Code is stable.
func ExampleTokenError() {
	idp := newIdentityProvider()
	defer idp.srv.Close()
	m, err := claimmapper.New(context.Background(), claimmapper.Config{JWKSURLs: []string{idp.srv.URL}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()

	expired := idp.token(map[string]any{"sub": "alice"}, -time.Minute)
	_, err = m.GetClaims(&authorization.AuthInfo{AuthToken: "Bearer " + expired})
	var te *claimmapper.TokenError
	if errors.As(err, &te) {
		fmt.Println(te.Code)
	}
	fmt.Println(errors.Is(err, &claimmapper.TokenError{Code: claimmapper.CodeTokenExpired}))
	// Output:
	// token_expired
	// true
}

// Temporal's authorization settings come first; our YAML overrides them key by key.
func ExampleFromTemporal() {
	temporal := config.Authorization{
		JWTKeyProvider: config.JWTKeyProvider{
			KeySourceURIs:   []string{"https://idp.example.com/realms/temporal/protocol/openid-connect/certs"},
			RefreshInterval: time.Minute,
		},
		PermissionsClaimName: "permissions",
		ClaimMapper:          "default",
	}
	cfg := claimmapper.FromTemporal(&temporal)
	ours := `
issuer: https://idp.example.com/realms/temporal
skip_discovery: true
permissions_claim: resource_access.temporal-authz.roles
subject_claim: azp
system_namespace_aliases: [system]
`
	if err := yaml.Unmarshal([]byte(ours), &cfg); err != nil {
		fmt.Println(err)
		return
	}
	if err := cfg.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	cfg.ApplyDefaults()
	fmt.Println(cfg.JWKSURLs[0])
	fmt.Println(cfg.RefreshInterval, cfg.PermissionsClaim, cfg.SubjectClaim, *cfg.RequireExp, cfg.MaxTokenSize)
	// Then: m, err := claimmapper.New(ctx, cfg, claimmapper.WithLogger(logger))
	// and temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return m }).

	// Output:
	// https://idp.example.com/realms/temporal/protocol/openid-connect/certs
	// 1m0s resource_access.temporal-authz.roles azp true 8192
}

// Validate names every wrong key and what it expects.
func ExampleConfig_Validate() {
	cfg := claimmapper.Config{
		JWKSURLs:         []string{"https://idp.example.com/jwks"},
		Algorithms:       []string{"RS256", "HS256"},
		PermissionsRegex: `^(?P<ns>\w+):(?P<role>\w+)$`,
	}
	fmt.Println(cfg.Validate())
	// Output:
	// claimmapper: config algorithms[1]: HMAC ("HS256") is never accepted from a key set
	// claimmapper: config permissions_regex: want named groups (?P<namespace>...) and (?P<role>...), got "^(?P<ns>\\w+):(?P<role>\\w+)$"
}
