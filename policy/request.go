package policy

import (
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

var (
	keyRequest     = ast.StringTerm("request")
	keyRequestType = ast.StringTerm("request_type")

	requestJSON = protojson.MarshalOptions{UseProtoNames: true}
)

// readsRequest reports whether any module refers to input.request or
// input.request_type, or to input as a whole or by a computed key (which might
// reach them). Policies that do not pay nothing for the request body.
func readsRequest(c *ast.Compiler) bool {
	found := false
	for _, m := range c.Modules {
		ast.WalkRefs(m, func(r ast.Ref) bool {
			if found || !r[0].Equal(ast.InputRootDocument) {
				return found
			}
			if len(r) == 1 {
				found = true
				return true
			}
			switch k := r[1].Value.(type) {
			case ast.String:
				found = k == "request" || k == "request_type"
			default:
				found = true
			}
			return found
		})
		if found {
			return true
		}
	}
	return false
}

// withRequest adds request and request_type to an input object when the call
// carries a proto request.
func withRequest(in ast.Object, req any) error {
	msg, ok := req.(proto.Message)
	if !ok || msg == nil || !msg.ProtoReflect().IsValid() {
		return nil
	}
	b, err := requestJSON.Marshal(msg)
	if err != nil {
		return fmt.Errorf("request to JSON: %w", err)
	}
	var doc any
	if err := util.UnmarshalJSON(b, &doc); err != nil {
		return fmt.Errorf("request JSON: %w", err)
	}
	v, err := ast.InterfaceToValue(doc)
	if err != nil {
		return fmt.Errorf("request value: %w", err)
	}
	in.Insert(keyRequest, ast.NewTerm(v))
	in.Insert(keyRequestType, ast.StringTerm(string(proto.MessageName(msg))))
	return nil
}
