package claimmapper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/server/common/authorization"
)

// Router hands each token to the claim mapper of the issuer it names, read from
// the token's unverified "iss": that mapper then verifies the token in full
// with its own keys, its issuer included, so a key of one issuer never
// verifies a token claiming another. Tokens of no listed issuer go to the
// fallback mapper, or, without one, are refused with CodeUnknownIssuer.
// Calls without a token go to the fallback, or get claims without roles.
type Router struct {
	byIssuer map[string]authorization.ClaimMapper
	fallback authorization.ClaimMapper
	owned    []*Mapper
	maxToken int // the largest authorization value whose iss is read
}

var (
	_ authorization.ClaimMapper                     = (*Router)(nil)
	_ authorization.ClaimMapperWithAuthInfoRequired = (*Router)(nil)
)

// NewRouter routes tokens naming an issuer of byIssuer to its mapper and every
// other call to fallback (nil: refuse tokens of other issuers). Close does not
// close these mappers.
func NewRouter(byIssuer map[string]authorization.ClaimMapper, fallback authorization.ClaimMapper) *Router {
	r := &Router{byIssuer: make(map[string]authorization.ClaimMapper, len(byIssuer)), fallback: fallback, maxToken: 1 << 20}
	for iss, m := range byIssuer {
		r.byIssuer[iss] = m
	}
	return r
}

// With returns a router that also routes tokens of the issuers of byIssuer to
// their mappers (replacing r's route for the same issuer), with r's fallback.
// Close of the result closes nothing: close r.
func (r *Router) With(byIssuer map[string]authorization.ClaimMapper) *Router {
	out := &Router{byIssuer: make(map[string]authorization.ClaimMapper, len(r.byIssuer)+len(byIssuer)), fallback: r.fallback, maxToken: r.maxToken}
	for iss, m := range r.byIssuer {
		out.byIssuer[iss] = m
	}
	for iss, m := range byIssuer {
		out.byIssuer[iss] = m
		limit := 1 << 20 // the largest max_token_size
		if mm, ok := m.(*Mapper); ok {
			limit = mm.cfg.MaxTokenSize
		}
		out.maxToken = max(out.maxToken, limit)
	}
	return out
}

// NewIssuers validates cfg, which must list Issuers, and builds one Mapper per
// entry (see Config.IssuerConfigs), each loading its own key sources now; a
// token of an issuer not listed is refused. Close closes the mappers.
func NewIssuers(ctx context.Context, cfg Config, opts ...Option) (_ *Router, err error) {
	if len(cfg.Issuers) == 0 {
		return nil, errors.New("claimmapper: config issuers: empty; list at least one issuer, or use New for a single issuer")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Router{byIssuer: map[string]authorization.ClaimMapper{}}
	defer func() {
		if err != nil {
			_ = r.Close()
		}
	}()
	for i, e := range cfg.IssuerConfigs() {
		m, err := New(ctx, e, opts...)
		if err != nil {
			return nil, fmt.Errorf("claimmapper: issuers[%d] (%s): %w", i, e.Issuer, err)
		}
		r.owned = append(r.owned, m)
		r.byIssuer[e.Issuer] = m
		r.maxToken = max(r.maxToken, m.cfg.MaxTokenSize)
	}
	return r, nil
}

// GetClaims routes ai to the mapper of its token's issuer.
func (r *Router) GetClaims(ai *authorization.AuthInfo) (*authorization.Claims, error) {
	if ai == nil {
		if r.fallback != nil {
			return r.fallback.GetClaims(ai)
		}
		return nil, tokenErr(CodeNoAuthInfo, "no authorization info")
	}
	var (
		iss string
		ok  bool
	)
	switch {
	case len(ai.AuthToken) <= r.maxToken:
		iss, ok = unverifiedIssuer(ai.AuthToken)
	case r.fallback == nil:
		return nil, tokenErrf(CodeTokenTooLarge, "authorization value of %d bytes exceeds the max_token_size of every issuer", len(ai.AuthToken))
	}
	if m, found := r.byIssuer[iss]; ok && found {
		return m.GetClaims(ai)
	}
	if r.fallback != nil {
		return r.fallback.GetClaims(ai)
	}
	if ai.AuthToken == "" {
		return &authorization.Claims{AuthType: authTypeJWT}, nil
	}
	if !ok {
		// Refused without reading further: no key is looked up for a token
		// that names no issuer.
		if scheme, _, found := strings.Cut(ai.AuthToken, " "); !found || !strings.EqualFold(scheme, "bearer") {
			return nil, tokenErr(CodeInvalidAuthHeader, `want "Bearer <token>"`)
		}
		return nil, tokenErr(CodeUnknownIssuer, "the token has no readable iss; every token must name one of jwt.issuers")
	}
	if len(iss) > 256 {
		return nil, tokenErrf(CodeUnknownIssuer, "issuer %q... is not one of jwt.issuers", iss[:256])
	}
	return nil, tokenErrf(CodeUnknownIssuer, "issuer %q is not one of jwt.issuers", iss)
}

// AuthInfoRequired returns true, as Mapper.
func (*Router) AuthInfoRequired() bool { return true }

// Close closes the mappers NewIssuers built.
func (r *Router) Close() error {
	var errs []error
	for _, m := range r.owned {
		errs = append(errs, m.Close())
	}
	return errors.Join(errs...)
}

// unverifiedIssuer reads "iss" from the payload of "Bearer <jws>" without
// verifying anything; ok is false when there is no string iss to read.
func unverifiedIssuer(authz string) (iss string, ok bool) {
	scheme, raw, found := strings.Cut(authz, " ")
	if !found || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	_, rest, ok1 := strings.Cut(raw, ".")
	p64, _, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 {
		return "", false
	}
	payload, err := b64.DecodeString(p64)
	if err != nil {
		return "", false
	}
	var claims struct {
		Iss *string `json:"iss"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Iss == nil {
		return "", false
	}
	return *claims.Iss, true
}
