package projection

import (
	"fmt"
	"maps"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
)

// nsReads says which of input.claims.namespaces a policy may read.
type nsReads uint8

const (
	nsNone   nsReads = iota // not at all
	nsTarget                // only the roles on input.target.namespace
	nsAll                   // any of it
)

// Reads is what of the input document a compiled policy may read, found by
// static analysis of its modules (Analyze). It keys the decisions of calls
// (Key) and builds their input (Input). It is immutable.
type Reads struct {
	root              *pathTree // every read of input, but those of the target namespace's roles
	subject, authType bool
	issuer            bool
	jwt               *pathTree // nil: input.claims.jwt is not read
	tls               *pathTree // nil: input.claims.tls is not read
	namespaces        nsReads
	request           *pathTree // nil: input.request is not read
	requestType       bool
	grants            bool // input.grants is read
	// withInput: a `with input...` modifier replaces what the policy reads;
	// everything counts as read, and nothing is cached.
	withInput bool
	// varying: the policy calls a built-in whose result is not a function of
	// its arguments (http.send, time.now_ns, io.jwt.decode_verify, ...).
	varying bool
	notes   []Note
}

// Note says where and why a policy defeats the decision cache.
type Note struct {
	Location *ast.Location
	Message  string
}

func (n Note) String() string {
	if n.Location == nil {
		return n.Message
	}
	return fmt.Sprintf("%s:%d: %s", n.Location.File, n.Location.Row, n.Message)
}

// Cacheable reports whether a decision of the policy may be reused for every
// call with the same key: no `with input`, no built-in whose result varies
// between calls with the same arguments, and not the whole request read (no
// two calls would share a key).
func (r *Reads) Cacheable() bool {
	return !r.withInput && !r.varying && (r.request == nil || !r.request.whole)
}

// UsesRequest reports whether the policy reads input.request or input.request_type.
func (r *Reads) UsesRequest() bool { return r.request != nil || r.requestType }

// ReadsTLS reports whether the policy reads input.claims.tls.
func (r *Reads) ReadsTLS() bool { return r.tls != nil }

// ReadsGrants reports whether the policy reads input.grants.
func (r *Reads) ReadsGrants() bool { return r.grants || r.withInput }

// ReadsJWT reports whether the policy reads input.claims.jwt.
func (r *Reads) ReadsJWT() bool { return r.jwt != nil }

// JWTPointers lists the paths of input.claims.jwt the policy reads as JSON
// pointers below /input/claims/jwt ("*" for every key or element), or
// ["/input/claims/jwt"] when it reads the claims whole; nil when it reads none.
func (r *Reads) JWTPointers() []string {
	if r.jwt == nil {
		return nil
	}
	return r.jwt.pointers("/input/claims/jwt", nil)
}

// RequestPointers lists the fields of input.request the policy reads as JSON
// pointers below /input/request; nil when it reads the request whole or not at all.
func (r *Reads) RequestPointers() []string {
	if r.request == nil || r.request.whole {
		return nil
	}
	return r.request.pointers("/input/request", nil)
}

// RequestWithin reports whether every field of input.request the policy may
// read is among recorded (JSON pointers, as RequestPointers lists them); if
// not, it returns the first pointer the policy may read outside them.
func (r *Reads) RequestWithin(recorded []string) (outside string, ok bool) {
	return r.request.within(treeOfPointers("/input/request", recorded), "/input/request")
}

// MayRead reports whether the policy may read the input document at path
// (such as "request", "input" for input.request.input): a reference to it,
// below it, to one of its parents as a whole, or through a computed key counts.
func (r *Reads) MayRead(path ...string) bool {
	if r.withInput {
		return true
	}
	if r.namespaces == nsTarget && len(path) > 0 && path[0] == "claims" && (len(path) == 1 || path[1] == "namespaces") {
		return true
	}
	return r.root.mayReach(path)
}

// Notes lists where the policy defeats the decision cache, in module order.
func (r *Reads) Notes() []Note { return r.notes }

// Analyze finds what of the input the compiled modules may read.
//
// A reference input.a.b reads the value at that path and everything below it;
// a variable or computed key reads every key (with the same reads below). A
// reference to a parent (input.claims, input, a function argument built from
// it) reads all below it. The analysis never follows values through
// variables: whatever a policy does with a value it bound (x := input.claims;
// x.jwt.groups), the reference that bound it already read it whole. Anything
// it does not know reads the whole input.
//
// One shortcut narrows reads: input.claims.namespaces[v] reads only the target
// namespace's roles when v is provably input.target.namespace whenever the
// reference is evaluated. That holds when the first expression of the body
// that mentions v is an equality v = input.target.namespace (=, := or ==, not
// negated, no `with`; or v = w with w so bound), and the reference comes after
// it in the body or in a closure (comprehension, `every`) of a later
// expression; closures inherit their enclosing body's bindings. Bodies are
// evaluated in the compiled order, so no evaluation ever reads another
// namespace's roles through v. An equality in a nested body, a negated one,
// one after another use of v, one in another rule or else branch, or a
// variable bound any other way does not count: such a reference reads every
// namespace's roles.
func Analyze(c *ast.Compiler) *Reads {
	an := &analyzer{root: &pathTree{}}
	for _, name := range slices.Sorted(maps.Keys(c.Modules)) {
		an.module(c.Modules[name])
	}
	return an.result()
}

