package devserver

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
	"github.com/temporal-opa/temporal-opa/server/internal/authzconfig"
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

// TestLoadSettingsPolicies: --policy given several times becomes a policy.bundle
// list; with a policy.bundle in --authz it is refused, naming both; two
// bundles that would share a name are refused, naming both paths.
func TestLoadSettingsPolicies(t *testing.T) {
	devJWT := claimmapper.Config{Issuer: "temporal-opa-dev", SkipDiscovery: true, JWKSURLs: []string{"http://127.0.0.1:1/jwks"}}
	dir := t.TempDir()
	a, b, otherA := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "x", "a")
	for _, d := range []string{a, b, otherA} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	authz := filepath.Join(dir, "authz.yaml")
	if err := os.WriteFile(authz, []byte("policy:\n  bundle: ["+a+", "+b+"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	settings, _, err := loadSettings(Options{Policy: []string{a, b}}, devJWT)
	if err != nil {
		t.Fatal(err)
	}
	fbs, err := settings.Policy.Bundles()
	if want := []authzconfig.FileBundle{{Name: "policy/a", Path: a}, {Name: "policy/b", Path: b}}; err != nil || !reflect.DeepEqual(fbs, want) {
		t.Errorf("bundles %+v (%v), want %+v", fbs, err, want)
	}
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"with policy.bundle", Options{Policy: []string{a}, AuthzFile: authz},
			"--policy " + a + " and policy.bundle of --authz " + authz + " both name bundles: keep one of them (either can list several)"},
		{"same base name", Options{Policy: []string{a, otherA}},
			"--policy: " + a + " and " + otherA + " would both be bundle policy/a (bundles are named after the base name of their path): rename one directory or tarball"},
	} {
		_, _, err := loadSettings(tc.o, devJWT)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: error %v\nwant %s", tc.name, err, tc.want)
		}
	}
}
