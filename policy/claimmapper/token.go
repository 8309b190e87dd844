package claimmapper

// Token is the Claims.Extensions value of a verified token. The authorizer detects it
// through an interface with these two methods and hands the claims to policies.
type Token struct {
	claims map[string]any
	key    string
	issuer string
	tls    map[string]any // the verified client certificate's claims; nil without one
}

// CertificateClaims returns the claims of the client certificate the caller
// presented and Temporal's TLS layer verified (see [CertificateClaims]); nil
// when it presented none. Shared: do not modify.
func (t *Token) CertificateClaims() map[string]any { return t.tls }

// TokenClaims returns the verified token's claims as decoded by encoding/json (string,
// float64, bool, nil, []any, map[string]any), bounded by max_extension_bytes. The map
// is shared by every request presenting the same token: do not modify it.
func (t *Token) TokenClaims() map[string]any { return t.claims }

// Issuer returns the configured issuer (jwt.issuer, or the jwt.issuers entry)
// that verified the token: the token's iss, checked; "" when the mapper that
// verified it has no issuer configured (key sources alone).
func (t *Token) Issuer() string { return t.issuer }

// CacheKey returns the hex SHA-256 of the token: it identifies the verified token
// (same key, same claims and roles for one Mapper) without revealing it.
func (t *Token) CacheKey() string { return t.key }
