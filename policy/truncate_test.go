package policy_test

import (
	"context"
	"github.com/open-policy-agent/opa/v1/bundle"
	"strings"
	"testing"
	"unicode/utf8"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy"
)

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		max      int
		want     string
		cut      bool
	}{
		{name: "short", in: "abc", max: 64, want: "abc"},
		{name: "exactly max", in: strings.Repeat("a", 64), max: 64, want: strings.Repeat("a", 64)},
		{name: "ASCII", in: strings.Repeat("a", 100), max: 64, want: strings.Repeat("a", 64-len("…(truncated, 100 bytes)")) + "…(truncated, 100 bytes)", cut: true},
		// 64 - 24 = 40 bytes of room: 13 three-byte characters (39 bytes), not 13 and a third.
		{name: "never splits a character", in: strings.Repeat("€", 100), max: 64, want: strings.Repeat("€", 13) + "…(truncated, 300 bytes)", cut: true},
		{name: "max below the marker", in: strings.Repeat("a", 100), max: 4, want: "…(truncated, 100 bytes)", cut: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, cut := policy.Truncate(tc.in, tc.max)
			if got != tc.want || cut != tc.cut {
				t.Fatalf("Truncate = %q, %v; want %q, %v", got, cut, tc.want, tc.cut)
			}
			if !utf8.ValidString(got) {
				t.Fatalf("%q is not valid UTF-8", got)
			}
		})
	}
}

// TestReasonBounded: workflow-type-acl quotes the workflow type in its deny
// reason; a 1 MiB type gives the caller (and the recorder) a reason of at most
// MaxReasonBytes, marked, with the decision id after it.
func TestReasonBounded(t *testing.T) {
	acl, err := policy.LoadBundle("../bundles/workflow-type-acl")
	if err != nil {
		t.Fatal(err)
	}
	name := strings.Repeat("ü", 1<<19) // 1 MiB
	claims := &authorization.Claims{Subject: "bob", Namespaces: map[string]authorization.Role{"default": authorization.RoleWriter}}
	target := func() *authorization.CallTarget {
		return &authorization.CallTarget{
			APIName:   "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution",
			Namespace: "default",
			Request:   &workflowservice.StartWorkflowExecutionRequest{Namespace: "default", WorkflowType: &commonpb.WorkflowType{Name: name}},
		}
	}
	rec := &events{logs: true}
	for _, tc := range []struct {
		name   string
		rec    policy.Recorder
		suffix bool // the reason ends with the decision id
	}{
		{name: "no recorder", rec: nil},
		{name: "decision logger", rec: rec, suffix: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			az, err := policy.NewAuthorizer(policy.Options{Recorder: tc.rec}, map[string]*bundle.Bundle{"workflow-type-acl": acl})
			if err != nil {
				t.Fatal(err)
			}
			d, err := az.Decide(context.Background(), claims, target())
			if err != nil || d.Allow || len(d.Reason) > policy.MaxReasonBytes || !strings.Contains(d.Reason, "…(truncated, ") || !utf8.ValidString(d.Reason) {
				t.Errorf("Decide: %d bytes, %v: %q", len(d.Reason), err, d.Reason[max(0, len(d.Reason)-60):])
			}
			for range 2 {
				res, err := az.Authorize(context.Background(), claims, target())
				if err != nil || res.Decision != authorization.DecisionDeny {
					t.Fatalf("%v %v: want a deny", res.Decision, err)
				}
				reason := res.Reason
				if tc.suffix {
					i := strings.LastIndex(reason, " (decision ")
					if i < 0 {
						t.Fatalf("reason %q names no decision", reason[max(0, len(reason)-80):])
					}
					reason = reason[:i]
				}
				if len(reason) > policy.MaxReasonBytes || !utf8.ValidString(res.Reason) || !strings.Contains(reason, "…(truncated, ") ||
					!strings.HasPrefix(reason, "StartWorkflowExecution of workflow type \"üü") {
					t.Fatalf("reason of %d bytes: %q", len(reason), reason[max(0, len(reason)-80):])
				}
			}
		})
	}
	if len(rec.list) != 2 {
		t.Fatalf("%d events recorded", len(rec.list))
	}
	for _, e := range rec.list {
		if len(e.Reason) > policy.MaxReasonBytes+len(" (decision )")+len(e.ID) {
			t.Errorf("recorded reason of %d bytes", len(e.Reason))
		}
	}
}
