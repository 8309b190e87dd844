package authzconfig

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
)

// base is what Temporal's global.authorization contributes in these tests.
var base = claimmapper.Config{JWKSURLs: []string{"https://idp.example/jwks.json"}, PermissionsClaim: "perms"}

func TestParseValid(t *testing.T) {
	bundle := t.TempDir()
	yml := `
jwt:
  issuer: https://keycloak.example/realms/t
  audiences: [temporal]
  permissions_claim: resource_access.temporal-authz.roles
  system_namespace_aliases: [system]
  refresh_interval: 5m
policy:
  bundle: ` + bundle + `
  eval_timeout: 250ms
  decision_cache_size: -1
  decision_path: data.custom.decision
`
	f, err := Parse("authz.yaml", []byte(yml), base)
	if err != nil {
		t.Fatal(err)
	}
	want := base
	want.Issuer = "https://keycloak.example/realms/t"
	want.Audiences = []string{"temporal"}
	want.PermissionsClaim = "resource_access.temporal-authz.roles"
	want.SystemNamespaceAliases = []string{"system"}
	want.RefreshInterval = 5 * time.Minute
	if !reflect.DeepEqual(f.JWT, want) {
		t.Errorf("jwt\n got %+v\nwant %+v", f.JWT, want)
	}
	if !reflect.DeepEqual(f.Policy.Bundle, BundlePaths{bundle}) || f.Policy.EvalTimeout != 250*time.Millisecond || f.Policy.DecisionCacheSize != -1 || f.Policy.DecisionPath != "data.custom.decision" {
		t.Errorf("policy %+v", f.Policy)
	}
}

