// Package authzconfig reads temporal-opa's own settings file, the --authz FILE of
// "temporal-opa start" (and "eval"): how tokens are verified and mapped to
// Temporal roles (the jwt section, see package claimmapper), which policy
// decides and where its bundles come from (the policy section, see packages
// policy and policy/source), and where the status endpoint listens (status).
//
//	# authz.yaml
//	jwt:
//	  issuer: https://keycloak.example/realms/temporal
//	  audiences: [temporal]
//	  permissions_claim: resource_access.temporal-authz.roles
//	  system_namespace_aliases: [system]
//	policy:
//	  bundle: /etc/temporal-opa/bundle.tar.gz   # watched: changes are picked up; or a list of several
//	  opa_config: /etc/temporal-opa/opa.yaml    # remote bundles (OPA's services, bundles, keys)
//	  require_bundle: true
//	  require_bundle_timeout: 30s
//	  eval_timeout: 100ms
//	status:
//	  address: 127.0.0.1:7253
//
// The file is read strictly: an unknown key, a key given twice or a value of the
// wrong type stops start-up with an error naming the file, the line, the key and
// what is expected there. Settings of the jwt section are layered on those taken
// from Temporal's global.authorization (claimmapper.FromTemporal): a key set in
// this file wins. Several issuers are listed under jwt.issuers, each entry
// with its own issuer and key sources (the other jwt keys beside issuers are
// defaults for every entry); see claimmapper.Config.Issuers.
package authzconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
	"gopkg.in/yaml.v3"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
	"github.com/temporal-opa/temporal-opa/policy/source"
	"github.com/temporal-opa/temporal-opa/server/internal/cli"
)

// File is the content of an authz settings file.
type File struct {
	// JWT configures the claim mapper: key sources, issuer, audiences, claims.
	JWT claimmapper.Config `yaml:"jwt"`
	// Policy configures the authorizer and its bundle sources.
	Policy Policy `yaml:"policy"`
	// Status configures the status endpoint.
	Status Status `yaml:"status"`
	// DecisionLogs tunes decision logging; where the events go is the
	// decision_logs section of policy.opa_config (OPA's own format).
	DecisionLogs DecisionLogs `yaml:"decision_logs"`
	// Grants configures time-bound access grants (the grant service).
	Grants Grants `yaml:"grants"`
}

// Grants is the grants section: time-bound access grants, each a workflow in
// the grants namespace, requested, approved and revoked with `temporal-opa
// grant`, followed by every frontend.
//
//	grants:
//	  enabled: true            # default: on when the Temporal config has an internal-frontend
//	  namespace: temporal-opa-grants
//	  poll_interval: 1s        # how often each frontend lists the grants
//	  request_ttl: 24h         # a request not approved within it expires
//	  retention: 168h          # how long the namespace keeps ended grants (when registered by the server)
type Grants struct {
	// Enabled turns the grant service on or off; unset, it is on when the
	// server has an internal-frontend (start-dev always has one).
	Enabled *bool `yaml:"enabled"`
	// Namespace holds the grants; "" is temporal-opa-grants.
	Namespace string `yaml:"namespace"`
	// PollInterval is how often each frontend lists the grants (0: 1s).
	PollInterval time.Duration `yaml:"poll_interval"`
	// RequestTTL bounds how long a request waits for an approval (0: 24h).
	RequestTTL time.Duration `yaml:"request_ttl"`
	// Retention is the grants namespace's retention when the server registers
	// it (0: 7 days).
	Retention time.Duration `yaml:"retention"`
}

// GrantsEnabled reports whether the grant service runs, given whether the
// server has an internal-frontend.
func (f *File) GrantsEnabled(hasInternalFrontend bool) bool {
	if f.Grants.Enabled != nil {
		return *f.Grants.Enabled
	}
	return hasInternalFrontend
}

// DefaultFlushTimeout bounds how long stopping the server waits for queued
// decision-log events to be written and uploaded.
const DefaultFlushTimeout = 10 * time.Second

// DecisionLogs is the decision_logs section.
type DecisionLogs struct {
	// KeepPayloads keeps task tokens and payloads (workflow inputs, results,
	// memos, headers...), Nexus headers and failure messages in the events'
	// input.request; by default they are erased.
	KeepPayloads bool `yaml:"keep_payloads"`
	// KeepClaims keeps every claim of the caller's token in the events'
	// input.claims.jwt; by default only the claims the policy reads.
	KeepClaims bool `yaml:"keep_claims"`
	// QueueSize bounds the events waiting to be logged (0: 50000); when full,
	// events are dropped and counted in /status.
	QueueSize int `yaml:"queue_size"`
	// FlushTimeout bounds the flush at shutdown (0: DefaultFlushTimeout).
	FlushTimeout time.Duration `yaml:"flush_timeout"`

	// Console, with ForceConsole, receives console events whatever the OPA
	// configuration says (start-dev --decision-log); nil is standard output.
	Console      io.Writer `yaml:"-"`
	ForceConsole bool      `yaml:"-"`
}

