package decisionlog

import (
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/internal/jsonpointer"
)

// MaxValueBytes bounds every string value of an event's input (claims, request
// fields, target) and of its result and custom fields: a longer one is cut to
// this many bytes with its end marked ("…(truncated, N bytes)", see
// policy.Truncate), and its JSON pointer is listed in custom.truncated. A
// caller cannot make the audit trail repeat a megabyte workflow type.
const MaxValueBytes = 4096

// jwtPrefix is the JSON pointer of the token's claims in an event.
const jwtPrefix = "/input/claims/jwt"

var (
	keyClaims = ast.StringTerm("claims")
	keyJWT    = ast.StringTerm("jwt")
)

// keepClaimsRead returns the input document (an OPA object) with
// input.claims.jwt holding only the claims in read, the JSON pointers of the
// claims the deciding policy reads (policy.Event.JWTPaths; nil: none), and the
// pointers of the claims it left out. A claim the policy cannot read as it is
// (a string where the policy reads a key below it) is left out too. input is
// not modified; what it shares with the result is not copied.
func keepClaimsRead(input ast.Value, read []string) (ast.Value, []string) {
	in, ok := input.(ast.Object)
	if !ok {
		return input, nil
	}
	claims := in.Get(keyClaims)
	if claims == nil {
		return input, nil
	}
	co, ok := claims.Value.(ast.Object)
	if !ok {
		return input, nil
	}
	jwt := co.Get(keyJWT)
	if jwt == nil {
		return input, nil
	}
	var erased []string
	kept, keep := prune(jwt.Value, claimTree(read), jwtPrefix, &erased)
	if len(erased) == 0 && keep {
		return input, nil
	}
	newClaims := ast.NewObject()
	co.Foreach(func(k, v *ast.Term) {
		if !k.Equal(keyJWT) {
			newClaims.Insert(k, v)
		} else if keep {
			newClaims.Insert(k, ast.NewTerm(kept))
		}
	})
	if !keep {
		erased = append(erased, jwtPrefix)
	}
	out := ast.NewObject()
	in.Foreach(func(k, v *ast.Term) {
		if k.Equal(keyClaims) {
			v = ast.NewTerm(newClaims)
		}
		out.Insert(k, v)
	})
	return out, erased
}

// readTree is what of a value is read: all of it, some keys, or every key or
// element (each).
type readTree struct {
	whole  bool
	fields map[string]*readTree
	each   *readTree
}

// claimTree is the tree of the pointers below jwtPrefix; empty when there are
// none (nothing is read).
func claimTree(ptrs []string) *readTree {
	t := &readTree{}
	for _, p := range ptrs {
		rest, ok := strings.CutPrefix(p, jwtPrefix)
		if !ok || rest != "" && rest[0] != '/' {
			continue
		}
		n := t
		if rest != "" {
			for _, seg := range strings.Split(rest[1:], "/") {
				if seg == "*" {
					if n.each == nil {
						n.each = &readTree{}
					}
					n = n.each
					continue
				}
				seg = jsonpointer.Unescape(seg)
				if n.fields == nil {
					n.fields = map[string]*readTree{}
				}
				if n.fields[seg] == nil {
					n.fields[seg] = &readTree{}
				}
				n = n.fields[seg]
			}
		}
		n.whole = true
	}
	return t
}

