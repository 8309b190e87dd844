package wiring

import (
	"encoding/base64"
	"encoding/json"
	"strings"

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

// mappers is the settings' mapper alone, or an issuerMux over it and the
// mappers of TrustIssuer.
func (a *Auth) mappers() authorization.ClaimMapper {
	if len(a.extra) == 0 {
		return a.ClaimMapper
	}
	mux := issuerMux{fallback: a.ClaimMapper, byIssuer: map[string]authorization.ClaimMapper{}}
	for iss, m := range a.extra {
		mux.byIssuer[iss] = m
	}
	return mux
}

// issuerMux hands each token to the mapper of its (unverified) issuer, and
// every other call, tokens without a readable issuer included, to fallback.
type issuerMux struct {
	fallback authorization.ClaimMapper
	byIssuer map[string]authorization.ClaimMapper
}

var _ authorization.ClaimMapper = issuerMux{}

func (m issuerMux) GetClaims(ai *authorization.AuthInfo) (*authorization.Claims, error) {
	if ai != nil {
		if cm, ok := m.byIssuer[unverifiedIssuer(ai.AuthToken)]; ok {
			return cm.GetClaims(ai)
		}
	}
	return m.fallback.GetClaims(ai)
}

func (issuerMux) AuthInfoRequired() bool { return true }

// unverifiedIssuer reads "iss" from the payload of "Bearer <jws>" without
// verifying anything; "" when there is none.
func unverifiedIssuer(authz string) string {
	_, raw, ok := strings.Cut(authz, " ")
	if !ok || len(raw) > 64<<10 {
		return ""
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return ""
	}
	return claims.Iss
}
