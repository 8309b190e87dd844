package cpushare

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

func TestPackage(t *testing.T) {
	for fn, want := range map[string]string{
		"runtime.mallocgc": "runtime",
		"github.com/temporal-opa/temporal-opa/policy.(*Authorizer).Authorize.func1":        "github.com/temporal-opa/temporal-opa/policy",
		"github.com/open-policy-agent/opa/v1/topdown.(*eval).evalStep":                     "github.com/open-policy-agent/opa/v1/topdown",
		"github.com/open-policy-agent/opa/v1/plugins/logs.(*Plugin).flushLoop":             "github.com/open-policy-agent/opa/v1/plugins/logs",
		"go.temporal.io/server/common/cache.(*lru[go.shape.string,go.shape.interface {}])": "go.temporal.io/server/common/cache",
		"sync.(*Map).Load[github.com/x/y.T]":                                               "sync",
		"main":                                                                             "main",
	} {
		if got := Package(fn); got != want {
			t.Errorf("Package(%q) = %q, want %q", fn, got, want)
		}
	}
}

// stack is a sample's stack, leaf first; each entry a location, its inlined
// functions innermost first.
type stack [][]string

// writeProfile writes a CPU profile with one sample of 10 ms per stack, those
// of labelled carrying the label server=a, the others server=b.
func writeProfile(t *testing.T, labelled, others []stack) *bytes.Buffer {
	t.Helper()
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     int64(10 * time.Millisecond),
	}
	funcs := map[string]*profile.Function{}
	fn := func(name string) *profile.Function {
		if f, ok := funcs[name]; ok {
			return f
		}
		f := &profile.Function{ID: uint64(len(funcs) + 1), Name: name, SystemName: name}
		funcs[name] = f
		p.Function = append(p.Function, f)
		return f
	}
	add := func(st stack, server string) {
		smp := &profile.Sample{Value: []int64{1, int64(10 * time.Millisecond)}, Label: map[string][]string{"server": {server}}}
		for _, inlined := range st {
			loc := &profile.Location{ID: uint64(len(p.Location) + 1)}
			for _, name := range inlined {
				loc.Line = append(loc.Line, profile.Line{Function: fn(name)})
			}
			p.Location = append(p.Location, loc)
			smp.Location = append(smp.Location, loc)
		}
		p.Sample = append(p.Sample, smp)
	}
	for _, st := range labelled {
		add(st, "a")
	}
	for _, st := range others {
		add(st, "b")
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return &buf
}

const (
	authorize = "github.com/temporal-opa/temporal-opa/policy.(*Authorizer).Authorize"
	getClaims = "github.com/temporal-opa/temporal-opa/policy/claimmapper.(*Mapper).GetClaims"
	record    = "github.com/temporal-opa/temporal-opa/policy/authzmetrics.(*Metrics).Record"
	enqueue   = "github.com/temporal-opa/temporal-opa/policy/decisionlog.(*Logger).Record"
	flush     = "github.com/open-policy-agent/opa/v1/plugins/logs.(*Plugin).flushLoop"
	evalStep  = "github.com/open-policy-agent/opa/v1/topdown.(*eval).evalStep"
	astValue  = "github.com/open-policy-agent/opa/v1/ast.ValueToInterface"
	intercept = "go.temporal.io/server/common/authorization.(*Interceptor).Intercept"
	sqlite    = "modernc.org/sqlite/lib.Xsqlite3VdbeExec"
)

func TestRead(t *testing.T) {
	labelled := []stack{
		{{"runtime.mapaccess2"}, {authorize}, {intercept}},                      // authorizer, leaf elsewhere
		{{evalStep}, {authorize}, {intercept}},                                  // OPA's evaluation under the authorizer
		{{"crypto/sha256.block"}, {getClaims}, {intercept}},                     // the claim mapper, leaf elsewhere
		{{"go.opentelemetry.io/otel/sdk/metric.(*x).y"}, {record}, {authorize}}, // metrics under the authorizer
		{{"compress/flate.(*compressor).deflate"}, {flush}},                     // decision logging on its goroutine
		{{astValue, flush}},                // OPA code inlined into the logs plugin
		{{enqueue}, {authorize}},           // the decision logger's leaf
		{{sqlite}}, {{sqlite}}, {{sqlite}}, // the server's own work
	}
	others := []stack{{{authorize}}, {{sqlite}}}
	s, err := Read(writeProfile(t, labelled, others), "server", "a")
	if err != nil {
		t.Fatal(err)
	}
	ms := func(n int) time.Duration { return time.Duration(n) * 10 * time.Millisecond }
	if s.Total != ms(10) || s.All != ms(12) || s.Samples != 10 {
		t.Fatalf("Total %s, All %s, Samples %d; want 100ms, 120ms, 10", s.Total, s.All, s.Samples)
	}
	// astValue is inlined into flush: its sample's leaf is astValue (OPA),
	// and it is under decision logging.
	wantLeaf := map[string]time.Duration{OPA: ms(2), DecisionLog: ms(1)}
	for _, c := range Components {
		if s.Leaf[c] != wantLeaf[c] {
			t.Errorf("Leaf[%s] = %s, want %s", c, s.Leaf[c], wantLeaf[c])
		}
	}
	if s.LeafOurs != ms(3) {
		t.Errorf("LeafOurs = %s, want 30ms", s.LeafOurs)
	}
	wantUnder := map[string]time.Duration{Authorizer: ms(4), ClaimMapper: ms(1), Metrics: ms(1), DecisionLog: ms(3)}
	for _, c := range Components {
		if s.Under[c] != wantUnder[c] {
			t.Errorf("Under[%s] = %s, want %s", c, s.Under[c], wantUnder[c])
		}
	}
	if s.UnderOurs != ms(7) {
		t.Errorf("UnderOurs = %s, want 70ms (each sample once)", s.UnderOurs)
	}
	if got := s.Share(s.UnderOurs); got != 0.7 {
		t.Errorf("Share(UnderOurs) = %v, want 0.7", got)
	}

	var sum Shares
	sum.Add(s)
	sum.Add(s)
	if sum.Total != ms(20) || sum.Under[Authorizer] != ms(8) || sum.Leaf[OPA] != ms(4) || sum.UnderOurs != ms(14) {
		t.Errorf("Add twice: Total %s, Under[authorizer] %s, Leaf[OPA] %s, UnderOurs %s", sum.Total, sum.Under[Authorizer], sum.Leaf[OPA], sum.UnderOurs)
	}

	all, err := Read(writeProfile(t, labelled, others), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if all.Total != ms(12) || all.Under[Authorizer] != ms(5) {
		t.Errorf("without a label: Total %s, Under[authorizer] %s; want 120ms and 50ms", all.Total, all.Under[Authorizer])
	}
}

func TestReadErrors(t *testing.T) {
	if _, err := Read(bytes.NewReader([]byte("not a profile")), "", ""); err == nil {
		t.Error("Read of garbage succeeded")
	}
	p := &profile.Profile{SampleType: []*profile.ValueType{{Type: "alloc_space", Unit: "bytes"}}}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(&buf, "", ""); err == nil || err.Error() != "cpushare: not a CPU profile: no sample type cpu/nanoseconds among 1" {
		t.Errorf("Read of a heap profile: %v", err)
	}
}
