package devca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func newCA(t *testing.T) (*CA, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	ca, created, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Fatal("created = false for a new directory")
	}
	return ca, dir
}

func TestLoadOrCreate(t *testing.T) {
	ca, dir := newCA(t)
	c := ca.Cert()
	if c.Subject.CommonName != CommonName || !c.IsCA || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA subject %q, IsCA %v, key usage %b", c.Subject.CommonName, c.IsCA, c.KeyUsage)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key %T, want ECDSA P-256", c.PublicKey)
	}
	if got := c.NotAfter.Sub(c.NotBefore); got < CAValidity || got > CAValidity+2*time.Hour {
		t.Errorf("CA validity %s, want about 10 years", got)
	}
	if ca.CertPath() != filepath.Join(dir, CAFile) {
		t.Errorf("CertPath %s", ca.CertPath())
	}
	again, created, err := LoadOrCreate(dir)
	if err != nil || created {
		t.Fatalf("second LoadOrCreate: created %v, %v", created, err)
	}
	if !again.Cert().Equal(c) {
		t.Error("second LoadOrCreate made another CA")
	}
}

func TestPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no mode bits")
	}
	ca, dir := newCA(t)
	if _, err := ca.EnsureServerCert(ServerHosts("127.0.0.1"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Issue(Request{CommonName: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if err := WritePair(filepath.Join(dir, "alice.pem"), filepath.Join(dir, "alice-key.pem"), pair); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{
		".": 0o700, CAKeyFile: 0o600, CAFile: 0o644, ServerKeyFile: 0o600, ServerCertFile: 0o644,
		"alice-key.pem": 0o600, "alice.pem": 0o644,
	} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", name, info.Mode().Perm(), want)
		}
	}

	// A key others may read is refused, and named.
	if err := os.Chmod(filepath.Join(dir, CAKeyFile), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "chmod 600 "+filepath.Join(dir, CAKeyFile)) {
		t.Errorf("Load with a group-readable key: %v", err)
	}
	// A state directory others may write is refused.
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreate(dir); err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Errorf("LoadOrCreate in a world-writable directory: %v", err)
	}
}

func TestLoadWithoutCA(t *testing.T) {
	for _, dir := range []string{filepath.Join(t.TempDir(), "missing"), t.TempDir()} {
		_ = os.Chmod(dir, 0o700)
		if _, err := Load(dir); !errors.Is(err, ErrNoCA) {
			t.Errorf("Load(%s): %v, want ErrNoCA", dir, err)
		}
	}
	// Half a CA is an error, not a new CA.
	_, dir := newCA(t)
	if err := os.Remove(filepath.Join(dir, CAFile)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreate(dir); err == nil || errors.Is(err, ErrNoCA) {
		t.Errorf("LoadOrCreate with the key alone: %v, want an error other than ErrNoCA", err)
	}
}

func TestIssueClientCert(t *testing.T) {
	ca, _ := newCA(t)
	now := time.Now()
	pair, err := ca.Issue(Request{CommonName: "worker", SPIFFEID: "spiffe://dev.local/ns/payments/worker",
		DNSNames: []string{"worker.local"}, Emails: []string{"w@dev.local"}, TTL: time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	c := pair.Cert
	if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate does not verify against the CA for client auth: %v", err)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("client certificate verifies for server auth")
	}
	if len(c.URIs) != 1 || c.URIs[0].String() != "spiffe://dev.local/ns/payments/worker" {
		t.Errorf("URI SANs %v, want the SPIFFE ID alone", c.URIs)
	}
	if c.Subject.CommonName != "worker" || len(c.DNSNames) != 1 || len(c.EmailAddresses) != 1 {
		t.Errorf("subject %q, DNS %v, emails %v", c.Subject.CommonName, c.DNSNames, c.EmailAddresses)
	}
	if d := c.NotAfter.Sub(now); d > time.Hour || d < time.Hour-time.Second {
		t.Errorf("expires in %s, want 1h", d)
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("key %T, want ECDSA P-256", c.PublicKey)
	}
	if _, err := pair.TLS(); err != nil {
		t.Errorf("key pair: %v", err)
	}

	other, _ := newCA(t)
	if _, err := c.Verify(x509.VerifyOptions{Roots: other.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("client certificate verifies against another CA")
	}
	if _, err := ca.Issue(Request{CommonName: "x", SPIFFEID: "spiffe://dev.local"}); err == nil {
		t.Error("Issue accepted a SPIFFE ID without a path")
	}
	if _, err := ca.Issue(Request{}); err == nil {
		t.Error("Issue accepted an empty common name")
	}
}

func TestEnsureServerCert(t *testing.T) {
	ca, _ := newCA(t)
	now := time.Now()
	hosts := ServerHosts("0.0.0.0")
	if strings.Join(hosts, ",") != "127.0.0.1,::1,localhost" {
		t.Errorf("ServerHosts(0.0.0.0) = %v", hosts)
	}
	f, err := ca.EnsureServerCert(hosts, now)
	if err != nil || !f.Renewed {
		t.Fatalf("first EnsureServerCert: renewed %v, %v", f.Renewed, err)
	}
	data, _ := os.ReadFile(f.CertFile)
	c, err := parseCert(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if err := c.VerifyHostname(h); err != nil {
			t.Errorf("server certificate does not cover %s: %v", h, err)
		}
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "localhost", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("server certificate: %v", err)
	}

	for _, tc := range []struct {
		name  string
		hosts []string
		now   time.Time
		renew bool
	}{
		{"same hosts", hosts, now, false},
		{"fewer hosts", []string{"127.0.0.1"}, now, false},
		{"a new address", ServerHosts("192.0.2.7"), now, true},
		{"the new address again", ServerHosts("192.0.2.7"), now, false},
		{"expiring within a day", ServerHosts("192.0.2.7"), now.Add(ServerValidity - time.Hour), true},
	} {
		f, err := ca.EnsureServerCert(tc.hosts, tc.now)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if f.Renewed != tc.renew {
			t.Errorf("%s: renewed %v, want %v", tc.name, f.Renewed, tc.renew)
		}
	}

	// A server certificate of another CA is replaced.
	other, _ := newCA(t)
	if err := os.Rename(f.CertFile, filepath.Join(other.dir, ServerCertFile)); err != nil {
		t.Fatal(err)
	}
	if g, err := other.EnsureServerCert(hosts, now); err != nil || !g.Renewed {
		t.Errorf("server certificate of another CA: renewed %v, %v", g.Renewed, err)
	}
}

func TestCheckSPIFFEID(t *testing.T) {
	for id, ok := range map[string]bool{
		"spiffe://dev.local/worker":               true,
		"spiffe://example.org/ns/payments/sa/w-1": true,
		"spiffe://dev.local":                      false,
		"spiffe://dev.local/":                     false,
		"spiffe:///worker":                        false,
		"SPIFFE://dev.local/w":                    false, // the scheme is lower-case, as go-spiffe wants it
		"spiffe://dev.local/w/":                   false,
		"spiffe://dev.local//w":                   false,
		"spiffe://u@dev.local/w":                  false,
		"spiffe://dev.local/w#f":                  false,
		"spiffe://dev.local/a%20b":                false,
		"spiffe://dev local/w":                    false,
		"dev.local/w":                             false,
	} {
		_, err := CheckSPIFFEID(id)
		if (err == nil) != ok {
			t.Errorf("CheckSPIFFEID(%q): %v, want ok %v", id, err, ok)
		}
	}
}
