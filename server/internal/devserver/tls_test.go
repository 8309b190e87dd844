package devserver

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/temporal-opa/temporal-opa/server/internal/cli"
	"github.com/temporal-opa/temporal-opa/server/internal/devca"
	"github.com/temporal-opa/temporal-opa/server/internal/devkey"
)

// start-dev --tls: the files of the state directory, the Temporal TLS
// settings, and the banner's lines naming those files.
func TestDevTLS(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	dt, err := prepareTLS(state, "192.0.2.7")
	if err != nil {
		t.Fatal(err)
	}
	if !dt.caCreated || !dt.server.Renewed {
		t.Errorf("first start: CA created %v, server certificate issued %v", dt.caCreated, dt.server.Renewed)
	}
	again, err := prepareTLS(state, "192.0.2.7")
	if err != nil {
		t.Fatal(err)
	}
	if again.caCreated || again.server.Renewed {
		t.Errorf("second start: CA created %v, server certificate issued %v; want both kept", again.caCreated, again.server.Renewed)
	}

	// The dev-user certificate verifies against the CA for client auth.
	pair, err := tls.LoadX509KeyPair(dt.userCert, dt.userKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: dt.ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil || leaf.Subject.CommonName != UserCertCN {
		t.Errorf("dev-user certificate %q: %v", leaf.Subject.CommonName, err)
	}
	if info, err := os.Stat(dt.userKey); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("dev-user key: %v %v", info.Mode(), err)
	}

	cfg, err := serverConfig(Options{IP: "192.0.2.7", Port: 7233, HTTPPort: 7243}, make([]int, 10))
	if err != nil {
		t.Fatal(err)
	}
	dt.apply(cfg)
	g := cfg.Global.TLS
	ca := filepath.Join(state, devca.CAFile)
	for name, s := range map[string]struct {
		cert, key string
		require   bool
		cas       []string
	}{
		"frontend":  {g.Frontend.Server.CertFile, g.Frontend.Server.KeyFile, g.Frontend.Server.RequireClientAuth, g.Frontend.Server.ClientCAFiles},
		"internode": {g.Internode.Server.CertFile, g.Internode.Server.KeyFile, g.Internode.Server.RequireClientAuth, g.Internode.Server.ClientCAFiles},
	} {
		if s.cert != filepath.Join(state, devca.ServerCertFile) || s.key != filepath.Join(state, devca.ServerKeyFile) || !s.require || len(s.cas) != 1 || s.cas[0] != ca {
			t.Errorf("%s server TLS: %+v", name, s)
		}
	}
	if c := g.Internode.Client; len(c.RootCAFiles) != 1 || c.RootCAFiles[0] != ca || c.ServerName != "localhost" {
		t.Errorf("internode client TLS: %+v", c)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Temporal refuses the configuration: %v", err)
	}

	key, err := devkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := devkey.Serve("127.0.0.1:0", key)
	if err != nil {
		t.Fatal(err)
	}
	defer jwks.Close()
	s := &Server{key: key, jwks: jwks, tls: dt, frontend: "127.0.0.1:7233", http: "127.0.0.1:7243"}
	var b strings.Builder
	o := cli.StartDev{IP: "127.0.0.1", Port: 7233, Namespaces: []string{"default"}, TokenTTL: time.Hour, StateDir: state, Headless: true}
	if err := printBanner(&b, s, o); err != nil {
		t.Fatal(err)
	}
	files := "--tls-ca-path " + ca + " --tls-cert-path " + dt.userCert + " --tls-key-path " + dt.userKey
	for _, want := range []string{
		"  CA:           " + ca + " (created now)",
		"  Server cert:  " + filepath.Join(state, devca.ServerCertFile) + " for 127.0.0.1, ::1, localhost (issued now)",
		"temporal workflow list --address 127.0.0.1:7233 " + files + "\n",
		"temporal operator namespace list --address 127.0.0.1:7233 " + files + ` --api-key "$TEMPORAL_OPA_ADMIN_TOKEN"`,
		"https://127.0.0.1:7243/api/v1/namespaces/default/workflows",
		`tls.LoadX509KeyPair("` + dt.userCert + `", "` + dt.userKey + `")`,
		"client.ConnectionOptions{TLS: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots}}",
		"cli cert --cn alice",
	} {
		want = strings.Replace(want, "cli cert", cli.Program+" cert", 1)
		if !strings.Contains(b.String(), want) {
			t.Errorf("banner lacks %q", want)
		}
	}
	for _, unwanted := range []string{"--tls=false", "TLSDisabled", "http://127.0.0.1:7243"} {
		if strings.Contains(b.String(), unwanted) {
			t.Errorf("banner with --tls has %q", unwanted)
		}
	}
}
