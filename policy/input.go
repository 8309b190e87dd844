package policy

import (
	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy/internal/projection"
)

// TokenClaims is implemented by the Claims.Extensions of claim mappers that verify
// tokens (package claimmapper does). Its claims become input.claims.jwt, and its
// cache key identifies the caller in the decision cache.
type TokenClaims interface {
	// TokenClaims returns the verified token's claims as JSON-decoded values.
	// The map must not be modified.
	TokenClaims() map[string]any
	// CacheKey identifies the verified token, e.g. a digest of it; never the token.
	CacheKey() string
}

// CertificateClaims is implemented by the Claims.Extensions of a caller that
// presented a client certificate Temporal's TLS layer verified (package
// claimmapper's Token does). Its claims become input.claims.tls.
type CertificateClaims interface {
	// CertificateClaims returns the certificate's identity as JSON-decoded
	// values (claimmapper.CertificateClaims); nil when the caller presented no
	// verified certificate. The map must not be modified.
	CertificateClaims() map[string]any
}

// Input builds the input document of one call, as policies see it, in its JSON form,
// including input.request when the target carries a request. It is what
// `temporal-opa eval` prints; the Authorizer builds the same document directly as
// an OPA value, with only what the active policy reads.
func Input(claims *authorization.Claims, target *authorization.CallTarget) (map[string]any, error) {
	v, err := projection.Whole(claims, target, nil, true)
	if err != nil {
		return nil, err
	}
	return projection.JSON(v)
}
