package wiring

import (
	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
)

// TrustIssuer makes the server also accept tokens whose "iss" is issuer,
// verified and mapped by m instead of the settings' own claim mapper. start-dev
// uses it to keep trusting its dev signing key when --authz names an identity
// provider. The token's issuer only chooses the mapper; that mapper verifies
// the token in full, its issuer included. Call it before ServerOptions; Close
// closes m.
func (a *Auth) TrustIssuer(issuer string, m *claimmapper.Mapper) {
	if a.extra == nil {
		a.extra = map[string]*claimmapper.Mapper{}
	}
	a.extra[issuer] = m
}

// mappers is the claim mapper the server gets: the settings' mapper alone
// (single jwt issuer), or a claimmapper.Router that hands each token to the
// mapper of its issuer: those of jwt.issuers and of TrustIssuer.
func (a *Auth) mappers() authorization.ClaimMapper {
	extra := make(map[string]authorization.ClaimMapper, len(a.extra))
	for iss, m := range a.extra {
		extra[iss] = m
	}
	switch {
	case a.Issuers != nil && len(extra) == 0:
		return a.Issuers
	case a.Issuers != nil:
		return a.Issuers.With(extra)
	case len(extra) == 0:
		return a.ClaimMapper
	}
	return claimmapper.NewRouter(extra, a.ClaimMapper)
}