// DecisionLogsEnabled reports whether decisions are logged: forced to the console, or a
// decision_logs section in policy.opa_config.
func (f *File) DecisionLogsEnabled() bool {
	return f.DecisionLogs.ForceConsole || (f.Policy.OPA != nil && f.Policy.OPA.DecisionLogs())
}

// Flush is FlushTimeout or its default.
func (d DecisionLogs) Flush() time.Duration {
	if d.FlushTimeout <= 0 {
		return DefaultFlushTimeout
	}
	return d.FlushTimeout
}

// Status is the status section.
type Status struct {
	// Address is the host:port of the HTTP status endpoint (GET /status,
	// GET /healthz). Empty: no endpoint. Keep it on loopback or a private
	// network: it shows policy revisions and errors (never credentials).
	Address string `yaml:"address"`
}

// DefaultRequireBundleTimeout is how long start-up waits for the bundles when
// policy.require_bundle is set and policy.require_bundle_timeout is not.
const DefaultRequireBundleTimeout = 30 * time.Second

// Policy is the policy section: the authorizer's options and where the policy comes from.
type Policy struct {
	policy.Options `yaml:",inline"`
	// Bundle is a bundle directory or an `opa build` tarball layered on the
	// embedded default policy, watched: a change on disk is activated within
	// about a second. Several (a list in YAML) are active together, each
	// watched and activated on its own under its name (see FileBundles); their
	// roots must not overlap. Empty: the embedded default alone.
	Bundle BundlePaths `yaml:"bundle"`
	// Shadow is a bundle directory or tarball layered on the embedded default
	// and decided beside the enforced policy on every call, off the request
	// path, without changing any result (package policy/shadow); watched like
	// Bundle. Empty: no shadow policy.
	Shadow string `yaml:"shadow"`
	// OPAConfig is a standard OPA configuration file whose services, bundles and
	// keys sections name remote bundle servers (see package policy/source).
	OPAConfig string `yaml:"opa_config"`
	// RequireBundle makes start-up wait until every bundle source has activated
	// a bundle, and fail when one has not after RequireBundleTimeout. Without
	// it the server starts on what has loaded (at least the embedded default).
	RequireBundle bool `yaml:"require_bundle"`
	// RequireBundleTimeout bounds that wait: 0 means DefaultRequireBundleTimeout.
	RequireBundleTimeout time.Duration `yaml:"require_bundle_timeout"`

	// OPA is OPAConfig parsed, set by Load and Parse.
	OPA *source.Config `yaml:"-"`
}

// WaitTimeout is RequireBundleTimeout or its default.
func (p Policy) WaitTimeout() time.Duration {
	if p.RequireBundleTimeout <= 0 {
		return DefaultRequireBundleTimeout
	}
	return p.RequireBundleTimeout
}

// FileBundleName is the bundle name under which policy.bundle is activated
// (and shown in status) when it names one bundle; several are named
// FileBundleName/<base name> (see FileBundles).
const FileBundleName = "policy"

// StartsWithBundle reports whether the authorizer of these settings starts
// with the bundles of policy.bundle already active, activated together: when
// the decision path is not the default's (the embedded default alone has no
// rule there), and when there are several (the file sources then activate
// them one at a time, each beside the others).
func (f File) StartsWithBundle() bool {
	d := f.Policy.DecisionPath
	n := len(f.Policy.Bundle)
	return n > 1 || (n == 1 && d != "" && d != policy.DefaultDecisionPath)
}

// BundleError is a bundle of policy.bundle that did not load, or whose files
// the error of an activation of several names.
type BundleError struct {
	Path string
	Err  error
}

func (e *BundleError) Error() string { return fmt.Sprintf("policy bundle %s: %v", e.Path, e.Err) }

func (e *BundleError) Unwrap() error { return e.Err }

