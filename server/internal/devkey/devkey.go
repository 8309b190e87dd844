// Package devkey is the development signing key of temporal-opa: an ES256 key pair
// kept in a state directory, its public half served as a JWKS, and JWTs minted with
// it in the shape Temporal's claim mappers read (a "permissions" array of
// "<namespace>:<permission>" strings).
//
// The key is meant for development and tests: start-dev creates it on first start
// and keeps it across restarts, so that tokens minted by "temporal-opa token" stay
// valid while the server is restarted. Production deployments use their identity
// provider's keys instead.
//
// Typical use:
//
//	k, created, err := devkey.LoadOrCreate(stateDir)
//	...
//	srv, err := devkey.Serve("127.0.0.1:0", k) // JWKS at srv.URL()
//	tok, err := k.Mint(devkey.Claims{Subject: "me", Permissions: []string{"default:read"}, TTL: time.Hour})
//
// Nothing in this package logs or prints a private key or a token; callers print
// tokens only where the user asked for one.
package devkey

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// KeyFileName is the name of the private key file inside a state directory.
const KeyFileName = "dev-signing-key.pem"

// Issuer is the "iss" claim of every token minted with a dev key. start-dev
// configures its claim mapper to require it.
const Issuer = "temporal-opa-dev"

// Key is an ES256 signing key with its key ID (the RFC 7638 thumbprint of its
// public JWK). A Key is safe for concurrent use.
type Key struct {
	priv *ecdsa.PrivateKey
	kid  string
	path string // file the key was loaded from or saved to; "" if in memory only
}

// Generate creates a new in-memory ES256 key.
func Generate() (*Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ES256 key: %w", err)
	}
	return newKey(priv, "")
}

func newKey(priv *ecdsa.PrivateKey, path string) (*Key, error) {
	pub, err := jwk.FromRaw(&priv.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("public JWK: %w", err)
	}
	tp, err := pub.Thumbprint(cryptoSHA256)
	if err != nil {
		return nil, fmt.Errorf("key thumbprint: %w", err)
	}
	return &Key{priv: priv, kid: b64url(tp), path: path}, nil
}

// KeyID returns the key's "kid", sent in the header of every token it signs.
func (k *Key) KeyID() string { return k.kid }

// Path returns the file the key was loaded from or saved to, or "" for a key that
// lives only in memory.
func (k *Key) Path() string { return k.path }

// Public returns the public half of the key.
func (k *Key) Public() *ecdsa.PublicKey { return &k.priv.PublicKey }

// String names the key without revealing it.
func (k *Key) String() string { return "ES256 key " + k.kid }

// LoadOrCreate loads the key from dir/KeyFileName, or generates one and saves it
// there (the directory with mode 0700, the file with mode 0600) when the file does
// not exist. created reports whether a new key was made. A file that exists but
// cannot be read or parsed is an error, never silently replaced. A state
// directory that group or others may write is refused, not changed: whoever
// can write it can replace the key (see checkStateDir), and a chmod would not
// undo that.
func LoadOrCreate(dir string) (k *Key, created bool, err error) {
	if err := checkStateDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	path := filepath.Join(dir, KeyFileName)
	k, err = Load(path)
	if err == nil {
		return k, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create state directory %s: %w (choose another with --state-dir)", dir, err)
	}
	if err := checkStateDir(dir); err != nil {
		return nil, false, err
	}
	k, err = Generate()
	if err != nil {
		return nil, false, err
	}
	if err := k.Save(path); err != nil {
		return nil, false, err
	}
	return k, true, nil
}

// Load reads a PEM-encoded ECDSA P-256 private key (PKCS#8 "PRIVATE KEY" or SEC 1
// "EC PRIVATE KEY"). The error wraps fs.ErrNotExist when the file is missing. A
// file that group or others may read or write is refused (whoever reads it
// can mint tokens the server accepts): the error names the file, its mode
// and the chmod that fixes it.
func Load(path string) (*Key, error) {
	data, err := readPrivate(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("signing key %s does not exist: %w", path, fs.ErrNotExist)
		}
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("cannot read signing key %s: permission denied (fix its owner or mode, or delete it to generate a new key)", path)
		}
		var open *openToOthersError
		if errors.As(err, &open) {
			return nil, err
		}
		return nil, fmt.Errorf("cannot read signing key %s: %w", path, err)
	}
	priv, err := parsePEM(data)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w (delete the file to generate a new key)", path, err)
	}
	return newKey(priv, path)
}

// openToOthersError is a key file that group or others may access, or a
// state directory they may write.
type openToOthersError struct {
	what, path, fix string
	mode            fs.FileMode
	writable        bool
}

func (e *openToOthersError) Error() string {
	how := "accessible"
	if e.writable {
		how = "writable"
	}
	return fmt.Sprintf("%s %s is %s by group or others (mode %04o): %s", e.what, e.path, how, e.mode, e.fix)
}

