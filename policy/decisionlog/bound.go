package decisionlog

import (
	"strconv"
	"strings"

	"github.com/temporal-opa/temporal-opa/policy"
)

// MaxValueBytes bounds every string value of an event's input (claims, request
// fields, target) and of its result and custom fields: a longer one is cut to
// this many bytes with its end marked ("…(truncated, N bytes)", see
// policy.Truncate), and its JSON pointer is listed in custom.truncated. A
// caller cannot make the audit trail repeat a megabyte workflow type.
const MaxValueBytes = 4096

// jwtPrefix is the JSON pointer of the token's claims in an event.
const jwtPrefix = "/input/claims/jwt"

// keepClaimsRead removes from input.claims.jwt every claim outside read, the
// JSON pointers of the claims the deciding policy reads (policy.Event.JWTPaths;
// nil: none), and returns the pointers it removed. A claim the policy cannot
// read as it is (a string where the policy reads a key below it) is removed too.
func keepClaimsRead(input map[string]any, read []string) []string {
	claims, _ := input["claims"].(map[string]any)
	if claims == nil {
		return nil
	}
	jwt, ok := claims["jwt"]
	if !ok {
		return nil
	}
	var erased []string
	if !prune(jwt, claimTree(read), jwtPrefix, &erased) {
		delete(claims, "jwt")
		erased = append(erased, jwtPrefix)
	}
	return erased
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
				seg = strings.ReplaceAll(strings.ReplaceAll(seg, "~1", "/"), "~0", "~")
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

// prune removes from v what t does not read, recording the pointers removed;
// it reports false when v must go as a whole.
func prune(v any, t *readTree, ptr string, erased *[]string) bool {
	if t.whole {
		return true
	}
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			c := t.fields[k]
			if c == nil {
				c = t.each
			}
			p := ptr + "/" + escapePointer(k)
			if c == nil || !prune(val, c, p, erased) {
				delete(x, k)
				*erased = append(*erased, p)
			}
		}
		return true
	case []any:
		if t.each == nil {
			return false // only named keys are read: an array has none
		}
		for i, val := range x {
			p := ptr + "/" + strconv.Itoa(i)
			if !prune(val, t.each, p, erased) {
				x[i] = nil
				*erased = append(*erased, p)
			}
		}
		return true
	}
	return false // a scalar read only below itself: undefined for the policy
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
					*truncated = append(*truncated, ptr+"/"+escapePointer(k))
				}
				continue
			}
			truncateStrings(val, ptr+"/"+escapePointer(k), truncated)
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
