package claimmapper

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"go.temporal.io/server/common/authorization"
)

const authTypeJWT = "jwt"

// Mapper maps "Bearer <jwt>" to Temporal claims. It is safe for concurrent use.
type Mapper struct {
	cfg    Config
	logger *slog.Logger
	now    func() time.Time
	keys   *keyStore
	cache  *tokenCache
	cancel context.CancelFunc
	once   sync.Once

	requireExp  bool
	audiences   map[string]bool
	system      map[string]bool
	permPath    []string
	subjectPath []string
	spaceSep    bool
	regex       *regexp.Regexp
	nsIdx       int
	roleIdx     int
}

var (
	_ authorization.ClaimMapper                     = (*Mapper)(nil)
	_ authorization.ClaimMapperWithAuthInfoRequired = (*Mapper)(nil)
)

// Option customizes New.
type Option func(*options)

type options struct {
	client  *http.Client
	logger  *slog.Logger
	now     func() time.Time
	onFetch func(error)
}

// WithHTTPClient sets the client for discovery and key fetches (default: a client
// with no extra settings; every request is bounded by fetch_timeout anyway).
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithLogger sets the logger (default: discard). Token rejections are logged at
// Debug (Temporal logs the returned error), key refresh problems at Warn.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithKeyFetchHook calls f after every fetch of a key source (start-up,
// background refresh, refetch for an unknown kid): with nil when the keys were
// loaded, with the error when the last good keys were kept. Metrics use it.
func WithKeyFetchHook(f func(err error)) Option { return func(o *options) { o.onFetch = f } }

