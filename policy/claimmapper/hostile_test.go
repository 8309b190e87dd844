package claimmapper

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"go.temporal.io/server/common/authorization"
)

func isCode(err error, code ErrorCode) bool {
	var te *TokenError
	return errors.As(err, &te) && te.Code == code
}

// TestHostileTokens: every hostile token is refused with its own error code (or, for
// permissions of the wrong shape, accepted with no role), never panics, and the error
// never contains the token. Key-naming headers pointing at an attacker's server are
// never followed.
func TestHostileTokens(t *testing.T) {
	clock := newFakeClock()
	now := clock.Now()
	good := newTestKey(t, "good", "RS256")
	removed := newTestKey(t, "removed", "ES256")
	attacker := newTestKey(t, "good", "RS256") // claims the legitimate kid
	attackerOwnKid := newTestKey(t, "attacker", "RS256")
	srv := newJWKSServer(t, good, removed)
	evil := newJWKSServer(t, attacker, attackerOwnKid)

	m := newTestMapper(t, Config{
		JWKSURLs:           []string{srv.JWKSURL()},
		Issuer:             "https://idp.example.com/realms/test",
		SkipDiscovery:      true,
		Audiences:          []string{"temporal"},
		RefetchMinInterval: time.Minute,
	}, WithClock(clock.Now))

	base := func() map[string]any {
		c := claimsAt(now, "alice", []any{"default:read"})
		c["iss"] = "https://idp.example.com/realms/test"
		c["aud"] = "temporal"
		return c
	}
	with := func(kv ...any) map[string]any {
		c := base()
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}
	valid := good.sign(t, base(), nil)
	parts := strings.Split(valid, ".")

	// The token signed by "removed" is accepted (and cached) before its key goes away.
	removedTok := removed.sign(t, base(), nil)
	if _, err := m.GetClaims(&authorization.AuthInfo{AuthToken: bearer(removedTok)}); err != nil {
		t.Fatalf("token of a key still in the set: %v", err)
	}
	srv.setKeys(good)
	clock.Advance(2 * time.Minute)
	// A token with a fresh unknown kid makes the mapper refetch and see the removal.
	if _, err := m.GetClaims(&authorization.AuthInfo{AuthToken: bearer(newTestKey(t, "nobody", "ES256").sign(t, base(), nil))}); !isCode(err, CodeUnknownKID) {
		t.Fatalf("unknown kid: %v", err)
	}

	rsaPubDER, err := x509.MarshalPKIXPublicKey(good.signer.Public())
	must(t, err)
	rsaPubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaPubDER})
	hs256 := func(secret []byte) string {
		input := seg(map[string]any{"alg": "HS256", "kid": "good", "typ": "JWT"}) + "." + seg(base())
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(input))
		return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	attackerJWK, err := json.Marshal(attacker.pub)
	must(t, err)
	var attackerJWKMap map[string]any
	must(t, json.Unmarshal(attackerJWK, &attackerJWKMap))

	type hostile struct {
		name     string
		auth     string
		wantCode ErrorCode // "" means accepted with no role
	}
	tests := []hostile{
		{"alg none", seg(map[string]any{"alg": "none", "kid": "good"}) + "." + seg(base()) + ".", CodeUnsupportedAlg},
		{"alg none with signature", seg(map[string]any{"alg": "none", "kid": "good"}) + "." + seg(base()) + "." + parts[2], CodeUnsupportedAlg},
		{"alg None capitalized", seg(map[string]any{"alg": "None", "kid": "good"}) + "." + seg(base()) + ".", CodeUnsupportedAlg},
		{"no alg", seg(map[string]any{"kid": "good"}) + "." + seg(base()) + "." + parts[2], CodeUnsupportedAlg},
		{"HS256 with the RSA public key PEM as secret", hs256(rsaPubPEM), CodeUnsupportedAlg},
		{"HS256 with the RSA public key DER as secret", hs256(rsaPubDER), CodeUnsupportedAlg},
		{"alg not in allow-list", seg(map[string]any{"alg": "RS1", "kid": "good"}) + "." + parts[1] + "." + parts[2], CodeUnsupportedAlg},
		{"alg ES256 with the RSA key's kid", newTestKey(t, "good", "ES256").sign(t, base(), nil), CodeKeyMismatch},
		{"unknown kid after refetch", newTestKey(t, "stranger", "RS256").sign(t, base(), nil), CodeUnknownKID},
		{"missing kid signed by a stranger's key", newTestKey(t, "good", "RS256").sign(t, base(), map[string]any{"kid": nil}), CodeBadSignature},
		{"missing kid with no key for its alg", newTestKey(t, "good", "ES256").sign(t, base(), map[string]any{"kid": nil}), CodeMissingKID},
		{"kid not a string", good.sign(t, base(), map[string]any{"kid": 7}), CodeMalformedToken},
		{"tampered payload", parts[0] + "." + seg(with("permissions", []any{"temporal-system:admin"})) + "." + parts[2], CodeBadSignature},
		{"tampered payload one byte", parts[0] + "." + flipChar(parts[1], 10) + "." + parts[2], CodeBadSignature},
		{"tampered header", seg(map[string]any{"alg": "RS256", "kid": "good", "typ": "JWT", "x": 1}) + "." + parts[1] + "." + parts[2], CodeBadSignature},
		{"tampered signature", parts[0] + "." + parts[1] + "." + flipChar(parts[2], 20), CodeBadSignature},
		{"truncated to two segments", parts[0] + "." + parts[1], CodeMalformedToken},
		{"truncated in the payload", parts[0] + "." + parts[1][:len(parts[1])/2], CodeMalformedToken},
		{"truncated signature", parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])/2], CodeBadSignature},
		{"four segments", valid + ".x", CodeMalformedToken},
		{"header not base64", "!!!." + parts[1] + "." + parts[2], CodeMalformedToken},
		{"header not JSON", base64.RawURLEncoding.EncodeToString([]byte("not json")) + "." + parts[1] + "." + parts[2], CodeMalformedToken},
		{"signature not base64", parts[0] + "." + parts[1] + ".***", CodeMalformedToken},
		{"crit header", good.sign(t, base(), map[string]any{"crit": []any{"exp"}, "exp": 1}), CodeUnsupportedHeader},
		{"expired", good.sign(t, with("exp", clock.Now().Add(-time.Second).Unix()), nil), CodeTokenExpired},
		{"exp not a number", good.sign(t, with("exp", "tomorrow"), nil), CodeInvalidClaims},
		{"missing exp", good.sign(t, with("exp", nil), nil), CodeMissingExp},
		{"nbf in the future", good.sign(t, with("nbf", clock.Now().Add(time.Minute).Unix()), nil), CodeTokenNotYetValid},
		{"iat in the future", good.sign(t, with("iat", clock.Now().Add(time.Minute).Unix()), nil), CodeTokenNotYetValid},
		{"wrong iss", good.sign(t, with("iss", "https://evil.example.com/realms/test"), nil), CodeInvalidIssuer},
		{"missing iss", good.sign(t, with("iss", nil), nil), CodeInvalidIssuer},
		{"wrong aud", good.sign(t, with("aud", []any{"account", "other"}), nil), CodeInvalidAudience},
		{"aud not strings", good.sign(t, with("aud", []any{"temporal", 5}), nil), CodeInvalidAudience},
		{"missing aud", good.sign(t, with("aud", nil), nil), CodeInvalidAudience},
		{"oversized", good.sign(t, with("pad", strings.Repeat("A", DefaultMaxTokenSize)), nil), CodeTokenTooLarge},
		{"jku to attacker, signed by attacker, legitimate kid", attacker.sign(t, base(), map[string]any{"jku": evil.JWKSURL()}), CodeBadSignature},
		{"jku to attacker, attacker's kid", attackerOwnKid.sign(t, base(), map[string]any{"jku": evil.JWKSURL()}), CodeUnknownKID},
		{"x5u to attacker", attacker.sign(t, base(), map[string]any{"x5u": evil.URL + "/cert.pem"}), CodeBadSignature},
		{"embedded jwk of attacker", attacker.sign(t, base(), map[string]any{"jwk": attackerJWKMap}), CodeBadSignature},
		{"embedded jwk of attacker, its own kid", attackerOwnKid.sign(t, base(), map[string]any{"jwk": attackerJWKMap, "kid": "attacker"}), CodeUnknownKID},
		{"signed by a key removed after refresh", removedTok, CodeUnknownKID},
		{"non-string sub", good.sign(t, with("sub", 12345), nil), CodeInvalidSubject},
		{"sub object", good.sign(t, with("sub", map[string]any{"id": "alice"}), nil), CodeInvalidSubject},
		{"missing sub", good.sign(t, with("sub", nil), nil), CodeInvalidSubject},
		{"payload not an object", good.signRaw(t, `["alice"]`), CodeMalformedToken},
		{"payload null", good.signRaw(t, `null`), CodeMalformedToken},
		{"permissions as string", good.sign(t, with("permissions", "temporal-system:admin"), nil), ""},
		{"permissions as number", good.sign(t, with("permissions", 8), nil), ""},
		{"permissions as object", good.sign(t, with("permissions", map[string]any{"temporal-system": "admin"}), nil), ""},
		{"permissions as nested arrays", good.sign(t, with("permissions", []any{[]any{"temporal-system:admin"}, []any{[]any{"default:admin"}}}), nil), ""},
		{"permissions with non-strings", good.sign(t, with("permissions", []any{nil, true, 1, map[string]any{"default": "admin"}}), nil), ""},
		{"permissions unknown roles", good.sign(t, with("permissions", []any{"default:root", "default:*", "default:admin:x", "default:ADMIN "}), nil), ""},
	}
	prefixes := map[string]ErrorCode{
		"Basic ":         CodeInvalidAuthHeader,
		"":               CodeInvalidAuthHeader, // no scheme at all
		"Bearer":         CodeInvalidAuthHeader, // no space
		"Bearer  ":       CodeMalformedToken,    // two spaces: as Temporal, the token starts with a space
		"BearerX ":       CodeInvalidAuthHeader,
		"Token ":         CodeInvalidAuthHeader,
		"Bearer\u00a0":   CodeInvalidAuthHeader,
		"Bearer Bearer ": CodeMalformedToken,
	}
	for p, code := range prefixes {
		tests = append(tests, hostile{name: "scheme " + strings.TrimSpace(p) + "|" + p, auth: "raw:" + p + valid, wantCode: code})
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			auth := bearer(tc.auth)
			if raw, ok := strings.CutPrefix(tc.auth, "raw:"); ok {
				auth = raw
			}
			got, err := m.GetClaims(&authorization.AuthInfo{AuthToken: auth})
			if tc.wantCode == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if got.System != 0 || len(roles(got.Namespaces)) != 0 {
					t.Fatalf("granted system=%v namespaces=%v, want nothing", got.System, got.Namespaces)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted with %+v, want %s", got, tc.wantCode)
			}
			if got != nil {
				t.Errorf("claims %+v returned with an error", got)
			}
			if !isCode(err, tc.wantCode) {
				t.Fatalf("got %v, want code %s", err, tc.wantCode)
			}
			if !errors.Is(err, &TokenError{Code: tc.wantCode}) {
				t.Errorf("errors.Is does not match code %s", tc.wantCode)
			}
			if len(tc.auth) > 20 && containsToken(err.Error(), strings.TrimPrefix(tc.auth, "raw:")) {
				t.Errorf("error contains the token: %v", err)
			}
		})
	}
	if n := evil.hits.Load(); n != 0 {
		t.Errorf("the attacker's key server was contacted %d times", n)
	}
	// The unknown-kid cases above (and the setup) share the rate-limited refetches.
	if n := srv.hits.Load(); n > 3 {
		t.Errorf("the key server was hit %d times, want at most 3 (start, one refetch per interval)", n)
	}
}

