package decisionlog_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/temporal-opa/temporal-opa/policy/decisionlog"
)

const (
	consoleLine = `{"decision_id":"a","input":{"target":{"method":"ListWorkflowExecutions","namespace":"default"}},"result":{"allow":true,"reason":""},"custom":{"api":"ListWorkflowExecutions","namespace":"default","subject":"alice"},"level":"info","msg":"Decision Log"}`
	deniedLine  = `{"decision_id":"b","input":{"target":{}},"result":{"allow":false,"reason":"no"},"erased":["/input/claims/jwt/email"],"custom":{"api":"StartWorkflowExecution","subject":"bob","erased":["/input/request/input"],"truncated":["/input/request/workflow_type/name"],"error":{"code":"eval_error","message":"x"}}}`
)

func TestRead(t *testing.T) {
	gz := func(s string) string {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		_, _ = w.Write([]byte(s))
		_ = w.Close()
		return b.String()
	}
	batch := "[" + consoleLine + "," + deniedLine + "]"
	cases := []struct {
		name    string
		in      string
		ids     []string
		skipped int
		wantErr string
	}{
		{name: "console lines", in: consoleLine + "\n" + deniedLine + "\n", ids: []string{"a", "b"}},
		{name: "uploaded batch", in: batch, ids: []string{"a", "b"}},
		{name: "two gzip batches", in: gz(batch + "\n" + batch), ids: []string{"a", "b", "a", "b"}},
		{name: "other JSON skipped", in: `{"level":"info","msg":"Starting decision logger."}` + "\n" + consoleLine, ids: []string{"a"}, skipped: 1},
		{name: "not JSON", in: consoleLine + "\nStarting Temporal ...\n", wantErr: "at byte"},
		{name: "a number", in: "42", wantErr: "a json.Number where a decision-log event"},
		{name: "bad gzip", in: "\x1f\x8bnot gzip", wantErr: "gzip"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ids []string
			skipped, err := decisionlog.Read(strings.NewReader(tc.in), "events", func(r decisionlog.Recorded) error {
				ids = append(ids, r.DecisionID)
				return nil
			})
			if tc.wantErr != "" {
				var re *decisionlog.ReadError
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.As(err, &re) {
					t.Fatalf("error %v, want a ReadError with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(ids, tc.ids) || skipped != tc.skipped {
				t.Fatalf("ids %v skipped %d err %v; want %v, %d", ids, skipped, err, tc.ids, tc.skipped)
			}
		})
	}
	var got []decisionlog.Recorded
	_, _ = decisionlog.Read(strings.NewReader(deniedLine), "events", func(r decisionlog.Recorded) error { got = append(got, r); return nil })
	r := got[0]
	if r.Allow || r.Reason != "no" || r.API != "StartWorkflowExecution" || r.Subject != "bob" || r.Error != "eval_error" ||
		!slices.Equal(r.Erased, []string{"/input/request/input", "/input/claims/jwt/email", "/input/request/workflow_type/name"}) {
		t.Fatalf("recorded %+v", r)
	}
}

func TestInputPath(t *testing.T) {
	for _, tc := range []struct {
		ptr  string
		want []string
		ok   bool
	}{
		{"/input/request/memo", []string{"request", "memo"}, true},
		{"/input", []string{}, true},
		{"/input/a~1b/c~0d", []string{"a/b", "c~d"}, true},
		{"/result/reason", nil, false},
		{"/inputs/x", nil, false},
	} {
		got, ok := decisionlog.InputPath(tc.ptr)
		if ok != tc.ok || !slices.Equal(got, tc.want) {
			t.Errorf("InputPath(%q) = %v, %v; want %v, %v", tc.ptr, got, ok, tc.want, tc.ok)
		}
	}
}
