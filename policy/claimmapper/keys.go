package claimmapper

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// maxFetchBytes bounds a JWKS or discovery document.
const maxFetchBytes = 1 << 20

// verifiers holds jwx's signature verifiers for every supported algorithm.
var verifiers = func() map[string]jws.Verifier {
	m := make(map[string]jws.Verifier, len(DefaultAlgorithms))
	for _, a := range DefaultAlgorithms {
		v, err := jws.NewVerifier(jwa.SignatureAlgorithm(a))
		if err != nil {
			panic(fmt.Sprintf("claimmapper: jwx has no verifier for %s: %v", a, err))
		}
		m[a] = v
	}
	return m
}()

// keyEntry is one usable public verification key.
type keyEntry struct {
	kid    string
	alg    string // the JWK's "alg", "" when absent
	family string // "RSA", "EC" or "OKP"
	curve  elliptic.Curve
	pub    any // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	fp     [32]byte
}

// fits reports whether the key may verify a token signed with alg.
func (k *keyEntry) fits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return k.family == "RSA"
	case "ES256":
		return k.family == "EC" && k.curve == elliptic.P256()
	case "ES384":
		return k.family == "EC" && k.curve == elliptic.P384()
	case "ES512":
		return k.family == "EC" && k.curve == elliptic.P521()
	case "EdDSA":
		return k.family == "OKP"
	}
	return false
}

// keySet is an immutable snapshot of every source's keys. gen changes whenever the
// set of keys does; cached tokens of another generation are not used.
type keySet struct {
	byKID map[string][]*keyEntry
	all   []*keyEntry // every key, for tokens without kid
	fp    [32]byte
	gen   uint64
	n     int
}

// spiffeJWTUse is the "use" of the JWT-SVID signing keys in a SPIFFE trust
// bundle (the SPIFFE Trust Domain and Bundle specification, as
// `spire-server bundle show -format spiffe` writes it): signature keys, beside
// the "x509-svid" keys of the bundle's X.509 authorities, which sign no JWT.
const spiffeJWTUse = "jwt-svid"

// usableKeys extracts the public signing keys of set that fit an allowed algorithm.
// Symmetric keys and encryption keys are skipped, and so are the X.509
// authorities of a SPIFFE bundle, whose JWT-SVID keys are signing keys. Keys
// without kid are kept (kid ""): only a token without kid can use one, and only
// when it is the set's single key for the token's algorithm.
func usableKeys(set jwk.Set, allowed map[string]bool) []*keyEntry {
	var out []*keyEntry
	for i := 0; i < set.Len(); i++ {
		k, ok := set.Key(i)
		if !ok {
			continue
		}
		if use := k.KeyUsage(); use != "" && use != string(jwk.ForSignature) && use != spiffeJWTUse {
			continue // encryption keys, and the X.509 CA keys of a SPIFFE bundle (x509-svid)
		}
		kid := k.KeyID()
		e := &keyEntry{kid: kid}
		if a := k.Algorithm(); a != nil {
			e.alg = a.String()
		}
		if e.alg != "" && !allowed[e.alg] {
			continue
		}
		var raw any
		if err := k.Raw(&raw); err != nil {
			continue
		}
		switch r := raw.(type) {
		case *rsa.PublicKey:
			e.family, e.pub = "RSA", r
		case *rsa.PrivateKey:
			e.family, e.pub = "RSA", &r.PublicKey
		case *ecdsa.PublicKey:
			e.family, e.curve, e.pub = "EC", r.Curve, r
		case *ecdsa.PrivateKey:
			e.family, e.curve, e.pub = "EC", r.Curve, &r.PublicKey
		case ed25519.PublicKey:
			e.family, e.pub = "OKP", r
		case ed25519.PrivateKey:
			e.family, e.pub = "OKP", r.Public().(ed25519.PublicKey)
		default: // oct (HMAC) and X25519 keys never verify a token
			continue
		}
		fits := false
		for a := range allowed {
			if e.fits(a) {
				fits = true
				break
			}
		}
		if !fits {
			continue
		}
		der, err := x509.MarshalPKIXPublicKey(e.pub)
		if err != nil {
			continue
		}
		h := sha256.New()
		h.Write([]byte(kid))
		h.Write([]byte{0})
		h.Write([]byte(e.alg))
		h.Write([]byte{0})
		h.Write(der)
		copy(e.fp[:], h.Sum(nil))
		out = append(out, e)
	}
	return out
}

