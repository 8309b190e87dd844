package decisionlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/server"
)

// appendEvent appends the JSON of the event OPA's plugin would upload for info
// (logs.EventV1 as encoding/json writes it, same keys, same omissions) to buf,
// with labels already encoded as a JSON object. The input is written from its
// OPA value when info.Input is nil (one encoding, no map in between), from
// info.Input otherwise. It is the upload path's only encoding of an event:
// OPA's plugin converts an event to an OPA value for the drop and mask rules,
// the result and custom fields through a JSON round trip, and then to JSON by
// reflection (see BenchmarkLogEvent).
func appendEvent(buf []byte, labels []byte, info *server.Info) ([]byte, error) {
	var err error
	buf = append(buf, `{"labels":`...)
	buf = append(buf, labels...)
	buf = append(buf, `,"decision_id":`...)
	buf = appendString(buf, info.DecisionID)
	if len(info.Bundles) > 0 {
		buf = append(buf, `,"bundles":{`...)
		for i, name := range slices.Sorted(maps.Keys(info.Bundles)) {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendString(buf, name)
			buf = append(buf, ':', '{')
			if rev := info.Bundles[name].Revision; rev != "" {
				buf = append(buf, `"revision":`...)
				buf = appendString(buf, rev)
			}
			buf = append(buf, '}')
		}
		buf = append(buf, '}')
	}
	if info.Path != "" {
		buf = append(buf, `,"path":`...)
		buf = appendString(buf, info.Path)
	}
	buf = append(buf, `,"input":`...)
	if info.Input != nil {
		buf, err = appendAny(buf, *info.Input)
	} else {
		buf, err = appendValue(buf, info.InputAST)
	}
	if err != nil {
		return buf, fmt.Errorf("input: %w", err)
	}
	if info.Results != nil {
		buf = append(buf, `,"result":`...)
		if buf, err = appendAny(buf, *info.Results); err != nil {
			return buf, fmt.Errorf("result: %w", err)
		}
	}
	if info.Error != nil {
		buf = append(buf, `,"error":`...)
		if buf, err = appendAny(buf, info.Error); err != nil {
			return buf, fmt.Errorf("error: %w", err)
		}
	}
	if info.RemoteAddr != "" {
		buf = append(buf, `,"requested_by":`...)
		buf = appendString(buf, info.RemoteAddr)
	}
	buf = append(buf, `,"timestamp":"`...)
	buf = info.Timestamp.AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, '"')
	if info.Metrics != nil {
		if all := info.Metrics.All(); len(all) > 0 {
			buf = append(buf, `,"metrics":`...)
			if buf, err = appendAny(buf, all); err != nil {
				return buf, fmt.Errorf("metrics: %w", err)
			}
		}
	}
	if len(info.Custom) > 0 {
		buf = append(buf, `,"custom":`...)
		if buf, err = appendAny(buf, info.Custom); err != nil {
			return buf, fmt.Errorf("custom: %w", err)
		}
	}
	return append(buf, '}'), nil
}

// errLongString: a string value of the input is longer than MaxValueBytes;
// the event must go through the JSON document, where it is cut and listed.
var errLongString = errors.New("a string value to cut")

// appendValue appends an OPA value (the input document) as JSON, as
// ast.JSON and encoding/json would write it (a set as an array); it fails
// with errLongString on a string value (not a key) longer than MaxValueBytes.
func appendValue(buf []byte, v ast.Value) ([]byte, error) {
	var err error
	switch x := v.(type) {
	case ast.Null:
		return append(buf, "null"...), nil
	case ast.Boolean:
		return strconv.AppendBool(buf, bool(x)), nil
	case ast.Number:
		// ast.JSON makes it a json.Number, which encoding/json writes as it is.
		return appendAny(buf, json.Number(x))
	case ast.String:
		if len(x) > MaxValueBytes {
			return buf, errLongString
		}
		return appendString(buf, string(x)), nil
	case *ast.Array:
		buf = append(buf, '[')
		for i := range x.Len() {
			if i > 0 {
				buf = append(buf, ',')
			}
			if buf, err = appendValue(buf, x.Elem(i).Value); err != nil {
				return buf, err
			}
		}
		return append(buf, ']'), nil
	case ast.Set:
		buf = append(buf, '[')
		for i, t := range x.Slice() {
			if i > 0 {
				buf = append(buf, ',')
			}
			if buf, err = appendValue(buf, t.Value); err != nil {
				return buf, err
			}
		}
		return append(buf, ']'), nil
	case ast.Object:
		buf = append(buf, '{')
		for i, k := range x.Keys() {
			s, ok := k.Value.(ast.String)
			if !ok {
				return buf, fmt.Errorf("object key %v is not a string", k)
			}
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendString(buf, string(s))
			buf = append(buf, ':')
			if buf, err = appendValue(buf, x.Get(k).Value); err != nil {
				return buf, err
			}
		}
		return append(buf, '}'), nil
	}
	return buf, fmt.Errorf("cannot encode %T as JSON", v)
}

// appendAny appends a JSON-shaped Go value (what an event's result, custom and
// metrics hold) as encoding/json would (map keys sorted); other types go
// through encoding/json.
func appendAny(buf []byte, v any) ([]byte, error) {
	var err error
	switch x := v.(type) {
	case nil:
		return append(buf, "null"...), nil
	case string:
		return appendString(buf, x), nil
	case bool:
		return strconv.AppendBool(buf, x), nil
	case int:
		return strconv.AppendInt(buf, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(buf, x, 10), nil
	case uint64:
		return strconv.AppendUint(buf, x, 10), nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) || x != math.Trunc(x) || math.Abs(x) >= 1e21 {
			break // encoding/json's float formatting
		}
		return strconv.AppendFloat(buf, x, 'f', -1, 64), nil
	case json.Number:
		if x == "" {
			x = "0"
		}
		return append(buf, x...), nil
	case []string:
		buf = append(buf, '[')
		for i, s := range x {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendString(buf, s)
		}
		return append(buf, ']'), nil
	case []any:
		buf = append(buf, '[')
		for i, e := range x {
			if i > 0 {
				buf = append(buf, ',')
			}
			if buf, err = appendAny(buf, e); err != nil {
				return buf, err
			}
		}
		return append(buf, ']'), nil
	case map[string]any:
		var arr [16]string
		keys := arr[:0]
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		buf = append(buf, '{')
		for i, k := range keys {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendString(buf, k)
			buf = append(buf, ':')
			if buf, err = appendAny(buf, x[k]); err != nil {
				return buf, err
			}
		}
		return append(buf, '}'), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return buf, err
	}
	return append(buf, b...), nil
}

const hexDigits = "0123456789abcdef"

// plainByte[b] is true for the ASCII bytes encoding/json writes as they are.
var plainByte = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\' && b != '<' && b != '>' && b != '&'
	}
	return t
}()

// appendString appends s as a JSON string exactly as encoding/json writes it:
// HTML characters and U+2028/U+2029 escaped, invalid UTF-8 replaced by U+FFFD.
func appendString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if plainByte[b] {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch b {
			case '\\', '"':
				buf = append(buf, '\\', b)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
