package claimmapper

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.temporal.io/server/common/config"
)

// Permission formats for Config.PermissionsFormat.
const (
	FormatArray          = "array"           // a JSON array of strings (Temporal's format)
	FormatSpaceSeparated = "space-separated" // a string such as an OAuth scope, or an array
)

// SystemNamespace is the permission scope that maps to Claims.System, as in Temporal.
const SystemNamespace = "temporal-system"

// Defaults applied by ApplyDefaults (and New) to zero-valued fields.
const (
	DefaultRefreshInterval    = 15 * time.Minute
	DefaultRefetchMinInterval = 10 * time.Second
	DefaultFetchTimeout       = 10 * time.Second
	DefaultMaxTokenSize       = 8 << 10
	DefaultMaxExtensionBytes  = 8 << 10
	DefaultPermissionsClaim   = "permissions"
	DefaultSubjectClaim       = "sub"
	DefaultCacheSize          = 10000
	DefaultCacheBytes         = 32 << 20
)

// DefaultAlgorithms is the default allow-list: every asymmetric JWS algorithm.
// "none" and HMAC (HS256/384/512) are never accepted.
var DefaultAlgorithms = []string{
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
	"EdDSA",
}

// Config configures a Mapper. It is part of the server's YAML configuration; the keys
// are snake_case. Zero values take the defaults documented on each field.
type Config struct {
	// Issuer is the expected "iss" of every token (no check when empty). Unless
	// SkipDiscovery is set, New also fetches <issuer>/.well-known/openid-configuration,
	// requires its "issuer" to equal Issuer exactly and adds its "jwks_uri" as a key source.
	Issuer string `yaml:"issuer"`
	// SkipDiscovery checks "iss" against Issuer without OIDC discovery.
	SkipDiscovery bool `yaml:"skip_discovery"`
	// JWKSURLs are http(s) URLs serving a JSON Web Key Set.
	JWKSURLs []string `yaml:"jwks_urls"`
	// JWKSFiles are local files holding a JSON Web Key Set, re-read at every refresh.
	JWKSFiles []string `yaml:"jwks_files"`
	// CAFile is a PEM file of CA certificates trusted, instead of the system's,
	// for the https discovery and JWKS fetches (for example a Kubernetes
	// cluster's CA). Read once by New.
	CAFile string `yaml:"ca_file"`
	// FetchTokenFile is a file holding a bearer token sent with discovery and
	// key-set fetches, read again for every fetch (a Kubernetes API server's
	// issuer may require one: the pod's projected service-account token,
	// rotated by the kubelet). It is sent only over https or to a loopback
	// host, never on a redirect to another host, and never logged.
	FetchTokenFile string `yaml:"fetch_token_file"`
	// RefreshInterval is how often every key source is fetched again in the background.
	// Default 15m, at least 1s.
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// RefetchMinInterval is the least time between two refetches triggered by a token
	// whose kid is unknown. Default 10s.
	RefetchMinInterval time.Duration `yaml:"refetch_min_interval"`
	// FetchTimeout bounds one key or discovery fetch. Default 10s.
	FetchTimeout time.Duration `yaml:"fetch_timeout"`
	// Algorithms is the allow-list of JWS algorithms. Default DefaultAlgorithms.
	Algorithms []string `yaml:"algorithms"`
	// Audiences: when not empty, "aud" must contain at least one of them. Independently,
	// a non-empty AuthInfo.Audience (Temporal's audience getter) must be in "aud".
	Audiences []string `yaml:"audiences"`
	// Leeway is the clock skew allowed on exp, nbf and iat. Default 0, as Temporal.
	Leeway time.Duration `yaml:"leeway"`
	// RequireExp refuses tokens without "exp". Default true (Temporal: false).
	RequireExp *bool `yaml:"require_exp"`
	// MaxLifetime, when set, refuses tokens that live longer: exp - iat (or,
	// without iat, exp - now) above it, past the leeway. A token without exp
	// is refused too. For short-lived credentials such as Kubernetes projected
	// service-account tokens (1h), so that a long-lived token minted for
	// something else is not accepted. Default 0: no limit.
	MaxLifetime time.Duration `yaml:"max_lifetime"`
	// MaxTokenSize is the largest Authorization value in bytes; larger ones are refused
	// before parsing. Default 8192.
	MaxTokenSize int `yaml:"max_token_size"`
	// PermissionsClaim names the claim holding the permissions; a dotted path reaches
	// nested claims (resource_access.temporal.roles). A top-level claim whose name is
	// the whole string (for example a URL) wins over the path. Default "permissions".
	PermissionsClaim string `yaml:"permissions_claim"`
	// PermissionsFormat is "array" (default; a JSON array of strings, as Temporal) or
	// "space-separated" (a string of space-separated entries, or an array).
	PermissionsFormat string `yaml:"permissions_format"`
	// PermissionsRegex, when set, parses each entry instead of splitting on the first
	// ':'. It must have the named groups "namespace" and "role".
	PermissionsRegex string `yaml:"permissions_regex"`
	// SystemNamespaceAliases are scopes treated like "temporal-system", which always
	// maps to Claims.System (for example "system").
	SystemNamespaceAliases []string `yaml:"system_namespace_aliases"`
	// SubjectClaim names the claim (dotted path allowed) giving Claims.Subject; it must
	// be a string. Default "sub"; client_id, azp or preferred_username suit service accounts.
	SubjectClaim string `yaml:"subject_claim"`
	// CacheSize bounds the verified-token cache (entries). Default 10000; -1 disables it.
	CacheSize int `yaml:"cache_size"`
	// CacheBytes bounds the verified-token cache's memory, each token counted
	// as twice its length (its decoded claims) plus bookkeeping. Default 32 MiB.
	CacheBytes int `yaml:"cache_bytes"`
	// MaxExtensionBytes bounds the claims handed to policies in Claims.Extensions: a
	// token whose payload is larger only exposes its registered claims (iss, sub, aud,
	// exp, nbf, iat, jti, azp, client_id, cnf and the subject claim). Default 8192.
	MaxExtensionBytes int `yaml:"max_extension_bytes"`
	// Issuers lists several trusted issuers, each verified only with its own key
	// sources (see NewIssuers). Each entry takes the keys above; its issuer is
	// required and unique. The other keys set beside issuers (audiences, leeway,
	// permissions_claim, ...) are defaults for every entry. With issuers, the
	// top level sets no issuer, skip_discovery, jwks_urls or jwks_files.
	Issuers []Config `yaml:"issuers"`
}

