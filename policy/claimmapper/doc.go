// Package claimmapper turns "Authorization: Bearer <jwt>" into Temporal claims. A
// [Mapper] implements authorization.ClaimMapper of go.temporal.io/server and accepts
// every token Temporal's default JWT claim mapper accepts, with the same roles, while
// checking more (exp required by default, iss, algorithms beyond RS256/ES256) and
// costing a hash lookup for a token it has already verified.
//
// # Keys
//
// [New] collects key sources: the jwks_uri of the issuer's OIDC discovery document
// (<issuer>/.well-known/openid-configuration, whose issuer must equal the configured
// one), JWKS URLs and JWKS files. Each is registered with a jwx jwk.Cache that
// refreshes it every refresh_interval; New loads every source once and fails, naming
// the source, if one cannot be loaded. From each fetched set only public signature
// keys that fit an allowed algorithm are kept (RSA for RS*/PS*, the
// matching curve for ES*, Ed25519 for EdDSA); symmetric keys never are. A fetch that
// fails, or yields no usable key, keeps the source's previous keys. A token whose kid
// is unknown triggers one refetch of every source; concurrent callers share it and
// another starts only refetch_min_interval later, so bogus kids cannot hammer the
// provider. Headers that name keys (jku, x5u, x5c, jwk) are ignored.
//
// # Verification
//
// GetClaims refuses, before parsing, an Authorization value longer than
// max_token_size; it then requires the "Bearer" scheme (case-insensitive, as
// Temporal), a compact JWS whose alg is in the allow-list (never none or HMAC), no
// crit header, and a signature that verifies with the kid's key; a token without kid
// is verified only when exactly one key of the set fits its alg (JWT-SVIDs may omit
// kid), and refused with CodeMissingKID otherwise. Only then is the
// payload decoded and checked: exp (required unless require_exp is false), nbf and iat
// with leeway, iss against issuer, aud against audiences and against
// AuthInfo.Audience (Temporal's audience getter) when set. A refused token gives a
// *[TokenError] with a stable [ErrorCode]; its message never contains the token.
//
// # Several issuers
//
// Config.Issuers (jwt.issuers) lists trusted issuers, each with its own key sources
// and claim settings. [NewIssuers] builds one Mapper per entry and returns a
// [Router], which hands a token to the Mapper of the issuer it names (its unverified
// iss); that Mapper verifies it in full, iss included, with its own keys only, so a
// key of one issuer never verifies a token claiming another (Temporal's default
// mapper merges every key source into one set). A token of an issuer not listed is
// refused with CodeUnknownIssuer. [NewRouter] routes in the same way with a fallback
// mapper for the other tokens.
//
// # Roles
//
// The permissions claim (permissions_claim, default "permissions", a dotted path for
// nested claims such as resource_access.temporal.roles) is an array of
// "<namespace>:<permission>" strings, or with permissions_format: space-separated a
// scope-like string. Each entry is split on the first ':' (or parsed with
// permissions_regex and its groups namespace and role); the permission read, write,
// worker or admin (any case) is OR-ed into Claims.Namespaces[namespace], or into
// Claims.System for "temporal-system" and system_namespace_aliases. Anything else is
// skipped with a debug log and grants nothing. The subject comes from subject_claim
// (default "sub") and must be a string.
//
// # Cache and extensions
//
// Claims.Extensions is a *[Token]: TokenClaims gives the verified claims to policies
// and CacheKey the token's hex SHA-256. Verified tokens are cached by SHA-256 of the
// token (cache_size entries, LRU) until their exp, never past it, and only while the
// key set they were verified with is current: any change of the key set drops them.
// Every call returns a fresh *Claims sharing the cached Extensions.
//
// # Configuration
//
// [Config] is part of the server YAML. [FromTemporal] converts Temporal's
// global.authorization (keySourceURIs, refreshInterval, permissionsClaimName,
// permissionsRegex, audience); unmarshalling our YAML into its result overrides it:
//
//	cfg := claimmapper.FromTemporal(&temporalCfg.Global.Authorization)
//	if err := yaml.Unmarshal(ourYAML, &cfg); err != nil { ... }
//	m, err := claimmapper.New(ctx, cfg, claimmapper.WithLogger(logger))
//	defer m.Close()
//	temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return m })
package claimmapper
