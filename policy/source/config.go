package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"

	opaconfig "github.com/open-policy-agent/opa/v1/config"
	"github.com/open-policy-agent/opa/v1/keys"
	"github.com/open-policy-agent/opa/v1/logging"
	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/open-policy-agent/opa/v1/plugins/rest"
	"github.com/open-policy-agent/opa/v1/util"

	bundleplugin "github.com/open-policy-agent/opa/v1/plugins/bundle"
)

// Config is the bundle part of a standard OPA configuration: its services,
// bundles and keys sections. Make one with [ParseConfig]; start its sources
// with [Open].
type Config struct {
	services map[string]json.RawMessage // service name to its OPA config
	keys     map[string]*keys.Config
	bundles  map[string]*bundleplugin.Source
	raw      []byte // the whole configuration, as JSON
	logs     bool   // it has a decision_logs section
}

// JSON returns the whole configuration as JSON, for the decision logger.
func (c *Config) JSON() []byte { return c.raw }

// DecisionLogs reports whether the configuration has a decision_logs section.
func (c *Config) DecisionLogs() bool { return c.logs }

// ConfigError is a setting of a bundle configuration that cannot work. Key is
// the setting's path, such as bundles.authz.service.
type ConfigError struct {
	Key string
	Err error
}

func (e *ConfigError) Error() string {
	if e.Key == "" {
		return "bundle config: " + e.Err.Error()
	}
	return "bundle config: " + e.Key + ": " + e.Err.Error()
}

func (e *ConfigError) Unwrap() error { return e.Err }

func configErr(key, format string, args ...any) *ConfigError {
	return &ConfigError{Key: key, Err: fmt.Errorf(format, args...)}
}

// supportedSections are the top-level keys of an OPA configuration that
// temporal-opa reads: bundle sources read services, bundles and keys; the
// decision logger (package policy/decisionlog) reads decision_logs, services
// and labels.
var supportedSections = []string{"bundles", "decision_logs", "keys", "labels", "services"}

// ParseConfig reads the services, bundles and keys of an OPA configuration,
// YAML or JSON. It validates them with OPA's own parsers and then checks what
// OPA would only find out at run time (an unknown service or key, a service
// without a URL), so that every error names the setting. Other sections of an
// OPA configuration (decision_logs, discovery, ...) and unknown keys are errors.
func ParseConfig(data []byte) (*Config, error) {
	var doc any
	if err := util.Unmarshal(data, &doc); err != nil {
		return nil, &ConfigError{Err: fmt.Errorf("not YAML or JSON: %w", err)}
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return nil, &ConfigError{Err: fmt.Errorf("want a mapping with the sections %s", strings.Join(supportedSections, ", "))}
	}
	for _, k := range slices.Sorted(maps.Keys(top)) {
		if k == "bundle" {
			return nil, configErr(k, "the single-bundle section is deprecated in OPA and not supported here; use bundles: {NAME: {service: ..., resource: ...}}")
		}
		if !slices.Contains(supportedSections, k) {
			return nil, configErr(k, "not supported by temporal-opa bundle sources (they read %s)", strings.Join(supportedSections, ", "))
		}
	}
	raw, err := json.Marshal(top)
	if err != nil {
		return nil, &ConfigError{Err: err}
	}
	parsed, err := opaconfig.ParseConfig(raw, "temporal-opa")
	if err != nil {
		return nil, &ConfigError{Err: err}
	}
	if len(parsed.Warnings) > 0 {
		return nil, &ConfigError{Err: errors.New(strings.Join(parsed.Warnings, "; "))}
	}

	c := &Config{services: map[string]json.RawMessage{}, keys: map[string]*keys.Config{}, raw: raw}
	if dl, ok := top["decision_logs"]; ok && dl != nil {
		c.logs = true
	}
	if len(parsed.Keys) > 0 {
		if c.keys, err = keys.ParseKeysConfig(parsed.Keys); err != nil {
			return nil, configErr("keys", "%w", err)
		}
	}
	if len(parsed.Services) > 0 {
		if c.services, err = parseServices(parsed.Services); err != nil {
			return nil, err
		}
	}
	if len(parsed.Bundles) == 0 || string(parsed.Bundles) == "null" {
		if c.logs {
			return c, nil // decision logs only
		}
		return nil, configErr("bundles", "no bundle configured (and no decision_logs section)")
	}
	if err := c.precheckBundles(parsed.Bundles); err != nil {
		return nil, err
	}
	bc, err := bundleplugin.NewConfigBuilder().
		WithBytes(parsed.Bundles).
		WithServices(slices.Sorted(maps.Keys(c.services))).
		WithKeyConfigs(c.keys).
		Parse()
	if err != nil {
		return nil, configErr("bundles", "%w", err)
	}
	c.bundles = bc.Bundles
	for name, src := range c.bundles {
		if *src.Trigger != plugins.TriggerPeriodic {
			return nil, configErr("bundles."+name+".trigger", "%q is not supported: nothing would trigger the download; use periodic (the default)", *src.Trigger)
		}
		if d := src.Polling.MinDelaySeconds; d != nil && *d < 1 {
			return nil, configErr("bundles."+name+".polling.min_delay_seconds", "must be at least 1: %d would poll the service without pause", *d)
		}
		if src.Persist {
			return nil, configErr("bundles."+name+".persist", "not supported: a server without its bundle starts on the embedded default policy, or fails with a required bundle")
		}
	}
	return c, nil
}