// NewAuthorizer builds the Authorizer of these settings as the server starts
// it, with opts (the settings' policy options, with the caller's logger and
// recorder): on the embedded default policy, with policy.bundle loaded and
// activated first, together, under their names (FileBundles) when
// StartsWithBundle. The server, and the offline commands that decide as it
// does (eval, explain, can-i, replay), build their authorizers here, so that
// decision paths, bundle names and revisions are the same; they then activate
// their bundles under the same names (SetBundle(name, ...) or SetBundles). A
// bundle that does not load is a *BundleError, and so is a failed activation of
// several whose error names files of one of them only.
func (f File) NewAuthorizer(opts policy.Options) (*policy.Authorizer, error) {
	first := map[string]*bundle.Bundle{}
	var fbs []FileBundle
	if f.StartsWithBundle() {
		var err error
		if fbs, err = f.Policy.Bundles(); err != nil {
			return nil, err
		}
		for _, fb := range fbs {
			b, err := policy.LoadBundle(fb.Path)
			if err != nil {
				return nil, &BundleError{Path: fb.Path, Err: err}
			}
			first[fb.Name] = b
		}
	}
	az, err := policy.NewAuthorizer(opts, first)
	if err != nil && len(fbs) > 1 {
		if path := blame(err, fbs, first); path != "" {
			return nil, &BundleError{Path: path, Err: err}
		}
	}
	return az, err
}

// blame is the path of the one bundle whose files err names ("/file.rego:3"),
// or "" when it names none or files of several.
func blame(err error, fbs []FileBundle, loaded map[string]*bundle.Bundle) string {
	msg, path := err.Error(), ""
	for _, fb := range fbs {
		for _, m := range loaded[fb.Name].Modules {
			if strings.Contains(msg, m.Path+":") {
				if path != "" && path != fb.Path {
					return ""
				}
				path = fb.Path
			}
		}
	}
	return path
}

// Load reads the file at path. The jwt section is decoded on top of base (the
// settings taken from Temporal's own config); a missing file section leaves
// base as it is. The result is validated.
func Load(path string, base claimmapper.Config) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("authz settings: %w", err)
	}
	return Parse(path, data, base)
}

// Parse is Load on data already read; name is used in error messages.
func Parse(name string, data []byte, base claimmapper.Config) (*File, error) {
	f := &File{JWT: base}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return f, f.validate(name, nil) // empty file: all defaults
		}
		return nil, fmt.Errorf("%s: %s", name, yamlSyntax(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: holds more than one YAML document; put every setting in one", name)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return f, f.validate(name, nil)
	}
	if root.Kind != yaml.MappingNode {
		return nil, &FieldError{File: name, Line: root.Line, Column: root.Column,
			Msg: "expected a mapping with the sections jwt, policy, status, decision_logs and grants, got " + describe(root)}
	}
	if err := (checker{file: name}).check(root, reflect.TypeFor[File](), ""); err != nil {
		return nil, err
	}
	// The check above found every problem yaml.v3 reports; decoding strictly
	// still guards against anything it missed.
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(f); err != nil {
		return nil, fmt.Errorf("%s: %s", name, yamlSyntax(err))
	}
	return f, f.validate(name, root)
}

var cmKeyRE = regexp.MustCompile(`^claimmapper: config ((?:issuers\[\d+\]\.)?[a-z_/]+)(\[\d+\])?: (.*)$`)