// readPrivate reads a key file, refusing one whose mode lets group or others
// read or write it. Windows has no such mode bits: there the file is read as is.
func readPrivate(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if runtime.GOOS != "windows" && info.Mode().Perm()&0o077 != 0 {
		return nil, &openToOthersError{what: "signing key", path: path, mode: info.Mode().Perm(),
			fix: fmt.Sprintf("anyone who reads it can mint tokens this server accepts; run chmod 600 %s (or delete it to generate a new key)", path)}
	}
	return io.ReadAll(f)
}

// CheckStateDir is the check LoadOrCreate makes of an existing state
// directory, for commands that create a key there themselves (keys gen).
func CheckStateDir(dir string) error { return checkStateDir(dir) }

// checkStateDir refuses a state directory that group or others may write:
// whoever can write it can replace the signing key, or plant one before the
// first start. One they may only list is used: the key file's own mode
// (readPrivate) keeps the key from them. The error wraps fs.ErrNotExist when
// dir does not exist.
func checkStateDir(dir string) error {
	info, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return fmt.Errorf("state directory %s: %w", dir, err)
	}
	if !info.IsDir() {
		return fmt.Errorf("state directory %s is not a directory (choose another with --state-dir)", dir)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm()&0o022 != 0 {
		return &openToOthersError{what: "state directory", path: dir, mode: info.Mode().Perm(), writable: true,
			fix: fmt.Sprintf("it holds the dev signing key, which whoever can write the directory can replace; run chmod 700 %s, or choose another with --state-dir", dir)}
	}
	return nil
}

func parsePEM(data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("not a PEM file")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block is %q, want an ECDSA P-256 \"PRIVATE KEY\"", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("key is %T, want an ECDSA P-256 private key (ES256)", key)
	}
	return ec, nil
}

// Save writes the private key as PKCS#8 PEM with mode 0600. It refuses to
// overwrite an existing file.
func (k *Key) Save(path string) error {
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("save signing key: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return fmt.Errorf("save signing key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save signing key %s: %w", path, err)
	}
	k.path = path
	return nil
}

// JWKS returns the JSON Web Key Set holding the public key, as served to the
// claim mapper.
func (k *Key) JWKS() ([]byte, error) {
	pub, err := k.publicJWK()
	if err != nil {
		return nil, err
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		return nil, err
	}
	return json.MarshalIndent(set, "", "  ")
}

func (k *Key) publicJWK() (jwk.Key, error) {
	pub, err := jwk.FromRaw(&k.priv.PublicKey)
	if err != nil {
		return nil, err
	}
	for name, v := range map[string]any{
		jwk.KeyIDKey:     k.kid,
		jwk.AlgorithmKey: jwa.ES256,
		jwk.KeyUsageKey:  "sig",
	} {
		if err := pub.Set(name, v); err != nil {
			return nil, err
		}
	}
	return pub, nil
}

// Claims describes a token to mint.
type Claims struct {
	// Subject is the "sub" claim. Required.
	Subject string
	// Permissions is the "permissions" claim, entries "<namespace>:<permission>".
	Permissions []string
	// TTL sets "exp" to Now+TTL. Zero means one hour; negative TTLs mint tokens
	// that are already expired (for tests).
	TTL time.Duration
	// Issuer is the "iss" claim; "" means Issuer.
	Issuer string
	// Audience, if set, is the "aud" claim.
	Audience []string
	// Extra claims, merged last (e.g. "groups", "email").
	Extra map[string]any
	// Now is the issue time; zero means time.Now().
	Now time.Time
}

// Mint signs a JWT with the key: ES256, "kid" in the header, "sub", "iss", "iat",
// "nbf", "exp", "permissions" and a random "jti" (so that every token differs) in
// the payload.
func (k *Key) Mint(c Claims) (string, error) {
	if c.Subject == "" {
		return "", errors.New("mint token: subject is empty")
	}
	now := c.Now
	if now.IsZero() {
		now = time.Now()
	}
	ttl := c.TTL
	if ttl == 0 {
		ttl = time.Hour
	}
	iss := c.Issuer
	if iss == "" {
		iss = Issuer
	}
	perms := c.Permissions
	if perms == nil {
		perms = []string{}
	}
	jti := make([]byte, 12)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	b := jwt.NewBuilder().
		JwtID(b64url(jti)).
		Subject(c.Subject).
		Issuer(iss).
		IssuedAt(now.Truncate(time.Second)).
		NotBefore(now.Add(-time.Minute).Truncate(time.Second)).
		Expiration(now.Add(ttl).Truncate(time.Second)).
		Claim("permissions", perms)
	if len(c.Audience) > 0 {
		b = b.Audience(c.Audience)
	}
	for name, v := range c.Extra {
		b = b.Claim(name, v)
	}
	tok, err := b.Build()
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	priv, err := jwk.FromRaw(k.priv)
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	if err := priv.Set(jwk.KeyIDKey, k.kid); err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256, priv))
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	return string(signed), nil
}