// source is one configured JWKS location.
type source struct {
	key     string // jwk.Cache key: the URL, or file://<abs path> for a file
	display string // safe to log
	file    string // local path for a file source
}

// keyStore loads keys from every source through a jwk.Cache, which refreshes them in
// the background, and merges them into an atomically swapped keySet.
type keyStore struct {
	logger      *slog.Logger
	now         func() time.Time
	allowed     map[string]bool
	sources     []source
	getter      *getter
	cache       *jwk.Cache
	minInterval time.Duration
	timeout     time.Duration
	onChange    func()
	onFetch     func(error) // after every fetch: nil, or the error that kept the last good keys

	mu        sync.Mutex // guards perSource and swaps of current
	perSource map[string][]*keyEntry
	current   atomic.Pointer[keySet]

	refetchMu   sync.Mutex
	inflight    chan struct{}
	lastRefetch time.Time
}

// getter is the jwk.HTTPClient of the cache: it bounds every request by the
// mapper's lifetime and a timeout, limits the body size, and serves file sources.
type getter struct {
	ctx       context.Context
	client    *http.Client
	timeout   time.Duration
	files     map[string]string // cache key -> path
	tokenFile string            // fetch_token_file: a bearer token for every fetch
}

func (g *getter) Get(u string) (*http.Response, error) {
	if path, ok := g.files[u]; ok {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		b, err := readLimited(f)
		if err != nil {
			return nil, err
		}
		return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Body: io.NopCloser(bytes.NewReader(b))}, nil
	}
	ctx, cancel := context.WithTimeout(g.ctx, g.timeout)
	defer cancel()
	b, resp, err := httpGet(ctx, g.client, u, g.tokenFile)
	if err != nil {
		return nil, err
	}
	return &http.Response{StatusCode: resp.StatusCode, Status: resp.Status, Header: resp.Header, Body: io.NopCloser(bytes.NewReader(b))}, nil
}