// validate checks values, naming the file and, where found, the key's line.
func (f *File) validate(name string, root *yaml.Node) error {
	var errs []error
	if err := f.JWT.Validate(); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			m := cmKeyRE.FindStringSubmatch(line)
			if m == nil {
				errs = append(errs, fmt.Errorf("%s: jwt: %s", name, line))
				continue
			}
			key, idx, msg := m[1], m[2], m[3]
			fe := &FieldError{File: name, Key: "jwt." + key + idx, Msg: msg}
			entry, field, inEntry := cutIssuerEntry(key)
			if key == "issuers" && !f.fileSetsKeySource(root) {
				fe.Msg = "global.authorization.jwtKeyProvider.keySourceURIs in Temporal's config names key sources, " +
					"which jwt.issuers cannot use: remove them there and name each issuer's key sources in its entry"
			}
			switch n := lookup(root, append([]string{"jwt"}, strings.Split(key, ".")...)...); {
			case n != nil:
				fe.Line, fe.Column = n.Line, n.Column
			case inEntry:
				if n := lookupIssuer(root, entry); n != nil {
					fe.Line, fe.Column = n.Line, n.Column
				}
				if field == "issuer/jwks_urls/jwks_files" {
					fe.Key = fmt.Sprintf("jwt.issuers[%d]", entry)
					fe.Msg = "no key source: set jwks_urls, jwks_files or issuer (OIDC discovery) in this entry"
				}
			case key == "issuer/jwks_urls/jwks_files":
				fe.Key = "jwt"
				fe.Msg = "no key source: set jwt.jwks_urls, jwt.jwks_files or jwt.issuer (OIDC discovery) here, " +
					"or global.authorization.jwtKeyProvider.keySourceURIs in Temporal's config"
			}
			errs = append(errs, fe)
		}
	}
	p := f.Policy
	if p.EvalTimeout < 0 {
		errs = append(errs, f.fieldErr(name, root, "eval_timeout", fmt.Sprintf("must be positive, e.g. 100ms; got %s", p.EvalTimeout)))
	}
	if p.DecisionCacheSize < -1 {
		errs = append(errs, f.fieldErr(name, root, "decision_cache_size", fmt.Sprintf("must be a number of entries, 0 for the default or -1 to disable; got %d", p.DecisionCacheSize)))
	}
	if p.DecisionCacheBytes < 0 {
		errs = append(errs, f.fieldErr(name, root, "decision_cache_bytes", fmt.Sprintf("must be a size in bytes, 0 for the default (%d); got %d", policy.DefaultDecisionCacheBytes, p.DecisionCacheBytes)))
	}
	if p.DecisionPath != "" && !strings.HasPrefix(p.DecisionPath, "data.") {
		errs = append(errs, f.fieldErr(name, root, "decision_path", fmt.Sprintf("must be a rule path such as data.temporal.authz.decision; got %q", p.DecisionPath)))
	}
	fileNames := map[string]bool{}
	if fbs, err := FileBundles(p.Bundle); err != nil {
		var pe *PathError
		key := "bundle"
		if errors.As(err, &pe) {
			key = fmt.Sprintf("bundle[%d]", pe.Index)
		}
		errs = append(errs, f.fieldErr(name, root, key, err.Error()))
	} else {
		for i, fb := range fbs {
			fileNames[fb.Name] = true
			if _, err := os.Stat(fb.Path); err != nil {
				msg := "no such bundle directory or tarball"
				if !errors.Is(err, os.ErrNotExist) {
					msg = errors.Unwrap(err).Error()
				}
				key := "bundle"
				if len(fbs) > 1 {
					key = fmt.Sprintf("bundle[%d]", i)
				}
				errs = append(errs, f.fieldErr(name, root, key, fmt.Sprintf("%s: %s", fb.Path, msg)))
			}
		}
	}
	if p.Shadow != "" {
		if _, err := os.Stat(p.Shadow); err != nil {
			errs = append(errs, f.fieldErr(name, root, "shadow", fmt.Sprintf("%s: no such bundle directory or tarball", p.Shadow)))
		}
	}
	switch p.Mode {
	case "", policy.ModeEnforce, policy.ModeDryRun:
	default:
		errs = append(errs, f.fieldErr(name, root, "mode", fmt.Sprintf("must be %s or %s; got %q", policy.ModeEnforce, policy.ModeDryRun, p.Mode)))
	}
	if p.OPAConfig != "" {
		cfg, err := source.LoadConfig(p.OPAConfig)
		taken := -1 // a bundle of cfg named as one of policy.bundle
		if err == nil {
			taken = slices.IndexFunc(cfg.Bundles(), func(b string) bool { return fileNames[b] })
		}
		switch {
		case err != nil:
			msg := err.Error()
			if errors.Is(err, os.ErrNotExist) {
				msg = p.OPAConfig + ": no such file"
			}
			errs = append(errs, f.fieldErr(name, root, "opa_config", cli.OneLine(msg)))
		case len(cfg.Bundles()) == 0 && !cfg.DecisionLogs():
			errs = append(errs, f.fieldErr(name, root, "opa_config", p.OPAConfig+": defines no bundles and no decision_logs"))
		case taken >= 0:
			errs = append(errs, f.fieldErr(name, root, "opa_config", fmt.Sprintf("%s: bundle name %q is taken by policy.bundle; rename the bundle", p.OPAConfig, cfg.Bundles()[taken])))
		default:
			f.Policy.OPA = cfg
		}
	}
	if p.RequireBundle && len(p.Bundle) == 0 && p.OPAConfig == "" {
		errs = append(errs, f.fieldErr(name, root, "require_bundle", "needs policy.bundle or policy.opa_config: there is no bundle to wait for"))
	}
	if p.RequireBundleTimeout < 0 {
		errs = append(errs, f.fieldErr(name, root, "require_bundle_timeout", fmt.Sprintf("must be positive, e.g. 30s; got %s", p.RequireBundleTimeout)))
	}
	if d := f.DecisionLogs; d.QueueSize < 0 || d.FlushTimeout < 0 {
		fe := &FieldError{File: name, Key: "decision_logs", Msg: fmt.Sprintf("queue_size and flush_timeout must not be negative; got %d and %s", d.QueueSize, d.FlushTimeout)}
		if n := lookup(root, "decision_logs"); n != nil {
			fe.Line, fe.Column = n.Line, n.Column
		}
		errs = append(errs, fe)
	}
	errs = append(errs, f.validateGrants(name, root)...)
	if a := f.Status.Address; a != "" {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			fe := &FieldError{File: name, Key: "status.address", Msg: fmt.Sprintf("want host:port such as 127.0.0.1:7253; got %q", a)}
			if n := lookup(root, "status", "address"); n != nil {
				fe.Line, fe.Column = n.Line, n.Column
			}
			errs = append(errs, fe)
		}
	}
	return errors.Join(errs...)
}

