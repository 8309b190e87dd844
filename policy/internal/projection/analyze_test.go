package projection

import (
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// compile compiles Rego v1 modules as the Authorizer does (without schemas).
func compile(t *testing.T, sources ...string) *ast.Compiler {
	t.Helper()
	ms := map[string]string{}
	for i, src := range sources {
		ms[string(rune('a'+i))+".rego"] = src
	}
	c, err := ast.CompileModulesWithOpt(ms, ast.CompileOpts{ParserOptions: ast.ParserOptions{RegoVersion: ast.RegoV1}})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return c
}

// TestAnalyzeNamespaceShortcut: input.claims.namespaces[v] reads the target
// namespace's roles alone only when v is bound to input.target.namespace before
// every use, in the same body or an enclosing one.
func TestAnalyzeNamespaceShortcut(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		want   nsReads
	}{
		{"nested reference", `package p
x if "admin" in input.claims.namespaces[input.target.namespace]`, nsTarget},
		{"assignment first", `package p
x if {
	ns := input.target.namespace
	"admin" in input.claims.namespaces[ns]
}`, nsTarget},
		{"unification first", `package p
x if {
	ns = input.target.namespace
	"admin" in input.claims.namespaces[ns]
}`, nsTarget},
		{"comparison first", `package p
x if {
	some ns
	input.target.namespace == ns
	"admin" in input.claims.namespaces[ns]
}`, nsAll},
		{"chained variables", `package p
x if {
	a := input.target.namespace
	b := a
	"admin" in input.claims.namespaces[b]
}`, nsTarget},
		{"inherited by a comprehension", `package p
x if {
	ns := input.target.namespace
	count([r | some r in input.claims.namespaces[ns]]) > 1
}`, nsTarget},
		{"inherited by every", `package p
x if {
	ns := input.target.namespace
	every r in ["read"] { r in input.claims.namespaces[ns] }
}`, nsTarget},
		{"issue 17: equality inside a comprehension", `package p
deny contains "admins may act only in their own namespace" if {
	some ns
	"admin" in input.claims.namespaces[ns]
	count([1 | ns == input.target.namespace]) == 0
}`, nsAll},
		{"equality after the use", `package p
x if {
	some ns
	"admin" in input.claims.namespaces[ns]
	ns == input.target.namespace
}`, nsAll},
		{"negated equality", `package p
x if {
	some ns
	input.claims.namespaces[ns]
	not ns == input.target.namespace
}`, nsAll},
		{"equality with a with modifier", `package p
y := 1
x if {
	ns := input.target.namespace with data.p.y as 2
	"admin" in input.claims.namespaces[ns]
}`, nsAll},
		{"equality in another rule", `package p
ns := input.target.namespace
x if {
	some ns
	"admin" in input.claims.namespaces[ns]
}`, nsAll},
		{"equality in the first branch, use in else", `package p
x := 1 if {
	ns := input.target.namespace
	ns == "a"
} else := 2 if {
	some ns
	"admin" in input.claims.namespaces[ns]
}`, nsAll},
		{"function argument", `package p
roles(ns) := input.claims.namespaces[ns]
x if "admin" in roles(input.target.namespace)`, nsAll},
		{"map read whole elsewhere", `package p
x if "admin" in input.claims.namespaces[input.target.namespace]
y if count(input.claims.namespaces) > 2`, nsAll},
		{"object.get", `package p
x if "admin" in object.get(input.claims.namespaces, input.target.namespace, [])`, nsAll},
		{"claims whole", `package p
x if {
	c := input.claims
	"admin" in c.namespaces[input.target.namespace]
}`, nsAll},
		{"comprehension binds its own variable", `package p
x if count([r | ns := input.target.namespace; some r in input.claims.namespaces[ns]]) > 0`, nsTarget},
		{"filter on a captured variable then use inside", `package p
x if {
	some ns
	"admin" in input.claims.namespaces[ns]
	count([r | ns == input.target.namespace; some r in input.claims.namespaces[ns]]) == 0
}`, nsAll},
		{"not read", `package p
x if input.target.namespace == "a"`, nsNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Analyze(compile(t, tc.policy))
			if r.namespaces != tc.want {
				t.Errorf("namespaces read: got %d, want %d (0 none, 1 target only, 2 all)", r.namespaces, tc.want)
			}
		})
	}
}