// httpGet fetches u, with the bearer token of tokenFile when there is one
// (fetch_token_file). The token is set on the request, not by the transport,
// so that the client drops it on a redirect to another host.
func httpGet(ctx context.Context, client *http.Client, u, tokenFile string) ([]byte, *http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if tokenFile != "" {
		tok, err := fetchToken(tokenFile, req.URL)
		if err != nil {
			return nil, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := readLimited(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	return b, resp, nil
}

func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxFetchBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFetchBytes {
		return nil, fmt.Errorf("document larger than %d bytes", maxFetchBytes)
	}
	return b, nil
}

// discover fetches the OIDC discovery document of issuer and returns its jwks_uri.
func discover(ctx context.Context, client *http.Client, issuer, tokenFile string, timeout time.Duration) (string, error) {
	wellKnown := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	fail := func(err error) (string, error) {
		return "", &sourceError{raw: wellKnown, source: "OIDC discovery " + redactURL(wellKnown), err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	b, resp, err := httpGet(ctx, client, wellKnown, tokenFile)
	if err != nil {
		return fail(err)
	}
	if resp.StatusCode != http.StatusOK {
		return fail(fmt.Errorf("unexpected HTTP status %q", resp.Status))
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return fail(fmt.Errorf("decoding the discovery document: %w", err))
	}
	if doc.Issuer != issuer {
		return fail(fmt.Errorf("the document's issuer %q is not the configured issuer %q", redactURL(doc.Issuer), redactURL(issuer)))
	}
	if err := checkHTTPURL(doc.JWKSURI); err != nil {
		return fail(fmt.Errorf("jwks_uri: %w", err))
	}
	return doc.JWKSURI, nil
}

func newKeyStore(cfg *Config, client *http.Client, logger *slog.Logger, now func() time.Time, onChange func()) *keyStore {
	ks := &keyStore{
		logger:      logger,
		now:         now,
		allowed:     make(map[string]bool),
		minInterval: cfg.RefetchMinInterval,
		timeout:     cfg.FetchTimeout,
		onChange:    onChange,
		perSource:   make(map[string][]*keyEntry),
		getter:      &getter{client: client, timeout: cfg.FetchTimeout, files: make(map[string]string), tokenFile: cfg.FetchTokenFile},
	}
	for _, a := range cfg.Algorithms {
		ks.allowed[a] = true
	}
	ks.current.Store(&keySet{byKID: map[string][]*keyEntry{}})
	return ks
}

func (ks *keyStore) addURL(u string) {
	for _, s := range ks.sources {
		if s.key == u {
			return
		}
	}
	ks.sources = append(ks.sources, source{key: u, display: redactURL(u)})
}

func (ks *keyStore) addFile(path string) {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	key := "file://" + filepath.ToSlash(abs)
	if _, dup := ks.getter.files[key]; dup {
		return
	}
	ks.getter.files[key] = abs
	ks.sources = append(ks.sources, source{key: key, display: "file " + abs, file: abs})
}

// start registers every source with a jwk.Cache living as long as life, and loads
// each once; ctx bounds that first load. A source that cannot be loaded is an error.
func (ks *keyStore) start(ctx, life context.Context, refresh time.Duration) error {
	ks.getter.ctx = life
	window := min(max(refresh/2, time.Second), 15*time.Minute)
	ks.cache = jwk.NewCache(life,
		jwk.WithRefreshWindow(window),
		jwk.WithErrSink(errSinkFunc(ks.refreshFailed)),
	)
	for _, s := range ks.sources {
		err := ks.cache.Register(s.key,
			jwk.WithHTTPClient(ks.getter),
			jwk.WithRefreshInterval(refresh),
			jwk.WithIgnoreParseError(true),
			jwk.WithPostFetcher(jwk.PostFetchFunc(ks.postFetch)),
		)
		if err != nil {
			return &sourceError{raw: s.key, source: s.display, err: err}
		}
	}
	errs := make([]error, len(ks.sources))
	var wg sync.WaitGroup
	for i, s := range ks.sources {
		wg.Go(func() {
			// The first Get fetches synchronously (through postFetch) and schedules
			// the periodic refresh.
			if _, err := ks.cache.Get(ctx, s.key); err != nil {
				errs[i] = &sourceError{raw: s.key, source: s.display, err: err}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

type errSinkFunc func(error)

func (f errSinkFunc) Error(err error) { f(err) }

func (ks *keyStore) refreshFailed(err error) {
	if ks.onFetch != nil {
		ks.onFetch(err)
	}
	msg := err.Error()
	for _, s := range ks.sources {
		if s.key != s.display {
			msg = strings.ReplaceAll(msg, s.key, s.display)
		}
	}
	ks.logger.Warn("claimmapper: key refresh failed, keeping the last good keys", slog.String("error", msg))
}

// postFetch runs after every successful fetch and parse of a source, from the cache's
// refresh or from a refetch. An error keeps the previous keys of the source.
func (ks *keyStore) postFetch(u string, set jwk.Set) (jwk.Set, error) {
	keys := usableKeys(set, ks.allowed)
	if len(keys) == 0 {
		err := fmt.Errorf("%w among %d keys", errNoUsableKeys, set.Len())
		if ks.onFetch != nil {
			ks.onFetch(err)
		}
		return nil, err
	}
	ks.install(u, keys)
	if ks.onFetch != nil {
		ks.onFetch(nil)
	}
	return set, nil
}

func (ks *keyStore) install(u string, keys []*keyEntry) {
	ks.mu.Lock()
	ks.perSource[u] = keys
	var all []*keyEntry
	for _, s := range ks.sources {
		all = append(all, ks.perSource[s.key]...)
	}
	slices.SortFunc(all, func(a, b *keyEntry) int { return bytes.Compare(a.fp[:], b.fp[:]) })
	h := sha256.New()
	next := &keySet{byKID: make(map[string][]*keyEntry, len(all))}
	for i, e := range all {
		if i > 0 && all[i-1].fp == e.fp {
			continue // the same key from two sources
		}
		h.Write(e.fp[:])
		next.byKID[e.kid] = append(next.byKID[e.kid], e)
		next.all = append(next.all, e)
		next.n++
	}
	copy(next.fp[:], h.Sum(nil))
	cur := ks.current.Load()
	changed := next.fp != cur.fp
	if changed {
		next.gen = cur.gen + 1
		ks.current.Store(next)
	}
	ks.mu.Unlock()
	if changed {
		ks.logger.Info("claimmapper: key set changed", slog.Int("keys", next.n), slog.Uint64("generation", next.gen))
		if ks.onChange != nil {
			ks.onChange()
		}
	}
}

// refetch loads every source again after a token arrived with an unknown kid. At most
// one refetch runs at a time (concurrent callers wait for it), and a new one starts only
// RefetchMinInterval after the previous one. It reports whether keys were reloaded.
//
// It fetches directly rather than through jwk.Cache.Refresh: httprc v1 schedules an
// extra periodic refresh on every Refresh call, so a flood of unknown kids would pile
// up background fetches.
func (ks *keyStore) refetch() bool {
	ks.refetchMu.Lock()
	if ch := ks.inflight; ch != nil {
		ks.refetchMu.Unlock()
		<-ch
		return true
	}
	now := ks.now()
	if !ks.lastRefetch.IsZero() && now.Sub(ks.lastRefetch) < ks.minInterval {
		ks.refetchMu.Unlock()
		return false
	}
	ks.lastRefetch = now
	ch := make(chan struct{})
	ks.inflight = ch
	ks.refetchMu.Unlock()

	var wg sync.WaitGroup
	for _, s := range ks.sources {
		wg.Go(func() {
			if err := ks.fetchOne(s); err != nil {
				ks.logger.Warn("claimmapper: key refetch failed, keeping the last good keys",
					slog.String("source", s.display), slog.String("error", sanitize(err, s.key)))
			}
		})
	}
	wg.Wait()

	ks.refetchMu.Lock()
	ks.inflight = nil
	ks.refetchMu.Unlock()
	close(ch)
	return true
}

func (ks *keyStore) fetchOne(s source) error {
	resp, err := ks.getter.Get(s.key)
	if err != nil {
		if ks.onFetch != nil {
			ks.onFetch(err)
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("unexpected HTTP status %q", resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	set, err := jwk.Parse(b, jwk.WithIgnoreParseError(true))
	if err != nil {
		return fmt.Errorf("parsing the key set: %w", err)
	}
	_, err = ks.postFetch(s.key, set)
	return err
}

// fetchToken reads the bearer token of a fetch_token_file for one fetch of u:
// only over https or to a loopback host. Errors name the file, never the token.
func fetchToken(path string, u *url.URL) (string, error) {
	host := u.Hostname()
	loopback := host == "localhost"
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		loopback = true
	}
	if u.Scheme != "https" && !loopback {
		return "", fmt.Errorf("fetch_token_file: not sending its token over plain %s to %s: use https", u.Scheme, host)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("fetch_token_file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("fetch_token_file %s is empty", path)
	}
	if strings.ContainsAny(tok, "\r\n") {
		return "", fmt.Errorf("fetch_token_file %s holds more than one line", path)
	}
	return tok, nil
}
