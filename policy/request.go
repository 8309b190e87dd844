package policy

import (
	"github.com/open-policy-agent/opa/v1/ast"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

var (
	keyRequest     = ast.StringTerm("request")
	keyRequestType = ast.StringTerm("request_type")

	requestJSON = protojson.MarshalOptions{UseProtoNames: true}
)

// readsInput reports whether any module may read the input document at path: a
// reference to it, below it, to one of its parents as a whole (input.claims, input),
// or through a computed key (input[k]) counts.
func readsInput(c *ast.Compiler, path ...string) bool {
	found := false
	for _, m := range c.Modules {
		ast.WalkRefs(m, func(r ast.Ref) bool {
			if found || !r[0].Equal(ast.InputRootDocument) {
				return found
			}
			found = refMayReach(r[1:], path)
			return found
		})
		if found {
			return true
		}
	}
	return false
}

// refMayReach reports whether the ref elements rest (after input) may denote
// path, something below it or something above it.
func refMayReach(rest []*ast.Term, path []string) bool {
	for i, p := range path {
		if i >= len(rest) {
			return true // a parent of path, as a whole
		}
		s, ok := rest[i].Value.(ast.String)
		if !ok {
			return true // a computed key may be p
		}
		if string(s) != p {
			return false
		}
	}
	return true
}

// withRequest adds request (the whole request) and request_type to an input
// object when the call carries a proto request.
func withRequest(in ast.Object, req any) error {
	msg := requestMessage(req)
	if msg == nil {
		return nil
	}
	_, v, err := wholeMessage(msg.ProtoReflect(), nil, true)
	if err != nil {
		return err
	}
	in.Insert(keyRequest, ast.NewTerm(v))
	in.Insert(keyRequestType, ast.StringTerm(string(proto.MessageName(msg))))
	return nil
}
