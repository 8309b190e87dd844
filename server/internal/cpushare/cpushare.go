// Package cpushare attributes the CPU of a Go CPU profile (runtime/pprof) to
// temporal-opa's components: the claim mapper, the authorizer (our policy
// packages and OPA's evaluation under them), metrics and decision logging.
// BenchmarkServerThroughput (server/internal/e2e) profiles each server under
// load and prints these shares.
//
// Two attributions are made of the same samples:
//
//   - by leaf: a sample counts for the component whose package holds the
//     function it was taken in (the innermost frame, inlined calls included);
//     work done for a component in a shared package (the OpenTelemetry SDK
//     under metrics, compress/gzip under decision logging, crypto under the
//     claim mapper) counts for none;
//   - under: a sample counts for a component when any frame of its stack is in
//     the component's packages (cumulative: what the component and everything
//     it calls cost). The components nest (the authorizer calls the metrics
//     and the decision logger on the call), so "under" shares overlap; Ours
//     counts a sample once whatever components it is under.
package cpushare

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// Component names, in the order Components lists them.
const (
	ClaimMapper = "claim mapper"
	Authorizer  = "authorizer"
	OPA         = "OPA evaluation"
	Metrics     = "metrics"
	DecisionLog = "decision logging"
)

// Components are the components attributed, in printing order.
var Components = []string{ClaimMapper, Authorizer, OPA, Metrics, DecisionLog}

const (
	module  = "github.com/temporal-opa/temporal-opa/"
	opa     = "github.com/open-policy-agent/opa/"
	opaLogs = "github.com/open-policy-agent/opa/v1/plugins/logs"
)

// componentOf names the component of a Go package path, or "" when it is
// none of them. The authorizer is every package under policy/ but the claim
// mapper's, the metrics' and the decision logger's (policy,
// policy/internal/projection, policy/grants, policy/shadow, ...); OPA is every
// OPA package but its decision-log plugin, which is decision logging.
func componentOf(pkg string) string {
	under := func(p string) bool { return pkg == p || strings.HasPrefix(pkg, p+"/") }
	switch {
	case under(module + "policy/claimmapper"):
		return ClaimMapper
	case under(module + "policy/authzmetrics"):
		return Metrics
	case under(module+"policy/decisionlog") || under(opaLogs):
		return DecisionLog
	case under(module + "policy"):
		return Authorizer
	case strings.HasPrefix(pkg, opa):
		return OPA
	}
	return ""
}

// underComponent names the component a frame makes a sample "under": as
// componentOf, except OPA's evaluation, which is counted under the authorizer
// (our frames call it) and not on its own: OPA frames outside our calls (its
// bundle plugin's goroutines) are none of the call path's.
func underComponent(pkg string) string {
	if c := componentOf(pkg); c != OPA {
		return c
	}
	return ""
}

// Package is the Go package path of a function's symbol name, as a CPU
// profile names it: "github.com/x/y.(*T).M.func1" is "github.com/x/y",
// "runtime.mallocgc" "runtime"; type arguments ("pkg.F[go.shape.string]")
// are not part of it.
func Package(fn string) string {
	if i := strings.IndexByte(fn, '['); i >= 0 {
		fn = fn[:i]
	}
	slash := strings.LastIndexByte(fn, '/')
	if dot := strings.IndexByte(fn[slash+1:], '.'); dot >= 0 {
		return fn[:slash+1+dot]
	}
	return fn
}

// Shares is the CPU of a profile's samples by component.
type Shares struct {
	// Total is the CPU of the samples attributed (those of the label asked
	// for); All is the CPU of every sample of the profile.
	Total, All time.Duration
	// Samples is the number of samples attributed (at 100 Hz, 10 ms each).
	Samples int64
	// Leaf is the CPU by component of the leaf function's package; LeafOurs
	// their sum.
	Leaf     map[string]time.Duration
	LeafOurs time.Duration
	// Under is the CPU of the samples with a frame of the component anywhere
	// in their stack; UnderOurs counts each such sample once.
	Under     map[string]time.Duration
	UnderOurs time.Duration
}

// Add adds o's CPU to s (rounds of the same configuration).
func (s *Shares) Add(o *Shares) {
	if s.Leaf == nil {
		s.Leaf, s.Under = map[string]time.Duration{}, map[string]time.Duration{}
	}
	s.Total += o.Total
	s.All += o.All
	s.Samples += o.Samples
	s.LeafOurs += o.LeafOurs
	s.UnderOurs += o.UnderOurs
	for k, v := range o.Leaf {
		s.Leaf[k] += v
	}
	for k, v := range o.Under {
		s.Under[k] += v
	}
}

// Share is d as a share of s.Total (0 when nothing was attributed).
func (s *Shares) Share(d time.Duration) float64 {
	if s.Total == 0 {
		return 0
	}
	return float64(d) / float64(s.Total)
}

// Read parses a CPU profile (runtime/pprof's format) and attributes the CPU of
// its samples whose pprof label key has the value value; with key "" every
// sample is attributed.
func Read(r io.Reader, key, value string) (*Shares, error) {
	p, err := profile.Parse(r)
	if err != nil {
		return nil, fmt.Errorf("cpushare: parse the profile: %w", err)
	}
	cpu := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" && st.Unit == "nanoseconds" {
			cpu = i
		}
	}
	if cpu < 0 {
		return nil, fmt.Errorf("cpushare: not a CPU profile: no sample type cpu/nanoseconds among %d", len(p.SampleType))
	}
	s := &Shares{Leaf: map[string]time.Duration{}, Under: map[string]time.Duration{}}
	for _, smp := range p.Sample {
		d := time.Duration(smp.Value[cpu])
		s.All += d
		if key != "" && !hasLabel(smp, key, value) {
			continue
		}
		s.Total += d
		s.Samples++
		if leaf := leafFunction(smp); leaf != "" {
			if c := componentOf(Package(leaf)); c != "" {
				s.Leaf[c] += d
				s.LeafOurs += d
			}
		}
		seen := map[string]bool{}
		for _, loc := range smp.Location {
			for _, line := range loc.Line {
				if line.Function == nil {
					continue
				}
				if c := underComponent(Package(line.Function.Name)); c != "" && !seen[c] {
					seen[c] = true
					s.Under[c] += d
				}
			}
		}
		if len(seen) > 0 {
			s.UnderOurs += d
		}
	}
	return s, nil
}

func hasLabel(smp *profile.Sample, key, value string) bool {
	for _, v := range smp.Label[key] {
		if v == value {
			return true
		}
	}
	return false
}

// leafFunction is the name of the function a sample was taken in: the first
// line of its first location (a location's lines list inlined calls innermost
// first).
func leafFunction(smp *profile.Sample) string {
	for _, loc := range smp.Location {
		for _, line := range loc.Line {
			if line.Function != nil {
				return line.Function.Name
			}
		}
	}
	return ""
}