// LoadConfig reads the OPA configuration file at path with ParseConfig; its
// errors name the file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bundle config: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// parseServices reads the services section as OPA does: a map of name to
// service, or a list of services with a name each.
func parseServices(raw json.RawMessage) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	var list []json.RawMessage
	var obj map[string]json.RawMessage
	switch {
	case util.Unmarshal(raw, &list) == nil:
		for i, s := range list {
			var named struct {
				Name string `json:"name"`
			}
			if err := util.Unmarshal(s, &named); err != nil || named.Name == "" {
				return nil, configErr(fmt.Sprintf("services[%d].name", i), "missing: a service in a list needs a name")
			}
			if _, dup := out[named.Name]; dup {
				return nil, configErr(fmt.Sprintf("services[%d].name", i), "service %q is defined twice", named.Name)
			}
			out[named.Name] = s
		}
	case util.Unmarshal(raw, &obj) == nil:
		maps.Copy(out, obj)
	default:
		return nil, configErr("services", "want a map of service name to service, or a list of services")
	}
	for name, s := range out {
		var sc rest.Config
		if err := util.Unmarshal(s, &sc); err != nil {
			return nil, configErr("services."+name, "%w", err)
		}
		u, err := url.Parse(sc.URL)
		if sc.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, configErr("services."+name+".url", "want an http or https URL such as https://bundles.example.com; got %q", RedactURL(sc.URL))
		}
		if sc.Credentials.Plugin != nil {
			return nil, configErr("services."+name+".credentials.plugin", "custom OPA auth plugins are not available in temporal-opa; use bearer, oauth2, client_tls, s3_signing, gcp_metadata or azure_managed_identity")
		}
		if strings.EqualFold(sc.Type, "oci") {
			return nil, configErr("services."+name+".type", "OCI registries are not supported; serve the bundle over HTTP")
		}
		if _, err := sc.AuthPlugin(nil); err != nil {
			return nil, configErr("services."+name+".credentials", "%w", err)
		}
	}
	return out, nil
}

