package claimmapper

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"math/big"
	"net/url"
	"strconv"
	"testing"
	"time"

	"go.temporal.io/server/common/authorization"
	"google.golang.org/grpc/credentials"
)

// testCA issues client certificates as a private CA does.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	cert, err := x509.ParseCertificate(der)
	must(t, err)
	return &testCA{cert: cert, key: key}
}

// issue returns a client certificate with the given common name, organization
// and URI SANs.
func (ca *testCA) issue(t testing.TB, serial int64, cn string, org []string, uris ...string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn, Organization: org},
		NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, DNSNames: []string{"worker.payments.svc"},
	}
	for _, u := range uris {
		parsed, err := url.Parse(u)
		must(t, err)
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	must(t, err)
	cert, err := x509.ParseCertificate(der)
	must(t, err)
	return cert
}

// withCert is ai on a TLS connection whose client certificate cert was
// verified (verified false: presented, not verified).
func withCert(ai *authorization.AuthInfo, cert *x509.Certificate, ca *testCA, verified bool) *authorization.AuthInfo {
	if ai == nil {
		ai = &authorization.AuthInfo{}
	}
	state := tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert, ca.cert}}
	if verified {
		state.VerifiedChains = [][]*x509.Certificate{{cert, ca.cert}}
		ai.TLSSubject = &cert.Subject
	}
	ai.TLSConnection = &credentials.TLSInfo{State: state}
	return ai
}