type analyzer struct {
	root        *pathTree
	targetRoles bool
	withInput   bool
	varying     bool
	notes       []Note
}

var targetNSRef = ast.MustParseRef("input.target.namespace")

func (an *analyzer) result() *Reads {
	root := an.root
	if an.withInput {
		root = &pathTree{whole: true}
	}
	root.normalize()
	r := &Reads{root: root, withInput: an.withInput, varying: an.varying, notes: an.notes}
	if claims := readsOf(root, "claims"); claims != nil {
		r.subject = readsOf(claims, "subject") != nil
		r.issuer = readsOf(claims, "issuer") != nil
		r.authType = readsOf(claims, "auth_type") != nil
		r.jwt = readsOf(claims, "jwt")
		r.tls = readsOf(claims, "tls")
		if readsOf(claims, "namespaces") != nil {
			r.namespaces = nsAll
		}
	}
	if r.namespaces == nsNone && an.targetRoles {
		r.namespaces = nsTarget
	}
	r.request = readsOf(root, "request")
	r.requestType = readsOf(root, "request_type") != nil
	r.grants = readsOf(root, "grants") != nil
	return r
}

func (an *analyzer) module(m *ast.Module) {
	for _, rule := range m.Rules {
		for r := rule; r != nil; r = r.Else {
			an.rule(r)
		}
	}
}

// rule analyzes one rule (an else branch is a rule of its own): its head is
// evaluated with the bindings of its whole body.
func (an *analyzer) rule(r *ast.Rule) {
	bound := an.body(r.Body, nil)
	if r.Head != nil {
		for _, t := range r.Head.Args {
			an.term(t, bound)
		}
		for _, t := range r.Head.Reference {
			an.term(t, bound)
		}
		if r.Head.Key != nil {
			an.term(r.Head.Key, bound)
		}
		if r.Head.Value != nil {
			an.term(r.Head.Value, bound)
		}
	}
}

// varSet holds the variables provably equal to input.target.namespace.
type varSet map[ast.Var]bool

// body analyzes the expressions of a body in evaluation order. inherited holds
// the variables bound to the target namespace on entry (those of the enclosing
// bodies); it returns those bound after the body's last expression.
func (an *analyzer) body(b ast.Body, inherited varSet) varSet {
	bound := make(varSet, len(inherited))
	for v := range inherited {
		bound[v] = true
	}
	seen := map[ast.Var]bool{}
	for _, e := range b {
		an.expr(e, bound)
		v, binds := bindsTarget(e, bound)
		if binds && seen[v] {
			binds = false // a filter on a value bound before: earlier uses saw others
		}
		ast.WalkVars(e, func(x ast.Var) bool {
			seen[x] = true
			return false
		})
		if binds {
			bound[v] = true
		}
	}
	return bound
}

// bindsTarget returns the variable that e equates with the target namespace
// (or with a variable bound to it), if e is such an equality: not negated and
// with no `with` modifier.
func bindsTarget(e *ast.Expr, bound varSet) (ast.Var, bool) {
	if e.Negated || len(e.With) > 0 || !(e.IsEquality() || e.IsAssignment() || isEqualCall(e)) {
		return "", false
	}
	ops := e.Operands()
	if len(ops) != 2 {
		return "", false
	}
	for i, o := range ops {
		if v, ok := o.Value.(ast.Var); ok && !bound[v] && isTargetNamespace(ops[1-i], bound) {
			return v, true
		}
	}
	return "", false
}

func isEqualCall(e *ast.Expr) bool {
	return e.IsCall() && e.Operator().Equal(ast.Equal.Ref())
}

// isTargetNamespace reports whether t is input.target.namespace or a variable
// bound to it.
func isTargetNamespace(t *ast.Term, bound varSet) bool {
	switch v := t.Value.(type) {
	case ast.Var:
		return bound[v]
	case ast.Ref:
		return v.Equal(targetNSRef)
	}
	return false
}