// perIssuerFields are the fields of Config that an Issuers entry never takes
// from the top level: its identity and its key sources.
var perIssuerFields = map[string]bool{"Issuer": true, "SkipDiscovery": true, "JWKSURLs": true, "JWKSFiles": true, "FetchTokenFile": true, "Issuers": true}

// IssuerConfigs returns the entries of c.Issuers, each with the fields it leaves
// zero taken from c (except its issuer and key sources). It returns nil when
// c.Issuers is empty.
func (c *Config) IssuerConfigs() []Config {
	if len(c.Issuers) == 0 {
		return nil
	}
	top := reflect.ValueOf(c).Elem()
	out := make([]Config, len(c.Issuers))
	for i, e := range c.Issuers {
		v := reflect.ValueOf(&e).Elem()
		for j := range v.NumField() {
			if perIssuerFields[v.Type().Field(j).Name] || !v.Field(j).IsZero() {
				continue
			}
			v.Field(j).Set(top.Field(j))
		}
		out[i] = e
	}
	return out
}

// FromTemporal converts Temporal's authorization settings (global.authorization in the
// server config): jwtKeyProvider.keySourceURIs (file:// URIs become JWKSFiles),
// refreshInterval, permissionsClaimName, permissionsRegex and audience. Everything else
// keeps its default; unmarshal our YAML into the result to override it.
func FromTemporal(a *config.Authorization) Config {
	var c Config
	if a == nil {
		return c
	}
	for _, uri := range a.JWTKeyProvider.KeySourceURIs {
		uri = strings.TrimSpace(uri)
		if uri == "" {
			continue
		}
		if u, err := url.Parse(uri); err == nil && u.Scheme == "file" && (u.Host == "" || u.Host == "localhost") {
			c.JWKSFiles = append(c.JWKSFiles, u.Path)
			continue
		}
		c.JWKSURLs = append(c.JWKSURLs, uri)
	}
	c.RefreshInterval = a.JWTKeyProvider.RefreshInterval
	c.PermissionsClaim = a.PermissionsClaimName
	c.PermissionsRegex = a.PermissionsRegex
	if aud := strings.TrimSpace(a.Audience); aud != "" {
		c.Audiences = []string{aud}
	}
	return c
}

