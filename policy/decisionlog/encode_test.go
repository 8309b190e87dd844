package decisionlog

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/plugins/logs"
	"github.com/open-policy-agent/opa/v1/server"
)

// TestEventEncodingIsOPAs: an event encoded by appendEvent decodes to what
// OPA's plugin uploads for the same server.Info (logs.EventV1 through
// encoding/json), whether the input is written from its OPA value or from
// its erased JSON document; strings are escaped byte for byte as
// encoding/json does.
func TestEventEncodingIsOPAs(t *testing.T) {
	input := ast.MustParseTerm(`{"claims": {"subject": "bob <&> \u2028", "system": [], "namespaces": {"default": ["write"]}, "jwt": {"groups": ["a", "b"], "n": 1.5, "big": 12345678901234567890}},
		"target": {"api": "/x.Y/Start", "namespace": "default", "ok": true, "none": null, "set": {"z", "y"}}}`).Value
	var result any = map[string]any{"allow": false, "reason": "no \"quote\" \n here"}
	mk := func() *server.Info {
		return &server.Info{
			DecisionID: "22fd482f-a250-439e-8fb7-d7b0b3c11068",
			Path:       "temporal/authz/decision",
			Timestamp:  time.Date(2026, 11, 23, 13, 26, 25, 372684445, time.UTC),
			RemoteAddr: "127.0.0.1:54182",
			InputAST:   input,
			Results:    &result,
			Bundles:    map[string]server.BundleInfo{"temporal-opa/default": {}, "policy": {Revision: "r42"}},
			Metrics:    timers{Metrics: metrics.New(), all: map[string]any{"timer_server_handler_ns": int64(438202), "timer_rego_query_eval_ns": int64(333073)}},
			Custom: map[string]any{"api": "Start", "cached": true, "erased": []string{"/input/claims/jwt/exp"},
				"granted_roles": []any{map[string]any{"role": "read", "namespace": "", "rule": "r"}}},
			Error: &EventError{Code: "eval_error", Message: "boom"},
		}
	}
	labels := map[string]string{"id": "temporal-opa-1", "version": "1.22.2", "cluster": "prod"}
	labelsJSON, err := appendAny(nil, map[string]any{"id": "temporal-opa-1", "version": "1.22.2", "cluster": "prod"})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := ast.JSON(input)
	if err != nil {
		t.Fatal(err)
	}
	for _, withMap := range []bool{false, true} {
		info := mk()
		if withMap {
			var in any = doc
			info.Input = &in
		}
		got, err := appendEvent(nil, labelsJSON, info)
		if err != nil {
			t.Fatal(err)
		}
		// What logs.Plugin.Log builds and its buffers marshal.
		var in any = doc
		ev := logs.EventV1{
			Labels: labels, DecisionID: info.DecisionID, Path: info.Path, Input: &in, Result: info.Results,
			Bundles:     map[string]logs.BundleInfoV1{"temporal-opa/default": {}, "policy": {Revision: "r42"}},
			RequestedBy: info.RemoteAddr, Timestamp: info.Timestamp, Metrics: info.Metrics.All(), Custom: info.Custom, Error: info.Error,
		}
		want, err := json.Marshal(&ev)
		if err != nil {
			t.Fatal(err)
		}
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("not JSON: %v: %s", err, got)
		}
		_ = json.Unmarshal(want, &w)
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("map input %v:\n got %s\nwant %s", withMap, got, want)
		}
	}
	for _, s := range []string{"", "plain", "<a href='x'>&amp;</a>", "tab\tnl\ncr\r\x00\x1f\x7f", "é中🙂", "bad \xff\xfe utf8 \xe2\x82", "\u2028\u2029", `\"`} {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
}
