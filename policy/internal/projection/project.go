package projection

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// A projection of the parts of the input document a policy reads (the token's
// claims, the request) by the tree of paths it reads comes in two forms, each
// written by its own walk over the same tree: the key writer (keyJSON,
// keyMessage) appends every value read, each tagged and length-prefixed, so
// that two calls share a key only when the policy reads the same values in
// both; the value builder (valueJSON, valueMessage) builds the document from
// only those values, with the same value at every path read as the whole
// document (protojson of the request, with proto names). Both read scalars
// through one function (scalar), so that a value's key and its text agree.

// Key tags.
const (
	tagAbsent = 'x'
	tagNull   = 'z'
	tagFalse  = 'f'
	tagTrue   = 't'
	tagNumber = 'n'
	tagString = 's'
	tagArray  = 'a'
	tagObject = 'o'
	tagEnd    = '}'
	tagJSON   = 'j' // a protojson encoding, for messages read whole
)

// keyJSON appends the values of a JSON-decoded value (string, float64, bool,
// nil, []any, map[string]any) that t reads.
func keyJSON(key []byte, v any, t *pathTree) []byte {
	if t.whole {
		return appendJSONKey(key, v)
	}
	switch x := v.(type) {
	case map[string]any:
		key = append(key, tagObject)
		if t.each != nil {
			for _, name := range slices.Sorted(maps.Keys(x)) {
				key = keyJSON(appendString(key, name), x[name], t.each)
			}
			return append(key, tagEnd)
		}
		for _, name := range t.sortedFields() {
			key = appendString(key, name)
			if e, ok := x[name]; ok {
				key = keyJSON(key, e, t.fields[name])
			} else {
				key = append(key, tagAbsent)
			}
		}
		return append(key, tagEnd)
	case []any:
		key = append(key, tagArray)
		if t.each == nil { // no element is read (a string key of an array is undefined)
			return binary.AppendUvarint(key, 0)
		}
		key = binary.AppendUvarint(key, uint64(len(x)))
		for _, e := range x {
			key = keyJSON(key, e, t.each)
		}
		return key
	}
	// A scalar: nothing below it can be read, but another path may read it whole.
	return appendJSONKey(key, v)
}

// valueJSON builds the part of a JSON-decoded value that t reads.
func valueJSON(v any, t *pathTree) (ast.Value, error) {
	if t.whole {
		return JSONValue(v)
	}
	switch x := v.(type) {
	case map[string]any:
		obj := ast.NewObject()
		add := func(name string, e any, sub *pathTree) error {
			ev, err := valueJSON(e, sub)
			if err != nil {
				return err
			}
			obj.Insert(ast.StringTerm(name), ast.NewTerm(ev))
			return nil
		}
		if t.each != nil {
			for name, e := range x {
				if err := add(name, e, t.each); err != nil {
					return nil, err
				}
			}
			return obj, nil
		}
		for name, sub := range t.fields {
			if e, ok := x[name]; ok {
				if err := add(name, e, sub); err != nil {
					return nil, err
				}
			}
		}
		return obj, nil
	case []any:
		if t.each == nil {
			return ast.NewArray(), nil
		}
		terms := make([]*ast.Term, len(x))
		for i, e := range x {
			ev, err := valueJSON(e, t.each)
			if err != nil {
				return nil, err
			}
			terms[i] = ast.NewTerm(ev)
		}
		return ast.NewArray(terms...), nil
	}
	return JSONValue(v)
}

// appendJSONKey appends a JSON-decoded value whole, objects in key order.
func appendJSONKey(key []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(key, tagNull)
	case bool:
		if x {
			return append(key, tagTrue)
		}
		return append(key, tagFalse)
	case string:
		return appendString(append(key, tagString), x)
	case float64:
		return appendString(append(key, tagNumber), strconv.FormatFloat(x, 'g', -1, 64))
	case []any:
		key = binary.AppendUvarint(append(key, tagArray), uint64(len(x)))
		for _, e := range x {
			key = appendJSONKey(key, e)
		}
		return key
	case map[string]any:
		key = append(key, tagObject)
		for _, name := range slices.Sorted(maps.Keys(x)) {
			key = appendJSONKey(appendString(key, name), x[name])
		}
		return append(key, tagEnd)
	default:
		return appendString(append(key, tagNumber), fmt.Sprint(x))
	}
}

func (t *pathTree) sortedFields() []string {
	if len(t.fields) < 2 {
		for name := range t.fields {
			return []string{name}
		}
		return nil
	}
	return slices.Sorted(maps.Keys(t.fields))
}

