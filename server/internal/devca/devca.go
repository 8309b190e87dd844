// Package devca is the development certificate authority of temporal-opa: an
// ECDSA P-256 CA kept in the state directory beside the dev signing key (package
// devkey), the server certificate "start-dev --tls" serves, and the client
// certificates it and "temporal-opa cert" issue.
//
// Like the dev signing key it is meant for development and tests: start-dev
// --tls creates it on first use and keeps it across restarts, so that client
// certificates issued earlier stay valid. Whoever reads its private key can
// issue certificates the server accepts, so the key file is written with mode
// 0600 and refused when group or others may read it, and the state directory
// is refused when group or others may write it (devkey.CheckStateDir).
//
// Typical use:
//
//	ca, created, err := devca.LoadOrCreate(stateDir)
//	srv, err := ca.EnsureServerCert([]string{"127.0.0.1", "::1", "localhost"}, time.Now())
//	pair, err := ca.Issue(devca.Request{CommonName: "me", SPIFFEID: "spiffe://dev/me", TTL: 24 * time.Hour})
package devca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/temporal-opa/temporal-opa/server/internal/devkey"
)

// Files of the dev CA and the server certificate inside a state directory.
const (
	CAFile         = "dev-ca.pem"
	CAKeyFile      = "dev-ca-key.pem"
	ServerCertFile = "dev-server.pem"
	ServerKeyFile  = "dev-server-key.pem"
)

// CommonName is the subject of the dev CA.
const CommonName = "temporal-opa dev CA"

// Validity of the CA and of the server certificate.
const (
	CAValidity     = 10 * 365 * 24 * time.Hour
	ServerValidity = 365 * 24 * time.Hour
)

// ErrNoCA is wrapped by Load when the state directory holds no CA yet.
var ErrNoCA = errors.New("no dev CA")

// CA is the dev certificate authority.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	dir  string
}

// Cert is the CA's certificate.
func (ca *CA) Cert() *x509.Certificate { return ca.cert }

// CertPath is the file of the CA's certificate (PEM), the one clients trust.
func (ca *CA) CertPath() string { return filepath.Join(ca.dir, CAFile) }

// CertPEM is the CA's certificate, PEM-encoded.
func (ca *CA) CertPEM() []byte { return encodeCert(ca.cert.Raw) }

// Pool is a pool holding the CA's certificate alone.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// LoadOrCreate loads the CA of dir, or creates it there (the directory with mode
// 0700, the key with mode 0600) when neither its certificate nor its key exists.
// created reports whether a new CA was made. A CA whose files are unreadable,
// half present or do not match is an error, never silently replaced.
func LoadOrCreate(dir string) (ca *CA, created bool, err error) {
	ca, err = Load(dir)
	if err == nil || !errors.Is(err, ErrNoCA) {
		return ca, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create state directory %s: %w (choose another with --state-dir)", dir, err)
	}
	if err := devkey.CheckStateDir(dir); err != nil {
		return nil, false, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("generate dev CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: CommonName, Organization: []string{"temporal-opa"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, false, fmt.Errorf("create dev CA: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, false, err
	}
	// The key first and exclusively: a second start racing this one fails
	// here rather than pairing its certificate with another key.
	if err := writeFile(filepath.Join(dir, CAKeyFile), keyPEM, 0o600, true); err != nil {
		return nil, false, fmt.Errorf("save dev CA key: %w", err)
	}
	if err := writeFile(filepath.Join(dir, CAFile), encodeCert(der), 0o644, true); err != nil {
		return nil, false, fmt.Errorf("save dev CA: %w", err)
	}
	return &CA{cert: cert, key: key, dir: dir}, true, nil
}

// Load reads the CA of dir. The error wraps ErrNoCA when neither file exists.
func Load(dir string) (*CA, error) {
	if err := devkey.CheckStateDir(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w in %s (the state directory does not exist)", ErrNoCA, dir)
		}
		return nil, err
	}
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := readPrivate(keyPath)
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		return nil, fmt.Errorf("%w in %s", ErrNoCA, dir)
	case certErr != nil:
		return nil, fmt.Errorf("dev CA %s: %w (delete %s and %s to create a new CA)", certPath, certErr, certPath, keyPath)
	case keyErr != nil:
		var open *openError
		if errors.As(keyErr, &open) {
			return nil, keyErr
		}
		return nil, fmt.Errorf("dev CA key %s: %w (delete %s and %s to create a new CA)", keyPath, keyErr, certPath, keyPath)
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("dev CA %s: %w", certPath, err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("dev CA key %s: %w", keyPath, err)
	}
	if !cert.IsCA || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("dev CA %s and its key %s do not match (delete both to create a new CA)", certPath, keyPath)
	}
	return &CA{cert: cert, key: key, dir: dir}, nil
}

