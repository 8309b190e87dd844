package devserver

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
)

// TestLoadSettingsOwnIssuer: an authz file naming its own key source, or
// listing jwt.issuers, replaces the dev key's settings (start-dev then keeps
// the dev key through TrustIssuer); one that names none is layered on them.
func TestLoadSettingsOwnIssuer(t *testing.T) {
	devJWT := claimmapper.Config{Issuer: "temporal-opa-dev", SkipDiscovery: true, JWKSURLs: []string{"http://127.0.0.1:1/jwks"}}
	tests := []struct {
		name      string
		yaml      string
		wantOwn   bool
		wantIssue int // entries of jwt.issuers
	}{
		{name: "dev key only", yaml: "jwt:\n  audiences: [temporal]\n"},
		{name: "own issuer", yaml: "jwt:\n  issuer: https://idp.example\n", wantOwn: true},
		{name: "issuers", yaml: "jwt:\n  issuers:\n    - issuer: https://a.example\n    - issuer: spiffe://b\n      skip_discovery: true\n      jwks_files: [/b.jwks]\n",
			wantOwn: true, wantIssue: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "authz.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			settings, own, err := loadSettings(Options{AuthzFile: path}, devJWT)
			if err != nil {
				t.Fatalf("loadSettings: %v", err)
			}
			if own != tc.wantOwn || len(settings.JWT.Issuers) != tc.wantIssue {
				t.Errorf("ownIssuer=%v issuers=%d, want %v %d", own, len(settings.JWT.Issuers), tc.wantOwn, tc.wantIssue)
			}
			if own && len(settings.JWT.JWKSURLs) > 0 {
				t.Errorf("the dev key's jwks_urls %v stayed in the file's settings", settings.JWT.JWKSURLs)
			}
		})
	}
}