// WithClock sets the clock used for exp/nbf/iat, cache expiry and refetch rate limits.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// New validates cfg, applies defaults, runs OIDC discovery when configured and loads
// every key source once; ctx bounds only this start-up fetch. Background refresh runs
// until Close.
func New(ctx context.Context, cfg Config, opts ...Option) (*Mapper, error) {
	if len(cfg.Issuers) > 0 {
		return nil, errors.New("claimmapper: config issuers: New takes one issuer; use NewIssuers for a list")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.ApplyDefaults()
	o := options{client: &http.Client{}, logger: slog.New(slog.DiscardHandler), now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.client == nil {
		o.client = &http.Client{}
	}
	if cfg.CAFile != "" {
		var err error
		if o.client, err = withCAFile(o.client, cfg.CAFile); err != nil {
			return nil, err
		}
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.now == nil {
		o.now = time.Now
	}

	m := &Mapper{
		cfg:         cfg,
		logger:      o.logger,
		now:         o.now,
		cache:       newTokenCache(cfg.CacheSize, cfg.CacheBytes),
		requireExp:  *cfg.RequireExp,
		system:      map[string]bool{SystemNamespace: true},
		permPath:    strings.Split(cfg.PermissionsClaim, "."),
		subjectPath: strings.Split(cfg.SubjectClaim, "."),
		spaceSep:    cfg.PermissionsFormat == FormatSpaceSeparated,
	}
	for _, a := range cfg.SystemNamespaceAliases {
		m.system[a] = true
	}
	if len(cfg.Audiences) > 0 {
		m.audiences = make(map[string]bool, len(cfg.Audiences))
		for _, a := range cfg.Audiences {
			m.audiences[a] = true
		}
	}
	if cfg.PermissionsRegex != "" {
		var err error
		if m.regex, m.nsIdx, m.roleIdx, err = compilePermissionsRegex(cfg.PermissionsRegex); err != nil {
			return nil, fmt.Errorf("claimmapper: config permissions_regex: %w", err)
		}
	}

	for _, w := range cfg.Warnings() {
		m.logger.Warn(w)
	}
	m.keys = newKeyStore(&m.cfg, o.client, m.logger, m.now, m.keysChanged)
	m.keys.onFetch = o.onFetch
	if cfg.Issuer != "" && !cfg.SkipDiscovery {
		jwksURI, err := discover(ctx, o.client, cfg.Issuer, cfg.FetchTokenFile, cfg.FetchTimeout)
		if err != nil {
			return nil, err
		}
		if w := plainHTTPWarning("issuer discovery's jwks_uri", "the token signing keys", jwksURI); w != "" {
			m.logger.Warn(w)
		}
		m.keys.addURL(jwksURI)
	}
	for _, u := range cfg.JWKSURLs {
		m.keys.addURL(u)
	}
	for _, f := range cfg.JWKSFiles {
		m.keys.addFile(f)
	}
	life, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	if err := m.keys.start(ctx, life, cfg.RefreshInterval); err != nil {
		cancel()
		return nil, err
	}
	return m, nil
}

// Close stops the background key refresh. GetClaims keeps working with the last keys.
func (m *Mapper) Close() error {
	if m.cancel != nil {
		m.once.Do(m.cancel)
	}
	return nil
}

// CacheStats returns the entries and the bytes (as counted against
// Config.CacheBytes) the verified-token cache holds.
func (m *Mapper) CacheStats() (entries, bytes int) {
	if m.cache == nil {
		return 0, 0
	}
	return m.cache.stats()
}

// AuthInfoRequired returns true: Temporal calls GetClaims only when a request carries
// a token or a TLS client certificate.
func (m *Mapper) AuthInfoRequired() bool { return true }

func (m *Mapper) keysChanged() {
	if m.cache != nil {
		m.cache.clear()
	}
}

// GetClaims verifies the bearer token of ai and maps it to claims. An empty token
// gives empty claims (no roles), as Temporal's default mapper does for TLS-only
// callers. A refused token gives a *TokenError.
func (m *Mapper) GetClaims(ai *authorization.AuthInfo) (*authorization.Claims, error) {
	if ai == nil {
		return nil, m.refuse(tokenErr(CodeNoAuthInfo, "no authorization info"))
	}
	if ai.AuthToken == "" {
		return &authorization.Claims{AuthType: authTypeJWT}, nil
	}
	if len(ai.AuthToken) > m.cfg.MaxTokenSize {
		return nil, m.refuse(tokenErrf(CodeTokenTooLarge, "authorization value of %d bytes exceeds max_token_size %d", len(ai.AuthToken), m.cfg.MaxTokenSize))
	}
	scheme, raw, ok := strings.Cut(ai.AuthToken, " ")
	if !ok {
		return nil, m.refuse(tokenErr(CodeInvalidAuthHeader, `want "Bearer <token>"`))
	}
	if !strings.EqualFold(scheme, "bearer") {
		return nil, m.refuse(tokenErr(CodeInvalidAuthHeader, "authorization scheme is not Bearer"))
	}

	sum := hashToken(raw)
	now := m.now()
	ks := m.keys.current.Load()
	v := (*verified)(nil)
	if m.cache != nil {
		v = m.cache.get(&sum, now, ks.gen)
	}
	if v == nil {
		var terr *TokenError
		if v, terr = m.verify(raw, &sum, now, ks); terr != nil {
			return nil, m.refuse(terr)
		}
		// Cache only tokens with exp, verified with the current key set, before exp
		// (a token accepted within the leeway after exp is not cached).
		if m.cache != nil && !v.expires.IsZero() && now.Before(v.expires) && m.keys.current.Load().gen == v.gen {
			m.cache.put(&sum, v, len(raw))
		}
	}
	// As Temporal: a blank audience requires nothing, any other must be in aud as is.
	if strings.TrimSpace(ai.Audience) != "" && !v.hasAudience(ai.Audience) {
		return nil, m.refuse(tokenErr(CodeInvalidAudience, "aud does not contain the audience of this request"))
	}
	return v.claims(), nil
}

// hashBufs avoids allocating a copy of every token just to hash it.
var hashBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func hashToken(raw string) [32]byte {
	bp := hashBufs.Get().(*[]byte)
	buf := append((*bp)[:0], raw...)
	sum := sha256.Sum256(buf)
	if cap(buf) <= 64<<10 {
		*bp = buf[:0]
		hashBufs.Put(bp)
	}
	return sum
}

func (m *Mapper) refuse(err *TokenError) error {
	if m.logger.Enabled(context.Background(), slog.LevelDebug) {
		m.logger.Debug("claimmapper: token refused", slog.String("code", string(err.Code)), slog.String("error", err.Error()))
	}
	return err
}

// verify checks the token completely and maps its claims; ks is the key set current
// when the request arrived (a refetch may install a newer one).
func (m *Mapper) verify(raw string, sum *[32]byte, now time.Time, ks *keySet) (*verified, *TokenError) {
	claims, payloadLen, gen, terr := m.verifySignature(raw, ks)
	if terr != nil {
		return nil, terr
	}
	v := &verified{gen: gen}
	if terr := m.checkTimes(claims, now, v); terr != nil {
		return nil, terr
	}
	if m.cfg.Issuer != "" {
		iss, _ := claims["iss"].(string)
		if iss != m.cfg.Issuer {
			return nil, tokenErr(CodeInvalidIssuer, "iss is not the configured issuer")
		}
	}
	v.aud, v.audOK = audiences(claims["aud"])
	if m.audiences != nil {
		ok := false
		for _, a := range v.aud {
			if m.audiences[a] {
				ok = true
				break
			}
		}
		if !ok || !v.audOK {
			return nil, tokenErr(CodeInvalidAudience, "aud contains none of the configured audiences")
		}
	}
	sub, found := lookup(claims, m.cfg.SubjectClaim, m.subjectPath)
	s, isString := sub.(string)
	if !found || !isString {
		return nil, tokenErrf(CodeInvalidSubject, "subject claim %q is %s, want a string", m.cfg.SubjectClaim, describe(sub, found))
	}
	v.subject = s
	m.mapPermissions(claims, v)
	ext := claims
	if payloadLen > m.cfg.MaxExtensionBytes {
		ext = m.registeredClaims(claims)
		m.logger.Debug("claimmapper: token payload exceeds max_extension_bytes, exposing only registered claims to policies",
			slog.Int("payload_bytes", payloadLen), slog.Int("max_extension_bytes", m.cfg.MaxExtensionBytes))
	}
	v.token = &Token{claims: ext, key: hex.EncodeToString(sum[:]), issuer: m.cfg.Issuer}
	return v, nil
}

// checkTimes validates exp, nbf and iat with the leeway and sets v.expires.
func (m *Mapper) checkTimes(claims map[string]any, now time.Time, v *verified) *TokenError {
	leeway := m.cfg.Leeway
	exp, hasExp, err := numericDate(claims, "exp")
	if err != nil {
		return err
	}
	if !hasExp {
		if m.requireExp {
			return tokenErr(CodeMissingExp, "no exp claim and require_exp is on")
		}
	} else {
		if !now.Before(exp.Add(leeway)) {
			return tokenErr(CodeTokenExpired, "exp is in the past")
		}
		v.expires = exp
	}
	nbf, hasNbf, err := numericDate(claims, "nbf")
	if err != nil {
		return err
	}
	if hasNbf && now.Add(leeway).Before(nbf) {
		return tokenErr(CodeTokenNotYetValid, "nbf is in the future")
	}
	iat, hasIat, err := numericDate(claims, "iat")
	if err != nil {
		return err
	}
	if hasIat && now.Add(leeway).Before(iat) {
		return tokenErr(CodeTokenNotYetValid, "iat is in the future")
	}
	if limit := m.cfg.MaxLifetime; limit > 0 {
		if !hasExp {
			return tokenErrf(CodeLifetimeTooLong, "no exp claim, and max_lifetime is %s", limit)
		}
		from, what := now, "exp - now"
		if hasIat {
			from, what = iat, "exp - iat"
		}
		if life := exp.Sub(from); life > limit+leeway {
			return tokenErrf(CodeLifetimeTooLong, "%s is %s, above max_lifetime %s", what, life.Round(time.Second), limit)
		}
	}
	return nil
}

// registeredClaims is the subset of claims kept when the payload is too large.
func (m *Mapper) registeredClaims(claims map[string]any) map[string]any {
	out := make(map[string]any)
	// cnf (RFC 7800) binds the token to a client certificate (WithCertificates
	// enforces it): dropping it would let a large bound token go unbound.
	for _, k := range []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "azp", "client_id", "cnf"} {
		if v, ok := claims[k]; ok {
			out[k] = v
		}
	}
	if v, ok := claims[m.cfg.SubjectClaim]; ok {
		out[m.cfg.SubjectClaim] = v
	}
	return out
}

func audiences(v any) ([]string, bool) {
	switch a := v.(type) {
	case nil:
		return nil, true
	case string:
		return []string{a}, true
	case []any:
		out := make([]string, 0, len(a))
		for _, x := range a {
			s, ok := x.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

// lookup finds a claim by its full name, else by its dotted path.
func lookup(claims map[string]any, name string, path []string) (any, bool) {
	if v, ok := claims[name]; ok || len(path) < 2 {
		return v, ok
	}
	var cur any = claims
	for _, seg := range path {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[seg]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func describe(v any, found bool) string {
	if !found {
		return "missing"
	}
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}

// withCAFile returns a copy of c that trusts the CA certificates of the PEM file
// at path instead of the system's.
func withCAFile(c *http.Client, path string) (*http.Client, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("claimmapper: config ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("claimmapper: config ca_file: %s holds no PEM certificate", path)
	}
	var tr *http.Transport
	switch t := c.Transport.(type) {
	case nil:
		tr = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		tr = t.Clone()
	default:
		return nil, fmt.Errorf("claimmapper: config ca_file: the HTTP client's transport is a %T, not an *http.Transport; set its root CAs there instead", t)
	}
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tr.TLSClientConfig.RootCAs = pool
	out := *c
	out.Transport = tr
	return &out, nil
}
