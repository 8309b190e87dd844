package claimmapper

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"math"
	"strings"
	"time"

	"go.temporal.io/server/common/authorization"
)

// b64 decodes JWS segments. Like Temporal's parser it does not insist on canonical
// trailing bits; the signature covers the encoded text, so this grants nothing.
var b64 = base64.RawURLEncoding

type jwsHeader struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
	// jku, x5u, x5c and jwk are deliberately not read: keys come only from the
	// configured sources.
}

// verifySignature parses a compact JWS, checks its algorithm, finds its key by kid
// (refetching the key sources once, rate limited, for an unknown kid), verifies the
// signature and only then decodes the payload. It returns the claims, the payload
// size and the key set generation used.
func (m *Mapper) verifySignature(raw string, ks *keySet) (map[string]any, int, uint64, *TokenError) {
	h64, rest, ok1 := strings.Cut(raw, ".")
	p64, s64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s64, ".") {
		return nil, 0, 0, tokenErr(CodeMalformedToken, "want three dot-separated segments (compact JWS)")
	}
	hb, err := b64.DecodeString(h64)
	if err != nil {
		return nil, 0, 0, &TokenError{Code: CodeMalformedToken, Reason: "header is not base64url", Err: err}
	}
	var hdr jwsHeader
	if err := json.Unmarshal(hb, &hdr); err != nil {
		return nil, 0, 0, &TokenError{Code: CodeMalformedToken, Reason: "header is not a JSON object with string alg and kid", Err: err}
	}
	verifier, allowed := verifiers[hdr.Alg]
	if !allowed || !m.keys.allowed[hdr.Alg] {
		switch {
		case hdr.Alg == "" || strings.EqualFold(hdr.Alg, "none"):
			return nil, 0, 0, tokenErr(CodeUnsupportedAlg, "unsigned tokens (alg none) are never accepted")
		case strings.HasPrefix(strings.ToUpper(hdr.Alg), "HS"):
			return nil, 0, 0, tokenErrf(CodeUnsupportedAlg, "alg %s (HMAC) is never accepted", short(hdr.Alg))
		case allowed:
			return nil, 0, 0, tokenErrf(CodeUnsupportedAlg, "alg %s is not in the algorithms allow-list", short(hdr.Alg))
		default:
			return nil, 0, 0, tokenErrf(CodeUnsupportedAlg, "alg %s is not supported", short(hdr.Alg))
		}
	}
	if len(hdr.Crit) > 0 && string(hdr.Crit) != "null" {
		return nil, 0, 0, tokenErr(CodeUnsupportedHeader, "crit header extensions are not supported")
	}
	sig, err := b64.DecodeString(s64)
	if err != nil {
		return nil, 0, 0, &TokenError{Code: CodeMalformedToken, Reason: "signature is not base64url", Err: err}
	}

	var candidates []*keyEntry
	if hdr.Kid == "" {
		// JWT-SVIDs may omit kid: accepted only when exactly one key of the
		// issuer's set fits the token's algorithm, so no key is ever guessed.
		for _, k := range ks.all {
			if k.fits(hdr.Alg) {
				candidates = append(candidates, k)
			}
		}
		if len(candidates) != 1 {
			return nil, 0, 0, tokenErrf(CodeMissingKID, "no kid header, and the key set has %d keys for alg %s (a token without kid needs exactly one)", len(candidates), hdr.Alg)
		}
	} else {
		var known bool
		candidates, known = ks.byKID[hdr.Kid]
		if !known && m.keys.refetch() {
			ks = m.keys.current.Load()
			candidates, known = ks.byKID[hdr.Kid]
		}
		if !known {
			return nil, 0, 0, tokenErrf(CodeUnknownKID, "kid %s is not in the key set", short(hdr.Kid))
		}
	}
	signingInput := []byte(raw[:len(h64)+1+len(p64)])
	fitted := false
	verifiedOK := false
	for _, k := range candidates {
		if !k.fits(hdr.Alg) {
			continue
		}
		fitted = true
		if verifier.Verify(signingInput, sig, k.pub) == nil {
			verifiedOK = true
			break
		}
	}
	if !fitted {
		return nil, 0, 0, tokenErrf(CodeKeyMismatch, "the key with kid %s cannot verify alg %s", short(hdr.Kid), hdr.Alg)
	}
	if !verifiedOK {
		return nil, 0, 0, tokenErr(CodeBadSignature, "signature does not verify")
	}

	pb, err := b64.DecodeString(p64)
	if err != nil {
		return nil, 0, 0, &TokenError{Code: CodeMalformedToken, Reason: "payload is not base64url", Err: err}
	}
	var claims map[string]any
	if err := json.Unmarshal(pb, &claims); err != nil || claims == nil {
		return nil, 0, 0, &TokenError{Code: CodeMalformedToken, Reason: "payload is not a JSON object", Err: err}
	}
	return claims, len(pb), ks.gen, nil
}