func flipChar(s string, i int) string {
	b := []byte(s)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func (k *testKey) signRaw(t testing.TB, payload string) string {
	input := seg(map[string]any{"alg": k.alg, "kid": k.kid}) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	return input + "." + k.signInput(t, input)
}

// TestAuthHeader covers empty tokens and the Bearer scheme like Temporal.
func TestAuthHeader(t *testing.T) {
	k := newTestKey(t, "k", "ES256")
	srv := newJWKSServer(t, k)
	m := newTestMapper(t, Config{JWKSURLs: []string{srv.JWKSURL()}})
	tok := k.sign(t, claimsAt(time.Now(), "alice", []any{"default:read"}), nil)

	got, err := m.GetClaims(&authorization.AuthInfo{})
	if err != nil || got.Subject != "" || got.System != 0 || got.Namespaces != nil || got.AuthType != "jwt" || got.Extensions != nil {
		t.Errorf("empty token: got %+v, %v; want empty jwt claims", got, err)
	}
	if _, err := m.GetClaims(nil); !isCode(err, CodeNoAuthInfo) {
		t.Errorf("nil AuthInfo: %v", err)
	}
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		got, err := m.GetClaims(&authorization.AuthInfo{AuthToken: scheme + " " + tok})
		if err != nil || got.Namespaces["default"] != authorization.RoleReader {
			t.Errorf("scheme %q: %+v, %v", scheme, got, err)
		}
	}
	if !m.AuthInfoRequired() {
		t.Error("AuthInfoRequired() = false, want true")
	}
}