// readWhole reports whether a message is read as its protojson form: read
// whole, by every field, or a well-known type (whose JSON form is not an object
// of its fields).
func readWhole(m protoreflect.Message, t *pathTree) bool {
	return t.whole || t.each != nil || isWellKnown(m.Descriptor())
}

func isWellKnown(d protoreflect.MessageDescriptor) bool {
	return strings.HasPrefix(string(d.FullName()), "google.protobuf.")
}

// keyMessage appends the values of a request message that t reads, as
// input.request holds them (protojson with proto field names).
func keyMessage(key []byte, m protoreflect.Message, t *pathTree) ([]byte, error) {
	if readWhole(m, t) {
		b, err := requestJSON.Marshal(m.Interface())
		if err != nil {
			return nil, fmt.Errorf("request to JSON: %w", err)
		}
		return appendString(append(key, tagJSON), string(b)), nil
	}
	key = append(key, tagObject)
	fields := m.Descriptor().Fields()
	for _, name := range t.sortedFields() {
		key = appendString(key, name)
		fd := fields.ByName(protoreflect.Name(name))
		if fd == nil || !m.Has(fd) {
			key = append(key, tagAbsent)
			continue
		}
		var err error
		if key, err = keyField(key, fd, m.Get(fd), t.fields[name]); err != nil {
			return nil, err
		}
	}
	return append(key, tagEnd), nil
}

// valueMessage builds the part of a request message that t reads.
func valueMessage(m protoreflect.Message, t *pathTree) (ast.Value, error) {
	if readWhole(m, t) {
		return wholeMessage(m)
	}
	obj := ast.NewObject()
	fields := m.Descriptor().Fields()
	for name, sub := range t.fields {
		fd := fields.ByName(protoreflect.Name(name))
		if fd == nil || !m.Has(fd) {
			continue
		}
		v, err := valueField(fd, m.Get(fd), sub)
		if err != nil {
			return nil, err
		}
		obj.Insert(ast.StringTerm(name), ast.NewTerm(v))
	}
	return obj, nil
}

// wholeMessage is m in its protojson form.
func wholeMessage(m protoreflect.Message) (ast.Value, error) {
	b, err := requestJSON.Marshal(m.Interface())
	if err != nil {
		return nil, fmt.Errorf("request to JSON: %w", err)
	}
	var doc any
	if err := util.UnmarshalJSON(b, &doc); err != nil {
		return nil, fmt.Errorf("request JSON: %w", err)
	}
	v, err := ast.InterfaceToValue(doc)
	if err != nil {
		return nil, fmt.Errorf("request value: %w", err)
	}
	return v, nil
}

// elementReads is what t reads of each element of a list or map field: all
// of it when the field is read whole; nil when no element is read.
func elementReads(t *pathTree) *pathTree {
	if t.whole {
		return t
	}
	return t.each
}

// mapEntries lists a map field's entries by key, sorted.
func mapEntries(mp protoreflect.Map) ([]string, map[string]protoreflect.Value) {
	names := make([]string, 0, mp.Len())
	vals := make(map[string]protoreflect.Value, mp.Len())
	mp.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
		s := k.String()
		names = append(names, s)
		vals[s] = v
		return true
	})
	slices.Sort(names)
	return names, vals
}

// entryReads is what t reads of a map entry named name; nil when none.
func entryReads(t *pathTree, name string) *pathTree {
	if e := elementReads(t); e != nil {
		return e
	}
	return t.fields[name]
}

// keyField appends the values t reads of a populated field.
func keyField(key []byte, fd protoreflect.FieldDescriptor, v protoreflect.Value, t *pathTree) ([]byte, error) {
	var err error
	switch {
	case fd.IsList():
		l := v.List()
		key = append(key, tagArray)
		elem := elementReads(t)
		if elem == nil { // no element is read
			return binary.AppendUvarint(key, 0), nil
		}
		key = binary.AppendUvarint(key, uint64(l.Len()))
		for i := range l.Len() {
			if key, err = keySingular(key, fd, l.Get(i), elem); err != nil {
				return nil, err
			}
		}
		return key, nil
	case fd.IsMap():
		key = append(key, tagObject)
		names, vals := mapEntries(v.Map())
		for _, name := range names {
			sub := entryReads(t, name)
			if sub == nil {
				continue // this entry is not read
			}
			if key, err = keySingular(appendString(key, name), fd.MapValue(), vals[name], sub); err != nil {
				return nil, err
			}
		}
		return append(key, tagEnd), nil
	}
	return keySingular(key, fd, v, t)
}

