package projection

import (
	"encoding/binary"
	"maps"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
	"go.temporal.io/server/common/authorization"
)

// MaxKeyBytes bounds a decision cache key: a call whose key would be longer
// is not cached.
const MaxKeyBytes = 1024

// Key writes the decision cache key of a call into buf: every value of the
// input document the policy reads, each tagged and length-prefixed, so that
// two calls share a key only when the policy reads the same values in both.
// ok is false when the call cannot be cached (the policy reads the whole
// request, or the key would be longer than MaxKeyBytes). Only a Cacheable
// policy's keys may be used.
func (r *Reads) Key(buf []byte, c *authorization.Claims, t *authorization.CallTarget, g *Grants) (key []byte, ok bool) {
	b := buf[:0]
	b = appendString(b, t.APIName)
	b = appendString(b, t.Namespace)
	b = appendString(b, t.NexusEndpointName)
	if c == nil {
		b = append(b, tagNull)
	} else {
		b = append(b, tagObject)
		if r.subject {
			b = appendString(b, c.Subject)
		}
		if r.issuer {
			b = appendString(b, IssuerOf(c.Extensions))
		}
		if r.authType {
			b = appendString(b, c.AuthType)
		}
		b = binary.AppendUvarint(b, uint64(uint32(c.System)))
		switch r.namespaces {
		case nsTarget:
			role, held := c.Namespaces[t.Namespace]
			b = appendRole(b, role, held)
		case nsAll:
			b = binary.AppendUvarint(b, uint64(len(c.Namespaces)))
			for _, ns := range sortedNamespaces(c.Namespaces) {
				b = appendString(b, ns)
				b = binary.AppendUvarint(b, uint64(uint32(c.Namespaces[ns])))
			}
		}
		if r.jwt != nil {
			var err error
			if b, err = appendJWTKey(b, c.Extensions, r.jwt); err != nil {
				return nil, false
			}
		}
		if r.tls != nil {
			if tls := certificateClaims(c.Extensions); tls != nil {
				// Read whole, the certificate is keyed by its fingerprint (the
				// SHA-256 of its DER), which determines every claim of it.
				if fp, ok := tls["fingerprint_sha256"].(string); ok && r.tls.whole && fp != "" {
					b = appendString(append(b, tagString), fp)
				} else {
					b = keyJSON(append(b, tagObject), tls, r.tls)
				}
			} else {
				b = append(b, tagAbsent)
			}
		}
	}
	if r.grants {
		if g == nil || g.Key == "" {
			b = append(b, tagAbsent)
		} else {
			b = appendString(append(b, tagString), g.Key)
		}
	}
	if r.UsesRequest() {
		msg := requestMessage(t.Request)
		switch {
		case msg == nil:
			b = append(b, tagAbsent)
		case r.request != nil && r.request.whole:
			return nil, false // the whole request: no two calls share it
		default:
			if r.requestType {
				b = appendString(b, string(msg.ProtoReflect().Descriptor().FullName()))
			}
			if r.request != nil {
				var err error
				if b, err = keyMessage(b, msg.ProtoReflect(), r.request); err != nil {
					return nil, false
				}
			}
		}
	}
	if len(b) > MaxKeyBytes {
		return nil, false
	}
	return b, true
}

func appendRole(b []byte, role authorization.Role, held bool) []byte {
	if !held {
		return append(b, tagAbsent)
	}
	return binary.AppendUvarint(append(b, tagTrue), uint64(uint32(role)))
}

func sortedNamespaces(m map[string]authorization.Role) []string {
	if len(m) == 1 {
		for ns := range m {
			return []string{ns}
		}
	}
	return slices.Sorted(maps.Keys(m))
}

// appendJWTKey writes the token's claims the policy reads: by the verified
// token's own cache key when it reads them whole, else the values it reads.
func appendJWTKey(b []byte, ext any, t *pathTree) ([]byte, error) {
	claims, tokenKey := tokenClaims(ext)
	if claims == nil {
		return append(b, tagAbsent), nil
	}
	if t.whole && tokenKey != "" {
		return appendString(append(b, tagString), tokenKey), nil
	}
	return keyJSON(b, claims, t), nil
}

