package offline

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/temporal-opa/temporal-opa/server/internal/cli"
	"github.com/temporal-opa/temporal-opa/server/internal/devca"
)

// Cert is "temporal-opa cert": it issues a client certificate signed by the
// dev CA of o.StateDir, writes it and its key, and prints where they are and
// how the temporal CLI and the Go SDK use them.
func Cert(o cli.Cert, w io.Writer) error {
	ca, err := devca.Load(o.StateDir)
	if errors.Is(err, devca.ErrNoCA) {
		return fmt.Errorf("%w: run '%s start-dev --tls' once to create it (with --state-dir %s), or give --state-dir the directory that holds %s and %s",
			err, cli.Program, o.StateDir, devca.CAFile, devca.CAKeyFile)
	}
	if err != nil {
		return err
	}
	pair, err := ca.Issue(devca.Request{CommonName: o.CommonName, SPIFFEID: o.SPIFFEID, DNSNames: o.DNSNames, Emails: o.Emails, TTL: o.TTL})
	if err != nil {
		return err
	}
	if err := devca.WritePair(o.CertFile, o.KeyFile, pair); err != nil {
		return err
	}
	// The printed commands work from any directory.
	if abs, err := filepath.Abs(o.CertFile); err == nil {
		o.CertFile = abs
	}
	if abs, err := filepath.Abs(o.KeyFile); err == nil {
		o.KeyFile = abs
	}
	var sans []string
	if o.SPIFFEID != "" {
		sans = append(sans, "URI "+o.SPIFFEID)
	}
	for _, d := range o.DNSNames {
		sans = append(sans, "DNS "+d)
	}
	for _, e := range o.Emails {
		sans = append(sans, "email "+e)
	}
	what := ""
	if len(sans) > 0 {
		what = ", " + strings.Join(sans, ", ")
	}
	_, err = fmt.Fprintf(w, `Client certificate for CN %q%s, valid until %s, signed by %s
  certificate: %s
  key:         %s (mode 0600)
  CA:          %s

temporal CLI (start-dev --tls; add --api-key "$TOKEN" to send a token too):
  temporal workflow list --address 127.0.0.1:7233 --tls-ca-path %s --tls-cert-path %s --tls-key-path %s

Go SDK:
  cert, err := tls.LoadX509KeyPair(%q, %q)
  caPEM, err := os.ReadFile(%q)
  roots := x509.NewCertPool()
  roots.AppendCertsFromPEM(caPEM)
  c, err := client.Dial(client.Options{
      HostPort:          "127.0.0.1:7233",
      ConnectionOptions: client.ConnectionOptions{TLS: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots}},
  })
`, o.CommonName, what, pair.Cert.NotAfter.Format("2006-01-02T15:04:05Z07:00"), devca.CommonName,
		o.CertFile, o.KeyFile, ca.CertPath(),
		ca.CertPath(), o.CertFile, o.KeyFile,
		o.CertFile, o.KeyFile, ca.CertPath())
	return err
}
