package decisionlog

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/temporal-opa/temporal-opa/policy/internal/jsonpointer"
)

// Recorded is a decision read back from a decision log.
type Recorded struct {
	DecisionID string
	Input      map[string]any // nil when the event has no input
	Allow      bool
	Reason     string
	Error      string // the error's code, when the policy could not decide
	API        string // method name, e.g. StartWorkflowExecution
	Namespace  string
	Subject    string
	// Erased lists the JSON pointers (/input/...) removed, masked or cut from
	// the event: by the built-in erasure of payloads, task tokens and the token
	// claims the policy does not read, by the operator's mask rules, or by the
	// bound on string values (custom.truncated): the recorded value is not the
	// one decided on.
	Erased []string
	// RequestPaths lists the JSON pointers of the request fields the recorded
	// input.request holds, when it holds only those the recording policy read
	// ("*" for every key or element); empty when it holds the whole request.
	RequestPaths []string
}

// ReadError is an event log that cannot be read.
type ReadError struct {
	Name   string
	Offset int64 // byte offset of the bad value, in the decompressed stream
	Err    error
}

func (e *ReadError) Error() string {
	return fmt.Sprintf("%s: at byte %d: %v", e.Name, e.Offset, e.Err)
}

func (e *ReadError) Unwrap() error { return e.Err }

// Read reads the decisions of a decision log, calling yield for each: the JSON
// lines the console writes (--decision-log, decision_logs.console), or the
// batches OPA uploads to a service (JSON arrays of events), either of them
// gzip-compressed or not. JSON values that are not decision events (no
// decision_id) are skipped and counted. name is used in errors.
func Read(r io.Reader, name string, yield func(Recorded) error) (skipped int, err error) {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return 0, &ReadError{Name: name, Err: fmt.Errorf("gzip: %w", err)}
		}
		defer zr.Close()
		br = bufio.NewReader(zr)
	}
	dec := json.NewDecoder(br)
	dec.UseNumber()
	for {
		off := dec.InputOffset()
		var v any
		if err := dec.Decode(&v); err != nil {
			if errors.Is(err, io.EOF) {
				return skipped, nil
			}
			return skipped, &ReadError{Name: name, Offset: off, Err: fmt.Errorf("not a JSON decision-log event or batch: %w", err)}
		}
		var events []any
		switch x := v.(type) {
		case map[string]any:
			events = []any{x}
		case []any:
			events = x
		default:
			return skipped, &ReadError{Name: name, Offset: off, Err: fmt.Errorf("a %T where a decision-log event (object) or batch (array) was expected", v)}
		}
		for _, e := range events {
			m, ok := e.(map[string]any)
			if !ok {
				return skipped, &ReadError{Name: name, Offset: off, Err: errors.New("a batch holds something other than events")}
			}
			rec, ok := recorded(m)
			if !ok {
				skipped++
				continue
			}
			if err := yield(rec); err != nil {
				return skipped, err
			}
		}
	}
}

// recorded reads one event; ok is false for anything else.
func recorded(m map[string]any) (Recorded, bool) {
	id, _ := m["decision_id"].(string)
	if id == "" {
		return Recorded{}, false
	}
	r := Recorded{DecisionID: id}
	r.Input, _ = m["input"].(map[string]any)
	if res, ok := m["result"].(map[string]any); ok {
		r.Allow, _ = res["allow"].(bool)
		r.Reason, _ = res["reason"].(string)
	} else if b, ok := m["result"].(bool); ok {
		r.Allow = b
	}
	custom, _ := m["custom"].(map[string]any)
	r.API, _ = custom["api"].(string)
	r.Namespace, _ = custom["namespace"].(string)
	r.Subject, _ = custom["subject"].(string)
	if e, ok := custom["error"].(map[string]any); ok {
		r.Error, _ = e["code"].(string)
	}
	r.Erased = append(r.Erased, stringList(custom["erased"])...)
	r.Erased = append(r.Erased, stringList(m["erased"])...)
	r.Erased = append(r.Erased, stringList(m["masked"])...)
	r.Erased = append(r.Erased, stringList(custom["truncated"])...)
	r.RequestPaths = stringList(custom["request_paths"])
	if r.API == "" && r.Input != nil {
		if t, ok := r.Input["target"].(map[string]any); ok {
			r.API, _ = t["method"].(string)
			r.Namespace, _ = t["namespace"].(string)
		}
	}
	return r, true
}

func stringList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// InputPath turns an erased JSON pointer such as /input/request/memo into the
// input path it removed (["request", "memo"]); ok is false for pointers outside
// the input.
func InputPath(pointer string) (path []string, ok bool) {
	rest, ok := strings.CutPrefix(pointer, "/input")
	if !ok || (rest != "" && rest[0] != '/') {
		return nil, false
	}
	if rest == "" {
		return []string{}, true
	}
	for _, tok := range strings.Split(rest[1:], "/") {
		tok = jsonpointer.Unescape(tok)
		path = append(path, tok)
	}
	return path, true
}