// prune returns v without what t does not read, recording the pointers left
// out; keep is false when v must go as a whole.
func prune(v ast.Value, t *readTree, ptr string, erased *[]string) (out ast.Value, keep bool) {
	if t.whole {
		return v, true
	}
	switch x := v.(type) {
	case ast.Object:
		o := ast.NewObject()
		x.Foreach(func(k, val *ast.Term) {
			name, ok := k.Value.(ast.String)
			var c *readTree
			if ok {
				c = t.fields[string(name)]
			}
			if c == nil {
				c = t.each
			}
			p := ptr + "/" + jsonpointer.Escape(strings.Trim(k.String(), `"`))
			if ok {
				p = ptr + "/" + jsonpointer.Escape(string(name))
			}
			if c != nil {
				if kept, keep := prune(val.Value, c, p, erased); keep {
					o.Insert(k, ast.NewTerm(kept))
					return
				}
			}
			*erased = append(*erased, p)
		})
		return o, true
	case *ast.Array:
		if t.each == nil {
			return nil, false // only named keys are read: an array has none
		}
		elems := make([]*ast.Term, x.Len())
		for i := range x.Len() {
			p := ptr + "/" + strconv.Itoa(i)
			kept, keep := prune(x.Elem(i).Value, t.each, p, erased)
			if !keep {
				elems[i] = ast.NullTerm()
				*erased = append(*erased, p)
				continue
			}
			elems[i] = ast.NewTerm(kept)
		}
		return ast.NewArray(elems...), true
	}
	return nil, false // a scalar read only below itself: undefined for the policy
}

// truncateStrings cuts every string value of v longer than MaxValueBytes,
// returning the pointers of those it cut.
func truncateStrings(v any, ptr string, truncated *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if s, ok := val.(string); ok {
				if len(s) > MaxValueBytes {
					x[k], _ = policy.Truncate(s, MaxValueBytes)
					*truncated = append(*truncated, ptr+"/"+jsonpointer.Escape(k))
				}
				continue
			}
			truncateStrings(val, ptr+"/"+jsonpointer.Escape(k), truncated)
		}
	case []any:
		for i, val := range x {
			if s, ok := val.(string); ok {
				if len(s) > MaxValueBytes {
					x[i], _ = policy.Truncate(s, MaxValueBytes)
					*truncated = append(*truncated, ptr+"/"+strconv.Itoa(i))
				}
				continue
			}
			truncateStrings(val, ptr+"/"+strconv.Itoa(i), truncated)
		}
	}
}

// bounded is s cut to MaxValueBytes.
func bounded(s string) string {
	s, _ = policy.Truncate(s, MaxValueBytes)
	return s
}

var keyRequest = ast.StringTerm("request")

// plainInput reports whether the input document has no input.request, where
// secrets are erased. (Strings to cut are found while encoding: errLongString.)
func plainInput(v ast.Value) bool {
	in, ok := v.(ast.Object)
	return ok && in.Get(keyRequest) == nil
}

// keptClaims are what an event keeps of a token's claims: input.claims.jwt
// (nil when none is kept) and the pointers of the claims erased.
type keptClaims struct {
	jwt    ast.Value
	erased []string
}

// maxKept bounds the tokens whose kept claims are remembered; past it the
// cache starts again empty.
const maxKept = 4096

// keptCache remembers keptClaims by token cache key, for one set of claim
// paths (a policy that reads other claims empties it).
type keptCache struct {
	mu    sync.Mutex
	paths []string
	m     map[string]keptClaims
}

func (c *keptCache) get(key string, paths []string) (keptClaims, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Equal(c.paths, paths) {
		return keptClaims{}, false
	}
	k, ok := c.m[key]
	return k, ok
}

func (c *keptCache) put(key string, paths []string, k keptClaims) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxKept || !slices.Equal(c.paths, paths) {
		c.m, c.paths = make(map[string]keptClaims), slices.Clone(paths)
	}
	c.m[key] = k
}

// jwtOf is input.claims.jwt of an input document; nil when it has none.
func jwtOf(input ast.Value) ast.Value {
	in, ok := input.(ast.Object)
	if !ok {
		return nil
	}
	c := in.Get(keyClaims)
	if c == nil {
		return nil
	}
	co, ok := c.Value.(ast.Object)
	if !ok {
		return nil
	}
	if j := co.Get(keyJWT); j != nil {
		return j.Value
	}
	return nil
}

// claimsOf is the extensions of the event's claims; nil without claims.
func claimsOf(e *policy.Event) any {
	if e.Claims == nil {
		return nil
	}
	return e.Claims.Extensions
}