func (an *analyzer) expr(e *ast.Expr, bound varSet) {
	for _, w := range e.With {
		if r, ok := w.Target.Value.(ast.Ref); ok && r[0].Equal(ast.InputRootDocument) {
			an.withInput = true
			an.note(w.Location, "`with input` replaces the input document: decisions of this policy are not cached")
		}
		an.builtinRefs(w.Value, w.Location)
		an.term(w.Value, bound)
	}
	if e.IsCall() {
		an.call(e.Operator(), e.Location)
	}
	switch ts := e.Terms.(type) {
	case *ast.Term:
		an.term(ts, bound)
	case []*ast.Term:
		for i, t := range ts {
			if i == 0 {
				// The operator: a function's name, never a read of input.
				continue
			}
			an.term(t, bound)
		}
	case *ast.SomeDecl:
		for _, t := range ts.Symbols {
			an.term(t, bound)
		}
	case *ast.Every:
		an.term(ts.Domain, bound)
		an.body(ts.Body, bound)
	}
}

// call records a call of a built-in whose result varies between calls with
// the same arguments.
func (an *analyzer) call(op ast.Ref, loc *ast.Location) {
	name := op.String()
	if varyingBuiltin(name) {
		an.varying = true
		an.note(loc, fmt.Sprintf("%s gives results that vary between calls: decisions of this policy are not cached", name))
	}
}

// builtinRefs records a reference to a varying built-in used as a value (the
// replacement of `with f as http.send`).
func (an *analyzer) builtinRefs(t *ast.Term, loc *ast.Location) {
	ast.WalkRefs(t, func(r ast.Ref) bool {
		an.call(r, loc)
		return false
	})
}

// varyingBuiltin reports whether a built-in's result is not a function of its
// arguments: OPA's non-deterministic built-ins, and those that read the clock
// when their arguments do not give a time.
func varyingBuiltin(name string) bool {
	if b, ok := ast.BuiltinMap[name]; ok && b.Nondeterministic {
		return true
	}
	switch name {
	case "io.jwt.decode_verify", "crypto.x509.parse_and_verify_certificates", "crypto.x509.parse_and_verify_certificates_with_options":
		return true
	}
	return false
}

// term analyzes a term evaluated with the bindings bound. Closures
// (comprehensions) are analyzed with their own bodies' bindings.
func (an *analyzer) term(t *ast.Term, bound varSet) {
	if t == nil {
		return
	}
	switch v := t.Value.(type) {
	case ast.Var:
		if v.Equal(ast.InputRootDocument.Value) {
			an.read(ast.Ref{ast.InputRootDocument}, t.Location)
		}
	case ast.Ref:
		an.ref(v, t.Location, bound)
	case ast.Call:
		if len(v) > 0 {
			if op, ok := v[0].Value.(ast.Ref); ok {
				an.call(op, t.Location)
			}
		}
		for _, a := range v[1:] {
			an.term(a, bound)
		}
	case *ast.Array:
		v.Foreach(func(e *ast.Term) { an.term(e, bound) })
	case ast.Set:
		v.Foreach(func(e *ast.Term) { an.term(e, bound) })
	case ast.Object:
		v.Foreach(func(k, e *ast.Term) { an.term(k, bound); an.term(e, bound) })
	case *ast.ArrayComprehension:
		an.term(v.Term, an.body(v.Body, bound))
	case *ast.SetComprehension:
		an.term(v.Term, an.body(v.Body, bound))
	case *ast.ObjectComprehension:
		inner := an.body(v.Body, bound)
		an.term(v.Key, inner)
		an.term(v.Value, inner)
	case ast.Boolean, ast.Null, ast.Number, ast.String:
	default:
		// A term the analysis does not know: it may read anything.
		an.read(ast.Ref{ast.InputRootDocument}, t.Location)
	}
}

// ref analyzes a reference: a read of input when it starts there, and the
// terms of its keys (which may read input themselves).
func (an *analyzer) ref(r ast.Ref, loc *ast.Location, bound varSet) {
	for _, k := range r[1:] {
		an.term(k, bound)
	}
	if !r[0].Equal(ast.InputRootDocument) {
		if _, isVar := r[0].Value.(ast.Var); !isVar {
			an.term(r[0], bound) // a ref on a composite or call value
		}
		return
	}
	// input.claims.namespaces[<the target namespace>]...: its roles alone.
	if len(r) >= 4 && r[1].Equal(keyClaims) && r[2].Equal(keyNamespaces) && isTargetNamespace(r[3], bound) {
		an.targetRoles = true
		return
	}
	an.read(r, loc)
}

// read records a read of the input reference r (r[0] is input).
func (an *analyzer) read(r ast.Ref, loc *ast.Location) {
	an.root.add(r[1:])
	// The request, whole or by every field: no two calls share a key.
	one := &pathTree{}
	one.add(r[1:])
	one.normalize()
	if req := readsOf(one, "request"); req != nil && (req.whole || req.each != nil) {
		an.note(loc, fmt.Sprintf("%s reads the whole request: decisions of this policy are not cached (read request fields by fixed paths, such as input.request.workflow_type.name)", r))
	}
}

func (an *analyzer) note(loc *ast.Location, msg string) {
	an.notes = append(an.notes, Note{Location: loc, Message: msg})
}