// ApplyDefaults sets every zero-valued field to its default.
func (c *Config) ApplyDefaults() {
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.RefetchMinInterval == 0 {
		c.RefetchMinInterval = DefaultRefetchMinInterval
	}
	if c.FetchTimeout == 0 {
		c.FetchTimeout = DefaultFetchTimeout
	}
	if len(c.Algorithms) == 0 {
		c.Algorithms = slices.Clone(DefaultAlgorithms)
	}
	if c.RequireExp == nil {
		t := true
		c.RequireExp = &t
	}
	if c.MaxTokenSize == 0 {
		c.MaxTokenSize = DefaultMaxTokenSize
	}
	if c.PermissionsClaim == "" {
		c.PermissionsClaim = DefaultPermissionsClaim
	}
	if c.PermissionsFormat == "" {
		c.PermissionsFormat = FormatArray
	}
	if c.SubjectClaim == "" {
		c.SubjectClaim = DefaultSubjectClaim
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = DefaultCacheBytes
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.MaxExtensionBytes == 0 {
		c.MaxExtensionBytes = DefaultMaxExtensionBytes
	}
}

// Validate reports every invalid setting, each naming its YAML key and what is
// expected. Zero values are valid (they take defaults). It does not modify c.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("claimmapper: config %s: %s", key, fmt.Sprintf(format, args...)))
	}

	if len(c.Issuers) > 0 {
		errs = append(errs, c.validateIssuers()...)
	}
	discovery := c.Issuer != "" && !c.SkipDiscovery
	if len(c.Issuers) == 0 && !discovery && len(c.JWKSURLs) == 0 && len(c.JWKSFiles) == 0 {
		bad("issuer/jwks_urls/jwks_files", "no key source: set issuer (OIDC discovery), jwks_urls or jwks_files")
	}
	if discovery {
		if err := checkHTTPURL(c.Issuer); err != nil {
			bad("issuer", "%v (set skip_discovery to use a non-URL issuer)", err)
		}
	}
	for i, u := range c.JWKSURLs {
		if err := checkHTTPURL(u); err != nil {
			bad(fmt.Sprintf("jwks_urls[%d]", i), "%v", err)
		}
	}
	if c.FetchTokenFile != "" && strings.TrimSpace(c.FetchTokenFile) != c.FetchTokenFile {
		bad("fetch_token_file", "want a file path without surrounding spaces, got %q", c.FetchTokenFile)
	}
	if c.CAFile != "" && strings.TrimSpace(c.CAFile) != c.CAFile {
		bad("ca_file", "want a file path without surrounding spaces, got %q", c.CAFile)
	}
	for i, f := range c.JWKSFiles {
		if strings.TrimSpace(f) == "" {
			bad(fmt.Sprintf("jwks_files[%d]", i), "want a file path, got an empty string")
		}
	}
	if c.RefreshInterval != 0 && c.RefreshInterval < time.Second {
		bad("refresh_interval", "want at least 1s, got %s", c.RefreshInterval)
	}
	if c.RefetchMinInterval < 0 {
		bad("refetch_min_interval", "want a duration >= 0, got %s", c.RefetchMinInterval)
	}
	if c.FetchTimeout < 0 {
		bad("fetch_timeout", "want a duration > 0, got %s", c.FetchTimeout)
	}
	for i, a := range c.Algorithms {
		if _, ok := verifiers[a]; ok {
			continue
		}
		switch {
		case strings.EqualFold(a, "none"):
			bad(fmt.Sprintf("algorithms[%d]", i), `"none" is never accepted`)
		case strings.HasPrefix(strings.ToUpper(a), "HS"):
			bad(fmt.Sprintf("algorithms[%d]", i), "HMAC (%q) is never accepted from a key set", a)
		default:
			bad(fmt.Sprintf("algorithms[%d]", i), "unknown algorithm %q, want one of %s", a, strings.Join(DefaultAlgorithms, ", "))
		}
	}
	for i, a := range c.Audiences {
		if strings.TrimSpace(a) == "" {
			bad(fmt.Sprintf("audiences[%d]", i), "want an audience, got an empty string")
		}
	}
	if c.MaxLifetime < 0 {
		bad("max_lifetime", "want a duration >= 0 (0: no limit), got %s", c.MaxLifetime)
	}
	if c.Leeway < 0 {
		bad("leeway", "want a duration >= 0, got %s", c.Leeway)
	}
	if c.MaxTokenSize < 0 || c.MaxTokenSize > 1<<20 {
		bad("max_token_size", "want 1..1048576 bytes (0 for the default %d), got %d", DefaultMaxTokenSize, c.MaxTokenSize)
	}
	if err := checkPath(c.PermissionsClaim); err != nil {
		bad("permissions_claim", "%v", err)
	}
	switch c.PermissionsFormat {
	case "", FormatArray, FormatSpaceSeparated:
	default:
		bad("permissions_format", "want %q or %q, got %q", FormatArray, FormatSpaceSeparated, c.PermissionsFormat)
	}
	if c.PermissionsRegex != "" {
		if _, _, _, err := compilePermissionsRegex(c.PermissionsRegex); err != nil {
			bad("permissions_regex", "%v", err)
		}
	}
	for i, a := range c.SystemNamespaceAliases {
		if a == "" || strings.Contains(a, ":") {
			bad(fmt.Sprintf("system_namespace_aliases[%d]", i), "want a namespace name without ':', got %q", a)
		}
	}
	if err := checkPath(c.SubjectClaim); err != nil {
		bad("subject_claim", "%v", err)
	}
	if c.CacheBytes < 0 {
		bad("cache_bytes", "want a size in bytes, 0 for the default %d, got %d", DefaultCacheBytes, c.CacheBytes)
	}
	if c.CacheSize < -1 {
		bad("cache_size", "want a number of entries, 0 for the default %d or -1 to disable, got %d", DefaultCacheSize, c.CacheSize)
	}
	if c.MaxExtensionBytes < 0 {
		bad("max_extension_bytes", "want a number of bytes >= 0, got %d", c.MaxExtensionBytes)
	}
	return errors.Join(errs...)
}

