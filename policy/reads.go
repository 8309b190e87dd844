package policy

import (
	"maps"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
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
			return at + "/" + escapePointer(name), false
		}
		if p, ok := t.fields[name].within(r, at+"/"+escapePointer(name)); !ok {
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
		out = t.fields[name].pointers(at+"/"+escapePointer(name), out)
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
			n = n.child(unescapePointer(seg))
		}
		n.whole = true
	}
	t.normalize()
	return t
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func unescapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
}

// namespaceReads says which of input.claims.namespaces a policy may read.
type namespaceReads uint8

const (
	nsNone   namespaceReads = iota // not at all
	nsTarget                       // only the roles on input.target.namespace
	nsAll                          // any of it
)

// inputReads is what of the input document the active policy may read, found
// by static analysis of its compiled modules at activation. Decisions are cached
// by exactly these values, and the input is built with only them.
type inputReads struct {
	subject, authType bool
	jwt               *pathTree // nil: input.claims.jwt is not read
	namespaces        namespaceReads
	request           *pathTree // nil: input.request is not read
	requestType       bool
	// withInput: a `with input...` modifier replaces what the policy reads
	// (reads then cannot be followed): everything counts as read.
	withInput bool
}

// usesRequest reports whether the policy reads input.request or input.request_type.
func (r *inputReads) usesRequest() bool { return r.request != nil || r.requestType }

// analyzeReads finds what of the input the compiled modules may read. A
// reference to a parent of a document (input.claims, input) reads all below it;
// a variable or computed key reads every key. input.claims.namespaces[ns], where
// ns is only ever bound to input.target.namespace, reads the target namespace's
// roles alone.
func analyzeReads(c *ast.Compiler) inputReads {
	root := &pathTree{}
	targetRoles := false
	withInput := false
	for _, m := range c.Modules {
		bound := targetNamespaceVars(m)
		isTargetNS := func(t *ast.Term) bool {
			v, ok := t.Value.(ast.Var)
			return ok && bound[v]
		}
		ast.WalkExprs(m, func(e *ast.Expr) bool {
			for _, w := range e.With {
				if r, ok := w.Target.Value.(ast.Ref); ok && r[0].Equal(ast.InputRootDocument) {
					withInput = true
				}
			}
			return false
		})
		ast.WalkRefs(m, func(r ast.Ref) bool {
			if !r[0].Equal(ast.InputRootDocument) {
				return false
			}
			// input.claims.namespaces[<target namespace>]...: the roles on the target namespace.
			if len(r) >= 4 && r[1].Equal(keyClaims) && r[2].Equal(keyNamespaces) && isTargetNS(r[3]) {
				targetRoles = true
				return false
			}
			root.add(r[1:])
			return false
		})
	}
	if withInput {
		root = &pathTree{whole: true}
	}
	root.normalize()
	var reads inputReads
	reads.withInput = withInput
	claims := readsOf(root, "claims")
	if claims != nil {
		reads.subject = readsOf(claims, "subject") != nil
		reads.authType = readsOf(claims, "auth_type") != nil
		reads.jwt = readsOf(claims, "jwt")
		switch {
		case readsOf(claims, "namespaces") != nil:
			reads.namespaces = nsAll
		case targetRoles:
			reads.namespaces = nsTarget
		}
	} else if targetRoles {
		reads.namespaces = nsTarget
	}
	reads.request = readsOf(root, "request")
	reads.requestType = readsOf(root, "request_type") != nil
	return reads
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

// targetNamespaceVars finds the variables of m that are bound to
// input.target.namespace by an equality (as the compiler rewrites
// input.claims.namespaces[input.target.namespace] and ns := input.target.namespace).
// Only the compiler's generated variables count: they are unique in a module, so
// whatever else constrains them, a reference keyed by one reads the target's key.
func targetNamespaceVars(m *ast.Module) map[ast.Var]bool {
	targetNS := ast.Ref{ast.InputRootDocument, keyTarget, keyNamespace}
	bound := map[ast.Var]bool{}
	ast.WalkExprs(m, func(e *ast.Expr) bool {
		if e.Negated || !e.IsEquality() && !e.IsAssignment() {
			return false
		}
		ops := e.Operands()
		if len(ops) != 2 {
			return false
		}
		for i, o := range ops {
			v, ok := o.Value.(ast.Var)
			if !ok || !v.IsGenerated() && !strings.HasPrefix(string(v), "__local") {
				continue
			}
			if r, ok := ops[1-i].Value.(ast.Ref); ok && r.Equal(targetNS) {
				bound[v] = true
			}
		}
		return false
	})
	return bound
}
