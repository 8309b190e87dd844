package source_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/temporal-opa/temporal-opa/policy/source"
)

func TestParseConfig(t *testing.T) {
	cfg, err := source.ParseConfig([]byte(`
services:
  acme:
    url: https://bundles.acme.example
    credentials:
      bearer:
        token: secret
  backup:
    url: https://backup.acme.example/
bundles:
  authz:
    service: acme
    resource: temporal/authz.tar.gz
    polling:
      min_delay_seconds: 10
      max_delay_seconds: 20
      long_polling_timeout_seconds: 60
    signing:
      keyid: release
  local:
    resource: file:///etc/temporal-opa/bundle
keys:
  release:
    algorithm: ES256
    key: "-----BEGIN PUBLIC KEY-----\nMFkw...\n-----END PUBLIC KEY-----\n"
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Bundles(), ","); got != "authz,local" {
		t.Errorf("bundles %s", got)
	}
}

func TestParseConfigErrors(t *testing.T) {
	const svc = "services:\n  acme:\n    url: https://a.example\n  backup:\n    url: https://b.example\n"
	tests := []struct {
		name string
		yaml string
		key  string // ConfigError.Key
		want string
	}{
		{name: "unknown service", key: "bundles.authz.service",
			yaml: svc + "bundles:\n  authz:\n    service: foo\n    resource: x.tar.gz\n",
			want: `bundles.authz.service: unknown service "foo"; services defined: acme, backup`},
		{name: "service missing with several services", key: "bundles.authz.service",
			yaml: svc + "bundles:\n  authz:\n    resource: x.tar.gz\n",
			want: "required when more than one service is defined (acme, backup)"},
		{name: "no services at all", key: "bundles.authz.service",
			yaml: "bundles:\n  authz:\n    resource: x.tar.gz\n",
			want: "no services are defined"},
		{name: "unknown signing key", key: "bundles.authz.signing.keyid",
			yaml: svc + "bundles:\n  authz:\n    service: acme\n    signing:\n      keyid: nope\nkeys:\n  release:\n    key: abc\n",
			want: `unknown key "nope"; keys defined: release`},
		{name: "signing without keys", key: "bundles",
			yaml: svc + "bundles:\n  authz:\n    service: acme\n    signing:\n      scope: write\n",
			want: "no verification keys configured"},
		{name: "unsupported key algorithm", key: "keys",
			yaml: svc + "bundles:\n  authz:\n    service: acme\nkeys:\n  release:\n    key: abc\n    algorithm: XS256\n",
			want: "unsupported algorithm 'XS256'"},
		{name: "service without url", key: "services.acme.url",
			yaml: "services:\n  acme:\n    headers:\n      x: y\nbundles:\n  authz:\n    service: acme\n",
			want: "want an http or https URL"},
		{name: "min delay above max delay", key: "bundles",
			yaml: svc + "bundles:\n  authz:\n    service: acme\n    polling:\n      min_delay_seconds: 20\n      max_delay_seconds: 10\n",
			want: "max polling delay must be >= min polling delay"},
		{name: "typo in polling", key: "",
			yaml: svc + "bundles:\n  authz:\n    service: acme\n    polling:\n      min_delay_secnods: 20\n",
			want: "min_delay_secnods"},
		{name: "polling without pause", key: "bundles.authz.polling.min_delay_seconds",
			yaml: svc + "bundles:\n  authz:\n    service: acme\n    polling:\n      min_delay_seconds: 0\n      max_delay_seconds: 0\n",
			want: "must be at least 1"},
		{name: "manual trigger", key: "bundles.authz.trigger",
			yaml: svc + "bundles:\n  authz:\n    service: acme\n    trigger: manual\n",
			want: "use periodic"},
		{name: "persist", key: "bundles.authz.persist",
			yaml: svc + "bundles:\n  authz:\n    service: acme\n    persist: true\n",
			want: "not supported"},
		{name: "two credentials", key: "services.acme.credentials",
			yaml: "services:\n  acme:\n    url: https://a.example\n    credentials:\n      bearer:\n        token: x\n      client_tls:\n        cert: c\n        private_key: k\nbundles:\n  authz:\n    service: acme\n",
			want: "a maximum one credential method must be specified"},
		{name: "signed file bundle", key: "bundles.local.signing",
			yaml: "bundles:\n  local:\n    resource: file:///tmp/b\n    signing:\n      keyid: release\nkeys:\n  release:\n    key: abc\n",
			want: "signature verification of file:// bundles is not supported"},
		{name: "discovery section", key: "discovery",
			yaml: svc + "bundles:\n  authz:\n    service: acme\ndiscovery:\n  service: acme\n",
			want: "not supported by temporal-opa bundle sources"},
		{name: "legacy bundle section", key: "bundle",
			yaml: svc + "bundle:\n  name: authz\n  service: acme\n",
			want: "use bundles:"},
		{name: "no bundles", key: "bundles", yaml: svc, want: "no bundle configured"},
		{name: "not a mapping", key: "", yaml: "- a\n- b\n", want: "want a mapping"},
		{name: "not YAML", key: "", yaml: "bundles: [\n", want: "not YAML or JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := source.ParseConfig([]byte(tc.yaml))
			var ce *source.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v, want a *source.ConfigError", err)
			}
			if ce.Key != tc.key || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q (key %q), want key %q and a message with %q", err, ce.Key, tc.key, tc.want)
			}
		})
	}
}

// FuzzParseConfig feeds arbitrary OPA configurations to the parser: it must never
// panic, and must return a configuration exactly when it returns no error.
func FuzzParseConfig(f *testing.F) {
	for _, seed := range []string{
		"",
		"services:\n  acme:\n    url: https://bundles.example\nbundles:\n  authz:\n    service: acme\n    resource: b.tar.gz\n",
		"bundles:\n  local:\n    resource: file:///etc/bundle\n",
		"services: [{name: acme, url: http://x}]\nbundles: {authz: {service: acme, signing: {keyid: k}}}\nkeys: {k: {algorithm: ES256, key: x}}\n",
		"{\"services\": {\"a\": {\"url\": \"http://a\"}}, \"bundles\": {\"b\": {\"service\": \"nope\"}}}",
		"decision_logs: {console: true}\n",
		"bundles: {b: {service: a, polling: {min_delay_seconds: 0}}}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := source.ParseConfig(data)
		if (err == nil) != (cfg != nil) {
			t.Fatalf("config %v with error %v", cfg, err)
		}
	})
}

// TestParseConfigDecisionLogs: a decision_logs section is accepted, with or
// without bundles, and the whole configuration is kept for the decision logger.
func TestParseConfigDecisionLogs(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		bundles    int
	}{
		{"with bundles", "services:\n  acme:\n    url: https://a.example\nbundles:\n  authz:\n    service: acme\ndecision_logs:\n  service: acme\n", 1},
		{"logs only", "decision_logs:\n  console: true\nlabels:\n  cluster: prod\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := source.ParseConfig([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if !cfg.DecisionLogs() || len(cfg.Bundles()) != tc.bundles || !strings.Contains(string(cfg.JSON()), `"decision_logs"`) {
				t.Fatalf("DecisionLogs %v, bundles %v, JSON %s", cfg.DecisionLogs(), cfg.Bundles(), cfg.JSON())
			}
		})
	}
}
