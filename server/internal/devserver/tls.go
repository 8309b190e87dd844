package devserver

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"go.temporal.io/server/common/config"

	"github.com/temporal-opa/temporal-opa/server/internal/devca"
	"github.com/temporal-opa/temporal-opa/server/internal/webui"
)

// Client certificates start-dev --tls issues at every start: the one the
// banner's commands use (files in the state directory) and the Web UI's (in
// memory).
const (
	UserCertCN     = "dev-user"
	UserCertFile   = "dev-user.pem"
	UserKeyFile    = "dev-user-key.pem"
	UICertCN       = "temporal-opa-ui"
	userCertTTL    = 30 * 24 * time.Hour
	uiCertValidity = 365 * 24 * time.Hour
)

// devTLS is what start-dev --tls uses: the dev CA of the state directory, the
// server certificate, the client certificates it issued at start.
type devTLS struct {
	ca        *devca.CA
	caCreated bool
	server    devca.ServerFiles
	userCert  string
	userKey   string
	ui        devca.KeyPair
	// dial is the client configuration of start-dev's own readiness checks:
	// the server certificate (whose usages include ClientAuth, as for
	// Temporal's internode calls) trusting the dev CA.
	dial *tls.Config
}

// prepareTLS loads or creates the dev CA of dir, renews the server
// certificate when it no longer covers ip, and issues the client certificates.
func prepareTLS(dir, ip string) (*devTLS, error) {
	if dir == "" {
		return nil, errors.New("devserver: TLS needs StateDir, where the dev CA lives")
	}
	ca, created, err := devca.LoadOrCreate(dir)
	if err != nil {
		return nil, err
	}
	t := &devTLS{ca: ca, caCreated: created}
	if t.server, err = ca.EnsureServerCert(devca.ServerHosts(ip), time.Time{}); err != nil {
		return nil, err
	}
	pair, err := tls.LoadX509KeyPair(t.server.CertFile, t.server.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("dev server certificate: %w", err)
	}
	t.dial = &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	user, err := ca.Issue(devca.Request{CommonName: UserCertCN, TTL: userCertTTL})
	if err != nil {
		return nil, err
	}
	t.userCert, t.userKey = filepath.Join(dir, UserCertFile), filepath.Join(dir, UserKeyFile)
	if err := devca.WritePair(t.userCert, t.userKey, user); err != nil {
		return nil, err
	}
	if t.ui, err = ca.Issue(devca.Request{CommonName: UICertCN, TTL: uiCertValidity}); err != nil {
		return nil, err
	}
	return t, nil
}

// apply sets the Temporal configuration of mTLS everywhere:
//
//   - Global.TLS.Frontend.Server: the public frontend's gRPC port and its
//     HTTP API (service/frontend/http_api_server.go wraps the HTTP listener in
//     GetFrontendServerConfig, v1.32.1) require a client certificate signed by
//     the dev CA.
//   - Global.TLS.Internode.Server and .Client: history, matching, worker,
//     ringpop membership and the internal-frontend's gRPC port speak mTLS too,
//     each presenting the server certificate (Temporal uses the internode
//     server certificate as the internode client certificate). This is not
//     optional: the internal-frontend's HTTP port (Nexus, see serverConfig)
//     is served with the frontend's TLS configuration, since Temporal has one
//     for both HTTP APIs, while the history service calls it with the
//     internode client configuration (with an internal-frontend in the
//     cluster the local frontend client uses it: resource.
//     getFrontendConnectionDetails). Both must then be TLS with a client
//     certificate of the dev CA.
//
// Internode.Client.ServerName is "localhost", a name of the server
// certificate: the system worker's SDK client dials the internal-frontend
// through a resolver URL, from which no server name can be derived.
//
// Global.TLS.Frontend.Client and SystemWorker stay empty: with an
// internal-frontend no Temporal client of this server uses them.
func (t *devTLS) apply(cfg *config.Config) {
	ca := []string{t.ca.CertPath()}
	server := config.ServerTLS{CertFile: t.server.CertFile, KeyFile: t.server.KeyFile, RequireClientAuth: true, ClientCAFiles: ca}
	cfg.Global.TLS = config.RootTLS{
		Frontend:  config.GroupTLS{Server: server},
		Internode: config.GroupTLS{Server: server, Client: config.ClientTLS{RootCAFiles: ca, ServerName: "localhost"}},
	}
}

// uiTLS is the Web UI's client configuration: its certificate, the CA, and the
// frontend's name checked against the server certificate.
func (t *devTLS) uiTLS() *webui.TLSConfig {
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	return &webui.TLSConfig{
		CaData:                 b64(t.ca.CertPEM()),
		CertData:               b64(t.ui.CertPEM),
		KeyData:                b64(t.ui.KeyPEM),
		EnableHostVerification: true,
	}
}