// grantsNamespacePattern is what Temporal accepts as a namespace name.
var grantsNamespacePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{1,999}$`)

func (f *File) validateGrants(name string, root *yaml.Node) []error {
	var errs []error
	g := f.Grants
	at := func(key, msg string) {
		fe := &FieldError{File: name, Key: "grants." + key, Msg: msg}
		if n := lookup(root, "grants", key); n != nil {
			fe.Line, fe.Column = n.Line, n.Column
		}
		errs = append(errs, fe)
	}
	if g.Namespace != "" && !grantsNamespacePattern.MatchString(g.Namespace) {
		at("namespace", fmt.Sprintf("%q is not a namespace name (letters, digits, '.', '_' and '-', at least 2)", g.Namespace))
	}
	if g.Namespace == "temporal-system" {
		at("namespace", "temporal-system is Temporal's own namespace: choose another, such as temporal-opa-grants")
	}
	if g.PollInterval < 0 || (g.PollInterval > 0 && g.PollInterval < 100*time.Millisecond) || g.PollInterval > time.Minute {
		at("poll_interval", fmt.Sprintf("must be between 100ms and 1m (grants reach every frontend within it), e.g. 1s; got %s", g.PollInterval))
	}
	if g.RequestTTL < 0 || (g.RequestTTL > 0 && g.RequestTTL < time.Minute) {
		at("request_ttl", fmt.Sprintf("must be at least 1m, e.g. 24h; got %s", g.RequestTTL))
	}
	if g.Retention < 0 || (g.Retention > 0 && g.Retention < 24*time.Hour) {
		at("retention", fmt.Sprintf("must be at least 24h (Temporal's minimum retention), e.g. 168h; got %s", g.Retention))
	}
	return errs
}

func (f *File) fieldErr(name string, root *yaml.Node, key, msg string) error {
	fe := &FieldError{File: name, Key: "policy." + key, Msg: msg}
	if n := lookup(root, "policy", key); n != nil {
		fe.Line, fe.Column = n.Line, n.Column
	}
	return fe
}

// lookup finds the value node at section.key, or nil.
// cutIssuerEntry splits "issuers[3].audiences" into 3 and "audiences".
func cutIssuerEntry(key string) (entry int, field string, ok bool) {
	head, field, found := strings.Cut(key, ".")
	if !found {
		return 0, "", false
	}
	if _, err := fmt.Sscanf(head, "issuers[%d]", &entry); err != nil {
		return 0, "", false
	}
	return entry, field, true
}

// lookupIssuer is the node of jwt.issuers[i], nil when there is none.
func lookupIssuer(root *yaml.Node, i int) *yaml.Node {
	n := lookup(root, "jwt", "issuers")
	if n == nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
		return nil
	}
	return n.Content[i]
}

// fileSetsKeySource reports whether the file's jwt section itself sets an
// issuer or key source (rather than Temporal's config, through base).
func (f *File) fileSetsKeySource(root *yaml.Node) bool {
	for _, k := range []string{"issuer", "skip_discovery", "jwks_urls", "jwks_files"} {
		if lookup(root, "jwt", k) != nil {
			return true
		}
	}
	return false
}

// lookup finds the node at path; a segment "name[i]" steps into item i of the
// list under name.
func lookup(root *yaml.Node, path ...string) *yaml.Node {
	n := root
	for _, k := range path {
		if name, rest, ok := strings.Cut(k, "["); ok {
			var i int
			if _, err := fmt.Sscanf(rest, "%d]", &i); err != nil {
				return nil
			}
			n = lookup(n, name)
			if n == nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
				return nil
			}
			n = n.Content[i]
			continue
		}
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

// yamlSyntax shortens yaml.v3's messages ("yaml: line 3: mapping values are not allowed in this context").
func yamlSyntax(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
	return "invalid YAML: " + strings.ReplaceAll(msg, "\n  ", "; ")
}