// numericDate reads a NumericDate claim (seconds since the epoch, a JSON number).
func numericDate(claims map[string]any, name string) (time.Time, bool, *TokenError) {
	v, ok := claims[name]
	if !ok {
		return time.Time{}, false, nil
	}
	f, isNum := v.(float64)
	if !isNum {
		return time.Time{}, false, tokenErrf(CodeInvalidClaims, "%s is %s, want a number", name, describe(v, true))
	}
	const limit = 1 << 40 // about 35000 years; keeps time arithmetic in range
	f = math.Max(-limit, math.Min(limit, f))
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// mapPermissions reads the permissions claim into v's roles. Entries that are not
// strings, are malformed or name an unknown permission are skipped: they never grant.
func (m *Mapper) mapPermissions(claims map[string]any, v *verified) {
	val, found := lookup(claims, m.cfg.PermissionsClaim, m.permPath)
	if !found {
		return
	}
	switch p := val.(type) {
	case []any:
		for _, e := range p {
			s, ok := e.(string)
			if !ok {
				m.ignore("permission entry is not a string", slog.String("type", describe(e, true)))
				continue
			}
			m.addPermission(s, v)
		}
	case string:
		if !m.spaceSep {
			m.ignore("permissions claim is a string; set permissions_format: space-separated to read it")
			return
		}
		for _, s := range strings.Fields(p) {
			m.addPermission(s, v)
		}
	default:
		m.ignore("permissions claim is not an array of strings", slog.String("type", describe(val, true)))
	}
}

func (m *Mapper) addPermission(p string, v *verified) {
	var ns, perm string
	if m.regex != nil {
		match := m.regex.FindStringSubmatch(p)
		if match == nil {
			m.ignore("permission does not match permissions_regex", slog.String("entry", clip(p)))
			return
		}
		ns, perm = match[m.nsIdx], match[m.roleIdx]
	} else {
		var ok bool
		if ns, perm, ok = strings.Cut(p, ":"); !ok {
			m.ignore("permission is not <namespace>:<permission>", slog.String("entry", clip(p)))
			return
		}
	}
	role := permissionToRole(perm)
	if role == authorization.RoleUndefined {
		m.ignore("unknown permission", slog.String("entry", clip(p)))
		return
	}
	if ns == "" {
		m.ignore("permission has an empty namespace", slog.String("entry", clip(p)))
		return
	}
	if m.system[ns] {
		v.system |= role
		return
	}
	if v.namespaces == nil {
		v.namespaces = make(map[string]authorization.Role)
	}
	v.namespaces[ns] |= role
}

func (m *Mapper) ignore(msg string, attrs ...slog.Attr) {
	if m.logger.Enabled(context.Background(), slog.LevelDebug) {
		m.logger.LogAttrs(context.Background(), slog.LevelDebug, "claimmapper: ignoring "+msg, attrs...)
	}
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// permissionToRole matches Temporal: the permission is lower-cased, then compared.
func permissionToRole(p string) authorization.Role {
	switch strings.ToLower(p) {
	case "read":
		return authorization.RoleReader
	case "write":
		return authorization.RoleWriter
	case "admin":
		return authorization.RoleAdmin
	case "worker":
		return authorization.RoleWorker
	}
	return authorization.RoleUndefined
}
