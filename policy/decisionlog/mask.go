package decisionlog

import (
	"strconv"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/temporal-opa/temporal-opa/policy/internal/jsonpointer"
)

// Message types whose values are user data: erased from input.request wherever
// a field of one of these types appears.
const (
	payloadType  protoreflect.FullName = "temporal.api.common.v1.Payload"
	payloadsType protoreflect.FullName = "temporal.api.common.v1.Payloads"
	anyType      protoreflect.FullName = "google.protobuf.Any"
	dataBlobType protoreflect.FullName = "temporal.api.common.v1.DataBlob" // encoded history events, with their payloads
)

// secretFields are fields, by full name (message.field), whose values are user
// data or credentials, in whatever request the message appears: Nexus headers
// (often credentials), the opaque data of an internal callback, and the
// free-text message and stack trace of a failure (user data, often personal;
// a failure's encoded attributes and details are payloads, erased as such).
var secretFields = map[protoreflect.FullName]bool{
	"temporal.api.common.v1.Callback.Nexus.header":                true,
	"temporal.api.common.v1.Callback.Internal.data":               true,
	"temporal.api.failure.v1.Failure.message":                     true,
	"temporal.api.failure.v1.Failure.stack_trace":                 true,
	"temporal.api.nexus.v1.Failure.message":                       true,
	"temporal.api.nexus.v1.Failure.stack_trace":                   true,
	"temporal.api.nexus.v1.Failure.details":                       true,
	"temporal.api.nexus.v1.Failure.metadata":                      true,
	"temporal.api.nexus.v1.Request.header":                        true,
	"temporal.api.nexus.v1.StartOperationRequest.callback_header": true,
}

// secretNames are field names whose values are erased in any message: Nexus
// operation headers and callback headers, namespace security tokens.
var secretNames = map[protoreflect.Name]bool{
	"nexus_header":    true,
	"callback_header": true,
	"security_token":  true,
}

// eraseSecrets removes from input.request (the JSON form of a Temporal request,
// with proto field names) every task token, payload, Nexus header, callback
// data and failure text, walking the request's proto descriptor, and returns
// the erased JSON pointers. A request whose type is unknown is erased whole:
// what cannot be checked is not logged.
func eraseSecrets(input map[string]any) []string {
	req, ok := input["request"].(map[string]any)
	if !ok {
		return nil
	}
	name, _ := input["request_type"].(string)
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(name))
	if err != nil {
		delete(input, "request")
		return []string{"/input/request"}
	}
	var erased []string
	eraseMessage(req, mt.Descriptor(), "/input/request", &erased)
	return erased
}

// secret reports whether a field holds a task token, a credential or user
// data: by its message type, its full name or its name.
func secret(fd protoreflect.FieldDescriptor) bool {
	if fd.Kind() == protoreflect.BytesKind && strings.HasSuffix(string(fd.Name()), "task_token") {
		return true
	}
	if secretNames[fd.Name()] || secretFields[fd.FullName()] {
		return true
	}
	md := fd.Message()
	if fd.IsMap() {
		md = fd.MapValue().Message()
	}
	if md == nil {
		return false
	}
	switch md.FullName() {
	case payloadType, payloadsType, anyType, dataBlobType:
		return true
	}
	return false
}

func eraseMessage(obj map[string]any, md protoreflect.MessageDescriptor, ptr string, erased *[]string) {
	fields := md.Fields()
	for key, val := range obj {
		fd := fields.ByName(protoreflect.Name(key))
		if fd == nil {
			fd = fields.ByJSONName(key)
		}
		p := ptr + "/" + jsonpointer.Escape(key)
		if fd == nil {
			// Not a field of the message as the descriptor knows it: not checkable.
			delete(obj, key)
			*erased = append(*erased, p)
			continue
		}
		if secret(fd) {
			delete(obj, key)
			*erased = append(*erased, p)
			continue
		}
		eraseValue(val, fd, p, erased)
	}
}

func eraseValue(val any, fd protoreflect.FieldDescriptor, ptr string, erased *[]string) {
	switch {
	case fd.IsMap():
		md := fd.MapValue().Message()
		m, ok := val.(map[string]any)
		if md == nil || !ok {
			return
		}
		for k, v := range m {
			if o, ok := v.(map[string]any); ok {
				eraseMessage(o, md, ptr+"/"+jsonpointer.Escape(k), erased)
			}
		}
	case fd.IsList():
		md := fd.Message()
		l, ok := val.([]any)
		if md == nil || !ok {
			return
		}
		for i, v := range l {
			if o, ok := v.(map[string]any); ok {
				eraseMessage(o, md, ptr+"/"+strconv.Itoa(i), erased)
			}
		}
	case fd.Message() != nil:
		if o, ok := val.(map[string]any); ok {
			eraseMessage(o, fd.Message(), ptr, erased)
		}
	}
}