// TestAnalyzeReads: what of the input each shape of policy reads, whether its
// decisions may be cached, and the notes policy check prints.
func TestAnalyzeReads(t *testing.T) {
	tests := []struct {
		name      string
		policy    string
		jwt       []string // JWTPointers
		request   []string // RequestPointers
		usesReq   bool
		cacheable bool
		note      string // a substring of a note; "" for none
		mayRead   [][]string
		notRead   [][]string
	}{
		{name: "claim by path", policy: `package p
x if "ops" in input.claims.jwt.groups`, jwt: []string{"/input/claims/jwt/groups"}, cacheable: true,
			mayRead: [][]string{{"claims", "jwt"}, {"claims", "jwt", "groups", "x"}}, notRead: [][]string{{"request"}, {"claims", "jwt", "email"}}},
		{name: "claim by computed key", policy: `package p
x if { some k; input.claims.jwt[k] == "x" }`, jwt: []string{"/input/claims/jwt/*"}, cacheable: true},
		{name: "claims through object.get", policy: `package p
x if object.get(input.claims.jwt, ["org", "team"], "") == "red"`, jwt: []string{"/input/claims/jwt"}, cacheable: true},
		{name: "request field by path", policy: `package p
x if input.request.workflow_type.name == "a"`, request: []string{"/input/request/workflow_type/name"}, usesReq: true, cacheable: true},
		{name: "request element fields", policy: `package p
x if input.request.commands[_].start_child_workflow_execution_command_attributes.namespace == "a"`,
			request: []string{"/input/request/commands/*/start_child_workflow_execution_command_attributes/namespace"}, usesReq: true, cacheable: true},
		{name: "request whole", policy: `package p
x if count(input.request) > 2`, usesReq: true, cacheable: false, note: "reads the whole request"},
		{name: "request through walk", policy: `package p
x if { walk(input.request, [p, v]); v == "x" }`, usesReq: true, cacheable: false, note: "reads the whole request"},
		{name: "request by every key", policy: `package p
x if { some k; input.request[k] == "x" }`, request: []string{"/input/request/*"}, usesReq: true, cacheable: true, note: "reads the whole request"},
		{name: "input whole, bound to a variable", policy: `package p
x if { i := input; i.claims.jwt.x == 1 }`, jwt: []string{"/input/claims/jwt"}, usesReq: true, cacheable: false, note: "reads the whole request",
			mayRead: [][]string{{"request", "input"}, {"claims", "subject"}}},
		{name: "input passed to a function", policy: `package p
f(i) := i.request.x
x if f(input) == 1`, jwt: []string{"/input/claims/jwt"}, usesReq: true, cacheable: false, note: "reads the whole request"},
		{name: "with input", policy: `package p
y if input.claims.subject == "a"
x if y with input.claims.subject as "b"`, jwt: []string{"/input/claims/jwt"}, usesReq: true, cacheable: false, note: "`with input`"},
		{name: "clock", policy: `package p
x if time.now_ns() > 0`, cacheable: false, note: "time.now_ns gives results that vary"},
		{name: "token verification reads the clock", policy: `package p
x if { [ok, _, _] := io.jwt.decode_verify("a.b.c", {"secret": "s"}); ok }`, cacheable: false, note: "io.jwt.decode_verify"},
		{name: "varying built-in as a with value", policy: `package p
f(x) := {"status_code": 200}
x if f({"url": "http://127.0.0.1:1", "method": "get"}) with f as http.send`, cacheable: false, note: "http.send"},
		{name: "helper in another package", policy: `package q
team := input.claims.jwt.org.team`, jwt: []string{"/input/claims/jwt/org/team"}, cacheable: true},
		{name: "request type", policy: `package p
x if input.request_type == "a"`, usesReq: true, cacheable: true},
		{name: "data-driven key", policy: `package p
claim := "groups"
x if input.claims.jwt[data.p.claim] == "x"`, jwt: []string{"/input/claims/jwt/*"}, cacheable: true},
		{name: "template of input in a rule head", policy: `package p
msg := sprintf("%v", [input.claims.jwt.email])`, jwt: []string{"/input/claims/jwt/email"}, cacheable: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Analyze(compile(t, tc.policy))
			if got := r.JWTPointers(); strings.Join(got, " ") != strings.Join(tc.jwt, " ") {
				t.Errorf("JWTPointers = %q, want %q", got, tc.jwt)
			}
			if got := r.RequestPointers(); strings.Join(got, " ") != strings.Join(tc.request, " ") {
				t.Errorf("RequestPointers = %q, want %q", got, tc.request)
			}
			if r.UsesRequest() != tc.usesReq {
				t.Errorf("UsesRequest = %v, want %v", r.UsesRequest(), tc.usesReq)
			}
			if r.Cacheable() != tc.cacheable {
				t.Errorf("Cacheable = %v, want %v", r.Cacheable(), tc.cacheable)
			}
			var notes []string
			for _, n := range r.Notes() {
				notes = append(notes, n.String())
				if n.Location == nil || n.Location.File == "" || n.Location.Row == 0 {
					t.Errorf("note without a file:line: %v", n)
				}
			}
			joined := strings.Join(notes, "\n")
			if tc.note == "" && len(notes) > 0 {
				t.Errorf("unexpected notes:\n%s", joined)
			}
			if tc.note != "" && !strings.Contains(joined, tc.note) {
				t.Errorf("notes %q do not mention %q", joined, tc.note)
			}
			for _, p := range tc.mayRead {
				if !r.MayRead(p...) {
					t.Errorf("MayRead(%q) = false", p)
				}
			}
			for _, p := range tc.notRead {
				if r.MayRead(p...) {
					t.Errorf("MayRead(%q) = true", p)
				}
			}
		})
	}
}
