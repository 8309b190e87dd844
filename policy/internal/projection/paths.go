package projection

import (
	"maps"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/temporal-opa/temporal-opa/policy/internal/jsonpointer"
)

// pathTree is what of a JSON-like value a policy may read, found by static
// analysis of its references: the value as a whole, some of its keys (fields),
// or every key or element with the same reads below each (each, for references
// with a variable or computed key, such as input.request.commands[i].x).
type pathTree struct {
	whole  bool
	fields map[string]*pathTree
	each   *pathTree
}

// add records a read of ref (the elements after the tree's root).
func (t *pathTree) add(ref []*ast.Term) {
	n := t
	for _, e := range ref {
		if n.whole {
			return
		}
		if s, ok := e.Value.(ast.String); ok {
			n = n.child(string(s))
			continue
		}
		if n.each == nil {
			n.each = &pathTree{}
		}
		n = n.each
	}
	n.whole = true
	n.fields, n.each = nil, nil
}

func (t *pathTree) child(name string) *pathTree {
	if t.fields == nil {
		t.fields = map[string]*pathTree{}
	}
	c := t.fields[name]
	if c == nil {
		c = &pathTree{}
		t.fields[name] = c
	}
	return c
}

// normalize folds the fields of a node that also has each into each (every key
// is read with each's reads, so also with those of any named key), and makes a
// node whole when everything below it is.
func (t *pathTree) normalize() {
	if t == nil || t.whole {
		return
	}
	if t.each != nil {
		for _, c := range t.fields {
			t.each.union(c)
		}
		t.fields = nil
		t.each.normalize()
		return
	}
	for _, c := range t.fields {
		c.normalize()
	}
}

// union adds the reads of o to t.
func (t *pathTree) union(o *pathTree) {
	if t.whole {
		return
	}
	if o.whole {
		t.whole, t.fields, t.each = true, nil, nil
		return
	}
	for name, c := range o.fields {
		t.child(name).union(c)
	}
	if o.each != nil {
		if t.each == nil {
			t.each = &pathTree{}
		}
		t.each.union(o.each)
	}
}

// within reports whether every read of t is a read of recorded, the reads a
// value was recorded with; else it returns the first path outside it.
func (t *pathTree) within(recorded *pathTree, at string) (string, bool) {
	if t == nil || recorded.whole {
		return "", true
	}
	if t.whole {
		return at, false
	}
	if t.each != nil {
		if recorded.each == nil {
			return at + "/*", false
		}
		if p, ok := t.each.within(recorded.each, at+"/*"); !ok {
			return p, false
		}
	}
	for _, name := range slices.Sorted(maps.Keys(t.fields)) {
		r := recorded.fields[name]
		if r == nil && recorded.each != nil {
			r = recorded.each
		}
		if r == nil {
			return at + "/" + jsonpointer.Escape(name), false
		}
		if p, ok := t.fields[name].within(r, at+"/"+jsonpointer.Escape(name)); !ok {
			return p, false
		}
	}
	return "", true
}

// pointers lists the reads of t as JSON pointers below at, "*" standing for
// every key or element.
func (t *pathTree) pointers(at string, out []string) []string {
	if t.whole {
		return append(out, at)
	}
	if t.each != nil {
		return t.each.pointers(at+"/*", out)
	}
	for _, name := range slices.Sorted(maps.Keys(t.fields)) {
		out = t.fields[name].pointers(at+"/"+jsonpointer.Escape(name), out)
	}
	return out
}

// treeOfPointers is the inverse of pointers, for pointers below prefix.
func treeOfPointers(prefix string, ptrs []string) *pathTree {
	t := &pathTree{}
	for _, p := range ptrs {
		rest, ok := strings.CutPrefix(p, prefix)
		if !ok || rest != "" && rest[0] != '/' {
			continue
		}
		n := t
		for _, seg := range strings.Split(rest, "/")[1:] {
			if seg == "*" {
				if n.each == nil {
					n.each = &pathTree{}
				}
				n = n.each
				continue
			}
			n = n.child(jsonpointer.Unescape(seg))
		}
		n.whole = true
	}
	t.normalize()
	return t
}

// mayReach reports whether a read recorded in t may denote path, something
// below it or something above it (a parent read whole, or a computed key).
func (t *pathTree) mayReach(path []string) bool {
	n := t
	for _, p := range path {
		switch {
		case n.whole:
			return true
		case n.each != nil:
			n = n.each
		default:
			c := n.fields[p]
			if c == nil {
				return false
			}
			n = c
		}
	}
	return true
}

// readsOf returns the reads below key of t: t itself when t is read whole or by
// every key, nil when key is not read.
func readsOf(t *pathTree, key string) *pathTree {
	switch {
	case t == nil:
		return nil
	case t.whole:
		return t
	case t.each != nil:
		return t.each
	}
	return t.fields[key]
}