// validateIssuers checks c.Issuers: the top level holds no issuer or key
// source, and every entry names a distinct issuer and is valid on its own
// (with the top level's defaults).
func (c *Config) validateIssuers() []error {
	var errs []error
	if c.Issuer != "" || c.SkipDiscovery || len(c.JWKSURLs) > 0 || len(c.JWKSFiles) > 0 {
		errs = append(errs, errors.New("claimmapper: config issuers: set issuer, skip_discovery, jwks_urls and jwks_files in each entry of issuers, "+
			"not beside issuers (remove them there, or drop issuers to keep the single-issuer form; "+
			"key sources may also come from Temporal's global.authorization.jwtKeyProvider.keySourceURIs)"))
	}
	seen := map[string]int{}
	for i, e := range c.IssuerConfigs() {
		prefix := fmt.Sprintf("claimmapper: config issuers[%d].", i)
		switch {
		case len(c.Issuers[i].Issuers) > 0:
			errs = append(errs, errors.New(prefix+"issuers: an entry cannot list issuers itself"))
			continue
		case e.Issuer == "":
			errs = append(errs, errors.New(prefix+"issuer: want the issuer (the tokens' iss) of every entry, got none"))
		default:
			if j, dup := seen[e.Issuer]; dup {
				errs = append(errs, fmt.Errorf("%sissuer: %q is listed twice (also issuers[%d]); merge the entries", prefix, e.Issuer, j))
			} else {
				seen[e.Issuer] = i
			}
		}
		if err := e.Validate(); err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				errs = append(errs, errors.New(strings.Replace(line, "claimmapper: config ", prefix, 1)))
			}
		}
	}
	return errs
}

func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("want an http(s) URL, got one that does not parse")
	}
	if u.Scheme == "file" {
		return fmt.Errorf("want an http(s) URL, got a file:// URL (use jwks_files)")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want an absolute http(s) URL, got %q", redactURL(raw))
	}
	return nil
}

// checkPath validates a dotted claim path ("" means the default).
func checkPath(p string) error {
	if p == "" {
		return nil
	}
	if strings.TrimSpace(p) != p {
		return fmt.Errorf("want a claim name or dotted path without surrounding spaces, got %q", p)
	}
	for _, seg := range strings.Split(p, ".") {
		if seg == "" {
			return fmt.Errorf("want a claim name or dotted path without empty segments, got %q", p)
		}
	}
	return nil
}

func compilePermissionsRegex(expr string) (re *regexp.Regexp, nsIdx, roleIdx int, err error) {
	re, err = regexp.Compile(expr)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("does not compile: %w", err)
	}
	// As Temporal: the last group of each name counts.
	for i, name := range re.SubexpNames() {
		switch name {
		case "namespace":
			nsIdx = i
		case "role":
			roleIdx = i
		}
	}
	if nsIdx == 0 || roleIdx == 0 {
		return nil, 0, 0, fmt.Errorf("want named groups (?P<namespace>...) and (?P<role>...), got %q", expr)
	}
	return re, nsIdx, roleIdx, nil
}
