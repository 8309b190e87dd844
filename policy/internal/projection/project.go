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

// A projection builds the parts of the input document a policy reads (the
// token's claims, the request) from only the values it reads, and writes those
// values to the decision cache key. The projected document gives the policy the
// same value at every path it reads as the whole document would; the key holds
// every value read, each tagged and length-prefixed, so that two calls share a
// key only when the policy reads the same values in both.

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

// projectJSON projects a JSON-decoded value (string, float64, bool, nil, []any,
// map[string]any) by t, appending it to key; the value is built only when build.
func projectJSON(v any, t *pathTree, key []byte, build bool) ([]byte, ast.Value, error) {
	if t.whole {
		key = appendJSONKey(key, v)
		if !build {
			return key, nil, nil
		}
		val, err := JSONValue(v)
		return key, val, err
	}
	switch x := v.(type) {
	case map[string]any:
		key = append(key, tagObject)
		var obj ast.Object
		if build {
			obj = ast.NewObject()
		}
		add := func(name string, sub *pathTree) error {
			e, ok := x[name]
			key = appendString(key, name)
			if !ok {
				key = append(key, tagAbsent)
				return nil
			}
			var ev ast.Value
			var err error
			if key, ev, err = projectJSON(e, sub, key, build); err != nil {
				return err
			}
			if build {
				obj.Insert(ast.StringTerm(name), ast.NewTerm(ev))
			}
			return nil
		}
		if t.each != nil {
			for _, name := range slices.Sorted(maps.Keys(x)) {
				if err := add(name, t.each); err != nil {
					return nil, nil, err
				}
			}
		} else {
			for _, name := range t.sortedFields() {
				if err := add(name, t.fields[name]); err != nil {
					return nil, nil, err
				}
			}
		}
		key = append(key, tagEnd)
		return key, obj, nil
	case []any:
		key = append(key, tagArray)
		if t.each == nil { // no element is read (a string key of an array is undefined)
			key = binary.AppendUvarint(key, 0)
			return key, ast.NewArray(), nil
		}
		key = binary.AppendUvarint(key, uint64(len(x)))
		var terms []*ast.Term
		if build {
			terms = make([]*ast.Term, 0, len(x))
		}
		for _, e := range x {
			var ev ast.Value
			var err error
			if key, ev, err = projectJSON(e, t.each, key, build); err != nil {
				return nil, nil, err
			}
			if build {
				terms = append(terms, ast.NewTerm(ev))
			}
		}
		return key, ast.NewArray(terms...), nil
	default: // a scalar: nothing below it can be read, but it may be read whole by another path
		key = appendJSONKey(key, v)
		if !build {
			return key, nil, nil
		}
		val, err := JSONValue(v)
		return key, val, err
	}
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

// projectMessage projects a request message by t as its protojson form with
// proto field names (what input.request is), appending it to key.
func projectMessage(m protoreflect.Message, t *pathTree, key []byte, build bool) ([]byte, ast.Value, error) {
	if t.whole || t.each != nil || isWellKnown(m.Descriptor()) {
		// Read whole, by every field, or a well-known type (its JSON form is not
		// an object of its fields): protojson, as input.request always was.
		return wholeMessage(m, key, build)
	}
	key = append(key, tagObject)
	var obj ast.Object
	if build {
		obj = ast.NewObject()
	}
	fields := m.Descriptor().Fields()
	for _, name := range t.sortedFields() {
		key = appendString(key, name)
		fd := fields.ByName(protoreflect.Name(name))
		if fd == nil || !m.Has(fd) {
			key = append(key, tagAbsent)
			continue
		}
		var v ast.Value
		var err error
		if key, v, err = projectField(fd, m.Get(fd), t.fields[name], key, build); err != nil {
			return nil, nil, err
		}
		if build {
			obj.Insert(ast.StringTerm(name), ast.NewTerm(v))
		}
	}
	return append(key, tagEnd), obj, nil
}

func isWellKnown(d protoreflect.MessageDescriptor) bool {
	return strings.HasPrefix(string(d.FullName()), "google.protobuf.")
}

// wholeMessage is m in its protojson form.
func wholeMessage(m protoreflect.Message, key []byte, build bool) ([]byte, ast.Value, error) {
	b, err := requestJSON.Marshal(m.Interface())
	if err != nil {
		return nil, nil, fmt.Errorf("request to JSON: %w", err)
	}
	if !build {
		return appendString(append(key, tagJSON), string(b)), nil, nil
	}
	if key != nil { // building for a key too, not only the value
		key = appendString(append(key, tagJSON), string(b))
	}
	var doc any
	if err := util.UnmarshalJSON(b, &doc); err != nil {
		return nil, nil, fmt.Errorf("request JSON: %w", err)
	}
	v, err := ast.InterfaceToValue(doc)
	if err != nil {
		return nil, nil, fmt.Errorf("request value: %w", err)
	}
	return key, v, nil
}

// projectField projects the value of a populated field.
func projectField(fd protoreflect.FieldDescriptor, v protoreflect.Value, t *pathTree, key []byte, build bool) ([]byte, ast.Value, error) {
	switch {
	case fd.IsList():
		l := v.List()
		key = append(key, tagArray)
		if !t.whole && t.each == nil { // no element is read
			return binary.AppendUvarint(key, 0), ast.NewArray(), nil
		}
		elem := t.each
		if t.whole {
			elem = t
		}
		key = binary.AppendUvarint(key, uint64(l.Len()))
		var terms []*ast.Term
		if build {
			terms = make([]*ast.Term, 0, l.Len())
		}
		for i := range l.Len() {
			var ev ast.Value
			var err error
			if key, ev, err = projectSingular(fd, l.Get(i), elem, key, build); err != nil {
				return nil, nil, err
			}
			if build {
				terms = append(terms, ast.NewTerm(ev))
			}
		}
		return key, ast.NewArray(terms...), nil
	case fd.IsMap():
		mp := v.Map()
		key = append(key, tagObject)
		entries := make([]string, 0, mp.Len())
		vals := map[string]protoreflect.Value{}
		mp.Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
			s := k.String()
			entries = append(entries, s)
			vals[s] = mv
			return true
		})
		slices.Sort(entries)
		var obj ast.Object
		if build {
			obj = ast.NewObject()
		}
		for _, name := range entries {
			sub := t
			if !t.whole {
				if sub = t.each; sub == nil {
					if sub = t.fields[name]; sub == nil {
						continue // this entry is not read
					}
				}
			}
			key = appendString(key, name)
			var ev ast.Value
			var err error
			if key, ev, err = projectSingular(fd.MapValue(), vals[name], sub, key, build); err != nil {
				return nil, nil, err
			}
			if build {
				obj.Insert(ast.StringTerm(name), ast.NewTerm(ev))
			}
		}
		return append(key, tagEnd), obj, nil
	}
	return projectSingular(fd, v, t, key, build)
}