func TestParseEmptyKeepsBase(t *testing.T) {
	for _, doc := range []string{"", "# nothing\n", "---\n", "jwt:\npolicy:\n"} {
		f, err := Parse("authz.yaml", []byte(doc), base)
		if err != nil {
			t.Fatalf("%q: %v", doc, err)
		}
		if !reflect.DeepEqual(f.JWT, base) || !reflect.DeepEqual(f.Policy, Policy{}) {
			t.Errorf("%q: got %+v", doc, f)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		base claimmapper.Config
		want string
	}{
		{"unknown section", "jwt: {}\npolcy:\n  bundle: x\n",
			base, `authz.yaml:2:1: polcy: unknown key (did you mean "policy"?); the keys allowed at the top level are: decision_logs, grants, jwt, policy, status`},
		{"unknown jwt key", "jwt:\n  isuer: https://x\n",
			base, `authz.yaml:2:3: jwt.isuer: unknown key (did you mean "issuer"?); the keys allowed in jwt are: algorithms, audiences,`},
		{"camelCase key", "policy:\n  evalTimeout: 1s\n",
			base, `authz.yaml:2:3: policy.evalTimeout: unknown key (did you mean "eval_timeout"?); the keys allowed in policy are: bundle, decision_cache_bytes, decision_cache_size, decision_path, eval_timeout, mode, opa_config, require_bundle, require_bundle_timeout, shadow`},
		{"Temporal key in our file", "jwt:\n  keySourceURIs: [https://x]\n",
			base, `authz.yaml:2:3: jwt.keySourceURIs: unknown key; the keys allowed in jwt are:`},
		{"bad duration", "policy:\n  eval_timeout: fast\n",
			base, `authz.yaml:2:17: policy.eval_timeout: expected a duration such as 100ms, 30s or 5m, got "fast"`},
		{"number for duration", "policy:\n  eval_timeout: 100\n",
			base, `authz.yaml:2:17: policy.eval_timeout: expected a duration such as 100ms, 30s or 5m, got "100"`},
		{"bad int", "policy:\n  decision_cache_size: lots\n",
			base, `authz.yaml:2:24: policy.decision_cache_size: expected an integer, got "lots"`},
		{"scalar for list", "jwt:\n  audiences: temporal\n",
			base, `authz.yaml:2:14: jwt.audiences: expected a list of a string, got "temporal"`},
		{"list for string", "jwt:\n  issuer: [a, b]\n",
			base, `authz.yaml:2:11: jwt.issuer: expected a string, got a list`},
		{"bad bool", "jwt:\n  require_exp: maybe\n",
			base, `authz.yaml:2:16: jwt.require_exp: expected true or false, got "maybe"`},
		{"section not a mapping", "policy: strict\n",
			base, `authz.yaml:1:9: policy: expected a mapping of bundle, decision_cache_bytes, decision_cache_size, decision_path, eval_timeout, mode, opa_config, require_bundle, require_bundle_timeout, shadow, got "strict"`},
		{"top level list", "- jwt\n",
			base, `authz.yaml:1:1: expected a mapping with the sections jwt, policy, status, decision_logs and grants, got a list`},
		{"grants: bad enabled", "grants:\n  enabled: sometimes\n",
			base, `authz.yaml:2:12: grants.enabled: expected true or false, got "sometimes"`},
		{"grants: unknown key", "grants:\n  poll: 1s\n",
			base, `authz.yaml:2:3: grants.poll: unknown key`},
		{"grants: poll interval", "grants:\n  poll_interval: 1ms\n",
			base, `authz.yaml:2:18: grants.poll_interval: must be between 100ms and 1m`},
		{"grants: request ttl", "grants:\n  request_ttl: -1h\n",
			base, `authz.yaml:2:16: grants.request_ttl: must be at least 1m`},
		{"grants: retention", "grants:\n  retention: 1h\n",
			base, `authz.yaml:2:14: grants.retention: must be at least 24h`},
		{"grants: namespace", "grants:\n  namespace: temporal-system\n",
			base, `authz.yaml:2:14: grants.namespace: temporal-system is Temporal's own namespace`},
		{"duplicate key", "policy:\n  bundle: a\n  bundle: b\n",
			base, `authz.yaml:3:3: policy.bundle: key appears twice`},
		{"syntax error", "jwt:\n  issuer: [\n",
			base, `authz.yaml: invalid YAML: line 2: did not find expected node content`},
		{"two documents", "jwt: {}\n---\npolicy: {}\n",
			base, `authz.yaml: holds more than one YAML document; put every setting in one`},
		{"negative timeout", "policy:\n  eval_timeout: -1s\n",
			base, `authz.yaml:2:17: policy.eval_timeout: must be positive, e.g. 100ms; got -1s`},
		{"cache bytes", "policy:\n  decision_cache_bytes: -1\n",
			base, `authz.yaml:2:25: policy.decision_cache_bytes: must be a size in bytes, 0 for the default (33554432); got -1`},
		{"cache size", "policy:\n  decision_cache_size: -5\n",
			base, `authz.yaml:2:24: policy.decision_cache_size: must be a number of entries, 0 for the default or -1 to disable; got -5`},
		{"decision path", "policy:\n  decision_path: temporal.authz.decision\n",
			base, `authz.yaml:2:18: policy.decision_path: must be a rule path such as data.temporal.authz.decision; got "temporal.authz.decision"`},
		{"missing bundle", "policy:\n  bundle: /nonexistent/bundle.tar.gz\n",
			base, `authz.yaml:2:11: policy.bundle: /nonexistent/bundle.tar.gz: no such bundle directory or tarball`},
		{"missing opa config", "policy:\n  opa_config: /nonexistent/opa.yaml\n",
			base, `authz.yaml:2:15: policy.opa_config: /nonexistent/opa.yaml: no such file`},
		{"bad require_bundle", "policy:\n  require_bundle: maybe\n",
			base, `authz.yaml:2:19: policy.require_bundle: expected true or false, got "maybe"`},
		{"require_bundle without bundles", "policy:\n  require_bundle: true\n",
			base, `authz.yaml:2:19: policy.require_bundle: needs policy.bundle or policy.opa_config: there is no bundle to wait for`},
		{"negative require timeout", "policy:\n  require_bundle_timeout: -5s\n",
			base, `authz.yaml:2:27: policy.require_bundle_timeout: must be positive, e.g. 30s; got -5s`},
		{"bad require timeout", "policy:\n  require_bundle_timeout: soon\n",
			base, `authz.yaml:2:27: policy.require_bundle_timeout: expected a duration such as 100ms, 30s or 5m, got "soon"`},
		{"unknown status key", "status:\n  adress: 127.0.0.1:1\n",
			base, `authz.yaml:2:3: status.adress: unknown key (did you mean "address"?); the keys allowed in status are: address`},
		{"bad status address", "status:\n  address: localhost\n",
			base, `authz.yaml:2:12: status.address: want host:port such as 127.0.0.1:7253; got "localhost"`},
		{"no key source", "policy: {}\n",
			claimmapper.Config{}, `authz.yaml: jwt: no key source: set jwt.jwks_urls, jwt.jwks_files or jwt.issuer (OIDC discovery) here, or global.authorization.jwtKeyProvider.keySourceURIs in Temporal's config`},
		{"bad jwks url", "jwt:\n  jwks_urls: [ftp://x/jwks]\n",
			base, `authz.yaml:2:14: jwt.jwks_urls[0]: want an absolute http(s) URL, got "ftp://x/jwks"`},
		{"HMAC algorithm", "jwt:\n  algorithms: [ES256, HS256]\n",
			base, `authz.yaml:2:15: jwt.algorithms[1]: HMAC ("HS256") is never accepted from a key set`},
		{"bad regex", "jwt:\n  permissions_regex: '(?P<ns>\\w+)'\n",
			base, `authz.yaml:2:22: jwt.permissions_regex: want named groups (?P<namespace>...) and (?P<role>...)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("authz.yaml", []byte(tc.yaml), tc.base)
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error\n got: %s\nwant: %s...", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

// policy.bundle is one path (a string, named "policy" as always) or a list of
// them (each named policy/<base name>).
func TestParseBundles(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	groups, protected := mk("keycloak-groups"), mk("protected-namespaces")
	tarball := filepath.Join(dir, "acme.tar.gz")
	if err := os.WriteFile(tarball, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	other := mk("other/keycloak-groups")
	tests := []struct {
		name, yaml string
		want       []FileBundle // nil: none
		err        string       // prefix of the error; "" when valid
	}{
		{name: "string", yaml: "bundle: " + groups, want: []FileBundle{{"policy", groups}}},
		{name: "list of one", yaml: "bundle: [" + groups + "]", want: []FileBundle{{"policy", groups}}},
		{name: "list", yaml: "bundle:\n    - " + groups + "\n    - " + protected + "\n    - " + tarball,
			want: []FileBundle{{"policy/keycloak-groups", groups}, {"policy/protected-namespaces", protected}, {"policy/acme", tarball}}},
		{name: "trailing slash", yaml: "bundle: [" + groups + "/, " + protected + "]",
			want: []FileBundle{{"policy/keycloak-groups", groups + "/"}, {"policy/protected-namespaces", protected}}},
		{name: "empty string", yaml: `bundle: ""`},
		{name: "empty list", yaml: "bundle: []"},
		{name: "empty entry", yaml: "bundle:\n    - " + groups + "\n    - ''",
			err: `authz.yaml:4:7: policy.bundle[1]: empty path: give a bundle directory or tarball`},
		{name: "null entry", yaml: "bundle:\n    - " + groups + "\n    -",
			err: `authz.yaml:4:6: policy.bundle[1]: empty entry: give a bundle directory or tarball`},
		{name: "mapping entry", yaml: "bundle:\n    - {path: x}",
			err: `authz.yaml:3:7: policy.bundle[0]: expected a bundle path (a string), got a mapping`},
		{name: "mapping", yaml: "bundle: {path: x}",
			err: `authz.yaml:2:11: policy.bundle: expected a bundle path or a list of them, got a mapping`},
		{name: "duplicate path", yaml: "bundle:\n    - " + groups + "\n    - " + protected + "\n    - " + groups + "/.",
			err: `authz.yaml:5:7: policy.bundle[2]: ` + groups + `/. is given twice (also as ` + groups + `): give each bundle once`},
		{name: "names collide", yaml: "bundle:\n    - " + groups + "\n    - " + other,
			err: `authz.yaml:4:7: policy.bundle[1]: ` + groups + ` and ` + other + ` would both be bundle policy/keycloak-groups (bundles are named after the base name of their path): rename one directory or tarball`},
		{name: "missing one of several", yaml: "bundle:\n    - " + groups + "\n    - /nonexistent/b",
			err: `authz.yaml:4:7: policy.bundle[1]: /nonexistent/b: no such bundle directory or tarball`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("authz.yaml", []byte("policy:\n  "+tc.yaml+"\n"), base)
			if tc.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
					t.Fatalf("error\n got: %v\nwant: %s...", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.Policy.Bundles()
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("bundles %+v (%v), want %+v", got, err, tc.want)
			}
		})
	}
}

func TestStartsWithBundle(t *testing.T) {
	tests := []struct {
		name    string
		bundles BundlePaths
		path    string
		want    bool
	}{
		{"none", nil, "", false},
		{"one on the default decision path", BundlePaths{"a"}, "", false},
		{"one with its own decision path", BundlePaths{"a"}, "data.acme.decision", true},
		{"several", BundlePaths{"a", "b"}, "", true},
	}
	for _, tc := range tests {
		var f File
		f.Policy.Bundle, f.Policy.DecisionPath = tc.bundles, tc.path
		if got := f.StartsWithBundle(); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestFieldErrorIsTyped(t *testing.T) {
	_, err := Parse("a.yaml", []byte("policy:\n  bundel: x\n"), base)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Key != "policy.bundel" || fe.Line != 2 || fe.File != "a.yaml" {
		t.Fatalf("error %#v, want a *FieldError for policy.bundel at line 2", err)
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authz.yaml")
	if _, err := Load(path, base); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("missing file: error %v, want it to name %s", err, path)
	}
	if err := os.WriteFile(path, []byte("jwt:\n  audiences: [temporal]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path, base)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.JWT.Audiences, []string{"temporal"}) || !reflect.DeepEqual(f.JWT.JWKSURLs, base.JWKSURLs) {
		t.Errorf("jwt %+v: want the file's audiences on top of the base key source", f.JWT)
	}
}

func TestParsePolicySources(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("opa.yaml", `
services:
  acme:
    url: https://bundles.acme.example
bundles:
  authz:
    service: acme
    resource: temporal/authz.tar.gz
`)
	for _, d := range []string{"a", "b"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("valid", func(t *testing.T) {
		yml := "policy:\n  bundle: " + dir + "\n  opa_config: " + good + "\n  require_bundle: true\n  require_bundle_timeout: 5s\nstatus:\n  address: 127.0.0.1:7253\n"
		f, err := Parse("authz.yaml", []byte(yml), base)
		if err != nil {
			t.Fatal(err)
		}
		p := f.Policy
		if p.OPAConfig != good || !p.RequireBundle || p.WaitTimeout() != 5*time.Second || f.Status.Address != "127.0.0.1:7253" {
			t.Errorf("got %+v %+v", p, f.Status)
		}
		if p.OPA == nil || !reflect.DeepEqual(p.OPA.Bundles(), []string{"authz"}) {
			t.Errorf("opa config not parsed: %+v", p.OPA)
		}
	})
	t.Run("default timeout", func(t *testing.T) {
		f, err := Parse("authz.yaml", []byte("policy:\n  opa_config: "+good+"\n"), base)
		if err != nil {
			t.Fatal(err)
		}
		if f.Policy.RequireBundle || f.Policy.WaitTimeout() != DefaultRequireBundleTimeout {
			t.Errorf("got %+v", f.Policy)
		}
	})
	errs := []struct {
		name, opa, bundle, want string
	}{
		{"unknown key in the OPA config", "services:\n  acme:\n    url: https://x\n    urll: y\nbundles:\n  a:\n    resource: b\n",
			"", "authz.yaml:2:15: policy.opa_config: " + dir + "/bad.yaml: bundle config: "},
		{"no bundles", "services:\n  acme:\n    url: https://x\n", "", "authz.yaml:2:15: policy.opa_config: " + dir + "/bad.yaml: bundle config: bundles: no bundle configured (and no decision_logs section)"},
		{"name taken", "services:\n  acme:\n    url: https://x\nbundles:\n  policy:\n    resource: b\n",
			dir, "authz.yaml:2:15: policy.opa_config: " + dir + `/bad.yaml: bundle name "policy" is taken by policy.bundle; rename the bundle`},
		{"name taken by one of several", "services:\n  acme:\n    url: https://x\nbundles:\n  policy/b:\n    resource: b\n",
			"[" + dir + "/a, " + dir + "/b]", "authz.yaml:2:15: policy.opa_config: " + dir + `/bad.yaml: bundle name "policy/b" is taken by policy.bundle; rename the bundle`},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			p := write("bad.yaml", tc.opa)
			yml := "policy:\n  opa_config: " + p + "\n"
			if tc.bundle != "" {
				yml += "  bundle: " + tc.bundle + "\n"
			}
			_, err := Parse("authz.yaml", []byte(yml), base)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error\n got: %v\nwant: %s...", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestParseIssuers(t *testing.T) {
	yml := `
jwt:
  audiences: [temporal]
  max_lifetime: 8h
  issuers:
    - issuer: https://keycloak.example/realms/t
      permissions_claim: resource_access.temporal-authz.roles
    - issuer: spiffe://prod.example
      max_lifetime: 1h
      skip_discovery: true
      jwks_files: [/etc/spire/bundle.jwks]
      ca_file: /etc/spire/ca.pem
      audiences: [spiffe://prod.example/temporal]
      subject_claim: sub
      leeway: 30s
`
	f, err := Parse("authz.yaml", []byte(yml), claimmapper.Config{PermissionsClaim: "perms"})
	if err != nil {
		t.Fatal(err)
	}
	got := f.JWT.IssuerConfigs()
	want := []claimmapper.Config{
		{Issuer: "https://keycloak.example/realms/t", Audiences: []string{"temporal"}, PermissionsClaim: "resource_access.temporal-authz.roles", MaxLifetime: 8 * time.Hour},
		{Issuer: "spiffe://prod.example", SkipDiscovery: true, JWKSFiles: []string{"/etc/spire/bundle.jwks"}, CAFile: "/etc/spire/ca.pem",
			Audiences: []string{"spiffe://prod.example/temporal"}, PermissionsClaim: "perms", SubjectClaim: "sub", Leeway: 30 * time.Second, MaxLifetime: time.Hour},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("issuers\n got %+v\nwant %+v", got, want)
	}
}

func TestParseIssuersErrors(t *testing.T) {
	entry := "    - issuer: https://a.example\n      skip_discovery: true\n      jwks_files: [/a.jwks]\n"
	tests := []struct {
		name string
		yaml string
		base claimmapper.Config
		want string
	}{
		{"issuer beside issuers", "jwt:\n  issuer: https://x.example\n  issuers:\n" + entry,
			claimmapper.Config{}, `authz.yaml:4:5: jwt.issuers: set issuer, skip_discovery, jwks_urls and jwks_files in each entry of issuers, not beside issuers`},
		{"Temporal's key sources with issuers", "jwt:\n  issuers:\n" + entry,
			base, `authz.yaml:3:5: jwt.issuers: global.authorization.jwtKeyProvider.keySourceURIs in Temporal's config names key sources, which jwt.issuers cannot use`},
		{"entry without issuer", "jwt:\n  issuers:\n" + entry + "    - jwks_files: [/b.jwks]\n",
			claimmapper.Config{}, `authz.yaml:6:7: jwt.issuers[1].issuer: want the issuer (the tokens' iss) of every entry, got none`},
		{"issuer listed twice", "jwt:\n  issuers:\n" + entry + entry,
			claimmapper.Config{}, `authz.yaml:6:15: jwt.issuers[1].issuer: "https://a.example" is listed twice (also issuers[0]); merge the entries`},
		{"entry without key source", "jwt:\n  issuers:\n    - issuer: spiffe://b\n      skip_discovery: true\n",
			claimmapper.Config{}, `authz.yaml:3:7: jwt.issuers[0]: no key source: set jwks_urls, jwks_files or issuer (OIDC discovery) in this entry`},
		{"bad value in an entry", "jwt:\n  issuers:\n" + entry + "      algorithms: [HS256]\n",
			claimmapper.Config{}, `authz.yaml:6:19: jwt.issuers[0].algorithms[0]: HMAC ("HS256") is never accepted from a key set`},
		{"unknown key in an entry", "jwt:\n  issuers:\n" + entry + "      audience: [x]\n",
			claimmapper.Config{}, `authz.yaml:6:7: jwt.issuers[0].audience: unknown key (did you mean "audiences"?)`},
		{"nested issuers", "jwt:\n  issuers:\n" + entry + "      issuers: [{issuer: https://b.example}]\n",
			claimmapper.Config{}, `authz.yaml:6:16: jwt.issuers[0].issuers: an entry cannot list issuers itself`},
		{"ca_file not a string", "jwt:\n  issuers:\n" + entry + "      ca_file: [a.pem]\n",
			claimmapper.Config{}, `authz.yaml:6:16: jwt.issuers[0].ca_file: expected a string, got a list`},
		{"issuers not a list", "jwt:\n  issuers: https://a.example\n",
			claimmapper.Config{}, `authz.yaml:2:12: jwt.issuers: expected a list of a mapping, got "https://a.example"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("authz.yaml", []byte(tc.yaml), tc.base)
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error\n got: %s\nwant: %s...", err, tc.want)
			}
		})
	}
}

func TestParseGrants(t *testing.T) {
	f, err := Parse("authz.yaml", []byte("grants:\n  enabled: false\n  namespace: my-grants\n  poll_interval: 2s\n  request_ttl: 1h\n  retention: 48h\n"), base)
	if err != nil {
		t.Fatal(err)
	}
	g := f.Grants
	if f.GrantsEnabled(true) || g.Namespace != "my-grants" || g.PollInterval != 2*time.Second || g.RequestTTL != time.Hour || g.Retention != 48*time.Hour {
		t.Fatalf("grants %+v", g)
	}
	f, err = Parse("authz.yaml", []byte("jwt: {}\n"), base)
	if err != nil {
		t.Fatal(err)
	}
	if !f.GrantsEnabled(true) || f.GrantsEnabled(false) {
		t.Fatal("unset grants.enabled should follow the internal-frontend")
	}
}
