package offline

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/temporal-opa/temporal-opa/server/internal/cli"
	"github.com/temporal-opa/temporal-opa/server/internal/devca"
)

func TestCert(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	o := cli.Cert{CommonName: "worker", SPIFFEID: "spiffe://dev.local/worker", TTL: 3600e9, StateDir: state,
		CertFile: filepath.Join(t.TempDir(), "w.pem"), KeyFile: filepath.Join(t.TempDir(), "w-key.pem")}

	var out strings.Builder
	err := Cert(o, &out)
	if err == nil || !strings.Contains(err.Error(), "run 'temporal-opa start-dev --tls' once") {
		t.Fatalf("without a CA: %v", err)
	}

	ca, _, err := devca.LoadOrCreate(state)
	if err != nil {
		t.Fatal(err)
	}
	if err := Cert(o, &out); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(pair.Certificate[0])
	if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("issued certificate: %v", err)
	}
	if len(c.URIs) != 1 || c.URIs[0].String() != o.SPIFFEID {
		t.Errorf("URI SANs %v", c.URIs)
	}
	if info, err := os.Stat(o.KeyFile); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, %v", info, err)
	}
	for _, want := range []string{
		"--tls-ca-path " + ca.CertPath() + " --tls-cert-path " + o.CertFile + " --tls-key-path " + o.KeyFile,
		`tls.LoadX509KeyPair("` + o.CertFile + `", "` + o.KeyFile + `")`,
		"URI spiffe://dev.local/worker",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
