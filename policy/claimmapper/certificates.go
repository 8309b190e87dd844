package claimmapper

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"sync"
	"time"

	"go.temporal.io/server/common/authorization"
)

// AuthTypeTLS is the Claims.AuthType of a caller identified by its client
// certificate alone (no token).
const AuthTypeTLS = "tls"

// Certificates is a ClaimMapper that adds the caller's client certificate to
// the claims of another ClaimMapper (a Mapper or an Issuers router), when
// Temporal's TLS layer verified it against the frontend's client CAs (the leaf
// of the connection's first verified chain; a certificate that was not
// verified, or none, counts as none):
//
//   - a call with a verified certificate and no token is mapped to claims of
//     its own: AuthType "tls", the certificate's SPIFFE ID (its URI SAN) or
//     else its subject's common name as Subject, no roles, and the
//     certificate's identity as input.claims.tls (CertificateClaims), so that
//     the policy's role rules can grant it roles;
//   - a call with a token is mapped by the inner mapper, and carries the
//     certificate's identity beside the token's claims when it has one;
//   - a token bound to a certificate (RFC 8705: cnf.x5t#S256, the base64url
//     SHA-256 of the certificate's DER) is accepted only on a connection whose
//     verified certificate has that thumbprint, and refused otherwise with
//     CodeCertificateBinding;
//   - a call with neither is mapped by the inner mapper (claims without roles).
type Certificates struct {
	inner authorization.ClaimMapper
	ids   certCache
}

var _ authorization.ClaimMapperWithAuthInfoRequired = (*Certificates)(nil)

// WithCertificates returns inner with the caller's verified client
// certificate added to its claims, as Certificates describes.
func WithCertificates(inner authorization.ClaimMapper) *Certificates {
	return &Certificates{inner: inner, ids: certCache{m: map[string]*certIdentity{}}}
}

// AuthInfoRequired returns true: Temporal calls GetClaims for every call
// carrying a token or a TLS connection.
func (*Certificates) AuthInfoRequired() bool { return true }

// GetClaims maps ai as Certificates describes. A refused token gives a *TokenError.
func (c *Certificates) GetClaims(ai *authorization.AuthInfo) (*authorization.Claims, error) {
	cert := VerifiedCertificate(ai)
	if cert == nil {
		claims, err := c.inner.GetClaims(ai)
		if err != nil {
			return nil, err
		}
		if bound, _ := boundThumbprint(claims); bound != "" {
			return nil, tokenErr(CodeCertificateBinding, "the token is bound to a client certificate (cnf x5t#S256), and the connection presented no verified certificate")
		}
		return claims, nil
	}
	id := c.ids.get(cert)
	if ai.AuthToken == "" {
		return &authorization.Claims{Subject: id.subject, AuthType: AuthTypeTLS, Extensions: &Token{tls: id.claims, key: "x509:" + id.fingerprint}}, nil
	}
	claims, err := c.inner.GetClaims(ai)
	if err != nil {
		return nil, err
	}
	if bound, ok := boundThumbprint(claims); ok && subtle.ConstantTimeCompare([]byte(bound), []byte(id.x5t)) != 1 {
		return nil, tokenErr(CodeCertificateBinding, "the token is bound to another client certificate than the connection's (cnf x5t#S256)")
	}
	tok, ok := claims.Extensions.(*Token)
	if !ok {
		return claims, nil
	}
	withCert := *tok
	withCert.tls = id.claims
	out := *claims
	out.Extensions = &withCert
	return &out, nil
}

// boundThumbprint is the cnf.x5t#S256 of a verified token's claims: ok when
// the token is bound to a certificate (a cnf claim with x5t#S256, whatever its
// type: a malformed binding binds to nothing, and so refuses every certificate).
func boundThumbprint(claims *authorization.Claims) (x5t string, ok bool) {
	tok, isToken := claims.Extensions.(*Token)
	if !isToken || tok.claims == nil {
		return "", false
	}
	cnf, _ := tok.claims["cnf"].(map[string]any)
	v, present := cnf["x5t#S256"]
	if !present {
		return "", false
	}
	s, _ := v.(string)
	if s == "" {
		s = "\x00" // present but unusable: matches no certificate
	}
	return s, true
}