// precheckBundles finds the mistakes OPA reports without naming the setting,
// or not at all (it picks the first of several services at random).
func (c *Config) precheckBundles(raw json.RawMessage) error {
	var bundles map[string]*struct {
		Service  string `json:"service"`
		Resource string `json:"resource"`
		Signing  *struct {
			KeyID string `json:"keyid"`
		} `json:"signing"`
	}
	if err := util.Unmarshal(raw, &bundles); err != nil {
		return configErr("bundles", "want a map of bundle name to bundle: %w", err)
	}
	services := slices.Sorted(maps.Keys(c.services))
	keyIDs := slices.Sorted(maps.Keys(c.keys))
	for _, name := range slices.Sorted(maps.Keys(bundles)) {
		b := bundles[name]
		if b == nil {
			return configErr("bundles."+name, "empty; set service and resource")
		}
		if b.Signing != nil && b.Signing.KeyID != "" && c.keys[b.Signing.KeyID] == nil {
			return configErr("bundles."+name+".signing.keyid", "unknown key %q; %s", b.Signing.KeyID, defined("keys", keyIDs))
		}
		if isFileURL(b.Resource) {
			if _, err := url.Parse(b.Resource); err != nil {
				return configErr("bundles."+name+".resource", "%w", err)
			}
			if b.Signing != nil {
				return configErr("bundles."+name+".signing", "signature verification of file:// bundles is not supported; serve signed bundles over HTTP, or drop signing for this local bundle")
			}
			continue
		}
		switch {
		case b.Service == "" && len(services) == 0:
			return configErr("bundles."+name+".service", "missing, and no services are defined: add a services section, or give a local bundle as resource: file:///path/to/bundle")
		case b.Service == "" && len(services) > 1:
			return configErr("bundles."+name+".service", "missing; required when more than one service is defined (%s)", strings.Join(services, ", "))
		case b.Service != "" && c.services[b.Service] == nil:
			return configErr("bundles."+name+".service", "unknown service %q; %s", b.Service, defined("services", services))
		}
	}
	return nil
}

func defined(what string, names []string) string {
	if len(names) == 0 {
		return "no " + what + " are defined"
	}
	return what + " defined: " + strings.Join(names, ", ")
}

func isFileURL(resource string) bool { return strings.HasPrefix(resource, "file://") }

// Bundles returns the names of the configured bundles, sorted.
func (c *Config) Bundles() []string { return slices.Sorted(maps.Keys(c.bundles)) }

// Set is the running sources of a Config.
type Set struct {
	sources []Source
}

// Open starts one source per bundle of cfg, each giving its bundles to sink
// under the bundle's name. A file:// bundle is loaded and activated before Open
// returns, and its error is returned; remote bundles are downloaded in the
// background: use WaitReady to wait for them. ctx bounds the first activations.
func Open(ctx context.Context, sink Sink, cfg *Config, opts Options) (*Set, error) {
	if cfg == nil || sink == nil {
		return nil, errors.New("bundle sources: nil config or sink")
	}
	log := opts.logger()
	level := logging.Info
	if log.Enabled(ctx, slog.LevelDebug) {
		level = logging.Debug
	}
	// OPA's REST client logs request URLs (at debug level): redacted.
	opaLog := logging.NewLoggerFromSlogHandler(redactingHandler{log.Handler()}, level)
	s := &Set{}
	var remotes []*Remote
	for _, name := range cfg.Bundles() {
		src := cfg.bundles[name]
		if isFileURL(src.Resource) {
			u, _ := url.Parse(src.Resource) // checked by ParseConfig
			f, err := NewFile(ctx, sink, name, u.Path, opts)
			if err != nil {
				_ = s.Close()
				return nil, err
			}
			s.sources = append(s.sources, f)
			continue
		}
		client, err := rest.New(cfg.services[src.Service], cfg.keys, rest.Name(src.Service), rest.Logger(opaLog))
		if err != nil {
			_ = s.Close()
			return nil, configErr("services."+src.Service, "%w", err)
		}
		r := newRemote(sink, name, src, client, log, opts.OnLoadError)
		s.sources = append(s.sources, r)
		remotes = append(remotes, r)
	}
	for _, r := range remotes {
		r.start()
	}
	return s, nil
}

// Sources returns the running sources, sorted by name.
func (s *Set) Sources() []Source { return slices.Clone(s.sources) }

// Status returns the status of every source, sorted by name.
func (s *Set) Status() []Status {
	out := make([]Status, len(s.sources))
	for i, src := range s.sources {
		out[i] = src.Status()
	}
	return out
}

// WaitReady blocks until every source has activated a bundle, or ctx is done:
// then it returns the *NotReadyError of each source still waiting.
func (s *Set) WaitReady(ctx context.Context) error {
	var errs []error
	for _, src := range s.sources {
		if err := src.WaitReady(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close stops every source and waits for their goroutines.
func (s *Set) Close() error {
	var errs []error
	for _, src := range s.sources {
		errs = append(errs, src.Close())
	}
	return errors.Join(errs...)
}