// KeyPair is an issued certificate and its private key, PEM-encoded.
type KeyPair struct {
	CertPEM, KeyPEM []byte
	Cert            *x509.Certificate
}

// TLS is the pair as a tls.Certificate.
func (p KeyPair) TLS() (tls.Certificate, error) { return tls.X509KeyPair(p.CertPEM, p.KeyPEM) }

// Request describes a client certificate to issue.
type Request struct {
	// CommonName is the subject's CN. Required.
	CommonName string
	// SPIFFEID, if set, is the certificate's single URI SAN; it must be a
	// SPIFFE ID (CheckSPIFFEID).
	SPIFFEID string
	DNSNames []string
	Emails   []string
	// TTL sets NotAfter to Now+TTL; zero means 24 hours.
	TTL time.Duration
	// Now is the issue time; zero means time.Now().
	Now time.Time
}

// Issue signs a client certificate (ECDSA P-256, extended key usage
// ClientAuth) for a new key.
func (ca *CA) Issue(r Request) (KeyPair, error) {
	if r.CommonName == "" {
		return KeyPair{}, errors.New("issue certificate: common name is empty")
	}
	tmpl := &x509.Certificate{
		Subject:        pkix.Name{CommonName: r.CommonName},
		DNSNames:       r.DNSNames,
		EmailAddresses: r.Emails,
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if r.SPIFFEID != "" {
		u, err := CheckSPIFFEID(r.SPIFFEID)
		if err != nil {
			return KeyPair{}, err
		}
		tmpl.URIs = []*url.URL{u}
	}
	ttl := r.TTL
	if ttl == 0 {
		ttl = 24 * time.Hour
	}
	return ca.sign(tmpl, r.Now, ttl)
}

func (ca *CA) sign(tmpl *x509.Certificate, now time.Time, ttl time.Duration) (KeyPair, error) {
	if now.IsZero() {
		now = time.Now()
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return KeyPair{}, fmt.Errorf("generate key: %w", err)
	}
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = now.Add(-5 * time.Minute)
	tmpl.NotAfter = now.Add(ttl)
	if tmpl.NotAfter.After(ca.cert.NotAfter) {
		tmpl.NotAfter = ca.cert.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return KeyPair{}, fmt.Errorf("sign certificate: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyPEM, err := encodeKey(key)
	if err != nil {
		return KeyPair{}, err
	}
	return KeyPair{CertPEM: encodeCert(der), KeyPEM: keyPEM, Cert: cert}, nil
}

// ServerFiles are the server certificate's files.
type ServerFiles struct {
	CertFile, KeyFile string
	// Renewed reports that the certificate was (re)issued by EnsureServerCert.
	Renewed bool
}

// EnsureServerCert returns the server certificate of the CA's directory,
// issuing a new one when there is none, when it has expired (or expires
// within a day), when the CA did not sign it, or when its SANs do not cover
// every one of hosts (IP addresses or DNS names). Its extended key usages are
// ServerAuth and ClientAuth: Temporal's services present it to each other
// (internode mTLS).
func (ca *CA) EnsureServerCert(hosts []string, now time.Time) (ServerFiles, error) {
	if now.IsZero() {
		now = time.Now()
	}
	f := ServerFiles{CertFile: filepath.Join(ca.dir, ServerCertFile), KeyFile: filepath.Join(ca.dir, ServerKeyFile)}
	if ca.serverCertValid(f, hosts, now) {
		return f, nil
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "temporal-opa dev server"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	pair, err := ca.sign(tmpl, now, ServerValidity)
	if err != nil {
		return f, err
	}
	if err := WritePair(f.CertFile, f.KeyFile, pair); err != nil {
		return f, err
	}
	f.Renewed = true
	return f, nil
}

func (ca *CA) serverCertValid(f ServerFiles, hosts []string, now time.Time) bool {
	data, err := os.ReadFile(f.CertFile)
	if err != nil {
		return false
	}
	keyPEM, err := readPrivate(f.KeyFile)
	if err != nil {
		return false
	}
	if _, err := tls.X509KeyPair(data, keyPEM); err != nil {
		return false
	}
	cert, err := parseCert(data)
	if err != nil || now.Add(24*time.Hour).After(cert.NotAfter) {
		return false
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}); err != nil {
		return false
	}
	for _, h := range hosts {
		if cert.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// ServerHosts are the names the server certificate covers for a frontend
// listening on ip: loopback's, and ip itself unless it is a wildcard.
func ServerHosts(ip string) []string {
	hosts := []string{"127.0.0.1", "::1", "localhost"}
	if p := net.ParseIP(ip); p != nil && !p.IsUnspecified() && !p.Equal(net.ParseIP("127.0.0.1")) && !p.Equal(net.IPv6loopback) {
		hosts = append(hosts, p.String())
	}
	return hosts
}

// CheckSPIFFEID parses a SPIFFE ID: spiffe://<trust domain>/<path>, the trust
// domain lower-case letters, digits, '.', '-' and '_', the path made of
// non-empty segments other than "." and "..", no query, fragment, port or
// user info.
func CheckSPIFFEID(s string) (*url.URL, error) {
	bad := func(why string) (*url.URL, error) {
		return nil, fmt.Errorf("SPIFFE ID %q: %s (want spiffe://trust-domain/path, e.g. spiffe://dev.local/worker)", s, why)
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("not a URI")
	}
	switch {
	case !strings.HasPrefix(s, "spiffe://"):
		return bad("scheme must be spiffe")
	case u.Host == "":
		return bad("no trust domain")
	case u.User != nil || u.Port() != "" || strings.Contains(u.Host, ":"):
		return bad("no user info or port allowed")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		return bad("no query or fragment allowed")
	case u.Path == "" || u.Path == "/":
		return bad("no path: a trust domain alone names no workload")
	case u.RawPath != "" && u.RawPath != u.Path || strings.Contains(s, "%"):
		return bad("percent-encoding is not allowed")
	}
	for _, c := range u.Host {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return bad("trust domain may hold only lower-case letters, digits, '.', '-' and '_'")
		}
	}
	for _, seg := range strings.Split(u.Path[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return bad("path segments must be non-empty and not . or ..")
		}
		for _, c := range seg {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
				return bad("path may hold only letters, digits, '.', '-', '_' and '/'")
			}
		}
	}
	return u, nil
}

// WritePair writes a certificate (mode 0644) and its key (mode 0600),
// replacing existing files.
func WritePair(certFile, keyFile string, p KeyPair) error {
	if err := writeFile(keyFile, p.KeyPEM, 0o600, false); err != nil {
		return fmt.Errorf("save key %s: %w", keyFile, err)
	}
	if err := writeFile(certFile, p.CertPEM, 0o644, false); err != nil {
		return fmt.Errorf("save certificate %s: %w", certFile, err)
	}
	return nil
}

// writeFile writes data to path with mode perm: exclusively (failing when
// path exists) or through a temporary file renamed over path, so that a
// reader never sees half a file and a key never has a wider mode.
func writeFile(path string, data []byte, perm os.FileMode, exclusive bool) error {
	if exclusive {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// openError is a key file group or others may read or write.
type openError struct {
	path string
	mode fs.FileMode
}

func (e *openError) Error() string {
	return fmt.Sprintf("key %s is accessible by group or others (mode %04o): anyone who reads it can present or issue certificates this server accepts; run chmod 600 %s", e.path, e.mode, e.path)
}

// readPrivate reads a private key file, refusing one group or others may
// access (as devkey does for the signing key). Windows has no such bits.
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
		return nil, &openError{path: path, mode: info.Mode().Perm()}
	}
	return io.ReadAll(f)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n.Add(n, big.NewInt(1))
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func parseCert(data []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

func parseKey(data []byte) (*ecdsa.PrivateKey, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM \"PRIVATE KEY\"")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, want ECDSA", k)
	}
	return ec, nil
}