// valueField builds the part t reads of a populated field.
func valueField(fd protoreflect.FieldDescriptor, v protoreflect.Value, t *pathTree) (ast.Value, error) {
	switch {
	case fd.IsList():
		l := v.List()
		elem := elementReads(t)
		if elem == nil {
			return ast.NewArray(), nil
		}
		terms := make([]*ast.Term, l.Len())
		for i := range l.Len() {
			ev, err := valueSingular(fd, l.Get(i), elem)
			if err != nil {
				return nil, err
			}
			terms[i] = ast.NewTerm(ev)
		}
		return ast.NewArray(terms...), nil
	case fd.IsMap():
		obj := ast.NewObject()
		var err error
		v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
			name := k.String()
			sub := entryReads(t, name)
			if sub == nil {
				return true
			}
			var ev ast.Value
			if ev, err = valueSingular(fd.MapValue(), mv, sub); err != nil {
				return false
			}
			obj.Insert(ast.StringTerm(name), ast.NewTerm(ev))
			return true
		})
		return obj, err
	}
	return valueSingular(fd, v, t)
}

// keySingular appends one value of kind fd.Kind(): a message's values read,
// or a scalar.
func keySingular(key []byte, fd protoreflect.FieldDescriptor, v protoreflect.Value, t *pathTree) ([]byte, error) {
	if k := fd.Kind(); k == protoreflect.MessageKind || k == protoreflect.GroupKind {
		return keyMessage(key, v.Message(), t)
	}
	tag, s, err := scalar(fd, v)
	if err != nil {
		return nil, err
	}
	if tag == tagTrue || tag == tagFalse {
		return append(key, tag), nil
	}
	return appendString(append(key, tag), s), nil
}

// valueSingular builds one value of kind fd.Kind().
func valueSingular(fd protoreflect.FieldDescriptor, v protoreflect.Value, t *pathTree) (ast.Value, error) {
	if k := fd.Kind(); k == protoreflect.MessageKind || k == protoreflect.GroupKind {
		return valueMessage(v.Message(), t)
	}
	tag, s, err := scalar(fd, v)
	if err != nil {
		return nil, err
	}
	switch tag {
	case tagTrue:
		return ast.Boolean(true), nil
	case tagFalse:
		return ast.Boolean(false), nil
	case tagNumber:
		return ast.Number(s), nil
	}
	return ast.String(s), nil
}

// scalar is a scalar field value as protojson writes it: its key tag (true,
// false, number or string) and its text.
func scalar(fd protoreflect.FieldDescriptor, v protoreflect.Value) (tag byte, s string, err error) {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		if v.Bool() {
			return tagTrue, "", nil
		}
		return tagFalse, "", nil
	case protoreflect.StringKind:
		return tagString, v.String(), nil
	case protoreflect.BytesKind:
		return tagString, base64.StdEncoding.EncodeToString(v.Bytes()), nil
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return tagString, string(ev.Name()), nil
		}
		return tagNumber, strconv.FormatInt(int64(v.Enum()), 10), nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return tagNumber, strconv.FormatInt(v.Int(), 10), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return tagNumber, strconv.FormatUint(v.Uint(), 10), nil
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return tagString, strconv.FormatInt(v.Int(), 10), nil // protojson writes 64-bit integers as strings
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return tagString, strconv.FormatUint(v.Uint(), 10), nil
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		f := v.Float()
		switch {
		case math.IsNaN(f):
			return tagString, "NaN", nil
		case math.IsInf(f, 1):
			return tagString, "Infinity", nil
		case math.IsInf(f, -1):
			return tagString, "-Infinity", nil
		}
		bits := 64
		if fd.Kind() == protoreflect.FloatKind {
			bits = 32
		}
		return tagNumber, formatFloat(f, bits), nil
	}
	return 0, "", fmt.Errorf("request field %s has unsupported kind %s", fd.FullName(), fd.Kind())
}

// requestMessage returns the call's request as a valid proto message, or nil.
func requestMessage(req any) proto.Message {
	msg, ok := req.(proto.Message)
	if !ok || msg == nil || !msg.ProtoReflect().IsValid() {
		return nil
	}
	return msg
}

// formatFloat writes a finite float as protojson does (after encoding/json):
// 'f' notation but below 1e-6 and from 1e21 on, and exponents without a
// leading zero (1e-07 is 1e-7). input.request holds the number as that text.
func formatFloat(f float64, bits int) string {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b := strconv.AppendFloat(nil, f, format, -1, bits)
	if n := len(b); format == 'e' && n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
		b[n-2] = b[n-1]
		b = b[:n-1]
	}
	return string(b)
}