// projectSingular projects one value of kind fd.Kind(): a message, or a scalar
// as protojson writes it.
func projectSingular(fd protoreflect.FieldDescriptor, v protoreflect.Value, t *pathTree, key []byte, build bool) ([]byte, ast.Value, error) {
	var s string
	tag := byte(tagString)
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return projectMessage(v.Message(), t, key, build)
	case protoreflect.BoolKind:
		if v.Bool() {
			return append(key, tagTrue), ast.Boolean(true), nil
		}
		return append(key, tagFalse), ast.Boolean(false), nil
	case protoreflect.StringKind:
		s = v.String()
	case protoreflect.BytesKind:
		s = base64.StdEncoding.EncodeToString(v.Bytes())
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			s = string(ev.Name())
		} else {
			tag, s = tagNumber, strconv.FormatInt(int64(v.Enum()), 10)
		}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		tag, s = tagNumber, strconv.FormatInt(v.Int(), 10)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		tag, s = tagNumber, strconv.FormatUint(v.Uint(), 10)
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		s = strconv.FormatInt(v.Int(), 10) // protojson writes 64-bit integers as strings
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		s = strconv.FormatUint(v.Uint(), 10)
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		f := v.Float()
		switch {
		case math.IsNaN(f):
			s = "NaN"
		case math.IsInf(f, 1):
			s = "Infinity"
		case math.IsInf(f, -1):
			s = "-Infinity"
		default:
			bits := 64
			if fd.Kind() == protoreflect.FloatKind {
				bits = 32
			}
			tag, s = tagNumber, formatFloat(f, bits)
		}
	default:
		return nil, nil, fmt.Errorf("request field %s has unsupported kind %s", fd.FullName(), fd.Kind())
	}
	key = appendString(append(key, tag), s)
	if !build {
		return key, nil, nil
	}
	if tag == tagNumber {
		return key, ast.Number(s), nil
	}
	return key, ast.String(s), nil
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