func x5t(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func TestCertificates(t *testing.T) {
	key := newTestKey(t, "k1", "ES256")
	srv := newJWKSServer(t, key)
	m := WithCertificates(newTestMapper(t, Config{JWKSURLs: []string{srv.JWKSURL()}}))
	ca := newTestCA(t)
	svid := ca.issue(t, 0x2a, "payments-worker", []string{"Payments"}, "spiffe://prod.example/ns/payments/sa/worker")
	plain := ca.issue(t, 7, "ci-bot", nil)
	now := time.Now()
	token := key.sign(t, claimsAt(now, "alice", []string{"payments:write"}), nil)
	bound := func(c *x509.Certificate) string {
		cl := claimsAt(now, "alice", []string{"payments:write"})
		cl["cnf"] = map[string]any{"x5t#S256": x5t(c)}
		return key.sign(t, cl, nil)
	}
	malformed := claimsAt(now, "alice", nil)
	malformed["cnf"] = map[string]any{"x5t#S256": 42}

	tests := []struct {
		name     string
		ai       *authorization.AuthInfo
		subject  string
		authType string
		roles    authorization.Role // on payments
		spiffe   string             // input.claims.tls.spiffe_id; "-" for no tls claims
		code     ErrorCode
	}{
		{"certificate alone, SPIFFE ID", withCert(nil, svid, ca, true), "spiffe://prod.example/ns/payments/sa/worker", AuthTypeTLS, 0, "spiffe://prod.example/ns/payments/sa/worker", ""},
		{"certificate alone, common name", withCert(nil, plain, ca, true), "ci-bot", AuthTypeTLS, 0, "", ""},
		{"certificate not verified counts as none", withCert(nil, svid, ca, false), "", "jwt", 0, "-", ""},
		{"neither", &authorization.AuthInfo{}, "", "jwt", 0, "-", ""},
		{"token alone", authInfo(token), "alice", "jwt", authorization.RoleWriter, "-", ""},
		{"token and certificate", withCert(authInfo(token), svid, ca, true), "alice", "jwt", authorization.RoleWriter, "spiffe://prod.example/ns/payments/sa/worker", ""},
		{"bound token with its certificate", withCert(authInfo(bound(svid)), svid, ca, true), "alice", "jwt", authorization.RoleWriter, "spiffe://prod.example/ns/payments/sa/worker", ""},
		{"bound token with another certificate", withCert(authInfo(bound(svid)), plain, ca, true), "", "", 0, "", CodeCertificateBinding},
		{"bound token without a certificate", authInfo(bound(svid)), "", "", 0, "", CodeCertificateBinding},
		{"bound token with its certificate unverified", withCert(authInfo(bound(svid)), svid, ca, false), "", "", 0, "", CodeCertificateBinding},
		{"malformed binding binds to nothing", withCert(authInfo(key.sign(t, malformed, nil)), svid, ca, true), "", "", 0, "", CodeCertificateBinding},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := m.GetClaims(tc.ai)
			if tc.code != "" {
				var te *TokenError
				if !errors.As(err, &te) || te.Code != tc.code {
					t.Fatalf("error %v, want code %s", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Subject != tc.subject || c.AuthType != tc.authType || c.Namespaces["payments"] != tc.roles {
				t.Errorf("claims %+v; want subject %q, auth type %q, payments roles %v", c, tc.subject, tc.authType, tc.roles)
			}
			tok, _ := c.Extensions.(*Token)
			var tlsClaims map[string]any
			if tok != nil {
				tlsClaims = tok.CertificateClaims()
			}
			if tc.spiffe == "-" {
				if tlsClaims != nil {
					t.Errorf("tls claims %v for a caller without a verified certificate", tlsClaims)
				}
				return
			}
			if tlsClaims == nil || tlsClaims["spiffe_id"] != tc.spiffe {
				t.Errorf("tls claims %v, want spiffe_id %q", tlsClaims, tc.spiffe)
			}
		})
	}
	// The token's cached claims are not changed by a call that added a certificate.
	c, err := m.GetClaims(authInfo(token))
	if err != nil || c.Extensions.(*Token).CertificateClaims() != nil {
		t.Fatalf("token alone after a call with a certificate: %+v, %v", c, err)
	}
}

// A bound token whose payload is larger than max_extension_bytes exposes only
// its registered claims to policies; its binding (cnf, RFC 7800) is one of
// them, and is enforced as for any bound token.
func TestCertificateBindingOfLargeTokens(t *testing.T) {
	key := newTestKey(t, "k1", "ES256")
	srv := newJWKSServer(t, key)
	m := WithCertificates(newTestMapper(t, Config{JWKSURLs: []string{srv.JWKSURL()}, MaxExtensionBytes: 1024}))
	ca := newTestCA(t)
	svid := ca.issue(t, 0x2a, "payments-worker", nil, "spiffe://prod.example/ns/payments/sa/worker")
	plain := ca.issue(t, 7, "ci-bot", nil)
	cl := claimsAt(time.Now(), "alice", []string{"payments:write"})
	cl["cnf"] = map[string]any{"x5t#S256": x5t(svid)}
	groups := make([]string, 60)
	for i := range groups {
		groups[i] = "/org/department-" + strconv.Itoa(i) + "/team"
	}
	cl["groups"] = groups
	bound := key.sign(t, cl, nil)

	c, err := m.GetClaims(withCert(authInfo(bound), svid, ca, true))
	if err != nil {
		t.Fatalf("with its certificate: %v", err)
	}
	tok := c.Extensions.(*Token)
	if _, ok := tok.TokenClaims()["groups"]; ok {
		t.Fatalf("claims %v: want the payload over max_extension_bytes, only registered claims exposed", tok.TokenClaims())
	}
	if c.Namespaces["payments"] != authorization.RoleWriter {
		t.Errorf("roles %v, want the token's payments write", c.Namespaces)
	}
	for name, ai := range map[string]*authorization.AuthInfo{
		"another certificate": withCert(authInfo(bound), plain, ca, true),
		"no certificate":      authInfo(bound),
	} {
		_, err := m.GetClaims(ai)
		var te *TokenError
		if !errors.As(err, &te) || te.Code != CodeCertificateBinding {
			t.Errorf("%s: %v, want code %s", name, err, CodeCertificateBinding)
		}
	}
}

func TestCertificateClaims(t *testing.T) {
	ca := newTestCA(t)
	cert := ca.issue(t, 0x2a, "payments-worker", []string{"Payments"}, "spiffe://prod.example/ns/payments/sa/worker")
	got := CertificateClaims(cert)
	sum := sha256.Sum256(cert.Raw)
	want := map[string]any{
		"spiffe_id":          "spiffe://prod.example/ns/payments/sa/worker",
		"serial":             "2a",
		"not_before":         "2026-01-01T00:00:00Z",
		"not_after":          "2027-01-01T00:00:00Z",
		"fingerprint_sha256": base64Hex(sum[:]),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	subject := got["subject"].(map[string]any)
	if subject["common_name"] != "payments-worker" || subject["string"] != "CN=payments-worker,O=Payments" || subject["organization"].([]any)[0] != "Payments" {
		t.Errorf("subject %v", subject)
	}
	if issuer := got["issuer"].(map[string]any); issuer["common_name"] != "test CA" {
		t.Errorf("issuer %v", issuer)
	}
	if d := got["dns_names"].([]any); len(d) != 1 || d[0] != "worker.payments.svc" {
		t.Errorf("dns_names %v", d)
	}
	// Two URI SANs: not an X.509-SVID.
	two := ca.issue(t, 3, "x", nil, "spiffe://a.example/x", "spiffe://b.example/y")
	if id := CertificateClaims(two)["spiffe_id"]; id != "" {
		t.Errorf("spiffe_id of a certificate with two URI SANs: %q", id)
	}
}

func base64Hex(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, x := range b {
		out = append(out, digits[x>>4], digits[x&15])
	}
	return string(out)
}