func tokenClaims(ext any) (claims map[string]any, key string) {
	switch e := ext.(type) {
	case tokenClaimer:
		return e.TokenClaims(), e.CacheKey()
	case map[string]any:
		return e, ""
	}
	return nil, ""
}

// Input builds the input document the policy evaluates for a call: with
// input.claims.jwt and input.request holding only the values it reads, and
// input.claims.namespaces only the target namespace's roles when that is all it
// reads. The policy sees the same value at every path it reads as in the whole
// document (Whole).
func (r *Reads) Input(c *authorization.Claims, t *authorization.CallTarget, g *Grants) (ast.Value, error) {
	if t == nil {
		t = &authorization.CallTarget{}
	}
	cv, err := r.claimsValue(c, t)
	if err != nil {
		return nil, err
	}
	in := ast.NewObject(
		[2]*ast.Term{keyClaims, ast.NewTerm(cv)},
		[2]*ast.Term{keyTarget, ast.NewTerm(targetValue(t))},
		[2]*ast.Term{keyGrants, g.term()},
	)
	if r.UsesRequest() {
		if msg := requestMessage(t.Request); msg != nil {
			if r.request != nil {
				v, err := valueMessage(msg.ProtoReflect(), r.request)
				if err != nil {
					return nil, err
				}
				in.Insert(keyRequest, ast.NewTerm(v))
			}
			in.Insert(keyRequestType, ast.StringTerm(string(msg.ProtoReflect().Descriptor().FullName())))
		}
	}
	return in, nil
}

func (r *Reads) claimsValue(c *authorization.Claims, t *authorization.CallTarget) (ast.Value, error) {
	if c == nil {
		return ast.Null{}, nil
	}
	if r.withInput {
		return claimsValue(c, true)
	}
	var nss ast.Object
	switch r.namespaces {
	case nsAll:
		return r.claimsWith(c, namespacesValue(c.Namespaces))
	case nsTarget:
		nss = ast.NewObject()
		if role, held := c.Namespaces[t.Namespace]; held {
			nss.Insert(ast.StringTerm(t.Namespace), ast.NewTerm(rolesValue(role)))
		}
	default:
		nss = ast.NewObject()
	}
	return r.claimsWith(c, nss)
}

func (r *Reads) claimsWith(c *authorization.Claims, nss ast.Object) (ast.Value, error) {
	var jwt ast.Value = ast.NewObject()
	if r.jwt != nil {
		claims, _ := tokenClaims(c.Extensions)
		if claims != nil {
			var err error
			if r.jwt.whole {
				jwt, err = JSONValue(claims)
			} else {
				jwt, err = valueJSON(claims, r.jwt)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	obj := ast.NewObject(
		[2]*ast.Term{keySubject, ast.StringTerm(c.Subject)},
		[2]*ast.Term{keyIssuer, ast.StringTerm(IssuerOf(c.Extensions))},
		[2]*ast.Term{keyAuthType, ast.StringTerm(c.AuthType)},
		[2]*ast.Term{keySystem, ast.NewTerm(rolesValue(c.System))},
		[2]*ast.Term{keyNamespaces, ast.NewTerm(nss)},
		[2]*ast.Term{keyJWT, ast.NewTerm(jwt)},
	)
	if r.tls != nil {
		// Present exactly when the caller presented a verified certificate,
		// as in the whole document, so that `not input.claims.tls` holds alike.
		if tls := certificateClaims(c.Extensions); tls != nil {
			v, err := valueJSON(tls, r.tls)
			if err != nil {
				return nil, err
			}
			obj.Insert(keyTLS, ast.NewTerm(v))
		}
	}
	return obj, nil
}

func namespacesValue(m map[string]authorization.Role) ast.Object {
	terms := make([][2]*ast.Term, 0, len(m))
	for ns, role := range m {
		terms = append(terms, [2]*ast.Term{ast.StringTerm(ns), ast.NewTerm(rolesValue(role))})
	}
	return ast.NewObject(terms...)
}