// VerifiedCertificate is the client certificate of ai that Temporal's TLS
// layer verified: the leaf of the connection's first verified chain; nil when
// the call came without TLS, without a client certificate, or with one that
// was not verified (a server not requiring client certificates does not
// verify them).
func VerifiedCertificate(ai *authorization.AuthInfo) *x509.Certificate {
	if ai == nil || ai.TLSConnection == nil {
		return nil
	}
	chains := ai.TLSConnection.State.VerifiedChains
	if len(chains) == 0 || len(chains[0]) == 0 {
		return nil
	}
	return chains[0][0]
}

// CertificateClaims describes a client certificate as policies see it in
// input.claims.tls, with JSON-decoded values (string, []any, map[string]any):
//
//	subject, issuer      {common_name, organization, organizational_unit, country,
//	                      province, locality, serial_number, string}
//	spiffe_id            the certificate's SPIFFE ID: its single URI SAN with the
//	                     spiffe scheme; "" otherwise
//	uris, dns_names, email_addresses, ip_addresses   its SANs
//	serial               its serial number in lowercase hex
//	fingerprint_sha256   the SHA-256 of its DER in lowercase hex
//	not_before, not_after  its validity, RFC 3339 in UTC
//
// Nothing secret is in it: a certificate is public.
func CertificateClaims(cert *x509.Certificate) map[string]any {
	return newCertIdentity(cert).claims
}

// certIdentity is what a certificate maps to, computed once per certificate.
type certIdentity struct {
	claims      map[string]any
	subject     string
	fingerprint string // hex SHA-256 of the DER
	x5t         string // base64url SHA-256 of the DER (RFC 8705)
}

func newCertIdentity(cert *x509.Certificate) *certIdentity {
	sum := sha256.Sum256(cert.Raw)
	spiffe := spiffeID(cert)
	id := &certIdentity{
		fingerprint: hex.EncodeToString(sum[:]),
		x5t:         base64.RawURLEncoding.EncodeToString(sum[:]),
		subject:     cert.Subject.CommonName,
	}
	if spiffe != "" {
		id.subject = spiffe
	}
	uris := make([]any, len(cert.URIs))
	for i, u := range cert.URIs {
		uris[i] = u.String()
	}
	ips := make([]any, len(cert.IPAddresses))
	for i, ip := range cert.IPAddresses {
		ips[i] = ip.String()
	}
	id.claims = map[string]any{
		"subject":            nameClaims(cert.Subject),
		"issuer":             nameClaims(cert.Issuer),
		"spiffe_id":          spiffe,
		"uris":               uris,
		"dns_names":          anyStrings(cert.DNSNames),
		"email_addresses":    anyStrings(cert.EmailAddresses),
		"ip_addresses":       ips,
		"serial":             cert.SerialNumber.Text(16),
		"fingerprint_sha256": id.fingerprint,
		"not_before":         cert.NotBefore.UTC().Format(time.RFC3339),
		"not_after":          cert.NotAfter.UTC().Format(time.RFC3339),
	}
	return id
}

// spiffeID is the certificate's SPIFFE ID: an X.509-SVID has exactly one URI
// SAN, with the spiffe scheme.
func spiffeID(cert *x509.Certificate) string {
	if len(cert.URIs) != 1 || cert.URIs[0].Scheme != "spiffe" || cert.URIs[0].Host == "" {
		return ""
	}
	return cert.URIs[0].String()
}

func nameClaims(n pkix.Name) map[string]any {
	return map[string]any{
		"common_name":         n.CommonName,
		"organization":        anyStrings(n.Organization),
		"organizational_unit": anyStrings(n.OrganizationalUnit),
		"country":             anyStrings(n.Country),
		"province":            anyStrings(n.Province),
		"locality":            anyStrings(n.Locality),
		"serial_number":       n.SerialNumber,
		"string":              n.String(),
	}
}

func anyStrings(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// certCache keeps the identities of the certificates seen, keyed by their
// DER: a connection presents the same certificate on every call.
type certCache struct {
	mu sync.RWMutex // read on every call with a certificate, written once per certificate
	m  map[string]*certIdentity
}

// maxCachedCerts bounds the cache; it is emptied when full.
const maxCachedCerts = 4096

func (c *certCache) get(cert *x509.Certificate) *certIdentity {
	c.mu.RLock()
	id, ok := c.m[string(cert.Raw)]
	c.mu.RUnlock()
	if ok {
		return id
	}
	id = newCertIdentity(cert)
	c.mu.Lock()
	if len(c.m) >= maxCachedCerts {
		clear(c.m)
	}
	c.m[string(cert.Raw)] = id
	c.mu.Unlock()
	return id
}
