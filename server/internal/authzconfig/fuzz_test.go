package authzconfig

import (
	"strings"
	"testing"

	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
)

// FuzzParse feeds arbitrary documents to the strict reader: it must never panic,
// must return settings exactly when it returns no error, and its errors must name
// the file.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"",
		"jwt:\n  issuer: https://idp.example\n  skip_discovery: true\n",
		"jwt:\n  isuer: x\n",
		"policy:\n  eval_timeout: fast\n",
		"policy:\n  decision_path: data.x.decision\n  decision_cache_size: -1\n",
		"jwt:\n  jwks_urls: [http://127.0.0.1:1/jwks.json]\n  audiences: [a, b]\n  permissions_regex: '^(?P<namespace>\\w+):(?P<role>\\w+)$'\n",
		"status:\n  address: 127.0.0.1:7253\n",
		"- a\n- b\n",
		"jwt: &a\n  x: *a\n",
		"jwt:\n  leeway: 30s\n  leeway: 40s\n",
		"---\njwt: {}\n---\npolicy: {}\n",
		"policy: {require_bundle: yes}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		base := claimmapper.Config{JWKSURLs: []string{"http://127.0.0.1:1/jwks.json"}}
		got, err := Parse("authz.yaml", data, base)
		if err == nil && got == nil {
			t.Fatal("no settings and no error")
		}
		if err != nil && !strings.Contains(err.Error(), "authz.yaml") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}
