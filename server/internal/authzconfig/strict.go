package authzconfig

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/temporal-opa/temporal-opa/server/internal/cli"
)

// FieldError is a problem with one key of the file: where it is, which key, and
// what is expected there.
type FieldError struct {
	File   string
	Line   int
	Column int
	Key    string // dotted path, e.g. "policy.eval_timeout"
	Msg    string
}

func (e *FieldError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", e.File, e.Line, e.Column)
	}
	if e.Key == "" {
		return loc + ": " + e.Msg
	}
	return loc + ": " + e.Key + ": " + e.Msg
}

var (
	durationType    = reflect.TypeFor[time.Duration]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
)

// checker walks a YAML node against the Go type it will be decoded into and
// reports the first unknown key or badly typed value with its position.
type checker struct{ file string }

func (c checker) errAt(n *yaml.Node, key, format string, a ...any) error {
	return &FieldError{File: c.file, Line: n.Line, Column: n.Column, Key: key, Msg: fmt.Sprintf(format, a...)}
}

func (c checker) check(n *yaml.Node, t reflect.Type, key string) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // null leaves the default
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || t.Implements(unmarshalerType) {
		return c.decodes(n, t, key)
	}
	switch t.Kind() {
	case reflect.Pointer:
		return c.check(n, t.Elem(), key)
	case reflect.Interface:
		return nil
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return c.errAt(n, key, "expected a mapping of %s, got %s", strings.Join(knownKeys(t), ", "), describe(n))
		}
		fields := structFields(t)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			sub := join(key, k.Value)
			if seen[k.Value] {
				return c.errAt(k, sub, "key appears twice")
			}
			seen[k.Value] = true
			ft, ok := fields[k.Value]
			if !ok {
				return c.errAt(k, sub, "unknown key%s; %s", suggest(k.Value, knownKeys(t)), knownList(key, knownKeys(t)))
			}
			if err := c.check(v, ft, sub); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return c.errAt(n, key, "expected a mapping, got %s", describe(n))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if err := c.decodes(k, t.Key(), join(key, k.Value)); err != nil {
				return err
			}
			if err := c.check(v, t.Elem(), join(key, k.Value)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return c.errAt(n, key, "expected a list of %s, got %s", expected(t.Elem()), describe(n))
		}
		for i, item := range n.Content {
			if err := c.check(item, t.Elem(), fmt.Sprintf("%s[%d]", key, i)); err != nil {
				return err
			}
		}
		return nil
	default:
		return c.decodes(n, t, key)
	}
}

// decodes checks that n decodes into a value of type t.
func (c checker) decodes(n *yaml.Node, t reflect.Type, key string) error {
	if n.Kind != yaml.ScalarNode && isScalar(t) {
		return c.errAt(n, key, "expected %s, got %s", expected(t), describe(n))
	}
	v := reflect.New(t)
	if err := n.Decode(v.Interface()); err != nil {
		var ie *itemError
		if errors.As(err, &ie) {
			return c.errAt(ie.node, fmt.Sprintf("%s[%d]", key, ie.index), "%s", ie.msg)
		}
		msg := err.Error()
		if isScalar(t) {
			return c.errAt(n, key, "expected %s, got %s", expected(t), describe(n))
		}
		if te, ok := err.(*yaml.TypeError); ok && len(te.Errors) > 0 {
			msg = te.Errors[0]
		}
		return c.errAt(n, key, "%s", strings.TrimPrefix(msg, "yaml: "))
	}
	return nil
}

func isScalar(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

func expected(t reflect.Type) string {
	if t == durationType {
		return "a duration such as 100ms, 30s or 5m"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	case reflect.Pointer:
		return expected(t.Elem())
	}
	return "a " + t.String()
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return fmt.Sprintf("%q", v)
	}
	return "something else"
}

// structFields maps the YAML keys of a struct (following ",inline") to field types.
func structFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if slices.Contains(strings.Split(opts, ","), "inline") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range structFields(ft) {
					out[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name) // yaml.v3's default
		}
		out[name] = f.Type
	}
	return out
}

func knownKeys(t reflect.Type) []string {
	var keys []string
	for k := range structFields(t) {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func knownList(section string, keys []string) string {
	where := "at the top level"
	if section != "" {
		where = "in " + section
	}
	return "the keys allowed " + where + " are: " + strings.Join(keys, ", ")
}

// suggest proposes the closest known key for a typo.
func suggest(got string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := cli.EditDistance(strings.ToLower(got), k); d < bestD {
			best, bestD = k, d
		}
		if strings.ReplaceAll(strings.ToLower(got), "-", "_") == k || camelToSnake(got) == k {
			best, bestD = k, 0
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func camelToSnake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}
